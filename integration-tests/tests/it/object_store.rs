//! A warehouse on an S3-compatible object store (moto's server, real HTTP on
//! loopback): create, ingest, query, time travel, list — and Python deltalake
//! reads the same table from the bucket.

use serde_json::json;

use crate::harness::{Moto, Silt, peer_with_env};

#[test]
fn s3_warehouse_round_trip() {
    let moto = Moto::start("lake");
    let silt = Silt::at("s3://lake/wh", moto.envs());
    silt.ok(&[
        "sql",
        "CREATE TABLE events (id BIGINT NOT NULL, name VARCHAR, day DATE) PARTITIONED BY (day)",
    ]);
    let csv = silt.file("a.csv", b"id,name,day\n1,a,2026-01-01\n2,b,2026-01-02\n");
    let ndjson = silt.file("b.ndjson", b"{\"id\":3,\"name\":\"c\",\"day\":\"2026-01-02\"}\n");
    assert_eq!(
        silt.ok(&["ingest", "events", &csv]).trim(),
        "ingested 2 rows into events (version 1)"
    );
    assert_eq!(
        silt.ok(&["ingest", "events", &ndjson]).trim(),
        "ingested 1 rows into events (version 2)"
    );

    assert_eq!(silt.count("events", None), 3);
    assert_eq!(silt.count("events", Some(1)), 2);
    assert_eq!(
        silt.scalar("SELECT count(*) FROM events WHERE day = DATE '2026-01-02'"),
        json!(2)
    );
    assert_eq!(silt.ok(&["table", "list", "--format", "csv"]), "name\nevents\n");
    assert_eq!(silt.rows("DESCRIBE HISTORY events").len(), 3);

    let rows = peer_with_env(
        &["read", "deltalake", "s3://lake/wh/events", "--columns", "id,name"],
        &moto.envs(),
    );
    assert_eq!(rows, json!([[1, "a"], [2, "b"], [3, "c"]]));
}
