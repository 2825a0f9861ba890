//! Automatic maintenance (issue 16 item 3): streaming ingest writes one small
//! file per commit and partition; the server compacts them in the
//! background, without changing a row or breaking time travel, and a table
//! property turns it off.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{Http, Outages, Server, create_events, ndjson, send_until_acked};

const COMMITS: u64 = 48;
const ROWS: u64 = 30;

/// Sends `COMMITS` requests one after another (each its own commit, since
/// nothing else is queued), `ROWS` events each across the table's three
/// day partitions.
fn stream(http: &Http) {
    let deadline = Instant::now() + Duration::from_secs(300);
    for sequence in 1..=COMMITS {
        let start = sequence * ROWS;
        send_until_acked(
            std::slice::from_ref(http),
            0,
            "maintenance-test",
            sequence,
            &ndjson(start..start + ROWS),
            Outages::Fail,
            deadline,
        );
    }
}

/// A sample of a metric whose labels include every one of `labels`.
fn metric(http: &Http, name: &str, labels: &[&str]) -> Option<f64> {
    let text = http.get("/metrics").body;
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Live files and rows as Python deltalake sees them.
fn peer_view(silt: &Silt) -> (u64, u64) {
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
print(json.dumps({"files": len(t.file_uris()), "rows": t.to_pyarrow_table().num_rows}))
sys.stdout.flush()
os._exit(0)
"#;
    let out = Command::new(python())
        .args(["-c", script, &silt.table_path("events")])
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view: Value = serde_json::from_slice(&out.stdout).expect("python prints JSON");
    (
        view["files"].as_u64().expect("files"),
        view["rows"].as_u64().expect("rows"),
    )
}

#[test]
fn streaming_ingest_is_compacted_in_the_background() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(
        &http,
        json!({
            "silt.maintenance.compact_min_files": "8",
            "silt.maintenance.check_commits": "4",
        }),
    );
    stream(&http);

    // The last check may still be compacting: wait for the metric.
    let deadline = Instant::now() + Duration::from_secs(120);
    let compacted = loop {
        let runs = metric(
            &http,
            "silt_maintenance_runs_total",
            &["table=\"events\"", "outcome=\"compacted\""],
        );
        if runs.is_some_and(|n| n >= 1.0) {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "no compaction within 120 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("compactions: {compacted:?}");
    // Let a compaction that is still running finish before counting files.
    std::thread::sleep(Duration::from_secs(2));

    let (files, rows) = peer_view(&silt);
    eprintln!("{files} live files after {COMMITS} commits into 3 partitions");
    // Without maintenance: 48 commits × 3 partitions = 144 files. With it,
    // per partition one compacted file plus at most the small files written
    // since the last compaction (fewer than min_files + check_commits).
    assert!(files <= 3 * (1 + 8 + 4), "{files} live files after compaction");
    assert_eq!(rows, COMMITS * ROWS, "compaction keeps every row");
    assert_eq!(
        silt.scalar("SELECT count(DISTINCT id) FROM events"),
        json!(COMMITS * ROWS)
    );
    // Time travel to a version before any compaction still reads.
    assert_eq!(
        silt.scalar("SELECT count(*) FROM events VERSION AS OF 3"),
        json!(3 * ROWS)
    );
    // The compaction commits are OPTIMIZE, marked as automatic.
    let history = silt.ok(&["sql", "--format", "json", "DESCRIBE HISTORY events"]);
    assert!(history.contains("OPTIMIZE"), "{history}");
    assert!(history.contains("silt.maintenance"), "{history}");
    assert!(
        metric(
            &http,
            "silt_maintenance_files_total",
            &["table=\"events\"", "action=\"compacted\""]
        )
        .is_some_and(|n| n >= 8.0),
        "{}",
        http.get("/metrics").body
    );
    assert!(metric(&http, "silt_table_files", &["table=\"events\""]).is_some());
}

#[test]
fn maintenance_off_by_property_leaves_every_file() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(
        &http,
        json!({
            "silt.maintenance.enabled": "false",
            "silt.maintenance.compact_min_files": "8",
            "silt.maintenance.check_commits": "4",
        }),
    );
    stream(&http);
    std::thread::sleep(Duration::from_secs(2));
    let (files, rows) = peer_view(&silt);
    assert_eq!(files, COMMITS * 3, "one file per commit and partition");
    assert_eq!(rows, COMMITS * ROWS);
    let history = silt.ok(&["sql", "--format", "json", "DESCRIBE HISTORY events"]);
    assert!(!history.contains("OPTIMIZE"), "{history}");
}
