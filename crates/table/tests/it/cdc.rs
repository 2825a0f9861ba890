//! CDC apply (SCD type 1) against a model: random upserts and deletes over a
//! few keys, delivered shuffled, with duplicates, in batches of random size,
//! must leave exactly the rows the model has (each key as its
//! highest-sequence event says).

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::logical_expr::{col, lit};
use deltalake::datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use silt_table::{ApplyChanges, Table, TableError, TableSpec, Warehouse};

fn table_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, true),
    ]))
}

fn event_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, true),
        Field::new("op", DataType::Utf8, false),
    ]))
}

#[derive(Debug, Clone)]
struct Event {
    id: i64,
    seq: i64,
    delete: bool,
    v: String,
}

fn events_batch(events: &[Event]) -> RecordBatch {
    RecordBatch::try_new(
        event_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.id))),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.v.clone()))),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.seq))),
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| if e.delete { "d" } else { "u" }),
            )),
        ],
    )
    .expect("batch")
}

fn spec() -> ApplyChanges {
    ApplyChanges {
        keys: vec!["id".into()],
        sequence: Some("seq".into()),
        delete_when: Some(col("op").eq(lit("d"))),
        columns: None,
        transactions: Vec::new(),
    }
}

async fn apply(table: &Table, events: &[Event]) -> Result<(Table, silt_table::ApplyCounts), TableError> {
    let ctx = SessionContext::new();
    let mem = MemTable::try_new(event_schema(), vec![vec![events_batch(events)]]).expect("memtable");
    let frame = ctx.read_table(Arc::new(mem)).expect("frame");
    table.change().apply_changes(frame, &spec()).await
}

/// Every row of `table`: id → (v, seq).
async fn rows(table: &Table) -> BTreeMap<i64, (String, i64)> {
    let ctx = SessionContext::new();
    let provider = table
        .table_provider(&Arc::new(ctx.state()))
        .await
        .expect("provider");
    let batches = ctx
        .read_table(provider)
        .expect("read")
        .collect()
        .await
        .expect("collect");
    let mut out = BTreeMap::new();
    for batch in batches {
        let ids = batch
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int64Type>()
            .clone();
        let seqs = batch
            .column_by_name("seq")
            .expect("seq")
            .as_primitive::<Int64Type>()
            .clone();
        let vs = deltalake::arrow::compute::cast(batch.column_by_name("v").expect("v"), &DataType::Utf8)
            .expect("cast");
        let vs = vs.as_string::<i32>();
        for i in 0..batch.num_rows() {
            let previous = out.insert(ids.value(i), (vs.value(i).to_string(), seqs.value(i)));
            assert!(previous.is_none(), "key {} twice", ids.value(i));
            assert!(!vs.is_null(i));
        }
    }
    out
}

async fn created(warehouse: &Warehouse) -> Table {
    warehouse
        .create_table(
            "t",
            TableSpec {
                schema: table_schema(),
                partition_columns: vec![],
                properties: Default::default(),
                if_not_exists: false,
            },
        )
        .await
        .expect("created")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_changes_give_the_models_table() {
    let seed: u64 = std::env::var("SILT_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("SILT_MODEL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("opens");
    let mut table = created(&warehouse).await;

    // The true history, in sequence order.
    let keys = 40;
    let mut history = Vec::new();
    for seq in 1..=500 {
        let id = rng.random_range(0..keys);
        let delete = rng.random_bool(0.25);
        history.push(Event {
            id,
            seq,
            delete,
            v: format!("v{seq}"),
        });
    }
    let mut model: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    for e in &history {
        if e.delete {
            model.remove(&e.id);
        } else {
            model.insert(e.id, (e.v.clone(), e.seq));
        }
    }
    // Delivered shuffled, a tenth of them twice.
    let mut delivery = history.clone();
    for e in &history {
        if rng.random_bool(0.1) {
            delivery.push(e.clone());
        }
    }
    delivery.shuffle(&mut rng);
    let mut at = 0;
    let mut applies = 0;
    while at < delivery.len() {
        let n = rng.random_range(1..=60).min(delivery.len() - at);
        let (after, _) = apply(&table, &delivery[at..at + n]).await.expect("apply");
        table = after;
        at += n;
        applies += 1;
    }
    let got = rows(&table).await;
    assert_eq!(got, model, "seed {seed}, {applies} applies");
    let reopened = warehouse.table("t").await.expect("reopen");
    assert_eq!(rows(&reopened).await, model, "seed {seed}: reopened");
    assert!(table.tombstones().await.expect("tombstones").is_some());
}

#[tokio::test]
async fn a_late_update_does_not_bring_a_deleted_row_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("opens");
    let table = created(&warehouse).await;
    let up = |id, seq| Event {
        id,
        seq,
        delete: false,
        v: format!("v{seq}"),
    };
    let down = |id, seq| Event {
        id,
        seq,
        delete: true,
        v: String::new(),
    };
    let (table, counts) = apply(&table, &[up(1, 1), up(1, 3), up(2, 1), down(2, 2)])
        .await
        .expect("apply");
    assert_eq!(
        (counts.events, counts.inserted, counts.tombstones),
        (4, 1, 1),
        "{counts:?}"
    );
    assert_eq!(rows(&table).await, BTreeMap::from([(1, ("v3".to_string(), 3))]));
    // Late: below the row's sequence and below the tombstone.
    let (table, counts) = apply(&table, &[up(1, 2), up(2, 1), up(2, 2)])
        .await
        .expect("apply");
    assert_eq!(counts.unchanged(), 3, "{counts:?}");
    assert_eq!(rows(&table).await.len(), 1);
    // Replaying the delete itself is harmless; a newer upsert comes back.
    let (table, _) = apply(&table, &[down(2, 2), up(2, 5)]).await.expect("apply");
    assert_eq!(
        rows(&table).await,
        BTreeMap::from([(1, ("v3".to_string(), 3)), (2, ("v5".to_string(), 5))])
    );
}

#[tokio::test]
async fn a_change_without_a_sequence_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("opens");
    let table = created(&warehouse).await;
    let ctx = SessionContext::new();
    let batch = RecordBatch::try_new(
        event_schema(),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Int64Array::from(vec![None])),
            Arc::new(StringArray::from(vec!["u"])),
        ],
    )
    .expect("batch");
    let mem = MemTable::try_new(event_schema(), vec![vec![batch]]).expect("memtable");
    let frame = ctx.read_table(Arc::new(mem)).expect("frame");
    let error = table
        .change()
        .apply_changes(frame, &spec())
        .await
        .expect_err("refused");
    assert!(matches!(error, TableError::Rejected { .. }), "{error}");
    assert_eq!(warehouse.table("t").await.expect("opens").version(), 0);
}

/// The shape ingest sends: every table column named, the delete marker
/// compared as text, and no delete in the batch.
#[tokio::test]
async fn ingest_shaped_changes_without_deletes_apply() {
    use deltalake::arrow::datatypes::DataType as T;
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("opens");
    let table = created(&warehouse).await;
    let ctx = SessionContext::new();
    let events = [
        Event {
            id: 1,
            seq: 1,
            delete: false,
            v: "a".into(),
        },
        Event {
            id: 2,
            seq: 1,
            delete: false,
            v: "b".into(),
        },
    ];
    let mem = MemTable::try_new(event_schema(), vec![vec![events_batch(&events)]]).expect("memtable");
    let frame = ctx.read_table(Arc::new(mem)).expect("frame");
    let spec = ApplyChanges {
        keys: vec!["id".into()],
        sequence: Some("seq".into()),
        delete_when: Some(deltalake::datafusion::logical_expr::cast(col("op"), T::Utf8).eq(lit("d"))),
        columns: Some(vec!["id".into(), "v".into(), "seq".into()]),
        transactions: Vec::new(),
    };
    let (table, counts) = match table.change().apply_changes(frame, &spec).await {
        Ok(done) => done,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(counts.inserted, 2, "{counts:?}");
    assert_eq!(rows(&table).await.len(), 2);
}
