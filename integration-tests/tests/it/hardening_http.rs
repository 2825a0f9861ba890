//! Hardening of the HTTP ingest and table routes (issue 11), against the real
//! `silt serve`: DDL through ingest needs the operator (or, for evolve, the
//! table's policy); silt's internal `_silt_*` tables are neither listed,
//! described nor written; dead letters are read at an operator endpoint;
//! bodies in a `Content-Encoding` silt does not decode are refused; the
//! exactly-once headers are strict; unknown query parameters are refused;
//! an idle connection's `Content-Length` reserves no memory; a 422 never
//! quotes a body key that is not a column; `/metrics` needs a token and hides
//! internal tables; the OpenAPI document lists 401/403 and the minimums the
//! server enforces.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Silt;
use crate::server::{
    AUTH_CONFIG, EVENTS as TABLE, EVENTS_ROWS as ROWS_PATH, Http, NDJSON, Server, assert_ingested,
    assert_problem, create_events, detail, event, ndjson, ndjson_values, producer, sequence_headers,
};

/// A server with one token per role and the events table (no policy).
struct Roles {
    silt: Silt,
    server: Server,
}

impl Roles {
    fn start(properties: Value) -> Roles {
        let silt = Silt::new();
        let server = Server::start_with_config(&silt, AUTH_CONFIG);
        create_events(&server.http().with_token("o-token"), properties);
        Roles { silt, server }
    }

    fn reader(&self) -> Http {
        self.server.http().with_token("r-token")
    }

    fn writer(&self) -> Http {
        self.server.http().with_token("w-token")
    }

    fn operator(&self) -> Http {
        self.server.http().with_token("o-token")
    }
}

fn column_names(http: &Http, table: &str) -> Vec<String> {
    let described = http.get(&format!("/v1/tables/{table}"));
    assert_eq!(described.status, 200, "{}", described.body);
    described.json()["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Commits in a table's `_delta_log`, read from the file system (internal
/// tables are not reachable through the API).
fn commits(silt: &Silt, table: &str) -> usize {
    let log = silt.warehouse().join(table).join("_delta_log");
    std::fs::read_dir(&log)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

fn with_country(id: u64) -> Vec<u8> {
    let mut row = event(id);
    row["country"] = json!("NO");
    ndjson_values([row])
}

// ---------------------------------------------------------------- item 7

#[test]
fn ingest_create_needs_the_operator_and_evolve_the_operator_or_the_tables_policy() {
    let t = Roles::start(json!({}));
    let (writer, operator) = (t.writer(), t.operator());
    let open = json!({
        "name": "open_events",
        "columns": [{"name": "id", "type": "BIGINT", "nullable": false}],
        "properties": {"silt.ingest.evolve": "true"}
    });
    assert_eq!(operator.post_json("/v1/tables", &open).status, 201);

    // create=true is DDL: a writer is refused, for a missing table and an existing one.
    let problem = assert_problem(
        &writer.post("/v1/tables/clicks/rows?create=true", NDJSON, ndjson(0..2), &[]),
        403,
    );
    assert!(detail(&problem).contains("operator"), "{problem}");
    assert_problem(&operator.get("/v1/tables/clicks"), 404);
    assert_problem(
        &writer.post(&format!("{ROWS_PATH}?create=true"), NDJSON, ndjson(0..1), &[]),
        403,
    );
    let reply = operator.post("/v1/tables/clicks/rows?create=true", NDJSON, ndjson(0..2), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows_written"], 2);

    // evolve=true: a writer needs the table's policy.
    let version = t.silt.version(TABLE);
    let problem = assert_problem(
        &writer.post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, with_country(1), &[]),
        403,
    );
    let text = detail(&problem);
    assert!(
        text.contains("operator") && text.contains("silt.ingest.evolve"),
        "{problem}"
    );
    assert_eq!(t.silt.version(TABLE), version, "a refused evolve committed");
    assert_eq!(column_names(&operator, TABLE), ["id", "email", "ts", "day"]);
    // Even without new columns in the body: asking is refused.
    assert_problem(
        &writer.post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, ndjson(1..2), &[]),
        403,
    );

    let reply = writer.post(
        "/v1/tables/open_events/rows?evolve=true",
        NDJSON,
        ndjson_values([json!({"id": 1, "note": "n"})]),
        &[],
    );
    assert_eq!(reply.status, 200, "policy grants evolve: {}", reply.body);
    assert_eq!(column_names(&operator, "open_events"), ["id", "note"]);

    assert_ingested(
        &operator.post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, with_country(2), &[]),
        1,
    );
    assert_eq!(
        column_names(&operator, TABLE),
        ["id", "email", "ts", "day", "country"]
    );
    // Plain writes stay the writer's.
    assert_ingested(&writer.post(ROWS_PATH, NDJSON, ndjson(3..4), &[]), 1);
    // The reader may do none of it.
    assert_problem(
        &t.reader()
            .post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, ndjson(4..5), &[]),
        403,
    );
}

// ---------------------------------------------------------------- item 4 and 3

/// An events table with the dead-letter policy, one good and one bad row
/// ingested by `producer` sequence 1.
fn with_dead_letter(t: &Roles) {
    let bad = json!({"id": 7, "email": "dead@example.com", "ts": "not a time"});
    let body = ndjson_values([event(1), bad]);
    let reply = t
        .writer()
        .post(ROWS_PATH, NDJSON, body, &sequence_headers("loader", 1));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["rows_rejected"], 1, "{}", reply.body);
}

#[test]
fn internal_tables_are_not_listed_described_or_written() {
    let t = Roles::start(json!({"silt.ingest.dead_letters": "true"}));
    with_dead_letter(&t);
    let letters_version = commits(&t.silt, "_silt_dead_letters");
    assert!(letters_version >= 2, "the dead letters were written");
    for http in [t.reader(), t.operator()] {
        assert_eq!(http.get("/v1/tables").json(), json!({"tables": [TABLE]}));
        for path in [
            "/v1/tables/_silt_dead_letters",
            "/v1/tables/_silt_dead_letters/history",
            "/v1/tables/_SILT_dead_letters",
            "/v1/tables/_silt_erasures/history?limit=1",
        ] {
            assert_problem(&http.get(path), 404);
        }
    }
    for http in [t.writer(), t.operator()] {
        for path in [
            "/v1/tables/_silt_dead_letters/rows",
            "/v1/tables/_silt_erasures/rows",
            "/v1/tables/_silt_forged/rows?create=true",
        ] {
            let body = ndjson_values([json!({"table": "events", "reason": "forged", "raw": "{}"})]);
            let problem = assert_problem(&http.post(path, NDJSON, body, &[]), 404);
            assert!(detail(&problem).contains("internal"), "{path}: {problem}");
        }
    }
    assert_eq!(commits(&t.silt, "_silt_dead_letters"), letters_version);
    assert!(!t.silt.warehouse().join("_silt_forged").exists());
    // Nor may an operator create one with POST /v1/tables.
    let spec = json!({"name": "_silt_erasures2", "columns": [{"name": "id", "type": "BIGINT"}]});
    assert_problem(&t.operator().post_json("/v1/tables", &spec), 400);

    // Flight DoPut goes through the same ingest entry point.
    let uri = t.server.flight_uri();
    let refused = producer(&[
        "flight",
        uri.as_str(),
        "_silt_dead_letters",
        "--producer",
        "forger",
        "--batches",
        "1",
        "--rows",
        "1",
        "--token",
        "w-token",
    ]);
    assert!(
        refused[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("internal")),
        "{refused:?}"
    );
    assert_eq!(commits(&t.silt, "_silt_dead_letters"), letters_version);

    // Dead letters still arrive through silt's own path.
    let bad = json!({"id": 8, "ts": "still not a time"});
    let reply = t.writer().post(ROWS_PATH, NDJSON, ndjson_values([bad]), &[]);
    assert_eq!(reply.json()["rows_rejected"], 1, "{}", reply.body);
    assert_eq!(commits(&t.silt, "_silt_dead_letters"), letters_version + 1);
}

#[test]
fn dead_letters_are_read_by_operators_at_their_own_endpoint() {
    let t = Roles::start(json!({"silt.ingest.dead_letters": "true"}));
    let operator = t.operator();
    assert_eq!(
        operator.get("/v1/dead-letters").json(),
        json!({"dead_letters": []}),
        "no dead letters yet"
    );
    with_dead_letter(&t);
    let bad = json!({"id": 9, "ts": "later"});
    let reply = t.writer().post(ROWS_PATH, NDJSON, ndjson_values([bad]), &[]);
    assert_eq!(reply.json()["rows_rejected"], 1, "{}", reply.body);

    assert_problem(&t.server.http().get("/v1/dead-letters"), 401);
    assert_problem(&t.server.http().with_token("nope").get("/v1/dead-letters"), 401);
    assert_problem(&t.reader().get("/v1/dead-letters"), 403);
    assert_problem(&t.writer().get("/v1/dead-letters?table=events"), 403);

    let answer = operator.get("/v1/dead-letters?table=events");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let rows = answer.json()["dead_letters"]
        .as_array()
        .expect("dead_letters")
        .clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Newest first.
    let newest = &rows[0];
    assert_eq!(newest["table"], TABLE);
    assert_eq!(newest["producer"], Value::Null);
    assert!(
        newest["raw"].as_str().is_some_and(|r| r.contains("\"id\":9")),
        "{newest}"
    );
    let oldest = &rows[1];
    assert_eq!(oldest["producer"], "loader");
    assert_eq!(oldest["sequence"], 1);
    assert!(
        oldest["reason"]
            .as_str()
            .is_some_and(|r| r.contains("column 'ts'")),
        "{oldest}"
    );
    assert!(
        oldest["raw"]
            .as_str()
            .is_some_and(|r| r.contains("dead@example.com")),
        "{oldest}"
    );
    assert!(
        oldest["received_at"].as_str().is_some_and(|r| r.ends_with('Z')),
        "{oldest}"
    );

    let one = operator.get("/v1/dead-letters?limit=1").json();
    assert_eq!(one["dead_letters"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(
        operator.get("/v1/dead-letters?table=other").json(),
        json!({"dead_letters": []})
    );
    for bad in [
        "/v1/dead-letters?limit=0",
        "/v1/dead-letters?limit=many",
        "/v1/dead-letters?limit=10001",
        "/v1/dead-letters?table=a-b",
        "/v1/dead-letters?tabel=events",
    ] {
        assert_problem(&operator.get(bad), 400);
    }
}

// ---------------------------------------------------------------- item 8

#[test]
fn a_content_encoding_silt_does_not_decode_is_415_and_writes_nothing() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    let version = silt.version(TABLE);
    for encoding in ["br", "gzip", "identity, gzip", "x-custom"] {
        let reply = http.post(
            ROWS_PATH,
            NDJSON,
            ndjson(0..2),
            &[("Content-Encoding", encoding.to_string())],
        );
        let problem = assert_problem(&reply, 415);
        assert!(detail(&problem).contains("Content-Encoding"), "{problem}");
    }
    let problem = assert_problem(
        &http.post(
            ROWS_PATH,
            NDJSON,
            ndjson(0..2),
            &[("Content-Encoding", "br".into())],
        ),
        415,
    );
    assert!(detail(&problem).contains("'br'"), "{problem}");
    assert_eq!(silt.version(TABLE), version, "a refused body was committed");
    // JSON endpoints read their bodies the same way.
    let spec = serde_json::to_vec(&json!({"name": "t2", "columns": [{"name": "id", "type": "BIGINT"}]}))
        .expect("json");
    assert_problem(
        &http.post(
            "/v1/tables",
            "application/json",
            spec.clone(),
            &[("Content-Encoding", "gzip".into())],
        ),
        415,
    );
    assert_eq!(
        http.post(
            "/v1/tables",
            "application/json",
            spec,
            &[("Content-Encoding", "identity".into())]
        )
        .status,
        201
    );
    assert_ingested(
        &http.post(
            ROWS_PATH,
            NDJSON,
            ndjson(0..2),
            &[("Content-Encoding", "identity".into())],
        ),
        2,
    );
}

#[test]
fn exactly_once_headers_are_plain_digits_sent_once() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    let version = silt.version(TABLE);
    for sequence in ["+5", "-1", "5.0", "0x5", "1e3", "5 5", "9223372036854775808", ""] {
        let headers = [
            ("Silt-Producer-Id", "p".to_string()),
            ("Silt-Sequence", sequence.to_string()),
        ];
        let problem = assert_problem(&http.post(ROWS_PATH, NDJSON, ndjson(0..1), &headers), 400);
        assert!(
            detail(&problem).contains("Silt-Sequence"),
            "{sequence:?}: {problem}"
        );
    }
    let twice = [
        ("Silt-Producer-Id", "p".to_string()),
        ("Silt-Sequence", "5".to_string()),
        ("Silt-Sequence", "6".to_string()),
    ];
    let problem = assert_problem(&http.post(ROWS_PATH, NDJSON, ndjson(0..1), &twice), 400);
    assert!(detail(&problem).contains("once"), "{problem}");
    let two_producers = [
        ("Silt-Producer-Id", "p".to_string()),
        ("Silt-Producer-Id", "q".to_string()),
        ("Silt-Sequence", "5".to_string()),
    ];
    assert_problem(&http.post(ROWS_PATH, NDJSON, ndjson(0..1), &two_producers), 400);
    assert_eq!(silt.version(TABLE), version, "a refused request committed");

    assert_ingested(
        &http.post(ROWS_PATH, NDJSON, ndjson(0..1), &sequence_headers("p", 5)),
        1,
    );
    let again = http.post(
        ROWS_PATH,
        NDJSON,
        ndjson(0..1),
        &[
            ("Silt-Producer-Id", "p".to_string()),
            ("Silt-Sequence", "05".to_string()),
        ],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.json()["duplicate"],
        true,
        "leading zeros are the same number"
    );
}

#[test]
fn unknown_query_parameters_are_refused_by_name() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    let version = silt.version(TABLE);
    let problem = assert_problem(
        &http.post(&format!("{ROWS_PATH}?merge_on=id"), NDJSON, ndjson(0..1), &[]),
        400,
    );
    let text = detail(&problem);
    assert!(
        text.contains("'merge_on'") && text.contains("create, evolve"),
        "{problem}"
    );
    for query in [
        "foo=1",
        "create=true&create=false",
        "Create=true",
        "evolve=true&keys=id",
    ] {
        assert_problem(
            &http.post(&format!("{ROWS_PATH}?{query}"), NDJSON, ndjson(0..1), &[]),
            400,
        );
    }
    assert_eq!(silt.version(TABLE), version, "a refused request committed");
    assert_ingested(
        &http.post(
            &format!("{ROWS_PATH}?create=false&evolve=false"),
            NDJSON,
            ndjson(0..1),
            &[],
        ),
        1,
    );

    let problem = assert_problem(&http.get("/v1/tables/events/history?limt=1"), 400);
    assert!(
        detail(&problem).contains("'limt'") && detail(&problem).contains("limit"),
        "{problem}"
    );
    let history = http.get("/v1/tables/events/history?limit=1");
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(history.json()["history"].as_array().map(Vec::len), Some(1));
}

/// `VmSize` of a process, in bytes.
fn virtual_size(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads /proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .expect("VmSize line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmSize number");
    kib * 1024
}

#[test]
fn an_idle_connection_declaring_a_large_body_reserves_no_memory() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, &format!("[ingest]\nmax_body_bytes = {GIB}\n"));
    let http = server.http();
    create_events(&http, json!({}));
    assert_ingested(&http.post(ROWS_PATH, NDJSON, ndjson(0..1), &[]), 1);
    let before = virtual_size(server.pid());

    let address = server.http_url().trim_start_matches("http://").to_string();
    let head = format!(
        "POST {ROWS_PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {NDJSON}\r\nContent-Length: {GIB}\r\n\r\n"
    );
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&address).expect("connects");
        stream.write_all(head.as_bytes()).expect("sends headers");
        stream.flush().expect("flushes");
        idle.push(stream);
    }
    // Give the handlers time to reach the body; the old code reserved the
    // declared length there at once.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut grown = 0;
    while Instant::now() < deadline {
        grown = virtual_size(server.pid()).saturating_sub(before);
        if grown > 2 * GIB {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        grown < GIB,
        "4 idle requests declaring 1 GiB each grew the server by {} MiB",
        grown >> 20
    );
    drop(idle);
    // The server still answers, and a declared length above the limit is 413.
    assert_eq!(http.get("/healthz").status, 200);
    let mut stream = TcpStream::connect(&address).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let head = format!(
        "POST {ROWS_PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {NDJSON}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        GIB + 1
    );
    stream.write_all(head.as_bytes()).expect("sends headers");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn a_422_counts_fields_that_are_not_columns_without_quoting_them() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    create_events(&http, json!({}));
    let mut row = event(1);
    row["alice@example.com"] = json!(true);
    row["secret-key-x"] = json!(1);
    let problem = assert_problem(&http.post(ROWS_PATH, NDJSON, ndjson_values([row]), &[]), 422);
    let text = detail(&problem);
    assert!(
        !text.contains("alice") && !text.contains("secret-key-x"),
        "{problem}"
    );
    assert!(
        text.contains("2 fields") && text.contains("id, email, ts, day"),
        "{problem}"
    );
    let csv = b"id,bob@example.com\n1,x\n".to_vec();
    let problem = assert_problem(&http.post(ROWS_PATH, "text/csv", csv, &[]), 422);
    assert!(!detail(&problem).contains("bob"), "{problem}");
    // A value of the wrong type still names its column (a column, not data).
    let bad = ndjson_values([json!({"id": "x"})]);
    let problem = assert_problem(&http.post(ROWS_PATH, NDJSON, bad, &[]), 422);
    assert!(detail(&problem).contains("column 'id'"), "{problem}");
}

#[test]
fn metrics_need_a_token_and_never_name_internal_tables() {
    let t = Roles::start(json!({"silt.ingest.dead_letters": "true"}));
    assert_problem(&t.server.http().get("/metrics"), 401);
    assert_problem(&t.server.http().with_token("nope").get("/metrics"), 401);
    with_dead_letter(&t);
    // Requests to internal or unknown tables, authenticated or not.
    let body = ndjson(0..1);
    t.writer()
        .post("/v1/tables/_silt_dead_letters/rows", NDJSON, body.clone(), &[]);
    t.writer()
        .post("/v1/tables/ghost_table_w/rows", NDJSON, body.clone(), &[]);
    t.server
        .http()
        .post("/v1/tables/ghost_table_anon/rows", NDJSON, body, &[]);
    let metrics = t.reader().get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let text = metrics.body;
    assert!(
        text.contains("silt_ingest_rows_total{table=\"events\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("silt_ingest_dead_letter_rows_total{table=\"events\"} 1"),
        "{text}"
    );
    assert!(!text.to_ascii_lowercase().contains("table=\"_silt_"), "{text}");
    assert!(!text.contains("ghost_table"), "{text}");
}

#[test]
fn metrics_are_open_without_tokens_on_loopback() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let reply = server.http().get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{:?}",
        reply.header("content-type")
    );
}

#[test]
fn openapi_lists_auth_errors_and_the_minimums_the_server_enforces() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let doc = server.http().get("/openapi.json").json();
    let paths = doc["paths"].as_object().expect("paths");
    for route in ["/v1/dead-letters", "/metrics", "/v1/tables/{table}/rows"] {
        assert!(paths.contains_key(route), "{route} not documented");
    }
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let open = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())));
            if open {
                continue;
            }
            let responses = operation["responses"].as_object().expect("responses");
            // /v1/whoami answers every known token: no role is refused (403).
            let refusals: &[&str] = if path == "/v1/whoami" {
                &["401"]
            } else {
                &["401", "403"]
            };
            for status in refusals.iter().copied() {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not list {status}"
                );
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["CreateTable"]["properties"]["name"]["minLength"], 1);
    assert_eq!(schemas["CreateTable"]["properties"]["columns"]["minItems"], 1);
    assert_eq!(
        schemas["ErasureRequestBody"]["properties"]["subjects"]["minItems"],
        1
    );

    // What the document says the server refuses, the server refuses.
    let http = server.http();
    let empty_name = json!({"name": "", "columns": [{"name": "id", "type": "BIGINT"}]});
    assert_problem(&http.post_json("/v1/tables", &empty_name), 400);
    let no_columns = json!({"name": "t", "columns": []});
    assert_problem(&http.post_json("/v1/tables", &no_columns), 400);
    let empty_column = json!({"name": "t", "columns": [{"name": "", "type": "BIGINT"}]});
    assert_problem(&http.post_json("/v1/tables", &empty_column), 400);
    assert_problem(&http.get("/v1/tables/t"), 404);
    // Nor does ingest make a column without a name, creating or evolving.
    let nameless = ndjson_values([json!({"id": 1, "": "x"})]);
    assert_problem(
        &http.post("/v1/tables/t/rows?create=true", NDJSON, nameless.clone(), &[]),
        422,
    );
    assert_problem(&http.get("/v1/tables/t"), 404);
    create_events(&http, json!({}));
    assert_problem(
        &http.post(&format!("{ROWS_PATH}?evolve=true"), NDJSON, nameless, &[]),
        422,
    );
    assert_eq!(column_names(&http, TABLE), ["id", "email", "ts", "day"]);
    let no_subjects = json!({"subjects": []});
    assert_problem(&http.post_json("/v1/erasures", &no_subjects), 400);
}
