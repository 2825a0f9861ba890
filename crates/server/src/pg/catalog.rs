//! What psql and drivers ask that is not a question about silt's data: the
//! catalog queries psql 15 sends for `\dt` and `\d t` (recognised by their
//! shape and answered from the warehouse, never listing `_silt_*` tables),
//! `SELECT version()`, `SHOW` of the settings clients read on connect, the
//! `SET`s they send, and `BEGIN`/`COMMIT`.
//!
//! silt has no multi-statement transactions: each statement commits on its
//! own. `BEGIN` and `COMMIT` are accepted so drivers that wrap statements in
//! them work; a `ROLLBACK` after a change in the block is an error saying
//! the change was committed — never a silent no-op.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use silt_table::{Warehouse, is_internal_table};

use crate::error::ApiError;

/// A statement answered here rather than by the SQL service.
pub(crate) enum Local {
    /// Rows.
    Rows(RecordBatch),
    /// A command tag (`SET`).
    Tag(&'static str),
    /// `BEGIN`: a block starts.
    Begin,
    /// `COMMIT`: the block ends.
    Commit,
    /// `ROLLBACK`: the block ends; an error if it changed anything.
    Rollback,
    /// `SET statement_timeout`: the session's lower limit in milliseconds (0: none).
    StatementTimeout(u64),
}

/// The normalized text: whitespace collapsed, trailing `;` dropped.
fn normalize(sql: &str) -> String {
    let joined = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches(';').trim_end().to_string()
}

/// The answer to `sql` if it is one of the statements this module knows.
pub(crate) async fn answer(
    sql: &str,
    warehouse: &Warehouse,
    statement_timeout_ms: u64,
) -> Option<Result<Local, ApiError>> {
    let text = normalize(sql);
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "begin" | "begin transaction" | "begin work" | "start transaction" => return Some(Ok(Local::Begin)),
        "commit" | "commit transaction" | "commit work" | "end" | "end transaction" => {
            return Some(Ok(Local::Commit));
        }
        "rollback" | "rollback transaction" | "rollback work" | "abort" => return Some(Ok(Local::Rollback)),
        "select version()" | "select pg_catalog.version()" => {
            return Some(Ok(Local::Rows(one_text(
                "version",
                &format!(
                    "PostgreSQL {} on the silt Postgres endpoint",
                    super::startup::SERVER_VERSION
                ),
            ))));
        }
        _ => {}
    }
    if let Some(name) = lower.strip_prefix("show ") {
        return show(name.trim(), statement_timeout_ms).map(|rows| Ok(Local::Rows(rows)));
    }
    if let Some(rest) = lower.strip_prefix("set ") {
        return Some(set(rest));
    }
    if !lower.contains("pg_catalog.") {
        return None;
    }
    Some(psql(&text, warehouse).await)
}

/// `SHOW name` for the settings clients read; others go to the SQL service.
fn show(name: &str, statement_timeout_ms: u64) -> Option<RecordBatch> {
    let value = match name {
        "server_version" => super::startup::SERVER_VERSION.to_string(),
        "server_version_num" => "150000".to_string(),
        "server_encoding" | "client_encoding" => "UTF8".to_string(),
        "standard_conforming_strings" => "on".to_string(),
        "datestyle" => "ISO, YMD".to_string(),
        "timezone" => "UTC".to_string(),
        "integer_datetimes" => "on".to_string(),
        "transaction_read_only" | "default_transaction_read_only" => "off".to_string(),
        "search_path" => "public".to_string(),
        "statement_timeout" => format!("{statement_timeout_ms}ms"),
        _ => return None,
    };
    Some(one_text(name, &value))
}

/// `SET name = value` / `SET name TO value` (`SESSION` allowed).
fn set(rest: &str) -> Result<Local, ApiError> {
    let rest = rest.strip_prefix("session ").unwrap_or(rest);
    let (name, value) = rest
        .split_once(" to ")
        .or_else(|| rest.split_once('='))
        .map(|(n, v)| (n.trim(), v.trim().trim_matches('\'').trim_matches('"')))
        .ok_or_else(|| ApiError::invalid("write SET name = value"))?;
    match name {
        "application_name" | "extra_float_digits" | "search_path" | "datestyle" => Ok(Local::Tag("SET")),
        "client_encoding" if value.eq_ignore_ascii_case("utf8") || value.eq_ignore_ascii_case("utf-8") => {
            Ok(Local::Tag("SET"))
        }
        "timezone" | "time zone" if value.eq_ignore_ascii_case("utc") => Ok(Local::Tag("SET")),
        "statement_timeout" => parse_timeout(value).map(Local::StatementTimeout),
        _ => Err(ApiError::new(
            silt_table::ErrorKind::Unsupported,
            format!("the silt Postgres endpoint does not support SET {name}"),
        )),
    }
}

/// Postgres' `statement_timeout` forms: milliseconds, or a number with `ms`, `s` or `min`.
fn parse_timeout(value: &str) -> Result<u64, ApiError> {
    let value = value.trim();
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let unit = value[digits.len()..].trim();
    let number: u64 = digits.parse().map_err(|_| {
        ApiError::invalid("statement_timeout takes milliseconds, or a number with ms, s or min")
    })?;
    let factor = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        _ => {
            return Err(ApiError::invalid(
                "statement_timeout takes milliseconds, or a number with ms, s or min",
            ));
        }
    };
    Ok(number.saturating_mul(factor))
}

fn one_text(name: &str, value: &str) -> RecordBatch {
    text_rows(&[name], vec![vec![Some(value.to_string())]])
}

/// A batch of text columns `names` holding `rows`.
fn text_rows(names: &[&str], rows: Vec<Vec<Option<String>>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| r.get(i).cloned().flatten())
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|_| RecordBatch::new_empty(schema))
}

/// A table's oid as psql sees it: stable for its name, above Postgres'
/// reserved range.
fn oid(name: &str) -> u32 {
    // FNV-1a.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    16_384 + hash % 1_000_000_000
}

async fn user_tables(warehouse: &Warehouse) -> Result<Vec<String>, ApiError> {
    let mut tables = warehouse.list_tables().await?;
    tables.retain(|name| !is_internal_table(name));
    tables.sort();
    Ok(tables)
}

/// The name pattern of psql's `c.relname OPERATOR(pg_catalog.~) '^(…)$'`.
fn relname_pattern(text: &str) -> Option<String> {
    let at = text.find("OPERATOR(pg_catalog.~) '^(")?;
    let rest = &text[at + "OPERATOR(pg_catalog.~) '^(".len()..];
    let end = rest.find(")$'")?;
    Some(rest[..end].to_string())
}

/// Whether `name` matches psql's regular expression `pattern`, in the forms
/// psql writes: literal characters (`\` escapes), `.` and `.*`.
fn matches(pattern: &str, name: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Piece {
        Char(char),
        Any,
        Star,
    }
    let mut pieces = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => pieces.push(Piece::Char(chars.next().unwrap_or('\\'))),
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                pieces.push(Piece::Star);
            }
            '.' => pieces.push(Piece::Any),
            c => pieces.push(Piece::Char(c)),
        }
    }
    let name: Vec<char> = name.chars().collect();
    // Dynamic programming over (piece, position).
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for piece in pieces {
        let mut next = vec![false; name.len() + 1];
        for i in 0..=name.len() {
            if !reach[i] {
                continue;
            }
            match piece {
                Piece::Star => {
                    for slot in next.iter_mut().skip(i) {
                        *slot = true;
                    }
                }
                Piece::Any if i < name.len() => next[i + 1] = true,
                Piece::Char(c) if i < name.len() && name[i] == c => next[i + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[name.len()]
}

/// The `'N'` after `marker` (psql quotes oids).
fn quoted_oid(text: &str, marker: &str) -> Option<u32> {
    let at = text.find(marker)?;
    let rest = &text[at + marker.len()..];
    let rest = rest.trim_start().strip_prefix('\'')?;
    rest[..rest.find('\'')?].parse().ok()
}

async fn table_of_oid(warehouse: &Warehouse, wanted: u32) -> Result<Option<String>, ApiError> {
    Ok(user_tables(warehouse)
        .await?
        .into_iter()
        .find(|t| oid(t) == wanted))
}

/// psql's catalog queries; anything else naming pg_catalog is not answered here.
async fn psql(text: &str, warehouse: &Warehouse) -> Result<Local, ApiError> {
    // `\dt [pattern]`
    if text.contains("FROM pg_catalog.pg_class c") && text.contains("pg_catalog.pg_get_userbyid(c.relowner)")
    {
        let pattern = relname_pattern(text);
        let rows = user_tables(warehouse)
            .await?
            .into_iter()
            .filter(|t| pattern.as_deref().is_none_or(|p| matches(p, t)))
            .map(|t| {
                vec![
                    Some("public".to_string()),
                    Some(t),
                    Some("table".to_string()),
                    Some("silt".to_string()),
                ]
            })
            .collect();
        return Ok(Local::Rows(text_rows(&["Schema", "Name", "Type", "Owner"], rows)));
    }
    // `\d pattern`: which relations match.
    if text.starts_with("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c") {
        let pattern = relname_pattern(text).unwrap_or_else(|| ".*".to_string());
        let rows = user_tables(warehouse)
            .await?
            .into_iter()
            .filter(|t| matches(&pattern, t))
            .map(|t| vec![Some(oid(&t).to_string()), Some("public".to_string()), Some(t)])
            .collect();
        return Ok(Local::Rows(text_rows(&["oid", "nspname", "relname"], rows)));
    }
    // `\d t`: the relation's kind and flags (a plain table, nothing attached).
    if text.starts_with("SELECT c.relchecks, c.relkind") {
        let names = [
            "relchecks",
            "relkind",
            "relhasindex",
            "relhasrules",
            "relhastriggers",
            "relrowsecurity",
            "relforcerowsecurity",
            "relhasoids",
            "relispartition",
            "reloptions",
            "reltablespace",
            "reloftype",
            "relpersistence",
            "relreplident",
            "amname",
        ];
        let known = match quoted_oid(text, "WHERE c.oid =") {
            Some(wanted) => table_of_oid(warehouse, wanted).await?.is_some(),
            None => false,
        };
        let values = [
            "0", "r", "f", "f", "f", "f", "f", "f", "f", "", "0", "", "p", "d", "delta",
        ];
        let rows = if known {
            vec![values.iter().map(|v| Some((*v).to_string())).collect()]
        } else {
            Vec::new()
        };
        return Ok(Local::Rows(text_rows(&names, rows)));
    }
    // `\d t`: the columns.
    if text.starts_with("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)") {
        let table = match quoted_oid(text, "WHERE a.attrelid =") {
            Some(wanted) => table_of_oid(warehouse, wanted).await?,
            None => None,
        };
        let mut names = Vec::new();
        let mut types = Vec::new();
        let mut not_null = Vec::new();
        if let Some(table) = table {
            let schema = warehouse.table(&table).await?.schema()?;
            for field in schema.fields() {
                names.push(field.name().clone());
                types.push(format_type(field.data_type()));
                not_null.push(!field.is_nullable());
            }
        }
        let rows = names.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("attname", DataType::Utf8, false),
            Field::new("format_type", DataType::Utf8, false),
            Field::new("default", DataType::Utf8, true),
            Field::new("attnotnull", DataType::Boolean, false),
            Field::new("attcollation", DataType::Utf8, true),
            Field::new("attidentity", DataType::Utf8, false),
            Field::new("attgenerated", DataType::Utf8, false),
        ]));
        let empty = || Arc::new(StringArray::from(vec![""; rows])) as ArrayRef;
        let null = || Arc::new(StringArray::from(vec![None::<&str>; rows])) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(types)),
            null(),
            Arc::new(BooleanArray::from(not_null)),
            null(),
            empty(),
            empty(),
        ];
        let batch = RecordBatch::try_new(schema, columns)
            .map_err(|e| ApiError::new(silt_table::ErrorKind::Internal, e.to_string()))?;
        return Ok(Local::Rows(batch));
    }
    // The rest of `\d t`: policies, statistics, publications, inheritance —
    // silt tables have none of them.
    for empty in [
        "FROM pg_catalog.pg_policy",
        "FROM pg_catalog.pg_statistic_ext",
        "FROM pg_catalog.pg_publication",
        "FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i",
        "FROM pg_catalog.pg_trigger",
    ] {
        if text.contains(empty) {
            return Ok(Local::Rows(text_rows(&["none"], Vec::new())));
        }
    }
    Err(ApiError::new(
        silt_table::ErrorKind::Unsupported,
        "this pg_catalog query is not one the silt Postgres endpoint answers yet (psql's \\dt and \\d are)",
    ))
}

/// Postgres' name for the type of a column (`format_type`).
pub(crate) fn format_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "bytea".into()
        }
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", format_type(f.data_type())),
        DataType::Struct(_) | DataType::Map(_, _) => "jsonb".into(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_patterns_match_as_psql_means_them() {
        assert!(matches("t", "t"));
        assert!(!matches("t", "tt"));
        assert!(matches("t.*", "trips"));
        assert!(matches("my_table", "my_table"));
        assert!(matches("a.c", "abc"));
        assert!(!matches("a\\.c", "abc"));
    }

    #[test]
    fn set_and_show_cover_what_clients_send() {
        assert!(matches!(set("application_name = 'psql'"), Ok(Local::Tag("SET"))));
        assert!(matches!(
            set("statement_timeout to '2s'"),
            Ok(Local::StatementTimeout(2000))
        ));
        assert!(set("work_mem = '1GB'").is_err());
        assert!(show("server_version", 0).is_some());
        assert!(show("datafusion.execution.batch_size", 0).is_none());
    }

    #[test]
    fn oids_are_stable_and_above_the_reserved_range() {
        assert_eq!(oid("t"), oid("t"));
        assert!(oid("t") >= 16_384);
    }
}
