//! Bad input: one `error:` line on stderr naming the problem, a non-zero exit,
//! no panic, and no new commit.

use crate::harness::{Run, Silt};

fn setup() -> Silt {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"]);
    let csv = silt.file("ok.csv", b"id,name\n1,a\n");
    silt.ok(&["ingest", "t", &csv]);
    silt
}

fn assert_clean_failure(run: &Run, code: i32, mentions: &[&str]) {
    assert_eq!(run.code, Some(code), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one stderr line, got: {:?}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for m in mentions {
        assert!(lines[0].contains(m), "{:?} does not mention {m:?}", lines[0]);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn unknown_table() {
    let silt = setup();
    assert_clean_failure(
        &silt.run(&["sql", "SELECT * FROM nope"]),
        3,
        &["nope", "not found"],
    );
    assert_clean_failure(
        &silt.run(&["ingest", "nope", &silt.file("x.csv", b"id\n1\n")]),
        3,
        &["nope"],
    );
    assert_clean_failure(&silt.run(&["table", "describe", "nope"]), 3, &["nope"]);
}

#[test]
fn syntax_error_names_the_position() {
    let silt = setup();
    assert_clean_failure(
        &silt.run(&["sql", "SELEC * FROM t"]),
        4,
        &["syntax error", "Line: 1, Column: 1"],
    );
    assert_eq!(silt.version("t"), 1);
}

#[test]
fn missing_version_and_too_early_timestamp() {
    let silt = setup();
    assert_clean_failure(
        &silt.run(&["sql", "SELECT * FROM t VERSION AS OF 99"]),
        3,
        &["'t'", "no version 99"],
    );
    assert_clean_failure(
        &silt.run(&["sql", "SELECT * FROM t TIMESTAMP AS OF '2000-01-01T00:00:00Z'"]),
        3,
        &["'t'", "2000-01-01", "earliest commit"],
    );
}

#[test]
fn wrong_type_in_csv_rejects_the_file_and_commits_nothing() {
    let silt = setup();
    let bad = silt.file("bad.csv", b"id,name\n2,b\nabc,c\n4,d\n");
    let run = silt.run(&["ingest", "t", &bad]);
    assert_clean_failure(&run, 4, &["bad.csv", "row 2 (line 3)", "column 'id'"]);
    assert!(
        !run.stderr.contains("abc"),
        "the value must not be echoed: {}",
        run.stderr
    );
    assert_eq!(silt.version("t"), 1);
    assert_eq!(silt.count("t", None), 1);
}

#[test]
fn null_in_not_null_column_is_rejected() {
    let silt = setup();
    let bad = silt.file("bad.ndjson", b"{\"id\":2}\n{\"name\":\"x\"}\n");
    assert_clean_failure(
        &silt.run(&["ingest", "t", &bad]),
        4,
        &["bad.ndjson", "row 2", "column 'id'", "NOT NULL"],
    );
    assert_eq!(silt.version("t"), 1);
}

#[test]
fn unreadable_files() {
    let silt = setup();
    let missing = silt.scratch("missing.csv");
    assert_clean_failure(
        &silt.run(&["ingest", "t", &missing.to_string_lossy()]),
        3,
        &["missing.csv"],
    );
    let junk = silt.file("junk.parquet", &[0x13, 0x37, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_clean_failure(
        &silt.run(&["ingest", "t", &junk]),
        4,
        &["junk.parquet", "Parquet"],
    );
    let json = silt.file("broken.ndjson", b"{\"id\":1}\n{\"id\":\n");
    assert_clean_failure(
        &silt.run(&["ingest", "t", &json]),
        4,
        &["broken.ndjson", "line 2"],
    );
    // A good file listed with a bad one: nothing is committed.
    let good = silt.file("good.csv", b"id,name\n5,e\n");
    assert_clean_failure(&silt.run(&["ingest", "t", &good, &junk]), 4, &["junk.parquet"]);
    assert_eq!(silt.version("t"), 1);
}
