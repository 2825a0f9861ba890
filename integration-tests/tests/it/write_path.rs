//! One write path (issue 12): every way a table changes writes its data
//! files the same way. Each path below writes into its own table whose
//! `silt.erasure.subject_columns` is `email`, and every Parquet file left in
//! the table's directory must carry a bloom filter on that column — what the
//! erasure's pruning relies on. (SQL INSERT used to write none.)

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::json;

use crate::harness::Silt;
use crate::server::{NDJSON, Server};

const PROPS: &str = "TBLPROPERTIES ('silt.erasure.subject_columns' = 'email')";

fn create(silt: &Silt, table: &str) {
    silt.ok(&[
        "sql",
        &format!("CREATE TABLE {table} (id BIGINT NOT NULL, email STRING, n INT) {PROPS}"),
    ]);
}

fn values(from: u64, to: u64) -> String {
    (from..to)
        .map(|id| format!("({id}, 'user{id}@example.com', {})", id % 7))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "_delta_log") {
                out.extend(parquet_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

/// `(files, files without a bloom filter on email in some row group)`.
fn bloom_coverage(dir: &Path) -> (usize, Vec<String>) {
    let files = parquet_files(dir);
    let mut missing = Vec::new();
    for file in &files {
        let reader = SerializedFileReader::new(std::fs::File::open(file).expect("open parquet"))
            .expect("a Parquet file");
        let metadata = reader.metadata();
        let without = metadata.row_groups().iter().any(|group| {
            group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == "email")
                .is_none_or(|c| c.bloom_filter_offset().is_none())
        });
        if without {
            missing.push(file.display().to_string());
        }
    }
    (files.len(), missing)
}

fn assert_bloom_filters(silt: &Silt, table: &str, path: &str) {
    let (files, missing) = bloom_coverage(&silt.warehouse().join(table));
    assert!(files > 0, "{path}: wrote no data file into {table}");
    assert!(
        missing.is_empty(),
        "{path}: {} of {files} data files of {table} have no bloom filter on the subject column: {missing:#?}",
        missing.len()
    );
}

#[test]
fn every_write_path_writes_bloom_filters_on_subject_columns() {
    let silt = Silt::new();

    create(&silt, "by_insert");
    silt.ok(&["sql", &format!("INSERT INTO by_insert VALUES {}", values(0, 50))]);
    assert_bloom_filters(&silt, "by_insert", "INSERT … VALUES");

    create(&silt, "by_insert_select");
    silt.ok(&[
        "sql",
        "INSERT INTO by_insert_select SELECT * FROM by_insert WHERE id < 20",
    ]);
    silt.ok(&[
        "sql",
        "INSERT OVERWRITE by_insert_select SELECT * FROM by_insert WHERE id >= 20",
    ]);
    assert_bloom_filters(&silt, "by_insert_select", "INSERT … SELECT / INSERT OVERWRITE");
    assert_eq!(silt.count("by_insert_select", None), 30);

    silt.ok(&[
        "sql",
        &format!("CREATE TABLE by_ctas {PROPS} AS SELECT * FROM by_insert"),
    ]);
    assert_bloom_filters(&silt, "by_ctas", "CREATE TABLE … AS SELECT");

    for (table, statement) in [
        ("by_update", "UPDATE by_update SET n = n + 1 WHERE id % 2 = 0"),
        ("by_delete", "DELETE FROM by_delete WHERE id % 3 = 0"),
        (
            "by_merge",
            "MERGE INTO by_merge t USING (SELECT id, email, n FROM by_insert WHERE id > 40 \
             UNION ALL SELECT 1000 AS id, 'new@example.com' AS email, 1 AS n) s ON t.id = s.id \
             WHEN MATCHED THEN UPDATE SET n = s.n + 10 WHEN NOT MATCHED THEN INSERT *",
        ),
    ] {
        // The seed rows go in by CTAS (bloom filters checked above); the
        // files the statement rewrites are checked with them.
        silt.ok(&[
            "sql",
            &format!("CREATE TABLE {table} {PROPS} AS SELECT * FROM by_insert"),
        ]);
        silt.ok(&["sql", statement]);
        assert_bloom_filters(&silt, table, statement);
    }

    create(&silt, "by_optimize");
    for chunk in 0..3 {
        silt.ok(&[
            "sql",
            &format!(
                "INSERT INTO by_optimize VALUES {}",
                values(chunk * 10, chunk * 10 + 10)
            ),
        ]);
    }
    silt.ok(&["sql", "OPTIMIZE by_optimize"]);
    assert_bloom_filters(&silt, "by_optimize", "OPTIMIZE");

    create(&silt, "by_cli_ingest");
    let file = silt.file(
        "rows.ndjson",
        br#"{"id":1,"email":"a@example.com","n":1}
{"id":2,"email":"b@example.com","n":2}
"#,
    );
    silt.ok(&["ingest", "by_cli_ingest", &file]);
    assert_bloom_filters(&silt, "by_cli_ingest", "silt ingest (embedded)");

    create(&silt, "by_http_ingest");
    let server = Server::start(&silt);
    let rows = b"{\"id\":1,\"email\":\"a@example.com\",\"n\":1}\n".to_vec();
    let reply = server
        .http()
        .post("/v1/tables/by_http_ingest/rows", NDJSON, rows, &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = server.http().post_json(
        "/v1/sql",
        &json!({"sql": format!("INSERT INTO by_http_ingest VALUES {}", values(5, 9))}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_bloom_filters(&silt, "by_http_ingest", "POST rows and /v1/sql INSERT");
}

/// `silt sql "INSERT …; SELECT nope FROM t"` exited 4 with the INSERT
/// committed; every query and INSERT of a command is now planned before any
/// statement runs. Statements on a table the command itself creates still run.
#[test]
fn a_command_whose_later_statement_cannot_be_planned_commits_nothing() {
    let silt = Silt::new();
    create(&silt, "t");
    let run = silt.run(&[
        "sql",
        "INSERT INTO t VALUES (1, 'a@example.com', 1); SELECT nope FROM t",
    ]);
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert_eq!(
        silt.count("t", None),
        0,
        "the INSERT before the bad statement was committed"
    );
    assert_eq!(silt.version("t"), 0);

    let run = silt.run(&[
        "sql",
        "INSERT INTO t VALUES (1, 'a@example.com', 1); INSERT INTO missing VALUES (1)",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(silt.count("t", None), 0);

    // UPDATE, DELETE and MERGE are planned and type-checked up front too
    // (an UPDATE of a column that does not exist committed the INSERT).
    for later in [
        "UPDATE t SET nope = 1",
        "UPDATE t SET n = 'not a number'",
        "DELETE FROM t WHERE nope = 1",
        "MERGE INTO t USING t AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET nope = 1",
        "MERGE INTO t USING missing AS s ON t.id = s.id WHEN MATCHED THEN DELETE",
    ] {
        let run = silt.run(&[
            "sql",
            &format!("INSERT INTO t VALUES (1, 'a@example.com', 1); {later}"),
        ]);
        assert!(
            matches!(run.code, Some(3 | 4)),
            "{later}: {:?} {}",
            run.code,
            run.stderr
        );
        assert_eq!(
            silt.count("t", None),
            0,
            "{later}: the INSERT before it was committed"
        );
    }
    assert_eq!(silt.version("t"), 0);

    silt.ok(&[
        "sql",
        "CREATE TABLE u (id BIGINT); INSERT INTO u VALUES (1), (2); ALTER TABLE u ADD COLUMN c STRING; \
         INSERT INTO u VALUES (3, 'x'); SELECT count(*) FROM u",
    ]);
    assert_eq!(silt.count("u", None), 3);
}
