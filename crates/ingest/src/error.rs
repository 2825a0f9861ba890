//! The error type of silt-ingest.

use silt_table::{ErrorKind, TableError};

/// Result alias for silt-ingest.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Why input could not be ingested. Messages name the source, row and column
/// but never a value from the data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The bytes are not valid in the declared format.
    #[error("{source_name}: not valid {format}: {reason}")]
    Malformed {
        /// File name or request label.
        source_name: String,
        /// The format expected.
        format: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A row whose value cannot be cast to the column's type, or is null in a
    /// NOT NULL column.
    #[error("{source_name}: row {row}{line}, column '{column}': {reason}")]
    InvalidRow {
        /// File name or request label.
        source_name: String,
        /// 1-based row number in the source.
        row: u64,
        /// ` (line N)` for line-oriented formats, else empty.
        line: String,
        /// Column name.
        column: String,
        /// Why, without the value.
        reason: String,
    },
    /// Fields the table has no column for. Their names are not repeated:
    /// a key of a JSON body (or a CSV header) that is not a column may be a
    /// value (an e-mail address used as a key), so only the count and the
    /// table's own columns are named.
    #[error(
        "{source_name}: {} not a column of table '{table}' (its columns: {columns}); \
         names that are not columns are not repeated, as they may be data",
        fields_phrase(*.count)
    )]
    UnknownColumns {
        /// File name or request label.
        source_name: String,
        /// How many of the input's fields are not columns.
        count: usize,
        /// Table name.
        table: String,
        /// The table's columns, comma-separated (shortened for wide tables).
        columns: String,
    },
    /// A nested field (inside a STRUCT column) the table does not have.
    /// Unlike a top-level key, its path is named: the table's own column
    /// names it, and refusing it without saying which would leave the
    /// producer guessing. Never silently dropped (that would lose data).
    #[error(
        "{source_name}: field '{path}' is not in table '{table}'; add it to the table \
         (ALTER TABLE, or ingest with evolve) or leave it out"
    )]
    UnknownField {
        /// File name or request label.
        source_name: String,
        /// Dotted path of the field (`customer.address.country`).
        path: String,
        /// Table name.
        table: String,
    },
    /// A NOT NULL column the input lacks.
    #[error("{source_name}: missing column '{column}', which table '{table}' requires (NOT NULL)")]
    MissingColumn {
        /// File name or request label.
        source_name: String,
        /// Column name.
        column: String,
        /// Table name.
        table: String,
    },
    /// Files whose inferred schemas disagree.
    #[error("{source_name}: schema does not match the other inputs: {reason}")]
    SchemaConflict {
        /// File name.
        source_name: String,
        /// What differs.
        reason: String,
    },
    /// A field with an empty name where a new column would be made
    /// (create or evolve): no SQL could name such a column.
    #[error("{source_name}: a field with an empty name cannot become a column")]
    NamelessField {
        /// File name or request label.
        source_name: String,
    },
    /// A format name silt does not know.
    #[error("unknown format '{0}': use csv, ndjson, parquet or arrow")]
    UnknownFormat(String),
    /// Reading the input failed.
    #[error("cannot read {source_name}: {source}")]
    Io {
        /// File name.
        source_name: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The table's queue is full; the caller should retry after a pause.
    #[error(
        "table '{table}' is at its ingest queue limit ({limit_bytes} bytes queued); retry after {retry_after_secs} s"
    )]
    Overloaded {
        /// Table name.
        table: String,
        /// The per-table limit.
        limit_bytes: u64,
        /// Suggested pause before the retry, in seconds.
        retry_after_secs: u64,
    },
    /// The server is shutting down and takes no more writes.
    #[error("ingest for table '{0}' is shutting down; retry against a running server")]
    ShuttingDown(String),
    /// The commit failed; nothing of the request was written.
    #[error("commit to table '{table}' failed, nothing was written: {reason}")]
    CommitFailed {
        /// Table name.
        table: String,
        /// Kind of the underlying failure (conflict, storage, ...).
        kind: ErrorKind,
        /// What failed.
        reason: String,
    },
    /// A table whose name starts with `_silt_`: silt's own tables
    /// (dead letters, the erasure ledger) are written by silt alone and are
    /// answered as absent.
    #[error(
        "no table '{0}': names starting with '_silt_' are silt's internal tables, which ingest does not write"
    )]
    InternalTable(String),
    /// The caller's role may not do what the request asks (create a table,
    /// change its schema).
    #[error("{0}")]
    Forbidden(String),
    /// Reading one of silt's own tables failed.
    #[error("cannot read table '{table}': {reason}")]
    ReadFailed {
        /// Table name.
        table: String,
        /// What failed.
        reason: String,
    },
    /// Request parameters that do not fit together or the table
    /// (`mode=upsert` without keys, a key that is not a column).
    #[error("{0}")]
    InvalidRequest(String),
    /// The table layer refused.
    #[error(transparent)]
    Table(#[from] TableError),
}

fn fields_phrase(count: usize) -> String {
    if count == 1 {
        "1 field of the input is".to_string()
    } else {
        format!("{count} fields of the input are")
    }
}

impl IngestError {
    /// The kind of this error, for status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Table(e) => e.kind(),
            IngestError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            IngestError::InvalidRow { .. }
            | IngestError::UnknownColumns { .. }
            | IngestError::UnknownField { .. }
            | IngestError::MissingColumn { .. }
            | IngestError::SchemaConflict { .. }
            | IngestError::NamelessField { .. } => ErrorKind::InvalidRows,
            IngestError::InternalTable(_) => ErrorKind::NotFound,
            IngestError::Forbidden(_) => ErrorKind::Forbidden,
            IngestError::ReadFailed { .. } => ErrorKind::Internal,
            IngestError::Overloaded { .. } => ErrorKind::Overloaded,
            IngestError::ShuttingDown(_) => ErrorKind::Overloaded,
            IngestError::CommitFailed { kind, .. } => *kind,
            IngestError::Malformed { .. }
            | IngestError::UnknownFormat(_)
            | IngestError::InvalidRequest(_)
            | IngestError::Io { .. } => ErrorKind::InvalidInput,
        }
    }
}
