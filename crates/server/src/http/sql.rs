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
use silt_sql::{Access, ScalarValue, SqlError};
use silt_table::ErrorKind;
use tokio::time::Instant;

use super::{AppState, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;
use crate::sql_encode::{Encoder, ResultFormat};
use crate::statement_log::StatementLog;

/// `POST /v1/sql` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SQL statement.
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

impl From<SqlError> for ApiError {
    fn from(error: SqlError) -> Self {
        ApiError::new(error.kind(), error.to_string())
    }
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

fn timeout_error(limit: Duration) -> ApiError {
    ApiError::new(
        ErrorKind::Timeout,
        format!(
            "statement did not finish within {} ms; narrow it or raise timeout_ms",
            limit.as_millis()
        ),
    )
}

/// Run one SQL statement.
///
/// SELECT/EXPLAIN/SHOW need the reader role, INSERT/UPDATE/DELETE/MERGE the
/// writer role, anything else the operator role. `Accept` picks the format:
/// `application/json` (default), `application/x-ndjson`, `text/csv` or
/// `application/vnd.apache.arrow.stream`. The `Silt-Row-Cap` header gives the
/// row cap applied; JSON answers also say `"truncated"`.
#[utoipa::path(post, path = "/v1/sql", request_body = SqlRequest,
    responses(
        (status = 200, description = "the result, streamed; DML answers one row with the new version and counts"),
        (status = 400, description = "syntax error, unknown column, bad parameter", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "role may not run this statement", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown table or version", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 408, description = "statement timeout", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict with a concurrent writer", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    tag = "sql")]
pub async fn sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, 16 * 1024 * 1024).await?;
    let request: SqlRequest = parse_json(&bytes)?;
    let log = StatementLog::start("http", "sql", &request.sql);
    let role = silt_sql::required_access(&request.sql)
        .map(|access| match access {
            Access::Read => Role::Reader,
            Access::Write => Role::Writer,
            Access::Admin => Role::Operator,
        })
        .map_err(ApiError::from);
    let result = match role.clone() {
        Ok(role) => run(&state, &headers, request, role).await,
        Err(error) => Err(error),
    };
    log.finish_http(role.ok(), &result);
    result
}

/// Runs the statement of `request` for a caller who needs `role`.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    request: SqlRequest,
    role: Role,
) -> Result<Response, ApiError> {
    state.authorize(headers, role)?;
    let format = ResultFormat::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))?;
    let params = request
        .params
        .iter()
        .enumerate()
        .map(|(i, v)| scalar(i + 1, v))
        .collect::<Result<Vec<_>, _>>()?;
    let limit = request
        .timeout_ms
        .map(Duration::from_millis)
        .map_or(state.sql.statement_timeout, |t| {
            t.min(state.sql.statement_timeout)
        });
    let max_rows = request
        .max_rows
        .map_or(state.sql.max_rows, |m| m.min(state.sql.max_rows));
    let deadline = Instant::now() + limit;

    // Planning and the first batch run on their own task: DataFusion may
    // spend one long poll planning (e.g. materialising range(…)), which a
    // timeout around an inline future could not interrupt. The task is
    // aborted on timeout; the answer is a 408 either way.
    let engine = state.engine.clone();
    let sql = request.sql.clone();
    let task = tokio::spawn(async move {
        let result = engine.execute_stream(&sql, params).await?;
        let mut stream = result.stream;
        // The first batch is awaited before answering, so an error while
        // running (a type error in UPDATE, a missing file) is still a problem+json.
        let first = stream.next().await.transpose().map_err(SqlError::from)?;
        Ok::<_, SqlError>((result.schema, stream, first))
    });
    let abort = task.abort_handle();
    let (schema, stream, first) = match tokio::time::timeout_at(deadline, task).await {
        Err(_) => {
            abort.abort();
            return Err(timeout_error(limit));
        }
        Ok(Err(join)) => {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("statement task failed: {join}"),
            ));
        }
        Ok(Ok(result)) => result?,
    };
    let mut encoder = Encoder::new(format, schema, max_rows);
    let head = encoder.start().map_err(ApiError::from)?;
    let first_chunk = match first {
        Some(batch) => encoder.batch(&batch).map_err(ApiError::from)?,
        None => Bytes::new(),
    };
    let body_stream = futures::stream::unfold(
        (Some(stream), encoder, false),
        move |(stream, mut encoder, done)| async move {
            if done {
                return None;
            }
            let mut stream = stream?;
            if encoder.full() {
                let tail = encoder.finish();
                return Some((tail, (None, encoder, true)));
            }
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => Some((
                    Err(std::io::Error::other("statement timeout while streaming")),
                    (None, encoder, true),
                )),
                Ok(None) => {
                    let tail = encoder.finish();
                    Some((tail, (None, encoder, true)))
                }
                Ok(Some(Err(error))) => {
                    // The text goes to the caller only: execution errors
                    // (casts, parsing) can quote a value from the data.
                    tracing::warn!("sql result stream failed after the answer started");
                    Some((
                        Err(std::io::Error::other(error.to_string())),
                        (None, encoder, true),
                    ))
                }
                Ok(Some(Ok(batch))) => {
                    let chunk = encoder
                        .batch(&batch)
                        .map_err(|e| std::io::Error::other(e.to_string()));
                    Some((chunk, (Some(stream), encoder, false)))
                }
            }
        },
    );
    let prefix = futures::stream::iter([Ok::<Bytes, std::io::Error>(head), Ok(first_chunk)]);
    let mut response = Body::from_stream(prefix.chain(body_stream)).into_response();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert("silt-row-cap", HeaderValue::from(max_rows));
    Ok(response)
}
