//! Views and CREATE OR REPLACE TABLE through the real binary (issue 14):
//! a view made over HTTP is seen by the CLI and by the server after a
//! restart, time travel inside it holds, roles are checked as for CREATE
//! TABLE; a table replaced with a new schema reads back in Python
//! deltalake with the new schema, and its old version by `load_as_version`.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{Server, assert_problem};

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

fn sql_as(server: &Server, token: &str, statement: &str) -> crate::server::Reply {
    server
        .http()
        .with_token(token)
        .post_json("/v1/sql", &json!({ "sql": statement }))
}

fn ok(server: &Server, token: &str, statement: &str) -> Value {
    let reply = sql_as(server, token, statement);
    assert_eq!(reply.status, 200, "{statement}: {}", reply.body);
    reply.json()
}

#[test]
fn a_view_lives_in_the_warehouse_seen_by_the_cli_and_after_a_restart() {
    let silt = Silt::new();
    let mut server = Server::start_with_config(&silt, TOKENS);
    ok(&server, "o-token", "CREATE TABLE t (id BIGINT, v STRING)");
    ok(&server, "w-token", "INSERT INTO t VALUES (1, 'a')");
    ok(&server, "w-token", "INSERT INTO t VALUES (2, 'b'), (3, 'c')");

    // creating a view is DDL, as CREATE TABLE: operators only
    for token in ["r-token", "w-token"] {
        let reply = sql_as(
            &server,
            token,
            "CREATE VIEW first AS SELECT * FROM t VERSION AS OF 1",
        );
        assert_problem(&reply, 403);
    }
    ok(
        &server,
        "o-token",
        "CREATE VIEW first AS SELECT * FROM t VERSION AS OF 1",
    );
    ok(
        &server,
        "o-token",
        "CREATE VIEW big AS SELECT id FROM t WHERE id > 1",
    );

    // a reader reads it
    let rows = ok(&server, "r-token", "SELECT id, v FROM first");
    assert_eq!(rows["rows"], json!([[1, "a"]]));

    // another process on the same warehouse (the CLI, embedded) sees it
    assert_eq!(silt.rows("SELECT count(*) FROM big"), vec![json!([2])]);
    let tables = silt.rows("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
    assert_eq!(
        tables,
        vec![
            json!(["big", "VIEW"]),
            json!(["first", "VIEW"]),
            json!(["t", "BASE TABLE"])
        ]
    );
    // and a view made by the CLI is seen by the server
    silt.ok(&["sql", "CREATE VIEW from_cli AS SELECT max(id) AS highest FROM t"]);
    assert_eq!(
        ok(&server, "r-token", "SELECT highest FROM from_cli")["rows"],
        json!([[3]])
    );

    server.restart();
    assert_eq!(
        ok(&server, "r-token", "SELECT count(*) FROM first")["rows"],
        json!([[1]])
    );
    assert_eq!(
        ok(&server, "r-token", "SELECT count(*) FROM big")["rows"],
        json!([[2]])
    );

    // dropping the table leaves a view that says what is missing (404)
    ok(&server, "o-token", "DROP TABLE t");
    let reply = sql_as(&server, "r-token", "SELECT * FROM big");
    let problem = assert_problem(&reply, 404);
    let detail = problem["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains("view 'big'") && detail.contains("silt.public.t' not found"),
        "{detail}"
    );
    ok(&server, "o-token", "DROP VIEW big");
    assert_eq!(silt.run(&["sql", "SELECT * FROM big"]).code, Some(3));
}

#[test]
fn python_deltalake_reads_a_replaced_table_and_its_old_version() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE r (id BIGINT, name STRING)"]);
    silt.ok(&["sql", "INSERT INTO r VALUES (1, 'a'), (2, 'b')"]);
    silt.ok(&[
        "sql",
        "CREATE OR REPLACE TABLE r AS SELECT id * 10 AS k, CAST(id AS DOUBLE) / 4 AS score FROM r",
    ]);
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
path = sys.argv[1]
now = DeltaTable(path)
old = DeltaTable(path)
old.load_as_version(1)
print(json.dumps({
    "version": now.version(),
    "columns": [f.name for f in now.schema().fields],
    "rows": sorted(now.to_pyarrow_table().to_pylist(), key=lambda r: r["k"]),
    "old_columns": [f.name for f in old.schema().fields],
    "old_rows": sorted(old.to_pyarrow_table().to_pylist(), key=lambda r: r["id"]),
    "history": [h["operation"] for h in now.history()],
}))
sys.stdout.flush()
os._exit(0)
"#;
    let out = Command::new(python())
        .args(["-c", script, &silt.table_path("r")])
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("python prints JSON");
    assert_eq!(seen["version"], json!(2), "{seen}");
    assert_eq!(seen["columns"], json!(["k", "score"]), "{seen}");
    assert_eq!(
        seen["rows"],
        json!([{"k": 10, "score": 0.25}, {"k": 20, "score": 0.5}]),
        "{seen}"
    );
    assert_eq!(seen["old_columns"], json!(["id", "name"]), "{seen}");
    assert_eq!(
        seen["old_rows"],
        json!([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]),
        "{seen}"
    );
    assert_eq!(seen["history"][0], json!("CREATE OR REPLACE TABLE"), "{seen}");
}
