//! Records from a pull source (a broker's messages): many small JSON
//! payloads, each with its own position in the source, committed as one
//! request whose producer sequence is the highest position among them.
//!
//! Unlike a push request, nothing can be answered "422" to a broker: a
//! record that does not decode, or whose rows do not fit the table, becomes
//! a dead letter carrying its own position, and the others are written.
//!
//! ```text
//!  records ──concatenate──▶ one NDJSON decode + conform   (every record fits: fast path)
//!          └─ otherwise ──▶ per record: decode + conform  ─┬─ fits → rows
//!                                                          └─ not  → dead letter (its sequence)
//! ```

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::Utc;

use crate::committer::{Ack, Submission};
use crate::dead_letter::DeadLetter;
use crate::decode::Decoded;
use crate::error::{IngestError, Result};
use crate::evolve::target_schema;
use crate::mode::IngestMode;
use crate::service::{Ingestor, run_blocking};
use crate::{Format, conform_batches, decode_bytes};

/// One message of a source.
#[derive(Debug, Clone)]
pub struct Record {
    /// The message body.
    pub payload: Bytes,
    /// Its position in the source (a JetStream stream sequence), increasing.
    pub sequence: u64,
    /// Where it was published (a subject or topic), named in dead letters.
    pub label: String,
}

/// How a record's payload holds rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// Exactly one JSON object per record.
    Json,
    /// Newline-delimited JSON objects (zero or more rows per record).
    Ndjson,
}

/// Records for one table, committed as one request.
#[derive(Debug, Clone)]
pub struct RecordsRequest {
    /// Target table (it must exist).
    pub table: String,
    /// Producer id for exactly-once; the request's sequence is the highest
    /// record sequence.
    pub producer: String,
    /// The source's name, for dead-letter reasons.
    pub source: String,
    /// How payloads hold rows.
    pub format: RecordFormat,
    /// The records, in source order.
    pub records: Vec<Record>,
}

/// Conformed rows and the records that became dead letters.
struct Conformed {
    batches: Vec<RecordBatch>,
    dead_letters: Vec<DeadLetter>,
}

impl Ingestor {
    /// Commits a source's records into an existing table through its group
    /// committer, exactly once by `(producer, highest sequence)`. Records
    /// that do not decode or fit become dead letters (whatever the table's
    /// dead-letter policy: a broker cannot be answered 422) with their own
    /// sequence; the table is never created nor altered.
    ///
    /// Records at or below the producer's committed sequence must be left
    /// out by the caller: only the request's highest sequence is compared.
    pub async fn ingest_records(&self, request: RecordsRequest) -> Result<Ack> {
        let RecordsRequest {
            table,
            producer,
            source,
            format,
            records,
        } = request;
        let Some(sequence) = records.iter().map(|r| r.sequence).max() else {
            return Err(IngestError::InvalidRequest(format!(
                "source '{source}': no records for table '{table}'"
            )));
        };
        let shared = self.table(&table, None).await?;
        let table_schema = shared
            .schema()
            .ok_or_else(|| IngestError::ShuttingDown(table.clone()))?;
        let bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
        let received_at = Utc::now();
        let name = table.clone();
        let target = table_schema.clone();
        let conformed =
            run_blocking(move || conform_records(&records, format, &target, &name, &source)).await?;
        let (submission, answer) = Submission::new(
            Some((producer, sequence)),
            table_schema,
            conformed.batches,
            conformed.dead_letters,
            IngestMode::Append,
            received_at,
            bytes,
        );
        self.submit(&shared, &table, submission, answer).await
    }
}

/// Whether `error` is the record's own fault (it cannot be made to fit),
/// as opposed to a failure of the service.
fn record_fault(error: &IngestError) -> bool {
    matches!(
        error,
        IngestError::Malformed { .. }
            | IngestError::InvalidRow { .. }
            | IngestError::UnknownColumns { .. }
            | IngestError::UnknownField { .. }
            | IngestError::MissingColumn { .. }
            | IngestError::SchemaConflict { .. }
            | IngestError::NamelessField { .. }
    )
}

fn conform_records(
    records: &[Record],
    format: RecordFormat,
    table_schema: &Arc<Schema>,
    table: &str,
    source: &str,
) -> Result<Conformed> {
    // Fast path: every record fits, so one decode and one cast do for all.
    let mut body = Vec::with_capacity(records.iter().map(|r| r.payload.len() + 1).sum());
    for record in records {
        body.extend_from_slice(&record.payload);
        body.push(b'\n');
    }
    if let Ok(decoded) = decode_bytes(Format::Ndjson, body, "message")
        && (format == RecordFormat::Ndjson || decoded.rows() == records.len())
        && let Ok(batches) = conform_one(&decoded, table_schema, table)
    {
        return Ok(Conformed {
            batches,
            dead_letters: Vec::new(),
        });
    }
    // Some record does not fit: find which, record by record.
    let mut batches = Vec::new();
    let mut dead_letters = Vec::new();
    for record in records {
        let outcome = decode_bytes(Format::Ndjson, record.payload.to_vec(), "message").and_then(|decoded| {
            if format == RecordFormat::Json && decoded.rows() != 1 {
                return Err(IngestError::Malformed {
                    source_name: "message".into(),
                    format: "JSON",
                    reason: format!(
                        "holds {} JSON objects; format \"json\" takes exactly one per message \
                         (use \"ndjson\" for several)",
                        decoded.rows()
                    ),
                });
            }
            conform_one(&decoded, table_schema, table)
        });
        match outcome {
            Ok(mut rows) => batches.append(&mut rows),
            Err(error) if record_fault(&error) => dead_letters.push(DeadLetter {
                reason: format!(
                    "source '{source}', subject '{}', sequence {}: {error}",
                    record.label, record.sequence
                ),
                raw: String::from_utf8_lossy(&record.payload).into_owned(),
                sequence: Some(record.sequence),
            }),
            Err(error) => return Err(error),
        }
    }
    Ok(Conformed {
        batches,
        dead_letters,
    })
}

/// `decoded` cast to the table's schema (no new columns: a source never
/// alters its table).
fn conform_one(decoded: &Decoded, table_schema: &Arc<Schema>, table: &str) -> Result<Vec<RecordBatch>> {
    if decoded.rows() == 0 {
        return Ok(Vec::new());
    }
    let target = target_schema(table_schema, decoded, false, table)?;
    conform_batches(decoded, &target, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IngestConfig;
    use crate::dead_letter::read_dead_letters;
    use arrow::datatypes::{DataType, Field};
    use silt_table::{TableSpec, Warehouse};

    fn record(sequence: u64, payload: &str) -> Record {
        Record {
            payload: Bytes::from(payload.to_string()),
            sequence,
            label: "orders.eu".into(),
        }
    }

    fn request(records: Vec<Record>) -> RecordsRequest {
        RecordsRequest {
            table: "orders".into(),
            producer: "src-ORDERS".into(),
            source: "src".into(),
            format: RecordFormat::Json,
            records,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_records_become_dead_letters_with_their_sequence_and_duplicates_write_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("opens");
        let spec = TableSpec {
            schema: Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("n", DataType::Int32, true),
            ])),
            partition_columns: Vec::new(),
            properties: Default::default(),
            if_not_exists: false,
        };
        warehouse.create_table("orders", spec).await.expect("creates");
        let ingestor = Ingestor::new(warehouse.clone(), IngestConfig::default());

        let ack = ingestor
            .ingest_records(request(vec![
                record(1, "{\"id\":1}"),
                record(2, "{\"id\":2,\"n\":3}"),
            ]))
            .await
            .expect("fast path");
        assert_eq!(
            (ack.rows_written, ack.rows_rejected, ack.duplicate),
            (2, 0, false)
        );

        let records = vec![
            record(3, "{\"id\":3}"),
            record(4, "not json"),
            record(5, "{\"n\":1}"),
            record(6, "{\"id\":6}{\"id\":7}"),
            record(7, "{\"id\":8}"),
        ];
        let ack = ingestor
            .ingest_records(request(records))
            .await
            .expect("slow path");
        assert_eq!((ack.rows_written, ack.rows_rejected), (2, 3), "{ack:?}");
        let table = warehouse.table("orders").await.expect("opens");
        assert_eq!(table.producer_sequence("src-ORDERS").await.expect("txn"), Some(7));

        let mut letters = read_dead_letters(&warehouse, Some("orders"), 10)
            .await
            .expect("reads");
        letters.sort_by_key(|l| l.sequence);
        let sequences: Vec<Option<i64>> = letters.iter().map(|l| l.sequence).collect();
        assert_eq!(sequences, [Some(4), Some(5), Some(6)]);
        assert!(
            letters
                .iter()
                .all(|l| l.producer.as_deref() == Some("src-ORDERS"))
        );
        assert!(
            letters[0].reason.contains("subject 'orders.eu', sequence 4"),
            "{letters:?}"
        );
        assert_eq!(letters[0].raw, "not json");

        let ack = ingestor
            .ingest_records(request(vec![record(7, "{\"id\":8}")]))
            .await
            .expect("duplicate");
        assert!(ack.duplicate, "{ack:?}");
        ingestor.shutdown().await;
    }
}
