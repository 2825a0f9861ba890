//! `silt sql "CREATE TABLE"` + `silt ingest` of CSV and NDJSON, counted by
//! `silt sql`, with `VERSION AS OF` the previous version.

use crate::harness::Silt;

const CREATE: &str = "CREATE TABLE events (id BIGINT NOT NULL, name VARCHAR, amount DOUBLE, day DATE) \
                      PARTITIONED BY (day)";

#[test]
fn csv_then_ndjson_counts_and_previous_version() {
    let silt = Silt::new();
    silt.ok(&["sql", CREATE]);
    let csv = silt.file(
        "a.csv",
        b"id,name,amount,day\n1,a,1.5,2026-01-01\n2,,2.5,2026-01-02\n3,c,,2026-01-01\n",
    );
    let ndjson = silt.file(
        "b.ndjson",
        b"{\"id\":4,\"name\":\"d\",\"amount\":4,\"day\":\"2026-01-03\"}\n{\"id\":5,\"day\":\"2026-01-03\"}\n",
    );

    let out = silt.ok(&["ingest", "events", &csv]);
    assert_eq!(out.trim(), "ingested 3 rows into events (version 1)");
    let out = silt.ok(&["ingest", "events", &ndjson]);
    assert_eq!(out.trim(), "ingested 2 rows into events (version 2)");

    assert_eq!(silt.count("events", None), 5);
    assert_eq!(silt.count("events", Some(1)), 3);
    assert_eq!(silt.count("events", Some(0)), 0);
    // Values and nulls made it through the casts.
    let rows = silt.rows("SELECT id, name, amount, CAST(day AS VARCHAR) FROM events ORDER BY id");
    assert_eq!(rows[1], serde_json::json!([2, null, 2.5, "2026-01-02"]));
    assert_eq!(rows[2], serde_json::json!([3, "c", null, "2026-01-01"]));
    assert_eq!(rows[4], serde_json::json!([5, null, null, "2026-01-03"]));
}

#[test]
fn several_files_are_one_commit() {
    let silt = Silt::new();
    silt.ok(&["sql", CREATE]);
    let a = silt.file("a.csv", b"id,day\n1,2026-01-01\n");
    let b = silt.file("b.jsonl", b"{\"id\":2,\"day\":\"2026-01-02\"}\n");
    let out = silt.ok(&["ingest", "events", &a, &b]);
    assert_eq!(out.trim(), "ingested 2 rows into events (version 1)");
    assert_eq!(silt.version("events"), 1);
}

#[test]
fn create_infers_the_schema() {
    let silt = Silt::new();
    let ndjson = silt.file(
        "clicks.ndjson",
        b"{\"id\":1,\"url\":\"/a\",\"ms\":1.5,\"ok\":true}\n{\"id\":2,\"url\":\"/b\",\"ms\":2,\"ok\":false}\n",
    );
    let out = silt.ok(&["ingest", "clicks", &ndjson, "--create"]);
    assert!(out.contains("ingested 2 rows into clicks"), "{out}");
    let described: serde_json::Value =
        serde_json::from_str(&silt.ok(&["table", "describe", "--format", "json", "clicks"])).expect("json");
    let types: Vec<(String, String)> = described["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").into(),
                c["type"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let sql_types: Vec<&str> = described["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["sql_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sql_types, ["BIGINT", "STRING", "DOUBLE", "BOOLEAN"]);
    let text = silt.ok(&["table", "describe", "clicks"]);
    assert!(text.contains("STRING") && !text.contains("Utf8"), "{text}");
    assert_eq!(
        types,
        vec![
            ("id".into(), "Int64".into()),
            ("url".into(), "Utf8".into()),
            ("ms".into(), "Float64".into()),
            ("ok".into(), "Boolean".into())
        ]
    );
    assert_eq!(
        silt.scalar("SELECT sum(ms) FROM clicks WHERE ok"),
        serde_json::json!(1.5)
    );
}

#[test]
fn warehouse_flag_and_table_list() {
    let silt = Silt::new();
    let other = silt.scratch("other-wh");
    let other = other.to_string_lossy();
    silt.ok(&["sql", "--warehouse", &other, "CREATE TABLE a (x INT)"]);
    silt.ok(&["sql", "CREATE TABLE b (x INT)"]);
    assert_eq!(
        silt.ok(&["table", "--warehouse", &other, "list", "--format", "csv"]),
        "name\na\n"
    );
    assert_eq!(silt.ok(&["table", "list", "--format", "csv"]), "name\nb\n");
}

#[test]
fn input_without_rows_commits_nothing() {
    let silt = Silt::new();
    silt.ok(&["sql", CREATE]);
    let empty = silt.file("empty.csv", b"id,name,amount,day\n");
    let out = silt.ok(&["ingest", "events", &empty]);
    assert_eq!(out.trim(), "ingested 0 rows into events (version 0)");
    assert_eq!(silt.version("events"), 0);
}
