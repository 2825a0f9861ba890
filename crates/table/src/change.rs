//! Every operation that changes a table, in one place: INSERT of a planned
//! query, UPDATE, DELETE, MERGE, OPTIMIZE, VACUUM, RESTORE, ADD COLUMNS, and
//! the commit of a rewrite's actions (erasure). Appends of batches are
//! [`Table::write`](crate::Table::write).
//!
//! Each operation here obeys the rules every write of silt obeys, so no
//! caller has to remember them:
//!
//! - it holds the table's write gate (see `gate.rs`) from its first data
//!   file until its commit lands: shared for writers, alone for VACUUM, which
//!   deletes files no version references — a running writer's among them;
//! - its data files carry the table's writer properties (bloom filters on
//!   `silt.erasure.subject_columns`);
//! - its commit uses the hot-path settings of [`commit_properties`] (no
//!   expired-log listing on every commit);
//! - its new rows are checked against the table's NOT NULL columns and CHECK
//!   constraints, a violation named (see `constraints.rs`);
//! - its errors are classified once, by type ([`crate::TableError::operation`]).
//!
//! ```no_run
//! # async fn demo(table: silt_table::Table) -> silt_table::Result<()> {
//! use silt_table::deltalake::datafusion::prelude::{col, lit};
//! let (after, counts) = table.change().delete(Some(col("id").eq(lit(7)))).await?;
//! println!("version {}: {:?} rows deleted", after.version(), counts.deleted);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::common::{Column, ScalarValue};
use deltalake::datafusion::execution::SessionStateBuilder;
use deltalake::datafusion::execution::context::SessionState;
use deltalake::datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use deltalake::datafusion::prelude::DataFrame;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructField};
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, FilterLiteral};

use crate::Violation;
use crate::constraints::Enforcer;
use crate::error::{Result, TableError};
use crate::{ExclusiveWriteGuard, Table, WriteMode};

pub use deltalake::operations::optimize::Metrics as OptimizeMetrics;
pub use deltalake::operations::restore::RestoreMetrics;

/// Commit properties of every commit silt makes: `metadata` in
/// `commitInfo` (never data values) and no expired-log cleanup, which would
/// list `_delta_log` on every commit and could delete history an erasure
/// purge accounts for. deltalake's conflict retries stay on.
pub fn commit_properties(metadata: HashMap<String, serde_json::Value>) -> CommitProperties {
    CommitProperties::default()
        .with_metadata(metadata)
        .with_cleanup_expired_logs(Some(false))
}

/// How often an operation's commit is retried at the next version after
/// losing the race for one (deltalake's default is 15). Each retry first
/// checks the winning commits for a real conflict; blind appends are none, so
/// under streaming ingest (tens of commits a second) an UPDATE that took a
/// few seconds needs more than 15 attempts to land (seen: "Failed to commit
/// transaction: 15" as a 409 with no conflict at all).
const OPERATION_COMMIT_RETRIES: usize = 200;

/// Rows and files one operation touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    /// Rows added (INSERT, MERGE's NOT MATCHED … INSERT).
    pub inserted: u64,
    /// Rows changed in place.
    pub updated: u64,
    /// Rows removed; `None` when deltalake dropped whole files without row
    /// counts in their statistics.
    pub deleted: Option<u64>,
    /// Data files the commit added.
    pub files_added: u64,
    /// Data files the commit removed.
    pub files_removed: u64,
}

/// One `WHEN` clause of a MERGE, with expressions planned by the caller
/// against the target (`target_alias`) and source (`source_alias`) columns.
#[derive(Debug, Clone)]
pub enum MergeClause {
    /// `WHEN MATCHED [AND p] THEN UPDATE SET c = e, …`
    MatchedUpdate(Option<Expr>, Vec<(String, Expr)>),
    /// `WHEN MATCHED [AND p] THEN DELETE`
    MatchedDelete(Option<Expr>),
    /// `WHEN NOT MATCHED [AND p] THEN INSERT (c, …) VALUES (e, …)`
    Insert(Option<Expr>, Vec<(String, Expr)>),
    /// `WHEN NOT MATCHED BY SOURCE [AND p] THEN UPDATE SET …`
    SourceUpdate(Option<Expr>, Vec<(String, Expr)>),
    /// `WHEN NOT MATCHED BY SOURCE [AND p] THEN DELETE`
    SourceDelete(Option<Expr>),
}

/// What VACUUM deletes.
#[derive(Debug, Clone, Copy)]
pub struct VacuumSpec {
    /// Keep files removed less than this long ago.
    pub retention: chrono::Duration,
    /// Only list what would be deleted.
    pub dry_run: bool,
    /// Only files the log once referenced (`LITE`), not every unreferenced file.
    pub lite: bool,
    /// Refuse a retention below the table's `delta.deletedFileRetentionDuration`.
    pub enforce_retention: bool,
}

/// An operation on one table, configured before it runs: see the module docs.
#[must_use = "a Change does nothing until one of its operations is awaited"]
pub struct Change<'a> {
    table: &'a Table,
    session: Option<Arc<SessionState>>,
    metadata: HashMap<String, serde_json::Value>,
    transactions: Vec<crate::ProducerTxn>,
    holding: bool,
}

/// The gate an operation holds while it runs (dropped at its end).
enum Held {
    Shared(#[allow(dead_code)] crate::SharedWriteGuard),
    Exclusive(#[allow(dead_code)] crate::ExclusiveWriteGuard),
    ByCaller,
}

impl Table {
    /// Starts an operation that changes this table (see [`Change`]).
    pub fn change(&self) -> Change<'_> {
        Change {
            table: self,
            session: None,
            metadata: HashMap::new(),
            transactions: Vec::new(),
            holding: false,
        }
    }
}

impl<'a> Change<'a> {
    /// Plans and scans with `session` (its catalog, object stores, memory
    /// pool), plus deltalake's query planner, which its operations' plan
    /// nodes need.
    pub fn with_session(mut self, session: Arc<SessionState>) -> Self {
        let state = SessionStateBuilder::new_from_existing(Arc::unwrap_or_clone(session))
            .with_query_planner(DeltaPlanner::new())
            .build();
        self.session = Some(Arc::new(state));
        self
    }

    /// Extra `commitInfo` fields (never data values).
    pub fn with_metadata(mut self, metadata: impl IntoIterator<Item = (String, serde_json::Value)>) -> Self {
        self.metadata.extend(metadata);
        self
    }

    /// Records these producers' sequences in the commit (Delta `txn`
    /// actions): a replay of the same sequences is then a duplicate.
    pub fn with_transactions(mut self, transactions: &[crate::ProducerTxn]) -> Self {
        self.transactions.extend_from_slice(transactions);
        self
    }

    /// The caller holds this table's write gate alone (an erasure): the
    /// operation does not take it again, which would wait forever.
    pub fn holding(mut self, _guard: &ExclusiveWriteGuard) -> Self {
        self.holding = true;
        self
    }

    async fn gate(&self, exclusive: bool) -> Held {
        match (self.holding, exclusive) {
            (true, _) => Held::ByCaller,
            (false, false) => Held::Shared(self.table.write_gate().await),
            (false, true) => Held::Exclusive(self.table.exclusive_write_gate().await),
        }
    }

    fn name(&self) -> &str {
        self.table.name()
    }

    fn delta(&self) -> DeltaTable {
        self.table.delta.clone()
    }

    fn props(&self) -> CommitProperties {
        commit_properties(self.metadata.clone())
            .with_application_transactions(crate::table::txn_actions(&self.transactions))
            .with_max_retries(OPERATION_COMMIT_RETRIES)
    }

    fn done(&self, delta: DeltaTable) -> Table {
        Table::new(self.table.name(), delta)
    }

    /// Appends (or, with [`WriteMode::Overwrite`], replaces the table with)
    /// the rows of `plan`, streamed: INSERT … SELECT / VALUES. The plan's
    /// columns must be the table's, in order (SQL planning casts them).
    /// Returns the new table and the number of rows written.
    pub async fn insert(self, plan: LogicalPlan, mode: WriteMode) -> Result<(Table, u64)> {
        let plan = match crate::suppress::Check::of(self.table)? {
            Some(check) => check.plan(plan)?,
            None => plan,
        };
        let save_mode = match mode {
            WriteMode::Append => SaveMode::Append,
            WriteMode::Overwrite => SaveMode::Overwrite,
        };
        // The rows do not depend on the table's other rows (an INSERT …
        // SELECT from the same table reads the statement's pinned snapshot),
        // so the commit stands on the newest version: an erasure that held
        // the gate meanwhile and deleted files is then no conflict.
        let mut props = self.props();
        if mode == WriteMode::Append && !reads_table(&plan, self.name()) {
            // Rows that read nothing of this table: a blind append, which a
            // concurrent UPDATE/DELETE/MERGE rebases onto (see Table::write).
            props = commit_properties(
                self.metadata
                    .clone()
                    .into_iter()
                    .chain([("isBlindAppend".to_string(), serde_json::Value::Bool(true))])
                    .collect(),
            );
        }
        let enforcer = crate::constraints::Enforcer::new();
        let plan = self.enforce_plan(plan, &enforcer)?;
        let _gate = self.gate(false).await;
        let mut delta = self.delta();
        delta
            .update_state()
            .await
            .map_err(|e| TableError::operation("INSERT", self.name(), e))?;
        let mut builder = delta
            .write(Vec::new())
            .with_input_plan(plan)
            .with_save_mode(save_mode)
            .with_writer_properties(self.table.writer_properties()?)
            .with_commit_properties(props);
        if let Some(session) = &self.session {
            builder = builder.with_session_state(session.clone());
        }
        let written = builder
            .await
            .map_err(|e| enforcer.classify("INSERT", self.name(), e))?;
        let after = self.done(written);
        // deltalake reports the row count only in the commit's metrics.
        let rows = after
            .history(Some(1))
            .await?
            .first()
            .and_then(|c| c.operation_metrics.as_ref())
            .and_then(|m| m.get("num_added_rows"))
            .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(0);
        Ok((after, rows))
    }

    /// `DELETE [WHERE predicate]`: rewrites the files with matching rows.
    pub async fn delete(self, predicate: Option<Expr>) -> Result<(Table, ChangeCounts)> {
        let mut builder = self
            .delta()
            .delete()
            .with_writer_properties(self.table.writer_properties()?)
            .with_commit_properties(self.props());
        if let Some(session) = &self.session {
            builder = builder.with_session_state(session.clone());
        }
        if let Some(predicate) = predicate {
            builder = builder.with_predicate(predicate);
        }
        let _gate = self.gate(false).await;
        let (deleted, metrics) = builder
            .await
            .map_err(|e| TableError::operation("DELETE", self.name(), e))?;
        let counts = ChangeCounts {
            deleted: metrics.num_deleted_rows.map(|n| n as u64),
            files_added: metrics.num_added_files as u64,
            files_removed: metrics.num_removed_files as u64,
            ..ChangeCounts::default()
        };
        Ok((self.done(deleted), counts))
    }

    /// `UPDATE SET column = value, … [WHERE predicate]`.
    pub async fn update(
        self,
        predicate: Option<Expr>,
        sets: Vec<(String, Expr)>,
    ) -> Result<(Table, ChangeCounts)> {
        let mut builder = self
            .delta()
            .update()
            .with_writer_properties(self.table.writer_properties()?)
            .with_commit_properties(self.props());
        if let Some(session) = &self.session {
            builder = builder.with_session_state(session.clone());
        }
        if let Some(predicate) = predicate {
            builder = builder.with_predicate(predicate);
        }
        let enforcer = crate::constraints::Enforcer::new();
        let column = |name: &str| Expr::Column(Column::new_unqualified(name));
        let sets = self.enforce_sets(sets, &enforcer, &column, false)?;
        for (column, value) in sets {
            builder = builder.with_update(Column::new_unqualified(column), value);
        }
        let _gate = self.gate(false).await;
        let (updated, metrics) = builder
            .await
            .map_err(|e| enforcer.classify("UPDATE", self.name(), e))?;
        let counts = ChangeCounts {
            updated: metrics.num_updated_rows as u64,
            files_added: metrics.num_added_files as u64,
            files_removed: metrics.num_removed_files as u64,
            ..ChangeCounts::default()
        };
        Ok((self.done(updated), counts))
    }

    /// `MERGE INTO` this table `USING source ON on` with `clauses` in order.
    pub async fn merge(
        self,
        source: DataFrame,
        on: Expr,
        source_alias: &str,
        target_alias: &str,
        clauses: Vec<MergeClause>,
    ) -> Result<(Table, ChangeCounts)> {
        let enforcer = crate::constraints::Enforcer::new();
        let failed = |e| enforcer.classify("MERGE", self.name(), e);
        // A source row of an erased subject neither inserts nor updates.
        let source = match crate::suppress::Check::of(self.table)? {
            Some(check) => check.frame(source)?,
            None => source,
        };
        let mut builder = self
            .delta()
            .merge(source, on)
            .with_source_alias(source_alias)
            .with_target_alias(target_alias)
            .with_writer_properties(self.table.writer_properties()?)
            .with_commit_properties(self.props());
        if let Some(session) = &self.session {
            builder = builder.with_session_state(session.clone());
        }
        for clause in clauses {
            let clause = self.enforce_clause(clause, &enforcer, target_alias)?;
            builder = match clause {
                MergeClause::MatchedUpdate(predicate, sets) => builder.when_matched_update(|mut u| {
                    if let Some(p) = predicate {
                        u = u.predicate(p);
                    }
                    for (column, value) in sets {
                        u = u.update(Column::new_unqualified(column), value);
                    }
                    u
                }),
                MergeClause::MatchedDelete(predicate) => builder.when_matched_delete(|d| match predicate {
                    Some(p) => d.predicate(p),
                    None => d,
                }),
                MergeClause::Insert(predicate, sets) => builder.when_not_matched_insert(|mut i| {
                    if let Some(p) = predicate {
                        i = i.predicate(p);
                    }
                    for (column, value) in sets {
                        i = i.set(Column::new_unqualified(column), value);
                    }
                    i
                }),
                MergeClause::SourceUpdate(predicate, sets) => {
                    builder.when_not_matched_by_source_update(|mut u| {
                        if let Some(p) = predicate {
                            u = u.predicate(p);
                        }
                        for (column, value) in sets {
                            u = u.update(Column::new_unqualified(column), value);
                        }
                        u
                    })
                }
                MergeClause::SourceDelete(predicate) => {
                    builder.when_not_matched_by_source_delete(|d| match predicate {
                        Some(p) => d.predicate(p),
                        None => d,
                    })
                }
            }
            .map_err(failed)?;
        }
        let _gate = self.gate(false).await;
        let (merged, metrics) = builder.await.map_err(failed)?;
        let counts = ChangeCounts {
            inserted: metrics.num_target_rows_inserted as u64,
            updated: metrics.num_target_rows_updated as u64,
            deleted: Some(metrics.num_target_rows_deleted as u64),
            files_added: metrics.num_target_files_added as u64,
            files_removed: metrics.num_target_files_removed as u64,
        };
        Ok((self.done(merged), counts))
    }

    /// CDC apply (SCD type 1) of `events`: see [`crate::ApplyChanges`] and
    /// the `cdc` module docs. Needs a session ([`Change::with_session`])
    /// when `events` was planned in one; otherwise a default one is used.
    pub async fn apply_changes(
        self,
        events: DataFrame,
        spec: &crate::ApplyChanges,
    ) -> Result<(Table, crate::ApplyCounts)> {
        let state = match &self.session {
            Some(state) => state.clone(),
            None => {
                let state = SessionStateBuilder::new()
                    .with_default_features()
                    .with_query_planner(DeltaPlanner::new())
                    .build();
                Arc::new(state)
            }
        };
        let events = match crate::suppress::Check::of(self.table)? {
            Some(check) => check.frame(events)?,
            None => events,
        };
        let mut transactions = self.transactions.clone();
        transactions.extend_from_slice(&spec.transactions);
        let spec = crate::ApplyChanges {
            transactions,
            ..spec.clone()
        };
        crate::cdc::apply(self.table, state, events, &spec, self.metadata.clone()).await
    }

    /// `OPTIMIZE [WHERE partition filters] [ZORDER BY columns]`.
    pub async fn optimize(
        self,
        filters: &[FilterLiteral<'_>],
        zorder: Vec<String>,
    ) -> Result<(Table, OptimizeMetrics)> {
        let optimize_type = if zorder.is_empty() {
            OptimizeType::Compact
        } else {
            OptimizeType::ZOrder(zorder)
        };
        let delta = self.delta();
        let mut builder = delta
            .optimize()
            .with_filters(filters)
            .with_type(optimize_type)
            .with_writer_properties(self.table.writer_properties()?)
            .with_commit_properties(self.props());
        if let Some(session) = &self.session {
            builder = builder.with_session_state(session.clone());
        }
        let _gate = self.gate(false).await;
        let (optimized, metrics) = builder
            .await
            .map_err(|e| TableError::operation("OPTIMIZE", self.name(), e))?;
        Ok((self.done(optimized), metrics))
    }

    /// `VACUUM`: deletes data files no version within the retention needs.
    /// Holds the write gate alone (unless a dry run): with a short retention
    /// it would delete the not yet committed file of a running writer.
    /// Returns the table and the deleted files' paths, sorted.
    pub async fn vacuum(self, spec: VacuumSpec) -> Result<(Table, Vec<String>)> {
        let mode = if spec.lite {
            VacuumMode::Lite
        } else {
            VacuumMode::Full
        };
        let builder = self
            .delta()
            .vacuum()
            .with_retention_period(spec.retention)
            .with_enforce_retention_duration(spec.enforce_retention)
            .with_mode(mode)
            .with_dry_run(spec.dry_run)
            .with_commit_properties(self.props());
        let _gate = self.gate(!spec.dry_run).await;
        let (mut vacuumed, metrics) = builder
            .await
            .map_err(|e| TableError::operation("VACUUM", self.name(), e))?;
        // VACUUM's own commits may not have advanced the handle.
        vacuumed
            .update_state()
            .await
            .map_err(|e| TableError::operation("VACUUM", self.name(), e))?;
        let mut files = metrics.files_deleted;
        files.sort();
        Ok((self.done(vacuumed), files))
    }

    /// `RESTORE … TO VERSION AS OF version`. Refuses (not found) when files
    /// of that version were vacuumed, checked here by storage's own answer.
    pub async fn restore(self, version: u64) -> Result<(Table, RestoreMetrics)> {
        let target = self.table.at_version(version).await?;
        if !target.vacuumed_files(self.table, 1).await?.is_empty() {
            return Err(TableError::FilesVacuumed {
                table: self.name().to_string(),
                version,
            });
        }
        let builder = self
            .delta()
            .restore()
            .with_version_to_restore(version)
            .with_commit_properties(self.props());
        let _gate = self.gate(false).await;
        let (restored, metrics) = builder
            .await
            .map_err(|e| TableError::operation("RESTORE", self.name(), e))?;
        Ok((self.done(restored), metrics))
    }

    /// `ALTER TABLE … ADD COLUMNS`: new nullable columns, in one commit.
    pub async fn add_columns(self, fields: Vec<StructField>) -> Result<Table> {
        let builder = self
            .delta()
            .add_columns()
            .with_fields(fields)
            .with_commit_properties(self.props());
        let _gate = self.gate(false).await;
        let altered = builder
            .await
            .map_err(|e| TableError::operation("ALTER TABLE", self.name(), e))?;
        Ok(self.done(altered))
    }

    /// `ALTER TABLE … ADD CONSTRAINT name CHECK (expression)` (deltalake's
    /// add-constraint operation: it scans every row and commits the
    /// `delta.constraints.<name>` property with writer version 3 or the
    /// `checkConstraints` feature). Refused when the expression does not
    /// plan as a boolean over the table's columns, when the name is taken,
    /// or when an existing row violates it (then nothing is committed).
    /// Holds the write gate alone, so no writer of this process adds a
    /// violating row between the scan and the commit.
    pub async fn add_constraint(self, name: &str, expression: &str) -> Result<Table> {
        let name = crate::validate_constraint_name(self.name(), name)?;
        if self.table.check_constraints()?.iter().any(|c| c.name == name) {
            return Err(TableError::InvalidDefinition {
                table: self.name().to_string(),
                reason: format!("a constraint named '{name}' exists; drop it first"),
            });
        }
        let constraint = crate::CheckConstraint {
            name: name.clone(),
            expression: expression.to_string(),
        };
        let schema = self.table.schema()?;
        let df_schema = deltalake::datafusion::common::DFSchema::try_from(schema.as_ref().clone())
            .map_err(|e| TableError::operation("ALTER TABLE", self.name(), e.into()))?;
        let session = SessionStateBuilder::new().with_default_features().build();
        crate::constraints::plan_check(self.name(), &constraint, &df_schema, &session)?;
        let _gate = self.gate(true).await;
        let added = self
            .delta()
            .add_constraint()
            .with_constraint(name.clone(), expression.to_string())
            .with_commit_properties(self.props())
            .await;
        match added {
            Ok(added) => Ok(self.done(added)),
            // deltalake's refusal quotes the violating rows as text; ask
            // the rows ourselves which it was.
            Err(error) => match self.table.violates(&constraint).await {
                Ok(true) => Err(TableError::ConstraintViolated {
                    table: self.name().to_string(),
                    violation: Violation::Check(name),
                }),
                // The expression planned above, so a generic failure is
                // deltalake's SQL formatter, which knows fewer functions
                // than its parser (e.g. not `length`).
                _ => match error {
                    deltalake::DeltaTableError::Generic(reason) => Err(TableError::InvalidDefinition {
                        table: self.name().to_string(),
                        reason: format!(
                            "CHECK constraint '{name}' ({expression}) cannot be stored: {reason}; \
                             write it with comparisons, AND/OR/NOT, IS [NOT] NULL, IN, BETWEEN, LIKE, CASE and casts"
                        ),
                    }),
                    error => Err(TableError::operation("ALTER TABLE", self.name(), error)),
                },
            },
        }
    }

    /// `ALTER TABLE … DROP CONSTRAINT [IF EXISTS] name`. Without
    /// `if_exists`, an unknown name is refused; with it, nothing is
    /// committed and the table is returned as it is.
    pub async fn drop_constraint(self, name: &str, if_exists: bool) -> Result<Table> {
        let name = crate::validate_constraint_name(self.name(), name)?;
        if !self.table.check_constraints()?.iter().any(|c| c.name == name) {
            if if_exists {
                return Ok(self.table.clone());
            }
            return Err(TableError::InvalidDefinition {
                table: self.name().to_string(),
                reason: format!(
                    "there is no constraint named '{name}' (DROP CONSTRAINT IF EXISTS ignores that)"
                ),
            });
        }
        let _gate = self.gate(false).await;
        let dropped = self
            .delta()
            .drop_constraints()
            .with_constraint(name)
            .with_commit_properties(self.props())
            .await
            .map_err(|e| TableError::operation("ALTER TABLE", self.name(), e))?;
        Ok(self.done(dropped))
    }

    /// `CREATE OR REPLACE TABLE`: one commit that gives the table `spec`'s
    /// columns, partitioning and properties and `batches` (already in
    /// `spec.schema`) as its only rows, as Delta's REPLACE does: every
    /// current file is removed, the history stays (time travel to an older
    /// version reads the old schema and rows). The protocol never goes
    /// down: the old one is the floor of the new. Rows are checked against
    /// the new NOT NULL columns and CHECK constraints before anything is
    /// written, and rows of erased subjects are dropped.
    pub(crate) async fn replace(
        self,
        spec: &crate::TableSpec,
        batches: Vec<deltalake::arrow::record_batch::RecordBatch>,
        storage_options: &HashMap<String, String>,
    ) -> Result<Table> {
        use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
        let name = self.name().to_string();
        let (schema, properties) = crate::warehouse::checked_definition(&name, spec)?;
        let kernel: deltalake::kernel::StructType =
            schema
                .as_ref()
                .try_into_kernel()
                .map_err(|e| TableError::InvalidDefinition {
                    table: name.clone(),
                    reason: e.to_string(),
                })?;
        let checks = crate::constraints::constraints_of(&properties);
        crate::constraints::check_batches(&name, &schema, &checks, &batches)?;
        let batches = match crate::suppress::Check::with_properties(self.table, &properties)? {
            Some(check) => check.batches(batches)?,
            None => batches,
        };
        let _gate = self.gate(false).await;
        let mut delta = self.delta();
        delta
            .update_state()
            .await
            .map_err(|e| TableError::operation("CREATE OR REPLACE TABLE", &name, e))?;
        let mut actions = vec![Action::Protocol(self.table.state()?.protocol().clone())];
        if batches.iter().any(|b| b.num_rows() > 0) {
            let mut writer = deltalake::writer::RecordBatchWriter::try_new(
                self.table.location().as_str(),
                schema.clone(),
                Some(spec.partition_columns.clone()),
                Some(storage_options.clone()),
            )
            .map_err(|e| TableError::delta(&name, e))?
            .with_writer_properties(crate::writer_properties(&properties));
            for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
                deltalake::writer::DeltaWriter::write(&mut writer, batch)
                    .await
                    .map_err(|e| TableError::operation("CREATE OR REPLACE TABLE", &name, e))?;
            }
            let adds = deltalake::writer::DeltaWriter::flush(&mut writer)
                .await
                .map_err(|e| TableError::operation("CREATE OR REPLACE TABLE", &name, e))?;
            actions.extend(adds.into_iter().map(Action::Add));
        }
        let replaced = delta
            .create()
            .with_table_name(name.clone())
            .with_columns(kernel.fields().cloned())
            .with_partition_columns(spec.partition_columns.clone())
            .with_configuration(properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            .with_save_mode(SaveMode::Overwrite)
            .with_raise_if_key_not_exists(false)
            .with_actions(actions)
            .with_commit_properties(self.props())
            .await
            .map_err(|e| TableError::operation("CREATE OR REPLACE TABLE", &name, e))?;
        tracing::info!(table = %name, "replaced table");
        Ok(self.done(replaced))
    }

    /// Commits `actions` (removes and adds of a rewrite whose files were
    /// written with [`Table::file_writer`]) as `operation`, checked against
    /// this handle's snapshot. Returns the new version.
    pub async fn commit_actions(self, actions: Vec<Action>, operation: DeltaOperation) -> Result<u64> {
        let snapshot = self.table.state()?.clone();
        let _gate = self.gate(false).await;
        let committed = CommitBuilder::from(self.props())
            .with_actions(actions)
            .build(Some(&snapshot), self.table.delta.log_store(), operation)
            .await
            .map_err(|e| TableError::operation("COMMIT", self.name(), e))?;
        Ok(committed.version() as u64)
    }
}

impl Change<'_> {
    /// `plan` (an INSERT's rows, the table's columns in order) with the
    /// table's NOT NULL and CHECK constraints evaluated on its rows by
    /// `enforcer`, so a violation is reported by name.
    fn enforce_plan(&self, plan: LogicalPlan, enforcer: &Enforcer) -> Result<LogicalPlan> {
        let checks = self.table.planned_checks()?;
        let schema = self.table.schema()?;
        if checks.is_empty() || plan.schema().fields().len() != schema.fields().len() {
            // Without checks nothing to name; a plan of other columns is
            // refused by deltalake's own schema check.
            return Ok(plan);
        }
        let planning = |e| TableError::operation("INSERT", self.name(), e);
        // DataFusion gives `VALUES` rows the target's nullability, so a
        // NULL for a NOT NULL column fails there, named `column1`; made
        // nullable, the row reaches the check below, which names it.
        let plan = plan
            .transform_up(|node| match node {
                LogicalPlan::Values(values) => {
                    let fields: Vec<_> = values
                        .schema
                        .iter()
                        .map(|(qualifier, field)| {
                            (
                                qualifier.cloned(),
                                Arc::new(field.as_ref().clone().with_nullable(true)),
                            )
                        })
                        .collect();
                    let schema = deltalake::datafusion::common::DFSchema::new_with_metadata(
                        fields,
                        values.schema.metadata().clone(),
                    )?;
                    Ok(Transformed::yes(LogicalPlan::Values(
                        deltalake::datafusion::logical_expr::Values {
                            schema: Arc::new(schema),
                            values: values.values,
                        },
                    )))
                }
                other => other.recompute_schema().map(Transformed::yes),
            })
            .map(|t| t.data)
            .map_err(|e| planning(e.into()))?;
        let named: Vec<Expr> = plan
            .schema()
            .iter()
            .zip(schema.fields())
            .map(|(planned, table)| Expr::Column(Column::from(planned)).alias(table.name()))
            .collect();
        let columns: Vec<Expr> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let column = Expr::Column(Column::new_unqualified(field.name()));
                if index == 0 {
                    enforcer.wrap(column, checks.clone()).alias(field.name())
                } else {
                    column
                }
            })
            .collect();
        LogicalPlanBuilder::from(plan)
            .project(named)
            .and_then(|b| b.project(columns))
            .and_then(|b| b.build())
            .map_err(|e| planning(e.into()))
    }

    /// UPDATE's (or a MERGE clause's) `sets` with the checks that the new
    /// values touch evaluated by `enforcer` on each changed row. A column
    /// not set keeps its value: `unset(c)` says how to read it (the
    /// target's column, or NULL for an inserted row). With `every`, all
    /// checks are evaluated (an insert: every column is new).
    fn enforce_sets(
        &self,
        mut sets: Vec<(String, Expr)>,
        enforcer: &Enforcer,
        unset: &dyn Fn(&str) -> Expr,
        every: bool,
    ) -> Result<Vec<(String, Expr)>> {
        if sets.is_empty() {
            return Ok(sets);
        }
        let values: HashMap<String, Expr> = sets.iter().cloned().collect();
        let checks: Vec<(Violation, Expr)> = self
            .table
            .planned_checks()?
            .into_iter()
            .filter(|(_, check)| every || check.column_refs().iter().any(|c| values.contains_key(&c.name)))
            .map(|(violation, check)| {
                let value = |name: &str| values.get(name).cloned().unwrap_or_else(|| unset(name));
                (violation, crate::constraints::substitute(check, &value))
            })
            .collect();
        if let Some((_, first)) = sets.first_mut() {
            *first = enforcer.wrap(first.clone(), checks);
        }
        Ok(sets)
    }

    /// A MERGE clause with its new rows checked (see [`Change::enforce_sets`]).
    fn enforce_clause(
        &self,
        clause: MergeClause,
        enforcer: &Enforcer,
        target_alias: &str,
    ) -> Result<MergeClause> {
        let target = |name: &str| Expr::Column(Column::new(Some(target_alias), name));
        // An inserted row's unset column is NULL of the column's type (an
        // untyped NULL would not compare with it).
        let schema = self.table.schema()?;
        let null = |name: &str| {
            let typed = schema
                .field_with_name(name)
                .ok()
                .and_then(|f| ScalarValue::try_from(f.data_type()).ok());
            Expr::Literal(typed.unwrap_or(ScalarValue::Null), None)
        };
        Ok(match clause {
            MergeClause::MatchedUpdate(p, sets) => {
                MergeClause::MatchedUpdate(p, self.enforce_sets(sets, enforcer, &target, false)?)
            }
            MergeClause::SourceUpdate(p, sets) => {
                MergeClause::SourceUpdate(p, self.enforce_sets(sets, enforcer, &target, false)?)
            }
            MergeClause::Insert(p, sets) => {
                MergeClause::Insert(p, self.enforce_sets(sets, enforcer, &null, true)?)
            }
            other => other,
        })
    }
}

/// Whether `plan` scans `table` (at any version: silt names a pinned
/// version `name@vN`), so an INSERT of its rows is not a blind append.
fn reads_table(plan: &LogicalPlan, table: &str) -> bool {
    use deltalake::datafusion::common::tree_node::TreeNodeRecursion;
    let mut reads = false;
    let walked = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let scanned = scan.table_name.table();
            if scanned == table
                || scanned
                    .strip_prefix(table)
                    .is_some_and(|rest| rest.starts_with('@'))
            {
                reads = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    // When the plan cannot be walked, assume it reads the table.
    reads || walked.is_err()
}
