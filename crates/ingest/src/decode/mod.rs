//! Decoders: bytes in a format → Arrow record batches in the file's own types.

mod csv;
pub mod ipc;
mod ndjson;
mod parquet;

use std::io::Read;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

use crate::error::{IngestError, Result};
use crate::format::Format;

/// Rows decoded from one source.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Where the rows came from (file name or request label), for messages.
    pub source_name: String,
    /// The schema of `batches`.
    pub schema: Arc<Schema>,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// The types the data looks like (CSV is decoded as text and inferred
    /// separately; other formats carry their own types).
    pub inferred: Arc<Schema>,
    /// Whether row N sits on line N+1 of the source (CSV with header).
    pub header_line: bool,
}

impl Decoded {
    /// Rows from a format that carries its own types (NDJSON after
    /// inference, Parquet, Arrow IPC): what was decoded is what it looks like.
    pub(crate) fn typed(source_name: &str, schema: Arc<Schema>, batches: Vec<RecordBatch>) -> Self {
        Self {
            source_name: source_name.to_string(),
            inferred: schema.clone(),
            schema,
            batches,
            header_line: false,
        }
    }

    /// Total number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Decodes everything `reader` yields as `format`.
pub fn decode_reader(format: Format, mut reader: impl Read, source_name: &str) -> Result<Decoded> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| IngestError::Io {
        source_name: source_name.to_string(),
        source,
    })?;
    decode_bytes(format, bytes, source_name)
}

/// Decodes an in-memory buffer as `format`.
pub fn decode_bytes(format: Format, bytes: Vec<u8>, source_name: &str) -> Result<Decoded> {
    match format {
        Format::Csv => csv::decode(&bytes, source_name),
        Format::Ndjson => ndjson::decode(&bytes, source_name),
        Format::Parquet => parquet::decode(bytes, source_name),
        Format::ArrowIpc => ipc::decode(&bytes, source_name),
    }
}

fn malformed(source_name: &str, format: &'static str, reason: impl ToString) -> IngestError {
    IngestError::Malformed {
        source_name: source_name.to_string(),
        format,
        reason: reason.to_string(),
    }
}
