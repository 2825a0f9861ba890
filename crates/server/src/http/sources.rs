//! `/v1/sources`: the pull sources' status, and pause/resume (operator).
//! Nothing shown holds a URL, a credential or message content.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;

use super::AppState;
use crate::auth::Role;
use crate::error::ApiError;

/// One source, as `GET /v1/sources` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceInfo {
    /// The source's name (from the config).
    pub name: String,
    /// Its kind (`nats`).
    pub kind: String,
    /// `starting`, `running`, `reconnecting` (broker unreachable, retrying),
    /// `paused`, `failed` (batches fail, retrying) or `stopped`.
    pub state: String,
    /// What went wrong last, as a fixed word (`unreachable`,
    /// `stream-not-found`, `broker`, or an error kind such as `not-found`);
    /// null once the source runs well again.
    pub last_error: Option<String>,
    /// The tables its routes write.
    pub tables: Vec<String>,
    /// Messages taken and acknowledged.
    pub messages: u64,
    /// Rows committed.
    pub rows: u64,
    /// Messages sent to the dead-letter table.
    pub dead_letters: u64,
    /// Redelivered messages recognised as committed before.
    pub duplicates: u64,
    /// Messages no route matched (acknowledged, not written).
    pub unrouted: u64,
    /// Table version of the source's last commit since the server started.
    pub last_commit_version: Option<u64>,
    /// Messages the broker has not delivered to the source yet (JetStream
    /// `num_pending`), when last asked; null before the first answer.
    pub lag: Option<u64>,
}

impl From<silt_sources::SourceStatus> for SourceInfo {
    fn from(status: silt_sources::SourceStatus) -> Self {
        let state = serde_json::to_value(status.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Self {
            name: status.name,
            kind: status.kind.to_string(),
            state,
            last_error: status.last_error,
            tables: status.tables,
            messages: status.messages,
            rows: status.rows,
            dead_letters: status.dead_letters,
            duplicates: status.duplicates,
            unrouted: status.unrouted,
            last_commit_version: status.last_commit_version,
            lag: status.lag,
        }
    }
}

/// `GET /v1/sources` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceList {
    /// In configuration order.
    pub sources: Vec<SourceInfo>,
}

/// The configured pull sources and how they are doing. Any role.
#[utoipa::path(get, path = "/v1/sources",
    responses((status = 200, body = SourceList),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the token's role may not read", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "sources")]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SourceList>, ApiError> {
    state.authorize(&headers, Role::Reader)?;
    Ok(Json(SourceList {
        sources: state
            .sources
            .statuses()
            .into_iter()
            .map(SourceInfo::from)
            .collect(),
    }))
}

/// Stops fetching from the source after the batch in flight; its messages
/// stay pending at the broker (the lag grows). Operator role; idempotent.
#[utoipa::path(post, path = "/v1/sources/{name}/pause",
    params(("name" = String, Path, description = "source name")),
    responses((status = 200, description = "paused (the state shows `paused` once the batch in flight is done)", body = SourceInfo),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such source", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "sources")]
pub async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SourceInfo>, ApiError> {
    state.authorize(&headers, Role::Operator)?;
    Ok(Json(state.sources.pause(&name)?.into()))
}

/// Fetches from the source again. Operator role; idempotent.
#[utoipa::path(post, path = "/v1/sources/{name}/resume",
    params(("name" = String, Path, description = "source name")),
    responses((status = 200, description = "resumed", body = SourceInfo),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such source", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "sources")]
pub async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SourceInfo>, ApiError> {
    state.authorize(&headers, Role::Operator)?;
    Ok(Json(state.sources.resume(&name)?.into()))
}
