//! `/v1/tables`: create, list, describe, history.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use silt_table::{ErrorKind, Table, TableSpec, is_internal_table};

use super::rows::query_params;
use super::{AppState, parse_json, read_body};
use crate::auth::Role;
use crate::error::ApiError;

/// The same 404 for an internal table (`_silt_*`) as for a missing one:
/// silt's own tables are reached only through their own endpoints.
pub(crate) fn refuse_internal(name: &str) -> Result<(), ApiError> {
    if is_internal_table(name) {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "no table '{name}': names starting with '_silt_' are silt's internal tables, \
                 reachable only through their own endpoints (dead letters: GET /v1/dead-letters)"
            ),
        ));
    }
    Ok(())
}

/// One column of a new table.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ColumnSpec {
    /// Column name; `POST /v1/tables` refuses an empty one. (Not a schema
    /// constraint: this type also describes existing tables, which other
    /// Delta writers may have made.)
    pub name: String,
    /// SQL type: BIGINT, INT, DOUBLE, STRING/VARCHAR, BOOLEAN, DATE, TIMESTAMP, DECIMAL(p,s), BINARY.
    #[serde(rename = "type")]
    #[schema(min_length = 1)]
    pub data_type: String,
    /// Whether nulls are allowed (default true).
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/tables` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTable {
    /// Table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters, not
    /// starting with `_silt_` (silt's internal tables).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    pub name: String,
    /// Columns, in order.
    #[schema(min_items = 1)]
    pub columns: Vec<ColumnSpec>,
    /// Partition columns, in order.
    #[serde(default)]
    pub partition_columns: Vec<String>,
    /// Table properties (`delta.*`, `silt.*`).
    #[serde(default)]
    pub properties: HashMap<String, String>,
    /// Succeed without change if the table exists.
    #[serde(default)]
    pub if_not_exists: bool,
}

/// A table's description.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Latest version.
    pub version: u64,
    /// Columns.
    pub columns: Vec<ColumnSpec>,
    /// Partition columns.
    pub partition_columns: Vec<String>,
    /// Live data files.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// Table properties.
    pub properties: HashMap<String, String>,
}

/// `GET /v1/tables` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TableList {
    /// Table names, sorted.
    pub tables: Vec<String>,
}

/// `GET /v1/tables/{table}/history` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    /// Table name.
    pub table: String,
    /// Commits, newest first (`version`, `timestamp`, `operation`, …).
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
}

fn describe_table(table: &Table) -> Result<TableInfo, ApiError> {
    let schema = table.schema()?;
    let (files, bytes) = table.file_stats()?;
    Ok(TableInfo {
        name: table.name().to_string(),
        version: table.version(),
        columns: schema
            .fields()
            .iter()
            .map(|f| ColumnSpec {
                name: f.name().clone(),
                data_type: silt_sql::sql_type_name(f.data_type()),
                nullable: f.is_nullable(),
            })
            .collect(),
        partition_columns: table.partition_columns()?,
        files,
        bytes,
        properties: table.properties()?,
    })
}

/// Create a table. Operator role.
#[utoipa::path(post, path = "/v1/tables", request_body = CreateTable,
    responses((status = 201, body = TableInfo),
              (status = 400, description = "malformed body, bad name (names starting with _silt_ are reserved), type or property", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "not an operator token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "exists", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "body above 1 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "a Content-Encoding other than identity", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "tables")]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<TableInfo>), ApiError> {
    state.authorize(&headers, Role::Operator)?;
    let bytes = read_body(&headers, body, 1024 * 1024).await?;
    let request: CreateTable = parse_json(&bytes)?;
    if is_internal_table(&request.name) {
        return Err(ApiError::invalid(format!(
            "table name '{}' is reserved: names starting with '_silt_' are silt's internal tables",
            request.name
        )));
    }
    let mut fields = Vec::with_capacity(request.columns.len());
    for (index, column) in request.columns.iter().enumerate() {
        if column.name.is_empty() {
            return Err(ApiError::invalid(format!(
                "column {} has an empty name",
                index + 1
            )));
        }
        let data_type = silt_sql::parse_data_type(&column.data_type)
            .map_err(|e| ApiError::invalid(format!("column '{}': {e}", column.name)))?;
        fields.push(arrow::datatypes::Field::new(
            &column.name,
            data_type,
            column.nullable,
        ));
    }
    let spec = TableSpec {
        schema: Arc::new(arrow::datatypes::Schema::new(fields)),
        partition_columns: request.partition_columns,
        properties: request.properties,
        if_not_exists: request.if_not_exists,
    };
    let table = state.warehouse.create_table(&request.name, spec).await?;
    Ok((StatusCode::CREATED, Json(describe_table(&table)?)))
}

/// List tables (silt's internal `_silt_*` tables are not listed).
#[utoipa::path(get, path = "/v1/tables",
    responses((status = 200, body = TableList),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the token's role may not read", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "tables")]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<TableList>, ApiError> {
    state.authorize(&headers, Role::Reader)?;
    let mut tables = state.warehouse.list_tables().await?;
    tables.retain(|name| !is_internal_table(name));
    Ok(Json(TableList { tables }))
}

/// Describe a table: schema, version, files, bytes, properties.
#[utoipa::path(get, path = "/v1/tables/{table}", params(("table" = String, Path, description = "table name")),
    responses((status = 200, body = TableInfo),
              (status = 400, description = "not a valid table name", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the token's role may not read", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such table (internal _silt_ tables answer the same)", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "tables")]
pub async fn describe(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TableInfo>, ApiError> {
    state.authorize(&headers, Role::Reader)?;
    refuse_internal(&name)?;
    let table = state.warehouse.table(&name).await?;
    Ok(Json(describe_table(&table)?))
}

/// A table's commits, newest first.
#[utoipa::path(get, path = "/v1/tables/{table}/history",
    params(("table" = String, Path, description = "table name"), ("limit" = Option<usize>, Query, description = "at most this many commits")),
    responses((status = 200, body = History),
              (status = 400, description = "bad table name, bad limit or an unknown query parameter", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "no valid token", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the token's role may not read", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such table (internal _silt_ tables answer the same)", body = crate::error::Problem, content_type = "application/problem+json")),
    tag = "tables")]
pub async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<History>, ApiError> {
    state.authorize(&headers, Role::Reader)?;
    let query = query_params(query, &["limit"])?;
    refuse_internal(&name)?;
    let limit = query
        .get("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| ApiError::invalid("limit must be a whole number"))
        })
        .transpose()?;
    let table = state.warehouse.table(&name).await?;
    let history = table
        .history(limit)
        .await?
        .into_iter()
        .map(|entry| serde_json::to_value(entry).unwrap_or_default())
        .collect();
    Ok(Json(History { table: name, history }))
}
