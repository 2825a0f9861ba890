//! Issue 11 (hardening), the SQL path over HTTP and Flight SQL: no request
//! crashes or hangs the server; internal tables stay internal; ADBC accepts
//! the answers to DML and to queries over partitioned tables.
//!
//! Each test drives a real `silt serve` with tokens of every role.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{Server, assert_problem, detail};

const TOKENS: &str = r#"
[[auth.tokens]]
token = "r-token"
role = "reader"

[[auth.tokens]]
token = "w-token"
role = "writer"

[[auth.tokens]]
token = "o-token"
role = "operator"
"#;

/// The query of issue 11 item 3: a cross join that never waits on I/O.
const HANGING: &str =
    "SELECT count(*) FROM generate_series(1,100000000) a CROSS JOIN generate_series(1,100000000) b";

fn sum_chain(terms: usize) -> String {
    format!("SELECT {}", vec!["1"; terms].join("+"))
}

fn healthz_ok(server: &Server) -> bool {
    server.http().get("/healthz").status == 200
}

#[test]
fn a_deep_statement_without_a_token_is_401_and_the_server_lives() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    let deep = json!({ "sql": sum_chain(30_000) });
    // Regression: this aborted the process (stack overflow) before the token was looked at.
    let reply = server.http().post_json("/v1/sql", &deep);
    assert_problem(&reply, 401);
    let reply = server.http().with_token("nope").post_json("/v1/sql", &deep);
    assert_problem(&reply, 401);
    // With a token: refused before parsing, as too deep.
    let reply = server.http().with_token("r-token").post_json("/v1/sql", &deep);
    let problem = assert_problem(&reply, 400);
    assert!(detail(&problem).contains("nested too deeply"), "{problem}");
    assert!(healthz_ok(&server));
    // RFC 7235: the scheme is case-insensitive.
    let reply = server.http().post(
        "/v1/sql",
        "application/json",
        br#"{"sql":"SELECT 41+1 AS x"}"#.to_vec(),
        &[("authorization", "BEARER r-token".to_string())],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows"], json!([[42]]));
}

#[test]
fn statements_at_the_depth_limit_run_and_every_deep_shape_is_refused() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    let reader = server.http().with_token("r-token");
    // Just inside the limit: parsed, planned, optimised and run on the
    // query threads' stacks (this overflowed a 2 MiB worker stack).
    let reply = reader.post_json("/v1/sql", &json!({ "sql": sum_chain(900) }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows"], json!([[900]]));
    let ors = format!(
        "SELECT count(*) FROM (VALUES (1)) v(a) WHERE {}",
        vec!["a = 2"; 450].join(" OR ")
    );
    let reply = reader.post_json("/v1/sql", &json!({ "sql": ors }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows"], json!([[0]]));

    let deep_shapes = [
        sum_chain(5_000),
        format!("SELECT {} true", "NOT ".repeat(5_000)),
        format!("SELECT {}", "- ".repeat(5_000) + "1"),
        vec!["SELECT 1"; 5_000].join(" UNION ALL "),
        format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!(
            "SELECT {} 1 {}",
            "CASE WHEN true THEN".repeat(2_000),
            " END".repeat(2_000)
        ),
        format!(
            "SELECT 1 FROM (VALUES (1)) v(a) WHERE {}",
            vec!["a = 2"; 5_000].join(" AND ")
        ),
    ];
    for sql in deep_shapes {
        let reply = reader.post_json("/v1/sql", &json!({ "sql": sql }));
        let problem = assert_problem(&reply, 400);
        assert!(
            detail(&problem).contains("nested too deeply"),
            "{}…: {problem}",
            &sql[..40]
        );
    }
    // Longer than [sql] max_statement_bytes (1 MiB by default).
    let long = format!("SELECT 1 -- {}", "x".repeat(1_100_000));
    let problem = assert_problem(&reader.post_json("/v1/sql", &json!({ "sql": long })), 400);
    assert!(detail(&problem).contains("bytes long"), "{problem}");
    assert!(healthz_ok(&server));
}

#[test]
fn a_long_in_list_on_a_delta_table_runs_and_logs_short() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"]);
    silt.ok(&["sql", "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (20000, 'c')"]);
    let server = Server::start_with_config(&silt, TOKENS);
    let values: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let sql = format!("SELECT count(*) FROM t WHERE id IN ({})", values.join(", "));
    // Regression: 2,000 values overflowed the stack in planning (debug build).
    let reply = server
        .http()
        .with_token("r-token")
        .post_json("/v1/sql", &json!({ "sql": sql }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows"], json!([[2]]));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("sql statement") && l.contains("FROM t WHERE id IN"))
        .unwrap_or_else(|| panic!("no statement line:\n{log}"));
    assert!(line.contains("IN (?, ?, ?, …(+9997))"), "{line}");
    assert!(line.len() < 600, "statement log line is {} bytes", line.len());
}

#[test]
fn four_hanging_queries_time_out_while_healthz_stays_fast() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    let http = server.http().with_token("r-token");
    let done = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (done, latencies, health) = (done.clone(), latencies.clone(), server.http());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = health.get("/healthz").status;
                latencies.lock().expect("lock").push((status, started.elapsed()));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let http = http.clone();
            std::thread::spawn(move || {
                let reply = http.post_json("/v1/sql", &json!({ "sql": HANGING, "timeout_ms": 3000 }));
                (reply.status, started.elapsed())
            })
        })
        .collect();
    for reader in readers {
        let (status, elapsed) = reader.join().expect("reader thread");
        assert_eq!(status, 408);
        assert!(elapsed < Duration::from_secs(20), "408 came after {elapsed:?}");
    }
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    prober.join().expect("prober");
    let mut latencies = latencies.lock().expect("lock").clone();
    assert!(latencies.len() >= 10, "{latencies:?}");
    assert!(
        latencies.iter().all(|(status, _)| *status == 200),
        "{latencies:?}"
    );
    latencies.sort_by_key(|(_, latency)| *latency);
    let median = latencies[latencies.len() / 2].1;
    let worst = latencies[latencies.len() - 1].1;
    eprintln!("healthz while 4 readers hang: median {median:?}, worst {worst:?}");
    // The issue's bar is 100 ms; the worst probe gets slack for this
    // (debug, shared) machine running other tests at the same time.
    assert!(median < Duration::from_millis(100), "median {median:?}");
    assert!(worst < Duration::from_secs(2), "worst {worst:?}");
    // The aborted queries released their threads: a small query answers at once.
    let reply = http.post_json("/v1/sql", &json!({ "sql": "SELECT 1 AS one" }));
    assert_eq!(reply.json()["rows"], json!([[1]]));
}

#[test]
fn sigterm_stops_the_server_within_its_drain_timeout_during_a_hanging_query() {
    let silt = Silt::new();
    let config = format!("{TOKENS}\n[server]\ndrain_timeout_ms = 2000\n");
    let mut server = Server::start_with_config(&silt, &config);
    let http = server.http().with_token("r-token");
    let query = std::thread::spawn(move || {
        let _ = http.try_post(
            "/v1/sql",
            "application/json",
            json!({ "sql": HANGING }).to_string().into_bytes(),
            &[],
        );
    });
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let status = server.terminate();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    eprintln!("SIGTERM during a hanging query: exited in {took:?} with {status}");
    let _ = query.join();
}

#[test]
fn statements_beyond_the_role_cap_get_429() {
    let silt = Silt::new();
    let config = format!("{TOKENS}\n[sql]\nmax_concurrent_statements = 1\n");
    let server = Server::start_with_config(&silt, &config);
    let http = server.http().with_token("r-token");
    let long = {
        let http = http.clone();
        std::thread::spawn(move || {
            http.post_json("/v1/sql", &json!({ "sql": HANGING, "timeout_ms": 4000 }))
                .status
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let reply = http.post_json("/v1/sql", &json!({ "sql": "SELECT 1" }));
    let problem = assert_problem(&reply, 429);
    assert!(detail(&problem).contains("reader role"), "{problem}");
    // Other roles have their own permits.
    let reply = server
        .http()
        .with_token("w-token")
        .post_json("/v1/sql", &json!({ "sql": "SELECT 1" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(long.join().expect("long query"), 408);
    let reply = http.post_json("/v1/sql", &json!({ "sql": "SELECT 1" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn internal_tables_are_not_reachable_through_sql() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    let operator = server.http().with_token("o-token");
    let reply = operator.post_json(
        "/v1/sql",
        &json!({ "sql": "CREATE TABLE t (id BIGINT NOT NULL, email VARCHAR)" }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // An erasure makes the ledger exist.
    let reply = operator.post_json("/v1/erasures", &json!({ "subjects": ["someone@example.com"] }));
    assert_eq!(reply.status, 202, "{}", reply.body);
    let ledger_exists = || silt.warehouse().join("_silt_erasures").exists();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ledger_exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ledger_exists());

    for (token, sql) in [
        ("r-token", "SELECT raw FROM _silt_dead_letters"),
        ("r-token", "SELECT * FROM _silt_erasures"),
        ("r-token", "SELECT * FROM silt.public._SILT_ERASURES"),
        ("r-token", "SELECT * FROM t JOIN _silt_erasures e ON true"),
        ("r-token", "DESCRIBE HISTORY _silt_erasures"),
        (
            "w-token",
            "INSERT INTO _silt_erasures SELECT * FROM _silt_erasures",
        ),
        ("w-token", "DELETE FROM _silt_dead_letters"),
        ("w-token", "UPDATE _silt_erasures SET status = 'done'"),
        ("o-token", "DROP TABLE _silt_erasures"),
        ("o-token", "VACUUM _silt_erasures"),
        ("o-token", "CREATE TABLE _silt_mine (a INT)"),
        ("o-token", "SELECT * FROM _silt_erasures VERSION AS OF 0"),
    ] {
        let reply = server
            .http()
            .with_token(token)
            .post_json("/v1/sql", &json!({ "sql": sql }));
        let problem = assert_problem(&reply, 403);
        assert!(detail(&problem).contains("internal tables"), "{sql}: {problem}");
    }
    for sql in ["SHOW TABLES", "SELECT table_name FROM information_schema.tables"] {
        let reply = operator.post_json("/v1/sql", &json!({ "sql": sql }));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(!reply.body.contains("_silt_"), "{sql}: {}", reply.body);
        assert!(reply.body.contains("\"t\""), "{sql}: {}", reply.body);
    }
    // The ledger is not an erasure target either (schemathesis found a 500:
    // opening it raced its own compaction).
    let reply = operator.post_json(
        "/v1/erasures",
        &json!({ "subjects": ["a@example.com"], "tables": ["_silt_erasures"] }),
    );
    let problem = assert_problem(&reply, 400);
    assert!(detail(&problem).contains("internal to silt"), "{problem}");
}

fn adbc_hardening(uri: &str, token: &str) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/adbc_hardening.py");
    let out = Command::new(python())
        .arg(script)
        .arg(uri)
        .arg(token)
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "adbc_hardening.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn adbc_execute_of_dml_and_ddl_and_queries_over_partitioned_tables() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE p (id BIGINT NOT NULL, day VARCHAR) PARTITIONED BY (day)",
    ]);
    silt.ok(&["sql", "INSERT INTO p VALUES (1, 'mon'), (2, 'tue'), (3, 'tue')"]);
    let config = format!("{TOKENS}\n[sql]\nstatement_timeout_ms = 3000\n");
    let server = Server::start_with_config(&silt, &config);
    let doc = adbc_hardening(&server.flight_uri(), "o-token");
    // Regression: "endpoint 0 returned inconsistent schema" (dictionary vs utf8).
    assert_eq!(
        doc["partitioned"],
        json!([[1, "mon"], [2, "tue"], [3, "tue"]]),
        "{doc}"
    );
    // Regression: execute("INSERT …") raised, yet committed.
    assert_eq!(doc["insert_rowcount"], json!(2), "{doc}");
    assert_eq!(doc["create"], json!("ok"), "{doc}");
    assert_eq!(doc["drop"], json!("ok"), "{doc}");
    assert_eq!(doc["count_after"], json!(5), "{doc}");
    assert_eq!(silt.count("p", None), 5);
    // Flight SQL is held to [sql] statement_timeout_ms like /v1/sql (issue 12).
    let timed_out = doc["hanging"].as_str().unwrap_or("");
    assert!(timed_out.contains("did not finish within 3000 ms"), "{doc}");
    assert!(doc["hanging_seconds"].as_f64().unwrap_or(99.0) < 15.0, "{doc}");
    // Internal tables are not listed or readable over Flight SQL either.
    assert!(
        doc["internal"].as_str().unwrap_or("").contains("internal tables"),
        "{doc}"
    );
    assert!(!doc["tables"].to_string().contains("_silt_"), "{doc}");
    // Without a token a deep statement is refused as unauthenticated; the server lives.
    let unauthenticated = adbc_hardening(&server.flight_uri(), "-");
    assert!(
        unauthenticated["deep"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("unauthenticated"),
        "{unauthenticated}"
    );
    assert!(healthz_ok(&server));
}

/// A compressed Arrow IPC stream from pyarrow (ZSTD), or — with `forge` —
/// the same with every buffer's declared uncompressed length raised to 40 TB
/// (what the cargo-fuzz `arrow_ipc` target found: the server aborted).
fn compressed_ipc(forge: bool) -> Vec<u8> {
    let script = r#"
import sys, pyarrow as pa
t = pa.table({"id": pa.array(range(1000), pa.int64())})
sink = pa.BufferOutputStream()
with pa.ipc.new_stream(sink, t.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
    w.write_table(t)
sys.stdout.buffer.write(sink.getvalue().to_pybytes())
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut bytes = out.stdout;
    if forge {
        // A ZSTD frame starts 28 b5 2f fd; the 8 bytes before it are the
        // buffer's declared uncompressed length.
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let starts: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == magic)
            .map(|(i, _)| i)
            .collect();
        assert!(!starts.is_empty());
        for start in starts.into_iter().filter(|s| *s >= 8) {
            bytes[start - 8..start].copy_from_slice(&40_000_000_000_000i64.to_le_bytes());
        }
    }
    bytes
}

#[test]
fn a_compressed_arrow_ipc_body_is_refused_and_the_server_lives() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    let operator = server.http().with_token("o-token");
    let reply = operator.post_json(
        "/v1/sql",
        &json!({ "sql": "CREATE TABLE c (id BIGINT NOT NULL)" }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    for forge in [false, true] {
        let reply = server.http().with_token("w-token").post(
            "/v1/tables/c/rows",
            "application/vnd.apache.arrow.stream",
            compressed_ipc(forge),
            &[],
        );
        let problem = assert_problem(&reply, 400);
        assert!(detail(&problem).contains("compressed Arrow IPC"), "{problem}");
        assert!(healthz_ok(&server), "server died on a forged={forge} body");
    }
    let count = operator.post_json("/v1/sql", &json!({ "sql": "SELECT count(*) FROM c" }));
    assert_eq!(count.json()["rows"], json!([[0]]));
}
