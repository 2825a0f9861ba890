//! Flight SQL on the Flight port, driven by ADBC (`adbc-driver-flightsql`):
//! a query, a prepared statement with two parameter values, catalog
//! metadata and executeUpdate, with bearer-token auth; each statement logged
//! once with its literals redacted.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::Server;

const TOKENS: &str = r#"
[[auth.tokens]]
token = "w-token"
role = "writer"
"#;

fn adbc(uri: &str, token: Option<&str>) -> (bool, String, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/adbc_client.py");
    let mut command = Command::new(python());
    command.arg(script).arg(uri).stdin(Stdio::null());
    if let Some(token) = token {
        command.arg(token);
    }
    let out = command.output().expect("runs python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn adbc_runs_a_query_a_prepared_statement_metadata_and_an_update() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"]);
    silt.ok(&["sql", "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"]);
    let server = Server::start_with_config(&silt, TOKENS);

    let (ok, stdout, stderr) = adbc(&server.flight_uri(), Some("w-token"));
    assert!(ok, "adbc client failed:\n{stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(doc["query"], json!([[1, "a"], [2, "b"], [3, "c"]]));
    // The same prepared statement, bound to 0 then 2.
    assert_eq!(doc["prepared"], json!([3, 1]));
    assert_eq!(doc["catalogs"], json!(["silt"]));
    assert_eq!(doc["tables"], json!(["t"]));
    assert_eq!(doc["update_count"], json!(1));
    assert_eq!(doc["count_after"], json!(4));
    assert_eq!(silt.count("t", None), 4);

    // Each statement run is logged once, its literals redacted.
    let log = server.log();
    let flight_lines = |statement: &str| {
        log.lines()
            .filter(|l| l.contains("protocol=\"flight\"") && l.contains(statement))
            .count()
    };
    assert_eq!(
        flight_lines("command=\"statement_update\" statement=\"INSERT INTO t VALUES (?, ?)\""),
        1,
        "{log}"
    );
    assert_eq!(
        flight_lines("command=\"prepared_query\" statement=\"SELECT count(*) AS n FROM t WHERE id > $1\""),
        2,
        "{log}"
    );
    assert_eq!(
        flight_lines("statement=\"SELECT id, name FROM t ORDER BY id\""),
        1,
        "{log}"
    );
    assert!(!log.contains("'z'"), "server log holds a literal:\n{log}");

    // Without a token the server answers Unauthenticated and nothing runs.
    let (ok, _, stderr) = adbc(&server.flight_uri(), None);
    assert!(!ok);
    assert!(
        stderr.contains("UNAUTHENTICATED") || stderr.contains("Unauthenticated"),
        "{stderr}"
    );
    assert_eq!(silt.count("t", None), 4);
}
