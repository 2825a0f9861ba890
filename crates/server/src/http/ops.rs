//! Operational routes: `/healthz`, `/metrics`, `/openapi.json`,
//! `/v1/whoami`, `/v1/dead-letters`, and the problem+json 404 for unknown
//! paths.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use silt_table::ErrorKind;
use utoipa::OpenApi;

use super::AppState;
use super::rows::query_params;
use crate::auth::Role;
use crate::error::ApiError;

/// The OpenAPI document of the HTTP API, generated from the handlers'
/// annotations; `schemas/openapi.json` is this, checked in (a test keeps
/// them equal).
#[derive(OpenApi)]
#[openapi(
    info(title = "silt", description = "Transactional data lake over Delta Lake tables"),
    paths(
        healthz,
        readyz,
        metrics,
        whoami,
        dead_letters,
        super::tables::create,
        super::tables::list,
        super::tables::describe,
        super::tables::history,
        super::rows::ingest,
        super::sql::sql,
        super::erasures::create,
        super::erasures::list,
        super::erasures::get,
        super::sources::list,
        super::sources::pause,
        super::sources::resume,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "tables", description = "create and inspect tables"), (name = "ingest", description = "write rows"), (name = "sql", description = "run SQL"), (name = "erasure", description = "GDPR/CCPA erasure with signed certificates"), (name = "ops", description = "health, metrics and dead letters"), (name = "sources", description = "pull sources (brokers) feeding tables"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness: answers while the server runs. Needs no token.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "serving")), security(()), tag = "ops")]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 while the warehouse's storage answers a probe (one
/// LIST of its root, reused for a second), 503 problem+json with
/// `Retry-After` while it does not. Needs no token.
#[utoipa::path(get, path = "/readyz",
    responses((status = 200, description = "the warehouse's storage answers"),
              (status = 503, description = "the warehouse's storage does not answer; see Retry-After", body = crate::error::Problem, content_type = "application/problem+json")),
    security(()), tag = "ops")]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match state.readiness.check().await {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(kind) => {
            let failure = kind.storage_failure().unwrap_or("the warehouse's storage failed");
            Err(ApiError::new(kind, format!("{failure} (see the server's log)")))
        }
    }
}

/// Prometheus text exposition. Needs a token of any role when tokens are
/// configured (open in loopback no-token mode). Labels are table names and
/// fixed words; silt's internal tables are never named.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the token's role may not read", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "ops")]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Role::Reader)?;
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// `GET /v1/whoami` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The caller's role: `reader`, `writer` or `operator`.
    pub role: String,
    /// Whether the server checks tokens at all (false: loopback-only mode,
    /// where every caller is an operator).
    pub tokens_configured: bool,
}

/// The role of the caller's bearer token. The web console asks this at
/// login to check the token and to show only the pages the role may use.
#[utoipa::path(get, path = "/v1/whoami",
    responses((status = 200, body = WhoAmI),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "ops")]
pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<WhoAmI>, ApiError> {
    let role = state.authenticate(&headers)?;
    Ok(Json(WhoAmI {
        role: role.as_str().to_string(),
        tokens_configured: state.auth.enabled(),
    }))
}

/// Most dead letters one `GET /v1/dead-letters` answers.
const MAX_DEAD_LETTERS: usize = 10_000;
/// Dead letters answered without `limit`.
const DEFAULT_DEAD_LETTERS: usize = 100;

/// One rejected row from `_silt_dead_letters`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The table the row was sent to.
    pub table: String,
    /// When its request arrived (RFC 3339, UTC).
    pub received_at: String,
    /// The request's `Silt-Producer-Id`, if any.
    pub producer: Option<String>,
    /// The request's `Silt-Sequence`, if any.
    pub sequence: Option<i64>,
    /// Why the row was rejected (names row and column, never a value).
    pub reason: String,
    /// The row as it was decoded, as one JSON object (text).
    pub raw: String,
}

/// `GET /v1/dead-letters` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    /// Newest first.
    pub dead_letters: Vec<DeadLetter>,
}

/// Rows that ingest rejected into `_silt_dead_letters` (tables with
/// `silt.ingest.dead_letters = true`), newest first. Operator role: the
/// rows are raw input and may hold personal data; `_silt_*` tables are not
/// reachable through SQL or `/v1/tables`.
#[utoipa::path(get, path = "/v1/dead-letters",
    params(("table" = Option<String>, Query, description = "only rows sent to this table"),
           ("limit" = Option<usize>, Query, description = "at most this many rows (default 100)", minimum = 1, maximum = 10000)),
    responses((status = 200, body = DeadLetterList),
              (status = 400, description = "bad table name or limit, or an unknown query parameter", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "ops")]
pub async fn dead_letters(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<DeadLetterList>, ApiError> {
    state.authorize(&headers, Role::Operator)?;
    let query = query_params(query, &["table", "limit"])?;
    let table = query.get("table").map(String::as_str);
    if let Some(table) = table {
        silt_table::validate_table_name(table)?;
    }
    let limit = match query.get("limit") {
        None => DEFAULT_DEAD_LETTERS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DEAD_LETTERS).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit must be a whole number from 1 to {MAX_DEAD_LETTERS}"
                ))
            })?,
    };
    let rows = silt_ingest::dead_letter::read_dead_letters(&state.warehouse, table, limit).await?;
    Ok(Json(DeadLetterList {
        dead_letters: rows
            .into_iter()
            .map(|row| DeadLetter {
                table: row.table,
                received_at: row.received_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                producer: row.producer,
                sequence: row.sequence,
                reason: row.reason,
                raw: row.raw,
            })
            .collect(),
    }))
}

/// The OpenAPI document.
pub async fn openapi() -> Response {
    let text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such endpoint; see /openapi.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schemas/openapi.json` is the generated document, checked in. Run with
    /// `SILT_UPDATE_SCHEMAS=1` to rewrite it after changing a route.
    #[test]
    fn checked_in_openapi_matches_the_code() {
        let generated = ApiDoc::openapi().to_pretty_json().expect("serialises") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
        if std::env::var_os("SILT_UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &generated).expect("writes schemas/openapi.json");
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schemas/openapi.json is stale: run SILT_UPDATE_SCHEMAS=1 cargo test -p silt-server"
        );
    }
}
