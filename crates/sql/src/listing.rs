//! What a statement answers about columns — `DESCRIBE t`, `SHOW COLUMNS`,
//! `information_schema.columns` — in the SQL type names a user declares
//! (`STRING`, `DECIMAL(12,2)`, `ARRAY<INT>`), not Arrow's (`Utf8View`,
//! `Decimal128(12, 2)`), and a listing that survives a broken view.
//!
//! DataFusion plans these itself and prints `DataType`'s Display; its
//! `information_schema` provider is built into the session and cannot be
//! replaced, so the planned nodes are swapped here, by type, after
//! planning: a `DescribeTable` becomes the same three columns with SQL
//! names, and a scan of `information_schema.columns` reads silt's own
//! provider (same columns) instead of DataFusion's, which stops at the
//! first table that fails to load — a view over a dropped table made every
//! listing fail.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, TableType};
use datafusion::physical_plan::ExecutionPlan;
use silt_table::sql_type_name;

use crate::catalog::{CATALOG, SCHEMA, StatementSchema};
use crate::error::Result;

/// `plan` with DESCRIBE and `information_schema.columns` answered in SQL
/// type names (see the module comment); any other plan unchanged.
pub(crate) fn readable_listings(plan: LogicalPlan, schema: &Arc<StatementSchema>) -> Result<LogicalPlan> {
    if let LogicalPlan::DescribeTable(describe) = &plan {
        return describe_plan(&describe.schema);
    }
    let transformed = plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::TableScan(scan) if is_information_schema_columns(&scan.table_name) => {
            let provider = ColumnsTable {
                statement: schema.clone(),
                schema: scan.source.schema(),
            };
            Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
                source: provider_as_source(Arc::new(provider)),
                ..scan
            })))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(transformed.data)
}

/// Whether `name` is `[silt.]information_schema.columns`.
fn is_information_schema_columns(name: &TableReference) -> bool {
    name.table().eq_ignore_ascii_case("columns")
        && name
            .schema()
            .is_some_and(|s| s.eq_ignore_ascii_case("information_schema"))
        && name.catalog().is_none_or(|c| c == CATALOG)
}

/// DESCRIBE's answer for `described`: DataFusion's three columns
/// (`column_name`, `data_type`, `is_nullable`), types by SQL name.
fn describe_plan(described: &Schema) -> Result<LogicalPlan> {
    let fields = described.fields();
    let names: StringArray = fields.iter().map(|f| Some(f.name().as_str())).collect();
    let types: StringArray = fields
        .iter()
        .map(|f| Some(sql_type_name(f.data_type())))
        .collect();
    let nullable: StringArray = fields
        .iter()
        .map(|f| Some(if f.is_nullable() { "YES" } else { "NO" }))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("is_nullable", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![Arc::new(names), Arc::new(types), Arc::new(nullable)];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(DataFusionError::from)?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan("describe", provider_as_source(Arc::new(table)), None)?.build()?)
}

/// `information_schema.columns` over the statement's tables and views.
#[derive(Debug)]
struct ColumnsTable {
    statement: Arc<StatementSchema>,
    /// DataFusion's columns of `information_schema.columns`, kept as they
    /// are so the planned scan (projection, types) fits.
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for ColumnsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self.rows().await?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

impl ColumnsTable {
    /// One row per column of every table and view. A view that cannot be
    /// planned (its table was dropped, a column it reads is gone) is left
    /// out and logged: it stays listed in `information_schema.tables`, and
    /// reading it names what is missing.
    async fn rows(&self) -> DfResult<RecordBatch> {
        let mut rows = ColumnRows::default();
        for name in self.statement.object_names().await? {
            let provider = match SchemaProvider::table(self.statement.as_ref(), &name).await {
                Ok(Some(provider)) => provider,
                Ok(None) => continue,
                Err(error) => {
                    let is_view = self
                        .statement
                        .view(&name)
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))?
                        .is_some();
                    if !is_view {
                        return Err(error);
                    }
                    tracing::warn!(view = %name, %error, "view cannot be planned; left out of information_schema.columns");
                    continue;
                }
            };
            for (position, field) in provider.schema().fields().iter().enumerate() {
                rows.add(&name, position, field);
            }
        }
        rows.finish(self.schema.clone())
    }
}

/// The columns of `information_schema.columns`, in DataFusion's order and
/// with its values except `data_type`.
#[derive(Default)]
struct ColumnRows {
    catalogs: StringBuilder,
    schemas: StringBuilder,
    tables: StringBuilder,
    columns: StringBuilder,
    positions: UInt64Builder,
    defaults: StringBuilder,
    nullables: StringBuilder,
    data_types: StringBuilder,
    max_lengths: UInt64Builder,
    octet_lengths: UInt64Builder,
    precisions: UInt64Builder,
    radixes: UInt64Builder,
    scales: UInt64Builder,
    datetime_precisions: UInt64Builder,
    interval_types: StringBuilder,
}

impl ColumnRows {
    fn add(&mut self, table: &str, position: usize, field: &Field) {
        self.catalogs.append_value(CATALOG);
        self.schemas.append_value(SCHEMA);
        self.tables.append_value(table);
        self.columns.append_value(field.name());
        // 0-based, as DataFusion numbers them.
        self.positions.append_value(position as u64);
        self.defaults.append_null();
        self.nullables
            .append_value(if field.is_nullable() { "YES" } else { "NO" });
        self.data_types.append_value(sql_type_name(field.data_type()));
        self.max_lengths.append_null();
        let octets = match field.data_type() {
            DataType::Utf8 | DataType::Binary => Some(i32::MAX as u64),
            DataType::LargeUtf8 | DataType::LargeBinary => Some(i64::MAX as u64),
            _ => None,
        };
        self.octet_lengths.append_option(octets);
        let (precision, radix, scale) = match field.data_type() {
            DataType::Int8 | DataType::UInt8 => (Some(8), Some(2), None),
            DataType::Int16 | DataType::UInt16 => (Some(16), Some(2), None),
            DataType::Int32 | DataType::UInt32 => (Some(32), Some(2), None),
            DataType::Int64 | DataType::UInt64 => (Some(64), Some(2), None),
            DataType::Float32 => (Some(24), Some(2), None),
            DataType::Float64 => (Some(53), Some(2), None),
            DataType::Decimal128(p, s) => (Some(u64::from(*p)), Some(10), u64::try_from(*s).ok()),
            _ => (None, None, None),
        };
        self.precisions.append_option(precision);
        self.radixes.append_option(radix);
        self.scales.append_option(scale);
        self.datetime_precisions.append_null();
        self.interval_types.append_null();
    }

    fn finish(mut self, schema: SchemaRef) -> DfResult<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.catalogs.finish()),
            Arc::new(self.schemas.finish()),
            Arc::new(self.tables.finish()),
            Arc::new(self.columns.finish()),
            Arc::new(self.positions.finish()),
            Arc::new(self.defaults.finish()),
            Arc::new(self.nullables.finish()),
            Arc::new(self.data_types.finish()),
            Arc::new(self.max_lengths.finish()),
            Arc::new(self.octet_lengths.finish()),
            Arc::new(self.precisions.finish()),
            Arc::new(self.radixes.finish()),
            Arc::new(self.scales.finish()),
            Arc::new(self.datetime_precisions.finish()),
            Arc::new(self.interval_types.finish()),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
