//! `POST /v1/tables/{table}/rows`: ingest one body, answered once durable.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use serde::Serialize;
use silt_ingest::{Format, IngestRequest};
use silt_table::ErrorKind;

use super::{AppState, read_body};
use crate::auth::Role;
use crate::error::ApiError;

/// Header naming the producer, for exactly-once.
pub const PRODUCER_HEADER: &str = "silt-producer-id";
/// Header carrying the producer's sequence number.
pub const SEQUENCE_HEADER: &str = "silt-sequence";

/// The answer to an ingest request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestAnswer {
    /// Table written.
    pub table: String,
    /// The version holding the rows.
    pub version: u64,
    /// Rows committed.
    pub rows_written: u64,
    /// Rows sent to `_silt_dead_letters`.
    pub rows_rejected: u64,
    /// The sequence was committed before; nothing was written.
    pub duplicate: bool,
}

/// Ingest rows.
///
/// The body's `Content-Type` picks the decoder. With `Silt-Producer-Id` and
/// `Silt-Sequence`, a sequence at or below the producer's committed one
/// answers `duplicate: true` and writes nothing.
#[utoipa::path(
    post,
    path = "/v1/tables/{table}/rows",
    params(
        ("table" = String, Path, description = "table name"),
        ("create" = Option<bool>, Query, description = "create the table from the body's inferred schema"),
        ("evolve" = Option<bool>, Query, description = "add the body's new columns as nullable columns"),
        ("Silt-Producer-Id" = Option<String>, Header, description = "producer id for exactly-once"),
        ("Silt-Sequence" = Option<u64>, Header, description = "the producer's sequence, increasing"),
    ),
    request_body(
        description = "rows as NDJSON, CSV with header, Arrow IPC stream or Parquet",
        content(
            (Vec<u8> = "application/x-ndjson"),
            (Vec<u8> = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )
    ),
    responses(
        (status = 200, description = "durable", body = IngestAnswer),
        (status = 400, description = "malformed body or headers", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "role may not ingest", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such table", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "unknown content type", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "rows do not fit the table", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "queue full; see Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    tag = "ingest"
)]
pub async fn ingest(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestAnswer>, ApiError> {
    let started = Instant::now();
    let result = ingest_inner(&state, &table, query, &headers, body).await;
    let outcome = match &result {
        Ok(answer) if answer.duplicate => "duplicate",
        Ok(_) => "ok",
        Err(error) => outcome_word(error.kind),
    };
    // Metric labels come from names the table layer accepted, never from bodies.
    let label = if silt_table::validate_table_name(&table).is_ok() {
        table.as_str()
    } else {
        "_invalid"
    };
    if let Err(error) = &result {
        state.metrics.rejected(label, outcome_word(error.kind));
    }
    state
        .metrics
        .answered(label, outcome, started.elapsed().as_secs_f64());
    result.map(Json)
}

async fn ingest_inner(
    state: &AppState,
    table: &str,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<IngestAnswer, ApiError> {
    state.authorize(headers, Role::Writer)?;
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let create = flag(&query, "create")?;
    let evolve = flag(&query, "evolve")?;
    let format = body_format(headers)?;
    let producer = producer(headers)?;
    let bytes = read_body(headers, body, state.max_body_bytes).await?;
    if silt_table::validate_table_name(table).is_ok() {
        state.metrics.received(table, bytes.len() as u64);
    }
    let ack = state
        .ingestor
        .ingest(IngestRequest {
            table: table.to_string(),
            format,
            body: bytes.to_vec(),
            producer,
            create,
            evolve,
        })
        .await?;
    Ok(IngestAnswer {
        table: ack.table,
        version: ack.version,
        rows_written: ack.rows_written,
        rows_rejected: ack.rows_rejected,
        duplicate: ack.duplicate,
    })
}

fn outcome_word(kind: ErrorKind) -> &'static str {
    kind.slug()
}

fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v.is_empty() || v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(_) => Err(ApiError::invalid(format!(
            "query parameter '{name}' must be true or false"
        ))),
    }
}

/// The decoder for the body's `Content-Type`.
pub(crate) fn body_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Ok(Format::Ndjson)
        }
        "text/csv" => Ok(Format::Csv),
        "application/vnd.apache.arrow.stream" => Ok(Format::ArrowIpc),
        "application/vnd.apache.parquet" | "application/x-parquet" => Ok(Format::Parquet),
        _ => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "cannot ingest content type '{media}': use application/x-ndjson, text/csv, \
                 application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
            ),
        )),
    }
}

/// `(producer, sequence)` from the exactly-once headers: both or neither.
fn producer(headers: &HeaderMap) -> Result<Option<(String, u64)>, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_string())
                    .map_err(|_| ApiError::invalid(format!("header {name} must be visible ASCII")))
            })
            .transpose()
    };
    match (text(PRODUCER_HEADER)?, text(SEQUENCE_HEADER)?) {
        (None, None) => Ok(None),
        (Some(producer), Some(sequence)) => {
            if producer.is_empty() || producer.len() > 256 {
                return Err(ApiError::invalid("Silt-Producer-Id must be 1 to 256 characters"));
            }
            let sequence = sequence
                .parse::<u64>()
                .ok()
                .filter(|s| i64::try_from(*s).is_ok())
                .ok_or_else(|| ApiError::invalid("Silt-Sequence must be a whole number from 0 to 2^63-1"))?;
            Ok(Some((producer, sequence)))
        }
        _ => Err(ApiError::invalid(
            "send both Silt-Producer-Id and Silt-Sequence for exactly-once, or neither",
        )),
    }
}
