//! Issue 12's ingest contract against the real `silt serve` and `silt
//! ingest`, read back by Python deltalake: the README's timestamps, JSON
//! array bodies, MAP columns, nested fields never dropped, and tables
//! dropped and re-created under a running server.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{Http, NDJSON, Server, assert_problem, detail, sequence_headers};

const JSON: &str = "application/json";

/// Runs a Python snippet with the peer venv (deltalake, pyarrow); `argv[1..]`
/// are `args`; returns what it printed as JSON.
fn py(script: &str, args: &[&str]) -> Value {
    // Leave without the interpreter's shutdown, as peer.py does: deltalake's
    // runtime threads can abort it there ("terminate called without an
    // active exception"), which made this test flaky.
    let script = format!("{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let out = Command::new(python())
        .arg("-c")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The table's rows as Python deltalake reads them (sorted by `key`), with
/// timestamps as ISO text and maps as lists of pairs.
fn read_rows(silt: &Silt, table: &str, key: &str) -> Vec<Value> {
    let script = r#"
import json, sys, datetime
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1]).to_pyarrow_table().sort_by(sys.argv[2])
def norm(v):
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, tuple):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v
print(json.dumps([{k: norm(v) for k, v in row.items()} for row in t.to_pylist()]))
"#;
    py(script, &[&silt.table_path(table), key])
        .as_array()
        .expect("rows")
        .clone()
}

/// The table's schema as Python deltalake sees it (its JSON form).
fn delta_schema(silt: &Silt, table: &str) -> Value {
    let script = r#"
import json, sys
from deltalake import DeltaTable
print(DeltaTable(sys.argv[1]).schema().to_json())
"#;
    py(script, &[&silt.table_path(table)])
}

/// Parquet files in the table's directory, and those its latest version
/// references: after any failure the two must be the same (no orphans).
fn files(silt: &Silt, table: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let on_disk = std::fs::read_dir(silt.warehouse().join(table))
        .expect("table dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    let script = r#"
import json, sys, os
from deltalake import DeltaTable
print(json.dumps([os.path.basename(u) for u in DeltaTable(sys.argv[1]).file_uris()]))
"#;
    let live = py(script, &[&silt.table_path(table)])
        .as_array()
        .expect("uris")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    (on_disk, live)
}

fn sql(http: &Http, statement: &str) -> Value {
    let reply = http.post(
        "/v1/sql",
        JSON,
        json!({ "sql": statement }).to_string().into_bytes(),
        &[],
    );
    assert_eq!(reply.status, 200, "{statement}: {} {}", reply.status, reply.body);
    reply.json()
}

fn rows_path(table: &str) -> String {
    format!("/v1/tables/{table}/rows")
}

fn ingested(reply: &crate::server::Reply, table: &str, rows: u64) -> Value {
    assert_eq!(
        reply.status, 200,
        "ingest answered {}: {}",
        reply.status, reply.body
    );
    let body = reply.json();
    assert_eq!(body["table"], table, "{body}");
    assert_eq!(body["rows_written"], rows, "{body}");
    body
}

const README_EVENTS: &[u8] = b"{\"id\":1,\"user\":\"ann\",\"ts\":\"2026-11-25T10:00:00Z\"}\n{\"id\":2,\"user\":\"bob\",\"ts\":1764064800}\n";

/// The README's first example: one `ts` field with RFC 3339 text and an
/// epoch number (seconds) into a TIMESTAMP column — over HTTP and through
/// `silt ingest`.
#[test]
fn readme_example_mixes_rfc3339_and_epoch_seconds() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    let create = json!({"name":"events","columns":[
        {"name":"id","type":"BIGINT","nullable":false},
        {"name":"user","type":"STRING"},
        {"name":"ts","type":"TIMESTAMP"}]});
    let reply = http.post_json("/v1/tables", &create);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = http.post(
        &rows_path("events"),
        NDJSON,
        README_EVENTS.to_vec(),
        &sequence_headers("loader-1", 1),
    );
    let body = ingested(&reply, "events", 2);
    assert_eq!(body["version"], 1, "{body}");
    let rows = read_rows(&silt, "events", "id");
    assert_eq!(rows[0]["ts"], "2026-11-25T10:00:00+00:00", "{rows:?}");
    assert_eq!(
        rows[1]["ts"], "2025-11-25T10:00:00+00:00",
        "epoch seconds: {rows:?}"
    );

    silt.ok(&[
        "sql",
        "CREATE TABLE cli_events (id BIGINT NOT NULL, user STRING, ts TIMESTAMP)",
    ]);
    let file = silt.file("events.ndjson", README_EVENTS);
    let out = silt.ok(&["ingest", "cli_events", &file]);
    assert_eq!(out.trim(), "ingested 2 rows into cli_events (version 1)");
    let rows = read_rows(&silt, "cli_events", "id");
    assert_eq!(rows[0]["ts"], "2026-11-25T10:00:00+00:00", "{rows:?}");
    assert_eq!(rows[1]["ts"], "2025-11-25T10:00:00+00:00", "{rows:?}");
}

/// `Content-Type: application/json` with a JSON array of objects is taken
/// like NDJSON; the body size limit holds; a 100,000-deep array is a 400,
/// and the server is still up.
#[test]
fn a_json_array_body_is_ingested_and_deep_nesting_is_refused() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, "[ingest]\nmax_body_bytes = 1048576\n");
    let http = server.http();
    let create = json!({"name":"a","columns":[
        {"name":"id","type":"BIGINT","nullable":false},
        {"name":"ts","type":"TIMESTAMP"}]});
    assert_eq!(http.post_json("/v1/tables", &create).status, 201);
    let body = br#"[{"id":1,"ts":"2026-11-25T10:00:00Z"},
                    {"id":2,"ts":1764064800}]"#;
    let reply = http.post(&rows_path("a"), JSON, body.to_vec(), &[]);
    ingested(&reply, "a", 2);
    let reply = http.post(
        &rows_path("a"),
        "application/json; charset=utf-8",
        b"[]".to_vec(),
        &[],
    );
    ingested(&reply, "a", 0);

    for deep in [vec![b'['; 100_000], {
        let mut v = b"[{\"id\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 100_000));
        v.extend(std::iter::repeat_n(b']', 100_000));
        v.extend(b"}]");
        v
    }] {
        let reply = http.post(&rows_path("a"), JSON, deep, &[]);
        assert!(
            (400..500).contains(&reply.status),
            "{} {}",
            reply.status,
            reply.body
        );
    }
    let reply = http.post(&rows_path("a"), JSON, b"[1, 2]".to_vec(), &[]);
    assert_problem(&reply, 400);
    let mut big = b"[".to_vec();
    while big.len() < 1_100_000 {
        big.extend(b"{\"id\":1},");
    }
    big.extend(b"{\"id\":1}]");
    let reply = http.post(&rows_path("a"), JSON, big, &[]);
    assert_problem(&reply, 413);
    // The refused body is left unread and the connection closes; the answer
    // says so, or a keep-alive client's next request fails (IncompleteMessage).
    assert_eq!(
        reply.headers.get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    assert_eq!(http.get("/healthz").status, 200);
    assert_eq!(read_rows(&silt, "a", "id").len(), 2);
}

/// A MAP column (table written by Python deltalake with a pyarrow map type)
/// takes JSON objects.
#[test]
fn json_objects_become_map_values() {
    let silt = Silt::new();
    std::fs::create_dir_all(silt.warehouse()).expect("warehouse dir");
    let script = r#"
import sys, pyarrow as pa
from deltalake import write_deltalake
schema = pa.schema([("id", pa.int64()), ("attrs", pa.map_(pa.string(), pa.int64()))])
write_deltalake(sys.argv[1], pa.table({"id": pa.array([], pa.int64()), "attrs": pa.array([], schema.field("attrs").type)}, schema=schema))
print("{}")
"#;
    py(script, &[&silt.table_path("m")]);
    let server = Server::start(&silt);
    let http = server.http();
    let body = b"{\"id\":1,\"attrs\":{\"a\":1,\"b\":2}}\n{\"id\":2,\"attrs\":{}}\n{\"id\":3}\n".to_vec();
    ingested(&http.post(&rows_path("m"), NDJSON, body, &[]), "m", 3);
    let rows = read_rows(&silt, "m", "id");
    assert_eq!(rows[0]["attrs"], json!([["a", 1], ["b", 2]]), "{rows:?}");
    assert_eq!(rows[1]["attrs"], json!([]), "{rows:?}");
    assert_eq!(rows[2]["attrs"], Value::Null, "{rows:?}");
}

/// A nested field the table lacks (`customer.address.country`) is a 422
/// naming its path, never dropped — NDJSON and Parquet bodies; with
/// `?evolve=true` it is added to the table's schema.
#[test]
fn nested_unknown_fields_are_refused_by_path_or_added_with_evolve() {
    let silt = Silt::new();
    std::fs::create_dir_all(silt.warehouse()).expect("warehouse dir");
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
from deltalake import write_deltalake
address = pa.struct([("city", pa.string())])
schema = pa.schema([("id", pa.int64()), ("customer", pa.struct([("address", address)]))])
write_deltalake(sys.argv[1], pa.Table.from_pylist([], schema=schema))
wide = pa.struct([("address", pa.struct([("city", pa.string()), ("country", pa.string())]))])
rows = pa.Table.from_pylist([{"id": 7, "customer": {"address": {"city": "Oslo", "country": "NO-SECRET"}}}],
    schema=pa.schema([("id", pa.int64()), ("customer", wide)]))
pq.write_table(rows, sys.argv[2])
print("{}")
"#;
    let parquet = silt.scratch("wide.parquet");
    py(script, &[&silt.table_path("c"), &parquet.to_string_lossy()]);
    let parquet = std::fs::read(&parquet).expect("parquet");
    let server = Server::start(&silt);
    let http = server.http();
    let ndjson =
        b"{\"id\":1,\"customer\":{\"address\":{\"city\":\"Oslo\",\"country\":\"NO-SECRET\"}}}\n".to_vec();
    for (media, body) in [
        (NDJSON, ndjson.clone()),
        ("application/vnd.apache.parquet", parquet.clone()),
    ] {
        let problem = assert_problem(&http.post(&rows_path("c"), media, body, &[]), 422);
        let text = detail(&problem);
        assert!(text.contains("customer.address.country"), "{media}: {text}");
        assert!(
            !text.contains("SECRET") && !text.contains("Oslo"),
            "{media}: {text}"
        );
    }
    assert!(read_rows(&silt, "c", "id").is_empty());

    ingested(
        &http.post(&format!("{}?evolve=true", rows_path("c")), NDJSON, ndjson, &[]),
        "c",
        1,
    );
    ingested(
        &http.post(&rows_path("c"), "application/vnd.apache.parquet", parquet, &[]),
        "c",
        1,
    );
    let schema = delta_schema(&silt, "c").to_string();
    assert!(schema.contains("\"country\""), "{schema}");
    let rows = read_rows(&silt, "c", "id");
    assert_eq!(rows[0]["customer"]["address"]["country"], "NO-SECRET", "{rows:?}");
    assert_eq!(rows[1]["customer"]["address"]["country"], "NO-SECRET", "{rows:?}");
}

/// DROP TABLE + CREATE TABLE over `POST /v1/sql`, then ingest: the new table
/// gets the rows (same schema and new schema), holds nothing of the old one,
/// and has no file its log does not reference.
#[test]
fn drop_and_recreate_over_sql_then_ingest() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    sql(&http, "CREATE TABLE d (id BIGINT NOT NULL, note STRING)");
    for sequence in 1..=3 {
        let body = format!("{{\"id\":{sequence}}}\n").into_bytes();
        ingested(
            &http.post(&rows_path("d"), NDJSON, body, &sequence_headers("p", sequence)),
            "d",
            1,
        );
    }
    sql(&http, "DROP TABLE d");
    sql(&http, "CREATE TABLE d (id BIGINT NOT NULL, note STRING)");
    // The producer starts again: a new table has no sequences.
    let reply = http.post(
        &rows_path("d"),
        NDJSON,
        b"{\"id\":10}\n".to_vec(),
        &sequence_headers("p", 1),
    );
    let body = ingested(&reply, "d", 1);
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(read_rows(&silt, "d", "id"), vec![json!({"id": 10, "note": null})]);
    let (on_disk, live) = files(&silt, "d");
    assert_eq!(on_disk, live);

    sql(&http, "DROP TABLE d");
    sql(&http, "CREATE TABLE d (key STRING NOT NULL)");
    let problem = assert_problem(
        &http.post(&rows_path("d"), NDJSON, b"{\"id\":11}\n".to_vec(), &[]),
        422,
    );
    assert!(!detail(&problem).contains("11"), "{problem}");
    let body = ingested(
        &http.post(&rows_path("d"), NDJSON, b"{\"key\":\"k\"}\n".to_vec(), &[]),
        "d",
        1,
    );
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(read_rows(&silt, "d", "key"), vec![json!({"key": "k"})]);
    let (on_disk, live) = files(&silt, "d");
    assert_eq!(on_disk, live);
}

/// The same with the re-create done by another process (`silt sql`
/// embedded on the warehouse) while the server keeps its committer: never
/// a 500, never rows in the old schema in the new table, no orphan files.
#[test]
fn recreate_by_the_embedded_cli_while_the_server_runs() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    sql(&http, "CREATE TABLE d (id BIGINT NOT NULL, note STRING)");
    for n in 1..=4 {
        let body = format!("{{\"id\":{n}}}\n").into_bytes();
        ingested(&http.post(&rows_path("d"), NDJSON, body, &[]), "d", 1);
    }
    // Same schema, re-created behind the server's back.
    silt.ok(&[
        "sql",
        "DROP TABLE d; CREATE TABLE d (id BIGINT NOT NULL, note STRING)",
    ]);
    let body = ingested(
        &http.post(&rows_path("d"), NDJSON, b"{\"id\":10}\n".to_vec(), &[]),
        "d",
        1,
    );
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(read_rows(&silt, "d", "id"), vec![json!({"id": 10, "note": null})]);
    let (on_disk, live) = files(&silt, "d");
    assert_eq!(on_disk, live);

    // Re-created with a new schema and already written to by the other
    // process past the server's version: the old schema's rows are refused.
    silt.ok(&["sql", "DROP TABLE d; CREATE TABLE d (key STRING NOT NULL)"]);
    for n in 0..3 {
        silt.ok(&["sql", &format!("INSERT INTO d VALUES ('cli{n}')")]);
    }
    let reply = http.post(&rows_path("d"), NDJSON, b"{\"id\":12}\n".to_vec(), &[]);
    assert_problem(&reply, 422);
    let body = ingested(
        &http.post(&rows_path("d"), NDJSON, b"{\"key\":\"srv\"}\n".to_vec(), &[]),
        "d",
        1,
    );
    assert_eq!(body["version"], 4, "{body}");
    let keys: Vec<Value> = read_rows(&silt, "d", "key")
        .into_iter()
        .map(|r| r["key"].clone())
        .collect();
    assert_eq!(
        keys,
        vec![json!("cli0"), json!("cli1"), json!("cli2"), json!("srv")]
    );
    let (on_disk, live) = files(&silt, "d");
    assert_eq!(on_disk, live);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
