//! The error type of silt-table.

use deltalake::DeltaTableError;

use crate::ErrorKind;

/// Result alias for silt-table.
pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// Errors raised by the warehouse and table layer. Messages are lowercase,
/// name the table (never a row value) and say what to do when it helps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The table does not exist in the warehouse.
    #[error("table '{table}' not found in warehouse '{warehouse}'")]
    NotFound {
        /// Table name.
        table: String,
        /// Warehouse location.
        warehouse: String,
    },
    /// CREATE of a table that exists.
    #[error("table '{0}' already exists")]
    AlreadyExists(String),
    /// A table name that silt does not accept.
    #[error(
        "invalid table name '{0}': use letters, digits and '_', starting with a letter or '_' (at most 128)"
    )]
    InvalidName(String),
    /// A version that the table does not have.
    #[error("table '{table}' has no version {version} (versions {earliest}..={latest} exist)")]
    VersionNotFound {
        /// Table name.
        table: String,
        /// Requested version.
        version: u64,
        /// Earliest version still in the log.
        earliest: u64,
        /// Latest version.
        latest: u64,
    },
    /// `TIMESTAMP AS OF` before the first commit still in the log.
    #[error(
        "table '{table}' has no version at or before {timestamp}: its earliest commit (version {earliest}) is at {earliest_at}"
    )]
    TimestampTooEarly {
        /// Table name.
        table: String,
        /// Requested instant (RFC 3339).
        timestamp: String,
        /// Earliest version still in the log.
        earliest: u64,
        /// Its commit time (RFC 3339).
        earliest_at: String,
    },
    /// A schema, partitioning or property that cannot be used.
    #[error("invalid definition for table '{table}': {reason}")]
    InvalidDefinition {
        /// Table name.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A warehouse location that cannot be opened.
    #[error("cannot open warehouse '{location}': {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why.
        reason: String,
    },
    /// A concurrent writer committed first and the commit could not be retried.
    #[error("commit to table '{table}' conflicted with a concurrent commit: {source}")]
    Conflict {
        /// Table name.
        table: String,
        /// The delta-rs error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Data that does not fit the table (wrong schema on write).
    #[error("data does not fit table '{table}': {reason}")]
    InvalidData {
        /// Table name.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// Anything else from delta-rs or storage, with the table it concerned.
    #[error("table '{table}': {source}")]
    Delta {
        /// Table name (or location).
        table: String,
        /// The delta-rs error.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Object store failures outside delta-rs (log reads, listings).
    #[error("storage error at '{path}': {source}")]
    Storage {
        /// The object path.
        path: String,
        /// The object_store error.
        #[source]
        source: Box<object_store::Error>,
    },
}

impl TableError {
    /// The kind of this error, for status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TableError::NotFound { .. } | TableError::VersionNotFound { .. } => ErrorKind::NotFound,
            TableError::TimestampTooEarly { .. } => ErrorKind::NotFound,
            TableError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            TableError::InvalidName(_)
            | TableError::InvalidDefinition { .. }
            | TableError::InvalidData { .. }
            | TableError::InvalidLocation { .. } => ErrorKind::InvalidInput,
            TableError::Conflict { .. } => ErrorKind::Conflict,
            TableError::Delta { source, .. } => delta_kind(source),
            TableError::Storage { .. } => ErrorKind::Internal,
        }
    }

    /// Wraps an object-store error at `path`.
    pub(crate) fn storage(path: impl ToString, source: object_store::Error) -> Self {
        TableError::Storage {
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    /// Wraps a delta-rs error, classifying commit conflicts.
    pub(crate) fn delta(table: &str, source: DeltaTableError) -> Self {
        let table = table.to_string();
        match &source {
            DeltaTableError::Transaction { .. } | DeltaTableError::VersionAlreadyExists(_) => {
                TableError::Conflict {
                    table,
                    source: Box::new(source),
                }
            }
            _ => TableError::Delta {
                table,
                source: Box::new(source),
            },
        }
    }
}

fn delta_kind(source: &DeltaTableError) -> ErrorKind {
    match source {
        DeltaTableError::SchemaMismatch { .. }
        | DeltaTableError::InvalidData { .. }
        | DeltaTableError::InvalidPartitionFilter { .. }
        | DeltaTableError::PartitionError { .. }
        | DeltaTableError::InvalidDateTimeString { .. }
        | DeltaTableError::Arrow { .. } => ErrorKind::InvalidInput,
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidVersion(_) => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    }
}
