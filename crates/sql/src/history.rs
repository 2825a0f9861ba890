//! `DESCRIBE HISTORY` as a record batch.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use silt_table::CommitEntry;

use crate::error::{Result, SqlError};

/// One row per commit, newest first.
pub(crate) fn history_batch(entries: &[CommitEntry]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("operation", DataType::Utf8, true),
        Field::new("operation_parameters", DataType::Utf8, true),
        Field::new("operation_metrics", DataType::Utf8, true),
        Field::new("engine", DataType::Utf8, true),
    ]));
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            entries.iter().map(|e| e.version as i64),
        )),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                entries.iter().map(|e| e.timestamp.timestamp_millis()),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(
            entries.iter().map(|e| e.operation.clone()),
        )),
        Arc::new(StringArray::from_iter(
            entries.iter().map(|e| json(&e.operation_parameters)),
        )),
        Arc::new(StringArray::from_iter(
            entries.iter().map(|e| json(&e.operation_metrics)),
        )),
        Arc::new(StringArray::from_iter(entries.iter().map(|e| e.engine.clone()))),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| SqlError::Execution(e.to_string()))
}
