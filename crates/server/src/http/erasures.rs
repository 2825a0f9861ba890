//! `/v1/erasures`: file GDPR/CCPA erasure requests, follow them, read their
//! certificates. Operator role only. The work itself is silt-erasure's; this
//! module translates HTTP and never echoes a subject back (request bodies are
//! checked by hand so that no parser message quotes one).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use silt_erasure::{Erasure, ErasureError, NewRequest, RequestView};
use silt_table::ErrorKind;

use super::{AppState, read_body};
use crate::auth::Role;
use crate::error::ApiError;

/// The erasure service, or why it is not available (an object-store
/// warehouse without `[erasure] secret` and `key`).
#[derive(Clone, Debug)]
pub struct ErasureState {
    service: Result<Arc<Erasure>, String>,
}

impl ErasureState {
    /// A running service.
    pub fn ready(service: Arc<Erasure>) -> Self {
        Self { service: Ok(service) }
    }

    /// No service, with the reason every request will be answered with.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            service: Err(reason.into()),
        }
    }

    fn get(&self) -> Result<&Arc<Erasure>, ApiError> {
        self.service.as_ref().map_err(|reason| {
            ApiError::new(
                ErrorKind::Unsupported,
                format!("erasure is not available: {reason}"),
            )
        })
    }
}

impl From<ErasureError> for ApiError {
    fn from(error: ErasureError) -> Self {
        ApiError::new(error.kind(), error.to_string())
    }
}

/// `POST /v1/erasures` body.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; parsed by hand (see module docs)
pub struct ErasureRequestBody {
    /// Identifiers of the data subject(s): values of the tables' subject
    /// columns; at least one non-empty, at most 100,000.
    #[schema(min_items = 1, max_items = 100000)]
    subjects: Vec<String>,
    /// Limit to these tables (default: every table with `silt.erasure.subject_columns`).
    tables: Option<Vec<String>>,
    /// Purge history (VACUUM, checkpoint, log expiry); default true.
    purge: Option<bool>,
    /// Idempotency key: repeating it answers the first request.
    #[schema(min_length = 1)]
    request_id: Option<String>,
}

/// `POST /v1/erasures` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureAccepted {
    /// The erasure id.
    pub id: String,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
}

/// One request, as `GET /v1/erasures/{id}` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureStatus {
    /// The erasure id.
    pub id: String,
    /// The caller's idempotency key.
    pub request_id: Option<String>,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    /// When it was received (RFC 3339).
    pub received_at: String,
    /// When its state last changed.
    pub updated_at: String,
    /// received_at + 30 days.
    pub deadline: String,
    /// Still open past the deadline.
    pub overdue: bool,
    /// Number of subjects.
    pub subjects: usize,
    /// HMAC-SHA256 of each subject (hex).
    pub subject_hashes: Vec<String>,
    /// Tables it was limited to.
    pub tables: Option<Vec<String>>,
    /// Whether history is purged.
    pub purge: bool,
    /// The signed certificate once finished (schemas/certificate.schema.json).
    #[schema(value_type = Option<Object>)]
    pub certificate: Option<Value>,
    /// Why it failed (paths, no values).
    pub error: Option<String>,
}

impl From<RequestView> for ErasureStatus {
    fn from(v: RequestView) -> Self {
        ErasureStatus {
            id: v.id,
            request_id: v.request_id,
            status: v.status.as_str().to_string(),
            received_at: v.received_at.to_rfc3339(),
            updated_at: v.updated_at.to_rfc3339(),
            deadline: v.deadline.to_rfc3339(),
            overdue: v.overdue,
            subjects: v.subjects,
            subject_hashes: v.subject_hashes,
            tables: v.tables,
            purge: v.purge,
            certificate: v.certificate,
            error: v.error,
        }
    }
}

/// `GET /v1/erasures` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureList {
    /// Requests, oldest first.
    pub erasures: Vec<ErasureStatus>,
}

/// Reads the body without letting a parser quote a value.
fn parse_request(bytes: &[u8]) -> Result<NewRequest, ApiError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(format!(
            "request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = doc else {
        return Err(ApiError::invalid("request body must be a JSON object"));
    };
    let strings = |key: &str, value: &Value| -> Result<Vec<String>, ApiError> {
        value
            .as_array()
            .and_then(|items| items.iter().map(|v| v.as_str().map(str::to_string)).collect())
            .ok_or_else(|| ApiError::invalid(format!("'{key}' must be a list of strings")))
    };
    let mut request = NewRequest::default();
    for (key, value) in &map {
        match key.as_str() {
            "subjects" => request.subjects = strings(key, value)?,
            "tables" if value.is_null() => {}
            "tables" => request.tables = Some(strings(key, value)?),
            "purge" => {
                request.purge = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| ApiError::invalid("'purge' must be true or false"))?,
                )
            }
            "request_id" if value.is_null() => {}
            "request_id" => {
                request.request_id = Some(
                    value
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| ApiError::invalid("'request_id' must be a non-empty string"))?
                        .to_string(),
                )
            }
            // The key is not echoed: a misplaced subject could be one.
            _ => {
                return Err(ApiError::invalid(
                    "unknown field in the request body; expected only subjects, tables, purge, request_id",
                ));
            }
        }
    }
    if !map.contains_key("subjects") {
        return Err(ApiError::invalid("'subjects' is required"));
    }
    Ok(request)
}

/// File an erasure request. The worker runs it in the background; poll
/// `GET /v1/erasures/{id}` for its status and certificate.
#[utoipa::path(post, path = "/v1/erasures", request_body = ErasureRequestBody,
    responses((status = 202, body = ErasureAccepted),
              (status = 400, description = "malformed body, unknown field, no non-empty subject, unknown table", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "request_id already used for a different request", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "body above 64 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "a Content-Encoding other than identity", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 501, description = "erasure is not available (object-store warehouse without [erasure] secret and key)", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "erasure")]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ErasureAccepted>), ApiError> {
    state.authorize(&headers, Role::Operator)?;
    let service = state.erasure.get()?;
    let bytes = read_body(&headers, body, 64 * 1024 * 1024).await?;
    let request = parse_request(&bytes)?;
    let submitted = service.submit(request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ErasureAccepted {
            id: submitted.id,
            status: submitted.status.as_str().to_string(),
        }),
    ))
}

/// List erasure requests with their deadlines (received + 30 days).
#[utoipa::path(get, path = "/v1/erasures",
    responses((status = 200, body = ErasureList),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 501, description = "erasure is not available (object-store warehouse without [erasure] secret and key)", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "erasure")]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<ErasureList>, ApiError> {
    state.authorize(&headers, Role::Operator)?;
    let service = state.erasure.get()?;
    let erasures = service
        .list()
        .await?
        .into_iter()
        .map(ErasureStatus::from)
        .collect();
    Ok(Json(ErasureList { erasures }))
}

/// One erasure request: status, and the signed certificate once finished.
#[utoipa::path(get, path = "/v1/erasures/{id}", params(("id" = String, Path, description = "erasure id")),
    responses((status = 200, body = ErasureStatus),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such erasure", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 501, description = "erasure is not available (object-store warehouse without [erasure] secret and key)", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "erasure")]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ErasureStatus>, ApiError> {
    state.authorize(&headers, Role::Operator)?;
    let service = state.erasure.get()?;
    Ok(Json(service.get(&id).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_never_quote_a_subject() {
        for body in [
            r#"{"subjects": "alice@example.com"}"#,
            r#"{"subjects": ["alice@example.com", 5]}"#,
            r#"{"subjects": ["alice@example.com"], "purge": "alice@example.com"}"#,
            r#"{"subjects": ["alice@example.com"], "alice@example.com": 1}"#,
            r#"{"subjects": ["alice@example.com"#,
        ] {
            let error = parse_request(body.as_bytes()).expect_err(body);
            assert!(!error.detail.contains("alice"), "{}", error.detail);
        }
        let ok = parse_request(br#"{"subjects": ["a"], "purge": false, "request_id": "r"}"#).expect("ok");
        assert_eq!(ok.subjects, vec!["a"]);
        assert_eq!(ok.purge, Some(false));
    }
}
