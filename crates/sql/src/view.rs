//! Views: `CREATE [OR REPLACE] VIEW`, `DROP VIEW`, and the planning of a
//! stored view's query each time a statement names the view.
//!
//! A view is stored as its query's SQL text in the warehouse (silt-table's
//! `Warehouse::create_view`), never as a plan: each use parses and plans it
//! again in the using statement's catalog, so it sees the tables as they are
//! now (their pinned snapshots), and `VERSION AS OF` inside the view body
//! pins that version like anywhere else.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{CreateTableOptions, CreateView, Query, Statement, visit_relations};
use silt_table::{ViewDefinition, Warehouse};

use crate::catalog::{ExpandView, StatementSchema, statement_catalogs};
use crate::ddl::table_name;
use crate::error::{Result, SqlError};
use crate::statement::{Parsed, parse};
use crate::time_travel::pin_versions;

/// The planner of stored views that every statement schema carries.
pub(crate) fn expander() -> ExpandView {
    Arc::new(|schema, definition| Box::pin(plan_view(schema, definition)))
}

/// Plans `definition`'s query in `schema` (a view's child schema).
async fn plan_view(schema: Arc<StatementSchema>, definition: ViewDefinition) -> Result<LogicalPlan> {
    let mut statement = view_query(&definition)?;
    pin_versions(&mut statement, &schema).await?;
    let state = SessionStateBuilder::new_from_existing(schema.session().as_ref().clone())
        .with_catalog_list(statement_catalogs(&schema)?)
        .build();
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await?;
    crate::listing::readable_listings(plan, &schema)
}

/// The stored query of a view, parsed; it must be one query.
fn view_query(definition: &ViewDefinition) -> Result<Statement> {
    let invalid = || {
        SqlError::Table(silt_table::TableError::InvalidView {
            view: definition.name.clone(),
            reason: "its query is not one SELECT".to_string(),
        })
    };
    let mut statements = parse(&definition.query)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(Parsed::Sql(statement)), true) if matches!(statement.as_ref(), Statement::Query(_)) => {
            Ok(*statement)
        }
        _ => Err(invalid()),
    }
}

/// Runs `CREATE [OR REPLACE] VIEW name AS query`: refuses clauses silt
/// would ignore, plans the query once with `plan` (so a view that cannot
/// run is refused now, not at its first use), then stores it. Returns the
/// view's name.
pub(crate) async fn create_view<F, Fut>(warehouse: &Warehouse, create: CreateView, plan: F) -> Result<String>
where
    F: FnOnce(Box<Query>) -> Fut,
    Fut: std::future::Future<Output = Result<DataFrame>>,
{
    let name = table_name(&create.name)?;
    refuse_view_clauses(&name, &create)?;
    if refers_to(&create.query, &name) {
        return Err(SqlError::Invalid(format!("view '{name}' cannot refer to itself")));
    }
    if create.if_not_exists && warehouse.view(&name).await?.is_some() {
        return Ok(name);
    }
    let frame = plan(create.query.clone()).await?;
    for field in frame.schema().fields() {
        if frame
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name().eq_ignore_ascii_case(field.name()))
            .count()
            > 1
        {
            return Err(SqlError::Invalid(format!(
                "the query of view '{name}' has two columns named '{}'; rename one with AS",
                field.name()
            )));
        }
    }
    warehouse
        .create_view(&name, &create.query.to_string(), create.or_replace)
        .await?;
    Ok(name)
}

/// Clauses of CREATE VIEW that silt would otherwise ignore.
fn refuse_view_clauses(name: &str, create: &CreateView) -> Result<()> {
    let refused = if create.materialized {
        Some(
            "CREATE MATERIALIZED VIEW (a view is a stored query here; CREATE TABLE … AS SELECT keeps the rows)",
        )
    } else if create.temporary {
        Some(
            "CREATE TEMPORARY VIEW (views are stored in the warehouse; use a WITH clause for a query-local one)",
        )
    } else if create.or_alter {
        Some("CREATE OR ALTER VIEW (use CREATE OR REPLACE VIEW)")
    } else if create.secure {
        Some("CREATE SECURE VIEW")
    } else if !create.columns.is_empty() {
        Some("a column list in CREATE VIEW (name the query's columns with AS)")
    } else if !matches!(create.options, CreateTableOptions::None) {
        Some("view options (TBLPROPERTIES / WITH / OPTIONS)")
    } else if create.comment.is_some() {
        Some("a view COMMENT")
    } else if !create.cluster_by.is_empty()
        || create.to.is_some()
        || create.params.is_some()
        || create.with_no_schema_binding
        || create.copy_grants
    {
        Some("this CREATE VIEW clause")
    } else {
        None
    };
    match refused {
        Some(clause) => Err(SqlError::Invalid(format!(
            "view '{name}': {clause} is not supported; write CREATE [OR REPLACE] VIEW {name} AS SELECT …"
        ))),
        None => Ok(()),
    }
}

/// Whether `query` reads a relation named `name`.
fn refers_to(query: &Query, name: &str) -> bool {
    visit_relations(query, |relation| {
        if table_name(relation).is_ok_and(|n| n == name) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

/// Runs `DROP VIEW [IF EXISTS] names`. A table named here is refused
/// (DROP TABLE drops tables), as Databricks does. Returns the last view dropped.
pub(crate) async fn drop_views(
    warehouse: &Warehouse,
    names: &[datafusion::sql::sqlparser::ast::ObjectName],
    if_exists: bool,
) -> Result<Option<String>> {
    let mut dropped = None;
    for name in names {
        let name = table_name(name)?;
        if warehouse.view(&name).await?.is_none() {
            if warehouse.exists(&name).await? {
                return Err(SqlError::Invalid(format!(
                    "'{name}' is a table, not a view: use DROP TABLE {name}"
                )));
            }
            if if_exists {
                continue;
            }
        }
        warehouse.drop_view(&name).await?;
        dropped = Some(name);
    }
    Ok(dropped)
}
