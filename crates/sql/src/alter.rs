//! `ALTER TABLE … ADD COLUMN[S]`, `ALTER TABLE … SET TBLPROPERTIES` and
//! `ALTER TABLE … ADD CONSTRAINT name CHECK (…)` / `DROP CONSTRAINT [IF
//! EXISTS] name` (Delta's `delta.constraints.*`).
//!
//! sqlparser reads `ADD COLUMN c T` (one or several, comma-separated) and
//! `SET TBLPROPERTIES`; the Databricks list form `ADD COLUMNS (c T, …)` is
//! read from tokens in `statement.rs`. Both end up as an [`Alter`].

use std::collections::HashMap;

use arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{AlterTable, AlterTableOperation, ColumnDef, TableConstraint};
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
    /// Add a CHECK constraint; refused when a row of the table violates it.
    AddConstraint {
        table: String,
        name: String,
        expression: String,
    },
    /// Drop a CHECK constraint.
    DropConstraint {
        table: String,
        name: String,
        if_exists: bool,
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
            [
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid,
                },
            ] => match constraint {
                TableConstraint::Check(check) if !not_valid && check.enforced != Some(false) => {
                    let Some(name) = &check.name else {
                        return Err(SqlError::Invalid(format!(
                            "ALTER TABLE {table} ADD CONSTRAINT needs a name: ADD CONSTRAINT name CHECK (…)"
                        )));
                    };
                    Ok(Alter::AddConstraint {
                        name: silt_table::validate_constraint_name(&table, &name.value)?,
                        expression: check.expr.to_string(),
                        table,
                    })
                }
                other => Err(SqlError::Invalid(format!(
                    "ALTER TABLE {table} ADD {other} is not supported: silt adds CHECK constraints only \
                     (it does not enforce keys, NOT VALID or NOT ENFORCED constraints)"
                ))),
            },
            [
                AlterTableOperation::DropConstraint {
                    if_exists,
                    name,
                    drop_behavior: None,
                },
            ] => Ok(Alter::DropConstraint {
                name: silt_table::validate_constraint_name(&table, &name.value)?,
                if_exists: *if_exists,
                table,
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
                                "ALTER TABLE {table} {other}; silt supports ADD COLUMN[S], SET TBLPROPERTIES, \
                                 ADD CONSTRAINT … CHECK and DROP CONSTRAINT, one per statement"
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

    /// The table the statement changes.
    pub(crate) fn table(&self) -> &str {
        match self {
            Alter::AddColumns { table, .. }
            | Alter::SetProperties { table, .. }
            | Alter::AddConstraint { table, .. }
            | Alter::DropConstraint { table, .. } => table,
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
                if properties
                    .keys()
                    .any(|k| k.starts_with(silt_table::CONSTRAINT_PREFIX))
                {
                    return Err(SqlError::Invalid(format!(
                        "ALTER TABLE {table} SET TBLPROPERTIES cannot set a delta.constraints.* property: \
                         use ALTER TABLE {table} ADD CONSTRAINT name CHECK (…), which checks the rows"
                    )));
                }
                let version = handle.set_properties(properties).await?;
                Ok((table, version))
            }
            Alter::AddConstraint {
                table,
                name,
                expression,
            } => {
                let handle = warehouse.table(&table).await?;
                let altered = handle.change().add_constraint(&name, &expression).await?;
                Ok((table, altered.version()))
            }
            Alter::DropConstraint {
                table,
                name,
                if_exists,
            } => {
                let handle = warehouse.table(&table).await?;
                let altered = handle.change().drop_constraint(&name, if_exists).await?;
                Ok((table, altered.version()))
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
