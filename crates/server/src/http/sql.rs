//! `POST /v1/sql`: one statement, its result streamed in the format the
//! `Accept` header asks for. Rows are encoded batch by batch as the scan
//! produces them, so a large answer is never held in server memory.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use silt_sql::ScalarValue;

use super::{AppState, parse_json, read_body};
use crate::error::ApiError;
use crate::sql_encode::{Encoder, ResultFormat};
use crate::sql_service::{Answer, Call};

/// `POST /v1/sql` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SQL statement.
    #[schema(min_length = 1)]
    pub sql: String,
    /// Values for `$1`, `$2`, … (JSON null, boolean, number or string).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<serde_json::Value>,
    /// Lower the server's statement timeout for this request (milliseconds).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Lower the server's row cap for this request.
    #[serde(default)]
    pub max_rows: Option<u64>,
}

fn scalar(index: usize, value: &serde_json::Value) -> Result<ScalarValue, ApiError> {
    Ok(match value {
        serde_json::Value::Null => ScalarValue::Null,
        serde_json::Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        serde_json::Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        _ => {
            return Err(ApiError::invalid(format!(
                "params[{index}] must be null, a boolean, a number or a string"
            )));
        }
    })
}

/// Run one SQL statement.
///
/// SELECT/EXPLAIN/SHOW need the reader role, INSERT/UPDATE/DELETE/MERGE the
/// writer role, anything else the operator role. `Accept` picks the format:
/// `application/json` (default), `application/x-ndjson`, `text/csv`,
/// `application/vnd.apache.arrow.stream` or `application/vnd.apache.parquet`
/// (a Parquet file, sent row group by row group). The `Silt-Row-Cap` header gives the
/// row cap applied; JSON answers also say `"truncated"`.
#[utoipa::path(post, path = "/v1/sql", request_body = SqlRequest,
    responses(
        (status = 200, description = "the result, streamed; DML answers one row with the new version and counts"),
        (status = 400, description = "syntax error, unknown column, bad parameter, statement longer or deeper than the limits", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "no known bearer token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "role may not run this statement, or it names an internal table", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown table or version", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 408, description = "statement timeout", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict with a concurrent writer", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "body larger than the limit", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "rows of an INSERT/UPDATE/MERGE/APPLY CHANGES violate a NOT NULL column or a CHECK constraint (named, no value quoted); nothing committed", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many statements running for this role", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    tag = "sql")]
pub async fn sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Who is asking comes first: nothing of the body is read, parsed or
    // logged for a caller without a known token.
    let caller = match state.authenticate(&headers) {
        Ok(caller) => caller,
        Err(error) => {
            // Discarded unread, so the client (still sending) sees the 401
            // rather than a reset connection.
            super::discard_body(body).await;
            return Err(error);
        }
    };
    let format = ResultFormat::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))?;
    let bytes = read_body(&headers, body, MAX_SQL_BODY_BYTES).await?;
    let request: SqlRequest = parse_json(&bytes)?;
    let params = request
        .params
        .iter()
        .enumerate()
        .map(|(i, v)| scalar(i + 1, v))
        .collect::<Result<Vec<_>, _>>()?;
    let answer = state
        .sql
        .run(Call {
            protocol: "http",
            command: "sql",
            caller,
            sql: request.sql,
            params,
            timeout: request.timeout_ms.map(Duration::from_millis),
            max_rows: request.max_rows,
            query_only: false,
        })
        .await?;
    Ok(respond(format, answer))
}

/// The largest `/v1/sql` body: the statement (bounded by
/// `[sql] max_statement_bytes`) and its parameters.
const MAX_SQL_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Streams `answer` in `format`, batch by batch.
fn respond(format: ResultFormat, answer: Answer) -> Response {
    let Answer {
        schema,
        first,
        rest,
        max_rows,
        truncated,
    } = answer;
    let mut encoder = Encoder::new(format, schema, max_rows);
    let head = encoder.start().map_err(|e| std::io::Error::other(e.to_string()));
    let first_chunk = match first {
        Some(batch) => encoder
            .batch(&batch)
            .map_err(|e| std::io::Error::other(e.to_string())),
        None => Ok(Bytes::new()),
    };
    let body_stream = futures::stream::unfold(
        (Some(rest), encoder, truncated),
        move |(rest, mut encoder, truncated)| async move {
            let mut rest = rest?;
            match rest.next().await {
                None => {
                    if truncated.load(std::sync::atomic::Ordering::Relaxed) {
                        encoder.mark_truncated();
                    }
                    let tail = encoder.finish();
                    Some((tail, (None, encoder, truncated)))
                }
                Some(Err(error)) => Some((
                    Err(std::io::Error::other(error.detail)),
                    (None, encoder, truncated),
                )),
                Some(Ok(batch)) => {
                    let chunk = encoder
                        .batch(&batch)
                        .map_err(|e| std::io::Error::other(e.to_string()));
                    Some((chunk, (Some(rest), encoder, truncated)))
                }
            }
        },
    );
    let prefix = futures::stream::iter([head, first_chunk]);
    let mut response = Body::from_stream(prefix.chain(body_stream)).into_response();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert("silt-row-cap", HeaderValue::from(max_rows));
    response
}
