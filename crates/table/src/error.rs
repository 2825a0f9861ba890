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
    /// CREATE of a view or table whose name a view or table holds (the
    /// two share one namespace).
    #[error(
        "'{name}' already exists as a {existing}; drop it first (or use CREATE OR REPLACE VIEW for a view)"
    )]
    NameTaken {
        /// The name asked for.
        name: String,
        /// What holds it: `table` or `view`.
        existing: &'static str,
    },
    /// A view that does not exist.
    #[error("view '{view}' not found in warehouse '{warehouse}'")]
    ViewNotFound {
        /// View name.
        view: String,
        /// Warehouse location.
        warehouse: String,
    },
    /// A stored view definition that cannot be read back.
    #[error(
        "the stored definition of view '{view}' cannot be read: {reason}; drop the view and create it again"
    )]
    InvalidView {
        /// View name.
        view: String,
        /// Why.
        reason: String,
    },
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
    /// The warehouse's storage did not answer a probe in time.
    #[error("the storage of warehouse '{location}' did not answer within {waited_ms} ms")]
    Unreachable {
        /// The location as given.
        location: String,
        /// How long the probe waited.
        waited_ms: u128,
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
    /// RESTORE to a version whose data files VACUUM has deleted.
    #[error("cannot restore table '{table}' to version {version}: its data files were removed by VACUUM")]
    FilesVacuumed {
        /// Table name.
        table: String,
        /// The version asked for.
        version: u64,
    },
    /// An operation's rows or expressions do not fit the table: a NOT NULL
    /// column or constraint violated, a value that does not convert, a
    /// division by zero, several source rows matching one target row.
    #[error("{op} on table '{table}' failed: {reason}")]
    Rejected {
        /// The operation (`UPDATE`, `MERGE`, …).
        op: &'static str,
        /// Table name.
        table: String,
        /// What is wrong, without row values.
        reason: String,
    },
    /// A row violates a CHECK constraint or has a NULL in a NOT NULL
    /// column; nothing was written. Names the constraint, never the row.
    #[error("rows violate {violation} of table '{table}'; nothing was written")]
    ConstraintViolated {
        /// Table name.
        table: String,
        /// The constraint or column.
        violation: crate::Violation,
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
            TableError::NotFound { .. }
            | TableError::VersionNotFound { .. }
            | TableError::FilesVacuumed { .. } => ErrorKind::NotFound,
            TableError::Rejected { .. } => ErrorKind::InvalidInput,
            TableError::ConstraintViolated { .. } => ErrorKind::InvalidRows,
            TableError::TimestampTooEarly { .. } => ErrorKind::NotFound,
            TableError::AlreadyExists(_) | TableError::NameTaken { .. } => ErrorKind::AlreadyExists,
            TableError::ViewNotFound { .. } => ErrorKind::NotFound,
            TableError::InvalidView { .. } => ErrorKind::Internal,
            TableError::InvalidName(_)
            | TableError::InvalidDefinition { .. }
            | TableError::InvalidData { .. }
            | TableError::InvalidLocation { .. } => ErrorKind::InvalidInput,
            TableError::Conflict { .. } => ErrorKind::Conflict,
            TableError::Unreachable { .. } => ErrorKind::Unavailable,
            TableError::Delta { source, .. } => {
                storage_kind(source.as_ref()).unwrap_or_else(|| delta_kind(source))
            }
            TableError::Storage { source, .. } => {
                storage_kind(source.as_ref()).unwrap_or(ErrorKind::Internal)
            }
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

impl TableError {
    /// Classifies the error of operation `op` on `table`, by type: commit
    /// conflicts (409), errors the operation's rows or expressions caused
    /// (400, with a message that never quotes a value), everything else as
    /// it came.
    ///
    /// One exception is matched by text, here only: deltalake flattens the
    /// DataFusion errors raised while it rewrites files into
    /// `DeltaTableError::Generic(String)` (`delta_datafusion/mod.rs`, `From<DataFusionError>`),
    /// so a NOT NULL violation or MERGE's several-source-rows error arrives
    /// as text. Issue 13's own executor removes it.
    pub fn operation(op: &'static str, table: &str, source: DeltaTableError) -> Self {
        use deltalake::arrow::error::ArrowError;
        let rejected = |reason: &str| TableError::Rejected {
            op,
            table: table.to_string(),
            reason: reason.to_string(),
        };
        const VIOLATION: &str = "rows would violate a NOT NULL column or a constraint of the table";
        const CAST: &str = "a value does not convert to the type of the column it is assigned or compared to";
        match &source {
            DeltaTableError::InvalidData { .. } => rejected(VIOLATION),
            DeltaTableError::Arrow { source: arrow } => match arrow {
                ArrowError::CastError(_) | ArrowError::ParseError(_) => rejected(CAST),
                ArrowError::DivideByZero => rejected("division by zero"),
                ArrowError::ArithmeticOverflow(_) => rejected("an arithmetic result overflows its type"),
                ArrowError::InvalidArgumentError(text)
                | ArrowError::ComputeError(text)
                | ArrowError::SchemaError(text) => {
                    rejected(generic_reason(text).unwrap_or("an expression does not fit the table's columns"))
                }
                _ => TableError::delta(table, source),
            },
            DeltaTableError::SchemaMismatch { .. } => rejected("the rows do not have the table's schema"),
            DeltaTableError::Generic(text) => match generic_reason(text) {
                Some(reason) => rejected(reason),
                None => TableError::delta(table, source),
            },
            _ => TableError::delta(table, source),
        }
    }
}

/// The user-caused errors deltalake hands over as text (see
/// [`TableError::operation`]); the message is replaced: it may quote values.
fn generic_reason(text: &str) -> Option<&'static str> {
    const KNOWN: &[(&str, &str)] = &[
        (
            "failed validation check",
            "rows would violate a NOT NULL column or a constraint of the table",
        ),
        (
            "non-nullable",
            "rows would violate a NOT NULL column or a constraint of the table",
        ),
        (
            "Cast error",
            "a value does not convert to the type of the column it is assigned or compared to",
        ),
        (
            "Cannot cast",
            "a value does not convert to the type of the column it is assigned or compared to",
        ),
        (
            "multiple source rows",
            "a target row matches several source rows; each target row may match at most one source row",
        ),
        ("Divide by zero", "division by zero"),
        ("Schema error", "an expression does not fit the table's columns"),
        (
            "Error during planning",
            "an expression does not fit the table's columns",
        ),
        (
            "Invalid argument",
            "an expression does not fit the table's columns",
        ),
        ("Type Coercion", "an expression does not fit the table's columns"),
        ("Arrow error", "an expression does not fit the table's columns"),
    ];
    KNOWN
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, reason)| *reason)
}

/// The kind of a storage failure anywhere in `error`'s source chain, by
/// type: a full disk or quota ([`ErrorKind::InsufficientStorage`]); an
/// object store that does not answer — a transport error (refused, reset,
/// timed out) or a remote store's generic error, which object_store raises
/// for 5xx and throttling once its own retries are spent
/// ([`ErrorKind::Unavailable`]). `None`: not a storage failure.
pub fn storage_kind(error: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut remote = false;
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        {
            return Some(ErrorKind::InsufficientStorage);
        }
        if e.downcast_ref::<object_store::client::HttpError>().is_some() {
            return Some(ErrorKind::Unavailable);
        }
        if let Some(object_store::Error::Generic { store, .. }) = e.downcast_ref::<object_store::Error>() {
            remote |= !matches!(*store, "LocalFileSystem" | "InMemory");
        }
        if let Some(kernel) = e.downcast_ref::<delta_kernel::Error>() {
            // The kernel keeps the object-store error as a field, not as
            // its source, so the chain stops here.
            if let Some(kind) = kernel_storage_kind(kernel) {
                return Some(kind);
            }
        }
        next = e.source();
    }
    remote.then_some(ErrorKind::Unavailable)
}

fn kernel_storage_kind(error: &delta_kernel::Error) -> Option<ErrorKind> {
    match error {
        delta_kernel::Error::ObjectStore(source) => storage_kind(source),
        delta_kernel::Error::Reqwest(_) => Some(ErrorKind::Unavailable),
        delta_kernel::Error::IOError(source) => storage_kind(source),
        delta_kernel::Error::Backtraced { source, .. } => kernel_storage_kind(source),
        _ => None,
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
