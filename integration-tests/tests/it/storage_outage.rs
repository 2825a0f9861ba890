//! The object store goes away under a running server (issue 16 item 8):
//! moto's S3 behind a [`FaultProxy`] that drops every connection, then
//! answers every request `503 SlowDown`. While it is down `GET /readyz`,
//! ingest and SQL answer 503 problem+json with `Retry-After`, nothing is
//! acknowledged without its commit, no answer names the bucket's objects,
//! and when the store is back the unacknowledged requests, resent, land
//! exactly once. The embedded CLI exits 9 (unavailable) on the same store.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::harness::{Moto, Silt, peer_with_env};
use crate::server::{
    EVENTS_ROWS, NDJSON, Outages, Server, assert_ingested, assert_problem, create_events, detail, ndjson,
    send_until_acked, sequence_headers,
};

/// object_store's retries give up after this (`SILT_STORAGE_RETRY_TIMEOUT`).
const RETRY_TIMEOUT: &str = "2s";
/// Longest a request may take to fail while the store is down: the retry
/// timeout, one backoff step and a debug build's slack.
const FAIL_WITHIN: Duration = Duration::from_secs(30);

fn assert_unavailable(reply: &crate::server::Reply, what: &str, started: Instant) {
    let problem = assert_problem(reply, 503);
    assert_eq!(
        problem["type"], "https://silt.dev/problems/unavailable",
        "{what}: {problem}"
    );
    let retry_after = reply.header("retry-after").and_then(|s| s.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s > 0), "{what}: no Retry-After");
    let text = detail(&problem);
    for leak in ["127.0.0.1", "lake/wh", "_delta_log", ".parquet"] {
        assert!(
            !text.contains(leak),
            "{what}: the detail names storage ({leak}): {text}"
        );
    }
    assert!(
        started.elapsed() < FAIL_WITHIN,
        "{what} took {:?} to fail",
        started.elapsed()
    );
}

#[test]
fn an_object_store_outage_answers_503_acknowledges_nothing_and_recovers() {
    let moto = Moto::start("lake");
    let proxy = FaultProxy::start(moto.endpoint.trim_start_matches("http://"));
    let mut envs: Vec<(String, String)> = moto
        .envs()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k, proxy.endpoint.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    envs.push((
        "SILT_STORAGE_RETRY_TIMEOUT".to_string(),
        RETRY_TIMEOUT.to_string(),
    ));
    let silt = Silt::at("s3://lake/wh", envs);
    let server = Server::start(&silt);
    let http = server.http();

    let ready = http.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["status"], "ready");
    create_events(&http, json!({}));
    let first = http.post(EVENTS_ROWS, NDJSON, ndjson(0..10), &sequence_headers("p", 1));
    assert_ingested(&first, 10);

    let mut unacknowledged = Vec::new();
    for (round, fault) in [Fault::Drop, Fault::SlowDown].into_iter().enumerate() {
        proxy.set(fault);
        // /readyz reuses a probe's answer for a second.
        std::thread::sleep(Duration::from_millis(1100));
        let started = Instant::now();
        assert_unavailable(&http.get("/readyz"), &format!("{fault:?}: /readyz"), started);

        let sequence = 2 + round as u64;
        let ids = (sequence * 100)..(sequence * 100 + 10);
        let started = Instant::now();
        let reply = http.post(
            EVENTS_ROWS,
            NDJSON,
            ndjson(ids.clone()),
            &sequence_headers("p", sequence),
        );
        assert_unavailable(&reply, &format!("{fault:?}: ingest"), started);
        unacknowledged.push((sequence, ids));

        let started = Instant::now();
        let reply = http.post_json("/v1/sql", &json!({"sql": "SELECT max(email) FROM events"}));
        assert_unavailable(&reply, &format!("{fault:?}: SELECT"), started);
        let started = Instant::now();
        let reply = http.post_json("/v1/sql", &json!({"sql": "DELETE FROM events WHERE id = 3"}));
        assert_unavailable(&reply, &format!("{fault:?}: DELETE"), started);
        if fault == Fault::Drop {
            // The embedded CLI on the same warehouse: one line, exit 9.
            let run = silt.run(&["sql", "SELECT max(email) FROM events"]);
            assert_eq!(run.code, Some(9), "embedded SELECT: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
            assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
            assert!(!run.stderr.contains("lake/wh/events"), "{}", run.stderr);
        }
    }

    proxy.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get("/readyz").status != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 503 after the store came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let servers = [http.clone()];
    for (sequence, ids) in &unacknowledged {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (_, answer, _) = send_until_acked(
            &servers,
            0,
            "p",
            *sequence,
            &ndjson(ids.clone()),
            Outages::Fail,
            deadline,
        );
        // Never committed while the store was down, so not a duplicate now.
        assert_eq!(answer["duplicate"], false, "{answer}");
        assert_eq!(answer["rows_written"], 10, "{answer}");
    }

    let reply = http.post_json(
        "/v1/sql",
        &json!({"sql": "SELECT count(*) AS n, count(DISTINCT id) AS d FROM events"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rows = &reply.json()["rows"];
    assert_eq!(
        rows[0],
        json!([30, 30]),
        "row 3 was not deleted and nothing doubled: {rows}"
    );
    let peer = peer_with_env(
        &["read", "deltalake", "s3://lake/wh/events", "--columns", "id"],
        &moto.envs(),
    );
    assert_eq!(peer.as_array().map(Vec::len), Some(30), "{peer}");
}
