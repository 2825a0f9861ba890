//! `POST /v1/tables/{table}/rows`: ingest one body, answered once durable.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use serde::Serialize;
use silt_ingest::{Format, IngestMode, IngestRequest};
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

/// The query parameters ingest accepts.
const INGEST_PARAMS: &[&str] = &[
    "create",
    "evolve",
    "mode",
    "keys",
    "sequence",
    "delete_column",
    "delete_value",
];

/// Metric label of a request that did not reach a table silt serves (bad
/// name, unknown or internal table, refused token): never the name sent, so
/// unauthenticated callers cannot mint label values.
const UNRESOLVED_LABEL: &str = "_unknown";

/// Ingest rows.
///
/// The body's `Content-Type` picks the decoder. With `Silt-Producer-Id` and
/// `Silt-Sequence`, a sequence at or below the producer's committed one
/// answers `duplicate: true` and writes nothing. Needs the writer role;
/// `create=true` needs the operator role, and `evolve=true` the operator
/// role or the table property `silt.ingest.evolve = true`. Tables named
/// `_silt_*` are silt's own and answer 404. Other query parameters are
/// refused with 400.
#[utoipa::path(
    post,
    path = "/v1/tables/{table}/rows",
    params(
        ("table" = String, Path, description = "table name"),
        ("create" = Option<bool>, Query, description = "create the table from the body's inferred schema (operator role)"),
        ("evolve" = Option<bool>, Query, description = "add the body's new columns as nullable columns (operator role, or a writer when the table property silt.ingest.evolve is true); mode=append only"),
        ("mode" = Option<String>, Query, description = "append (default) or upsert: apply the rows as changes keyed by `keys` (CDC apply, SCD type 1; see docs/http-api.md)"),
        ("keys" = Option<String>, Query, description = "mode=upsert: the key columns, comma-separated"),
        ("sequence" = Option<String>, Query, description = "mode=upsert: the column ordering a key's changes; a change applies only above the row's sequence (and a deleted key's tombstone). Without it the body's rows are in order and the last of a key wins"),
        ("delete_column" = Option<String>, Query, description = "mode=upsert: a column whose value `delete_value` marks a delete (it need not be a table column; it is never written)"),
        ("delete_value" = Option<String>, Query, description = "mode=upsert: the text in delete_column that marks a delete (default d, as Debezium's op)"),
        ("Silt-Producer-Id" = Option<String>, Header, description = "producer id for exactly-once (1 to 256 characters, sent once)"),
        ("Silt-Sequence" = Option<u64>, Header, description = "the producer's sequence, increasing: ASCII digits only (no sign or spaces), 0 to 2^63-1, sent once", minimum = 0, maximum = 9223372036854775807_u64),
    ),
    request_body(
        description = "rows as NDJSON, a JSON array of objects (application/json), CSV with header, Arrow IPC stream or Parquet",
        content(
            (Vec<u8> = "application/x-ndjson"),
            (Vec<u8> = "application/json"),
            (Vec<u8> = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )
    ),
    responses(
        (status = 200, description = "durable", body = IngestAnswer),
        (status = 400, description = "malformed body, headers or query parameters (an unknown parameter is refused)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "the role may not ingest, create (create=true needs operator) or add columns (evolve=true needs operator or the table's silt.ingest.evolve policy)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such table (internal _silt_ tables answer the same)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "a concurrent commit won and could not be retried", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "body too large", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "unknown content type, or a Content-Encoding other than identity", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "rows do not fit the table", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "queue full or shutting down; see Retry-After", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    tag = "ingest"
)]
pub async fn ingest(
    State(state): State<AppState>,
    Path(table): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestAnswer>, ApiError> {
    let started = Instant::now();
    let mut resolved = false;
    let result = ingest_inner(&state, &table, query, &headers, body, &mut resolved).await;
    let outcome = match &result {
        Ok(answer) if answer.duplicate => "duplicate",
        Ok(_) => "ok",
        Err(error) => outcome_word(error.kind),
    };
    // Metric labels are names of tables the request was allowed to reach,
    // never a name an unauthenticated caller made up, nor a body's content.
    let label = if resolved {
        table.as_str()
    } else {
        UNRESOLVED_LABEL
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
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
    resolved: &mut bool,
) -> Result<IngestAnswer, ApiError> {
    state.authorize(headers, Role::Writer)?;
    // Creating a table or changing its schema is DDL: the operator's, or
    // (evolve only) a writer's where the table's policy grants it.
    let may_alter = state.authorize(headers, Role::Operator).is_ok();
    let query = query_params(query, INGEST_PARAMS)?;
    let create = flag(&query, "create")?;
    let evolve = flag(&query, "evolve")?;
    let text = |name: &str| query.get(name).map(String::as_str);
    let mode = IngestMode::from_params(
        text("mode"),
        text("keys"),
        text("sequence"),
        text("delete_column"),
        text("delete_value"),
    )?;
    let format = body_format(headers)?;
    let producer = producer(headers)?;
    // Refusals that need no body come before it is read.
    state
        .ingestor
        .check_allowed(table, create, evolve, may_alter)
        .await?;
    *resolved = true;
    let bytes = read_body(headers, body, state.max_body_bytes).await?;
    state.metrics.received(table, bytes.len() as u64);
    let ack = state
        .ingestor
        .ingest(IngestRequest {
            table: table.to_string(),
            format,
            body: bytes.to_vec(),
            producer,
            create,
            evolve,
            may_alter,
            mode,
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

/// The request's query parameters, each at most once and each one of
/// `accepted`; anything else is a 400 that names it (when it is a short
/// printable name) and lists the accepted ones.
pub(crate) fn query_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    accepted: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let listed = if accepted.is_empty() {
        "this endpoint takes none".to_string()
    } else {
        format!("accepted: {}", accepted.join(", "))
    };
    let mut params = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let shown = printable_name(&name);
        if !accepted.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!(
                "unknown query parameter {shown}; {listed}"
            )));
        }
        if params.insert(name, value).is_some() {
            return Err(ApiError::invalid(format!(
                "query parameter {shown} is given more than once"
            )));
        }
    }
    Ok(params)
}

/// `'name'` for a short name of visible ASCII, else a description: a
/// parameter name is the caller's text and is only repeated when harmless.
fn printable_name(name: &str) -> String {
    if !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic() && b != b'\'') {
        format!("'{name}'")
    } else {
        "(a name that is not repeated)".to_string()
    }
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
        // application/json: one JSON array of objects (or NDJSON); the
        // NDJSON decoder reads both.
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/json" => Ok(Format::Ndjson),
        "text/csv" => Ok(Format::Csv),
        "application/vnd.apache.arrow.stream" => Ok(Format::ArrowIpc),
        "application/vnd.apache.parquet" | "application/x-parquet" => Ok(Format::Parquet),
        _ => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "cannot ingest content type '{media}': use application/x-ndjson, application/json \
                 (an array of objects), text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
            ),
        )),
    }
}

/// `(producer, sequence)` from the exactly-once headers: both or neither,
/// each sent once; the sequence is plain ASCII digits (no sign, no spaces).
fn producer(headers: &HeaderMap) -> Result<Option<(String, u64)>, ApiError> {
    let text = |name: &str, shown: &str| -> Result<Option<String>, ApiError> {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::invalid(format!(
                "header {shown} is sent more than once; send it once"
            )));
        }
        value
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| ApiError::invalid(format!("header {shown} must be visible ASCII")))
    };
    match (
        text(PRODUCER_HEADER, "Silt-Producer-Id")?,
        text(SEQUENCE_HEADER, "Silt-Sequence")?,
    ) {
        (None, None) => Ok(None),
        (Some(producer), Some(sequence)) => {
            let producer = producer.trim().to_string();
            if producer.is_empty() || producer.len() > 256 {
                return Err(ApiError::invalid("Silt-Producer-Id must be 1 to 256 characters"));
            }
            Ok(Some((producer, parse_sequence(&sequence)?)))
        }
        _ => Err(ApiError::invalid(
            "send both Silt-Producer-Id and Silt-Sequence for exactly-once, or neither",
        )),
    }
}

/// A `Silt-Sequence` value: one or more ASCII digits, at most 2^63-1.
/// `+5`, `-1`, ` 5 ` (inner or surrounding spaces the HTTP layer kept),
/// `5.0` and `0x5` are refused rather than read as a number.
fn parse_sequence(text: &str) -> Result<u64, ApiError> {
    let refuse =
        || ApiError::invalid("Silt-Sequence must be ASCII digits only, a whole number from 0 to 2^63-1");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    text.parse::<u64>()
        .ok()
        .filter(|s| i64::try_from(*s).is_ok())
        .ok_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_plain_digits() {
        for good in ["0", "5", "05", "9223372036854775807"] {
            assert!(parse_sequence(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "+5",
            "-1",
            " 5",
            "5 ",
            "5.0",
            "0x5",
            "1e3",
            "9223372036854775808",
            "５",
        ] {
            assert!(parse_sequence(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(PRODUCER_HEADER, "p".parse().expect("value"));
        headers.append(SEQUENCE_HEADER, "1".parse().expect("value"));
        assert_eq!(producer(&headers).expect("ok"), Some(("p".to_string(), 1)));
        headers.append(SEQUENCE_HEADER, "2".parse().expect("value"));
        assert!(producer(&headers).is_err());
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let query = |pairs: &[(&str, &str)]| {
            Ok(Query(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            ))
        };
        assert!(query_params(query(&[("create", "true")]), INGEST_PARAMS).is_ok());
        let error = query_params(query(&[("merge_on", "id")]), INGEST_PARAMS).expect_err("unknown");
        assert!(
            error.detail.contains("'merge_on'") && error.detail.contains("create, evolve"),
            "{}",
            error.detail
        );
        let error = query_params(query(&[("alice@example.com x", "1")]), INGEST_PARAMS).expect_err("unknown");
        assert!(!error.detail.contains("alice"), "{}", error.detail);
        assert!(query_params(query(&[("create", "true"), ("create", "false")]), INGEST_PARAMS).is_err());
    }
}
