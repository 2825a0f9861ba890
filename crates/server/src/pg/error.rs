//! Errors on the wire: an [`ApiError`] becomes an ErrorResponse whose
//! SQLSTATE comes from its [`ErrorKind`] (`ErrorKind::sqlstate`, the one
//! mapping beside the HTTP status and exit code), so a driver tells a
//! missing table from a syntax error or a timeout by code, never by text.

use pgwire::error::{ErrorInfo, PgWireError};
use silt_table::ErrorKind;

use crate::error::ApiError;

/// The SQLSTATE of `error`: its kind's, refined where Postgres has a more
/// precise code for the same kind (a syntax error is 42601, not 22023).
pub(crate) fn sqlstate(error: &ApiError) -> &'static str {
    if error.kind == ErrorKind::InvalidInput && error.detail.starts_with("syntax error") {
        return "42601";
    }
    error.kind.sqlstate()
}

/// The ErrorResponse fields for `error` (severity ERROR: the session goes on).
pub(crate) fn info(error: &ApiError) -> ErrorInfo {
    ErrorInfo::new(
        "ERROR".to_owned(),
        sqlstate(error).to_owned(),
        error.detail.clone(),
    )
}

/// `error` as pgwire's error type.
pub(crate) fn wire(error: ApiError) -> PgWireError {
    PgWireError::UserError(Box::new(info(&error)))
}

/// A FATAL error: the server closes the connection after sending it.
pub(crate) fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_42601_and_kinds_keep_their_code() {
        let syntax = ApiError::new(ErrorKind::InvalidInput, "syntax error: expected an expression");
        assert_eq!(sqlstate(&syntax), "42601");
        assert_eq!(sqlstate(&ApiError::new(ErrorKind::InvalidInput, "bad")), "22023");
        assert_eq!(sqlstate(&ApiError::new(ErrorKind::NotFound, "no table")), "42P01");
        assert_eq!(sqlstate(&ApiError::new(ErrorKind::Timeout, "late")), "57014");
    }
}
