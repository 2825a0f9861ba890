//! `POST /v1/sql` against the real `silt serve`, driven like a client would:
//! every answer format read back with a standard client (pyarrow, Python's
//! `csv`, `json.loads`, serde); time travel inside expressions and joins;
//! problem+json errors that commit nothing; bound parameters; bearer-token
//! roles; the statement timeout and the row cap; snapshot isolation while
//! writers ingest; a streamed answer that does not grow server memory; DML
//! (INSERT/UPDATE/DELETE/MERGE) checked against a model and Python deltalake;
//! a MERGE racing eight exactly-once producers; one server log line per
//! statement, its literals redacted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::harness::{Silt, peer, python};
use crate::server::{
    AUTH_CONFIG, EVENTS_ROWS, Http, NDJSON, Outages, Reply, Server, assert_ingested, assert_problem,
    create_events, detail, ndjson, pyarrow_bytes, send_until_acked, sequence_headers,
};

const SQL_PATH: &str = "/v1/sql";
const JSON: &str = "application/json";
const CSV: &str = "text/csv";
const ARROW: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";

/// Longest a streamed answer may take to read (a debug build on two cores).
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------- helpers

/// `POST /v1/sql` with `body`, asking for `accept`; the whole answer.
fn sql_request(http: &Http, body: &Value, accept: &str) -> Reply {
    http.post(
        SQL_PATH,
        JSON,
        body.to_string().into_bytes(),
        &[("accept", accept.to_string())],
    )
}

/// Runs one statement; asserts a 200 JSON answer and returns the document.
fn sql(http: &Http, statement: &str) -> Value {
    let reply = sql_request(http, &json!({ "sql": statement }), JSON);
    assert_eq!(
        reply.status, 200,
        "{statement}\nanswered {}: {}",
        reply.status, reply.body
    );
    assert_eq!(reply.content_type(), JSON, "{statement}");
    let doc = reply.json();
    assert_eq!(doc["truncated"], false, "{statement}: {doc}");
    doc
}

/// The rows of a query.
fn rows(http: &Http, statement: &str) -> Vec<Value> {
    sql(http, statement)["rows"].as_array().expect("rows").clone()
}

/// The single value of a one-row, one-column query.
fn scalar(http: &Http, statement: &str) -> Value {
    let rows = rows(http, statement);
    assert_eq!(rows.len(), 1, "{statement} gave {rows:?}");
    rows[0][0].clone()
}

fn int(http: &Http, statement: &str) -> i64 {
    let value = scalar(http, statement);
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{statement} gave {value}, not an integer"))
}

/// The one-row answer of a statement that changes a table, by column name.
fn change(http: &Http, statement: &str) -> Map<String, Value> {
    let doc = sql(http, statement);
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{statement}: {doc}");
    let names = doc["columns"].as_array().expect("columns");
    names
        .iter()
        .zip(rows[0].as_array().expect("row"))
        .map(|(c, v)| (c["name"].as_str().expect("column name").to_string(), v.clone()))
        .collect()
}

/// Asserts `answer[name] == want` for each pair.
fn assert_counts(statement: &str, answer: &Map<String, Value>, want: &[(&str, i64)]) {
    for (name, value) in want {
        assert_eq!(
            answer.get(*name),
            Some(&json!(value)),
            "{name} of {statement}: {answer:?}"
        );
    }
}

/// The version `GET /v1/tables/{table}` reports.
fn http_version(http: &Http, table: &str) -> u64 {
    let reply = http.get(&format!("/v1/tables/{table}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["version"].as_u64().expect("version")
}

/// Opens `POST /v1/sql` and returns the answer with its body unread, for
/// reading it slowly or in chunks (asserts 200).
fn open_sql(server: &Server, accept: &str, body: &Value) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .timeout(STREAM_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let url = format!("{}{SQL_PATH}", server.http_url());
    let response = client
        .post(&url)
        .header("accept", accept)
        .json(body)
        .send()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.text().unwrap_or_default();
        panic!("{body} answered {status}: {text}");
    }
    response
}

/// Reads into `buf` until it has something or the body ends (0).
fn read_chunk(body: &mut impl Read, buf: &mut [u8]) -> usize {
    loop {
        match body.read(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading the answer failed: {e}"),
        }
    }
}

/// Resident memory of process `pid`, in bytes (`VmRSS`).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

/// CPU time (user + system, clock ticks) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // The command name may hold spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')').expect("stat comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Waits (at most `within`) until the server uses less than a tenth of a
/// core over a one-second window: the work of a cancelled statement stopped.
fn assert_goes_idle(server: &Server, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let before = cpu_ticks(server.pid());
        std::thread::sleep(Duration::from_secs(1));
        let used = cpu_ticks(server.pid()) - before;
        if used < 10 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server still burns {used} ticks/s {within:?} after the statement timed out"
        );
    }
}

fn sql_client_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sql_client.py")
}

/// `python/sql_client.py decode FORMAT:PATH… --types …`.
fn decode_with_python(inputs: &[(&str, &Path)], types: &[&str]) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(sql_client_script()).arg("decode");
    for (format, path) in inputs {
        cmd.arg(format!("{format}:{}", path.display()));
    }
    let out = cmd
        .arg("--types")
        .arg(types.join(","))
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "sql_client.py decode failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sql_client.py prints JSON")
}

/// The CSV reading of a JSON answer's column type.
fn csv_kind(arrow_type: &str) -> &'static str {
    match arrow_type {
        "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => "int",
        "Float32" | "Float64" => "float",
        "Boolean" => "bool",
        "Date32" | "Date64" => "date",
        t if t.starts_with("Timestamp") => "timestamp",
        _ => "str",
    }
}

/// A table `t (id BIGINT NOT NULL, email VARCHAR)` made with SQL, holding
/// ids 1..=3 (`user<id>@example.com`) and `o'brien@example.com` as id 4.
fn small_table(http: &Http) {
    sql(http, "CREATE TABLE t (id BIGINT NOT NULL, email VARCHAR)");
    let answer = change(
        http,
        "INSERT INTO t VALUES (1, 'user1@example.com'), (2, 'user2@example.com'), \
         (3, 'user3@example.com'), (4, 'o''brien@example.com'), (5, NULL)",
    );
    assert_counts("INSERT", &answer, &[("version", 1), ("num_affected_rows", 5)]);
}

// ---------------------------------------------------------------- formats

/// DESCRIBE over HTTP and an ingest error name SQL types, not Arrow's.
#[test]
fn describe_and_type_errors_name_sql_types() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    sql(
        &http,
        "CREATE TABLE priced (id BIGINT, amount DECIMAL(12,2), note STRING)",
    );
    let described = rows(&http, "DESCRIBE TABLE priced");
    assert_eq!(
        described,
        [
            json!(["id", "BIGINT", "YES"]),
            json!(["amount", "DECIMAL(12,2)", "YES"]),
            json!(["note", "STRING", "YES"])
        ]
    );
    let reply = http.post(
        "/v1/tables/priced/rows",
        NDJSON,
        b"{\"id\": 1, \"amount\": 1.5}\n{\"id\": 2, \"amount\": \"lots\"}\n".to_vec(),
        &[],
    );
    assert!(
        reply.status >= 400 && reply.status < 500,
        "{}: {}",
        reply.status,
        reply.body
    );
    let text = detail(&reply.json());
    assert!(text.contains("DECIMAL(12,2)"), "{text}");
    assert!(!text.contains("Decimal128") && !text.contains("Utf8"), "{text}");
    assert_eq!(int(&http, "SELECT count(*) FROM priced"), 0, "nothing committed");
}

const ITEMS_TABLE: &str = "CREATE TABLE items (id BIGINT NOT NULL, name VARCHAR, price DOUBLE, \
                           qty INT, ok BOOLEAN, day DATE, ts TIMESTAMP)";

/// Rows that stress each format: CSV quoting (comma, quote, newline),
/// non-ASCII text, NULL in every column, extreme doubles, sub-second times.
const ITEMS_ROWS: &str = "INSERT INTO items VALUES \
    (1, 'plain', 1.5, 3, true, DATE '2026-11-20', TIMESTAMP '2026-11-25T10:00:00Z'), \
    (2, 'comma, \"quote\"', -2.25, NULL, false, NULL, TIMESTAMP '2026-11-25T10:00:00.123456Z'), \
    (3, 'line\nbreak', 1e300, 0, NULL, DATE '2026-11-22', NULL), \
    (4, 'ünïcødé ✓', NULL, -7, true, DATE '2026-11-21', TIMESTAMP '1970-01-01T00:00:00Z'), \
    (5, NULL, 0.1, 2147483647, false, DATE '2026-11-20', TIMESTAMP '2026-11-25T10:00:01Z')";

#[test]
fn every_answer_format_parses_with_a_standard_client_to_the_same_rows() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    sql(&http, ITEMS_TABLE);
    sql(&http, ITEMS_ROWS);
    let query = json!({"sql": "SELECT * FROM items ORDER BY id"});

    // JSON, read with serde.
    let reply = sql_request(&http, &query, JSON);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type(), JSON);
    assert!(
        reply
            .header("silt-row-cap")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "silt-row-cap: {:?}",
        reply.header("silt-row-cap")
    );
    let doc = reply.json();
    assert_eq!(doc["truncated"], false, "{doc}");
    let columns = doc["columns"].as_array().expect("columns");
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["id", "name", "price", "qty", "ok", "day", "ts"]);
    let types: Vec<&str> = columns
        .iter()
        .map(|c| c["type"].as_str().expect("type"))
        .collect();
    let expected = json!([
        [1, "plain", 1.5, 3, true, "2026-11-20", "2026-11-25T10:00:00Z"],
        [
            2,
            "comma, \"quote\"",
            -2.25,
            null,
            false,
            null,
            "2026-11-25T10:00:00.123456Z"
        ],
        [3, "line\nbreak", 1e300, 0, null, "2026-11-22", null],
        [
            4,
            "ünïcødé ✓",
            null,
            -7,
            true,
            "2026-11-21",
            "1970-01-01T00:00:00Z"
        ],
        [
            5,
            null,
            0.1,
            2147483647,
            false,
            "2026-11-20",
            "2026-11-25T10:00:01Z"
        ]
    ]);
    assert_eq!(doc["rows"], expected, "JSON answer (types {types:?})");
    // `type` stays the Arrow type clients parse; `sql_type` is the name
    // the table declared.
    assert_eq!(types[0], "Int64", "{types:?}");
    let sql_types: Vec<&str> = columns
        .iter()
        .map(|c| c["sql_type"].as_str().expect("sql_type"))
        .collect();
    assert_eq!(
        sql_types,
        [
            "BIGINT",
            "STRING",
            "DOUBLE",
            "INT",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP"
        ]
    );

    // The other formats, saved as received and decoded by Python.
    let mut saved = Vec::new();
    for (format, accept) in [("arrow", ARROW), ("csv", CSV), ("ndjson", NDJSON)] {
        let response = open_sql(&server, accept, &query);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            content_type.starts_with(accept),
            "{format}: content-type {content_type:?}"
        );
        assert!(
            response.headers().contains_key("silt-row-cap"),
            "{format}: no silt-row-cap"
        );
        let bytes = response.bytes().expect("read answer");
        let path = silt.scratch(&format!("answer.{format}"));
        std::fs::write(&path, &bytes).expect("save answer");
        saved.push((format, path));
    }
    let inputs: Vec<(&str, &Path)> = saved.iter().map(|(f, p)| (*f, p.as_path())).collect();
    let kinds: Vec<&str> = types.iter().map(|t| csv_kind(t)).collect();
    let decoded = decode_with_python(&inputs, &kinds);
    for (format, _) in &saved {
        assert_eq!(decoded[format]["columns"], json!(names), "{format} column names");
        assert_eq!(decoded[format]["rows"], expected, "{format} rows");
    }
}

// ---------------------------------------------------------------- time travel

/// Events ingested in three requests: ids 0..10, 10..15, 15..22; returns
/// the three versions.
fn three_versions(http: &Http) -> [u64; 3] {
    create_events(http, json!({}));
    [0..10, 10..15, 15..22].map(|ids| {
        let n = ids.end - ids.start;
        let answer = assert_ingested(&http.post(EVENTS_ROWS, NDJSON, ndjson(ids), &[]), n);
        answer["version"].as_u64().expect("version")
    })
}

#[test]
fn time_travel_works_inside_expressions_and_joins() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    let [v1, v2, v3] = three_versions(&http);
    assert_eq!((v2, v3), (v1 + 1, v1 + 2));

    let diff = int(
        &http,
        &format!("SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM events VERSION AS OF {v1})"),
    );
    assert_eq!(diff, 12);
    let diff = int(
        &http,
        &format!(
            "SELECT (SELECT count(*) FROM events VERSION AS OF {v2}) - \
             (SELECT count(*) FROM events VERSION AS OF {v1})"
        ),
    );
    assert_eq!(diff, 5);

    // A join of two versions of one table.
    let joined = int(
        &http,
        &format!(
            "SELECT count(*) FROM events VERSION AS OF {v2} AS a \
             JOIN events VERSION AS OF {v3} AS b ON a.id = b.id"
        ),
    );
    assert_eq!(joined, 15);
    let new_ids = rows(
        &http,
        &format!(
            "SELECT n.id FROM events n LEFT JOIN events VERSION AS OF {v1} o ON n.id = o.id \
             WHERE o.id IS NULL ORDER BY n.id"
        ),
    );
    assert_eq!(new_ids, (10..22).map(|id| json!([id])).collect::<Vec<_>>());
    let pairs = rows(
        &http,
        &format!(
            "SELECT o.id, o.email AS old_email, n.email AS new_email \
             FROM events VERSION AS OF {v1} o JOIN events n ON o.id = n.id ORDER BY o.id LIMIT 2"
        ),
    );
    assert_eq!(
        pairs,
        vec![
            json!([0, "user0@example.com", "user0@example.com"]),
            json!([1, "user1@example.com", "user1@example.com"])
        ]
    );

    // TIMESTAMP AS OF a commit's timestamp, from DESCRIBE HISTORY.
    let history = rows(&http, "DESCRIBE HISTORY events");
    let commit_time = |version: u64| {
        history
            .iter()
            .find(|h| h[0] == version)
            .and_then(|h| h[1].as_str())
            .unwrap_or_else(|| panic!("no timestamp for version {version}: {history:?}"))
            .to_string()
    };
    let (t1, t2) = (commit_time(v1), commit_time(v2));
    assert_eq!(
        int(
            &http,
            &format!("SELECT count(*) FROM events TIMESTAMP AS OF '{t1}'")
        ),
        10
    );
    let diff = int(
        &http,
        &format!(
            "SELECT (SELECT count(*) FROM events TIMESTAMP AS OF '{t2}') - \
             (SELECT count(*) FROM events VERSION AS OF {v1})"
        ),
    );
    assert_eq!(diff, 5);
}

/// A join that selects the same column name from both sides (natural when
/// comparing versions) must keep both values in the JSON answer.
#[test]
fn json_answer_keeps_both_columns_of_the_same_name() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    let [v1, _, _] = three_versions(&http);
    let doc = sql(
        &http,
        &format!(
            "SELECT o.id, o.email, n.email FROM events VERSION AS OF {v1} o \
             JOIN events n ON o.id = n.id ORDER BY o.id LIMIT 1"
        ),
    );
    let names: Vec<&Value> = doc["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("id"), &json!("email"), &json!("email")], "{doc}");
    assert_eq!(
        doc["rows"],
        json!([[0, "user0@example.com", "user0@example.com"]]),
        "{doc}"
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_statements_are_problems_and_commit_nothing() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    small_table(&http);
    let version = silt.version("t");
    assert_eq!(http_version(&http, "t"), version);

    let problem = |body: Value, status: u16| -> String {
        let reply = sql_request(&http, &body, JSON);
        let problem = assert_problem(&reply, status);
        eprintln!("{body} -> {status}: {}", detail(&problem));
        detail(&problem)
    };
    let statement = |text: &str, status: u16| problem(json!({ "sql": text }), status);

    // Syntax errors name the position.
    let text = statement("SELEC id FROM t", 400);
    assert!(text.contains("Line: 1, Column: 1"), "{text}");
    let text = statement("SELECT id FROM t WHERE id = = 1", 400);
    assert!(text.contains("Line: 1, Column: 29"), "{text}");
    let text = statement("INSERT INTO t VALUES (6, 'a') (7, 'b')", 400);
    assert!(text.contains("Line: 1, Column: "), "{text}");

    // Unknown tables are 404 and name the table.
    assert!(statement("SELECT * FROM nope", 404).contains("nope"));
    assert!(statement("INSERT INTO nope VALUES (1)", 404).contains("nope"));
    assert!(statement("INSERT INTO t SELECT * FROM nope", 404).contains("nope"));

    // Unknown columns are 400 with DataFusion's suggestion.
    let text = statement("SELECT emial FROM t", 400);
    assert!(text.contains("Did you mean") && text.contains("email"), "{text}");
    let text = statement("INSERT INTO t (id, emial) VALUES (6, 'x')", 400);
    assert!(text.contains("emial"), "{text}");

    // Missing versions are 404.
    let text = statement("SELECT * FROM t VERSION AS OF 99", 404);
    assert!(text.contains("99"), "{text}");
    statement("SELECT * FROM t TIMESTAMP AS OF '2000-01-01T00:00:00Z'", 404);
    statement("INSERT INTO t SELECT * FROM t VERSION AS OF 99", 404);

    // Parameters that are not scalars, or where none may be.
    problem(
        json!({"sql": "SELECT * FROM t WHERE id = $1", "params": [{"a": 1}]}),
        400,
    );
    problem(
        json!({"sql": "SELECT * FROM t WHERE id = $1", "params": [[1]]}),
        400,
    );
    problem(
        json!({"sql": "SELECT * FROM t WHERE id = $1", "params": "1"}),
        400,
    );
    problem(
        json!({"sql": "SELECT * FROM t WHERE id = $1 AND email = $2", "params": [1]}),
        400,
    );
    problem(json!({"sql": "DESCRIBE HISTORY t", "params": [6]}), 400);

    // Exactly one statement per request: neither of two runs.
    let text = statement(
        "INSERT INTO t VALUES (6, 'a'); INSERT INTO t VALUES (7, 'b')",
        400,
    );
    assert!(text.contains("one statement"), "{text}");
    statement("SELECT 1; SELECT 2", 400);
    statement("", 400);

    // Malformed request bodies.
    let reply = http.post(SQL_PATH, JSON, b"{\"sql\": ".to_vec(), &[]);
    assert_problem(&reply, 400);
    problem(json!({"sql": "SELECT 1", "bogus": true}), 400);
    problem(json!({"query": "SELECT 1"}), 400);

    assert_eq!(silt.version("t"), version, "a refused statement committed");
    assert_eq!(http_version(&http, "t"), version);
    assert_eq!(int(&http, "SELECT count(*) FROM t"), 5);
}

// ---------------------------------------------------------------- logging

#[test]
fn statements_are_logged_once_with_their_literals_redacted() {
    const SECRET: &str = "zz-secret-literal@example.com";
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    sql(&http, "CREATE TABLE t (id BIGINT NOT NULL, email VARCHAR)");
    change(&http, &format!("INSERT INTO t VALUES (424242, '{SECRET}')"));

    let found = rows(
        &http,
        &format!("SELECT id FROM t WHERE email = '{SECRET}' AND id > 424241 -- {SECRET}"),
    );
    assert_eq!(found, vec![json!([424242])]);
    let reply = sql_request(
        &http,
        &json!({"sql": "SELECT count(*) FROM t WHERE email = $1", "params": [SECRET]}),
        JSON,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Failures are logged too: a syntax error, and text the tokenizer
    // rejects (an unterminated string), which is not echoed at all.
    let reply = sql_request(
        &http,
        &json!({"sql": format!("SELECT id FROM t WHERE email = '{SECRET}' AND")}),
        JSON,
    );
    assert_problem(&reply, 400);
    let reply = sql_request(
        &http,
        &json!({"sql": format!("SELECT id FROM t WHERE email = '{SECRET}")}),
        JSON,
    );
    assert_problem(&reply, 400);

    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("sql statement")).collect();
    let line_with = |text: &str| -> &str {
        let found: Vec<&&str> = lines.iter().filter(|l| l.contains(text)).collect();
        assert_eq!(found.len(), 1, "want one log line with {text}, log:\n{log}");
        found[0]
    };
    let insert = line_with("statement=\"INSERT INTO t VALUES (?, ?)\"");
    assert!(
        insert.contains("required_role=\"writer\"") && insert.contains("outcome=\"ok\""),
        "{insert}"
    );
    let select = line_with("statement=\"SELECT id FROM t WHERE email = ? AND id > ?  \"");
    assert!(
        select.contains("protocol=\"http\"") && select.contains("outcome=\"ok\""),
        "{select}"
    );
    line_with("statement=\"SELECT count(*) FROM t WHERE email = $1\"");
    let syntax = line_with("statement=\"SELECT id FROM t WHERE email = ? AND\"");
    assert!(
        syntax.contains("outcome=\"error\"") && syntax.contains("error=\"invalid-input\""),
        "{syntax}"
    );
    line_with("statement=\"<statement not tokenizable>\"");
    assert_eq!(lines.len(), 6, "one line per statement:\n{}", lines.join("\n"));

    assert!(!log.contains(SECRET), "server log holds a literal:\n{log}");
    assert!(
        !log.contains("zz-secret"),
        "server log holds part of a literal:\n{log}"
    );
    assert!(
        !log.contains("42424"),
        "server log holds a number literal:\n{log}"
    );
}

// ---------------------------------------------------------------- parameters

/// `$n` in INSERT, UPDATE, DELETE and MERGE over `/v1/sql`: bound as
/// values (a quote in one stays in the row), typed by the column they meet,
/// counted against the highest placeholder; a wrong count or a value that
/// does not convert is a 400 and commits nothing.
#[test]
fn parameters_bind_in_insert_update_delete_and_merge() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    small_table(&http);
    let run = |statement: &str, params: Value| -> Map<String, Value> {
        let reply = sql_request(&http, &json!({"sql": statement, "params": params}), JSON);
        assert_eq!(reply.status, 200, "{statement} {params}: {}", reply.body);
        let doc = reply.json();
        let names = doc["columns"].as_array().expect("columns").clone();
        names
            .iter()
            .zip(doc["rows"][0].as_array().expect("row"))
            .map(|(c, v)| (c["name"].as_str().expect("name").to_string(), v.clone()))
            .collect()
    };
    let refused = |statement: &str, params: Value| -> String {
        let reply = sql_request(&http, &json!({"sql": statement, "params": params}), JSON);
        detail(&assert_problem(&reply, 400))
    };

    let answer = run(
        "INSERT INTO t VALUES ($1, $2)",
        json!([6, "x'; DROP TABLE t; --"]),
    );
    assert_counts("INSERT", &answer, &[("version", 2), ("num_inserted_rows", 1)]);
    assert_eq!(
        scalar(&http, "SELECT email FROM t WHERE id = 6"),
        json!("x'; DROP TABLE t; --")
    );
    // Positions in any order; a number sent as text takes the column's type.
    let answer = run(
        "UPDATE t SET email = $2 WHERE id = $1 OR id = $3",
        json!(["6", "six@example.com", 5]),
    );
    assert_counts("UPDATE", &answer, &[("version", 3), ("num_updated_rows", 2)]);
    assert_eq!(
        int(&http, "SELECT count(*) FROM t WHERE email = 'six@example.com'"),
        2
    );
    let answer = run(
        "DELETE FROM t WHERE id >= $1 AND email = $2",
        json!([5, "six@example.com"]),
    );
    assert_counts("DELETE", &answer, &[("version", 4), ("num_deleted_rows", 2)]);
    let merge = "MERGE INTO t USING (SELECT $1 AS id, $2 AS email) s ON t.id = s.id \
                 WHEN MATCHED AND s.email <> $3 THEN UPDATE SET email = s.email \
                 WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, s.email)";
    let answer = run(merge, json!([7, "seven@example.com", "keep"]));
    assert_counts("MERGE", &answer, &[("version", 5), ("num_inserted_rows", 1)]);
    let answer = run(merge, json!([1, "one@example.com", "keep"]));
    assert_counts("MERGE", &answer, &[("version", 6), ("num_updated_rows", 1)]);
    assert_eq!(
        rows(&http, "SELECT id, email FROM t ORDER BY id"),
        [
            json!([1, "one@example.com"]),
            json!([2, "user2@example.com"]),
            json!([3, "user3@example.com"]),
            json!([4, "o'brien@example.com"]),
            json!([7, "seven@example.com"])
        ]
    );

    // Refused, nothing committed.
    let text = refused("UPDATE t SET email = $1 WHERE id = $2", json!(["a"]));
    assert!(text.contains("1 parameters sent, the statement uses 2"), "{text}");
    let text = refused("DELETE FROM t WHERE id = $1", json!([1, 2]));
    assert!(text.contains("2 parameters sent, the statement uses 1"), "{text}");
    refused("DELETE FROM t WHERE id = $1", json!([]));
    let text = refused("UPDATE t SET id = $1 WHERE id = 1", json!(["not a number"]));
    assert!(text.contains("$1") && text.contains("BIGINT"), "{text}");
    refused("INSERT INTO t VALUES ($1, $2)", json!([8]));
    refused("CREATE TABLE p AS SELECT $1 AS x", json!([1]));
    assert_eq!(silt.version("t"), 6);
    assert_eq!(int(&http, "SELECT count(*) FROM t"), 5);
}

#[test]
fn parameters_are_bound_as_values_never_spliced_into_sql() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    small_table(&http);
    let count = |statement: &str, params: Value| -> i64 {
        let reply = sql_request(&http, &json!({"sql": statement, "params": params}), JSON);
        assert_eq!(reply.status, 200, "{statement} {params}: {}", reply.body);
        let doc = reply.json();
        doc["rows"][0][0]
            .as_i64()
            .unwrap_or_else(|| panic!("{statement} {params}: {doc}"))
    };
    let by_email = "SELECT count(*) FROM t WHERE email = $1";

    assert_eq!(count(by_email, json!(["x' OR '1'='1"])), 0);
    assert_eq!(count(by_email, json!(["' OR 1=1 --"])), 0);
    assert_eq!(count(by_email, json!(["x'; DROP TABLE t; --"])), 0);
    // A quote in a value matches the value itself.
    assert_eq!(count(by_email, json!(["o'brien@example.com"])), 1);
    assert_eq!(count(by_email, json!(["user2@example.com"])), 1);
    // Numbers, booleans, NULL; positions in any order, reused.
    assert_eq!(count("SELECT count(*) FROM t WHERE id >= $1", json!([2])), 4);
    assert_eq!(
        count("SELECT count(*) FROM t WHERE id > $2 AND id < $1", json!([5, 1])),
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM t WHERE id = $1 OR id = $1 + 1", json!([1])),
        2
    );
    assert_eq!(count("SELECT count(*) FROM t WHERE id < $1", json!([2.5])), 2);
    assert_eq!(
        count("SELECT count(*) FROM t WHERE (id > 2) = $1", json!([true])),
        3
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM t WHERE email IS NOT DISTINCT FROM $1",
            json!([null])
        ),
        1
    );
    // A parameter is a value, not a name: `$1` naming a column compares text.
    assert_eq!(
        count("SELECT count(*) FROM t WHERE $1 = 'email'", json!(["id"])),
        0
    );

    // More (or fewer) values than the highest placeholder is a 400, not
    // silently ignored.
    for params in [json!([1, 2, 3]), json!([1])] {
        let reply = sql_request(
            &http,
            &json!({"sql": "SELECT count(*) FROM t WHERE id > $1 AND id < $2", "params": params}),
            JSON,
        );
        assert_eq!(reply.status, 400, "{params}: {}", reply.body);
    }
    let extra = sql_request(&http, &json!({"sql": by_email, "params": ["a", "b"]}), JSON);
    assert_eq!(extra.status, 400, "{}", extra.body);
    assert!(
        extra.body.contains("2 parameters sent, the statement uses 1"),
        "{}",
        extra.body
    );

    // The table is still there, untouched.
    assert_eq!(int(&http, "SELECT count(*) FROM t"), 5);
    assert_eq!(silt.version("t"), 1);
}

// ---------------------------------------------------------------- roles

#[test]
fn bearer_tokens_gate_statements_by_role() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, AUTH_CONFIG);
    let anonymous = server.http();
    let reader = anonymous.with_token("r-token");
    let writer = anonymous.with_token("w-token");
    let operator = anonymous.with_token("o-token");
    let send = |http: &Http, statement: &str| sql_request(http, &json!({ "sql": statement }), JSON);
    let insert = "INSERT INTO t VALUES (10, 'ten@example.com')";
    let create = "CREATE TABLE other (id BIGINT)";

    // Operator: DDL.
    small_table(&operator);
    let version = silt.version("t");

    // No token, or an unknown one: 401 whatever the statement.
    for statement in ["SELECT count(*) FROM t", insert, create] {
        assert_problem(&send(&anonymous, statement), 401);
        assert_problem(&send(&anonymous.with_token("no-such-token"), statement), 401);
    }

    // Reader: queries, EXPLAIN, DESCRIBE HISTORY; no writes, no DDL.
    assert_eq!(int(&reader, "SELECT count(*) FROM t"), 5);
    assert!(!rows(&reader, "EXPLAIN SELECT * FROM t").is_empty());
    assert_eq!(rows(&reader, "DESCRIBE HISTORY t").len() as u64, version + 1);
    for statement in [
        insert,
        "UPDATE t SET email = 'x' WHERE id = 1",
        "DELETE FROM t WHERE id = 1",
        "EXPLAIN ANALYZE INSERT INTO t VALUES (11, 'eleven@example.com')",
        create,
        "DROP TABLE t",
    ] {
        let problem = assert_problem(&send(&reader, statement), 403);
        eprintln!("reader {statement:?}: {}", detail(&problem));
    }
    assert_eq!(silt.version("t"), version, "a refused statement committed");

    // Writer: DML; no DDL.
    let answer = change(&writer, insert);
    assert_counts(
        insert,
        &answer,
        &[("version", version as i64 + 1), ("num_affected_rows", 1)],
    );
    assert_eq!(int(&writer, "SELECT count(*) FROM t"), 6);
    assert_problem(&send(&writer, create), 403);
    assert_problem(&send(&writer, "DROP TABLE t"), 403);

    // Operator: CREATE and DROP.
    sql(&operator, create);
    assert_eq!(
        operator.get("/v1/tables").json(),
        json!({"tables": ["other", "t"]})
    );
    sql(&operator, "DROP TABLE other");
    assert_eq!(operator.get("/v1/tables").json(), json!({"tables": ["t"]}));
    assert_eq!(int(&operator, "SELECT count(*) FROM t"), 6);
}

// ---------------------------------------------------------------- limits

/// 10^10 rows to count: far more than any timeout below allows.
const HEAVY: &str = "SELECT count(*) FROM range(0, 100000) a CROSS JOIN range(0, 100000) b";

#[test]
fn statement_timeout_is_408_and_stops_the_work() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();

    for timeout_ms in [1, 300] {
        let started = Instant::now();
        let reply = sql_request(&http, &json!({"sql": HEAVY, "timeout_ms": timeout_ms}), JSON);
        let elapsed = started.elapsed();
        let problem = assert_problem(&reply, 408);
        assert!(
            detail(&problem).contains(&format!("{timeout_ms} ms")),
            "{problem}"
        );
        assert!(
            elapsed < Duration::from_secs(30),
            "timeout_ms {timeout_ms} answered after {elapsed:?}"
        );
        // The server is still responsive and the statement's work stopped.
        assert_eq!(int(&http, "SELECT 1"), 1);
        assert_goes_idle(&server, Duration::from_secs(15));
    }
}

/// The statement timeout must also bound planning: `range(0, 50000000)` is a
/// constant that DataFusion folds while planning.
#[test]
fn statement_timeout_bounds_a_statement_that_is_slow_to_plan() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let body = json!({
        "sql": "SELECT count(*) FROM (SELECT unnest(range(0, 50000000)))",
        "timeout_ms": 1000
    });
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let started = Instant::now();
    let result = client
        .post(format!("{}{SQL_PATH}", server.http_url()))
        .json(&body)
        .send();
    let elapsed = started.elapsed();
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().unwrap_or_default();
            assert_eq!(status, 408, "after {elapsed:?}: {text}");
            assert!(
                elapsed < Duration::from_secs(10),
                "a 1000 ms timeout answered after {elapsed:?}"
            );
        }
        Err(e) => panic!("no answer to a statement with timeout_ms 1000 within {elapsed:?}: {e}"),
    }
}

#[test]
fn max_rows_truncates_every_format_and_the_server_cap_wins() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, "[sql]\nmax_rows = 1000\n");
    let http = server.http();
    let query_up_to = |rows: u64, max_rows: Option<u64>, accept: &str| {
        let mut body = json!({"sql": format!("SELECT value FROM range(0, {rows}) ORDER BY value")});
        if let Some(max_rows) = max_rows {
            body["max_rows"] = json!(max_rows);
        }
        let reply = sql_request(&http, &body, accept);
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
        reply
    };
    let query = |max_rows: Option<u64>, accept: &str| query_up_to(5000, max_rows, accept);

    let reply = query(Some(10), JSON);
    assert_eq!(reply.header("silt-row-cap"), Some("10"));
    let doc = reply.json();
    assert_eq!(doc["truncated"], true, "{doc}");
    assert_eq!(doc["rows"], json!((0..10).map(|v| [v]).collect::<Vec<_>>()));

    let reply = query(Some(10), NDJSON);
    assert_eq!(reply.header("silt-row-cap"), Some("10"));
    let lines: Vec<Value> = reply
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect();
    assert_eq!(lines, (0..10).map(|v| json!({"value": v})).collect::<Vec<_>>());

    let reply = query(Some(10), CSV);
    assert_eq!(reply.header("silt-row-cap"), Some("10"));
    let expected: String = std::iter::once("value".to_string())
        .chain((0..10).map(|v| v.to_string()))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(reply.body, expected);

    // A cap above the result truncates nothing; exactly the cap neither.
    for (rows, max_rows) in [(500, Some(600)), (500, None), (1000, None), (10, Some(10))] {
        let doc = query_up_to(rows, max_rows, JSON).json();
        assert_eq!(doc["truncated"], false, "{rows} rows, max_rows {max_rows:?}");
        assert_eq!(doc["rows"].as_array().map(Vec::len), Some(rows as usize));
    }

    // The server's cap applies when the request asks for none or for more.
    for max_rows in [None, Some(2000)] {
        let reply = query(max_rows, JSON);
        assert_eq!(reply.header("silt-row-cap"), Some("1000"), "{max_rows:?}");
        let doc = reply.json();
        assert_eq!(doc["truncated"], true);
        assert_eq!(doc["rows"].as_array().map(Vec::len), Some(1000));
    }
}

// ---------------------------------------------------------------- concurrency and memory

/// While a long answer over `events` is read slowly (the statement holds its
/// snapshot and is paused by back-pressure), ingest into the same table is
/// acknowledged promptly, and the answer reflects only the snapshot taken at
/// its start.
#[test]
fn readers_never_block_writers_and_read_one_snapshot() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    assert_ingested(&http.post(EVENTS_ROWS, NDJSON, ndjson(0..10_000), &[]), 10_000);

    const COPIES: u64 = 200;
    const WRITES: u64 = 10;
    let query = json!({
        "sql": format!("SELECT e.id, e.email, r.value AS copy FROM events e CROSS JOIN range(0, {COPIES}) r")
    });
    let mut answer = open_sql(&server, NDJSON, &query);
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = 0u64;
    let n = read_chunk(&mut answer, &mut buf);
    assert!(n > 0, "empty answer");
    lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;

    let (tx, rx) = mpsc::channel();
    let writer_http = http.clone();
    let writer = std::thread::spawn(move || {
        for k in 0..WRITES {
            let ids = 1_000_000 + k * 100..1_000_000 + (k + 1) * 100;
            let started = Instant::now();
            let reply = writer_http.post(
                EVENTS_ROWS,
                NDJSON,
                ndjson(ids),
                &sequence_headers("writer", k + 1),
            );
            if tx.send((k, started.elapsed(), reply)).is_err() {
                return;
            }
        }
    });

    // Read slowly until every write is acknowledged; the answer must not end first.
    let mut acked = 0;
    let mut slowest = Duration::ZERO;
    while acked < WRITES {
        while let Ok((k, elapsed, reply)) = rx.try_recv() {
            assert_ingested(&reply, 100);
            assert!(
                elapsed < Duration::from_secs(5),
                "write {k} took {elapsed:?} while a reader streamed"
            );
            slowest = slowest.max(elapsed);
            acked += 1;
        }
        let n = read_chunk(&mut answer, &mut buf);
        assert!(n > 0, "the answer ended before the writes were acknowledged");
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().expect("writer thread");
    eprintln!("{WRITES} writes acknowledged while streaming (slowest {slowest:?}) after {lines} lines");

    // The rest of the answer: the snapshot at its start, none of the new rows.
    let mut big = vec![0u8; 1 << 20];
    loop {
        let n = read_chunk(&mut answer, &mut big);
        if n == 0 {
            break;
        }
        lines += big[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    assert_eq!(lines, 10_000 * COPIES, "rows in the streamed answer");
    assert_eq!(
        int(&http, "SELECT count(*) FROM events"),
        10_000 + 100 * WRITES as i64
    );
}

/// A large answer streams: the server's resident memory grows by far less
/// than the answer's size.
#[test]
fn a_large_streamed_answer_does_not_grow_server_memory() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    const PART: u64 = 500_000;
    for k in 0..4 {
        let body = pyarrow_bytes(&silt, "parquet", k * PART, PART);
        assert_ingested(&http.post(EVENTS_ROWS, PARQUET, body, &[]), PART);
    }
    assert_eq!(int(&http, "SELECT count(*) FROM events"), 4 * PART as i64);

    let pid = server.pid();
    let baseline = rss_bytes(pid);
    let stop = AtomicBool::new(false);
    let peak = AtomicU64::new(baseline);
    let (bytes, lines) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let query = json!({"sql": "SELECT *, repeat('x', 200) AS pad FROM events"});
        let mut answer = open_sql(&server, NDJSON, &query);
        let mut buf = vec![0u8; 1 << 20];
        let (mut bytes, mut lines) = (0u64, 0u64);
        loop {
            let n = read_chunk(&mut answer, &mut buf);
            if n == 0 {
                break;
            }
            bytes += n as u64;
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        stop.store(true, Ordering::Relaxed);
        (bytes, lines)
    });
    let peak = peak.load(Ordering::Relaxed);
    let growth = peak.saturating_sub(baseline);
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "streamed {lines} rows, {:.0} MB of NDJSON; server RSS baseline {:.0} MB, peak {:.0} MB, growth {:.0} MB",
        mb(bytes),
        mb(baseline),
        mb(peak),
        mb(growth)
    );
    assert_eq!(lines, 4 * PART);
    assert!(bytes > 500_000_000, "answer only {bytes} bytes");
    assert!(
        growth < 250_000_000,
        "server RSS grew {:.0} MB while streaming {:.0} MB",
        mb(growth),
        mb(bytes)
    );
}

// ---------------------------------------------------------------- DML

/// The `acct` rows as the statements should leave them: id → (grp, amount).
type Model = BTreeMap<i64, (String, i64)>;

fn model_sum(model: &Model) -> i64 {
    model.values().map(|(_, a)| a).sum()
}

#[test]
fn create_insert_update_delete_merge_agree_with_a_model_and_python_deltalake() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    let check = |model: &Model, after: &str| {
        let got = rows(&http, "SELECT count(*), sum(amount) FROM acct");
        assert_eq!(
            got,
            vec![json!([model.len(), model_sum(model)])],
            "count and sum after {after}"
        );
    };

    let create = "CREATE TABLE acct (id BIGINT NOT NULL, grp VARCHAR, amount BIGINT)";
    assert_counts(create, &change(&http, create), &[("version", 0)]);

    let insert = "INSERT INTO acct SELECT value AS id, concat('g', CAST(value % 10 AS VARCHAR)) AS grp, \
                  value AS amount FROM range(1, 1001)";
    assert_counts(
        insert,
        &change(&http, insert),
        &[("version", 1), ("num_affected_rows", 1000)],
    );
    let mut model: Model = (1..=1000).map(|id| (id, (format!("g{}", id % 10), id))).collect();
    check(&model, "INSERT");

    let update = "UPDATE acct SET amount = amount * 2 WHERE id <= 100";
    assert_counts(
        update,
        &change(&http, update),
        &[
            ("version", 2),
            ("num_affected_rows", 100),
            ("num_updated_rows", 100),
            ("num_inserted_rows", 0),
            ("num_deleted_rows", 0),
        ],
    );
    for id in 1..=100 {
        model.entry(id).and_modify(|(_, a)| *a *= 2);
    }
    check(&model, "UPDATE");

    let delete = "DELETE FROM acct WHERE id > 900";
    assert_counts(
        delete,
        &change(&http, delete),
        &[
            ("version", 3),
            ("num_affected_rows", 100),
            ("num_deleted_rows", 100),
            ("num_inserted_rows", 0),
            ("num_updated_rows", 0),
        ],
    );
    model.retain(|id, _| *id <= 900);
    check(&model, "DELETE");

    // Source ids 851..=950: 851..=870 match and are deleted, 871..=900
    // match and are updated, 901..=950 do not match and are inserted.
    let merge = "MERGE INTO acct AS t \
                 USING (SELECT value AS id, value * 10 AS amount FROM range(851, 951)) AS s \
                 ON t.id = s.id \
                 WHEN MATCHED AND s.id <= 870 THEN DELETE \
                 WHEN MATCHED THEN UPDATE SET amount = s.amount \
                 WHEN NOT MATCHED THEN INSERT (id, grp, amount) VALUES (s.id, 'new', s.amount)";
    assert_counts(
        merge,
        &change(&http, merge),
        &[
            ("version", 4),
            ("num_affected_rows", 100),
            ("num_deleted_rows", 20),
            ("num_updated_rows", 30),
            ("num_inserted_rows", 50),
        ],
    );
    for id in 851..=950 {
        if id <= 870 {
            model.remove(&id);
        } else if id <= 900 {
            model.entry(id).and_modify(|(_, a)| *a = id * 10);
        } else {
            model.insert(id, ("new".to_string(), id * 10));
        }
    }
    check(&model, "MERGE");
    assert_eq!((model.len(), model_sum(&model)), (930, 1_095_125));

    // Every row, through silt and through Python deltalake.
    let want: Vec<Value> = model.iter().map(|(id, (grp, a))| json!([id, grp, a])).collect();
    assert_eq!(rows(&http, "SELECT id, grp, amount FROM acct ORDER BY id"), want);
    let python = peer(&[
        "read",
        "deltalake",
        &silt.table_path("acct"),
        "--columns",
        "id,grp,amount",
    ]);
    assert_eq!(python, json!(want), "Python deltalake reads the same rows");
    // Each step stays readable by version.
    assert_eq!(int(&http, "SELECT count(*) FROM acct VERSION AS OF 3"), 900);
}

/// Sets the flag when dropped (also when unwinding).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A MERGE that updates 500 preloaded rows and inserts 100 new ones runs
/// while eight producers ingest (exactly-once headers) into the same table:
/// every acknowledged row survives and the MERGE's effect is there once.
#[test]
fn merge_during_concurrent_exactly_once_ingest_applies_once_and_loses_nothing() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    let preload = 1_000_000..1_001_000;
    assert_ingested(
        &http.post(
            EVENTS_ROWS,
            NDJSON,
            ndjson(preload),
            &sequence_headers("preload", 1),
        ),
        1000,
    );

    const PRODUCERS: u64 = 8;
    const ROWS: u64 = 50;
    const MAX_REQUESTS: u64 = 400;
    let deadline = Instant::now() + Duration::from_secs(500);
    let merge_done = AtomicBool::new(false);
    let merge = "MERGE INTO events AS t \
                 USING (SELECT value AS id FROM range(1000000, 1000500) \
                        UNION ALL SELECT value AS id FROM range(2000000, 2000100)) AS s \
                 ON t.id = s.id \
                 WHEN MATCHED THEN UPDATE SET email = concat(t.email, '!') \
                 WHEN NOT MATCHED THEN INSERT (id, email, ts, day) \
                 VALUES (s.id, concat('merged', CAST(s.id AS VARCHAR)), NULL, CAST('2026-11-20' AS DATE))";

    let (acks, merge_answer, merge_attempts) = std::thread::scope(|scope| {
        let (first_tx, first_rx) = mpsc::channel::<()>();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let first_tx = first_tx.clone();
                let http = &http;
                let merge_done = &merge_done;
                scope.spawn(move || {
                    let id = format!("producer-{p}");
                    let mut acks = Vec::new();
                    let mut after_merge = 0;
                    for sequence in 1..=MAX_REQUESTS {
                        let done = merge_done.load(Ordering::SeqCst);
                        let start = p * 100_000 + (sequence - 1) * ROWS;
                        let body = ndjson(start..start + ROWS);
                        let (_, answer, _) = send_until_acked(
                            std::slice::from_ref(http),
                            0,
                            &id,
                            sequence,
                            &body,
                            Outages::Fail,
                            deadline,
                        );
                        assert_eq!(answer["duplicate"], false, "{id} #{sequence}: {answer}");
                        assert_eq!(answer["rows_written"], ROWS, "{id} #{sequence}: {answer}");
                        acks.push((sequence, answer["version"].as_u64().expect("version"), done));
                        if sequence == 1 {
                            let _ = first_tx.send(());
                        }
                        if done {
                            after_merge += 1;
                            if after_merge == 2 {
                                return acks;
                            }
                        }
                    }
                    panic!("{id}: the MERGE did not finish within {MAX_REQUESTS} requests");
                })
            })
            .collect();
        drop(first_tx);

        // However the MERGE ends, the producers stop soon after.
        let _stop = SetOnDrop(&merge_done);
        // Every producer is under way before the MERGE starts.
        for _ in 0..PRODUCERS {
            first_rx
                .recv_timeout(Duration::from_secs(120))
                .expect("every producer gets a first acknowledgement");
        }
        // A commit conflict (409) commits nothing, so the client may retry it.
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let reply = sql_request(&http, &json!({ "sql": merge }), JSON);
            if reply.status == 409 && attempts < 30 {
                assert_problem(&reply, 409);
                continue;
            }
            assert_eq!(reply.status, 200, "MERGE attempt {attempts}: {}", reply.body);
            break reply.json();
        };
        merge_done.store(true, Ordering::SeqCst);
        let acks: Vec<Vec<(u64, u64, bool)>> = producers
            .into_iter()
            .map(|h| h.join().expect("producer thread"))
            .collect();
        (acks, answer, attempts)
    });
    eprintln!("MERGE answered after {merge_attempts} attempt(s): {merge_answer}");

    let names: Vec<&str> = merge_answer["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    let answer: Map<String, Value> = names
        .iter()
        .map(|n| n.to_string())
        .zip(merge_answer["rows"][0].as_array().expect("row").iter().cloned())
        .collect();
    assert_counts(
        "MERGE",
        &answer,
        &[
            ("num_updated_rows", 500),
            ("num_inserted_rows", 100),
            ("num_deleted_rows", 0),
        ],
    );
    let merge_version = answer["version"].as_u64().expect("MERGE version");
    // The producers really ran on both sides of the MERGE.
    for (p, mine) in acks.iter().enumerate() {
        assert!(
            mine.first().is_some_and(|a| a.1 < merge_version),
            "producer {p}: {mine:?}"
        );
        assert!(
            mine.last().is_some_and(|a| a.1 > merge_version),
            "producer {p}: {mine:?}"
        );
    }

    // Every acknowledged row is there, once.
    let acked_rows: u64 = acks.iter().map(|a| a.len() as u64 * ROWS).sum();
    let per_producer = rows(
        &http,
        "SELECT CAST(id / 100000 AS BIGINT), count(*), count(DISTINCT id) FROM events \
         WHERE id < 1000000 GROUP BY 1 ORDER BY 1",
    );
    let want: Vec<Value> = acks
        .iter()
        .enumerate()
        .map(|(p, a)| json!([p, a.len() as u64 * ROWS, a.len() as u64 * ROWS]))
        .collect();
    assert_eq!(per_producer, want, "rows per producer");
    let total = int(&http, "SELECT count(*) FROM events");
    assert_eq!(total as u64, acked_rows + 1000 + 100);
    assert_eq!(int(&http, "SELECT count(DISTINCT id) FROM events"), total);

    // The MERGE's effect, exactly once.
    assert_eq!(
        int(&http, "SELECT count(*) FROM events WHERE email LIKE '%!'"),
        500
    );
    assert_eq!(
        int(&http, "SELECT count(*) FROM events WHERE email LIKE '%!!'"),
        0
    );
    assert_eq!(
        int(
            &http,
            "SELECT count(*) FROM events WHERE id >= 1000500 AND id < 1001000 AND email NOT LIKE '%!'"
        ),
        500
    );
    assert_eq!(int(&http, "SELECT count(*) FROM events WHERE id >= 2000000"), 100);
    let merges = rows(&http, "DESCRIBE HISTORY events")
        .iter()
        .filter(|h| h[2] == "MERGE")
        .count();
    assert_eq!(merges, 1, "MERGE commits in the history");

    // The producers' exactly-once state survived the MERGE: a retry of an
    // acknowledged request is a duplicate.
    let retry = http.post(
        EVENTS_ROWS,
        NDJSON,
        ndjson(0..ROWS),
        &sequence_headers("producer-0", 1),
    );
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["duplicate"], true, "{}", retry.body);
    assert_eq!(
        int(&http, "SELECT count(*) FROM events") as u64,
        acked_rows + 1100
    );
}
