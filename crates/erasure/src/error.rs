//! The error type of silt-erasure. Messages name requests, tables and paths,
//! never a data subject's value.

use silt_table::{ErrorKind, TableError};

/// Result alias for silt-erasure.
pub type Result<T, E = ErasureError> = std::result::Result<T, E>;

/// Errors raised while filing, running or reporting an erasure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErasureError {
    /// The request itself is wrong (no subjects, unknown table…).
    #[error("invalid erasure request: {0}")]
    Invalid(String),
    /// A `request_id` already names a different request (other subjects,
    /// tables or purge): idempotency keys must not be reused.
    #[error("request_id '{0}' was already used for a different erasure request")]
    Conflict(String),
    /// No request with this id.
    #[error("erasure request '{0}' not found")]
    NotFound(String),
    /// The erasure secret or encryption key is missing or unusable.
    #[error("erasure keys: {0}")]
    Keys(String),
    /// A pending request's sealed subjects could not be opened (wrong key,
    /// damaged ledger).
    #[error("erasure request '{id}': cannot open its sealed subjects: {reason}")]
    Sealed {
        /// Request id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The ledger table holds something silt did not write.
    #[error("erasure ledger '_silt_erasures' is damaged: {0}")]
    Ledger(String),
    /// A table operation failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A deltalake operation (delete, vacuum, checkpoint) on a table failed.
    #[error("erasure step '{step}' on table '{table}' failed: {reason}")]
    Step {
        /// Table name.
        table: String,
        /// `delete`, `vacuum`, `checkpoint`, `expire-logs`, `verify`.
        step: &'static str,
        /// The underlying error's text (deltalake errors carry no row values
        /// here: the predicate is a value-free function call).
        reason: String,
    },
}

impl ErasureError {
    /// The kind of this error, for status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ErasureError::Invalid(_) => ErrorKind::InvalidInput,
            ErasureError::NotFound(_) => ErrorKind::NotFound,
            ErasureError::Conflict(_) => ErrorKind::Conflict,
            ErasureError::Keys(_) => ErrorKind::Unsupported,
            ErasureError::Table(e) => e.kind(),
            ErasureError::Sealed { .. } | ErasureError::Ledger(_) | ErasureError::Step { .. } => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn step(table: &str, step: &'static str, reason: impl ToString) -> Self {
        ErasureError::Step {
            table: table.to_string(),
            step,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_client_and_server_errors() {
        assert_eq!(ErasureError::Invalid("x".into()).kind(), ErrorKind::InvalidInput);
        assert_eq!(ErasureError::NotFound("x".into()).kind(), ErrorKind::NotFound);
        assert_eq!(
            ErasureError::step("t", "delete", "boom").kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            ErasureError::step("t", "delete", "boom").to_string(),
            "erasure step 'delete' on table 't' failed: boom"
        );
    }
}
