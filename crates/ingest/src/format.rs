//! Input formats and how they are recognised.

use std::path::Path;
use std::str::FromStr;

use crate::error::IngestError;

/// An input format silt decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// Newline-delimited JSON objects.
    Ndjson,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC stream.
    ArrowIpc,
}

impl Format {
    /// The format implied by a file's extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            "parquet" => Some(Format::Parquet),
            "arrow" | "arrows" | "ipc" => Some(Format::ArrowIpc),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = IngestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" | "json" => Ok(Format::Ndjson),
            "parquet" => Ok(Format::Parquet),
            "arrow" | "ipc" | "arrow-ipc" => Ok(Format::ArrowIpc),
            other => Err(IngestError::UnknownFormat(other.to_string())),
        }
    }
}
