//! `silt sql --server`: the CLI sends each statement to `POST /v1/sql` and
//! prints what the embedded command would.

use crate::harness::Silt;
use crate::server::Server;

#[test]
fn sql_through_the_server_prints_like_embedded_and_exits_by_error_kind() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"]);
    silt.ok(&["sql", "INSERT INTO t VALUES (1, 'a'), (2, 'b')"]);
    let server = Server::start(&silt);
    let url = server.http_url();

    // Two statements, one request each; the table format is drawn from Arrow.
    let out = silt.ok(&[
        "sql",
        "--server",
        &url,
        "INSERT INTO t VALUES (3, 'c'); SELECT count(*) AS n FROM t VERSION AS OF 1",
    ]);
    assert!(out.contains("| n |") && out.contains("| 2 |"), "{out}");
    let csv = silt.ok(&[
        "sql",
        "--server",
        &url,
        "--format",
        "csv",
        "SELECT id, name FROM t ORDER BY id",
    ]);
    assert_eq!(csv, "id,name\n1,a\n2,b\n3,c\n");
    let embedded = silt.ok(&["sql", "--format", "csv", "SELECT id, name FROM t ORDER BY id"]);
    assert_eq!(csv, embedded);

    let unknown = silt.run(&["sql", "--server", &url, "SELECT * FROM nope"]);
    assert_eq!(unknown.code, Some(3), "{}", unknown.stderr);
    let bad = silt.run(&["sql", "--server", &url, "SELECT missing FROM t"]);
    assert_eq!(bad.code, Some(4), "{}", bad.stderr);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.starts_with("error: "), "{}", bad.stderr);
}
