//! Dead letters: rows that cannot be made to fit their table, kept with the
//! reason in the shared table `_silt_dead_letters` instead of failing the
//! whole request (when the table's policy says so).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use crate::conform::conform_from_row;
use crate::decode::Decoded;
use crate::error::{IngestError, Result};
use crate::policy::DEAD_LETTER_TABLE;

/// One rejected row.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Why the row was rejected (names row and column, never a value).
    pub reason: String,
    /// The row as one JSON object, as it was decoded (a source's message:
    /// its payload as text).
    pub raw: String,
    /// The row's own position when it differs from its request's sequence
    /// (a source's message: its stream sequence); `None`: the request's.
    pub sequence: Option<u64>,
}

/// Rows of one request split into the ones that fit and the ones that do not.
#[derive(Debug)]
pub struct Split {
    /// Conformed good rows.
    pub good: Vec<RecordBatch>,
    /// The rejected rows.
    pub rejected: Vec<DeadLetter>,
}

/// The schema of `_silt_dead_letters`.
pub fn dead_letter_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("producer", DataType::Utf8, true),
        Field::new("sequence", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]))
}

/// Conforms `input` row by row, keeping the rows that fit and turning the
/// others into dead letters. Only called once the whole-input conform has
/// failed, so its per-row cost is paid on the error path alone.
pub fn split_rows(input: &Decoded, target: &Arc<Schema>, table: &str) -> Result<Split> {
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    let mut row_offset = 0u64;
    for batch in &input.batches {
        for row in 0..batch.num_rows() {
            let one = Decoded {
                batches: vec![batch.slice(row, 1)],
                ..input.clone()
            };
            match conform_from_row(&one, target, table, row_offset + row as u64) {
                Ok(mut batches) => good.append(&mut batches),
                Err(error @ (IngestError::InvalidRow { .. } | IngestError::MissingColumn { .. })) => rejected
                    .push(DeadLetter {
                        reason: error.to_string(),
                        raw: row_as_json(&one.batches[0])?,
                        sequence: None,
                    }),
                Err(other) => return Err(other),
            }
        }
        row_offset += batch.num_rows() as u64;
    }
    Ok(Split { good, rejected })
}

fn row_as_json(row: &RecordBatch) -> Result<String> {
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    writer
        .write(row)
        .and_then(|()| writer.finish())
        .map_err(|e| IngestError::Malformed {
            source_name: "dead letter".into(),
            format: "JSON",
            reason: e.to_string(),
        })?;
    let bytes = writer.into_inner();
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

/// Where a dead letter came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The table the rows were sent to.
    pub table: &'a str,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The producer, if the request named one.
    pub producer: Option<&'a str>,
    /// The producer's sequence, if any.
    pub sequence: Option<u64>,
}

/// The rows of `_silt_dead_letters` for `letters` from `origin`.
pub fn dead_letter_batch(origin: &Origin<'_>, letters: &[DeadLetter]) -> Result<RecordBatch> {
    let n = letters.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![origin.table; n])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![origin.received_at.timestamp_micros(); n])
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![origin.producer; n])),
        Arc::new(Int64Array::from_iter(letters.iter().map(|l| {
            l.sequence.or(origin.sequence).and_then(|s| i64::try_from(s).ok())
        }))),
        Arc::new(StringArray::from_iter_values(
            letters.iter().map(|l| l.reason.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            letters.iter().map(|l| l.raw.as_str()),
        )),
    ];
    RecordBatch::try_new(dead_letter_schema(), columns).map_err(|e| IngestError::Malformed {
        source_name: "dead letters".into(),
        format: "rows",
        reason: e.to_string(),
    })
}

/// One dead letter as stored in `_silt_dead_letters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadLetter {
    /// The table the row was sent to.
    pub table: String,
    /// When its request arrived.
    pub received_at: DateTime<Utc>,
    /// The request's producer, if it named one.
    pub producer: Option<String>,
    /// The producer's sequence, if any.
    pub sequence: Option<i64>,
    /// Why the row was rejected.
    pub reason: String,
    /// The row as one JSON object.
    pub raw: String,
}

/// The newest `limit` dead letters, of `table` only when given, newest
/// first. silt's own read path: `_silt_dead_letters` is not reachable through
/// SQL or ingest, so its operator endpoint reads it here. No dead letters
/// ever written (no table) reads as none.
pub async fn read_dead_letters(
    warehouse: &silt_table::Warehouse,
    table: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredDeadLetter>> {
    use silt_table::deltalake::datafusion::prelude::{SessionContext, ident, lit};
    let letters = match warehouse.table(DEAD_LETTER_TABLE).await {
        Ok(letters) => letters,
        Err(silt_table::TableError::NotFound { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let failed = |e: &dyn std::fmt::Display| IngestError::ReadFailed {
        table: DEAD_LETTER_TABLE.to_string(),
        reason: e.to_string(),
    };
    let context = SessionContext::new();
    let provider = letters
        .table_provider(&Arc::new(context.state()))
        .await
        .map_err(|e| failed(&e))?;
    let mut frame = context.read_table(provider).map_err(|e| failed(&e))?;
    if let Some(table) = table {
        frame = frame
            .filter(ident("table").eq(lit(table)))
            .map_err(|e| failed(&e))?;
    }
    let batches = frame
        .sort(vec![ident("received_at").sort(false, false)])
        .and_then(|f| f.limit(0, Some(limit)))
        .map_err(|e| failed(&e))?
        .collect()
        .await
        .map_err(|e| failed(&e))?;
    let mut out = Vec::new();
    for batch in &batches {
        stored_rows(batch, &mut out).map_err(|e| failed(&e))?;
    }
    Ok(out)
}

/// Appends `batch`'s rows (the dead-letter schema) to `out`.
fn stored_rows(batch: &RecordBatch, out: &mut Vec<StoredDeadLetter>) -> std::result::Result<(), String> {
    use arrow::array::Array;
    use arrow::compute::cast;
    let column = |name: &str, to: &DataType| -> std::result::Result<ArrayRef, String> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| format!("column '{name}' is missing"))?;
        cast(array, to).map_err(|e| format!("column '{name}': {e}"))
    };
    let text = |name: &str| -> std::result::Result<StringArray, String> {
        let array = column(name, &DataType::Utf8)?;
        array
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| format!("column '{name}' is not text"))
    };
    let (table, producer, reason, raw) = (text("table")?, text("producer")?, text("reason")?, text("raw")?);
    let received = column(
        "received_at",
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )?;
    let received = received
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or("column 'received_at' is not a timestamp")?;
    let sequence = column("sequence", &DataType::Int64)?;
    let sequence = sequence
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("column 'sequence' is not a number")?;
    let optional =
        |array: &StringArray, row: usize| (!array.is_null(row)).then(|| array.value(row).to_string());
    for row in 0..batch.num_rows() {
        out.push(StoredDeadLetter {
            table: table.value(row).to_string(),
            received_at: DateTime::from_timestamp_micros(received.value(row)).unwrap_or_default(),
            producer: optional(&producer, row),
            sequence: (!sequence.is_null(row)).then(|| sequence.value(row)),
            reason: reason.value(row).to_string(),
            raw: raw.value(row).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, decode_bytes};

    #[test]
    fn bad_rows_become_dead_letters_and_good_rows_stay() {
        let target = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("n", DataType::Int32, true),
        ]));
        let body = b"{\"id\":1,\"n\":1}\n{\"id\":2,\"n\":\"x\"}\n{\"n\":3}\n{\"id\":4}\n".to_vec();
        let input = decode_bytes(Format::Ndjson, body, "req").expect("decodes");
        let split = split_rows(&input, &target, "t").expect("splits");
        let good: usize = split.good.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(good, 2);
        assert_eq!(split.rejected.len(), 2);
        assert!(
            split.rejected[0].reason.contains("row 2"),
            "{}",
            split.rejected[0].reason
        );
        assert!(
            split.rejected[0].raw.contains("\"id\":2"),
            "{}",
            split.rejected[0].raw
        );
        assert!(
            split.rejected[1].reason.contains("column 'id'"),
            "{}",
            split.rejected[1].reason
        );
        let origin = Origin {
            table: "t",
            received_at: Utc::now(),
            producer: Some("p"),
            sequence: Some(7),
        };
        let batch = dead_letter_batch(&origin, &split.rejected).expect("batch");
        assert_eq!(batch.num_rows(), 2);
    }
}
