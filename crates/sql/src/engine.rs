//! The SQL engine: runs statements against the warehouse.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectType, ShowCreateObject, Statement, Truncate};
use silt_table::Warehouse;

use crate::access::{Access, script_access};
use crate::catalog::{StatementSchema, statement_catalogs};
use crate::cooperative::CooperativeJoins;
use crate::ddl::{create_table_spec, table_name};
use crate::dml::{self, RowCounts};
use crate::error::{Result, SqlError};
use crate::history::history_batch;
use crate::kind::{StatementKind, statement_kind};
use crate::limits::{StatementLimits, check_text};
use crate::maintenance::Maintenance;
use crate::merge;
use crate::statement::{Parsed, parse_located};
use crate::time_travel::pin_versions;

pub use crate::catalog::{CATALOG, SCHEMA};

/// The result of one statement.
#[derive(Debug, Clone)]
pub struct StatementOutput {
    /// Result columns.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl StatementOutput {
    fn single(batch: RecordBatch) -> Self {
        Self {
            schema: batch.schema(),
            batches: vec![batch],
        }
    }

    /// Number of result rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// How an [`Engine`] bounds the statements it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Length and depth of a request's SQL text.
    pub limits: StatementLimits,
    /// Memory all running statements may hold together (DataFusion's memory
    /// pool; operators that can spill do, others fail with an error).
    /// `None`: unbounded.
    pub memory_limit: Option<usize>,
}

/// A request's SQL, parsed once: the role check, the statement log and
/// execution all use this one parse.
#[derive(Debug, Clone)]
pub struct Script {
    statements: Vec<Parsed>,
    /// The line each statement starts on (for errors naming a statement).
    lines: Vec<usize>,
    access: Access,
}

impl Script {
    /// What running every statement needs (the highest access of them).
    pub fn access(&self) -> Access {
        self.access
    }

    /// Number of statements.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether there is no statement (never true for a parsed script).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// What sort of work the script is, for metrics: its statements' kind,
    /// the highest of them ([`StatementKind`]'s order) for several.
    pub fn kind(&self) -> StatementKind {
        self.statements
            .iter()
            .map(statement_kind)
            .max()
            .unwrap_or(StatementKind::Other)
    }

    /// Whether this is one statement whose answer is rows to stream (a
    /// query, EXPLAIN, SHOW) rather than a change or a command.
    pub fn is_query(&self) -> bool {
        matches!(self.statements.as_slice(), [statement] if is_streamable(statement))
    }
}

fn is_streamable(statement: &Parsed) -> bool {
    matches!(
        statement,
        Parsed::Sql(s) if matches!(
            s.as_ref(),
            Statement::Query(_) | Statement::Explain { .. } | Statement::ShowTables { .. } | Statement::ShowColumns { .. }
        )
    )
}

/// Runs SQL against a warehouse. Cheap to clone; safe to share.
#[derive(Clone)]
pub struct Engine {
    warehouse: Warehouse,
    base: Arc<SessionState>,
    limits: StatementLimits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `warehouse` with the default [`EngineOptions`].
    pub fn new(warehouse: Warehouse) -> Self {
        Self::with_options(warehouse, EngineOptions::default())
    }

    /// An engine over `warehouse` bounded by `options`.
    pub fn with_options(warehouse: Warehouse, options: EngineOptions) -> Self {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(false);
        // Not `sql_parser.parse_float_as_decimal`: DataFusion 55 then reads
        // `1e300` as a decimal of scale -300 and refuses it (docs/sql.md).
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(CooperativeJoins));
        if let Some(limit) = options.memory_limit {
            let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(datafusion::execution::memory_pool::FairSpillPool::new(
                    limit,
                )))
                .build_arc();
            match runtime {
                Ok(runtime) => builder = builder.with_runtime_env(runtime),
                Err(error) => tracing::warn!(%error, "cannot bound query memory; running unbounded"),
            }
        }
        Self {
            warehouse,
            base: Arc::new(builder.build()),
            limits: options.limits,
        }
    }

    /// Parses `sql` into a [`Script`], refusing text beyond the engine's
    /// [`StatementLimits`] before anything recursive runs. Call this on a
    /// thread with [`QUERY_STACK_BYTES`](crate::QUERY_STACK_BYTES) of stack:
    /// a tree at the depth limit needs more than a default thread has.
    pub fn parse(&self, sql: &str) -> Result<Script> {
        check_text(sql, &self.limits)?;
        let (statements, lines): (Vec<Parsed>, Vec<usize>) = parse_located(sql)?.into_iter().unzip();
        let access = script_access(&statements);
        Ok(Script {
            statements,
            lines,
            access,
        })
    }

    /// The warehouse this engine reads and writes.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// Runs every `;`-separated statement of `sql` in order and returns their
    /// results. Stops at the first failure; earlier statements stay committed.
    pub async fn execute(&self, sql: &str) -> Result<Vec<StatementOutput>> {
        self.execute_script(self.parse(sql)?).await
    }

    /// [`execute`](Self::execute) for a parsed script. A script of several
    /// statements is checked first ([`Engine::check_script`]): a statement
    /// that cannot be planned fails the script before any statement runs.
    pub async fn execute_script(&self, script: Script) -> Result<Vec<StatementOutput>> {
        let mut outputs = Vec::new();
        self.execute_script_each(script, |output| {
            outputs.push(output);
            Ok(())
        })
        .await?;
        Ok(outputs)
    }

    /// [`execute_script`](Self::execute_script), handing each statement's
    /// result to `each` as soon as the statement has run (a shell prints
    /// it before the next statement starts). In a script of several
    /// statements, a failure is [`SqlError::InStatement`], naming the
    /// statement and its line; an error of `each` stops the script as is.
    pub async fn execute_script_each(
        &self,
        script: Script,
        mut each: impl FnMut(StatementOutput) -> Result<()>,
    ) -> Result<()> {
        let several = script.statements.len() > 1;
        if several {
            self.check_script(&script).await?;
        }
        for (index, (statement, line)) in script.statements.into_iter().zip(script.lines).enumerate() {
            let output = self
                .run(statement, Vec::new())
                .await
                .map_err(|error| match several {
                    true => error.in_statement(index + 1, line),
                    false => error,
                })?;
            each(output)?;
        }
        Ok(())
    }

    /// Plans every query, INSERT, UPDATE, DELETE and MERGE of `script` that names no table an
    /// earlier statement of the script creates, drops, alters or restores
    /// (those can only be planned once the earlier statement ran), without
    /// running anything: `INSERT …; SELECT nope FROM t` fails before the
    /// INSERT commits. What this cannot promise — a later statement failing
    /// while it runs — leaves the earlier statements committed, each its
    /// own commit (docs/cli.md).
    async fn check_script(&self, script: &Script) -> Result<()> {
        let mut changed: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (index, (statement, line)) in script.statements.iter().zip(&script.lines).enumerate() {
            self.check_statement(statement, &mut changed)
                .await
                .map_err(|error| error.in_statement(index + 1, *line))?;
        }
        Ok(())
    }

    /// [`check_script`](Self::check_script) for one statement; `changed`
    /// holds the tables earlier statements create, drop, alter or restore.
    async fn check_statement(
        &self,
        statement: &Parsed,
        changed: &mut std::collections::HashSet<String>,
    ) -> Result<()> {
        match statement {
            Parsed::Sql(sql) => match sql.as_ref() {
                Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. }
                    if !names_any(sql.as_ref(), changed) =>
                {
                    let schema = self.statement_schema();
                    self.plan_logical(sql.as_ref().clone(), &schema, Vec::new(), Binding::Later)
                        .await?;
                }
                Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)
                    if !names_any(sql.as_ref(), changed) =>
                {
                    let schema = self.statement_schema();
                    match sql.as_ref().clone() {
                        Statement::Update(update) => {
                            drop(dml::plan_update(&self.base, &schema, update).await?)
                        }
                        Statement::Delete(delete) => {
                            drop(dml::plan_delete(&self.base, &schema, delete).await?)
                        }
                        Statement::Merge(merge) => drop(merge::plan_merge(&self.base, &schema, merge).await?),
                        _ => {}
                    }
                }
                Statement::CreateTable(create) => changed.extend(table_name(&create.name).ok()),
                Statement::CreateView(create) => changed.extend(table_name(&create.name).ok()),
                Statement::Truncate(truncate) => {
                    changed.extend(
                        truncate
                            .table_names
                            .iter()
                            .filter_map(|t| table_name(&t.name).ok()),
                    );
                }
                Statement::Drop { names, .. } => {
                    changed.extend(names.iter().filter_map(|n| table_name(n).ok()));
                }
                _ => {}
            },
            Parsed::Alter(alter) => {
                changed.insert(alter.table().to_string());
            }
            Parsed::Maintenance(Maintenance::Restore { table, .. }) => {
                changed.insert(table.clone());
            }
            Parsed::Apply(apply) if !changed.contains(&apply.target) => {
                let schema = self.statement_schema();
                drop(crate::apply::plan_apply(&self.base, &schema, apply.as_ref().clone()).await?);
            }
            Parsed::Maintenance(_) | Parsed::DescribeHistory { .. } | Parsed::Apply(_) => {}
        }
        Ok(())
    }

    /// Runs one statement; `params` are its `$n` values (INSERT, UPDATE,
    /// DELETE and MERGE take them; any other statement refuses them).
    async fn run(&self, statement: Parsed, params: Vec<ScalarValue>) -> Result<StatementOutput> {
        if !params.is_empty() && !matches!(&statement, Parsed::Sql(s) if takes_params(s)) {
            return Err(SqlError::Invalid(
                "parameters ($1, …) are supported in SELECT, EXPLAIN, INSERT, UPDATE, DELETE and MERGE"
                    .to_string(),
            ));
        }
        match statement {
            Parsed::DescribeHistory { table, limit } => {
                let table = self.warehouse.table(&table).await?;
                let entries = table.history(limit).await?;
                Ok(StatementOutput::single(history_batch(&entries)?))
            }
            Parsed::Maintenance(command) => Ok(StatementOutput::single(command.run(&self.warehouse).await?)),
            Parsed::Alter(alter) => {
                let (name, version) = alter.run(&self.warehouse).await?;
                Ok(StatementOutput::single(change_batch(
                    &name,
                    version,
                    RowCounts::default(),
                )?))
            }
            Parsed::Apply(apply) => {
                let change = crate::apply::plan_apply(&self.base, &self.statement_schema(), *apply)
                    .await?
                    .run()
                    .await?;
                change_output(change)
            }
            Parsed::Sql(statement) => self.run_sql(*statement, params).await,
        }
    }

    async fn run_sql(&self, statement: Statement, params: Vec<ScalarValue>) -> Result<StatementOutput> {
        if matches!(
            statement,
            Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)
        ) {
            // Counted on the syntax tree: planning binds per expression and
            // would only notice a missing value, not an extra one.
            crate::params::check_count(params.len(), crate::params::highest_placeholder(&statement))?;
        }
        match statement {
            Statement::CreateTable(create) if create.query.is_none() => {
                crate::ddl::refuse_ignored_clauses(&create)?;
                let (name, spec) = create_table_spec(&create)?;
                let table = if create.or_replace {
                    // One commit: new definition, no rows, history kept.
                    self.warehouse.replace_table(&name, spec, Vec::new()).await?
                } else {
                    self.warehouse.create_table(&name, spec).await?
                };
                Ok(StatementOutput::single(change_batch(
                    &name,
                    table.version(),
                    RowCounts::default(),
                )?))
            }
            Statement::CreateView(create) => {
                let plan = |query| async move {
                    let schema = self.statement_schema();
                    self.plan_frame(Statement::Query(query), &schema, Vec::new(), Binding::Now)
                        .await
                };
                let name = crate::view::create_view(&self.warehouse, create, plan).await?;
                Ok(StatementOutput::single(change_batch(
                    &name,
                    0,
                    RowCounts::default(),
                )?))
            }
            Statement::Drop {
                object_type: ObjectType::View,
                if_exists,
                names,
                ..
            } => {
                let dropped = crate::view::drop_views(&self.warehouse, &names, if_exists).await?;
                Ok(StatementOutput::single(change_batch(
                    &dropped.unwrap_or_default(),
                    0,
                    RowCounts::default(),
                )?))
            }
            Statement::CreateTable(create) => {
                crate::ddl::refuse_ignored_clauses(&create)?;
                let plan = |query| async move {
                    let schema = self.statement_schema();
                    self.plan_frame(Statement::Query(query), &schema, Vec::new(), Binding::Now)
                        .await
                };
                let (name, version, inserted) =
                    crate::ddl::create_table_as(&self.warehouse, create, plan).await?;
                let counts = RowCounts {
                    inserted,
                    ..RowCounts::default()
                };
                Ok(StatementOutput::single(change_batch(&name, version, counts)?))
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => {
                let mut dropped = None;
                for name in &names {
                    let name = table_name(name)?;
                    let version = match self.warehouse.table(&name).await {
                        Ok(table) => table.version(),
                        Err(silt_table::TableError::NotFound { .. })
                            if self.warehouse.view(&name).await?.is_some() =>
                        {
                            return Err(SqlError::Invalid(format!(
                                "'{name}' is a view, not a table: use DROP VIEW {name}"
                            )));
                        }
                        Err(silt_table::TableError::NotFound { .. }) if if_exists => continue,
                        Err(e) => return Err(e.into()),
                    };
                    self.warehouse.drop_table(&name).await?;
                    dropped = Some((name, version));
                }
                let (name, version) = dropped.unwrap_or_default();
                Ok(StatementOutput::single(change_batch(
                    &name,
                    version,
                    RowCounts::default(),
                )?))
            }
            Statement::ShowCreate {
                obj_type: ShowCreateObject::Table | ShowCreateObject::View,
                obj_name,
            } => {
                let name = table_name(&obj_name)?;
                Ok(StatementOutput::single(
                    crate::show_create::show_create(&self.warehouse, &name).await?,
                ))
            }
            Statement::ShowCreate { obj_type, .. } => Err(SqlError::Unsupported(format!(
                "SHOW CREATE {obj_type}: silt has tables and views only"
            ))),
            Statement::Truncate(truncate) => self.truncate(truncate).await,
            Statement::Insert(insert) => {
                let name = match &insert.table {
                    datafusion::sql::sqlparser::ast::TableObject::TableName(name) => table_name(name)?,
                    other => return Err(SqlError::Unsupported(format!("INSERT INTO {other}"))),
                };
                let schema = self.statement_schema();
                if schema.resolve(&name).await?.is_none() && schema.view(&name).await?.is_some() {
                    return Err(dml::view_target(&name));
                }
                let (state, plan) = self
                    .plan_logical(Statement::Insert(insert), &schema, params, Binding::Now)
                    .await?;
                // DataFusion planned the rows (column list, defaults as
                // NULL, casts to the table's types); silt-table writes them,
                // under the write gate and with the table's bloom filters.
                let LogicalPlan::Dml(DmlStatement {
                    op: WriteOp::Insert(op),
                    input,
                    ..
                }) = plan
                else {
                    return Err(SqlError::Execution(format!(
                        "INSERT INTO {name} did not plan to an insert"
                    )));
                };
                let mode = match op {
                    InsertOp::Append => silt_table::WriteMode::Append,
                    InsertOp::Overwrite => silt_table::WriteMode::Overwrite,
                    InsertOp::Replace => {
                        return Err(SqlError::Unsupported(format!("REPLACE INTO {name}")));
                    }
                };
                let table = match schema.pinned(&name) {
                    Some(table) => table,
                    None => self.warehouse.table(&name).await?,
                };
                let (after, rows) = table
                    .change()
                    .with_session(Arc::new(state))
                    .insert(Arc::unwrap_or_clone(input), mode)
                    .await?;
                let counts = RowCounts {
                    inserted: i64::try_from(rows).unwrap_or(i64::MAX),
                    ..RowCounts::default()
                };
                Ok(StatementOutput::single(change_batch(
                    &name,
                    after.version(),
                    counts,
                )?))
            }
            Statement::Update(update) => {
                let change = retry_conflicts(|| async {
                    dml::plan_update(&self.base, &self.schema_binding(&params), update.clone())
                        .await?
                        .run()
                        .await
                })
                .await?;
                change_output(change)
            }
            Statement::Delete(delete) => {
                let change = retry_conflicts(|| async {
                    dml::plan_delete(&self.base, &self.schema_binding(&params), delete.clone())
                        .await?
                        .run()
                        .await
                })
                .await?;
                change_output(change)
            }
            Statement::Merge(merge) => {
                let change = retry_conflicts(|| async {
                    merge::plan_merge(&self.base, &self.schema_binding(&params), merge.clone())
                        .await?
                        .run()
                        .await
                })
                .await?;
                change_output(change)
            }
            other => self.plan_and_run(other, &self.statement_schema()).await,
        }
    }

    /// `TRUNCATE [TABLE] [IF EXISTS] t, …`: each table's rows removed in one
    /// commit (its history kept, as DELETE without WHERE keeps it).
    async fn truncate(&self, truncate: Truncate) -> Result<StatementOutput> {
        let refused = if truncate.partitions.is_some() {
            Some("PARTITION (…) (use DELETE FROM t WHERE <partition predicate>)")
        } else if truncate.identity.is_some() || truncate.cascade.is_some() {
            Some("RESTART/CONTINUE IDENTITY, CASCADE and RESTRICT")
        } else if truncate.on_cluster.is_some() {
            Some("ON CLUSTER")
        } else if truncate.table_names.iter().any(|t| t.only || t.has_asterisk) {
            Some("ONLY and `*`")
        } else {
            None
        };
        if let Some(clause) = refused {
            return Err(SqlError::Unsupported(format!(
                "TRUNCATE with {clause}; write TRUNCATE TABLE <table>"
            )));
        }
        let mut last = None;
        for target in &truncate.table_names {
            let name = table_name(&target.name)?;
            let table = match self.warehouse.table(&name).await {
                Ok(table) => table,
                Err(silt_table::TableError::NotFound { .. })
                    if self.warehouse.view(&name).await?.is_some() =>
                {
                    return Err(dml::view_target(&name));
                }
                Err(silt_table::TableError::NotFound { .. }) if truncate.if_exists => continue,
                Err(e) => return Err(e.into()),
            };
            let (after, counts) = table
                .change()
                .with_metadata([("silt.statement".to_string(), "TRUNCATE".into())])
                .delete(None)
                .await?;
            let deleted = counts.deleted.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
            last = Some((name, after.version(), deleted));
        }
        let (name, version, deleted) = last.unwrap_or_default();
        Ok(StatementOutput::single(change_batch(
            &name,
            version,
            RowCounts {
                deleted,
                ..RowCounts::default()
            },
        )?))
    }

    /// A fresh catalog schema for one statement.
    pub(crate) fn statement_schema(&self) -> Arc<StatementSchema> {
        Arc::new(StatementSchema::new(
            self.warehouse.clone(),
            self.base.clone(),
            crate::view::expander(),
        ))
    }

    /// A fresh catalog schema for one statement whose `$n` are `params`.
    fn schema_binding(&self, params: &[ScalarValue]) -> Arc<StatementSchema> {
        let schema = StatementSchema::new(self.warehouse.clone(), self.base.clone(), crate::view::expander())
            .with_params(crate::params::Params::bound(params.to_vec()));
        Arc::new(schema)
    }

    /// The types of the `$n` of an INSERT, UPDATE, DELETE or MERGE, by
    /// position, planned without values (nothing runs).
    async fn dml_parameter_types(&self, statement: Statement) -> Result<Vec<(usize, DataType)>> {
        if let Statement::Insert(_) = statement {
            let (_, plan) = self
                .plan_logical(statement, &self.statement_schema(), Vec::new(), Binding::Later)
                .await?;
            return Ok(plan
                .get_parameter_types()?
                .into_iter()
                .map(|(name, data_type)| {
                    let position = name
                        .trim_start_matches('$')
                        .parse::<usize>()
                        .unwrap_or(usize::MAX);
                    (position, data_type.unwrap_or(DataType::Null))
                })
                .collect());
        }
        let schema = Arc::new(
            StatementSchema::new(self.warehouse.clone(), self.base.clone(), crate::view::expander())
                .with_params(crate::params::Params::describing()),
        );
        match statement {
            Statement::Update(update) => drop(dml::plan_update(&self.base, &schema, update).await?),
            Statement::Delete(delete) => drop(dml::plan_delete(&self.base, &schema, delete).await?),
            Statement::Merge(merge) => drop(merge::plan_merge(&self.base, &schema, merge).await?),
            _ => {}
        }
        Ok(schema.params().inferred())
    }

    /// Plans with DataFusion over the statement's catalog and runs the plan.
    async fn plan_and_run(
        &self,
        statement: Statement,
        schema: &Arc<StatementSchema>,
    ) -> Result<StatementOutput> {
        let frame = self
            .plan_frame(statement, schema, Vec::new(), Binding::Now)
            .await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(StatementOutput { schema, batches })
    }

    /// The DataFusion frame of a statement, with `$1…` bound to `params`.
    pub(crate) async fn plan_frame(
        &self,
        statement: Statement,
        schema: &Arc<StatementSchema>,
        params: Vec<ScalarValue>,
        binding: Binding,
    ) -> Result<DataFrame> {
        let (state, plan) = self.plan_logical(statement, schema, params, binding).await?;
        let ctx = SessionContext::new_with_state(state);
        Ok(ctx.execute_logical_plan(plan).await?)
    }

    /// The session and logical plan of a statement, with `$1…` bound to `params`.
    async fn plan_logical(
        &self,
        mut statement: Statement,
        schema: &Arc<StatementSchema>,
        params: Vec<ScalarValue>,
        binding: Binding,
    ) -> Result<(SessionState, LogicalPlan)> {
        pin_versions(&mut statement, schema).await?;
        let state = SessionStateBuilder::new_from_existing(self.base.as_ref().clone())
            .with_catalog_list(statement_catalogs(schema)?)
            .build();
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        let mut plan = crate::listing::readable_listings(plan, schema)?;
        // `$1` … `$n`: the highest placeholder says how many values are needed.
        let used = plan
            .get_parameter_types()?
            .keys()
            .filter_map(|name| name.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        if params.len() != used && !(params.is_empty() && binding == Binding::Later) {
            return Err(SqlError::Invalid(format!(
                "{} parameters sent, the statement uses {used} ($1…${used})",
                params.len()
            )));
        }
        if !params.is_empty() {
            // Values are bound into the plan as literals: never spliced into text.
            plan = plan.with_param_values(ParamValues::List(params.into_iter().map(Into::into).collect()))?;
        }
        Ok((state, plan))
    }

    /// Runs one statement and streams its result: queries are not collected
    /// (rows flow as the scan produces them); other statements run to
    /// completion and stream their one-row answer. Positional parameters
    /// (`$1`, `$2`, …) are bound to `params` in queries and EXPLAIN.
    pub async fn execute_stream(&self, sql: &str, params: Vec<ScalarValue>) -> Result<StatementStream> {
        self.execute_script_stream(self.parse(sql)?, params).await
    }

    /// [`execute_stream`](Self::execute_stream) for a parsed script.
    pub async fn execute_script_stream(
        &self,
        script: Script,
        params: Vec<ScalarValue>,
    ) -> Result<StatementStream> {
        let mut statements = script.statements;
        if statements.len() != 1 {
            return Err(SqlError::Invalid(format!(
                "send one statement per request (got {})",
                statements.len()
            )));
        }
        let statement = statements.remove(0);
        if is_streamable(&statement)
            && let Parsed::Sql(statement) = statement
        {
            let frame = self
                .plan_frame(*statement, &self.statement_schema(), params, Binding::Now)
                .await?;
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let stream = frame.execute_stream().await?;
            return Ok(StatementStream { schema, stream });
        }
        let output = self.run(statement, params).await?;
        let stream = MemoryStream::try_new(output.batches, output.schema.clone(), None)?;
        Ok(StatementStream {
            schema: output.schema,
            stream: Box::pin(stream),
        })
    }

    /// Plans a query without running it: its result columns and the types
    /// of its `$n` parameters (for prepared statements, e.g. Flight SQL).
    /// Other statements prepare to an empty shape and run when executed.
    pub async fn prepare(&self, sql: &str) -> Result<Prepared> {
        self.prepare_script(self.parse(sql)?).await
    }

    /// [`prepare`](Self::prepare) for a parsed script.
    pub async fn prepare_script(&self, script: Script) -> Result<Prepared> {
        let mut statements = script.statements;
        if statements.len() != 1 {
            return Err(SqlError::Invalid("prepare one statement at a time".to_string()));
        }
        let statement = match statements.remove(0) {
            Parsed::Sql(statement) if matches!(statement.as_ref(), Statement::Query(_)) => statement,
            // Runs when executed, but its `$n` types are known now: a
            // client (psql's \bind, psycopg, ADBC) sends values in them.
            Parsed::Sql(statement) if takes_params(&statement) => {
                let parameters = self.dml_parameter_types(*statement).await?;
                return Ok(Prepared {
                    schema: Arc::new(Schema::empty()),
                    parameters: parameter_schema(parameters),
                    query: false,
                });
            }
            // Anything else runs when executed; its answer's columns are
            // known only then, so none are promised here.
            _ => {
                return Ok(Prepared {
                    schema: Arc::new(Schema::empty()),
                    parameters: Arc::new(Schema::empty()),
                    query: false,
                });
            }
        };
        let frame = self
            .plan_frame(*statement, &self.statement_schema(), Vec::new(), Binding::Later)
            .await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let parameters = frame
            .logical_plan()
            .get_parameter_types()?
            .into_iter()
            .map(|(name, data_type)| {
                let position = name
                    .trim_start_matches('$')
                    .parse::<usize>()
                    .unwrap_or(usize::MAX);
                (position, data_type.unwrap_or(DataType::Null))
            })
            .collect();
        Ok(Prepared {
            schema,
            parameters: parameter_schema(parameters),
            query: true,
        })
    }
}

/// `$1`, `$2`, … as fields named so, in order; a position no placeholder
/// has (`$1` and `$3` only) is a NULL-typed field, so the n-th field is `$n`.
fn parameter_schema(mut parameters: Vec<(usize, DataType)>) -> SchemaRef {
    parameters.sort_by_key(|(position, _)| *position);
    let highest = parameters
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != usize::MAX)
        .max()
        .unwrap_or(0);
    let fields: Vec<Field> = (1..=highest)
        .map(|n| {
            let data_type = parameters
                .iter()
                .find(|(p, _)| *p == n)
                .map_or(DataType::Null, |(_, t)| t.clone());
            Field::new(format!("${n}"), data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Whether `statement` may carry `$n` values outside a query: INSERT,
/// UPDATE, DELETE, MERGE.
fn takes_params(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)
    )
}

/// Whether a plan's `$n` placeholders must be bound when it is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The plan runs now: every placeholder needs its value (else 400, not
    /// a failure while running).
    Now,
    /// A prepared statement: values come with each execution.
    Later,
}

/// A planned query's shape.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Result columns.
    pub schema: SchemaRef,
    /// `$1`, `$2`, … in order, with the types DataFusion inferred.
    pub parameters: SchemaRef,
    /// Whether the statement is a query (rows to stream); anything else
    /// changes or inspects the warehouse and runs only when executed.
    pub query: bool,
}

/// A statement's result as a stream of batches.
pub struct StatementStream {
    /// Result columns.
    pub schema: SchemaRef,
    /// The rows, produced as they are computed.
    pub stream: SendableRecordBatchStream,
}

impl std::fmt::Debug for StatementStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// The one-row answer of a statement that changed a table: its new version
/// and row counts (affected = inserted + updated + deleted).
pub(crate) fn change_batch(table: &str, version: u64, counts: RowCounts) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("num_affected_rows", DataType::Int64, false),
        Field::new("num_inserted_rows", DataType::Int64, false),
        Field::new("num_updated_rows", DataType::Int64, false),
        Field::new("num_deleted_rows", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![table])),
        Arc::new(Int64Array::from(vec![version as i64])),
        Arc::new(Int64Array::from(vec![counts.affected()])),
        Arc::new(Int64Array::from(vec![counts.inserted])),
        Arc::new(Int64Array::from(vec![counts.updated])),
        Arc::new(Int64Array::from(vec![counts.deleted])),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| SqlError::Execution(e.to_string()))
}

impl Script {
    /// The tables this script drops (`DROP TABLE`, `CREATE OR REPLACE
    /// TABLE`), so a service that keeps state per table (the ingest
    /// committers) can forget it once the script has run.
    pub fn dropped_tables(&self) -> Vec<String> {
        let mut names = Vec::new();
        for statement in &self.statements {
            let Parsed::Sql(statement) = statement else {
                continue;
            };
            match statement.as_ref() {
                Statement::Drop {
                    object_type: ObjectType::Table,
                    names: dropped,
                    ..
                } => names.extend(dropped.iter().filter_map(|n| table_name(n).ok())),
                Statement::CreateTable(create) if create.or_replace => {
                    names.extend(table_name(&create.name).ok());
                }
                _ => {}
            }
        }
        names
    }
}

/// Whether `statement` reads or writes any table in `names`.
fn names_any(statement: &Statement, names: &std::collections::HashSet<String>) -> bool {
    use datafusion::sql::sqlparser::ast::visit_relations;
    let found = visit_relations(statement, |relation| {
        if table_name(relation).is_ok_and(|name| names.contains(&name)) {
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found.is_break()
}

/// The one-row answer of a statement that changed a table.
/// How many times an UPDATE, DELETE or MERGE that lost a commit conflict
/// is planned again and re-run.
const DML_CONFLICT_RETRIES: usize = 3;

/// Runs a DML statement; when its commit loses a conflict (another DML or
/// an automatic compaction removed files it had read), it committed
/// nothing, so it is planned again on the newest snapshot (a fresh
/// statement schema) and re-run, as a later statement would be. Only after
/// [`DML_CONFLICT_RETRIES`] lost conflicts does the caller see 409.
async fn retry_conflicts<F, Fut>(mut attempt: F) -> Result<dml::Change>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<dml::Change>>,
{
    let mut lost = 0;
    loop {
        match attempt().await {
            Err(error) if error.kind() == silt_table::ErrorKind::Conflict && lost < DML_CONFLICT_RETRIES => {
                lost += 1;
                tracing::info!(
                    attempt = lost,
                    "DML statement lost a commit conflict; planning it again"
                );
            }
            outcome => return outcome,
        }
    }
}

fn change_output(change: dml::Change) -> Result<StatementOutput> {
    Ok(StatementOutput::single(change_batch(
        &change.table,
        change.version,
        change.counts,
    )?))
}
