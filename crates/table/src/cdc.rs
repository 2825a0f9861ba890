//! CDC apply, SCD type 1: a batch of change events (upserts and deletes,
//! each with a key and a sequence) applied to a table so that every key ends
//! up as its highest-sequence event says, whatever order or how many times
//! the events arrive.
//!
//! One apply is:
//!
//! 1. the events, reduced to the highest sequence per key (a later event of
//!    the same key in the same batch wins; a NULL sequence is refused);
//! 2. minus the events a tombstone makes stale: a key deleted at sequence
//!    `d` ignores every event at or below `d` (an upsert at `d` too), so a
//!    late update does not bring a deleted row back;
//! 3. the tombstones of this batch's deletes written first (one commit to
//!    the table's tombstone table), then
//! 4. one MERGE into the table: a matched row whose sequence is below the
//!    event's is updated or deleted; an unmatched key is inserted unless the
//!    event deletes it. Its commit carries the producers' `txn` actions, so a
//!    replayed batch is a duplicate (exactly-once, as for appends).
//!
//! Writing tombstones before the table is what makes a crash between the
//! two safe: the replay meets its own tombstones, which never hide a delete
//! at their own sequence (step 2), and applies the batch again.
//!
//! Tombstones live in a Delta table inside the table's directory,
//! `<table>/_silt_tombstones/` (Delta readers and VACUUM leave directories
//! starting with `_` alone; DROP TABLE removes it with the table). They hold
//! the key columns, the delete's sequence and when it was applied, and are
//! dropped after `silt.cdc.tombstone_retention_hours` (default 168, the
//! Delta default file retention): an event older than that window for a
//! deleted key can bring it back, as in Databricks' APPLY CHANGES.

use std::collections::HashMap;
use std::ops::Not;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::datafusion::common::{Column, JoinType};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::execution::context::SessionState;
use deltalake::datafusion::functions_aggregate::expr_fn::count;
use deltalake::datafusion::functions_window::expr_fn::row_number;
use deltalake::datafusion::logical_expr::{Expr, ExprFunctionExt, col, lit};
use deltalake::datafusion::prelude::{DataFrame, SessionContext};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTableBuilder, DeltaTableError};

use crate::change::MergeClause;
use crate::error::{Result, TableError};
use crate::{ProducerTxn, Table};

/// The table property that sets how long tombstones are kept, in hours.
pub const TOMBSTONE_RETENTION_PROPERTY: &str = "silt.cdc.tombstone_retention_hours";
/// Default tombstone retention: Delta's default `deletedFileRetentionDuration`.
pub const DEFAULT_TOMBSTONE_RETENTION_HOURS: i64 = 168;
/// The tombstone table's directory inside the table's.
const TOMBSTONES_DIR: &str = "_silt_tombstones/";
/// Internal columns (never a user column: `__silt_` is reserved).
const DELETE_FLAG: &str = "__silt_delete";
const ROW_NUMBER: &str = "__silt_rn";
const ARRIVAL: &str = "__silt_arrival";
const TOMB_SEQUENCE: &str = "__silt_sequence";
const TOMB_DELETED_AT: &str = "__silt_deleted_at";
const TOMB_PREFIX: &str = "__silt_tomb_";
const SOURCE: &str = "source";
const TARGET: &str = "target";

/// What a CDC apply needs to know about its events.
#[derive(Debug, Clone)]
pub struct ApplyChanges {
    /// Columns that identify a row (in the events and the table).
    pub keys: Vec<String>,
    /// The column that orders a key's events (in the events and the table):
    /// an event applies only when it is above the row's and any tombstone's.
    /// `None`: the events are in order, the last of a key wins and always
    /// applies (no ordering across applies, no tombstones).
    pub sequence: Option<String>,
    /// Over the events' columns: true for an event that deletes its key.
    /// `None`: every event is an upsert.
    pub delete_when: Option<Expr>,
    /// The table columns an upsert writes; `None`: every table column the
    /// events have. Columns left out keep their value on update and are
    /// NULL on insert.
    pub columns: Option<Vec<String>>,
    /// Producer sequences recorded in the table's commit (exactly-once).
    pub transactions: Vec<ProducerTxn>,
}

/// What one apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Events received.
    pub events: u64,
    /// Events left after keeping the newest per key and dropping those a
    /// tombstone makes stale (the rest changed nothing).
    pub newest: u64,
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Tombstones written (or moved to a higher sequence).
    pub tombstones: u64,
}

impl ApplyCounts {
    /// Events that changed nothing: older than the row, duplicates, or a
    /// delete of a key that is not there.
    pub fn unchanged(&self) -> u64 {
        self.events - (self.inserted + self.updated + self.deleted).min(self.events)
    }
}

fn rejected(table: &str, reason: String) -> TableError {
    TableError::Rejected {
        op: "APPLY CHANGES",
        table: table.to_string(),
        reason,
    }
}

fn qualified(qualifier: &str, name: &str) -> Expr {
    Expr::Column(Column::new(Some(qualifier), name))
}

fn field<'s>(schema: &'s Schema, name: &str, side: &str, table: &str) -> Result<&'s Field> {
    schema
        .field_with_name(name)
        .map_err(|_| rejected(table, format!("column '{name}' is not in the {side}")))
}

impl Table {
    /// The URL of this table's tombstone table.
    fn tombstones_url(&self) -> Result<url::Url> {
        self.location()
            .join(TOMBSTONES_DIR)
            .map_err(|e| TableError::InvalidLocation {
                location: self.location().to_string(),
                reason: e.to_string(),
            })
    }

    fn tombstones_builder(&self) -> Result<DeltaTableBuilder> {
        let url = self.tombstones_url()?;
        let root = self.delta.log_store().root_object_store(None);
        DeltaTableBuilder::from_url(url.clone())
            .map(|b| b.with_storage_backend(root, url))
            .map_err(|source| TableError::delta(self.name(), source))
    }

    /// This table's tombstones (see the module docs), if any delete was
    /// ever applied by CDC; the erasure reaches them here.
    pub async fn tombstones(&self) -> Result<Option<Table>> {
        let mut delta = self
            .tombstones_builder()?
            .build()
            .map_err(|source| TableError::delta(self.name(), source))?;
        if !delta
            .verify_deltatable_existence()
            .await
            .map_err(|source| TableError::delta(self.name(), source))?
        {
            return Ok(None);
        }
        delta
            .load()
            .await
            .map_err(|source| TableError::delta(self.name(), source))?;
        Ok(Some(Table::new(&tombstones_name(self.name()), delta)))
    }

    /// Creates the tombstone table for these key columns (types from the
    /// table) and sequence type. Subject columns among the keys stay
    /// subject columns there (bloom filters; the erasure finds them).
    async fn create_tombstones(&self, keys: &[Field], sequence: &DataType) -> Result<Table> {
        let mut fields: Vec<Field> = keys.iter().map(|f| f.clone().with_nullable(true)).collect();
        fields.push(Field::new(TOMB_SEQUENCE, sequence.clone(), false));
        fields.push(Field::new(
            TOMB_DELETED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ));
        let schema = crate::types::delta_compatible_schema(&Arc::new(Schema::new(fields)))
            .map_err(|reason| rejected(self.name(), reason))?;
        let kernel: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| rejected(self.name(), e.to_string()))?;
        let subject_keys: Vec<String> = crate::subject_columns(&self.properties()?)
            .into_iter()
            .filter(|c| keys.iter().any(|k| k.name() == c))
            .collect();
        let mut configuration = HashMap::new();
        if !subject_keys.is_empty() {
            configuration.insert(
                crate::SUBJECT_COLUMNS_PROPERTY.to_string(),
                Some(subject_keys.join(",")),
            );
        }
        let delta = self
            .tombstones_builder()?
            .build()
            .map_err(|source| TableError::delta(self.name(), source))?;
        let created = delta
            .create()
            .with_table_name(tombstones_name(self.name()))
            .with_columns(kernel.fields().cloned())
            .with_configuration(configuration)
            .with_save_mode(SaveMode::Ignore)
            .with_raise_if_key_not_exists(false)
            .await
            .map_err(|source| TableError::delta(self.name(), source))?;
        Ok(Table::new(&tombstones_name(self.name()), created))
    }

    fn tombstone_retention_hours(&self) -> i64 {
        self.properties()
            .ok()
            .and_then(|p| {
                p.get(TOMBSTONE_RETENTION_PROPERTY)
                    .and_then(|v| v.trim().parse().ok())
            })
            .filter(|h: &i64| *h >= 0)
            .unwrap_or(DEFAULT_TOMBSTONE_RETENTION_HOURS)
    }
}

/// The name a tombstone table goes by in messages and logs.
fn tombstones_name(table: &str) -> String {
    format!("{table}/{}", TOMBSTONES_DIR.trim_end_matches('/'))
}

/// Applies `events` to `table` as [`ApplyChanges`] describes (see the
/// module docs). `state` plans and runs the DataFusion parts.
pub(crate) async fn apply(
    table: &Table,
    state: Arc<SessionState>,
    events: DataFrame,
    spec: &ApplyChanges,
    metadata: HashMap<String, serde_json::Value>,
) -> Result<(Table, ApplyCounts)> {
    let name = table.name().to_string();
    let failed = |e: DeltaTableError| {
        tracing::debug!(table = %name, error = %e, "apply changes failed");
        TableError::operation("APPLY CHANGES", &name, e)
    };
    let df_failed = |e: deltalake::datafusion::error::DataFusionError| failed(e.into());
    let target_schema = table.schema()?;
    let event_schema: SchemaRef = Arc::new(events.schema().as_arrow().clone());
    if spec.keys.is_empty() {
        return Err(rejected(&name, "name at least one key column".to_string()));
    }
    let mut key_fields = Vec::new();
    for key in &spec.keys {
        key_fields.push(field(&target_schema, key, "table", &name)?.clone());
        field(&event_schema, key, "changes", &name)?;
    }
    let sequence_type = match &spec.sequence {
        Some(sequence) => {
            field(&event_schema, sequence, "changes", &name)?;
            Some(
                field(&target_schema, sequence, "table", &name)?
                    .data_type()
                    .clone(),
            )
        }
        None => None,
    };
    let columns: Vec<String> = match &spec.columns {
        Some(columns) => {
            for c in columns {
                field(&target_schema, c, "table", &name)?;
                field(&event_schema, c, "changes", &name)?;
            }
            columns.clone()
        }
        None => target_schema
            .fields()
            .iter()
            .filter(|f| event_schema.field_with_name(f.name()).is_ok())
            .map(|f| f.name().clone())
            .collect(),
    };
    for needed in spec.keys.iter().chain(spec.sequence.as_ref()) {
        if !columns.contains(needed) {
            return Err(rejected(
                &name,
                format!("column '{needed}' (a key or the sequence) must be written"),
            ));
        }
    }

    let ctx = SessionContext::new_with_state(state.as_ref().clone());
    // 1. The newest event per key, with its delete flag.
    let flag = match &spec.delete_when {
        Some(condition) => {
            deltalake::datafusion::functions::expr_fn::coalesce(vec![condition.clone(), lit(false)])
        }
        None => lit(false),
    };
    let mut events = events.with_column(DELETE_FLAG, flag).map_err(df_failed)?;
    let total;
    let order = match &spec.sequence {
        Some(sequence) => {
            total = events.clone().count().await.map_err(df_failed)? as u64;
            let nulls = events
                .clone()
                .filter(col(sequence.as_str()).is_null())
                .map_err(df_failed)?
                .aggregate(vec![], vec![count(lit(1)).alias("n")])
                .map_err(df_failed)?
                .collect()
                .await
                .map_err(df_failed)?;
            if first_count(&nulls) > 0 {
                return Err(rejected(
                    &name,
                    format!(
                        "{} changes have no sequence ('{sequence}' is NULL)",
                        first_count(&nulls)
                    ),
                ));
            }
            col(sequence.as_str())
        }
        None => {
            // Arrival order: number the events as they come.
            let batches = events.collect().await.map_err(df_failed)?;
            total = batches.iter().map(|b| b.num_rows() as u64).sum();
            let numbered = with_arrival(&name, batches)?;
            let schema = numbered
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| rejected(&name, "no changes".to_string()))?;
            let mem = MemTable::try_new(schema, vec![numbered]).map_err(df_failed)?;
            events = ctx.read_table(Arc::new(mem)).map_err(df_failed)?;
            col(ARRIVAL)
        }
    };
    let order = vec![order.sort(false, false)];
    let partition: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
    let numbered = row_number()
        .partition_by(partition)
        .order_by(order)
        .build()
        .map_err(df_failed)?
        .alias(ROW_NUMBER);
    let mut newest = events
        .window(vec![numbered])
        .map_err(df_failed)?
        .filter(col(ROW_NUMBER).eq(lit(1u64)))
        .map_err(df_failed)?
        .drop_columns(&[ROW_NUMBER, ARRIVAL])
        .map_err(df_failed)?;

    // 2. Drop what a tombstone makes stale.
    let tombstones = match &spec.sequence {
        Some(_) => table.tombstones().await?,
        None => None,
    };
    if let (Some(tombstones), Some(sequence)) = (&tombstones, &spec.sequence) {
        let provider = tombstones.table_provider(&state).await?;
        let mut renamed: Vec<Expr> = spec
            .keys
            .iter()
            .map(|k| col(k.as_str()).alias(format!("{TOMB_PREFIX}{k}")))
            .collect();
        renamed.push(col(TOMB_SEQUENCE));
        let tomb = ctx
            .read_table(provider)
            .map_err(df_failed)?
            .select(renamed)
            .map_err(df_failed)?;
        let mut on: Vec<Expr> = spec
            .keys
            .iter()
            .map(|k| col(k.as_str()).eq(col(format!("{TOMB_PREFIX}{k}"))))
            .collect();
        let seq = col(sequence.as_str());
        on.push(
            col(TOMB_SEQUENCE)
                .gt(seq.clone())
                .or(col(TOMB_SEQUENCE).eq(seq).and(col(DELETE_FLAG).not())),
        );
        newest = newest.join_on(tomb, JoinType::LeftAnti, on).map_err(df_failed)?;
    }
    // The events are read once: the tombstones and the MERGE use this copy.
    let planned: SchemaRef = Arc::new(newest.schema().as_arrow().clone());
    let batches = newest.collect().await.map_err(df_failed)?;
    // The batches' own schema: the plan's may differ in nullability or
    // metadata, which MemTable compares strictly.
    let schema = batches.first().map(|b| b.schema()).unwrap_or(planned);
    let newest_rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let mut counts = ApplyCounts {
        events: total,
        newest: newest_rows,
        ..ApplyCounts::default()
    };
    let memory = |batches: Vec<RecordBatch>| -> Result<DataFrame> {
        let mem = MemTable::try_new(schema.clone(), vec![batches]).map_err(df_failed)?;
        ctx.read_table(Arc::new(mem)).map_err(df_failed)
    };

    // Both MERGEs (tombstones, then the table) join on the keys.
    let on = spec
        .keys
        .iter()
        .map(|k| qualified(TARGET, k).eq(qualified(SOURCE, k)))
        .reduce(Expr::and)
        .unwrap_or(lit(false));

    // 3. Tombstones of this batch's deletes, before the table's commit.
    let deletes: Vec<RecordBatch> = batches
        .iter()
        .map(|b| delete_rows(&name, b))
        .collect::<Result<_>>()?;
    let delete_count: u64 = deletes.iter().map(|b| b.num_rows() as u64).sum();
    if let (true, Some(sequence), Some(sequence_type)) = (delete_count > 0, &spec.sequence, &sequence_type) {
        let tombstones = match tombstones {
            Some(t) => t,
            None => table.create_tombstones(&key_fields, sequence_type).await?,
        };
        let cutoff = chrono::Utc::now() - chrono::Duration::hours(table.tombstone_retention_hours());
        let mut select: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
        select.push(col(sequence.as_str()).alias(TOMB_SEQUENCE));
        let source = memory(deletes)?.select(select).map_err(df_failed)?;
        let now = lit(deltalake::datafusion::scalar::ScalarValue::TimestampMicrosecond(
            Some(chrono::Utc::now().timestamp_micros()),
            Some("UTC".into()),
        ));
        let mut sets: Vec<(String, Expr)> = spec
            .keys
            .iter()
            .map(|k| (k.clone(), qualified(SOURCE, k)))
            .collect();
        sets.push((TOMB_SEQUENCE.to_string(), qualified(SOURCE, TOMB_SEQUENCE)));
        sets.push((TOMB_DELETED_AT.to_string(), now.clone()));
        let clauses = vec![
            MergeClause::MatchedUpdate(
                Some(qualified(SOURCE, TOMB_SEQUENCE).gt(qualified(TARGET, TOMB_SEQUENCE))),
                vec![
                    (TOMB_SEQUENCE.to_string(), qualified(SOURCE, TOMB_SEQUENCE)),
                    (TOMB_DELETED_AT.to_string(), now),
                ],
            ),
            MergeClause::Insert(None, sets),
            // Tombstones past the retention go (only those this merge reads).
            MergeClause::SourceDelete(Some(qualified(TARGET, TOMB_DELETED_AT).lt(lit(
                deltalake::datafusion::scalar::ScalarValue::TimestampMicrosecond(
                    Some(cutoff.timestamp_micros()),
                    Some("UTC".into()),
                ),
            )))),
        ];
        let (_, written) = tombstones
            .change()
            .with_session(state.clone())
            .merge(source, on.clone(), SOURCE, TARGET, clauses)
            .await?;
        counts.tombstones = written.inserted + written.updated;
    }

    // 4. One MERGE into the table.
    let newer = match &spec.sequence {
        Some(sequence) => qualified(TARGET, sequence)
            .is_null()
            .or(qualified(SOURCE, sequence).gt(qualified(TARGET, sequence))),
        None => lit(true),
    };
    let is_delete = qualified(SOURCE, DELETE_FLAG);
    let sets: Vec<(String, Expr)> = columns
        .iter()
        .map(|c| (c.clone(), qualified(SOURCE, c)))
        .collect();
    let clauses = vec![
        MergeClause::MatchedDelete(Some(newer.clone().and(is_delete.clone()))),
        MergeClause::MatchedUpdate(Some(newer), sets.clone()),
        MergeClause::Insert(Some(is_delete.not()), sets),
    ];
    let source = memory(batches)?;
    let (after, merged) = table
        .change()
        .with_session(state)
        .with_metadata(metadata)
        .with_transactions(&spec.transactions)
        .merge(source, on, SOURCE, TARGET, clauses)
        .await?;
    counts.inserted = merged.inserted;
    counts.updated = merged.updated;
    counts.deleted = merged.deleted.unwrap_or(0);
    Ok((after, counts))
}

/// The rows of `batch` that delete their key.
fn delete_rows(table: &str, batch: &RecordBatch) -> Result<RecordBatch> {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::compute::filter_record_batch;
    let Some(flag) = batch.column_by_name(DELETE_FLAG) else {
        return Ok(batch.slice(0, 0));
    };
    filter_record_batch(batch, flag.as_boolean()).map_err(|e| TableError::delta(table, e.into()))
}

/// `batches` with an [`ARRIVAL`] column numbering their rows in order.
fn with_arrival(table: &str, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    use deltalake::arrow::array::UInt64Array;
    let mut next = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let rows = batch.num_rows() as u64;
        let arrival = Arc::new(UInt64Array::from_iter_values(next..next + rows));
        next += rows;
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(ARRIVAL, DataType::UInt64, false));
        let mut columns = batch.columns().to_vec();
        columns.push(arrival);
        out.push(
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| TableError::delta(table, e.into()))?,
        );
    }
    Ok(out)
}

fn first_count(batches: &[RecordBatch]) -> i64 {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::Int64Type;
    batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>().map(|a| a.value(0)))
        .unwrap_or(0)
}
