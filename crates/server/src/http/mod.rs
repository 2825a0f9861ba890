//! The axum HTTP API: routes, shared state, and the body/auth helpers every
//! handler uses.

mod console;
mod erasures;
mod ops;
mod rows;
mod sources;
mod sql;
mod tables;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use futures::StreamExt;
use silt_ingest::Ingestor;
use silt_table::{ErrorKind, Warehouse};

use crate::auth::{Auth, Role};
use crate::error::ApiError;
use crate::metrics::Metrics;

pub use erasures::{ErasureAccepted, ErasureList, ErasureState, ErasureStatus};
pub use ops::{ApiDoc, WhoAmI};
pub use rows::IngestAnswer;
pub use sources::{SourceInfo, SourceList};
pub use sql::SqlRequest;
pub use tables::{ColumnSpec, CreateTable, History, TableInfo, TableList};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The warehouse served.
    pub warehouse: Warehouse,
    /// The ingestion service (one committer per table).
    pub ingestor: Arc<Ingestor>,
    /// Tokens and roles.
    pub auth: Auth,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// The SQL service (shared with Flight SQL): limits, role checks, log.
    pub sql: crate::sql_service::SqlService,
    /// GDPR/CCPA erasure.
    pub erasure: ErasureState,
    /// The pull sources (brokers) this server runs.
    pub sources: Arc<silt_sources::Sources>,
    /// Whether the warehouse's storage answers (`/readyz`).
    pub readiness: crate::readiness::Readiness,
}

impl AppState {
    /// The role of the request's bearer token (401 without a known one).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Role, ApiError> {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        self.auth.authenticate(value)
    }

    /// Checks the request's bearer token against `role`.
    pub fn authorize(&self, headers: &HeaderMap, role: Role) -> Result<(), ApiError> {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        self.auth.check(value, role)
    }
}

/// The router of the whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/sql", post(sql::sql))
        .route("/v1/tables", post(tables::create).get(tables::list))
        .route("/v1/tables/{table}", get(tables::describe))
        .route("/v1/tables/{table}/history", get(tables::history))
        .route("/v1/tables/{table}/rows", post(rows::ingest))
        .route("/v1/erasures", post(erasures::create).get(erasures::list))
        .route("/v1/erasures/{id}", get(erasures::get))
        .route("/v1/dead-letters", get(ops::dead_letters))
        .route("/v1/whoami", get(ops::whoami))
        // The web console's assets (no token: they hold no data).
        .route("/ui", get(console::root))
        .route("/ui/", get(console::index))
        .route("/ui/{file}", get(console::file))
        .route("/v1/sources", get(sources::list))
        .route("/v1/sources/{name}/pause", post(sources::pause))
        .route("/v1/sources/{name}/resume", post(sources::resume))
        .fallback(ops::not_found)
        // Bodies are read with our own limit so the 413 is problem+json.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Reads a whole body, refusing more than `limit` bytes with 413 and a
/// `Content-Encoding` other than `identity` with 415 (silt decodes no
/// compressed bodies, and a compressed body read as plain would be garbage).
///
/// Memory grows with the bytes that arrived, never with what
/// `Content-Length` declares: an idle connection that announces a large
/// body holds nothing. A declared length above the limit is refused before
/// reading.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "request body is larger than the server's limit of {limit} bytes; split it into smaller requests"
            ),
        )
    };
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("");
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("identity") {
                let shown =
                    if coding.len() <= 32 && coding.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                        format!("'{coding}'")
                    } else {
                        "given".to_string()
                    };
                return Err(ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    format!(
                        "the Content-Encoding {shown} is not one this server decodes; send the body uncompressed (identity)"
                    ),
                ));
            }
        }
        if text.is_empty() && !value.is_empty() {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "the Content-Encoding is not visible ASCII; send the body uncompressed (identity)",
            ));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("cannot read the request body: {e}")))?;
        let held = first.as_ref().map_or(buffer.len(), Bytes::len);
        let total = held.saturating_add(chunk.len());
        if total > limit_bytes {
            return Err(too_large());
        }
        // The common one-chunk body is kept as it came, without a copy.
        if first.is_none() && buffer.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            buffer = Vec::with_capacity(first.len().saturating_mul(2).max(total).min(limit_bytes));
            buffer.extend_from_slice(&first);
        } else if total > buffer.capacity() {
            // Doubling, but never past the limit.
            let target = buffer.capacity().saturating_mul(2).max(total).min(limit_bytes);
            buffer.reserve_exact(target - buffer.len());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(match first {
        Some(first) => first,
        None => Bytes::from(buffer),
    })
}

/// Reads and drops up to 1 MiB of a body that will not be used (a refused
/// caller's), for at most 2 s: answering while the client still sends makes
/// the server close the connection, and many clients then report a reset
/// instead of the answer. Nothing of it is kept, parsed or logged.
pub(crate) async fn discard_body(body: Body) {
    const MOST: usize = 1024 * 1024;
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > MOST {
                break;
            }
        }
    })
    .await;
}

/// A JSON body, parsed with a 400 that says what is wrong.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(format!("request body is not valid JSON for this endpoint: {e}")))
}
