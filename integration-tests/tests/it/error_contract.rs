//! One table of error cases, each run on every path that can reach it —
//! embedded `silt`, `silt … --server`, the HTTP API and Flight SQL — and
//! each path must answer with what `silt_table::ErrorKind` maps the case's
//! kind to: the exit code, the HTTP status and problem `type`, the gRPC code.
//! A path disagreeing with another (or with the mapping) fails here.

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use silt_table::ErrorKind;

use crate::harness::{Run, Silt, python, silt_bin};
use crate::server::{Reply, Server};

const CONFIG: &str = r#"
[[auth.tokens]]
token = "op-token"
role = "operator"

[[auth.tokens]]
token = "r-token"
role = "reader"

[ingest]
max_body_bytes = 4096
"#;

/// A request that causes one kind of error.
enum Probe {
    /// A statement: embedded, `silt sql --server`, `POST /v1/sql`, Flight SQL.
    Sql(&'static str),
    /// A statement run through the server with `token` (None: no token):
    /// `silt sql --server` and `POST /v1/sql` (auth has no embedded form).
    SqlAs(&'static str, Option<&'static str>),
    /// A file ingested into `t`: embedded `silt ingest`, `silt ingest
    /// --server`, and `POST /v1/tables/t/rows` with its content type.
    Ingest {
        name: &'static str,
        body: Vec<u8>,
        content_type: &'static str,
        embedded: bool,
    },
    /// Only over HTTP: `POST path` with this content type and body.
    Http {
        path: &'static str,
        content_type: &'static str,
        body: Vec<u8>,
    },
}

fn cases() -> Vec<(ErrorKind, Probe)> {
    let big_csv = {
        let mut csv = b"id,name\n".to_vec();
        for i in 0..1000 {
            csv.extend_from_slice(format!("{i},name-{i}\n").as_bytes());
        }
        csv
    };
    vec![
        (ErrorKind::NotFound, Probe::Sql("SELECT * FROM nope")),
        (
            ErrorKind::NotFound,
            Probe::Sql("SELECT * FROM t VERSION AS OF 99"),
        ),
        (
            ErrorKind::AlreadyExists,
            Probe::Sql("CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"),
        ),
        (ErrorKind::InvalidInput, Probe::Sql("SELEC * FROM t")),
        (
            ErrorKind::InvalidInput,
            Probe::Sql("SELECT no_such_column FROM t"),
        ),
        // A NULL into a NOT NULL column (or a row violating a CHECK
        // constraint): rows that do not fit, named, nothing committed.
        (
            ErrorKind::InvalidRows,
            Probe::Sql("INSERT INTO t VALUES (NULL, 'x')"),
        ),
        // Below the default retention (168 hours): refused, a bad value.
        (ErrorKind::InvalidInput, Probe::Sql("VACUUM t RETAIN 0 HOURS")),
        (
            ErrorKind::InvalidRows,
            Probe::Ingest {
                name: "bad.csv",
                body: b"id,name\nabc,x\n".to_vec(),
                content_type: "text/csv",
                embedded: true,
            },
        ),
        (
            ErrorKind::TooLarge,
            Probe::Ingest {
                name: "big.csv",
                body: big_csv,
                content_type: "text/csv",
                embedded: false,
            },
        ),
        (
            ErrorKind::UnsupportedMediaType,
            Probe::Http {
                path: "/v1/tables/t/rows",
                content_type: "text/plain",
                body: b"id,name\n1,a\n".to_vec(),
            },
        ),
        (ErrorKind::Unauthenticated, Probe::SqlAs("SELECT 1", None)),
        (
            ErrorKind::Forbidden,
            Probe::SqlAs("INSERT INTO t VALUES (5, 'e')", Some("r-token")),
        ),
        (ErrorKind::Forbidden, Probe::Sql("SELECT * FROM _silt_erasures")),
        (
            ErrorKind::Unsupported,
            Probe::Sql("UPDATE t SET name = 'x' FROM t AS u WHERE t.id = u.id"),
        ),
    ]
}

/// What one path answered, next to what the mapping says.
struct Check {
    failures: Vec<String>,
}

impl Check {
    fn exit(&mut self, kind: ErrorKind, what: &str, run: &Run) {
        let want = i32::from(kind.exit_code());
        let one_line = run.stderr.lines().count() == 1 && run.stderr.starts_with("error: ");
        if run.code != Some(want) || !one_line {
            self.failures.push(format!(
                "{kind:?} {what}: exit {:?} (want {want}, one `error:` line), stderr: {}",
                run.code,
                run.stderr.trim()
            ));
        }
    }

    fn http(&mut self, kind: ErrorKind, what: &str, reply: &Reply) {
        let doc: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let content_type = reply.content_type();
        if reply.status != kind.http_status()
            || doc["type"] != kind.problem_type()
            || doc["status"] != json!(kind.http_status())
            || !content_type.starts_with("application/problem+json")
        {
            self.failures.push(format!(
                "{kind:?} {what}: HTTP {} {content_type} (want {} {}), body: {}",
                reply.status,
                kind.http_status(),
                kind.problem_type(),
                reply.body
            ));
        }
    }
}

fn silt_run(args: &[&str]) -> Run {
    Command::new(silt_bin())
        .args(args)
        .env_remove("SILT_WAREHOUSE")
        .env_remove("SILT_SERVER")
        .env_remove("SILT_TOKEN")
        .env_remove("SILT_FORMAT")
        .stdin(Stdio::null())
        .output()
        .expect("runs silt")
        .into()
}

/// Runs `statements` over Flight SQL (ADBC) with `token`; for each, the gRPC
/// code it failed with (None when it succeeded).
fn flight_codes(uri: &str, token: &str, statements: &[&str]) -> Vec<Option<i64>> {
    // ADBC keeps the gRPC status in the error's vendor code; the status name
    // is mapped back to its number here so it compares with ErrorKind's.
    let script = r#"
import json, sys, os, warnings
import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions
warnings.simplefilter("ignore")
uri, token, statements = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
kwargs = {"db_kwargs": {DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"}}
# AdbcStatusCode -> the gRPC code the Go driver maps to it.
grpc = {"NOT_FOUND": 5, "ALREADY_EXISTS": 6, "INVALID_ARGUMENT": 3, "UNAUTHORIZED": 7,
        "UNAUTHENTICATED": 16, "NOT_IMPLEMENTED": 12, "TIMEOUT": 4, "INTERNAL": 13,
        "IO": 14, "CANCELLED": 1, "INVALID_STATE": 9, "INTEGRITY": 10, "INVALID_DATA": 11}
out = []
with flightsql.connect(uri, **kwargs) as conn:
    for sql in statements:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            cur.fetchall()
            out.append(None)
        except Exception as e:
            code = getattr(e, "status_code", None)
            out.append(grpc.get(getattr(code, "name", ""), -1))
        cur.close()
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"#;
    let out = Command::new(python())
        .args(["-c", script, uri, token, &json!(statements).to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "flight client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Option<i64>>>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn every_error_kind_maps_the_same_on_every_path() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"]);
    silt.ok(&["sql", "INSERT INTO t VALUES (1, 'a')"]);
    let warehouse = silt.warehouse().to_string_lossy().into_owned();
    let server = Server::start_with_config(&silt, CONFIG);
    let url = server.http_url();
    let http = server.http();
    let operator = http.with_token("op-token");
    let mut check = Check { failures: Vec::new() };
    let mut flight = Vec::new();

    for (kind, probe) in cases() {
        match probe {
            Probe::Sql(sql) => {
                check.exit(
                    kind,
                    &format!("embedded `{sql}`"),
                    &silt_run(&["sql", "--warehouse", &warehouse, sql]),
                );
                check.exit(
                    kind,
                    &format!("--server `{sql}`"),
                    &silt_run(&["sql", "--server", &url, "--token", "op-token", sql]),
                );
                check.http(
                    kind,
                    &format!("POST /v1/sql `{sql}`"),
                    &operator.post_json("/v1/sql", &json!({ "sql": sql })),
                );
                flight.push((kind, sql));
            }
            Probe::SqlAs(sql, token) => {
                let mut args = vec!["sql", "--server", &url];
                let client = match token {
                    Some(token) => {
                        args.extend(["--token", token]);
                        http.with_token(token)
                    }
                    None => http.clone(),
                };
                args.push(sql);
                check.exit(kind, &format!("--server {token:?} `{sql}`"), &silt_run(&args));
                check.http(
                    kind,
                    &format!("POST /v1/sql {token:?} `{sql}`"),
                    &client.post_json("/v1/sql", &json!({ "sql": sql })),
                );
            }
            Probe::Ingest {
                name,
                body,
                content_type,
                embedded,
            } => {
                let file = silt.file(name, &body);
                if embedded {
                    check.exit(
                        kind,
                        &format!("embedded ingest {name}"),
                        &silt_run(&["ingest", "--warehouse", &warehouse, "t", &file]),
                    );
                }
                check.exit(
                    kind,
                    &format!("--server ingest {name}"),
                    &silt_run(&["ingest", "--server", &url, "--token", "op-token", "t", &file]),
                );
                check.http(
                    kind,
                    &format!("POST rows {name}"),
                    &operator.post("/v1/tables/t/rows", content_type, body, &[]),
                );
            }
            Probe::Http {
                path,
                content_type,
                body,
            } => {
                check.http(
                    kind,
                    &format!("POST {path} ({content_type})"),
                    &operator.post(path, content_type, body, &[]),
                );
            }
        }
    }

    let statements: Vec<&str> = flight.iter().map(|(_, sql)| *sql).collect();
    let codes = flight_codes(&server.flight_uri(), "op-token", &statements);
    for ((kind, sql), code) in flight.iter().zip(codes) {
        if code != Some(i64::from(kind.grpc_code())) {
            check.failures.push(format!(
                "{kind:?} Flight SQL `{sql}`: gRPC code {code:?} (want {})",
                kind.grpc_code()
            ));
        }
    }

    // Nothing above may have changed the table.
    assert_eq!(silt.count("t", None), 1);
    assert!(
        check.failures.is_empty(),
        "paths disagree with ErrorKind:\n{}",
        check.failures.join("\n")
    );
}

/// A statement past the server's time limit is a timeout on both server
/// paths (embedded runs have no limit).
#[test]
fn a_statement_timeout_is_the_same_over_the_cli_and_http() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, "[sql]\nstatement_timeout_ms = 300\n");
    let sql = "SELECT count(*) FROM generate_series(1, 100000000000) AS a(v) WHERE v % 7 = 3";
    let mut check = Check { failures: Vec::new() };
    let kind = ErrorKind::Timeout;
    check.exit(
        kind,
        "--server",
        &silt_run(&["sql", "--server", &server.http_url(), sql]),
    );
    check.http(
        kind,
        "POST /v1/sql",
        &server.http().post_json("/v1/sql", &json!({ "sql": sql })),
    );
    assert!(check.failures.is_empty(), "{}", check.failures.join("\n"));
    // Flight SQL goes through the same service: stopped too (it once ran on
    // past the limit). The query alone would run for minutes.
    let started = std::time::Instant::now();
    let codes = flight_codes(&server.flight_uri(), "any-token", &[sql]);
    assert_eq!(codes, vec![Some(i64::from(kind.grpc_code()))], "Flight SQL");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "Flight SQL took {:?}",
        started.elapsed()
    );
}

/// A statement past its role's concurrency cap is "overloaded" on the CLI
/// and HTTP paths: exit 6, HTTP 429.
#[test]
fn a_statement_over_the_role_cap_is_overloaded_over_the_cli_and_http() {
    let silt = Silt::new();
    let server = Server::start_with_config(
        &silt,
        &format!("{CONFIG}\n[sql]\nmax_concurrent_statements = 1\nstatement_timeout_ms = 60000\n"),
    );
    // The reader role's one permit is held by a query that would run for minutes.
    let hanging = "SELECT count(*) FROM generate_series(1, 100000000000) AS a(v) WHERE v % 7 = 3";
    let long = {
        let http = server.http().with_token("r-token");
        std::thread::spawn(move || {
            http.post_json("/v1/sql", &json!({ "sql": hanging, "timeout_ms": 20000 }))
                .status
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let kind = ErrorKind::Overloaded;
    let mut check = Check { failures: Vec::new() };
    check.exit(
        kind,
        "--server",
        &silt_run(&[
            "sql",
            "--server",
            &server.http_url(),
            "--token",
            "r-token",
            "SELECT 1",
        ]),
    );
    check.http(
        kind,
        "POST /v1/sql",
        &server
            .http()
            .with_token("r-token")
            .post_json("/v1/sql", &json!({ "sql": "SELECT 1" })),
    );
    // Flight SQL answers RESOURCE_EXHAUSTED too (`ApiError::to_status`),
    // but ADBC folds that status into INTERNAL, so it cannot be told apart
    // here.
    assert!(check.failures.is_empty(), "{}", check.failures.join("\n"));
    assert_eq!(long.join().expect("long query"), 408);
}

/// After an erasure purge, every version below the first readable one gets
/// the same "purged" answer (the purge's own commits too, which its log
/// expiry removed); versions after the latest stay "no version".
#[test]
fn every_purged_version_says_purged() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE people (id BIGINT NOT NULL, email VARCHAR) \
         TBLPROPERTIES ('silt.erasure.subject_columns' = 'email')",
    ]);
    silt.ok(&[
        "sql",
        "INSERT INTO people VALUES (1, 'a@example.com'), (2, 'b@example.com')",
    ]);
    silt.ok(&["sql", "INSERT INTO people VALUES (3, 'c@example.com')"]);
    silt.ok(&["erase", "--subject", "a@example.com", "--purge"]);
    let latest = silt.version("people");
    let mut answers = Vec::new();
    let mut first_readable = None;
    for version in 0..latest {
        let run = silt.run(&[
            "sql",
            &format!("SELECT count(*) FROM people VERSION AS OF {version}"),
        ]);
        if run.code == Some(0) {
            first_readable = Some(version);
            break;
        }
        assert_eq!(run.code, Some(3), "version {version}: {}", run.stderr);
        answers.push((version, run.stderr.trim().to_string()));
    }
    let first_readable = first_readable.expect("some version before the latest is readable");
    assert!(first_readable > 3, "the purge must hide the inserts: {answers:?}");
    let wanted = format!("before version {first_readable} was purged by erasure request");
    for (version, answer) in &answers {
        assert!(answer.contains(&wanted), "version {version}: {answer}");
    }
    let after = silt.run(&[
        "sql",
        &format!("SELECT count(*) FROM people VERSION AS OF {}", latest + 1),
    ]);
    assert_eq!(after.code, Some(3), "{}", after.stderr);
    assert!(after.stderr.contains("has no version"), "{}", after.stderr);
}
