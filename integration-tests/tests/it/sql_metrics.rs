//! Metrics for queries (issue 17, part 4): every statement, whichever
//! protocol brought it, is counted once in the SQL service by protocol,
//! kind, role and outcome, with its latency, rows and bytes, and the
//! active gauge — on `/metrics`, with no SQL text or value in a label.

use serde_json::json;

use crate::harness::Silt;
use crate::pg_wire::{psql, psql_ok};
use crate::server::Server;

/// The value of the sample `name{labels}` in a Prometheus text body (labels
/// in the exposition's sorted order), 0 when absent.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn statements_over_http_and_pg_are_counted_by_kind_role_and_outcome() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let http = server.http();
    let sql = |text: &str| http.post_json("/v1/sql", &json!({ "sql": text }));
    assert_eq!(
        sql("CREATE TABLE secret_t (id BIGINT NOT NULL, email VARCHAR)").status,
        200
    );
    assert_eq!(
        sql("INSERT INTO secret_t VALUES (1, 'alice@example.com'), (2, 'bob@example.com'), (3, 'c@example.com')").status,
        200
    );
    for _ in 0..2 {
        let reply = sql("SELECT id, email FROM secret_t");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(sql("SELECT nope FROM secret_t").status, 400);
    assert_eq!(sql("SELEC 1").status, 400);

    let out = psql_ok(
        &server,
        None,
        &["SELECT id FROM secret_t WHERE email = 'alice@example.com'"],
    );
    assert!(out.contains('1'), "{out}");
    assert!(
        !psql(&server, None, &["SELECT missing_column FROM secret_t"])
            .status
            .success()
    );

    let series = |protocol: &str, kind: &str, outcome: &str| {
        format!(
            "silt_sql_statements_total{{kind=\"{kind}\",outcome=\"{outcome}\",protocol=\"{protocol}\",role=\"operator\"}}"
        )
    };
    // A statement is counted when the server lets go of its answer, which
    // may be a moment after the client has read it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let body = http.get("/metrics").body;
        if sample(&body, &series("pg", "query", "invalid-input")) > 0.0
            || std::time::Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let statements =
        |protocol: &str, kind: &str, outcome: &str| sample(&body, &series(protocol, kind, outcome));
    assert_eq!(statements("http", "ddl", "ok"), 1.0, "{body}");
    assert_eq!(statements("http", "dml", "ok"), 1.0, "{body}");
    assert_eq!(statements("http", "query", "ok"), 2.0, "{body}");
    assert_eq!(statements("http", "query", "invalid-input"), 1.0, "{body}");
    // A statement that does not parse has no kind.
    assert_eq!(statements("http", "unknown", "invalid-input"), 1.0, "{body}");
    assert_eq!(statements("pg", "query", "ok"), 1.0, "{body}");
    assert_eq!(statements("pg", "query", "invalid-input"), 1.0, "{body}");

    // Rows: 3 per HTTP query; the DML's one-row answer counts for dml.
    assert_eq!(
        sample(
            &body,
            "silt_sql_rows_returned_total{kind=\"query\",protocol=\"http\"}"
        ),
        6.0,
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "silt_sql_rows_returned_total{kind=\"query\",protocol=\"pg\"}"
        ),
        1.0,
        "{body}"
    );
    assert!(
        sample(
            &body,
            "silt_sql_bytes_returned_total{kind=\"query\",protocol=\"http\"}"
        ) > 0.0,
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "silt_sql_statement_seconds_count{kind=\"query\",protocol=\"http\"}"
        ),
        3.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "silt_sql_active_statements{protocol=\"http\"}"),
        0.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "silt_sql_active_statements{protocol=\"pg\"}"),
        0.0,
        "{body}"
    );

    // No SQL text and no value in any label.
    for needle in ["secret_t", "alice", "example.com", "nope", "SELEC"] {
        assert!(
            !body
                .lines()
                .filter(|l| l.starts_with("silt_sql_"))
                .any(|l| l.contains(needle)),
            "{needle} in /metrics:\n{body}"
        );
    }
}
