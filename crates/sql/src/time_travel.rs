//! `VERSION AS OF` / `TIMESTAMP AS OF` on table references.
//!
//! DataFusion has no notion of table versions, so before planning every
//! versioned reference is resolved to a version and renamed to `name@vN`,
//! which [`StatementSchema`](crate::catalog::StatementSchema) resolves.

use std::ops::ControlFlow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Statement, TableFactor, TableVersion, Value, VisitMut,
    VisitorMut,
};

use crate::catalog::{StatementSchema, versioned_name};
use crate::error::{Result, SqlError};

/// How many files of an old version that the latest no longer has are
/// checked for existence before reading it.
const VACUUM_CHECK_LIMIT: usize = 32;

/// A versioned reference as written.
#[derive(Debug, Clone)]
enum AsOf {
    Version(u64),
    Timestamp(DateTime<Utc>),
    /// `TIMESTAMP AS OF <expression>` (`current_timestamp() - INTERVAL 1
    /// HOUR`), as SQL text, evaluated when the statement is resolved.
    Expression(String),
}

/// Resolves and renames every versioned table reference in `statement`.
pub(crate) async fn pin_versions(statement: &mut Statement, schema: &StatementSchema) -> Result<()> {
    // Pass 1 (sync): read what is asked for. Pass 2 (async): resolve.
    // Pass 3 (sync): rename.
    let mut found = Vec::new();
    let mut collect = Collect {
        found: &mut found,
        error: None,
    };
    let _ = statement.visit(&mut collect);
    if let Some(error) = collect.error {
        return Err(error);
    }
    let mut renames = Vec::new();
    for (name, as_of) in found {
        let Some(table) = schema.resolve(&name).await? else {
            if schema.view(&name).await?.is_some() {
                return Err(SqlError::Invalid(format!(
                    "VERSION AS OF applies to tables: '{name}' is a view; write the time travel inside the view's query"
                )));
            }
            return Err(SqlError::NotFound(format!("table '{name}' not found")));
        };
        let resolved = match as_of {
            AsOf::Version(v) => table.at_version(v).await,
            AsOf::Timestamp(at) => table.at_timestamp(at).await,
            AsOf::Expression(text) => table.at_timestamp(evaluate_instant(&text).await?).await,
        };
        let pinned = match resolved {
            Ok(pinned) => pinned,
            Err(
                error @ (silt_table::TableError::VersionNotFound { .. }
                | silt_table::TableError::TimestampTooEarly { .. }),
            ) => {
                // (version asked, earliest in the log): only a version below
                // the log's start can be purged history.
                let asked = match &error {
                    silt_table::TableError::VersionNotFound {
                        version, earliest, ..
                    } => (version < earliest).then_some((Some(*version), Some(*earliest))),
                    silt_table::TableError::TimestampTooEarly { earliest, .. } => {
                        Some((None, Some(*earliest)))
                    }
                    _ => Some((None, None)),
                };
                return Err(asked
                    .and_then(|(version, earliest)| purged_by_erasure(&table, &name, version, earliest))
                    .unwrap_or_else(|| error.into()));
            }
            Err(error) => return Err(error.into()),
        };
        // Without this check a vacuumed version fails mid-scan with a raw
        // "object not found" (and count(*) may even answer from statistics).
        if pinned.version() < table.version()
            && !pinned
                .vacuumed_files(&table, VACUUM_CHECK_LIMIT)
                .await?
                .is_empty()
        {
            if let Some(error) = purged_by_erasure(&table, &name, Some(pinned.version()), None) {
                return Err(error);
            }
            return Err(SqlError::NotFound(format!(
                "data files of table '{name}' at version {} are missing: VACUUM has removed them, so this version \
                 can no longer be read (time travel reaches back as far as delta.deletedFileRetentionDuration keeps files)",
                pinned.version()
            )));
        }
        let synthetic = versioned_name(&name, pinned.version());
        schema.pin(synthetic.clone(), pinned);
        renames.push(synthetic);
    }
    let mut rename = Rename {
        names: renames.into_iter(),
    };
    let _ = statement.visit(&mut rename);
    Ok(())
}

/// Table properties an erasure purge sets (silt-erasure's
/// `PURGED_BY_PROPERTY` / `PURGED_BEFORE_PROPERTY`; sql cannot depend on it).
const PURGED_BY: &str = "silt.erasure.purged_by";
const PURGED_BEFORE: &str = "silt.erasure.purged_before_version";

/// The error for time travel into history that an erasure purged, if the
/// table was purged by one and `version` (when known) predates the purge.
///
/// The purge's own commits (VACUUM START/END, the property change) come
/// after `purged_before_version`, and its log expiry removes them too: the
/// first readable version is then the log's `earliest`. Every version below
/// that bound gets this one message, naming the bound, rather than some
/// versions saying "purged" and the purge's own saying "no version".
fn purged_by_erasure(
    table: &silt_table::Table,
    name: &str,
    version: Option<u64>,
    earliest: Option<u64>,
) -> Option<SqlError> {
    let properties = table.properties().ok()?;
    let id = properties.get(PURGED_BY)?;
    let marked: u64 = properties.get(PURGED_BEFORE)?.parse().ok()?;
    let before = earliest.map_or(marked, |earliest| earliest.max(marked));
    if version.is_some_and(|v| v >= before) {
        return None;
    }
    Some(SqlError::NotFound(format!(
        "history of table '{name}' before version {before} was purged by erasure request {id} \
         (personal data was removed from every data file and log entry), so it can no longer be read; \
         query the current version or a later one"
    )))
}

/// The table name DataFusion will look up for `name` (unquoted parts fold to lowercase).
fn base_name(name: &ObjectName) -> Option<String> {
    let ObjectNamePart::Identifier(ident) = name.0.last()? else {
        return None;
    };
    Some(match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    })
}

struct Collect<'a> {
    found: &'a mut Vec<(String, AsOf)>,
    error: Option<SqlError>,
}

impl VisitorMut for Collect<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            version: Some(version),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let Some(base) = base_name(name) else {
            return ControlFlow::Continue(());
        };
        match parse_as_of(version) {
            Ok(as_of) => {
                self.found.push((base, as_of));
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

struct Rename<I: Iterator<Item = String>> {
    names: I,
}

impl<I: Iterator<Item = String>> VisitorMut for Rename<I> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, version, .. } = factor
            && version.is_some()
            && let Some(synthetic) = self.names.next()
        {
            // Keep any catalog/schema qualifiers; swap the table part.
            if let Some(last) = name.0.last_mut() {
                *last = ObjectNamePart::Identifier(Ident::with_quote('`', synthetic));
            }
            *version = None;
        }
        ControlFlow::Continue(())
    }
}

fn parse_as_of(version: &TableVersion) -> Result<AsOf> {
    match version {
        TableVersion::VersionAsOf(Expr::Value(v)) => match &v.value {
            Value::Number(n, _) => n.parse::<u64>().map(AsOf::Version).map_err(|_| {
                SqlError::Invalid(format!("VERSION AS OF needs a non-negative integer, got {n}"))
            }),
            other => Err(SqlError::Invalid(format!(
                "VERSION AS OF needs an integer, got {other}"
            ))),
        },
        TableVersion::TimestampAsOf(Expr::Value(v)) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                parse_instant(s).map(AsOf::Timestamp)
            }
            other => Err(SqlError::Invalid(format!(
                "TIMESTAMP AS OF needs a quoted instant like '2026-11-25T10:00:00Z', got {other}"
            ))),
        },
        // Databricks takes any expression that gives a timestamp.
        TableVersion::TimestampAsOf(other) => Ok(AsOf::Expression(other.to_string())),
        other => Err(SqlError::Unsupported(format!("table version clause '{other}'"))),
    }
}

/// The instant a `TIMESTAMP AS OF` expression gives, evaluated on its own
/// (no table, no statement other than this SELECT) and cast to TIMESTAMP,
/// taken as UTC.
pub(crate) async fn evaluate_instant(expr: &str) -> Result<DateTime<Utc>> {
    use datafusion::arrow::array::{Array, TimestampNanosecondArray};
    use datafusion::execution::context::SQLOptions;
    use datafusion::prelude::SessionContext;

    let invalid = |why: &str| {
        SqlError::Invalid(format!(
            "TIMESTAMP AS OF {expr}: {why}; give an instant like '2026-11-25T10:00:00Z' or an expression \
             such as current_timestamp() - INTERVAL 1 HOUR"
        ))
    };
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let context = SessionContext::new();
    let frame = context
        .sql_with_options(&format!("SELECT CAST(({expr}) AS TIMESTAMP)"), options)
        .await
        .map_err(|e| invalid(&format!("does not give a timestamp ({})", e.strip_backtrace())))?;
    let batches = frame
        .collect()
        .await
        // Not the inner message: a failed cast quotes the value.
        .map_err(|_| invalid("cannot be evaluated to a timestamp"))?;
    let value = batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        b.column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .cloned()
    });
    match value {
        Some(array) if array.len() == 1 && array.is_valid(0) => {
            Ok(DateTime::from_timestamp_nanos(array.value(0)))
        }
        Some(array) if array.len() == 1 => Err(invalid("is NULL")),
        _ => Err(invalid("does not give one timestamp")),
    }
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM:SS[.f]]` taken as UTC.
pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(SqlError::Invalid(format!(
        "'{text}' is not a timestamp: use RFC 3339, e.g. '2026-11-25T10:00:00Z'"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let t = parse_instant("2026-11-25T10:00:00+01:00").expect("rfc3339");
        assert_eq!(t.to_rfc3339(), "2026-11-25T09:00:00+00:00");
        assert!(parse_instant("2026-11-25 10:00:00").is_ok());
        assert!(parse_instant("2026-11-25").is_ok());
        assert!(parse_instant("yesterday").is_err());
    }
}
