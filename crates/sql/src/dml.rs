//! UPDATE and DELETE, translated to deltalake's copy-on-write operations, and
//! the pieces MERGE shares with them: the DML session, expression planning
//! and validation, commit properties and the error mapping.
//!
//! Expressions are planned by DataFusion here (not handed to deltalake as SQL
//! text): deltalake re-parses text with its own dialect, without identifier
//! normalization and with a context provider that panics on subqueries.
//! Planning here also lets every expression be type-checked against empty
//! inputs before a single file is written, so a bad statement fails with a
//! 4xx error and commits nothing.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, TableReference};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self as ast, AssignmentTarget, Delete, ExprWithAlias, FromTable, ObjectNamePart, TableFactor, Update,
};
use deltalake::delta_datafusion::planner::DeltaPlanner;
use silt_table::Table;

use crate::catalog::{StatementSchema, statement_catalogs};
use crate::ddl::{sql_type_name, table_name};
use crate::error::{Result, SqlError};

/// Row counts of one statement that changed a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RowCounts {
    pub(crate) inserted: i64,
    pub(crate) updated: i64,
    pub(crate) deleted: i64,
}

impl RowCounts {
    /// Rows the statement touched in any way.
    pub(crate) fn affected(&self) -> i64 {
        self.inserted + self.updated + self.deleted
    }
}

/// The answer of a DML statement: the table, its version afterwards (the
/// old one when nothing matched and nothing was committed) and row counts.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) table: String,
    pub(crate) version: u64,
    pub(crate) counts: RowCounts,
}

/// A session over the statement's catalog that can also plan deltalake's
/// operation nodes (its metric observers need `DeltaPlanner`).
pub(crate) fn dml_session(base: &SessionState, schema: &Arc<StatementSchema>) -> Result<SessionState> {
    Ok(SessionStateBuilder::new_from_existing(base.clone())
        .with_catalog_list(statement_catalogs(schema)?)
        .with_query_planner(DeltaPlanner::new())
        .build())
}

/// Loads the target table of a DML statement, pinned for the statement.
pub(crate) async fn target_table(schema: &StatementSchema, name: &str) -> Result<Table> {
    if let Some(table) = schema.resolve(name).await? {
        return Ok(table);
    }
    if schema.view(name).await?.is_some() {
        return Err(view_target(name));
    }
    Err(SqlError::NotFound(format!("table '{name}' not found")))
}

/// The error for a write into a view.
pub(crate) fn view_target(name: &str) -> SqlError {
    SqlError::Invalid(format!(
        "'{name}' is a view, which cannot be written; change the tables it reads"
    ))
}

/// The name of the column `ident` names in `schema`: unquoted names fold to
/// lowercase (as in queries), then match case-insensitively as Delta does.
pub(crate) fn column_name(schema: &Schema, ident: &ast::Ident, table: &str) -> Result<String> {
    let wanted = match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    };
    if let Ok(field) = schema.field_with_name(&wanted) {
        return Ok(field.name().clone());
    }
    schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(&wanted))
        .map(|f| f.name().clone())
        .ok_or_else(|| SqlError::Invalid(format!("column '{wanted}' not found in table '{table}'")))
}

/// The type of `column`, which [`column_name`] found in `schema`.
pub(crate) fn column_type(schema: &Schema, column: &str, table: &str) -> Result<DataType> {
    schema
        .field_with_name(column)
        .map(|f| f.data_type().clone())
        .map_err(|_| SqlError::Invalid(format!("column '{column}' not found in table '{table}'")))
}

/// The column an assignment sets: `c` or `<qualifier>.c` where the
/// qualifier is the target's name or alias.
pub(crate) fn assignment_column(
    target: &AssignmentTarget,
    schema: &Schema,
    table: &str,
    qualifier: &str,
) -> Result<String> {
    let AssignmentTarget::ColumnName(name) = target else {
        return Err(SqlError::Unsupported(format!(
            "tuple assignment {target} in table '{table}'; assign each column"
        )));
    };
    let idents: Vec<&ast::Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
    match idents.as_slice() {
        [column] => column_name(schema, column, table),
        [q, column] if normalized(q) == qualifier => column_name(schema, column, table),
        _ => Err(SqlError::Invalid(format!(
            "'{name}' is not a column of table '{table}'"
        ))),
    }
}

fn normalized(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The target of UPDATE / DELETE / MERGE: a plain table, maybe aliased.
pub(crate) fn target_factor(factor: &TableFactor, op: &str) -> Result<(String, Option<String>)> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            partitions,
            ..
        } if with_hints.is_empty() && partitions.is_empty() => {
            let alias = alias.as_ref().map(|a| normalized(&a.name));
            Ok((table_name(name)?, alias))
        }
        TableFactor::Table { version: Some(_), .. } => Err(SqlError::Invalid(format!(
            "{op} writes the latest version of a table; VERSION/TIMESTAMP AS OF is not allowed on its target"
        ))),
        other => Err(SqlError::Unsupported(format!(
            "{op} target {other}; name one table"
        ))),
    }
}

/// Plans a SQL expression against `schema`. Subqueries are refused up
/// front: deltalake evaluates predicates per file and cannot run them.
/// `$n` in it are typed and bound by `params` (`target`: the column type
/// an assigned value gets).
pub(crate) fn plan_expr(
    state: &SessionState,
    params: &crate::params::Params,
    expr: &ast::Expr,
    schema: &DFSchema,
    place: &str,
    target: Option<&DataType>,
) -> Result<Expr> {
    let mut subquery = false;
    let _ = ast::visit_expressions(expr, |e| {
        if matches!(
            e,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. }
        ) {
            subquery = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    if subquery {
        return Err(SqlError::Unsupported(format!(
            "subquery in {place}; use MERGE with the subquery as its source"
        )));
    }
    let planned = state.create_logical_expr_from_sql_expr(
        ExprWithAlias {
            expr: expr.clone(),
            alias: None,
        },
        schema,
    );
    let planned = planned.map_err(|e| in_place(SqlError::from(e), place))?;
    params
        .bind(planned, schema, target)
        .map_err(|e| in_place(e, place))
}

fn in_place(error: SqlError, place: &str) -> SqlError {
    match error {
        SqlError::Invalid(m) | SqlError::Execution(m) | SqlError::Syntax(m) => {
            SqlError::Invalid(format!("{place}: {m}"))
        }
        // A table name inside an expression is an unknown column qualifier.
        SqlError::NotFound(m) => SqlError::Invalid(format!("{place}: {m}")),
        other => other,
    }
}

/// What a planned expression is for; names it in errors.
pub(crate) enum Role {
    /// The value assigned to a target column of this type.
    Assign { column: String, data_type: DataType },
    /// A condition (WHERE, ON, AND …), which must be boolean.
    Condition,
}

/// One expression to check, with where it was written ("WHERE clause of UPDATE").
pub(crate) struct Check {
    pub(crate) place: String,
    pub(crate) role: Role,
    pub(crate) expr: Expr,
}

/// Type-checks `checks` against empty inputs of the given (qualifier,
/// schema) relations, as DataFusion will plan them, and evaluates their
/// constant parts: `SET id = 'abc'` on a BIGINT or `WHERE id = 'abc'` fails
/// here, before anything is written, instead of halfway through a rewrite.
pub(crate) async fn validate(
    state: &SessionState,
    relations: &[(String, SchemaRef)],
    checks: &[Check],
) -> Result<()> {
    // Only a statement planned for its shape (a prepared statement being
    // described) keeps placeholders; it is planned and validated again
    // with its values when it runs.
    if checks.is_empty() || checks.iter().any(|c| crate::params::has_placeholder(&c.expr)) {
        return Ok(());
    }
    let mut builder: Option<LogicalPlanBuilder> = None;
    for (qualifier, schema) in relations {
        let scan = LogicalPlanBuilder::scan(
            TableReference::bare(qualifier.as_str()),
            provider_as_source(Arc::new(MemTable::try_new(nullable(schema), vec![vec![]])?)),
            None,
        )?;
        builder = Some(match builder {
            None => scan,
            Some(left) => left.cross_join(scan.build()?)?,
        });
    }
    let builder = builder.unwrap_or(LogicalPlanBuilder::empty(true));
    for (i, check) in checks.iter().enumerate() {
        let item = match &check.role {
            Role::Assign { data_type, .. } => cast(check.expr.clone(), data_type.clone()),
            Role::Condition => check.expr.clone(),
        };
        let plan = builder
            .clone()
            .project(vec![item.alias(format!("__silt_check_{i}"))])
            .and_then(|b| b.build())
            .map_err(|e| in_place(SqlError::from(e), &check.place))?;
        let analyzed = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .map_err(|e| check_error(check, e))?;
        if let Role::Condition = check.role {
            let data_type = analyzed.schema().field(0).data_type().clone();
            if !matches!(data_type, DataType::Boolean | DataType::Null) {
                return Err(SqlError::Invalid(format!(
                    "{}: a condition must be boolean, not {}",
                    check.place,
                    sql_type_name(&data_type)
                )));
            }
        }
        // Constant folding while planning already rejects many bad literals.
        state
            .create_physical_plan(&analyzed)
            .await
            .map_err(|e| check_error(check, e))?;
        for expr in analyzed.expressions() {
            evaluate_constants(state, &expr, check).await?;
        }
    }
    Ok(())
}

/// `schema` with every field nullable, for empty validation inputs.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Runs the column-free parts of `expr` once, so a literal that does not
/// convert fails now. Messages never quote the value.
async fn evaluate_constants(state: &SessionState, expr: &Expr, check: &Check) -> Result<()> {
    let mut parts = Vec::new();
    let _ = expr.apply(|e| {
        if is_constant(e) {
            if !matches!(e, Expr::Literal(..)) {
                parts.push(e.clone().unalias_nested().data);
            }
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if parts.is_empty() {
        return Ok(());
    }
    let items = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.alias(format!("__silt_const_{i}")));
    let result = async {
        let plan = LogicalPlanBuilder::empty(true).project(items)?.build()?;
        let physical = state.create_physical_plan(&plan).await?;
        datafusion::physical_plan::collect(physical, state.task_ctx()).await
    }
    .await;
    let Err(error) = result else {
        return Ok(());
    };
    Err(check_error(check, error))
}

/// The error of a failed check. A failed cast names the column and type but
/// not the value (Arrow's message quotes it).
fn check_error(check: &Check, error: DataFusionError) -> SqlError {
    if !is_cast_error(&error) {
        return in_place(SqlError::from(error), &check.place);
    }
    SqlError::Invalid(match &check.role {
        Role::Assign { column, data_type } => format!(
            "{}: the value for column '{column}' does not convert to {}",
            check.place,
            sql_type_name(data_type)
        ),
        Role::Condition => format!(
            "{}: a literal does not convert to the type it is compared with",
            check.place
        ),
    })
}

fn is_constant(e: &Expr) -> bool {
    e.column_refs().is_empty()
        && !e.is_volatile()
        && !e
            .exists(|x| {
                Ok(matches!(
                    x,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::AggregateFunction(_)
                        | Expr::WindowFunction(_)
                        | Expr::Placeholder(_)
                        | Expr::OuterReferenceColumn(..)
                ))
            })
            .unwrap_or(true)
}

/// Whether Arrow refused to convert a value (by type: the error Arrow's
/// cast and parse kernels raise, wherever DataFusion wrapped it).
fn is_cast_error(error: &DataFusionError) -> bool {
    use arrow::error::ArrowError;
    match error.find_root() {
        DataFusionError::ArrowError(arrow, _) => {
            matches!(
                arrow.as_ref(),
                ArrowError::CastError(_) | ArrowError::ParseError(_)
            )
        }
        _ => false,
    }
}

/// The qualifier an UPDATE/DELETE target's columns are resolved under.
fn qualified(table: &Table, qualifier: &str) -> Result<(SchemaRef, DFSchema)> {
    let arrow = table.schema()?;
    let df = DFSchema::try_from_qualified_schema(TableReference::bare(qualifier), &arrow)?;
    Ok((arrow, df))
}

/// An UPDATE planned and type-checked against its target: nothing written yet.
pub(crate) struct PlannedUpdate {
    name: String,
    table: Table,
    state: SessionState,
    predicate: Option<Expr>,
    sets: Vec<(String, Expr)>,
}

/// Plans `UPDATE t [AS a] SET c = e, … [WHERE p]` (see [`PlannedUpdate::run`]).
pub(crate) async fn plan_update(
    base: &SessionState,
    schema: &Arc<StatementSchema>,
    update: Update,
) -> Result<PlannedUpdate> {
    if update.from.is_some() {
        return Err(SqlError::Unsupported(
            "UPDATE … FROM; use MERGE INTO … USING".to_string(),
        ));
    }
    if update.returning.is_some()
        || update.output.is_some()
        || !update.order_by.is_empty()
        || update.limit.is_some()
    {
        return Err(SqlError::Unsupported(
            "UPDATE with RETURNING, OUTPUT, ORDER BY or LIMIT".to_string(),
        ));
    }
    if !update.table.joins.is_empty() {
        return Err(SqlError::Unsupported("UPDATE of a join; use MERGE".to_string()));
    }
    let (name, alias) = target_factor(&update.table.relation, "UPDATE")?;
    let qualifier = alias.unwrap_or_else(|| name.clone());
    let state = dml_session(base, schema)?;
    let table = target_table(schema, &name).await?;
    let (arrow, df_schema) = qualified(&table, &qualifier)?;

    let mut checks = Vec::new();
    let mut assigned: Vec<String> = Vec::new();
    for assignment in &update.assignments {
        let column = assignment_column(&assignment.target, &arrow, &name, &qualifier)?;
        if assigned.contains(&column) {
            return Err(SqlError::Invalid(format!(
                "column '{column}' of table '{name}' is assigned twice"
            )));
        }
        let place = format!("SET {column} of UPDATE on table '{name}'");
        let data_type = column_type(&arrow, &column, &name)?;
        let expr = plan_expr(
            &state,
            schema.params(),
            &assignment.value,
            &df_schema,
            &place,
            Some(&data_type),
        )?;
        checks.push(Check {
            place,
            role: Role::Assign {
                column: column.clone(),
                data_type,
            },
            expr,
        });
        assigned.push(column);
    }
    let predicate = match &update.selection {
        Some(selection) => {
            let place = format!("WHERE clause of UPDATE on table '{name}'");
            let expr = plan_expr(&state, schema.params(), selection, &df_schema, &place, None)?;
            checks.push(Check {
                place,
                role: Role::Condition,
                expr: expr.clone(),
            });
            Some(expr)
        }
        None => None,
    };
    validate(&state, &[(qualifier, arrow)], &checks).await?;

    // deltalake resolves against the unqualified table schema.
    let sets: Vec<(String, Expr)> = checks
        .into_iter()
        .filter_map(|check| match check.role {
            // Cast to the column's type here: a value of another type (the
            // DECIMAL literal `7.0` into a DOUBLE) must not reach the
            // constraint check or the writer uncast.
            Role::Assign { column, data_type } => {
                Some((column, cast(unnormalize_col(check.expr), data_type)))
            }
            Role::Condition => None,
        })
        .collect();
    Ok(PlannedUpdate {
        name,
        table,
        state,
        predicate: predicate.map(unnormalize_col),
        sets,
    })
}

impl PlannedUpdate {
    /// Rewrites the files with matching rows and commits.
    pub(crate) async fn run(self) -> Result<Change> {
        let (updated, counts) = self
            .table
            .change()
            .with_session(Arc::new(self.state))
            .update(self.predicate, self.sets)
            .await?;
        Ok(Change {
            version: updated.version(),
            table: self.name,
            counts: RowCounts {
                updated: counts.updated as i64,
                ..RowCounts::default()
            },
        })
    }
}

/// A DELETE planned and type-checked against its target: nothing written yet.
pub(crate) struct PlannedDelete {
    name: String,
    table: Table,
    state: SessionState,
    schema: Arc<StatementSchema>,
    predicate: Option<Expr>,
}

/// Plans `DELETE FROM t [AS a] [WHERE p]` (see [`PlannedDelete::run`]).
pub(crate) async fn plan_delete(
    base: &SessionState,
    schema: &Arc<StatementSchema>,
    delete: Delete,
) -> Result<PlannedDelete> {
    if !delete.tables.is_empty() || delete.using.is_some() {
        return Err(SqlError::Unsupported(
            "multi-table DELETE or DELETE … USING; use MERGE … WHEN MATCHED THEN DELETE".to_string(),
        ));
    }
    if delete.returning.is_some()
        || delete.output.is_some()
        || !delete.order_by.is_empty()
        || delete.limit.is_some()
    {
        return Err(SqlError::Unsupported(
            "DELETE with RETURNING, OUTPUT, ORDER BY or LIMIT".to_string(),
        ));
    }
    let from = match &delete.from {
        FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => from,
    };
    let [target] = from.as_slice() else {
        return Err(SqlError::Unsupported("DELETE from several tables".to_string()));
    };
    if !target.joins.is_empty() {
        return Err(SqlError::Unsupported("DELETE from a join; use MERGE".to_string()));
    }
    let (name, alias) = target_factor(&target.relation, "DELETE")?;
    let qualifier = alias.unwrap_or_else(|| name.clone());
    let state = dml_session(base, schema)?;
    let table = target_table(schema, &name).await?;
    let (arrow, df_schema) = qualified(&table, &qualifier)?;

    let predicate = match &delete.selection {
        Some(selection) => {
            let place = format!("WHERE clause of DELETE on table '{name}'");
            let expr = plan_expr(&state, schema.params(), selection, &df_schema, &place, None)?;
            let check = Check {
                place,
                role: Role::Condition,
                expr: expr.clone(),
            };
            validate(&state, &[(qualifier, arrow)], &[check]).await?;
            Some(expr)
        }
        None => None,
    };

    Ok(PlannedDelete {
        name,
        table,
        state,
        schema: schema.clone(),
        predicate: predicate.map(unnormalize_col),
    })
}

impl PlannedDelete {
    /// Rewrites (or drops) the files with matching rows and commits.
    pub(crate) async fn run(self) -> Result<Change> {
        let Self {
            name,
            table,
            state,
            schema,
            predicate,
        } = self;
        let (deleted, counts) = table
            .change()
            .with_session(Arc::new(state.clone()))
            .delete(predicate)
            .await?;
        let version = deleted.version();
        let rows = match counts.deleted {
            Some(rows) => rows as i64,
            // Whole files dropped without row counts in their stats: count.
            None => {
                let before = row_count(&state, &table).await?;
                let now = match schema
                    .resolve(&crate::catalog::versioned_name(&name, version))
                    .await?
                {
                    Some(t) => row_count(&state, &t).await?,
                    None => before,
                };
                before - now
            }
        };
        Ok(Change {
            table: name,
            version,
            counts: RowCounts {
                deleted: rows,
                ..RowCounts::default()
            },
        })
    }
}

async fn row_count(state: &SessionState, table: &Table) -> Result<i64> {
    let provider = table.table_provider(&Arc::new(state.clone())).await?;
    let ctx = SessionContext::new_with_state(state.clone());
    Ok(ctx.read_table(provider)?.count().await? as i64)
}
