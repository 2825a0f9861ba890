//! The Postgres wire endpoint (`silt serve --pg`) with real clients: `psql`
//! (Debian's postgresql-client, installed by scripts/setup-pg-client.sh) and
//! Python `psycopg` (scripts/requirements-peers.txt). Every statement goes
//! through the same SQL service as `/v1/sql`, so roles, the statement
//! timeout and SQLSTATEs mapped from silt's error kinds are checked here
//! over the wire.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::Server;

/// Runs `psql` against `server` with `password` (None: none sent), one
/// `-c` per command, stopping at the first error.
pub(crate) fn psql(server: &Server, password: Option<&str>, commands: &[&str]) -> Output {
    psql_env(server, password, &[], commands)
}

/// [`psql`] with extra environment (`PGSSLMODE`, `PGSSLROOTCERT`…), which
/// wins over the defaults.
fn psql_env(server: &Server, password: Option<&str>, envs: &[(&str, &str)], commands: &[&str]) -> Output {
    let addr = server.pg_addr();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
        "-h",
        host,
        "-p",
        port,
    ])
    .args(["-U", "analyst", "-d", "silt"])
    .env("PGCONNECT_TIMEOUT", "10")
    .env("PGSSLMODE", "prefer")
    .env_remove("PGPASSWORD")
    .stdin(Stdio::null());
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    } else {
        cmd.arg("-w");
    }
    for (name, value) in envs {
        cmd.env(name, value);
    }
    for command in commands {
        cmd.args(["-c", command]);
    }
    cmd.output()
        .expect("psql runs (install postgresql-client: scripts/setup-pg-client.sh)")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// psql's output, failing the test unless psql succeeded.
pub(crate) fn psql_ok(server: &Server, password: Option<&str>, commands: &[&str]) -> String {
    let output = psql(server, password, commands);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "psql {commands:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Runs a Python snippet (psycopg) that prints one JSON value.
fn psycopg(server: &Server, password: Option<&str>, script: &str) -> Value {
    let addr = server.pg_addr();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut conninfo = format!("host={host} port={port} user=analyst dbname=silt connect_timeout=10");
    if let Some(password) = password {
        conninfo.push_str(&format!(" password={password}"));
    }
    // The native library aborts at interpreter exit otherwise.
    let script = format!(
        "import json, os, sys, datetime, decimal\nimport psycopg\nCONNINFO = {conninfo:?}\n{script}\nsys.stdout.flush()\nos._exit(0)\n"
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const CREATE: &str = "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR, ts TIMESTAMP, day DATE, \
                      amount DECIMAL(10,2), ok BOOLEAN, score DOUBLE)";
const INSERT: &str = "INSERT INTO t VALUES \
    (1, 'zelda', TIMESTAMP '2026-01-02 03:04:05.123456', DATE '2026-01-02', 12.34, true, 1.5), \
    (2, NULL, NULL, NULL, NULL, NULL, NULL)";

#[test]
fn psql_queries_lists_describes_time_travels_and_merges() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    // An internal table exists (the erasure ledger), and \dt must not list it.
    let reply = server.http().post_json(
        "/v1/erasures",
        &json!({ "subjects": ["nobody@example.com"], "purge": false }),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let created = psql_ok(&server, None, &[CREATE, INSERT]);
    assert!(created.contains("CREATE TABLE"), "{created}");
    assert!(created.contains("INSERT 0 2"), "{created}");

    let rows = psql_ok(&server, None, &["SELECT id, name, amount, ok FROM t ORDER BY id"]);
    assert!(rows.contains(" 1 | zelda |  12.34 | t"), "{rows}");
    assert!(rows.contains("(2 rows)"), "{rows}");

    let listed = psql_ok(&server, None, &["\\dt"]);
    assert!(listed.contains("List of relations"), "{listed}");
    assert!(listed.contains("public | t    | table"), "{listed}");
    assert!(!listed.contains("_silt"), "internal tables are listed:\n{listed}");
    assert!(
        silt.warehouse().join("_silt_erasures").exists(),
        "the erasure ledger should exist, or the check above proves nothing"
    );

    let described = psql_ok(&server, None, &["\\d t"]);
    assert!(described.contains("Table \"public.t\""), "{described}");
    for expected in [
        "id     | bigint",
        "not null",
        "name   | text",
        "day    | date",
        "amount | numeric(10,2)",
        "ok     | boolean",
        "score  | double precision",
        "ts     | timestamp",
    ] {
        assert!(described.contains(expected), "missing {expected:?}:\n{described}");
    }
    let missing = psql(&server, None, &["\\d nope"]);
    assert!(
        text(&missing)
            .1
            .contains("Did not find any relation named \"nope\""),
        "{:?}",
        text(&missing)
    );

    let changed = psql_ok(
        &server,
        None,
        &[
            "UPDATE t SET name = 'bob' WHERE id = 2",
            "DELETE FROM t WHERE id = 1",
            "MERGE INTO t USING (SELECT 2 AS id, 'cy' AS name UNION ALL SELECT 3 AS id, 'di' AS name) s \
             ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name \
             WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
        ],
    );
    assert!(changed.contains("UPDATE 1"), "{changed}");
    assert!(changed.contains("DELETE 1"), "{changed}");
    assert!(changed.contains("MERGE 2"), "{changed}");

    let now = psql_ok(&server, None, &["SELECT id, name FROM t ORDER BY id"]);
    assert!(
        now.contains(" 2 | cy") && now.contains(" 3 | di") && !now.contains("zelda"),
        "{now}"
    );
    // Version 1 is the INSERT: zelda is there, the merged rows are not.
    let then = psql_ok(
        &server,
        None,
        &["SELECT id, name FROM t VERSION AS OF 1 ORDER BY id"],
    );
    assert!(then.contains(" 1 | zelda") && !then.contains("di"), "{then}");

    let version = psql_ok(&server, None, &["SELECT version()", "SHOW server_version"]);
    assert!(version.contains("silt"), "{version}");

    // Errors carry the SQLSTATE of their kind.
    let (_, syntax) = text(&psql(&server, None, &["SELEC 1"]));
    assert!(syntax.contains("42601"), "{syntax}");
    let (_, missing) = text(&psql(&server, None, &["SELECT * FROM nope"]));
    assert!(missing.contains("42P01"), "{missing}");
    // The statement log names the protocol and holds no literal.
    let log = server.log();
    assert!(log.contains("protocol=\"pg\""), "no pg statement in the log");
    assert!(
        !log.contains("'cy'") && !log.contains("zelda"),
        "a literal reached the log"
    );
}

#[test]
fn psycopg_binds_parameters_and_reads_types_back() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    psql_ok(&server, None, &[CREATE, INSERT]);
    let out = psycopg(
        &server,
        None,
        r#"
conn = psycopg.connect(CONNINFO, autocommit=True)
cur = conn.cursor()
out = {}
cur.execute("SELECT id, name, ts, day, amount, ok, score FROM t ORDER BY id")
rows = cur.fetchall()
out["types"] = [type(v).__name__ for v in rows[0]]
out["first"] = [str(v) for v in rows[0]]
out["nulls"] = [v is None for v in rows[1]]
# Parameters of each type, bound into the plan.
cur.execute(
    "SELECT id FROM t WHERE id = %s AND name = %s AND amount = %s AND ok = %s AND score > %s AND day = %s AND ts = %s",
    (1, "zelda", decimal.Decimal("12.34"), True, 1.25, datetime.date(2026, 1, 2), datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)),
)
out["matched"] = cur.fetchall()
cur.execute("SELECT id FROM t WHERE name = %s", ("nobody",))
out["unmatched"] = cur.fetchall()
# A prepared statement, executed with different values.
seen = []
for wanted in (1, 2, 1):
    cur.execute("SELECT id, name FROM t WHERE id = %s", (wanted,), prepare=True)
    seen.append(cur.fetchall())
out["prepared"] = [[list(r) for r in rows] for rows in seen]
# Binary results.
cur.execute("SELECT id, ts, amount, ok FROM t WHERE id = %s", (1,), binary=True)
out["binary"] = [str(v) for v in cur.fetchone()]
cur.execute("INSERT INTO t (id, name) VALUES (3, 'cy')")
out["insert"] = [cur.statusmessage, cur.rowcount]
errors = {}
for name, sql in (("syntax", "SELEC 1"), ("missing", "SELECT * FROM nope"), ("column", "SELECT nope FROM t")):
    try:
        cur.execute(sql)
        errors[name] = None
    except psycopg.Error as e:
        errors[name] = e.sqlstate
out["errors"] = errors
# A transaction block as drivers open one (autocommit off).
tx = psycopg.connect(CONNINFO)
tc = tx.cursor()
tc.execute("SELECT count(*) FROM t")
out["in_block"] = tc.fetchone()[0]
tx.commit()
print(json.dumps(out))
"#,
    );
    assert_eq!(
        out["types"],
        json!(["int", "str", "datetime", "date", "Decimal", "bool", "float"]),
        "{out}"
    );
    assert_eq!(out["first"][2], "2026-01-02 03:04:05.123456+00:00", "{out}");
    assert_eq!(out["first"][4], "12.34", "{out}");
    assert_eq!(
        out["nulls"],
        json!([false, true, true, true, true, true, true]),
        "{out}"
    );
    assert_eq!(out["matched"], json!([[1]]), "{out}");
    assert_eq!(out["unmatched"], json!([]), "{out}");
    assert_eq!(
        out["prepared"],
        json!([[[1, "zelda"]], [[2, null]], [[1, "zelda"]]]),
        "{out}"
    );
    assert_eq!(
        out["binary"],
        json!(["1", "2026-01-02 03:04:05.123456+00:00", "12.34", "True"]),
        "{out}"
    );
    assert_eq!(out["insert"], json!(["INSERT 0 1", 1]), "{out}");
    assert_eq!(out["errors"]["syntax"], "42601", "{out}");
    assert_eq!(out["errors"]["missing"], "42P01", "{out}");
    assert!(out["errors"]["column"].is_string(), "{out}");
    assert_eq!(out["in_block"], 3, "{out}");
}

/// psycopg binds server-side (the extended protocol: Parse with `$n`,
/// Describe, Bind, Execute) into INSERT, UPDATE, DELETE and MERGE, plain
/// and as a prepared statement run with new values; a bad value is
/// SQLSTATE 22023/42xxx and commits nothing.
#[test]
fn psycopg_binds_parameters_in_insert_update_delete_and_merge() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    psql_ok(&server, None, &[CREATE]);
    let out = psycopg(
        &server,
        None,
        r#"
conn = psycopg.connect(CONNINFO, autocommit=True)
cur = conn.cursor()
out = {}
for i, name in ((1, "ann"), (2, "o'brien"), (3, "cy")):
    cur.execute(
        "INSERT INTO t (id, name, day, amount, ok) VALUES (%s, %s, %s, %s, %s)",
        (i, name, datetime.date(2026, 1, i), decimal.Decimal("1.25") * i, i % 2 == 1),
        prepare=True,
    )
out["inserted"] = cur.rowcount
cur.execute("UPDATE t SET name = %s, score = %s WHERE id = %s", ("bea'; DROP TABLE t; --", 2.5, 2))
out["updated"] = [cur.statusmessage, cur.rowcount]
cur.execute("DELETE FROM t WHERE day < %s AND ok = %s", (datetime.date(2026, 1, 2), True))
out["deleted"] = [cur.statusmessage, cur.rowcount]
cur.execute(
    "MERGE INTO t USING (SELECT %s AS id, %s AS name) s ON t.id = s.id "
    "WHEN MATCHED THEN UPDATE SET name = s.name "
    "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
    (4, "dee"),
)
out["merged"] = cur.rowcount
errors = {}
for name, sql, params in (
    ("type", "UPDATE t SET id = %s WHERE id = 3", ("x",)),
    ("missing", "DELETE FROM nope WHERE id = %s", (1,)),
):
    try:
        cur.execute(sql, params)
        errors[name] = None
    except psycopg.Error as e:
        errors[name] = e.sqlstate
out["errors"] = errors
cur.execute("SELECT id, name, amount, score FROM t ORDER BY id")
out["rows"] = [[r[0], r[1], str(r[2]) if r[2] is not None else None, r[3]] for r in cur.fetchall()]
print(json.dumps(out))
"#,
    );
    assert_eq!(out["inserted"], 1, "{out}");
    assert_eq!(out["updated"], json!(["UPDATE 1", 1]), "{out}");
    assert_eq!(out["deleted"], json!(["DELETE 1", 1]), "{out}");
    assert_eq!(out["merged"], 1, "{out}");
    assert_eq!(out["errors"]["type"], "22023", "{out}");
    assert_eq!(out["errors"]["missing"], "42P01", "{out}");
    assert_eq!(
        out["rows"],
        json!([
            [2, "bea'; DROP TABLE t; --", "2.50", 2.5],
            [3, "cy", "3.75", null],
            [4, "dee", null, null]
        ]),
        "{out}"
    );
}

const TOKENS: &str = "[[auth.tokens]]\ntoken = \"r-secret\"\nrole = \"reader\"\n\
                      [[auth.tokens]]\ntoken = \"w-secret\"\nrole = \"writer\"\n\
                      [[auth.tokens]]\ntoken = \"o-secret\"\nrole = \"operator\"\n";

#[test]
fn the_password_is_a_token_and_a_reader_cannot_change_rows() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    psql_ok(&server, Some("o-secret"), &[CREATE, INSERT]);
    let read = psql_ok(&server, Some("r-secret"), &["SELECT count(*) FROM t"]);
    assert!(read.contains(" 2\n"), "{read}");
    for dml in [
        "INSERT INTO t (id) VALUES (9)",
        "DELETE FROM t",
        "UPDATE t SET name = 'x'",
    ] {
        let (_, stderr) = text(&psql(&server, Some("r-secret"), &[dml]));
        assert!(stderr.contains("42501"), "{dml}: {stderr}");
    }
    let (_, ddl) = text(&psql(&server, Some("w-secret"), &["DROP TABLE t"]));
    assert!(ddl.contains("42501"), "{ddl}");
    let wrote = psql_ok(&server, Some("w-secret"), &["INSERT INTO t (id) VALUES (9)"]);
    assert!(wrote.contains("INSERT 0 1"), "{wrote}");
    for password in [Some("wrong"), None] {
        let output = psql(&server, password, &["SELECT count(*) FROM t"]);
        let (stdout, stderr) = text(&output);
        assert!(!output.status.success(), "{password:?} got in: {stdout}");
        assert!(!stdout.contains('2') && !stdout.contains('3'), "{stdout}");
        assert!(stderr.contains("password"), "{password:?}: {stderr}");
    }
    // psycopg sees the same codes.
    let out = psycopg(
        &server,
        Some("r-secret"),
        r#"
conn = psycopg.connect(CONNINFO, autocommit=True)
try:
    conn.execute("INSERT INTO t (id) VALUES (%s)", (10,))
    print(json.dumps(None))
except psycopg.Error as e:
    print(json.dumps(e.sqlstate))
"#,
    );
    assert_eq!(out, json!("42501"));
    let count = psql_ok(&server, Some("r-secret"), &["SELECT count(*) FROM t"]);
    assert!(
        count.contains(" 3\n"),
        "a reader's statement changed the table: {count}"
    );
}

/// A raw client: the protocol's messages by hand.
fn startup(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for part in ["user", user, "database", "silt", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    message
}

fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..n]);
    }
    seen
}

#[test]
fn unauthenticated_and_oversized_messages_get_an_error_and_nothing_else() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, TOKENS);
    psql_ok(&server, Some("o-secret"), &[CREATE, INSERT]);
    // A Query instead of the password: refused, never run.
    let mut stream = TcpStream::connect(server.pg_addr()).expect("connect");
    stream.write_all(&startup("x")).expect("startup");
    let mut query = b"Q".to_vec();
    let sql = b"DELETE FROM t\0";
    query.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
    query.extend_from_slice(sql);
    stream.write_all(&query).expect("query");
    let seen = read_some(&mut stream);
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("28000"), "{seen:?}");
    assert!(!seen.contains("DELETE"), "{seen:?}");
    let count = psql_ok(&server, Some("o-secret"), &["SELECT count(*) FROM t"]);
    assert!(count.contains(" 2\n"), "the unauthenticated DELETE ran: {count}");

    // A message declaring a gigabyte: refused before it is buffered.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.pg_addr()).expect("connect");
    stream.write_all(&0x4000_0000u32.to_be_bytes()).expect("header");
    stream.write_all(&196_608u32.to_be_bytes()).expect("version");
    let seen = read_some(&mut stream);
    assert!(
        String::from_utf8_lossy(&seen).contains("limit"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // And the server still answers.
    psql_ok(&server, Some("r-secret"), &["SELECT 1"]);
}

#[test]
fn the_statement_timeout_stops_a_long_query_over_pg() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, "[sql]\nstatement_timeout_ms = 300\n");
    let sql = "SELECT count(*) FROM generate_series(1, 100000000000) AS a(v) WHERE v % 7 = 3";
    let started = Instant::now();
    let output = psql(&server, None, &[sql]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("57014"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    // A session may lower it further, never raise it past the server's.
    let out = psycopg(
        &server,
        None,
        r#"
conn = psycopg.connect(CONNINFO, autocommit=True)
conn.execute("SET statement_timeout = 100")
try:
    conn.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS a(v) WHERE v % 7 = 3")
    print(json.dumps(None))
except psycopg.Error as e:
    print(json.dumps(e.sqlstate))
"#,
    );
    assert_eq!(out, json!("57014"));
}

/// A self-signed certificate for 127.0.0.1 and localhost (openssl), as
/// `(certificate, key)` PEM paths.
fn self_signed(silt: &Silt) -> (String, String) {
    let cert = silt.scratch("pg-cert.pem");
    let key = silt.scratch("pg-key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    (path(cert), path(key))
}

#[test]
fn tls_with_the_configured_certificate_and_plain_text_refused_when_required() {
    let silt = Silt::new();
    let (cert, key) = self_signed(&silt);
    let tls = format!("[pg]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n");

    // Optional TLS: psql's default (prefer) gets it, disable stays plain.
    let server = Server::start_with_config(&silt, &format!("{TOKENS}{tls}"));
    let prefer = psql_ok(&server, Some("o-secret"), &["\\conninfo", "SELECT 1 + 1 AS two"]);
    assert!(prefer.contains("SSL connection (protocol: TLSv1."), "{prefer}");
    assert!(prefer.contains(" 2\n"), "{prefer}");
    let plain = psql_env(
        &server,
        Some("o-secret"),
        &[("PGSSLMODE", "disable")],
        &["\\conninfo"],
    );
    let (stdout, stderr) = text(&plain);
    assert!(plain.status.success(), "{stderr}");
    assert!(!stdout.contains("SSL connection"), "{stdout}");
    drop(server);

    // Required TLS: verify-full checks the chain and the address against
    // the certificate; a plain-text client is refused before its password.
    let server = Server::start_with_config(&silt, &format!("{TOKENS}{tls}require_tls = true\n"));
    let verified = psql_env(
        &server,
        Some("r-secret"),
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &cert)],
        &["\\conninfo", "SELECT 40 + 2 AS answer"],
    );
    let (stdout, stderr) = text(&verified);
    assert!(verified.status.success(), "verify-full failed: {stderr}");
    assert!(stdout.contains("SSL connection"), "{stdout}");
    assert!(stdout.contains(" 42\n"), "{stdout}");
    let refused = psql_env(
        &server,
        Some("r-secret"),
        &[("PGSSLMODE", "disable")],
        &["SELECT 1"],
    );
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success(), "plain text was served");
    assert!(
        stderr.contains("FATAL:  this server accepts only TLS"),
        "{stderr}"
    );
    drop(server);

    // A key that is not one stops the start with one line naming it.
    let garbage = silt.scratch("garbage-key.pem");
    std::fs::write(&garbage, "not a key").expect("write");
    let config = silt.scratch("bad-tls.toml");
    std::fs::write(
        &config,
        format!(
            "[pg]\ntls_cert = \"{cert}\"\ntls_key = \"{}\"\n",
            garbage.display()
        ),
    )
    .expect("write");
    let run = silt.run(&[
        "serve",
        "--config",
        &config.to_string_lossy(),
        "--http",
        "127.0.0.1:0",
        "--flight",
        "127.0.0.1:0",
        "--pg",
        "127.0.0.1:0",
    ]);
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(run.stderr.contains("pg.tls_key"), "{}", run.stderr);
}
