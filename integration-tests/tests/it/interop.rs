//! Interop both ways: Python deltalake, DuckDB and Polars read silt's tables
//! (latest and an earlier version, same rows, table properties); silt reads a
//! partitioned, multi-version table written by Python deltalake, with time
//! travel and partition pruning.

use serde_json::{Value, json};

use crate::harness::{Silt, peer};

/// A silt table over two ingests, with every common type and nulls.
fn silt_table() -> Silt {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE events (id BIGINT NOT NULL, name VARCHAR, amount DOUBLE, day DATE, ts TIMESTAMP, \
         flag BOOLEAN) PARTITIONED BY (day) TBLPROPERTIES ('silt.erasure.subject_columns' = 'name')",
    ]);
    let csv = silt.file(
        "a.csv",
        b"id,name,amount,day,ts,flag\n\
          1,ada,1.5,2026-01-01,2026-01-01T10:00:00Z,true\n\
          2,,2.25,2026-01-02,2026-01-02T11:30:00.123456Z,false\n\
          3,grace,,2026-01-01,,\n",
    );
    let ndjson = silt.file(
        "b.ndjson",
        b"{\"id\":4,\"name\":\"linus\",\"amount\":-4,\"day\":\"2026-01-03\",\"ts\":\"2026-01-03T00:00:00Z\",\"flag\":true}\n\
          {\"id\":5,\"day\":\"2026-01-03\"}\n",
    );
    silt.ok(&["ingest", "events", &csv]);
    silt.ok(&["ingest", "events", &ndjson]);
    silt
}

const PEER_COLUMNS: &str = "id,name,amount,day,ts,flag";

fn silt_rows(silt: &Silt, version: Option<u64>) -> Vec<Value> {
    let at = version.map(|v| format!(" VERSION AS OF {v}")).unwrap_or_default();
    silt.rows(&format!(
        "SELECT id, name, amount, CAST(day AS VARCHAR), CAST(ts AS BIGINT), flag FROM events{at} ORDER BY id"
    ))
}

fn peer_rows(engine: &str, path: &str, version: Option<u64>) -> Vec<Value> {
    let version = version.map(|v| v.to_string());
    let mut args = vec!["read", engine, path, "--columns", PEER_COLUMNS];
    if let Some(v) = &version {
        args.extend(["--version", v]);
    }
    peer(&args).as_array().expect("rows").clone()
}

#[test]
fn peers_read_silt_tables_at_latest_and_earlier_versions() {
    let silt = silt_table();
    let path = silt.table_path("events");
    let latest = silt_rows(&silt, None);
    let v1 = silt_rows(&silt, Some(1));
    assert_eq!(latest.len(), 5);
    assert_eq!(v1.len(), 3);
    assert_eq!(
        latest[1],
        json!([2, null, 2.25, "2026-01-02", 1_767_353_400_123_456_i64, false])
    );
    for engine in ["deltalake", "polars", "duckdb"] {
        assert_eq!(
            peer_rows(engine, &path, None),
            latest,
            "{engine} at the latest version"
        );
    }
    // DuckDB's delta extension (1.4.4) has no time travel parameter.
    for engine in ["deltalake", "polars"] {
        assert_eq!(peer_rows(engine, &path, Some(1)), v1, "{engine} at version 1");
    }
}

#[test]
fn table_properties_are_delta_configuration() {
    let silt = silt_table();
    let configuration = peer(&["configuration", &silt.table_path("events")]);
    assert_eq!(configuration["silt.erasure.subject_columns"], json!("name"));
}

#[test]
fn silt_reads_a_partitioned_multi_version_table_written_by_deltalake() {
    let silt = Silt::new();
    std::fs::create_dir_all(silt.warehouse()).expect("warehouse dir");
    let written = peer(&["write_partitioned", &silt.table_path("pyt")]);
    assert_eq!(written["version"], json!(2));

    assert_eq!(silt.count("pyt", None), 4);
    assert_eq!(silt.count("pyt", Some(0)), 3);
    assert_eq!(silt.count("pyt", Some(1)), 5);
    assert_eq!(
        silt.rows("SELECT id FROM pyt ORDER BY id"),
        vec![json!([2]), json!([3]), json!([4]), json!([5])]
    );
    assert_eq!(
        silt.scalar("SELECT count(*) FROM pyt WHERE day = DATE '2026-01-02'"),
        json!(2)
    );
    assert_eq!(
        silt.scalar("SELECT count(*) FROM pyt VERSION AS OF 0 WHERE day = DATE '2026-01-02'"),
        json!(0)
    );

    // Partition pruning: the scan lists only files of the selected partition.
    let plan = silt.ok(&[
        "sql",
        "--format",
        "csv",
        "EXPLAIN SELECT id, name FROM pyt WHERE day = DATE '2026-01-02'",
    ]);
    assert!(
        plan.contains("day=2026-01-02"),
        "scan should read the 2026-01-02 partition:\n{plan}"
    );
    assert!(
        !plan.contains("day=2026-01-01"),
        "scan must skip the 2026-01-01 partition:\n{plan}"
    );
}

#[test]
fn file_skipping_by_statistics() {
    let silt = Silt::new();
    silt.ok(&["sql", "CREATE TABLE nums (id BIGINT, v VARCHAR)"]);
    // Three commits → three files with disjoint id ranges.
    for (i, range) in [(1, 1..=100), (2, 101..=200), (3, 201..=300)] {
        let mut csv = String::from("id,v\n");
        for id in range {
            csv.push_str(&format!("{id},v{id}\n"));
        }
        let file = silt.file(&format!("n{i}.csv"), csv.as_bytes());
        silt.ok(&["ingest", "nums", &file]);
    }
    let plan = silt.ok(&[
        "sql",
        "--format",
        "csv",
        "EXPLAIN SELECT v FROM nums WHERE id BETWEEN 150 AND 160",
    ]);
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("no scan in:\n{plan}"));
    assert_eq!(
        scan.matches(".parquet").count(),
        1,
        "only one file can hold ids 150..160:\n{plan}"
    );
    // The scan follows the session's settings: without them deltalake forced
    // Parquet row-filter pushdown and fed it the predicate twice (3x slower
    // filtered scans in benches/results/2026-11-25-bulk.md).
    assert_eq!(
        scan.matches("id@0 >= 150").count(),
        1,
        "predicate applied once:\n{scan}"
    );
    assert_eq!(
        silt.scalar("SELECT count(*) FROM nums WHERE id BETWEEN 150 AND 160"),
        json!(11)
    );
}
