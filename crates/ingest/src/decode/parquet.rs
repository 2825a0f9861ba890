//! Apache Parquet files.

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Decoded, malformed};
use crate::error::Result;

pub(super) fn decode(bytes: Vec<u8>, source_name: &str) -> Result<Decoded> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| malformed(source_name, "Parquet", e))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| malformed(source_name, "Parquet", e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(source_name, "Parquet", e))?;
    Ok(Decoded::typed(source_name, schema, batches))
}
