//! The ledger `_silt_erasures`: a Delta table with one row per state change
//! of a request (the newest `seq` of an id is its state). It holds the
//! salted hashes of the subjects, never a value; a pending request also holds
//! its subjects sealed (AES-256-GCM) so a restarted server can finish it.
//! Once a request completes, the ledger is rewritten to its latest rows and
//! its history purged, so no sealed subject outlives its request.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use silt_table::{CommitOptions, Table, TableError, TableSpec, Warehouse, WriteMode};
use tokio::sync::RwLock;

use crate::error::{ErasureError, Result};

/// The ledger table's name.
pub const LEDGER_TABLE: &str = "_silt_erasures";

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Filed, waiting for the worker.
    Pending,
    /// The worker is on it (a restart resumes it).
    Running,
    /// Erased and verified: no occurrence left.
    Done,
    /// Finished, but verification found occurrences or a step failed.
    Failed,
}

impl Status {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "done" => Status::Done,
            "failed" => Status::Failed,
            other => return Err(ErasureError::Ledger(format!("unknown status '{other}'"))),
        })
    }

    /// Whether the worker still has to act.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Running)
    }
}

/// One request as the ledger knows it.
#[derive(Debug, Clone)]
pub struct ErasureRecord {
    /// Request id (a UUID).
    pub id: String,
    /// State-change counter of this id.
    pub seq: i64,
    /// The caller's idempotency key.
    pub request_id: Option<String>,
    /// Where the request is.
    pub status: Status,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// Salted hash of each subject.
    pub subject_hashes: Vec<String>,
    /// Tables the caller limited the erasure to.
    pub tables: Option<Vec<String>>,
    /// Whether history is purged.
    pub purge: bool,
    /// Sealed subjects, while the request is open.
    pub(crate) sealed: Option<String>,
    /// Progress while running; the signed certificate once finished.
    pub results: Option<Value>,
    /// Why a request failed (no values).
    pub error: Option<String>,
}

fn schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("request_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("received_at", ts(), false),
        Field::new("updated_at", ts(), false),
        Field::new("subject_hashes", DataType::Utf8, false),
        Field::new("tables", DataType::Utf8, true),
        Field::new("purge", DataType::Boolean, false),
        Field::new("sealed", DataType::Utf8, true),
        Field::new("results", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// The ledger of one warehouse. Writes are serialised in this process (the
/// compaction overwrites the table, which must not race an append), and
/// reads wait for a compaction: its zero-retention VACUUM deletes the files
/// a reader of the previous version would open.
#[derive(Debug)]
pub(crate) struct Ledger {
    warehouse: Warehouse,
    lock: RwLock<()>,
}

impl Ledger {
    pub(crate) fn new(warehouse: Warehouse) -> Self {
        Self {
            warehouse,
            lock: RwLock::new(()),
        }
    }

    /// The ledger table, created on first use.
    pub(crate) async fn table(&self) -> Result<Table> {
        match self.warehouse.table(LEDGER_TABLE).await {
            Ok(table) => Ok(table),
            Err(TableError::NotFound { .. }) => {
                let spec = TableSpec {
                    schema: schema(),
                    partition_columns: Vec::new(),
                    properties: HashMap::new(),
                    if_not_exists: true,
                };
                Ok(self.warehouse.create_table(LEDGER_TABLE, spec).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every request, newest state of each, oldest first. Reading never
    /// creates the ledger: a warehouse that never had a request has none.
    pub(crate) async fn all(&self) -> Result<Vec<ErasureRecord>> {
        let _guard = self.lock.read().await;
        match self.warehouse.table(LEDGER_TABLE).await {
            Ok(table) => read_latest(&table).await,
            Err(TableError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// One request by id.
    pub(crate) async fn get(&self, id: &str) -> Result<ErasureRecord> {
        self.all()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ErasureError::NotFound(id.to_string()))
    }

    /// Files `record` unless a request with its `request_id` exists; returns
    /// the stored record and whether it is new.
    pub(crate) async fn insert_if_absent(&self, record: ErasureRecord) -> Result<(ErasureRecord, bool)> {
        let _guard = self.lock.write().await;
        let mut table = self.table().await?;
        if let Some(key) = &record.request_id
            && let Some(existing) = read_latest(&table)
                .await?
                .into_iter()
                .find(|r| r.request_id.as_deref() == Some(key.as_str()))
        {
            return Ok((existing, false));
        }
        append(&mut table, std::slice::from_ref(&record), WriteMode::Append).await?;
        Ok((record, true))
    }

    /// Records a new state of a request (its `seq` is bumped).
    pub(crate) async fn update(&self, record: &mut ErasureRecord) -> Result<()> {
        let _guard = self.lock.write().await;
        record.seq += 1;
        record.updated_at = Utc::now();
        let mut table = self.table().await?;
        append(&mut table, std::slice::from_ref(record), WriteMode::Append).await
    }

    /// Compacts the ledger if an older row of a finished request still holds
    /// its sealed subjects (a crash between finishing and compacting).
    pub(crate) async fn compact_if_stale(&self) -> Result<bool> {
        let stale = {
            let _guard = self.lock.read().await;
            let table = match self.warehouse.table(LEDGER_TABLE).await {
                Ok(table) => table,
                Err(TableError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            let rows = read_rows(&table).await?;
            let closed: Vec<String> = latest_of(rows.clone())
                .into_iter()
                .filter(|r| !r.status.is_open())
                .map(|r| r.id)
                .collect();
            rows.iter().any(|r| r.sealed.is_some() && closed.contains(&r.id))
        };
        if stale {
            self.compact("ledger-recovery").await?;
        }
        Ok(stale)
    }

    /// Rewrites the ledger to the latest row of each request and purges its
    /// history, so sealed subjects of finished requests leave no trace.
    pub(crate) async fn compact(&self, erasure_id: &str) -> Result<()> {
        let _guard = self.lock.write().await;
        let mut table = self.table().await?;
        let latest = read_latest(&table).await?;
        append(&mut table, &latest, WriteMode::Overwrite).await?;
        crate::purge::purge(&table, erasure_id).await?;
        Ok(())
    }
}

async fn append(table: &mut Table, records: &[ErasureRecord], mode: WriteMode) -> Result<()> {
    let batch = to_batch(records)?;
    table
        .write(
            vec![batch],
            mode,
            CommitOptions {
                skip_checkpoint: false,
                ..CommitOptions::default()
            },
        )
        .await?;
    Ok(())
}

fn to_batch(records: &[ErasureRecord]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&ErasureRecord) -> Option<String>| -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<StringArray>())
    };
    let micros = |f: &dyn Fn(&ErasureRecord) -> DateTime<Utc>| -> ArrayRef {
        Arc::new(
            records
                .iter()
                .map(|r| Some(f(r).timestamp_micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.id.clone())),
        Arc::new(records.iter().map(|r| Some(r.seq)).collect::<Int64Array>()),
        text(&|r| r.request_id.clone()),
        text(&|r| Some(r.status.as_str().to_string())),
        micros(&|r| r.received_at),
        micros(&|r| r.updated_at),
        text(&|r| serde_json::to_string(&r.subject_hashes).ok()),
        text(&|r| r.tables.as_ref().and_then(|t| serde_json::to_string(t).ok())),
        Arc::new(records.iter().map(|r| Some(r.purge)).collect::<BooleanArray>()),
        text(&|r| r.sealed.clone()),
        text(&|r| r.results.as_ref().map(Value::to_string)),
        text(&|r| r.error.clone()),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| ErasureError::Ledger(e.to_string()))
}

/// Reads every row and keeps the newest `seq` of each id.
async fn read_latest(table: &Table) -> Result<Vec<ErasureRecord>> {
    Ok(latest_of(read_rows(table).await?))
}

/// Keeps the newest `seq` of each id, oldest request first.
fn latest_of(rows: Vec<ErasureRecord>) -> Vec<ErasureRecord> {
    let mut latest: HashMap<String, ErasureRecord> = HashMap::new();
    for record in rows {
        match latest.get(&record.id) {
            Some(have) if have.seq >= record.seq => {}
            _ => {
                latest.insert(record.id.clone(), record);
            }
        }
    }
    let mut records: Vec<ErasureRecord> = latest.into_values().collect();
    records.sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
    records
}

/// Every row of the ledger, every state of every request.
async fn read_rows(table: &Table) -> Result<Vec<ErasureRecord>> {
    let provider = table
        .delta()
        .table_provider()
        .await
        .map_err(|e| ErasureError::Ledger(e.to_string()))?;
    let batches = SessionContext::new()
        .read_table(provider)
        .map_err(|e| ErasureError::Ledger(e.to_string()))?
        .collect()
        .await
        .map_err(|e| ErasureError::Ledger(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(from_batch(batch)?);
    }
    Ok(rows)
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| ErasureError::Ledger(format!("column '{name}' is missing")))?;
    arrow::compute::cast(array, to).map_err(|e| ErasureError::Ledger(format!("column '{name}': {e}")))
}

fn from_batch(batch: &RecordBatch) -> Result<Vec<ErasureRecord>> {
    let utf8 = |name: &str| column(batch, name, &DataType::Utf8);
    let id = utf8("id")?;
    let seq = column(batch, "seq", &DataType::Int64)?;
    let request_id = utf8("request_id")?;
    let status = utf8("status")?;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let received = column(batch, "received_at", &ts)?;
    let updated = column(batch, "updated_at", &ts)?;
    let hashes = utf8("subject_hashes")?;
    let tables = utf8("tables")?;
    let purge = column(batch, "purge", &DataType::Boolean)?;
    let sealed = utf8("sealed")?;
    let results = utf8("results")?;
    let error = utf8("error")?;
    let text = |a: &ArrayRef, i: usize| -> Option<String> {
        let s = a.as_string::<i32>();
        (!s.is_null(i)).then(|| s.value(i).to_string())
    };
    let instant = |a: &ArrayRef, i: usize| -> DateTime<Utc> {
        let micros = a.as_primitive::<TimestampMicrosecondType>().value(i);
        DateTime::from_timestamp_micros(micros).unwrap_or_default()
    };
    let parse_json = |text: Option<String>, what: &str| -> Result<Option<Value>> {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| ErasureError::Ledger(format!("{what}: {e}")))
    };
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let id_value = text(&id, i).ok_or_else(|| ErasureError::Ledger("null id".into()))?;
        let hashes_value: Vec<String> = parse_json(text(&hashes, i), "subject_hashes")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ErasureError::Ledger(format!("subject_hashes: {e}")))?
            .unwrap_or_default();
        let tables_value: Option<Vec<String>> = parse_json(text(&tables, i), "tables")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ErasureError::Ledger(format!("tables: {e}")))?;
        out.push(ErasureRecord {
            seq: seq.as_primitive::<Int64Type>().value(i),
            request_id: text(&request_id, i),
            status: Status::parse(&text(&status, i).unwrap_or_default())?,
            received_at: instant(&received, i),
            updated_at: instant(&updated, i),
            subject_hashes: hashes_value,
            tables: tables_value,
            purge: purge.as_boolean().value(i),
            sealed: text(&sealed, i),
            results: parse_json(text(&results, i), "results")?,
            error: text(&error, i),
            id: id_value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: Status, sealed: Option<&str>) -> ErasureRecord {
        let now = Utc::now();
        ErasureRecord {
            id: id.to_string(),
            seq: 0,
            request_id: Some(format!("key-{id}")),
            status,
            received_at: now,
            updated_at: now,
            subject_hashes: vec!["ab".repeat(32)],
            tables: None,
            purge: true,
            sealed: sealed.map(str::to_string),
            results: None,
            error: None,
        }
    }

    /// A crash between a request's last row and the compaction leaves the
    /// sealed subjects in an older row; the next start compacts them away.
    #[tokio::test(flavor = "multi_thread")]
    async fn stale_sealed_rows_of_finished_requests_are_compacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
        let ledger = Ledger::new(warehouse.clone());
        assert!(!ledger.compact_if_stale().await.expect("no ledger yet"));
        let (mut first, created) = ledger
            .insert_if_absent(record("r1", Status::Pending, Some("cafe")))
            .await
            .expect("insert");
        assert!(created);
        let (again, created) = ledger
            .insert_if_absent(record("r2", Status::Pending, Some("beef")))
            .await
            .expect("insert");
        assert!(created && again.id == "r2");
        first.status = Status::Done;
        first.sealed = None;
        ledger.update(&mut first).await.expect("update");
        assert!(ledger.compact_if_stale().await.expect("compact"));
        let table = ledger.table().await.expect("table");
        let rows = read_rows(&table).await.expect("rows");
        assert_eq!(rows.len(), 2, "one row per request after compaction");
        assert!(rows.iter().all(|r| r.id != "r1" || r.sealed.is_none()));
        // The open request keeps its sealed subjects.
        assert!(rows.iter().any(|r| r.id == "r2" && r.sealed.is_some()));
        assert!(!ledger.compact_if_stale().await.expect("nothing stale"));
        // Idempotent on request_id.
        let (existing, created) = ledger
            .insert_if_absent(record("r3", Status::Pending, None))
            .await
            .expect("insert");
        assert!(created && existing.id == "r3");
        let (existing, created) = ledger
            .insert_if_absent(ErasureRecord {
                request_id: Some("key-r1".into()),
                ..record("r4", Status::Pending, None)
            })
            .await
            .expect("insert");
        assert!(!created);
        assert_eq!(existing.id, "r1");
    }
}
