//! The error type of silt-sources.

use silt_ingest::IngestError;
use silt_table::{ErrorKind, TableError};

/// Why a source operation failed. Messages name the source and never hold
/// credentials or message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No source has this name.
    #[error("no source named '{0}'")]
    NotFound(String),
    /// The broker could not be reached (or the connection broke).
    #[error("source '{source_name}': broker unreachable: {reason}")]
    Unreachable {
        /// The source.
        source_name: String,
        /// What the client said.
        reason: String,
    },
    /// The stream the source reads does not exist.
    #[error("source '{source_name}': stream '{stream}' does not exist")]
    StreamNotFound {
        /// The source.
        source_name: String,
        /// The stream.
        stream: String,
    },
    /// The broker refused or failed a request.
    #[error("source '{source_name}': broker request failed: {reason}")]
    Broker {
        /// The source.
        source_name: String,
        /// What the broker or client said.
        reason: String,
    },
    /// Committing a batch failed.
    #[error("source '{source_name}': {error}")]
    Ingest {
        /// The source.
        source_name: String,
        /// The ingest service's error (boxed: it is large).
        error: Box<IngestError>,
    },
    /// Reading a table's committed position failed.
    #[error("source '{source_name}': {error}")]
    Table {
        /// The source.
        source_name: String,
        /// The table's error (boxed: it is large).
        error: Box<TableError>,
    },
}

impl SourceError {
    /// The kind of this error, for status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::NotFound(_) | SourceError::StreamNotFound { .. } => ErrorKind::NotFound,
            SourceError::Unreachable { .. } | SourceError::Broker { .. } => ErrorKind::Internal,
            SourceError::Ingest { error, .. } => error.kind(),
            SourceError::Table { error, .. } => error.kind(),
        }
    }

    /// A fixed word for status and metrics (never a value).
    pub fn word(&self) -> &'static str {
        match self {
            SourceError::NotFound(_) => "not-found",
            SourceError::Unreachable { .. } => "unreachable",
            SourceError::StreamNotFound { .. } => "stream-not-found",
            SourceError::Broker { .. } => "broker",
            SourceError::Ingest { error, .. } => error.kind().slug(),
            SourceError::Table { error, .. } => error.kind().slug(),
        }
    }

    /// Whether the broker connection is what failed (the source then
    /// reports `reconnecting` rather than `failed`).
    pub fn is_connection(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }
}
