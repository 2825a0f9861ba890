//! `ALTER TABLE … ADD COLUMN[S]` and `ALTER TABLE … SET TBLPROPERTIES`.
//!
//! sqlparser reads `ADD COLUMN c T` (one or several, comma-separated) and
//! `SET TBLPROPERTIES`; the Databricks list form `ADD COLUMNS (c T, …)` is
//! read from tokens in `statement.rs`. Both end up as an [`Alter`].

use std::collections::HashMap;

use arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{AlterTable, AlterTableOperation, ColumnDef};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use silt_table::Warehouse;

use crate::ddl::{column_field, property_map, table_name};
use crate::error::{Result, SqlError};

/// One `ALTER TABLE` statement, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Alter {
    /// Add nullable columns at the end of the schema, in one commit.
    AddColumns { table: String, columns: Vec<ColumnDef> },
    /// Set (add or replace) table properties, in one commit.
    SetProperties {
        table: String,
        properties: HashMap<String, String>,
    },
}

impl Alter {
    /// The `ALTER TABLE` silt runs, from sqlparser's statement.
    pub(crate) fn from_statement(alter: &AlterTable) -> Result<Self> {
        let table = table_name(&alter.name)?;
        if alter.location.is_some() || alter.on_cluster.is_some() || alter.table_type.is_some() {
            return Err(SqlError::Unsupported(format!("{alter}")));
        }
        match alter.operations.as_slice() {
            [AlterTableOperation::SetTblProperties { table_properties }] => Ok(Alter::SetProperties {
                table,
                properties: property_map(table_properties)?,
            }),
            operations if !operations.is_empty() => {
                let mut columns = Vec::new();
                for operation in operations {
                    match operation {
                        AlterTableOperation::AddColumn {
                            column_def,
                            column_position: None,
                            ..
                        } => columns.push(column_def.clone()),
                        other => {
                            return Err(SqlError::Unsupported(format!(
                                "ALTER TABLE {table} {other}; silt supports ADD COLUMN[S] and SET TBLPROPERTIES"
                            )));
                        }
                    }
                }
                Ok(Alter::AddColumns { table, columns })
            }
            _ => Err(SqlError::Syntax(format!(
                "ALTER TABLE {table} needs an operation"
            ))),
        }
    }

    /// Runs the change; returns the table and its new version.
    pub(crate) async fn run(self, warehouse: &Warehouse) -> Result<(String, u64)> {
        match self {
            Alter::AddColumns { table, columns } => add_columns(warehouse, table, &columns).await,
            Alter::SetProperties { table, properties } => {
                let mut handle = warehouse.table(&table).await?;
                // silt.* keys are allowed: set_properties does not insist
                // on properties deltalake knows.
                let version = handle.set_properties(properties).await?;
                Ok((table, version))
            }
        }
    }
}

async fn add_columns(warehouse: &Warehouse, name: String, columns: &[ColumnDef]) -> Result<(String, u64)> {
    let table = warehouse.table(&name).await?;
    let existing = table.schema()?;
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let field = column_field(column)?;
        // Delta column names are case-insensitive for uniqueness (Spark).
        let clash = existing
            .fields()
            .iter()
            .map(|f| f.name())
            .chain(fields.iter().map(Field::name))
            .any(|n| n.eq_ignore_ascii_case(field.name()));
        if clash {
            return Err(SqlError::Invalid(format!(
                "column '{}' already exists in table '{name}'",
                field.name()
            )));
        }
        if !field.is_nullable() {
            return Err(SqlError::Invalid(format!(
                "new column '{}' of table '{name}' must be nullable: the rows already written have no value for it",
                field.name()
            )));
        }
        fields.push(field);
    }
    let schema = silt_table::types::delta_compatible_schema(&Schema::new(fields))
        .map_err(|reason| SqlError::Invalid(format!("table '{name}': {reason}")))?;
    let kernel: StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| SqlError::Invalid(format!("table '{name}': {e}")))?;
    let altered = table
        .change()
        .add_columns(kernel.fields().cloned().collect::<Vec<_>>())
        .await?;
    Ok((name, altered.version()))
}
