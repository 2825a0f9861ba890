//! CHECK constraints and NOT NULL columns on every write path that is not
//! SQL (the SQL ones are in `crates/sql/tests/slt/constraints.slt`): HTTP
//! ingest (NDJSON, CSV, Arrow IPC, Parquet), Flight DoPut, CDC upserts,
//! `silt ingest`, and group commits, where only the violating request
//! fails. A refusal is a 422 naming the constraint and never the value;
//! nothing is committed. Python deltalake refuses the same rows on a table
//! silt created (the log is standard), and silt enforces a constraint that
//! Python deltalake added.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{
    EVENTS, EVENTS_ROWS, NDJSON, Server, assert_ingested, assert_problem, detail, event, ndjson,
    ndjson_values, producer, pyarrow_bytes,
};

/// The `ErrorKind::InvalidRows` problem type.
const INVALID_ROWS: &str = "https://silt.dev/problems/invalid-rows";

/// Runs SQL over HTTP and asserts it succeeded.
fn sql(server: &Server, statement: &str) -> Value {
    let reply = server.http().post_json("/v1/sql", &json!({ "sql": statement }));
    assert_eq!(reply.status, 200, "{statement}: {}", reply.body);
    reply.json()
}

fn count(silt: &Silt) -> i64 {
    silt.count(EVENTS, None)
}

/// The events table (see `server::events_spec`) with `id < 1000` as a CHECK
/// constraint added by ALTER TABLE, holding ids 0..3.
fn constrained_events(server: &Server) {
    sql(
        server,
        "CREATE TABLE events (id BIGINT NOT NULL, email VARCHAR, ts TIMESTAMP, day DATE) PARTITIONED BY (day)",
    );
    sql(
        server,
        "ALTER TABLE events ADD CONSTRAINT id_small CHECK (id < 1000)",
    );
    let reply = server.http().post(EVENTS_ROWS, NDJSON, ndjson(0..3), &[]);
    assert_ingested(&reply, 3);
}

/// A 422 problem naming `what`, quoting none of `values`.
fn assert_violation(reply: &crate::server::Reply, what: &str, values: &[&str]) {
    let problem = assert_problem(reply, 422);
    assert_eq!(problem["type"], INVALID_ROWS, "{problem}");
    let text = detail(&problem);
    assert!(text.contains(what), "detail names {what}: {text}");
    for value in values {
        assert!(!text.contains(value), "detail quotes the value {value}: {text}");
    }
}

#[test]
fn http_ingest_in_every_format_refuses_rows_that_violate_a_check_constraint() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    constrained_events(&server);
    let version = silt.version(EVENTS);
    let http = server.http();
    let named = "CHECK constraint 'id_small'";

    let reply = http.post(EVENTS_ROWS, NDJSON, ndjson_values([event(5), event(4321)]), &[]);
    assert_violation(&reply, named, &["4321", "user4321@example.com"]);

    let csv = "id,email,ts,day\n6,a@example.com,2026-11-25T10:00:00Z,2026-11-20\n7777,secret@example.com,2026-11-25T10:00:00Z,2026-11-20\n";
    let reply = http.post(EVENTS_ROWS, "text/csv", csv.as_bytes().to_vec(), &[]);
    assert_violation(&reply, named, &["7777", "secret@example.com"]);

    for (format, media_type) in [
        ("arrow", "application/vnd.apache.arrow.stream"),
        ("parquet", "application/vnd.apache.parquet"),
    ] {
        let body = pyarrow_bytes(&silt, format, 995, 10);
        let reply = http.post(EVENTS_ROWS, media_type, body, &[]);
        assert_violation(&reply, named, &["user1004@example.com"]);
    }

    // NOT NULL names the column, in the same kind of answer.
    let reply = http.post(
        EVENTS_ROWS,
        NDJSON,
        ndjson_values([json!({"id": null, "email": "n@example.com"})]),
        &[],
    );
    let problem = assert_problem(&reply, 422);
    assert!(detail(&problem).contains("'id'"), "{problem}");

    assert_eq!(silt.version(EVENTS), version, "nothing was committed");
    assert_eq!(count(&silt), 3);

    // Rows that satisfy the constraint still go in.
    let reply = http.post(EVENTS_ROWS, NDJSON, ndjson(10..12), &[]);
    assert_ingested(&reply, 2);
}

#[test]
fn flight_do_put_refuses_a_violating_batch_with_the_constraint_name() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    constrained_events(&server);
    let version = silt.version(EVENTS);
    let acks = producer(&[
        "flight",
        &server.flight_uri(),
        EVENTS,
        "--batches",
        "1",
        "--rows",
        "5",
        "--start",
        "2000",
        "--producer",
        "p1",
    ]);
    let last = acks.last().expect("an answer");
    let message = last["message"].as_str().unwrap_or_default();
    assert!(
        last.get("error").is_some(),
        "DoPut of violating rows answered {acks:?}"
    );
    assert!(message.contains("CHECK constraint 'id_small'"), "{message}");
    assert!(!message.contains("user2000@example.com"), "{message}");
    assert_eq!(silt.version(EVENTS), version);

    let acks = producer(&[
        "flight",
        &server.flight_uri(),
        EVENTS,
        "--batches",
        "1",
        "--rows",
        "5",
        "--start",
        "100",
        "--producer",
        "p1",
        "--first-sequence",
        "2",
    ]);
    assert!(acks[0]["version"].is_u64(), "{acks:?}");
    assert_eq!(count(&silt), 8);
}

/// Requests that land in one group commit (the table lingers 400 ms before
/// each commit): the violating ones answer 422, the others commit.
fn group_of_requests(server: &Server, path: &str, bodies: Vec<(bool, Vec<u8>)>) {
    let http = server.http();
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|(good, body)| {
            let http = http.clone();
            let path = path.to_string();
            std::thread::spawn(move || (good, http.post(&path, NDJSON, body, &[])))
        })
        .collect();
    for handle in handles {
        let (good, reply) = handle.join().expect("request thread");
        if good {
            assert_eq!(reply.status, 200, "{}", reply.body);
        } else {
            assert_violation(&reply, "CHECK constraint 'id_small'", &["5555"]);
        }
    }
}

#[test]
fn a_violating_request_in_a_group_commit_fails_alone() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    constrained_events(&server);
    sql(
        &server,
        "ALTER TABLE events SET TBLPROPERTIES ('silt.ingest.linger_ms' = '400')",
    );
    let before = silt.version(EVENTS);
    let mut bodies: Vec<(bool, Vec<u8>)> = (0..4)
        .map(|k| (true, ndjson(100 + k * 10..105 + k * 10)))
        .collect();
    bodies.insert(2, (false, ndjson_values([event(50), event(5555)])));
    group_of_requests(&server, EVENTS_ROWS, bodies);
    assert_eq!(count(&silt), 3 + 4 * 5);
    let commits = silt.version(EVENTS) - before;
    assert!(commits < 4, "the good requests were grouped ({commits} commits)");
}

#[test]
fn cdc_upserts_are_checked_and_a_violating_request_fails_alone() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    sql(
        &server,
        "CREATE TABLE events (id BIGINT NOT NULL, email VARCHAR, seq BIGINT, CONSTRAINT id_small CHECK (id < 1000)) \
         TBLPROPERTIES ('silt.ingest.linger_ms' = '400')",
    );
    let upsert = "/v1/tables/events/rows?mode=upsert&keys=id&sequence=seq";
    let row = |id: u64, seq: u64| json!({"id": id, "email": format!("u{id}@example.com"), "seq": seq});
    let mut bodies: Vec<(bool, Vec<u8>)> = (0..3)
        .map(|k| (true, ndjson_values([row(k, 1), row(k + 10, 1)])))
        .collect();
    bodies.push((false, ndjson_values([row(20, 1), row(5555, 1)])));
    group_of_requests(&server, upsert, bodies);
    assert_eq!(count(&silt), 6);

    // An update of an existing key to violating values is refused too.
    let reply = server.http().post(
        upsert,
        NDJSON,
        ndjson_values([json!({"id": 1, "email": null, "seq": 2}), row(5555, 2)]),
        &[],
    );
    assert_violation(&reply, "CHECK constraint 'id_small'", &["5555"]);
    assert_eq!(
        silt.scalar("SELECT email FROM events WHERE id = 1"),
        json!("u1@example.com")
    );
}

#[test]
fn cli_ingest_refuses_violating_rows_with_exit_code_4() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE t (id BIGINT NOT NULL, amount DOUBLE, CONSTRAINT positive CHECK (amount > 0))",
    ]);
    let file = silt.file(
        "rows.ndjson",
        b"{\"id\": 1, \"amount\": 2.5}\n{\"id\": 2, \"amount\": -98765.5}\n",
    );
    let run = silt.run(&["ingest", "t", &file]);
    assert_eq!(run.code, Some(4), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("CHECK constraint 'positive'"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("98765"), "{}", run.stderr);
    assert_eq!(silt.count("t", None), 0);
}

/// Runs a Python snippet (ends with `os._exit(0)`) and returns its JSON line.
fn python_json(script: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .args(["-c", script])
        .args(args)
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("python prints JSON")
}

#[test]
fn python_deltalake_and_duckdb_agree_with_silt_constraints() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE t (id BIGINT NOT NULL, amount DOUBLE CHECK (amount > 0))",
    ]);
    silt.ok(&["sql", "INSERT INTO t VALUES (1, 2.5)"]);
    let path = silt.table_path("t");

    // Python deltalake reads silt's constraint from the log and refuses a
    // violating append itself; DuckDB reads the table.
    let script = r#"
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
rows = pa.table({"id": pa.array([2], pa.int64()), "amount": pa.array([-1.0], pa.float64())})
try:
    write_deltalake(path, rows, mode="append")
    refused = None
except Exception as e:
    refused = type(e).__name__
good = pa.table({"id": pa.array([3], pa.int64()), "amount": pa.array([4.0], pa.float64())})
write_deltalake(path, good, mode="append")
import duckdb
sys.path.insert(0, sys.argv[2])
from peer import duckdb_extension
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{duckdb_extension()}'")
duck = con.execute(f"SELECT count(*) FROM delta_scan('{path}')").fetchone()[0]
print(json.dumps({"refused": refused, "config": DeltaTable(path).metadata().configuration, "duckdb": duck}))
sys.stdout.flush()
os._exit(0)
"#;
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/python");
    let out = python_json(script, &[&path, peers]);
    assert!(
        out["refused"].is_string(),
        "Python deltalake accepted a violating row: {out}"
    );
    assert_eq!(
        out["config"]["delta.constraints.amount_check"], "amount > 0",
        "{out}"
    );
    assert_eq!(out["duckdb"], 2, "{out}");
    assert_eq!(silt.count("t", None), 2);

    // A table Python deltalake made, with a constraint it added: silt
    // enforces it on ingest.
    let theirs = silt.warehouse().join("theirs");
    let script = r#"
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
write_deltalake(path, pa.table({"id": pa.array([1], pa.int64()), "qty": pa.array([3], pa.int64())}))
DeltaTable(path).alter.add_constraint({"qty_positive": "qty > 0"})
print(json.dumps({"version": DeltaTable(path).version()}))
sys.stdout.flush()
os._exit(0)
"#;
    python_json(script, &[&theirs.to_string_lossy()]);
    let file = silt.file("bad.ndjson", b"{\"id\": 2, \"qty\": -4}\n");
    let run = silt.run(&["ingest", "theirs", &file]);
    assert_eq!(run.code, Some(4), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("CHECK constraint 'qty_positive'"),
        "{}",
        run.stderr
    );
    let run = silt.run(&["sql", "INSERT INTO theirs VALUES (3, 0)"]);
    assert_eq!(run.code, Some(4), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("CHECK constraint 'qty_positive'"),
        "{}",
        run.stderr
    );
    assert_eq!(silt.count("theirs", None), 1);
}
