//! A damaged ledger: rows written into `_silt_erasures` by something other
//! than silt (another Delta tool, an older or newer silt, a forger) must not
//! stall the worker. Such rows are skipped and listed as `invalid`; every
//! well-formed pending request is still erased and certified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;
use serde_json::Value;
use silt_erasure::{
    Erasure, ErasureConfig, LEDGER_TABLE, NewRequest, RequestView, Status, verify_certificate,
};
use silt_table::{CommitOptions, Warehouse, WriteMode};

use crate::{ALICE, batch, grep_dir, subject_table};

const BOB: &str = "bob-91c2@example.com";
const CAROL: &str = "carol-5d0a@example.com";
/// A value a forger put where an id belongs: it must never be shown.
const PLANTED: &str = "planted-subject-e3b1@example.com";

/// One ledger row as another tool would write it: every column as text,
/// number, timestamp or flag, any of them null.
#[derive(Clone, Default)]
struct Row {
    id: Option<String>,
    seq: Option<i64>,
    request_id: Option<String>,
    status: Option<String>,
    received_at: Option<i64>,
    updated_at: Option<i64>,
    subject_hashes: Option<String>,
    tables: Option<String>,
    purge: Option<bool>,
    sealed: Option<String>,
    results: Option<String>,
    error: Option<String>,
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A row whose every required column is filled with a plausible value.
fn plausible(id: &str, status: &str) -> Row {
    Row {
        id: text(id),
        seq: Some(0),
        status: text(status),
        received_at: Some(now_micros()),
        updated_at: Some(now_micros()),
        subject_hashes: Some(serde_json::json!(["ab".repeat(32)]).to_string()),
        purge: Some(true),
        ..Row::default()
    }
}

fn ledger_schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("request_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("received_at", ts(), false),
        Field::new("updated_at", ts(), false),
        Field::new("subject_hashes", DataType::Utf8, false),
        Field::new("tables", DataType::Utf8, true),
        Field::new("purge", DataType::Boolean, false),
        Field::new("sealed", DataType::Utf8, true),
        Field::new("results", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// Appends `rows` to the ledger table directly, as another Delta writer would.
async fn append_rows(warehouse: &Warehouse, rows: &[Row]) {
    let text = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let micros = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| r.id.clone()),
        Arc::new(rows.iter().map(|r| r.seq).collect::<Int64Array>()),
        text(&|r| r.request_id.clone()),
        text(&|r| r.status.clone()),
        micros(&|r| r.received_at),
        micros(&|r| r.updated_at),
        text(&|r| r.subject_hashes.clone()),
        text(&|r| r.tables.clone()),
        Arc::new(rows.iter().map(|r| r.purge).collect::<BooleanArray>()),
        text(&|r| r.sealed.clone()),
        text(&|r| r.results.clone()),
        text(&|r| r.error.clone()),
    ];
    let batch = RecordBatch::try_new(ledger_schema(), columns).expect("ledger batch");
    let mut table = warehouse.table(LEDGER_TABLE).await.expect("ledger table");
    table
        .write(vec![batch], WriteMode::Append, CommitOptions::default())
        .await
        .expect("append to the ledger");
}

/// Every row of the ledger as it is on disk.
async fn ledger_rows(warehouse: &Warehouse) -> Vec<Row> {
    let table = warehouse.table(LEDGER_TABLE).await.expect("ledger table");
    let context = SessionContext::new();
    let provider = table
        .table_provider(&std::sync::Arc::new(context.state()))
        .await
        .expect("provider");
    let batches = context
        .read_table(provider)
        .expect("read")
        .collect()
        .await
        .expect("collect");
    let mut rows = Vec::new();
    for batch in &batches {
        let utf8 = |name: &str| {
            let column = batch.column_by_name(name).expect("column");
            arrow::compute::cast(column, &DataType::Utf8).expect("cast")
        };
        let int = |name: &str| {
            let column = batch.column_by_name(name).expect("column");
            arrow::compute::cast(column, &DataType::Int64).expect("cast")
        };
        let strings: Vec<ArrayRef> = [
            "id",
            "request_id",
            "status",
            "subject_hashes",
            "tables",
            "sealed",
            "results",
            "error",
        ]
        .iter()
        .map(|n| utf8(n))
        .collect();
        let (seq, received, updated) = (int("seq"), int("received_at"), int("updated_at"));
        let purge = batch.column_by_name("purge").expect("purge");
        use arrow::array::{Array, AsArray};
        let s = |a: &ArrayRef, i: usize| {
            let a = a.as_string::<i32>();
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let n = |a: &ArrayRef, i: usize| {
            let a = a.as_primitive::<arrow::datatypes::Int64Type>();
            (!a.is_null(i)).then(|| a.value(i))
        };
        for i in 0..batch.num_rows() {
            rows.push(Row {
                id: s(&strings[0], i),
                seq: n(&seq, i),
                request_id: s(&strings[1], i),
                status: s(&strings[2], i),
                received_at: n(&received, i),
                updated_at: n(&updated, i),
                subject_hashes: s(&strings[3], i),
                tables: s(&strings[4], i),
                purge: (!purge.is_null(i)).then(|| purge.as_boolean().value(i)),
                sealed: s(&strings[5], i),
                results: s(&strings[6], i),
                error: s(&strings[7], i),
            });
        }
    }
    rows
}

fn config() -> ErasureConfig {
    ErasureConfig {
        secret: Some("damaged-ledger-secret".into()),
        key: Some("5a".repeat(32)),
        ..ErasureConfig::default()
    }
}

/// A warehouse with table `people` holding ALICE, BOB and CAROL.
async fn people(dir: &tempfile::TempDir) -> Warehouse {
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
    let mut table = subject_table(&warehouse, "people", &[]).await;
    for (ids, emails) in [
        (vec![1, 2], vec![ALICE, BOB]),
        (vec![3, 4], vec![CAROL, "dan@example.com"]),
    ] {
        table
            .write(
                vec![batch(&ids, &emails)],
                WriteMode::Append,
                CommitOptions::default(),
            )
            .await
            .expect("write");
    }
    warehouse
}

async fn submit(erasure: &Erasure, subject: &str) -> String {
    erasure
        .submit(NewRequest {
            subjects: vec![subject.into()],
            ..NewRequest::default()
        })
        .await
        .expect("submit")
        .id
}

/// The worker loop in the background; dropping the sender stops it.
fn start_worker(erasure: &Arc<Erasure>) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(erasure.clone().work(stopped));
    stop
}

/// Polls the request until it is finished, for at most `within`.
async fn wait_finished(erasure: &Erasure, id: &str, within: Duration) -> RequestView {
    let deadline = Instant::now() + within;
    loop {
        let view = erasure.get(id).await.expect("the request can be read");
        if matches!(view.status, Status::Done | Status::Failed) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "erasure {id} still {:?} after {within:?}: {:?}",
            view.status,
            view.error
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows of every kind of damage appended to the ledger; a real request filed
/// afterwards is erased by the running worker within a bounded time, its
/// certificate verifies, and the listing shows the damaged rows as `invalid`
/// (none as `done`, none quoting a value), before and after the ledger's
/// compaction.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_ledger_rows_are_skipped_and_real_requests_still_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = people(&dir).await;
    let erasure = Arc::new(Erasure::open(warehouse.clone(), config()).expect("open"));
    // A first real request creates the ledger and gives a genuine certificate.
    let bob = submit(&erasure, BOB).await;
    assert_eq!(erasure.run_pending().await.expect("run"), 1);
    let bob_view = erasure.get(&bob).await.expect("bob");
    assert_eq!(bob_view.status, Status::Done, "{:?}", bob_view.error);
    let bob_certificate = bob_view.certificate.clone().expect("certificate");

    let forged_done = uuid::Uuid::new_v4().to_string();
    let copied_done = uuid::Uuid::new_v4().to_string();
    let mut edited = bob_certificate.clone();
    edited["request_id"] = Value::from(forged_done.clone());
    let damaged = [
        // What `INSERT INTO _silt_erasures VALUES (…'garbage'…)` writes.
        Row {
            id: text("garbage"),
            seq: Some(1),
            request_id: text("garbage"),
            status: text("garbage"),
            received_at: Some(now_micros()),
            updated_at: Some(now_micros()),
            subject_hashes: text("garbage"),
            tables: text("garbage"),
            purge: Some(true),
            sealed: text("garbage"),
            results: text("garbage"),
            error: text("garbage"),
        },
        // A subject value where the id belongs.
        plausible(PLANTED, "pending"),
        // Unknown status.
        plausible(&uuid::Uuid::new_v4().to_string(), "cancelled"),
        // subject_hashes not JSON, or JSON of the wrong shape, or not hashes.
        Row {
            subject_hashes: text("{not json"),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "pending")
        },
        Row {
            subject_hashes: text(r#"{"a": 1}"#),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "pending")
        },
        Row {
            subject_hashes: Some(serde_json::json!([PLANTED]).to_string()),
            sealed: text("00"),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "pending")
        },
        // A pending request whose sealed subjects do not open.
        Row {
            sealed: text(&"cd".repeat(40)),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "pending")
        },
        Row {
            sealed: text("not hex at all"),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "running")
        },
        // A pending request without sealed subjects (a missing field).
        plausible(&uuid::Uuid::new_v4().to_string(), "pending"),
        // Bad JSON in results and tables.
        Row {
            results: text("{garbage"),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "done")
        },
        Row {
            tables: text("[1, 2"),
            ..plausible(&uuid::Uuid::new_v4().to_string(), "pending")
        },
        // Forged `done` rows: an edited certificate, and a genuine one copied
        // under another id.
        Row {
            results: text(&edited.to_string()),
            ..plausible(&forged_done, "done")
        },
        Row {
            results: text(&bob_certificate.to_string()),
            subject_hashes: Some(bob_certificate["subject_hashes"].to_string()),
            ..plausible(&copied_done, "done")
        },
        // A row of the finished request BOB going back to pending (an
        // unknown transition): the signed done row stands.
        Row {
            seq: Some(99),
            subject_hashes: Some(bob_certificate["subject_hashes"].to_string()),
            ..plausible(&bob, "pending")
        },
    ];
    append_rows(&warehouse, &damaged).await;
    let invalid_ids = |listing: &[RequestView]| -> Vec<String> {
        let mut ids: Vec<String> = listing
            .iter()
            .filter(|v| v.status == Status::Invalid)
            .map(|v| v.id.clone())
            .collect();
        ids.sort();
        ids
    };
    let invalid_before = invalid_ids(&erasure.list().await.expect("list"));

    // The worker runs in the background as the server runs it.
    let stop = start_worker(&erasure);
    let alice = submit(&erasure, ALICE).await;
    let view = wait_finished(&erasure, &alice, Duration::from_secs(60)).await;
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    let certificate = view.certificate.expect("certificate");
    assert!(verify_certificate(&certificate, erasure.secrets()));
    assert_eq!(certificate["tables"][0]["rows_deleted"], 1, "{certificate:#}");
    let mut hits = Vec::new();
    grep_dir(&dir.path().join("people"), ALICE.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "subject still in {hits:?}");

    // A second real request after the compaction is erased as well.
    let carol = submit(&erasure, CAROL).await;
    let view = wait_finished(&erasure, &carol, Duration::from_secs(60)).await;
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    drop(stop);

    let check_listing = |listing: Vec<RequestView>| {
        let done: Vec<&str> = listing
            .iter()
            .filter(|v| v.status == Status::Done)
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(done.len(), 3, "only the three real requests are done: {done:?}");
        for id in [&bob, &alice, &carol] {
            assert!(done.contains(&id.as_str()), "{id} not done in {done:?}");
        }
        let invalid: Vec<&RequestView> = listing.iter().filter(|v| v.status == Status::Invalid).collect();
        assert_eq!(
            invalid.len(),
            damaged.len() - 1,
            "every damaged row but BOB's is listed"
        );
        for view in &invalid {
            assert!(view.certificate.is_none(), "{view:?}");
            assert!(view.subject_hashes.is_empty(), "{view:?}");
            assert!(view.error.as_deref().is_some_and(|e| !e.is_empty()), "{view:?}");
        }
        for id in [&forged_done, &copied_done] {
            let view = invalid
                .iter()
                .find(|v| &v.id == id)
                .expect("the forged done row is listed as invalid");
            assert!(
                view.error.as_deref().is_some_and(|e| e.contains("certificate")),
                "{view:?}"
            );
        }
        let shown = serde_json::to_string(&listing).expect("json");
        for value in [PLANTED, "garbage", "cancelled", ALICE, BOB, CAROL] {
            assert!(!shown.contains(value), "the listing quotes '{value}': {shown}");
        }
    };
    let listing = erasure.list().await.expect("list");
    // The entries keep their ids across the compactions.
    assert_eq!(invalid_ids(&listing), invalid_before);
    check_listing(listing);
    // BOB keeps its genuine certificate.
    let bob_now = erasure.get(&bob).await.expect("bob");
    assert_eq!(bob_now.status, Status::Done);
    assert_eq!(bob_now.certificate.as_ref(), Some(&bob_certificate));
    // A forged done row found by id is not done either.
    assert_eq!(
        erasure.get(&forged_done).await.expect("forged").status,
        Status::Invalid
    );

    // The compactions kept the damaged rows (silt does not delete what it
    // cannot read; the listing keeps showing them) and dropped every sealed
    // subject of a finished request.
    let rows = ledger_rows(&warehouse).await;
    assert!(
        rows.iter().any(|r| r.id.as_deref() == Some(PLANTED)),
        "damaged rows were dropped"
    );
    for id in [&bob, &alice, &carol] {
        assert!(
            rows.iter()
                .filter(|r| r.id.as_deref() == Some(id.as_str()))
                .all(|r| r.sealed.is_none()),
            "{id} still has sealed subjects"
        );
    }
    // A fresh service (a restart) reads the same ledger the same way.
    let restarted = Erasure::open(warehouse.clone(), config()).expect("reopen");
    assert_eq!(restarted.run_pending().await.expect("nothing to run"), 0);
    check_listing(restarted.list().await.expect("list"));
}

/// A real pending request whose newest row was damaged is not run (its state
/// is unknown) and is listed as `invalid`, while a later request runs; the
/// worker does not retry the damaged one.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_with_a_damaged_row_is_reported_and_the_others_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = people(&dir).await;
    let erasure = Arc::new(Erasure::open(warehouse.clone(), config()).expect("open"));
    let bob = submit(&erasure, BOB).await;
    let rows = ledger_rows(&warehouse).await;
    let pending = rows
        .iter()
        .find(|r| r.id.as_deref() == Some(bob.as_str()))
        .expect("bob's row")
        .clone();
    append_rows(
        &warehouse,
        &[Row {
            seq: Some(1),
            status: text("garbage"),
            ..pending.clone()
        }],
    )
    .await;
    let people_version = warehouse.table("people").await.expect("people").version();

    let alice = submit(&erasure, ALICE).await;
    assert_eq!(erasure.run_pending().await.expect("run"), 1);
    let view = erasure.get(&alice).await.expect("alice");
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    let bob_view = erasure.get(&bob).await.expect("bob");
    assert_eq!(bob_view.status, Status::Invalid, "{bob_view:?}");
    let reason = bob_view.error.clone().unwrap_or_default();
    assert!(reason.contains("status"), "{reason}");
    assert!(!reason.contains("garbage") && !reason.contains(BOB), "{reason}");
    // BOB's row is still in `people`: the damaged request did not run.
    let table = warehouse.table("people").await.expect("people");
    assert!(table.version() > people_version, "ALICE's erasure committed");
    let mut hits = Vec::new();
    grep_dir(&dir.path().join("people"), BOB.as_bytes(), &mut hits);
    assert!(!hits.is_empty(), "the damaged request must not have run");
    // Nothing left that the worker may run.
    assert_eq!(erasure.run_pending().await.expect("rerun"), 0);
    // The damaged request's rows (its sealed subjects included) stay for the
    // operator to mend: once the damaged row is gone, it runs.
    let rows = ledger_rows(&warehouse).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.id.as_deref() == Some(bob.as_str()))
            .count(),
        2
    );
}

/// A table that cannot be opened fails its pass; the worker retries it with
/// growing delays (not every few seconds forever), shows why on the
/// request, and runs other requests meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_fails_to_open_is_retried_with_backoff_not_in_a_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = people(&dir).await;
    subject_table(&warehouse, "broken", &[]).await;
    // A commit that is not JSON: the table no longer opens.
    std::fs::write(
        dir.path().join("broken/_delta_log/00000000000000000001.json"),
        b"this is not a delta commit\n",
    )
    .expect("damage the table");
    assert!(
        warehouse.table("broken").await.is_err(),
        "the damaged table still opens"
    );

    let erasure = Arc::new(
        Erasure::open(warehouse.clone(), config())
            .expect("open")
            .with_retry_delays(Duration::from_millis(100), Duration::from_secs(60)),
    );
    let stop = start_worker(&erasure);
    // Every table: includes the broken one.
    let everywhere = submit(&erasure, BOB).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let view = erasure.get(&everywhere).await.expect("view");
    assert!(view.status.is_open(), "{view:?}");
    let error = view.error.clone().expect("the retry is shown on the request");
    assert!(error.contains("broken"), "{error}");
    assert!(!error.contains(BOB), "{error}");
    // 100 ms doubling: attempts at about 0, 0.1, 0.3, 0.7, 1.5 s (5 in 2.5 s).
    let attempts: u32 = error
        .split_whitespace()
        .skip_while(|w| *w != "attempt")
        .nth(1)
        .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in '{error}'"));
    assert!((2..=7).contains(&attempts), "{attempts} attempts: {error}");

    // A request limited to a healthy table runs at once meanwhile.
    let limited = erasure
        .submit(NewRequest {
            subjects: vec![ALICE.into()],
            tables: Some(vec!["people".into()]),
            ..NewRequest::default()
        })
        .await
        .expect("submit")
        .id;
    let view = wait_finished(&erasure, &limited, Duration::from_secs(20)).await;
    assert_eq!(view.status, Status::Done, "{:?}", view.error);

    // Mended, the retried request completes.
    std::fs::remove_file(dir.path().join("broken/_delta_log/00000000000000000001.json")).expect("mend");
    let view = wait_finished(&erasure, &everywhere, Duration::from_secs(60)).await;
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    assert!(view.error.is_none(), "{view:?}");
    drop(stop);
}
