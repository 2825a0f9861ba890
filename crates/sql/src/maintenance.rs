//! Table maintenance and inspection: `DESCRIBE DETAIL`, `OPTIMIZE`, `VACUUM`
//! and `RESTORE`, run as deltalake operations on the table's latest version.
//!
//! sqlparser does not know these statements in the shape Databricks writes
//! them, so `statement.rs` reads them from tokens into a [`Maintenance`].
//! Every commit made here keeps expired-log cleanup off (the log is trimmed
//! by erasure and checkpoints, never as a side effect of a statement), except
//! VACUUM's, whose commits deltalake builds itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value};
use deltalake::FilterValue;
use deltalake::table::config::TablePropertiesExt as _;
use silt_table::{Table, VacuumSpec, Warehouse};

use crate::error::{Result, SqlError};
use crate::time_travel::parse_instant;

/// One maintenance or inspection statement, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Maintenance {
    /// `DESCRIBE DETAIL t`.
    DescribeDetail { table: String },
    /// `OPTIMIZE t [WHERE partition predicate] [ZORDER BY (c, …)]`.
    Optimize {
        table: String,
        filters: Vec<PartitionFilter>,
        zorder: Vec<String>,
    },
    /// `VACUUM t [LITE | FULL] [RETAIN n HOURS] [DRY RUN]`.
    Vacuum {
        table: String,
        /// Hours to keep removed files for; `None` is the table's retention.
        retain_hours: Option<f64>,
        dry_run: bool,
        /// LITE deletes only files the log removed; FULL (the default, as on
        /// Databricks) also deletes files the log never referenced.
        lite: bool,
    },
    /// `RESTORE [TABLE] t [TO] VERSION|TIMESTAMP AS OF …`.
    Restore { table: String, to: RestoreTarget },
}

/// What `RESTORE` goes back to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RestoreTarget {
    /// `VERSION AS OF n`.
    Version(u64),
    /// `TIMESTAMP AS OF '…'`, as written (resolved by commit timestamps).
    Timestamp(String),
    /// `TIMESTAMP AS OF <expression>`, as SQL text, evaluated when run.
    Expression(String),
}

/// One conjunct of `OPTIMIZE … WHERE`: a partition column compared with
/// literals, in the partition-value text encoding Delta uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartitionFilter {
    /// Column as written (matched to a partition column case-insensitively).
    pub(crate) column: String,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in` (deltalake's spelling).
    pub(crate) op: &'static str,
    /// One value, or the set for `in` / `not in`.
    pub(crate) values: Vec<String>,
}

impl Maintenance {
    /// Runs the statement; returns its one result batch.
    pub(crate) async fn run(self, warehouse: &Warehouse) -> Result<RecordBatch> {
        match self {
            Maintenance::DescribeDetail { table } => describe_detail(&warehouse.table(&table).await?).await,
            Maintenance::Optimize {
                table,
                filters,
                zorder,
            } => optimize(warehouse.table(&table).await?, &filters, &zorder).await,
            Maintenance::Vacuum {
                table,
                retain_hours,
                dry_run,
                lite,
            } => vacuum(warehouse.table(&table).await?, retain_hours, dry_run, lite).await,
            Maintenance::Restore { table, to } => restore(warehouse.table(&table).await?, to).await,
        }
    }
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| SqlError::Execution(e.to_string()))
}

fn int(name: &str, value: impl TryInto<i64>) -> (Field, ArrayRef) {
    let value = value.try_into().unwrap_or(i64::MAX);
    (
        Field::new(name, DataType::Int64, false),
        Arc::new(Int64Array::from(vec![value])),
    )
}

fn text(name: &str, value: impl Into<String>) -> (Field, ArrayRef) {
    (
        Field::new(name, DataType::Utf8, false),
        Arc::new(StringArray::from(vec![value.into()])),
    )
}

fn one_row(columns: Vec<(Field, ArrayRef)>) -> Result<RecordBatch> {
    let (fields, arrays) = columns.into_iter().unzip();
    batch(fields, arrays)
}

fn state(table: &Table) -> Result<&deltalake::table::state::DeltaTableState> {
    Ok(table.snapshot()?)
}

/// `DESCRIBE DETAIL`: one row about the table's latest version.
async fn describe_detail(table: &Table) -> Result<RecordBatch> {
    let state = state(table)?;
    let metadata = state.metadata();
    let protocol = state.protocol();
    let (num_files, size_in_bytes) = table.file_stats()?;
    // Sorted, so the text is stable for tests and diffs.
    let properties: BTreeMap<String, String> = table.properties()?.into_iter().collect();
    let properties = serde_json::to_string(&properties).map_err(|e| SqlError::Execution(e.to_string()))?;
    let partition_columns =
        serde_json::to_string(&table.partition_columns()?).map_err(|e| SqlError::Execution(e.to_string()))?;
    let last_modified = table
        .history(Some(1))
        .await?
        .first()
        .map(|entry| entry.timestamp.timestamp_millis());
    let timestamp = |name: &str, millis: Option<i64>| -> (Field, ArrayRef) {
        (
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Arc::new(TimestampMillisecondArray::from(vec![millis]).with_timezone("UTC")),
        )
    };
    one_row(vec![
        text("format", "delta"),
        text("id", metadata.id()),
        text("name", table.name()),
        text("location", table.location().to_string()),
        int("version", table.version()),
        timestamp("created_at", metadata.created_time()),
        timestamp("last_modified", last_modified),
        text("partition_columns", partition_columns),
        int("num_files", num_files),
        int("size_in_bytes", size_in_bytes),
        text("properties", properties),
        int("min_reader_version", protocol.min_reader_version()),
        int("min_writer_version", protocol.min_writer_version()),
    ])
}

/// The table's column named `name` (exact, else the one case-insensitive match).
fn resolve_column<'a>(columns: &'a [String], name: &str) -> Option<&'a str> {
    columns
        .iter()
        .find(|c| c.as_str() == name)
        .or_else(|| columns.iter().find(|c| c.eq_ignore_ascii_case(name)))
        .map(String::as_str)
}

/// `OPTIMIZE`: bin-packing compaction, or Z-order when columns are given.
async fn optimize(table: Table, filters: &[PartitionFilter], zorder: &[String]) -> Result<RecordBatch> {
    let name = table.name().to_string();
    let partitions = table.partition_columns()?;
    let columns: Vec<String> = table
        .schema()?
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // Resolve names first: deltalake's messages for a wrong column are
    // generic, and a filter on a data column would silently match nothing.
    let mut resolved = Vec::with_capacity(filters.len());
    for filter in filters {
        let Some(column) = resolve_column(&partitions, &filter.column) else {
            let reason = if resolve_column(&columns, &filter.column).is_some() {
                "is not a partition column"
            } else {
                "is not a column"
            };
            return Err(SqlError::Invalid(format!(
                "OPTIMIZE … WHERE on table '{name}': '{}' {reason}; the predicate may only use partition columns ({})",
                filter.column,
                if partitions.is_empty() {
                    "the table has none".to_string()
                } else {
                    partitions.join(", ")
                }
            )));
        };
        resolved.push((column, filter));
    }
    let literals = resolved
        .iter()
        .map(|(column, filter)| {
            let value = match filter.op {
                "in" | "not in" => FilterValue::Set(filter.values.iter().map(String::as_str).collect()),
                _ => FilterValue::Scalar(filter.values.first().map(String::as_str).unwrap_or_default()),
            };
            deltalake::filter_literal(column, filter.op, value).map_err(|e| SqlError::Invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut zorder_columns = Vec::with_capacity(zorder.len());
    for column in zorder {
        if resolve_column(&partitions, column).is_some() {
            return Err(SqlError::Invalid(format!(
                "OPTIMIZE … ZORDER BY on table '{name}': '{column}' is a partition column; z-order data columns"
            )));
        }
        let Some(found) = resolve_column(&columns, column) else {
            return Err(SqlError::Invalid(format!(
                "OPTIMIZE … ZORDER BY on table '{name}': column '{column}' not found"
            )));
        };
        zorder_columns.push(found.to_string());
    }
    let (optimized, metrics) = table.change().optimize(&literals, zorder_columns).await?;
    one_row(vec![
        text("table", name),
        int("version", optimized.version()),
        int("num_files_added", metrics.num_files_added),
        int("num_files_removed", metrics.num_files_removed),
        int("num_partitions_optimized", metrics.partitions_optimized),
        int("num_files_considered", metrics.total_considered_files),
        int("num_files_skipped", metrics.total_files_skipped),
        int("bytes_added", metrics.files_added.total_size),
        int("bytes_removed", metrics.files_removed.total_size),
    ])
}

/// `VACUUM`: deletes data files no version within the retention needs.
async fn vacuum(table: Table, retain_hours: Option<f64>, dry_run: bool, lite: bool) -> Result<RecordBatch> {
    let name = table.name().to_string();
    let minimum = state(&table)?.table_config().deleted_file_retention_duration();
    let minimum_ms = i64::try_from(minimum.as_millis()).unwrap_or(i64::MAX);
    let retain_ms = match retain_hours {
        Some(hours) if !(hours.is_finite() && hours >= 0.0) => {
            return Err(SqlError::Invalid(format!(
                "VACUUM of table '{name}': RETAIN needs a non-negative number of hours"
            )));
        }
        // Hours to milliseconds: the cast saturates, and the check below
        // compares in the same unit deltalake does.
        Some(hours) => (hours * 3_600_000.0) as i64,
        None => minimum_ms,
    };
    if retain_ms < minimum_ms {
        // As Databricks: a short retention can delete files that time
        // travel and running readers or writers still need, so it is only
        // allowed when the table itself says so.
        return Err(SqlError::Invalid(format!(
            "VACUUM of table '{name}' with RETAIN {} HOURS is below the table's retention of {} hours \
             (delta.deletedFileRetentionDuration); files still needed by time travel and concurrent \
             readers could be deleted; to allow it, run ALTER TABLE {name} SET TBLPROPERTIES \
             ('delta.deletedFileRetentionDuration' = 'interval {} hours')",
            retain_hours.unwrap_or_default(),
            minimum.as_secs_f64() / 3600.0,
            retain_hours.unwrap_or_default().floor(),
        )));
    }
    let spec = VacuumSpec {
        retention: chrono::Duration::milliseconds(retain_ms),
        dry_run,
        lite,
        enforce_retention: true,
    };
    let (vacuumed, files) = table.change().vacuum(spec).await?;
    let listed = serde_json::to_string(&files).map_err(|e| SqlError::Execution(e.to_string()))?;
    let dry = (
        Field::new("dry_run", DataType::Boolean, false),
        Arc::new(BooleanArray::from(vec![dry_run])) as ArrayRef,
    );
    one_row(vec![
        text("table", name),
        int("version", vacuumed.version()),
        dry,
        int("num_deleted_files", files.len()),
        text("deleted_files", listed),
    ])
}

/// `RESTORE`: a new version whose files are those of an earlier one.
async fn restore(table: Table, to: RestoreTarget) -> Result<RecordBatch> {
    let name = table.name().to_string();
    let target = match &to {
        RestoreTarget::Version(version) => *version,
        // By commit timestamps, as time travel; deltalake's own datetime
        // restore would go by log file modification times.
        RestoreTarget::Timestamp(text) => table.version_at(parse_instant(text)?).await?,
        RestoreTarget::Expression(text) => {
            table
                .version_at(crate::time_travel::evaluate_instant(text).await?)
                .await?
        }
    };
    // Fails with a clear "no version n (versions a..=b exist)".
    let _ = table.at_version(target).await?;
    let current = table.latest_version().await?;
    if target >= current {
        return Err(SqlError::Invalid(format!(
            "cannot restore table '{name}' to version {target}: it is the current version; restore to an earlier one"
        )));
    }
    let (restored, metrics) = table.change().restore(target).await?;
    one_row(vec![
        text("table", name),
        int("version", restored.version()),
        int("num_restored_files", metrics.num_restored_file),
        int("num_removed_files", metrics.num_removed_file),
    ])
}

/// The conjuncts of `OPTIMIZE … WHERE`: `col op literal`, `col [NOT] IN (…)`,
/// joined by AND. Anything else is refused: deltalake compacts whole
/// partitions, so only partition predicates have a meaning.
pub(crate) fn partition_filters(expr: &Expr) -> Result<Vec<PartitionFilter>> {
    let mut filters = Vec::new();
    collect_filters(expr, &mut filters)?;
    Ok(filters)
}

fn collect_filters(expr: &Expr, out: &mut Vec<PartitionFilter>) -> Result<()> {
    let unsupported = || {
        SqlError::Invalid(format!(
            "OPTIMIZE … WHERE supports partition predicates joined by AND (column = value, <, <=, >, >=, <>, IN (…), NOT IN (…)), not '{expr}'"
        ))
    };
    match expr {
        Expr::Nested(inner) => collect_filters(inner, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            collect_filters(left, out)?;
            collect_filters(right, out)
        }
        Expr::BinaryOp { left, op, right } => {
            let (column, value, op) = match (column_of(left), column_of(right)) {
                (Some(column), None) => (column, right, comparison(op, false)),
                // `value < column` is `column > value`.
                (None, Some(column)) => (column, left, comparison(op, true)),
                _ => return Err(unsupported()),
            };
            let op = op.ok_or_else(unsupported)?;
            out.push(PartitionFilter {
                column,
                op,
                values: vec![literal_value(value).ok_or_else(unsupported)?],
            });
            Ok(())
        }
        Expr::InList { expr, list, negated } => {
            let column = column_of(expr).ok_or_else(unsupported)?;
            let values = list
                .iter()
                .map(|v| literal_value(v).ok_or_else(unsupported))
                .collect::<Result<Vec<_>>>()?;
            out.push(PartitionFilter {
                column,
                op: if *negated { "not in" } else { "in" },
                values,
            });
            Ok(())
        }
        _ => Err(unsupported()),
    }
}

fn column_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Nested(inner) => column_of(inner),
        _ => None,
    }
}

fn comparison(op: &BinaryOperator, flipped: bool) -> Option<&'static str> {
    Some(match (op, flipped) {
        (BinaryOperator::Eq, _) => "=",
        (BinaryOperator::NotEq, _) => "!=",
        (BinaryOperator::Lt, false) | (BinaryOperator::Gt, true) => "<",
        (BinaryOperator::LtEq, false) | (BinaryOperator::GtEq, true) => "<=",
        (BinaryOperator::Gt, false) | (BinaryOperator::Lt, true) => ">",
        (BinaryOperator::GtEq, false) | (BinaryOperator::LtEq, true) => ">=",
        _ => return None,
    })
}

/// A literal in Delta's partition-value text form (`2026-01-01`, `42`, `true`).
fn literal_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        // DATE '2026-01-01', TIMESTAMP '…'
        Expr::TypedString(typed) => match &typed.value.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => literal_value(expr).map(|v| format!("-{v}")),
        Expr::Nested(inner) => literal_value(inner),
        _ => None,
    }
}
