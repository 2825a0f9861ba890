//! Errors: [`ServerError`] for start-up, [`ApiError`] for requests. An
//! `ApiError` becomes an RFC 9457 `application/problem+json` body (HTTP) or a
//! gRPC status (Flight), both from its [`ErrorKind`] — the one mapping lives
//! in `silt_table::ErrorKind`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use silt_ingest::IngestError;
use silt_table::{ErrorKind, TableError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The config file could not be read.
    #[error("cannot read config '{path}': {source}")]
    ConfigRead {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("invalid config '{path}': {reason}")]
    ConfigInvalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An address that cannot be bound or parsed.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A non-loopback address without any configured token.
    #[error(
        "refusing to listen on {addr} without authentication: configure [[auth.tokens]] or bind 127.0.0.1"
    )]
    OpenNonLoopback {
        /// The address.
        addr: String,
    },
    /// The warehouse could not be opened.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A listener failed while serving.
    #[error("{service} server failed: {reason}")]
    Serve {
        /// `http` or `flight`.
        service: &'static str,
        /// Why.
        reason: String,
    },
}

impl ServerError {
    /// The kind, for the CLI's exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServerError::Table(e) => e.kind(),
            ServerError::ConfigRead { .. } | ServerError::ConfigInvalid { .. } => ErrorKind::InvalidInput,
            ServerError::Bind { .. } | ServerError::OpenNonLoopback { .. } => ErrorKind::InvalidInput,
            ServerError::Serve { .. } => ErrorKind::Internal,
        }
    }
}

/// A request that failed: the kind picks the status, `detail` says why.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The error kind (status, problem type).
    pub kind: ErrorKind,
    /// Human-readable detail; never holds a data value.
    pub detail: String,
    /// `Retry-After` seconds, for overload.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, detail)
    }

    /// 401.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, detail)
    }

    /// The gRPC status for Flight.
    pub fn to_status(&self) -> tonic::Status {
        let code = tonic::Code::from_i32(self.kind.grpc_code());
        tonic::Status::new(code, self.detail.clone())
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let retry_after = match &error {
            IngestError::Overloaded { retry_after_secs, .. } => Some(*retry_after_secs),
            IngestError::ShuttingDown(_) => Some(1),
            _ => None,
        };
        Self {
            kind: error.kind(),
            detail: error.to_string(),
            retry_after,
        }
    }
}

impl From<silt_sources::SourceError> for ApiError {
    fn from(error: silt_sources::SourceError) -> Self {
        Self::new(error.kind(), error.to_string())
    }
}

impl From<TableError> for ApiError {
    fn from(error: TableError) -> Self {
        match error.kind() {
            // Object URLs (partition values) stay in the server's log.
            kind @ (ErrorKind::Unavailable | ErrorKind::InsufficientStorage) => {
                tracing::warn!(%error, "storage failure");
                Self::new(kind, silt_sql::storage_detail(kind))
            }
            kind => Self::new(kind, error.to_string()),
        }
    }
}

/// Seconds a client is asked to wait when the warehouse's storage does not
/// answer (the object store already retried for `retry_timeout`).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind == ErrorKind::Internal {
            tracing::error!(detail = %self.detail, "internal error");
        }
        let status =
            StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Problem {
            problem_type: self.kind.problem_type().to_string(),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: self.detail,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let retry_after = self
            .retry_after
            .or((self.kind == ErrorKind::Unavailable).then_some(UNAVAILABLE_RETRY_AFTER_SECS));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // A body refused as too large is left unread, so hyper closes the
        // connection after this answer. Saying so keeps a keep-alive client
        // from sending its next request into the closing socket (seen as
        // `IncompleteMessage` from reqwest's pool).
        if self.kind == ErrorKind::TooLarge {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
