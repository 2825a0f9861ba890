//! The error type of silt-sql.

use datafusion::error::DataFusionError;
use silt_table::{ErrorKind, TableError};

/// Result alias for silt-sql.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// Why a statement failed. A failed statement has committed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The text is not valid SQL.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Valid SQL that cannot be planned: unknown column, type mismatch, bad literal.
    #[error("{0}")]
    Invalid(String),
    /// A table that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A statement no role may run: it names one of silt's internal tables.
    #[error("{0}")]
    Forbidden(String),
    /// SQL silt parses but does not run.
    #[error("unsupported statement: {0}")]
    Unsupported(String),
    /// Failure while running a plan.
    #[error("query failed: {0}")]
    Execution(String),
    /// The table layer refused.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A statement of a script of several failed: which one, and where it
    /// starts, so that a user finds it in a long file.
    #[error("statement {index} (line {line}): {source}")]
    InStatement {
        /// Position of the statement in the script (1-based).
        index: usize,
        /// Line of the script the statement starts on (1-based).
        line: usize,
        /// Why it failed.
        source: Box<SqlError>,
    },
    /// The warehouse's storage did not answer or is full
    /// ([`ErrorKind::Unavailable`], [`ErrorKind::InsufficientStorage`]);
    /// the statement committed nothing.
    #[error("{}", storage_detail(*.0))]
    Storage(ErrorKind),
}

/// What a storage failure of `kind` tells the caller: the object URLs in
/// the underlying error hold partition values, so they stay in the log.
pub fn storage_detail(kind: ErrorKind) -> String {
    let failure = kind
        .storage_failure()
        .or(ErrorKind::Unavailable.storage_failure())
        .unwrap_or_default();
    match kind {
        ErrorKind::InsufficientStorage => format!("{failure}; nothing was committed"),
        _ => format!("{failure}; nothing was committed, retry later"),
    }
}

impl SqlError {
    /// The kind of this error, for status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SqlError::Syntax(_) | SqlError::Invalid(_) => ErrorKind::InvalidInput,
            SqlError::NotFound(_) => ErrorKind::NotFound,
            SqlError::Forbidden(_) => ErrorKind::Forbidden,
            SqlError::Unsupported(_) => ErrorKind::Unsupported,
            SqlError::Execution(_) => ErrorKind::Internal,
            SqlError::Table(e) => e.kind(),
            SqlError::Storage(kind) => *kind,
            SqlError::InStatement { source, .. } => source.kind(),
        }
    }

    /// This error as the failure of statement `index` (1-based) of a
    /// script, starting on `line`.
    pub fn in_statement(self, index: usize, line: usize) -> Self {
        SqlError::InStatement {
            index,
            line,
            source: Box::new(self),
        }
    }
}

/// The error for a statement that names an internal table (`_silt_…`).
pub(crate) fn internal_table(name: &str) -> SqlError {
    SqlError::Forbidden(format!(
        "'{name}' is one of silt's internal tables, which SQL cannot read or change; \
         operators read dead letters with GET /v1/dead-letters and erasures with GET /v1/erasures"
    ))
}

impl From<DataFusionError> for SqlError {
    fn from(error: DataFusionError) -> Self {
        if let Some(kind) = silt_table::storage_kind(&error) {
            tracing::warn!(error = %error, "storage failure");
            return SqlError::Storage(kind);
        }
        match into_root(error) {
            // Our catalog wraps table errors; give them back their own kind.
            DataFusionError::External(inner) => match inner.downcast::<TableError>() {
                Ok(table) => SqlError::Table(*table),
                Err(inner) => match inner.downcast::<SqlError>() {
                    Ok(sql) => *sql,
                    Err(inner) => match inner.downcast::<DataFusionError>() {
                        Ok(df) => SqlError::from(*df),
                        // Writes go through silt-table (typed errors); a
                        // deltalake error inside a plan is a scan's: internal.
                        Err(inner) => match inner.downcast::<deltalake::DeltaTableError>() {
                            Ok(delta) => SqlError::Execution(delta.to_string()),
                            Err(other) => SqlError::Execution(other.to_string()),
                        },
                    },
                },
            },
            DataFusionError::SQL(e, _) => SqlError::Syntax(e.to_string()),
            DataFusionError::Plan(msg) | DataFusionError::NotImplemented(msg) => SqlError::Invalid(msg),
            DataFusionError::SchemaError(e, _) => SqlError::Invalid(e.to_string()),
            DataFusionError::ArrowError(e, _) => SqlError::Invalid(e.to_string()),
            other => SqlError::Execution(other.strip_backtrace()),
        }
    }
}

/// Peels context and diagnostics off a DataFusion error.
fn into_root(error: DataFusionError) -> DataFusionError {
    match error {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => into_root(*inner),
        DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
            Ok(inner) => into_root(inner),
            Err(shared) => DataFusionError::Execution(shared.to_string()),
        },
        DataFusionError::Collection(mut errors) if !errors.is_empty() => into_root(errors.remove(0)),
        other => other,
    }
}
