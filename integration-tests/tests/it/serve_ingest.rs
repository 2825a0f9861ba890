//! `silt serve` ingest, driven over HTTP and Arrow Flight like a producer
//! would: exactly-once per (producer, sequence) under concurrency, `kill -9`
//! and two servers on one warehouse; every body format; problem+json errors
//! that commit nothing; dead letters; schema evolution; bearer-token roles;
//! Flight DoPut acks; `silt ingest --server`. Data is read back with the
//! embedded CLI (`silt sql`) and Python deltalake on the same warehouse.

use std::collections::HashSet;
use std::ops::Range;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Silt, peer, silt_bin};
use crate::server::{
    AUTH_CONFIG, EVENTS as TABLE, EVENTS_ROWS as ROWS_PATH, Http, NDJSON, Outages, Reply, Server,
    assert_ingested, assert_problem, create_events, detail, event, ndjson, ndjson_values, producer,
    pyarrow_bytes, send_until_acked, sequence_headers,
};

const CSV: &str = "text/csv";
const ARROW: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";

// ---------------------------------------------------------------- helpers

/// CSV (with header) events with these ids.
fn csv(ids: Range<u64>) -> Vec<u8> {
    let mut out = String::from("id,email,ts,day\n");
    for id in ids {
        let e = event(id);
        out.push_str(&format!(
            "{id},{},{},{}\n",
            e["email"].as_str().unwrap_or(""),
            e["ts"].as_str().unwrap_or(""),
            e["day"].as_str().unwrap_or("")
        ));
    }
    out.into_bytes()
}

/// Table properties for tests that count commits (a version that did not
/// move proves a duplicate or a refused request committed nothing):
/// automatic maintenance is off, as its compaction commits would move the
/// version on their own after 16 commits (maintenance.rs and
/// dml_concurrency.rs run ingest with it on).
fn counted_commits() -> Value {
    json!({"silt.maintenance.enabled": "false"})
}

/// `count(*)` and `count(DISTINCT id)` of the events table.
fn counts(silt: &Silt) -> (i64, i64) {
    let rows = silt.rows("SELECT count(*), count(DISTINCT id) FROM events");
    (
        rows[0][0].as_i64().expect("count"),
        rows[0][1].as_i64().expect("distinct count"),
    )
}

/// A small deterministic xorshift, so failures can be replayed from the seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(7);
        Rng(u64::from(nanos) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

// ---------------------------------------------------------------- load

/// `producers` producers, each sending `requests` requests of `rows` rows,
/// sequences 1..=requests in order; all ids distinct.
#[derive(Debug, Clone, Copy)]
struct Load {
    producers: usize,
    requests: u64,
    rows: u64,
}

impl Load {
    const FULL: Load = Load {
        producers: 8,
        requests: 40,
        rows: 100,
    };

    fn ids(&self, producer: usize, sequence: u64) -> Range<u64> {
        let first = (producer as u64 * self.requests + sequence - 1) * self.rows;
        first..first + self.rows
    }

    fn total_rows(&self) -> i64 {
        (self.producers as u64 * self.requests * self.rows) as i64
    }

    fn total_requests(&self) -> usize {
        self.producers * self.requests as usize
    }
}

fn producer_id(p: usize) -> String {
    format!("producer-{p}")
}

/// One acknowledged request.
#[derive(Debug, Clone)]
struct Ack {
    producer: usize,
    sequence: u64,
    /// Index of the server that acknowledged it.
    server: usize,
    version: u64,
    duplicate: bool,
    /// An earlier attempt got no answer (connection error).
    lost: bool,
}

/// The longest a whole [`Load`] may take (a debug build on two cores).
const LOAD_TIMEOUT: Duration = Duration::from_secs(400);

/// Runs `load` from one thread per producer. Producer `p` sends sequence `s`
/// to server `(p + s) % servers.len()` (so with two servers each producer
/// alternates). `on_ack(n)` runs on this thread after the n-th ack (e.g. to
/// kill the server). Returns every ack.
fn run_load(load: Load, servers: &[Http], outages: Outages, mut on_ack: impl FnMut(usize)) -> Vec<Ack> {
    let (tx, rx) = mpsc::channel::<Ack>();
    // One deadline for the whole load, so a failure ends every producer soon.
    let deadline = Instant::now() + LOAD_TIMEOUT;
    std::thread::scope(|scope| {
        for p in 0..load.producers {
            let tx = tx.clone();
            scope.spawn(move || {
                let id = producer_id(p);
                for sequence in 1..=load.requests {
                    let body = ndjson(load.ids(p, sequence));
                    let first = (p + sequence as usize) % servers.len();
                    let (server, answer, lost) =
                        send_until_acked(servers, first, &id, sequence, &body, outages, deadline);
                    assert_eq!(answer["table"], TABLE, "{answer}");
                    assert_eq!(answer["rows_rejected"], 0, "{answer}");
                    let duplicate = answer["duplicate"].as_bool().expect("duplicate flag");
                    let expected = if duplicate { 0 } else { load.rows };
                    assert_eq!(answer["rows_written"], expected, "{id} #{sequence}: {answer}");
                    let ack = Ack {
                        producer: p,
                        sequence,
                        server,
                        version: answer["version"].as_u64().expect("version"),
                        duplicate,
                        lost,
                    };
                    if tx.send(ack).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut acks = Vec::new();
        while let Ok(ack) = rx.recv() {
            acks.push(ack);
            on_ack(acks.len());
        }
        acks
    })
}

/// Re-sends `n` random already-acknowledged requests (to server
/// `to(ack)`); each must answer 200 duplicate with nothing written.
fn retry_acked(load: Load, acks: &[Ack], servers: &[Http], n: usize, to: impl Fn(&Ack) -> usize) {
    let mut rng = Rng::seeded();
    let seed = rng.0;
    let mut seen = HashSet::new();
    while seen.len() < n.min(acks.len()) {
        let ack = &acks[rng.below(acks.len())];
        if !seen.insert((ack.producer, ack.sequence)) {
            continue;
        }
        let id = producer_id(ack.producer);
        let server = to(ack);
        let reply = servers[server].post(
            ROWS_PATH,
            NDJSON,
            ndjson(load.ids(ack.producer, ack.sequence)),
            &sequence_headers(&id, ack.sequence),
        );
        assert_eq!(
            reply.status, 200,
            "retry {id} #{} (seed {seed}): {}",
            ack.sequence, reply.body
        );
        let body = reply.json();
        assert_eq!(
            body["duplicate"], true,
            "retry of acked {id} #{} on server {server} (seed {seed}): {body}",
            ack.sequence
        );
        assert_eq!(body["rows_written"], 0, "{body}");
    }
}

/// Each producer's acks come in sequence order at strictly growing versions.
fn assert_acks_in_order(load: Load, acks: &[Ack]) {
    assert_eq!(acks.len(), load.total_requests());
    for p in 0..load.producers {
        let mine: Vec<&Ack> = acks.iter().filter(|a| a.producer == p).collect();
        let sequences: Vec<u64> = mine.iter().map(|a| a.sequence).collect();
        assert_eq!(sequences, (1..=load.requests).collect::<Vec<_>>());
        for pair in mine.windows(2) {
            assert!(
                pair[1].version > pair[0].version,
                "producer {p}: #{} acked at version {} after #{} at {}",
                pair[1].sequence,
                pair[1].version,
                pair[0].sequence,
                pair[0].version
            );
        }
    }
}

// ---------------------------------------------------------------- exactly-once

#[test]
fn concurrent_producers_write_exactly_once_in_fewer_commits_than_requests() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, counted_commits());
    let before = silt.version(TABLE);
    let load = Load::FULL;

    let acks = run_load(load, std::slice::from_ref(&http), Outages::Fail, |_| {});
    assert!(
        acks.iter().all(|a| !a.duplicate),
        "a first send answered duplicate"
    );
    assert_acks_in_order(load, &acks);
    let after = silt.version(TABLE);

    retry_acked(load, &acks, std::slice::from_ref(&http), 20, |_| 0);
    assert_eq!(silt.version(TABLE), after, "duplicates committed something");

    assert_eq!(counts(&silt), (load.total_rows(), load.total_rows()));
    let commits = after - before;
    assert!(
        commits < load.total_requests() as u64,
        "{commits} commits for {} requests: no group commit",
        load.total_requests()
    );
    let history = http.get("/v1/tables/events/history").json();
    let history = history["history"].as_array().expect("history").clone();
    assert_eq!(history.len() as u64, after + 1, "history has every version");
    assert_eq!(history[0]["version"], after);
}

#[test]
fn kill_9_mid_load_then_restart_neither_loses_nor_duplicates_rows() {
    let silt = Silt::new();
    let mut server = Server::start(&silt);
    let http = server.http();
    create_events(&http, counted_commits());
    let load = Load::FULL;
    let third = load.total_requests() / 3;

    let mut killed = false;
    let acks = run_load(load, std::slice::from_ref(&http), Outages::Retry, |n| {
        if n == third {
            server.kill9();
            killed = true;
            server.restart();
        }
    });
    assert!(killed, "the server was never killed");
    assert!(
        acks.iter().any(|a| a.lost),
        "no request was in flight when the server was killed"
    );
    assert_acks_in_order(load, &acks);
    assert_eq!(counts(&silt), (load.total_rows(), load.total_rows()));

    // The restarted server knows every producer's committed sequence.
    let version = silt.version(TABLE);
    retry_acked(load, &acks, std::slice::from_ref(&http), 20, |_| 0);
    assert_eq!(silt.version(TABLE), version);
    assert_eq!(counts(&silt), (load.total_rows(), load.total_rows()));
}

#[test]
fn two_servers_on_one_warehouse_keep_exactly_once() {
    let silt = Silt::new();
    let a = Server::start(&silt);
    let b = Server::start(&silt);
    let servers = [a.http(), b.http()];
    create_events(&servers[0], counted_commits());
    let load = Load {
        producers: 6,
        requests: 20,
        rows: 100,
    };

    let acks = run_load(load, &servers, Outages::Fail, |_| {});
    assert!(
        acks.iter().all(|a| !a.duplicate),
        "a first send answered duplicate"
    );
    assert_acks_in_order(load, &acks);
    for server in 0..2 {
        assert!(
            acks.iter().any(|a| a.server == server),
            "server {server} acked nothing"
        );
    }
    let version = silt.version(TABLE);

    // Each retry goes to the server that did not acknowledge the original.
    retry_acked(load, &acks, &servers, 20, |ack| 1 - ack.server);
    assert_eq!(silt.version(TABLE), version);
    assert_eq!(counts(&silt), (load.total_rows(), load.total_rows()));
}

// ---------------------------------------------------------------- formats and errors

#[test]
fn every_body_format_ingests() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, counted_commits());

    let bodies = [
        (NDJSON, ndjson(0..3)),
        (CSV, csv(3..6)),
        (ARROW, pyarrow_bytes(&silt, "arrow", 6, 3)),
        (PARQUET, pyarrow_bytes(&silt, "parquet", 9, 3)),
    ];
    let mut last = silt.version(TABLE);
    for (content_type, body) in bodies {
        let reply = http.post(ROWS_PATH, content_type, body, &[]);
        let answer = assert_ingested(&reply, 3);
        let version = answer["version"].as_u64().expect("version");
        assert!(version > last, "{content_type}: version {version} after {last}");
        assert_eq!(
            silt.version(TABLE),
            version,
            "{content_type}: answered before the commit"
        );
        last = version;
    }

    assert_eq!(counts(&silt), (12, 12));
    // The same values whichever format carried them.
    let rows = silt.rows(
        "SELECT id, email, CAST(ts AS BIGINT), CAST(day AS VARCHAR) FROM events \
         WHERE id IN (1, 4, 7, 10) ORDER BY id",
    );
    for (row, id) in rows.iter().zip([1u64, 4, 7, 10]) {
        let ts_us = (1_795_600_800 + id as i64) * 1_000_000; // 2026-11-25T10:00:00Z + id s
        assert_eq!(
            row,
            &json!([
                id,
                format!("user{id}@example.com"),
                ts_us,
                format!("2026-11-{}", 20 + id % 3)
            ]),
            "row {id}"
        );
    }

    // ?create=true makes an unknown table from the body.
    let reply = http.post("/v1/tables/clicks/rows?create=true", NDJSON, ndjson(0..2), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows_written"], 2);
    assert_eq!(silt.scalar("SELECT count(*) FROM clicks"), json!(2));
}

const LIMITS_CONFIG: &str = "[ingest]\nmax_body_bytes = 1048576\n";

/// A server with a 1 MiB body limit and an events table holding 2 rows.
struct Rejecting {
    silt: Silt,
    server: Server,
    version: u64,
}

impl Rejecting {
    fn start() -> Rejecting {
        let silt = Silt::new();
        let server = Server::start_with_config(&silt, LIMITS_CONFIG);
        create_events(&server.http(), counted_commits());
        assert_ingested(&server.http().post(ROWS_PATH, NDJSON, ndjson(0..2), &[]), 2);
        let version = silt.version(TABLE);
        Rejecting {
            silt,
            server,
            version,
        }
    }

    fn post(&self, content_type: &str, body: Vec<u8>) -> Reply {
        self.server.http().post(ROWS_PATH, content_type, body, &[])
    }

    /// Nothing was committed since the setup.
    fn assert_unchanged(&self) {
        assert_eq!(
            self.silt.version(TABLE),
            self.version,
            "a rejected request committed"
        );
        assert_eq!(counts(&self.silt), (2, 2));
    }
}

#[test]
fn malformed_ndjson_is_400_and_commits_nothing() {
    let t = Rejecting::start();
    let mut body = ndjson(10..12);
    body.extend_from_slice(b"{\"id\": 12, \"email\": \n");
    assert_problem(&t.post(NDJSON, body), 400);
    t.assert_unchanged();
}

#[test]
fn wrong_json_type_is_422_naming_row_and_column_but_not_the_value() {
    let t = Rejecting::start();
    let mut bad = event(21);
    bad["id"] = json!("secret-not-a-number");
    let problem = assert_problem(&t.post(NDJSON, ndjson_values([event(20), bad, event(22)])), 422);
    let text = detail(&problem);
    assert!(text.contains("row 2") && text.contains("id"), "detail: {text}");
    assert!(
        !text.contains("secret-not-a-number"),
        "detail leaks the value: {text}"
    );
    assert!(
        !t.server.log().contains("secret-not-a-number"),
        "the log holds a rejected value"
    );
    t.assert_unchanged();
}

#[test]
fn unparsable_timestamp_is_422_naming_row_and_column() {
    let t = Rejecting::start();
    let mut bad = event(31);
    bad["ts"] = json!("not-a-time");
    let problem = assert_problem(&t.post(NDJSON, ndjson_values([event(30), bad])), 422);
    let text = detail(&problem);
    assert!(text.contains("row 2") && text.contains("ts"), "detail: {text}");
    t.assert_unchanged();
}

#[test]
fn null_in_not_null_column_is_422() {
    let t = Rejecting::start();
    let body = b"id,email,ts,day\n30,a@b,,2026-11-20\n,c@d,,2026-11-21\n".to_vec();
    let problem = assert_problem(&t.post(CSV, body), 422);
    let text = detail(&problem);
    assert!(text.contains("row 2") && text.contains("id"), "detail: {text}");
    t.assert_unchanged();
}

#[test]
fn unknown_column_without_evolve_is_422_naming_the_tables_columns() {
    let t = Rejecting::start();
    let mut extra = event(40);
    extra["country"] = json!("NO");
    let problem = assert_problem(&t.post(NDJSON, ndjson_values([extra])), 422);
    // The key is not quoted (a key that is not a column may be data); the
    // table's columns are.
    let text = detail(&problem);
    assert!(
        text.contains("1 field") && text.contains("id, email, ts, day"),
        "{problem}"
    );
    assert!(!text.contains("country"), "{problem}");
    t.assert_unchanged();
}

#[test]
fn garbage_arrow_and_parquet_bodies_are_400() {
    let t = Rejecting::start();
    assert_problem(&t.post(ARROW, b"this is not an arrow stream".to_vec()), 400);
    assert_problem(&t.post(PARQUET, b"PAR1 nope".to_vec()), 400);
    t.assert_unchanged();
}

#[test]
fn unknown_content_type_is_415() {
    let t = Rejecting::start();
    let body = b"<rows><row id=\"1\"/></rows>".to_vec();
    assert_problem(&t.post("application/xml", body), 415);
    t.assert_unchanged();
}

#[test]
fn body_over_max_body_bytes_is_413() {
    let t = Rejecting::start();
    let big = ndjson(1000..13000);
    assert!(big.len() > 1_048_576, "{} bytes", big.len());
    assert_problem(&t.post(NDJSON, big), 413);
    t.assert_unchanged();
}

#[test]
fn unknown_table_without_create_is_404() {
    let t = Rejecting::start();
    let http = t.server.http();
    assert_problem(&http.post("/v1/tables/nope/rows", NDJSON, ndjson(0..1), &[]), 404);
    let tables = http.get("/v1/tables").json();
    assert_eq!(tables, json!({"tables": [TABLE]}));
    t.assert_unchanged();
}

/// Posts good rows 1, 3, 5 with `bad` rows between them to a table with the
/// dead-letter policy: the good rows land, the bad ones in
/// `_silt_dead_letters` with a reason; a retry is a duplicate.
fn assert_dead_letters_route(bad: [Value; 2]) {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({"silt.ingest.dead_letters": "true"}));

    let [bad_a, bad_b] = bad;
    let body = ndjson_values([event(1), bad_a, event(3), bad_b, event(5)]);
    let headers = sequence_headers("dl-producer", 1);
    let reply = http.post(ROWS_PATH, NDJSON, body.clone(), &headers);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["rows_written"], 3, "{answer}");
    assert_eq!(answer["rows_rejected"], 2, "{answer}");
    assert_eq!(answer["duplicate"], false, "{answer}");

    assert_eq!(
        silt.rows("SELECT id FROM events ORDER BY id"),
        vec![json!([1]), json!([3]), json!([5])]
    );
    // SQL cannot read `_silt_dead_letters`; operators read it here.
    let dead_letters = || -> Vec<Value> {
        let reply = http.get("/v1/dead-letters?table=events");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let dead = dead_letters();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for row in &dead {
        assert_eq!(row["table"], TABLE, "{row}");
        assert_eq!(row["producer"], "dl-producer", "{row}");
        assert_eq!(row["sequence"], 1, "{row}");
        assert!(
            row["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "empty reason: {row}"
        );
        assert!(
            row["raw"].as_str().is_some_and(|r| !r.is_empty()),
            "empty raw: {row}"
        );
        assert!(row["received_at"].is_string(), "{row}");
    }

    // The retry is a duplicate: neither table grows.
    let retry = http.post(ROWS_PATH, NDJSON, body, &headers);
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["duplicate"], true, "{}", retry.body);
    assert_eq!(silt.count(TABLE, None), 3);
    assert_eq!(dead_letters().len(), 2);
}

#[test]
fn dead_letter_policy_routes_null_and_unparsable_rows_and_keeps_good_ones() {
    let mut null_id = event(2);
    null_id["id"] = Value::Null;
    let mut bad_ts = event(4);
    bad_ts["ts"] = json!("not-a-time");
    assert_dead_letters_route([null_id, bad_ts]);
}

#[test]
fn dead_letter_policy_routes_wrong_json_types_and_keeps_good_ones() {
    let mut string_id = event(2);
    string_id["id"] = json!("not-a-number");
    let mut fractional_id = event(4);
    fractional_id["id"] = json!(4.5);
    assert_dead_letters_route([string_id, fractional_id]);
}

#[test]
fn evolve_adds_a_nullable_column_that_python_deltalake_reads() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, counted_commits());
    assert_ingested(&http.post(ROWS_PATH, NDJSON, ndjson(1..2), &[]), 1);
    let version = silt.version(TABLE);

    let mut row = event(2);
    row["country"] = json!("NO");
    let body = ndjson_values([row]);
    let problem = assert_problem(&http.post(ROWS_PATH, NDJSON, body.clone(), &[]), 422);
    // Counted, not quoted: a key that is not a column may be data.
    assert!(detail(&problem).contains("1 field"), "{problem}");
    assert!(!detail(&problem).contains("country"), "{problem}");
    assert_eq!(silt.version(TABLE), version);

    let reply = http.post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, body, &[]);
    assert_ingested(&reply, 1);

    let described = http.get("/v1/tables/events").json();
    let country = described["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "country")
        .unwrap_or_else(|| panic!("no country column: {described}"))
        .clone();
    assert_eq!(country["nullable"], true, "{country}");
    let rows = peer(&[
        "read",
        "deltalake",
        &silt.table_path(TABLE),
        "--columns",
        "id,country",
    ]);
    assert_eq!(rows, json!([[1, null], [2, "NO"]]));
}

// ---------------------------------------------------------------- auth

#[test]
fn bearer_tokens_gate_ingest_by_role() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, AUTH_CONFIG);
    let anonymous = server.http();
    // /healthz is open (the harness already polled it without a token).
    assert_eq!(anonymous.get("/healthz").status, 200);
    create_events(&anonymous.with_token("o-token"), json!({}));
    let version = silt.version(TABLE);

    assert_problem(&anonymous.post(ROWS_PATH, NDJSON, ndjson(0..1), &[]), 401);
    assert_problem(
        &anonymous
            .with_token("no-such-token")
            .post(ROWS_PATH, NDJSON, ndjson(0..1), &[]),
        401,
    );
    assert_problem(
        &anonymous
            .with_token("r-token")
            .post(ROWS_PATH, NDJSON, ndjson(0..1), &[]),
        403,
    );
    assert_eq!(silt.version(TABLE), version, "a refused request committed");

    assert_ingested(
        &anonymous
            .with_token("w-token")
            .post(ROWS_PATH, NDJSON, ndjson(0..1), &[]),
        1,
    );
    assert_eq!(silt.count(TABLE, None), 1);

    // Flight checks the same header.
    let flight = |token: Option<&str>| {
        let uri = server.flight_uri();
        let mut args = vec![
            "flight",
            uri.as_str(),
            TABLE,
            "--producer",
            "auth-producer",
            "--batches",
            "1",
            "--rows",
            "1",
            "--start",
            "100",
        ];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        producer(&args)
    };
    let refused = flight(None);
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Unauthenticated")),
        "{refused:?}"
    );
    let refused = flight(Some("r-token"));
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Unauthorized")),
        "{refused:?}"
    );
    let acks = flight(Some("w-token"));
    assert!(acks[0]["version"].is_u64(), "{acks:?}");
    assert_eq!(silt.count(TABLE, None), 2);
}

// ---------------------------------------------------------------- Flight

#[test]
fn flight_do_put_acks_each_batch_once_it_is_visible() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    create_events(&server.http(), counted_commits());
    let uri = server.flight_uri();
    let bin = silt_bin();
    let bin = bin.to_string_lossy();
    let warehouse = silt.warehouse();
    let warehouse = warehouse.to_string_lossy();
    let put = || {
        producer(&[
            "flight",
            &uri,
            TABLE,
            "--producer",
            "flight-1",
            "--batches",
            "5",
            "--rows",
            "100",
            "--silt",
            &bin,
            "--warehouse",
            &warehouse,
        ])
    };

    let acks = put();
    assert_eq!(acks.len(), 5, "{acks:?}");
    let mut last = 0;
    for (k, ack) in (1u64..).zip(&acks) {
        assert_eq!(ack["sequence"], k, "{ack}");
        assert_eq!(ack["duplicate"], false, "{ack}");
        // Visible to an embedded reader as soon as it is acknowledged.
        assert_eq!(ack["count"], 100 * k, "after ack {k}: {ack}");
        let version = ack["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no version: {ack}"));
        assert!(version > last, "{acks:?}");
        last = version;
        assert_eq!(
            silt.count(TABLE, Some(version)),
            100 * k as i64,
            "VERSION AS OF {version}"
        );
    }

    // The same stream again: every batch is a duplicate, nothing is written.
    let again = put();
    assert_eq!(again.len(), 5, "{again:?}");
    assert!(again.iter().all(|a| a["duplicate"] == true), "{again:?}");
    assert_eq!(silt.version(TABLE), last);
    assert_eq!(silt.count(TABLE, None), 500);
}

// ---------------------------------------------------------------- table API, CLI, shutdown

#[test]
fn table_api_creates_lists_describes_and_shows_history() {
    let silt = Silt::new();
    let mut server = Server::start(&silt);
    let http = server.http();
    let created = create_events(&http, json!({"silt.erasure.subject_columns": "email"}));
    assert_eq!(created["name"], TABLE, "{created}");
    assert_eq!(created["version"], 0, "{created}");

    assert_eq!(http.get("/v1/tables").json(), json!({"tables": [TABLE]}));
    let described = http.get("/v1/tables/events").json();
    assert_eq!(described["name"], TABLE);
    assert_eq!(described["version"], 0);
    let columns: Vec<(String, bool)> = described["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["nullable"].as_bool().expect("nullable"),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [("id", false), ("email", true), ("ts", true), ("day", true)].map(|(n, b)| (n.to_string(), b))
    );
    assert_eq!(described["partition_columns"], json!(["day"]));
    assert_eq!(described["properties"]["silt.erasure.subject_columns"], "email");
    assert!(
        described["files"].is_u64() && described["bytes"].is_u64(),
        "{described}"
    );

    assert_ingested(&http.post(ROWS_PATH, NDJSON, ndjson(0..10), &[]), 10);
    let history = http.get("/v1/tables/events/history").json();
    assert_eq!(history["table"], TABLE);
    let entries = history["history"].as_array().expect("history");
    let versions: Vec<&Value> = entries.iter().map(|e| &e["version"]).collect();
    assert_eq!(versions, [&json!(1), &json!(0)], "newest first: {history}");
    assert_eq!(entries[0]["operation"], "WRITE", "{history}");
    assert!(entries[0]["timestamp"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(http.get("/v1/tables/nope").status, 404);

    // SIGTERM is a clean exit; a restart serves the same data.
    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
    server.restart();
    let described = server.http().get("/v1/tables/events").json();
    assert_eq!(described["version"], 1, "{described}");
    assert_eq!(silt.count(TABLE, None), 10);
}

#[test]
fn cli_ingest_through_the_server_is_idempotent() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    create_events(&server.http(), counted_commits());
    let a = silt.file("a.ndjson", &ndjson(0..50));
    let b = silt.file("b.csv", &csv(50..100));
    let url = server.http_url();
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", "--server", url.as_str(), TABLE, a.as_str(), b.as_str()];
        args.extend(extra);
        silt.ok(&args)
    };

    ingest(&[]);
    assert_eq!(counts(&silt), (100, 100));
    let version = silt.version(TABLE);

    // Same table, same files: the same producer id and sequence, a duplicate.
    let out = ingest(&[]);
    assert!(out.contains("ingested 0 rows"), "second run said: {out}");
    assert_eq!(silt.version(TABLE), version, "the second run committed");
    assert_eq!(counts(&silt), (100, 100));

    // Another producer id is another producer: its rows are written.
    ingest(&["--producer-id", "someone-else"]);
    assert_eq!(silt.count(TABLE, None), 200);
}

// ---------------------------------------------------------------- back-pressure and binding

/// With a tiny per-table queue, requests that arrive while one is queued are
/// refused with 429 + `Retry-After` and write nothing; the accepted ones are
/// all there.
#[test]
fn full_queue_answers_429_with_retry_after_and_loses_nothing() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, "[ingest]\nmax_queued_bytes = 1\n");
    let http = server.http();
    create_events(&http, counted_commits());
    let (sender, receiver) = mpsc::channel();
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let http = http.clone();
            let sender = sender.clone();
            std::thread::spawn(move || {
                let body = ndjson(t * 1000..t * 1000 + 500);
                let reply = http.post(ROWS_PATH, NDJSON, body, &[]);
                sender.send(reply).expect("send reply");
            })
        })
        .collect();
    drop(sender);
    for thread in threads {
        thread.join().expect("producer thread");
    }
    let replies: Vec<Reply> = receiver.iter().collect();
    let mut accepted_rows = 0;
    let mut refused = 0;
    for reply in &replies {
        match reply.status {
            200 => {
                accepted_rows += assert_ingested(reply, 500)["rows_written"]
                    .as_i64()
                    .expect("rows")
            }
            429 => {
                assert_problem(reply, 429);
                let retry = reply.header("retry-after").expect("Retry-After header");
                assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1), "Retry-After: {retry}");
                refused += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert!(refused > 0, "no request was refused with a 1-byte queue");
    assert!(accepted_rows > 0, "every request was refused");
    assert_eq!(counts(&silt), (accepted_rows, accepted_rows));
}

/// Without tokens the server refuses a non-loopback address: one error
/// line, non-zero exit, nothing listening.
#[test]
fn open_server_refuses_non_loopback_address() {
    let silt = Silt::new();
    let out = Command::new(silt_bin())
        .args(["serve", "--http", "0.0.0.0:0", "--flight", "127.0.0.1:0"])
        .env("SILT_WAREHOUSE", silt.warehouse())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs silt serve");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

// ---------------------------------------------------------------- checkpoints

/// The committer writes checkpoints in the background at the table's
/// interval (none inline), keeps committing on the handle reloaded from
/// them, and loses nothing across them.
#[test]
fn background_checkpoints_follow_the_interval_and_lose_nothing() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({"delta.checkpointInterval": "5"}));
    for request in 0..23u64 {
        let reply = http.post(ROWS_PATH, NDJSON, ndjson(request * 10..request * 10 + 10), &[]);
        assert_ingested(&reply, 10);
    }
    let log = silt.warehouse().join(TABLE).join("_delta_log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let checkpoint = |v: u64| log.join(format!("{v:020}.checkpoint.parquet")).exists();
    // Checkpoints are written after the ack, in the background.
    while !(checkpoint(5) && checkpoint(20)) {
        assert!(
            Instant::now() < deadline,
            "no checkpoints at 5 and 20 in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        checkpoint(10) && checkpoint(15),
        "a checkpoint interval was skipped"
    );
    assert!(!checkpoint(23), "checkpoint off the interval");
    assert_eq!(counts(&silt), (230, 230));
    // Commits after the reload land on top of the checkpointed state.
    let reply = http.post(ROWS_PATH, NDJSON, ndjson(1000..1010), &[]);
    assert_eq!(assert_ingested(&reply, 10)["version"], json!(24));
    assert_eq!(counts(&silt), (240, 240));
}
