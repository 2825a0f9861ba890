//! A local warehouse on a filesystem that fills up (issue 16): the test
//! mounts a 12 MiB tmpfs as the warehouse (it needs root, as CI and the
//! development machines run), keeps 4 MiB of it in a filler file and
//! ingests until the disk is full. Every answer is 200 or 507 problem+json
//! (never a 500), nothing is acknowledged without its commit, Python
//! deltalake reads the table with exactly the acknowledged rows, and once
//! the filler is deleted the refused request, resent, lands.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::{Silt, peer};
use crate::server::{EVENTS_ROWS, NDJSON, Server, assert_problem, create_events, sequence_headers};

/// Unmounts the tmpfs on drop (lazily: the server may still hold files).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).expect("create mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("runs mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `rows` events from `first` whose emails are 48 pseudo-random hex
/// characters, so Parquet cannot squeeze them much.
fn bulky(first: u64, rows: u64) -> Vec<u8> {
    let mut state = first.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut body = Vec::new();
    for id in first..first + rows {
        let email = format!("{:016x}{:016x}{:016x}@example.com", next(), next(), next());
        let row = json!({"id": id, "email": email, "ts": "2026-11-25T10:00:00Z", "day": "2026-11-25"});
        body.extend_from_slice(row.to_string().as_bytes());
        body.push(b'\n');
    }
    body
}

#[test]
fn a_full_disk_answers_507_commits_nothing_and_recovers_once_space_is_freed() {
    let silt = Silt::new();
    let _mount = Mount::tmpfs(&silt.warehouse(), "12m");
    let filler = silt.warehouse().join("filler.bin");
    std::fs::write(&filler, vec![7u8; 4 << 20]).expect("write the filler");
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({"silt.maintenance.enabled": "false"}));

    const ROWS: u64 = 10_000;
    let mut acked = 0u64;
    let mut refused = None;
    // Request `sequence` always carries the same rows, so a resent one is
    // the same request.
    let send = |sequence: u64| {
        http.post(
            EVENTS_ROWS,
            NDJSON,
            bulky(sequence * ROWS, ROWS),
            &sequence_headers("p", sequence),
        )
    };
    for sequence in 1..=100u64 {
        let reply = send(sequence);
        if reply.status == 200 {
            assert_eq!(reply.json()["rows_written"], ROWS, "{}", reply.body);
            acked += ROWS;
            continue;
        }
        let problem = assert_problem(&reply, 507);
        assert_eq!(
            problem["type"], "https://silt.dev/problems/insufficient-storage",
            "{problem}"
        );
        refused = Some(sequence);
        break;
    }
    let refused = refused.expect("12 MiB never filled up");
    assert!(acked > 0, "the first request already found the disk full");

    // A statement that writes answers 507 too (or fits), never 500.
    let insert = http.post_json(
        "/v1/sql",
        &json!({"sql": "INSERT INTO events SELECT id + 10000000, email, ts, day FROM events"}),
    );
    assert!(
        insert.status == 507,
        "INSERT on a full disk answered {}: {}",
        insert.status,
        insert.body
    );

    let table = silt.table_path("events");
    let rows = peer(&["read", "deltalake", &table, "--columns", "id"]);
    assert_eq!(
        rows.as_array().map(|r| r.len() as u64),
        Some(acked),
        "Python deltalake reads exactly the acknowledged rows"
    );

    std::fs::remove_file(&filler).expect("free the filler");
    let reply = send(refused);
    assert_eq!(reply.status, 200, "after freeing space: {}", reply.body);
    assert_eq!(reply.json()["duplicate"], false, "{}", reply.body);
    let reply = http.post_json("/v1/sql", &json!({"sql": "SELECT count(*) FROM events"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows"][0][0], acked + ROWS);
}
