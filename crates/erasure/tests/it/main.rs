//! End-to-end erasure on a temporary local warehouse: file, run, verify.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use silt_erasure::{Erasure, ErasureConfig, NewRequest, Status, verify_certificate};
use silt_table::{CommitOptions, TableSpec, Warehouse, WriteMode};

mod damaged_ledger;

const ALICE: &str = "alice-7f3e@example.com";

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn batch(ids: &[i64], emails: &[&str]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(emails.to_vec())),
        Arc::new(StringArray::from(
            emails.iter().map(|e| format!("contact {e}")).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema(), columns).expect("batch")
}

fn grep_dir(dir: &Path, needle: &[u8], hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            grep_dir(&path, needle, hits);
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn erases_purges_verifies_and_signs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
    let mut table = subject_table(&warehouse, "people", &[]).await;
    for (ids, emails) in [
        (vec![1, 2], vec![ALICE, "bob@example.com"]),
        (vec![3, 4], vec!["carol@example.com", ALICE]),
        (vec![5], vec!["dan@example.com"]),
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

    let erasure = Erasure::open(
        warehouse.clone(),
        ErasureConfig {
            secret: Some("test-secret".into()),
            key: Some("42".repeat(32)),
            ..ErasureConfig::default()
        },
    )
    .expect("open");
    let filed = erasure
        .submit(NewRequest {
            subjects: vec![ALICE.into(), "nobody@example.com".into()],
            request_id: Some("ticket-1".into()),
            ..NewRequest::default()
        })
        .await
        .expect("submit");
    assert!(filed.created);
    // The same request again (subjects in another order) is the first one.
    let again = erasure
        .submit(NewRequest {
            subjects: vec!["nobody@example.com".into(), ALICE.into()],
            request_id: Some("ticket-1".into()),
            ..NewRequest::default()
        })
        .await
        .expect("resubmit");
    assert_eq!(again.id, filed.id);
    assert!(!again.created);
    // A different request under the same key is refused, not merged.
    let reused = erasure
        .submit(NewRequest {
            subjects: vec![ALICE.into()],
            request_id: Some("ticket-1".into()),
            ..NewRequest::default()
        })
        .await
        .expect_err("a reused request_id");
    assert_eq!(reused.kind(), silt_table::ErrorKind::Conflict);
    assert!(!reused.to_string().contains(ALICE), "{reused}");

    assert_eq!(erasure.run_pending().await.expect("run"), 1);
    let view = erasure.get(&filed.id).await.expect("get");
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    let certificate = view.certificate.expect("certificate");
    assert!(verify_certificate(&certificate, erasure.secrets()));
    let people = &certificate["tables"][0];
    assert_eq!(people["table"], "people");
    assert_eq!(people["rows_deleted"], 2, "{certificate:#}");
    assert_eq!(people["verification"]["occurrences_found"], 0);
    assert!(
        people["files_purged"].as_u64().unwrap_or(0) >= 2,
        "{certificate:#}"
    );
    assert!(
        people["log_entries_expired"].as_u64().unwrap_or(0) >= 3,
        "{certificate:#}"
    );

    let mut hits = Vec::new();
    grep_dir(dir.path(), ALICE.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "subject still in {hits:?}");

    let table = warehouse.table("people").await.expect("reopen");
    let (files, _) = table.file_stats().expect("stats");
    assert!(files >= 1);
    // Nothing left to do; a second run is a no-op.
    assert_eq!(erasure.run_pending().await.expect("rerun"), 0);
    assert_eq!(erasure.list().await.expect("list").len(), 1);
}

/// A subject column that is also the partition column: whole files go, and
/// no directory named after the value is left behind.
#[tokio::test(flavor = "multi_thread")]
async fn erases_a_partition_named_after_the_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
    let mut table = subject_table(&warehouse, "by_email", &["email"]).await;
    table
        .write(
            vec![batch(&[1, 2, 3], &[ALICE, "bob@example.com", ALICE])],
            WriteMode::Append,
            CommitOptions::default(),
        )
        .await
        .expect("write");
    let erasure = Erasure::open(warehouse.clone(), ErasureConfig::default()).expect("open");
    let filed = erasure
        .submit(NewRequest {
            subjects: vec![ALICE.into()],
            ..NewRequest::default()
        })
        .await
        .expect("submit");
    erasure.run_pending().await.expect("run");
    let view = erasure.get(&filed.id).await.expect("get");
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    let certificate = view.certificate.expect("certificate");
    assert_eq!(certificate["tables"][0]["rows_deleted"], 2, "{certificate:#}");
    let mut hits = Vec::new();
    grep_dir(dir.path(), ALICE.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "subject still in {hits:?}");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("by_email"))
        .expect("table dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("alice")), "{names:?}");
    // The generated key file is private to the server's user.
    assert!(dir.path().join(silt_erasure::KEY_FILE).exists());
}

/// A new table of [`schema`] whose subject column is `email`.
async fn subject_table(warehouse: &Warehouse, name: &str, partition_columns: &[&str]) -> silt_table::Table {
    let properties = HashMap::from([("silt.erasure.subject_columns".to_string(), "email".to_string())]);
    warehouse
        .create_table(
            name,
            TableSpec {
                schema: schema(),
                partition_columns: partition_columns.iter().map(|c| c.to_string()).collect(),
                properties,
                if_not_exists: false,
            },
        )
        .await
        .expect("create")
}

/// Writes `files` commits into a new table with subject column `email`,
/// file `i` holding the emails `emails(i)`.
async fn table_of_files(
    warehouse: &Warehouse,
    name: &str,
    files: i64,
    emails: impl Fn(i64) -> Vec<String>,
) -> silt_table::Table {
    let mut table = subject_table(warehouse, name, &[]).await;
    for file in 0..files {
        let emails = emails(file);
        let ids: Vec<i64> = (0..emails.len() as i64).map(|k| file * 1_000 + k).collect();
        let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
        table
            .write(
                vec![batch(&ids, &refs)],
                WriteMode::Append,
                CommitOptions::default(),
            )
            .await
            .expect("write");
    }
    table
}

/// Files silt writes carry a bloom filter on each subject column (and on no
/// other), and the erasure reads only the files whose statistics and bloom
/// filters allow the subject: here the one file that holds it.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_reads_only_files_that_may_hold_the_subject() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
    // Statistics prune: file i holds only emails starting "r{i}-".
    table_of_files(&warehouse, "ranged", 10, |i| {
        (0..200).map(|k| format!("r{i}-{k:04}@example.com")).collect()
    })
    .await;
    // Statistics cannot prune (every file spans "a…" to "z…"); bloom filters do.
    table_of_files(&warehouse, "mixed", 10, |i| {
        let mut emails: Vec<String> = (0..200).map(|k| format!("m{k:04}-{i}@example.com")).collect();
        emails.push(format!("aaa-{i}@example.com"));
        emails.push(format!("zzz-{i}@example.com"));
        if i == 4 {
            emails.push("mid-subject@example.com".to_string());
        }
        emails
    })
    .await;

    // Every data file has a bloom filter on email and none on note.
    let mut data_files = 0;
    for entry in std::fs::read_dir(dir.path().join("mixed"))
        .expect("dir")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            data_files += 1;
            let reader =
                SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("parquet");
            let group = reader.metadata().row_group(0);
            let column = |name: &str| {
                (0..group.num_columns())
                    .find(|c| group.column(*c).column_path().string() == name)
                    .map(|c| group.column(c).bloom_filter_offset())
                    .expect("column")
            };
            assert!(column("email").is_some(), "{path:?} has no bloom filter on email");
            assert!(column("note").is_none(), "{path:?} has a bloom filter on note");
        }
    }
    assert_eq!(data_files, 10);

    let erasure = Erasure::open(warehouse.clone(), ErasureConfig::default()).expect("open");
    let filed = erasure
        .submit(NewRequest {
            subjects: vec!["r3-0005@example.com".into(), "mid-subject@example.com".into()],
            purge: Some(false),
            ..NewRequest::default()
        })
        .await
        .expect("submit");
    erasure.run_pending().await.expect("run");
    let view = erasure.get(&filed.id).await.expect("get");
    assert_eq!(view.status, Status::Done, "{:?}", view.error);
    let certificate = view.certificate.expect("certificate");
    for (name, rows) in [("ranged", 200 * 10 - 1), ("mixed", 202 * 10)] {
        let report = certificate["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["table"] == name)
            .expect("table in certificate");
        assert_eq!(report["rows_deleted"], 1, "{report:#}");
        assert_eq!(report["files_live"], 10, "{report:#}");
        // Bloom filters have false positives (1%, two subjects probed per
        // file here): a file read for nothing is allowed, not a full scan.
        let (pruned, read) = (report["files_pruned"].as_u64(), report["files_read"].as_u64());
        assert!(
            pruned >= Some(8) && pruned.zip(read).map(|(p, r)| p + r) == Some(10),
            "{report:#}"
        );
        if name == "ranged" {
            assert_eq!(read, Some(1), "{report:#}");
        }
        assert_eq!(report["files_rewritten"], 1, "{report:#}");
        assert_eq!(report["files_added"], 1, "{report:#}");
        let table = warehouse.table(name).await.expect("table");
        let (files, _) = table.file_stats().expect("stats");
        assert_eq!(files, 10);
        let rows_now: i64 = {
            let snapshot = table.snapshot().expect("snapshot");
            snapshot
                .log_data()
                .iter()
                .map(|f| f.num_records().unwrap_or(0) as i64)
                .sum()
        };
        assert_eq!(rows_now, rows, "{name}");
        // The delete commit names the erasure, not a predicate or a value.
        let version = report["delete_version"].as_u64().expect("delete version");
        let log = std::fs::read_to_string(dir.path().join(format!("{name}/_delta_log/{version:020}.json")))
            .expect("commit");
        assert!(log.contains(&filed.id), "{log}");
        assert!(log.contains("\"DELETE\""), "{log}");
        assert!(!log.contains("predicate"), "{log}");
        assert!(!log.contains("r3-0005") && !log.contains("mid-subject"), "{log}");
    }
}

/// Requests pending together are erased in one pass: one delete commit per
/// table for all their subjects, each request with its own signed
/// certificate naming the pass. A request with another purge setting runs
/// in a pass of its own.
#[tokio::test(flavor = "multi_thread")]
async fn pending_requests_are_batched_into_one_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
    table_of_files(&warehouse, "people", 3, |i| {
        (0..50).map(|k| format!("p{i}-{k:02}@example.com")).collect()
    })
    .await;
    let erasure = Erasure::open(warehouse.clone(), ErasureConfig::default()).expect("open");
    let mut ids = Vec::new();
    for (subject, purge) in [
        ("p0-01@example.com", true),
        ("p1-02@example.com", true),
        ("p2-03@example.com", false),
    ] {
        let filed = erasure
            .submit(NewRequest {
                subjects: vec![subject.into()],
                purge: Some(purge),
                ..NewRequest::default()
            })
            .await
            .expect("submit");
        ids.push(filed.id);
    }
    assert_eq!(erasure.run_pending().await.expect("run"), 3);

    let mut deletes = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let view = erasure.get(id).await.expect("get");
        assert_eq!(view.status, Status::Done, "{:?}", view.error);
        let certificate = view.certificate.expect("certificate");
        assert!(verify_certificate(&certificate, erasure.secrets()));
        assert_eq!(certificate["request_id"], id.as_str());
        assert_eq!(certificate["subject_hashes"].as_array().map(Vec::len), Some(1));
        let batch: Vec<&str> = certificate["batch"]
            .as_array()
            .expect("batch")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let people = &certificate["tables"][0];
        if index < 2 {
            assert_eq!(batch.len(), 2, "{certificate:#}");
            assert!(batch.contains(&ids[0].as_str()) && batch.contains(&ids[1].as_str()));
            assert_eq!(people["rows_deleted"], 2, "{certificate:#}");
            assert_eq!(people["files_rewritten"], 2, "{certificate:#}");
        } else {
            assert!(batch.is_empty(), "{certificate:#}");
            assert_eq!(people["rows_deleted"], 1, "{certificate:#}");
        }
        deletes.push(people["delete_version"].as_u64().expect("delete version"));
    }
    // The two batched requests share one delete commit.
    assert_eq!(deletes[0], deletes[1]);
    assert_ne!(deletes[0], deletes[2]);
    let table = warehouse.table("people").await.expect("table");
    let rows: usize = table
        .snapshot()
        .expect("snapshot")
        .log_data()
        .iter()
        .map(|f| f.num_records().unwrap_or(0))
        .sum();
    assert_eq!(rows, 150 - 3);
}

/// Cost of a batch: 1 subject versus 10,000 in one request, on the same
/// table (`cargo test --release -p silt-erasure --test it -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "timing figures for the erasure notes; slow in debug builds"]
async fn batch_of_10000_subjects_costs_about_as_much_as_one() {
    const FILES: i64 = 20;
    const ROWS_PER_FILE: i64 = 50_000;
    let mut timings = Vec::new();
    // (subjects, present): one subject; 10,000 of which one is in the table
    // (the same file rewritten: the cost of matching alone); 10,000 spread
    // over every file (every file rewritten).
    for (subjects, present) in [(1usize, 1usize), (10_000, 1), (10_000, 10_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
        table_of_files(&warehouse, "big", FILES, |file| {
            (file * ROWS_PER_FILE..(file + 1) * ROWS_PER_FILE)
                .map(|i| format!("user{i}@example.com"))
                .collect()
        })
        .await;
        let erasure = Erasure::open(
            warehouse.clone(),
            ErasureConfig {
                secret: Some("bench".into()),
                key: Some("42".repeat(32)),
                ..ErasureConfig::default()
            },
        )
        .expect("open");
        let wanted: Vec<String> = (0..subjects as i64)
            .map(|i| match i < present as i64 {
                true => format!("user{}@example.com", (i * 97) % (FILES * ROWS_PER_FILE)),
                false => format!("absent{i}@example.com"),
            })
            .collect();
        let filed = erasure
            .submit(NewRequest {
                subjects: wanted,
                ..NewRequest::default()
            })
            .await
            .expect("submit");
        let clock = std::time::Instant::now();
        erasure.run_pending().await.expect("run");
        let elapsed = clock.elapsed();
        let view = erasure.get(&filed.id).await.expect("get");
        assert_eq!(view.status, Status::Done, "{:?}", view.error);
        let certificate = view.certificate.expect("certificate");
        let t = &certificate["tables"][0];
        eprintln!(
            "subjects={subjects} present={present} rows={} files={FILES} wall={elapsed:?} rows_deleted={} files_rewritten={} delete_ms={} purge_ms={} verify_ms={}",
            FILES * ROWS_PER_FILE,
            t["rows_deleted"],
            t["files_rewritten"],
            t["timings_ms"]["delete_ms"],
            t["timings_ms"]["purge_ms"],
            t["timings_ms"]["verify_ms"]
        );
        timings.push(elapsed);
    }
    eprintln!(
        "10,000 subjects (1 present) / 1 subject = {:.2}; 10,000 spread / 1 = {:.2}",
        timings[1].as_secs_f64() / timings[0].as_secs_f64(),
        timings[2].as_secs_f64() / timings[0].as_secs_f64()
    );
}
