//! The ledger `_silt_erasures`: a Delta table with one row per state change
//! of a request (the newest `seq` of an id is its state). It holds the
//! salted hashes of the subjects, never a value; a pending request also holds
//! its subjects sealed (AES-256-GCM) so a restarted server can finish it.
//! Once a request completes, the ledger is rewritten to its latest rows and
//! its history purged, so no sealed subject outlives its request.
//!
//! The ledger is a plain Delta table, so something other than this silt can
//! write to it: another Delta tool, an older or newer silt, a forger. Every
//! row is therefore validated when read ([`classify`]):
//!
//! - its columns are of the right form (an id silt issues, a known status,
//!   JSON lists of hashes and table names, timestamps, …);
//! - an open request's sealed subjects open with this server's key and hash
//!   to the row's `subject_hashes`;
//! - a finished request's certificate verifies with this server's secret and
//!   names this request, its status and its subjects.
//!
//! A finished request with a valid certificate is finished, whatever rows
//! follow it (they are ignored and reported). Otherwise a request any of
//! whose rows fails validation, whose rows disagree on what was asked, or
//! whose states go backwards, is an [`InvalidEntry`]: listed with status
//! `invalid` and a reason that quotes no value, never run, and kept verbatim
//! by compaction (silt does not delete what it cannot read). A row whose id
//! is not one silt issues is an entry of its own, named by a keyed hash of
//! the row (identical rows are one entry).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use datafusion::prelude::{SessionConfig, SessionContext};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use silt_table::{CommitOptions, Table, TableError, TableSpec, Warehouse, WriteMode};
use tokio::sync::RwLock;

use crate::certificate::{Certificate, verify_certificate};
use crate::error::{ErasureError, Result};
use crate::secrets::Secrets;
use crate::service::MAX_SUBJECTS;

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
    /// Ledger rows that fail validation (damaged, forged, or written by a
    /// silt that stores something this one does not know): shown to the
    /// operator, never run. Never stored.
    Invalid,
}

impl Status {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Invalid => "invalid",
        }
    }

    /// A stored status (`invalid` is never stored, so it does not parse).
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "done" => Status::Done,
            "failed" => Status::Failed,
            _ => return None,
        })
    }

    /// Whether the worker still has to act.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Running)
    }

    fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Failed)
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
    /// Why a request failed (no values). Read from the certificate, never
    /// from the stored column, which no signature covers.
    pub error: Option<String>,
}

/// Ledger rows that fail validation, as one entry: one request id, or one
/// row whose id is not one silt issues.
#[derive(Debug, Clone)]
pub(crate) struct InvalidEntry {
    /// The request id, or `invalid-row-<hex>` when the row's id is not one
    /// silt issues (hex: a keyed hash of the row, stable across reads and
    /// compactions, revealing nothing of it).
    pub(crate) key: String,
    /// What is wrong, naming columns and positions, never a stored value.
    pub(crate) reason: String,
    /// The earliest readable `received_at` of its rows (else the epoch).
    pub(crate) received_at: DateTime<Utc>,
    /// The latest readable `updated_at` of its rows (else the epoch).
    pub(crate) updated_at: DateTime<Utc>,
    /// How many rows it has.
    pub(crate) rows: usize,
}

/// What the ledger holds, validated.
#[derive(Debug, Default)]
pub(crate) struct LedgerState {
    /// The latest valid state of each request, oldest request first.
    pub(crate) requests: Vec<ErasureRecord>,
    /// Entries that fail validation, in ledger order.
    pub(crate) invalid: Vec<InvalidEntry>,
    /// Finished requests with rows besides their certificate's that are not
    /// valid history (request id, how many): ignored, dropped by compaction.
    pub(crate) ignored: Vec<(String, usize)>,
    /// A finished request still has other rows (sealed subjects among
    /// them): the ledger is due a compaction.
    pub(crate) stale: bool,
    /// The rows of invalid entries, kept as they are by compaction.
    kept: Vec<RawRow>,
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
    secrets: Secrets,
    lock: RwLock<()>,
}

impl Ledger {
    pub(crate) fn new(warehouse: Warehouse, secrets: Secrets) -> Self {
        Self {
            warehouse,
            secrets,
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

    /// Every request, validated. Reading never creates the ledger: a
    /// warehouse that never had a request has none.
    pub(crate) async fn state(&self) -> Result<LedgerState> {
        let _guard = self.lock.read().await;
        let mut attempts = 0;
        loop {
            let table = match self.warehouse.table(LEDGER_TABLE).await {
                Ok(table) => table,
                Err(TableError::NotFound { .. }) => return Ok(LedgerState::default()),
                Err(e) => return Err(e.into()),
            };
            match read_state(&table, &self.secrets).await {
                // Another process (a server, while this is the CLI) may have
                // compacted the ledger and purged its history meanwhile: a
                // file of the version read is gone. Read the newer version.
                Err(error) if attempts < LEDGER_READ_RETRIES && self.moved_past(table.version()).await => {
                    attempts += 1;
                    tracing::debug!(%error, "erasure ledger changed while read; reading again");
                }
                answer => return answer,
            }
        }
    }

    /// Whether the ledger has a version newer than `version`.
    async fn moved_past(&self, version: u64) -> bool {
        self.warehouse
            .table(LEDGER_TABLE)
            .await
            .is_ok_and(|table| table.version() > version)
    }

    /// Files `record` unless a valid request with its `request_id` exists;
    /// returns the stored record and whether it is new.
    pub(crate) async fn insert_if_absent(&self, record: ErasureRecord) -> Result<(ErasureRecord, bool)> {
        let _guard = self.lock.write().await;
        let mut table = self.table().await?;
        if let Some(key) = &record.request_id
            && let Some(existing) = read_state(&table, &self.secrets)
                .await?
                .requests
                .into_iter()
                .find(|r| r.request_id.as_deref() == Some(key.as_str()))
        {
            return Ok((existing, false));
        }
        write_rows(&mut table, &[RawRow::from(&record)], WriteMode::Append).await?;
        Ok((record, true))
    }

    /// Records a new state of a request (its `seq` is bumped).
    pub(crate) async fn update(&self, record: &mut ErasureRecord) -> Result<()> {
        let _guard = self.lock.write().await;
        record.seq += 1;
        record.updated_at = Utc::now();
        let mut table = self.table().await?;
        write_rows(&mut table, &[RawRow::from(&*record)], WriteMode::Append).await
    }

    /// Compacts the ledger if an older row of a finished request still holds
    /// its sealed subjects (a crash between finishing and compacting).
    #[cfg(test)]
    pub(crate) async fn compact_if_stale(&self) -> Result<bool> {
        let stale = self.state().await?.stale;
        if stale {
            self.compact("ledger-recovery").await?;
        }
        Ok(stale)
    }

    /// Rewrites the ledger to the latest row of each valid request (and the
    /// rows of invalid entries, unchanged) and purges its history, so sealed
    /// subjects of finished requests leave no trace.
    pub(crate) async fn compact(&self, erasure_id: &str) -> Result<()> {
        let _guard = self.lock.write().await;
        let mut table = self.table().await?;
        let state = read_state(&table, &self.secrets).await?;
        let (mut rows, unwritable): (Vec<RawRow>, Vec<RawRow>) = state
            .requests
            .iter()
            .map(RawRow::from)
            .chain(state.kept)
            .partition(RawRow::is_writable);
        if !unwritable.is_empty() {
            // Nulls where the ledger's schema has none: not representable in
            // the rewritten table.
            tracing::warn!(
                erasure = erasure_id,
                rows = unwritable.len(),
                "erasure ledger compaction drops rows with missing required columns"
            );
        }
        rows.sort_by_key(|r| r.received_at);
        write_rows(&mut table, &rows, WriteMode::Overwrite).await?;
        // Alone on the ledger's gate: the purge's VACUUM keeps no files.
        let gate = table.exclusive_write_gate().await;
        crate::purge::purge(&table, erasure_id, &gate).await?;
        Ok(())
    }
}

async fn write_rows(table: &mut Table, rows: &[RawRow], mode: WriteMode) -> Result<()> {
    let batch = to_batch(rows)?;
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

/// One ledger row exactly as stored: any column may be null or hold
/// anything, whoever wrote it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawRow {
    id: Option<String>,
    seq: Option<i64>,
    request_id: Option<String>,
    status: Option<String>,
    received_at: Option<i64>,
    updated_at: Option<i64>,
    subject_hashes: Option<String>,
    tables: Option<String>,
    purge: Option<bool>,
    sealed: Option<String>,
    results: Option<String>,
    error: Option<String>,
}

impl RawRow {
    /// Whether the row fits the ledger's schema (no null in a required column).
    fn is_writable(&self) -> bool {
        self.id.is_some()
            && self.seq.is_some()
            && self.status.is_some()
            && self.received_at.is_some()
            && self.updated_at.is_some()
            && self.subject_hashes.is_some()
            && self.purge.is_some()
    }
}

impl From<&ErasureRecord> for RawRow {
    fn from(r: &ErasureRecord) -> Self {
        RawRow {
            id: Some(r.id.clone()),
            seq: Some(r.seq),
            request_id: r.request_id.clone(),
            status: Some(r.status.as_str().to_string()),
            received_at: Some(r.received_at.timestamp_micros()),
            updated_at: Some(r.updated_at.timestamp_micros()),
            subject_hashes: serde_json::to_string(&r.subject_hashes).ok(),
            tables: r.tables.as_ref().and_then(|t| serde_json::to_string(t).ok()),
            purge: Some(r.purge),
            sealed: r.sealed.clone(),
            results: r.results.as_ref().map(Value::to_string),
            error: r.error.clone(),
        }
    }
}

fn to_batch(rows: &[RawRow]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&RawRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let micros = |f: &dyn Fn(&RawRow) -> Option<i64>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| r.id.clone()),
        Arc::new(rows.iter().map(|r| r.seq).collect::<Int64Array>()),
        text(&|r| r.request_id.clone()),
        text(&|r| r.status.clone()),
        micros(&|r| r.received_at),
        micros(&|r| r.updated_at),
        text(&|r| r.subject_hashes.clone()),
        text(&|r| r.tables.clone()),
        Arc::new(rows.iter().map(|r| r.purge).collect::<BooleanArray>()),
        text(&|r| r.sealed.clone()),
        text(&|r| r.results.clone()),
        text(&|r| r.error.clone()),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| ErasureError::Ledger(e.to_string()))
}

/// How often [`Ledger::state`] reads again a ledger that changed under it.
const LEDGER_READ_RETRIES: u32 = 3;

/// Reads and validates every row.
async fn read_state(table: &Table, secrets: &Secrets) -> Result<LedgerState> {
    Ok(classify(read_rows(table).await?, secrets))
}

/// Every row of the ledger, every state of every request, in the order of
/// the table's files (one partition, so positions are stable for a version).
async fn read_rows(table: &Table) -> Result<Vec<RawRow>> {
    let context = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let provider = table
        .table_provider(&Arc::new(context.state()))
        .await
        .map_err(|e| ErasureError::Ledger(e.to_string()))?;
    let batches = context
        .read_table(provider)
        .map_err(|e| ErasureError::Ledger(e.to_string()))?
        .collect()
        .await
        .map_err(|e| ErasureError::Ledger(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(raw_rows(batch)?);
    }
    Ok(rows)
}

/// A column cast to `to`; a value that does not cast becomes null (the
/// cast's message would quote it), so only a missing column or a type that
/// cannot be cast at all fails the whole ledger.
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| ErasureError::Ledger(format!("column '{name}' is missing")))?;
    arrow::compute::cast(array, to)
        .map_err(|_| ErasureError::Ledger(format!("column '{name}' has type {}", array.data_type())))
}

fn raw_rows(batch: &RecordBatch) -> Result<Vec<RawRow>> {
    let utf8 = |name: &str| column(batch, name, &DataType::Utf8);
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let id = utf8("id")?;
    let seq = column(batch, "seq", &DataType::Int64)?;
    let request_id = utf8("request_id")?;
    let status = utf8("status")?;
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
    let micros = |a: &ArrayRef, i: usize| -> Option<i64> {
        let m = a.as_primitive::<TimestampMicrosecondType>();
        (!m.is_null(i)).then(|| m.value(i))
    };
    let seq = seq.as_primitive::<Int64Type>();
    let purge = purge.as_boolean();
    Ok((0..batch.num_rows())
        .map(|i| RawRow {
            id: text(&id, i),
            seq: (!seq.is_null(i)).then(|| seq.value(i)),
            request_id: text(&request_id, i),
            status: text(&status, i),
            received_at: micros(&received, i),
            updated_at: micros(&updated, i),
            subject_hashes: text(&hashes, i),
            tables: text(&tables, i),
            purge: (!purge.is_null(i)).then(|| purge.value(i)),
            sealed: text(&sealed, i),
            results: text(&results, i),
            error: text(&error, i),
        })
        .collect())
}

/// Whether `id` is a request id as silt issues them (a hyphenated,
/// lower-case UUID); only such an id may be shown or logged.
fn is_request_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// A name for a row without a usable id: the first 16 hex digits of its
/// HMAC under the server's secret (like a subject hash, it reveals nothing
/// of what the row holds).
fn row_key(raw: &RawRow, secrets: &Secrets) -> String {
    let fields = serde_json::json!([
        raw.id,
        raw.seq,
        raw.request_id,
        raw.status,
        raw.received_at,
        raw.updated_at,
        raw.subject_hashes,
        raw.tables,
        raw.purge,
        raw.sealed,
        raw.results,
        raw.error,
    ]);
    let mut key = secrets.sign(format!("silt.erasure.ledger-row\n{fields}").as_bytes());
    key.truncate(16);
    key
}

fn is_subject_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn instant(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

/// One row read as a request state, or why it cannot be. Reasons are fixed
/// words naming columns: a stored value (which may be anything, a subject
/// included) never reaches them.
fn parse_row(raw: &RawRow, id: &str, secrets: &Secrets) -> std::result::Result<ErasureRecord, &'static str> {
    let seq = raw.seq.filter(|s| *s >= 0).ok_or("seq is missing or negative")?;
    let status = raw
        .status
        .as_deref()
        .and_then(Status::parse)
        .ok_or("status is not one of pending, running, done, failed")?;
    let received_at = instant(raw.received_at).ok_or("received_at is missing or out of range")?;
    let updated_at = instant(raw.updated_at).ok_or("updated_at is missing or out of range")?;
    let purge = raw.purge.ok_or("purge is missing")?;
    let subject_hashes: Vec<String> = raw
        .subject_hashes
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .filter(|h: &Vec<String>| {
            !h.is_empty() && h.len() <= MAX_SUBJECTS && h.iter().all(|h| is_subject_hash(h))
        })
        .ok_or("subject_hashes is not a JSON list of subject hashes")?;
    let tables: Option<Vec<String>> = match raw.tables.as_deref() {
        None => None,
        Some(text) => {
            Some(serde_json::from_str(text).map_err(|_| "tables is not a JSON list of table names")?)
        }
    };
    let results: Option<Value> = match raw.results.as_deref() {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|_| "results is not JSON")?),
    };
    let mut record = ErasureRecord {
        id: id.to_string(),
        seq,
        request_id: raw.request_id.clone(),
        status,
        received_at,
        updated_at,
        subject_hashes,
        tables,
        purge,
        sealed: raw.sealed.clone(),
        results,
        error: None,
    };
    if status.is_open() {
        check_sealed(&record, secrets)?;
        if status == Status::Running && record.results.as_ref().is_some_and(|r| !r.is_object()) {
            return Err("results of a running request is not its progress");
        }
    } else {
        let certificate = check_certificate(&record, secrets)?;
        record.error = certificate.failure_summary();
        // A finished request keeps no sealed subjects, whatever the row says.
        record.sealed = None;
    }
    Ok(record)
}

/// An open request's sealed subjects open with this server's key (bound to
/// its id) and hash to its `subject_hashes`.
fn check_sealed(record: &ErasureRecord, secrets: &Secrets) -> std::result::Result<(), &'static str> {
    let sealed = record
        .sealed
        .as_deref()
        .ok_or("an open request has no sealed subjects")?;
    let plaintext = secrets
        .open(&record.id, sealed)
        .map_err(|_| "its sealed subjects do not open with this server's erasure key")?;
    let subjects: Vec<String> =
        serde_json::from_slice(&plaintext).map_err(|_| "its sealed subjects are not a list")?;
    let mut hashes: Vec<String> = subjects.iter().map(|s| secrets.subject_hash(s)).collect();
    drop(subjects);
    hashes.sort_unstable();
    let mut stored = record.subject_hashes.clone();
    stored.sort_unstable();
    if hashes != stored {
        return Err("its sealed subjects do not match its subject_hashes");
    }
    Ok(())
}

/// A finished request's certificate verifies with this server's secret and
/// was issued for this request, this status and these subjects.
fn check_certificate(
    record: &ErasureRecord,
    secrets: &Secrets,
) -> std::result::Result<Certificate, &'static str> {
    let document = record
        .results
        .as_ref()
        .ok_or("a finished request has no certificate")?;
    if !verify_certificate(document, secrets) {
        return Err("its certificate does not verify with this server's erasure secret");
    }
    let certificate: Certificate = serde_json::from_value(document.clone())
        .map_err(|_| "its certificate is not one this version of silt can read")?;
    let received = DateTime::parse_from_rfc3339(&certificate.received_at).ok();
    let same = certificate.request_id == record.id
        && certificate.status == record.status.as_str()
        && certificate.subject_hashes == record.subject_hashes
        && certificate.purge == record.purge
        && certificate.client_request_id == record.request_id
        && received.is_some_and(|t| t.timestamp_micros() == record.received_at.timestamp_micros());
    if !same {
        return Err("its certificate was issued for another request, status or set of subjects");
    }
    Ok(certificate)
}

/// One row of a request id: where it was read, as stored, as parsed.
struct IdRow {
    position: usize,
    raw: RawRow,
    parsed: std::result::Result<ErasureRecord, &'static str>,
}

/// How one request id's rows resolve.
enum Resolved {
    /// A valid state; `ignored` rows (after a certificate) are not history.
    Request {
        record: Box<ErasureRecord>,
        ignored: usize,
        stale: bool,
    },
    Invalid(InvalidEntry),
}

/// Validates every row (see the module docs) into requests and invalid
/// entries.
pub(crate) fn classify(rows: Vec<RawRow>, secrets: &Secrets) -> LedgerState {
    let mut state = LedgerState::default();
    let mut by_id: IndexMap<String, Vec<IdRow>> = IndexMap::new();
    for (index, raw) in rows.into_iter().enumerate() {
        let position = index + 1;
        match raw.id.as_deref().filter(|id| is_request_id(id)) {
            Some(id) => {
                let id = id.to_string();
                let parsed = parse_row(&raw, &id, secrets);
                by_id.entry(id).or_default().push(IdRow {
                    position,
                    raw,
                    parsed,
                });
            }
            None => {
                let key = format!("invalid-row-{}", row_key(&raw, secrets));
                match state.invalid.iter_mut().find(|e| e.key == key) {
                    Some(entry) => entry.rows += 1,
                    None => state.invalid.push(InvalidEntry {
                        key,
                        reason: format!("ledger row {position}: id is not an erasure request id"),
                        received_at: instant(raw.received_at).unwrap_or_default(),
                        updated_at: instant(raw.updated_at).unwrap_or_default(),
                        rows: 1,
                    }),
                }
                state.kept.push(raw);
            }
        }
    }
    for (id, rows) in by_id {
        let raws: Vec<RawRow> = rows.iter().map(|r| r.raw.clone()).collect();
        match resolve(&id, rows) {
            Resolved::Request {
                record,
                ignored,
                stale,
            } => {
                if ignored > 0 {
                    state.ignored.push((id, ignored));
                }
                state.stale |= stale;
                state.requests.push(*record);
            }
            Resolved::Invalid(entry) => {
                state.invalid.push(entry);
                state.kept.extend(raws);
            }
        }
    }
    state
        .requests
        .sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
    state
}

fn resolve(id: &str, mut rows: Vec<IdRow>) -> Resolved {
    rows.sort_by_key(|r| (r.raw.seq.unwrap_or(i64::MIN), r.position));
    // A finished request whose certificate verifies is finished: nothing
    // written after it (or garbage beside it) can reopen or unmake it.
    if let Some(finished) = rows
        .iter()
        .find(|r| r.parsed.as_ref().is_ok_and(|p| p.status.is_finished()))
        && let Ok(record) = &finished.parsed
    {
        let ignored = rows
            .iter()
            .filter(|r| r.parsed.is_err() || r.raw.seq > finished.raw.seq)
            .count();
        return Resolved::Request {
            stale: rows.len() > 1 || finished.raw.sealed.is_some(),
            record: Box::new(record.clone()),
            ignored,
        };
    }
    let invalid = |reason: String| {
        Resolved::Invalid(InvalidEntry {
            key: id.to_string(),
            reason,
            received_at: rows
                .iter()
                .filter_map(|r| instant(r.raw.received_at))
                .min()
                .unwrap_or_default(),
            updated_at: rows
                .iter()
                .filter_map(|r| instant(r.raw.updated_at))
                .max()
                .unwrap_or_default(),
            rows: rows.len(),
        })
    };
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        match &row.parsed {
            Ok(record) => records.push((row.position, record)),
            Err(reason) => {
                let seq = row
                    .raw
                    .seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into());
                return invalid(format!("ledger row {} (seq {seq}): {reason}", row.position));
            }
        }
    }
    let Some(&(_, first)) = records.first() else {
        return invalid("no rows".into());
    };
    for pair in records.windows(2) {
        let ((_, a), (position, b)) = (pair[0], pair[1]);
        let asked_the_same = b.request_id == first.request_id
            && b.received_at == first.received_at
            && b.subject_hashes == first.subject_hashes
            && b.tables == first.tables
            && b.purge == first.purge;
        if !asked_the_same {
            return invalid(format!(
                "ledger row {position} (seq {}): its rows disagree on what was asked (request_id, received_at, subjects, tables or purge)",
                b.seq
            ));
        }
        if a.seq == b.seq && !rows_equal_at(&rows, a.seq) {
            return invalid(format!(
                "ledger row {position} (seq {}): two different rows share one seq",
                b.seq
            ));
        }
        if a.status == Status::Running && b.status == Status::Pending {
            return invalid(format!(
                "ledger row {position} (seq {}): goes back from running to pending",
                b.seq
            ));
        }
    }
    let Some(&(_, latest)) = records.last() else {
        return invalid("no rows".into());
    };
    Resolved::Request {
        record: Box::new(latest.clone()),
        ignored: 0,
        stale: false,
    }
}

/// Whether every row stored with `seq` is the same.
fn rows_equal_at(rows: &[IdRow], seq: i64) -> bool {
    let mut same = rows.iter().filter(|r| r.raw.seq == Some(seq)).map(|r| &r.raw);
    let Some(first) = same.next() else {
        return true;
    };
    same.all(|r| r == first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new("ledger-test-secret", &"11".repeat(32)).expect("secrets")
    }

    /// A real open request: its subjects sealed under its id.
    fn record(status: Status, subject: &str) -> ErasureRecord {
        let secrets = secrets();
        let id = uuid::Uuid::new_v4().to_string();
        let subjects = vec![subject.to_string()];
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        ErasureRecord {
            sealed: Some(
                secrets
                    .seal(&id, &serde_json::to_vec(&subjects).expect("json"))
                    .expect("seal"),
            ),
            subject_hashes: subjects.iter().map(|s| secrets.subject_hash(s)).collect(),
            id,
            seq: 0,
            request_id: Some(format!("key-{subject}")),
            status,
            received_at: now,
            updated_at: now,
            tables: None,
            purge: true,
            results: None,
            error: None,
        }
    }

    /// `record` finished with a signed certificate.
    fn finished(mut r: ErasureRecord) -> ErasureRecord {
        let mut certificate = Certificate {
            certificate_version: 1,
            request_id: r.id.clone(),
            client_request_id: r.request_id.clone(),
            status: "done".into(),
            hash_algorithm: "HMAC-SHA256".into(),
            subject_hashes: r.subject_hashes.clone(),
            purge: r.purge,
            received_at: r.received_at.to_rfc3339(),
            started_at: r.received_at.to_rfc3339(),
            completed_at: r.received_at.to_rfc3339(),
            batch: vec![],
            tables: vec![],
            ledger: Default::default(),
            views: Default::default(),
            signature_algorithm: "HMAC-SHA256".into(),
            signature: String::new(),
        };
        certificate.sign(&secrets());
        r.seq += 1;
        r.status = Status::Done;
        r.sealed = None;
        r.results = serde_json::to_value(&certificate).ok();
        r
    }

    fn rows(records: &[&ErasureRecord]) -> Vec<RawRow> {
        records.iter().map(|r| RawRow::from(*r)).collect()
    }

    #[test]
    fn well_formed_requests_are_read_with_their_latest_state() {
        let pending = record(Status::Pending, "a@example.com");
        let mut running = pending.clone();
        running.seq = 1;
        running.status = Status::Running;
        running.results = Some(serde_json::json!({"tables": {}}));
        let done = finished(record(Status::Pending, "b@example.com"));
        let state = classify(rows(&[&pending, &running, &done]), &secrets());
        assert!(state.invalid.is_empty(), "{:?}", state.invalid);
        assert_eq!(state.requests.len(), 2);
        let open = state.requests.iter().find(|r| r.id == pending.id).expect("open");
        assert_eq!(open.status, Status::Running);
        let closed = state.requests.iter().find(|r| r.id == done.id).expect("done");
        assert_eq!(closed.status, Status::Done);
        assert!(closed.error.is_none() && closed.sealed.is_none());
        assert!(!state.stale);
    }

    /// Every kind of damage makes its request invalid, with a reason that
    /// quotes nothing stored.
    #[test]
    fn damaged_rows_make_their_request_invalid_and_quote_nothing() {
        let secrets = secrets();
        let planted = "planted@example.com";
        let base = record(Status::Pending, "c@example.com");
        let raw = RawRow::from(&base);
        let other = record(Status::Pending, "d@example.com");
        let cases: Vec<(RawRow, &str)> = vec![
            (
                RawRow {
                    status: Some(planted.into()),
                    ..raw.clone()
                },
                "status",
            ),
            (
                RawRow {
                    subject_hashes: Some(planted.into()),
                    ..raw.clone()
                },
                "subject_hashes",
            ),
            (
                RawRow {
                    subject_hashes: Some(serde_json::json!([planted]).to_string()),
                    ..raw.clone()
                },
                "subject_hashes",
            ),
            (
                RawRow {
                    tables: Some(planted.into()),
                    ..raw.clone()
                },
                "tables",
            ),
            (
                RawRow {
                    results: Some(planted.into()),
                    ..raw.clone()
                },
                "results",
            ),
            (
                RawRow {
                    sealed: None,
                    ..raw.clone()
                },
                "sealed",
            ),
            (
                RawRow {
                    sealed: Some(planted.into()),
                    ..raw.clone()
                },
                "sealed",
            ),
            // Another request's sealed subjects: bound to the other id.
            (
                RawRow {
                    sealed: other.sealed.clone(),
                    ..raw.clone()
                },
                "sealed",
            ),
            // Subjects that do not hash to the stored hashes.
            (
                RawRow {
                    subject_hashes: Some(serde_json::json!(["ab".repeat(32)]).to_string()),
                    ..raw.clone()
                },
                "subject_hashes",
            ),
            (
                RawRow {
                    seq: None,
                    ..raw.clone()
                },
                "seq",
            ),
            (
                RawRow {
                    received_at: None,
                    ..raw.clone()
                },
                "received_at",
            ),
            (
                RawRow {
                    purge: None,
                    ..raw.clone()
                },
                "purge",
            ),
            (
                RawRow {
                    status: Some("done".into()),
                    results: Some(serde_json::json!({"signature": "00"}).to_string()),
                    ..raw.clone()
                },
                "certificate",
            ),
        ];
        for (row, column) in cases {
            let state = classify(vec![row], &secrets);
            assert!(state.requests.is_empty(), "{column}: {:?}", state.requests);
            let [entry] = state.invalid.as_slice() else {
                panic!("{column}: {:?}", state.invalid)
            };
            assert_eq!(entry.key, base.id);
            assert!(entry.reason.contains(column), "{column}: {}", entry.reason);
            assert!(!entry.reason.contains("planted"), "{}", entry.reason);
            assert_eq!(state.kept.len(), 1, "the row is kept as it is");
        }
        // An id silt did not issue is never shown: the row is named by position.
        let state = classify(
            vec![
                raw.clone(),
                RawRow {
                    id: Some(planted.into()),
                    ..raw.clone()
                },
                RawRow {
                    id: Some(base.id.to_uppercase()),
                    ..raw.clone()
                },
            ],
            &secrets,
        );
        assert_eq!(state.requests.len(), 1);
        let keys: Vec<String> = state.invalid.iter().map(|e| e.key.clone()).collect();
        assert_eq!(keys.len(), 2);
        assert!(
            keys.iter()
                .all(|k| k.starts_with("invalid-row-") && k.len() == 12 + 16),
            "{keys:?}"
        );
        assert_ne!(keys[0], keys[1]);
        assert!(
            state.invalid[0].reason.starts_with("ledger row 2:"),
            "{:?}",
            state.invalid
        );
        assert!(
            state.invalid[1].reason.starts_with("ledger row 3:"),
            "{:?}",
            state.invalid
        );
        // The same rows elsewhere in the ledger keep their names.
        let moved = classify(
            vec![
                state.kept[1].clone(),
                state.kept[0].clone(),
                state.kept[0].clone(),
            ],
            &secrets,
        );
        let moved_keys: Vec<String> = moved.invalid.iter().map(|e| e.key.clone()).collect();
        assert_eq!(moved_keys, vec![keys[1].clone(), keys[0].clone()]);
        assert_eq!(moved.invalid[1].rows, 2, "identical rows are one entry");
    }

    /// States go forward only, rows of one request agree on what was asked,
    /// and one seq holds one row.
    #[test]
    fn inconsistent_histories_are_invalid() {
        let secrets = secrets();
        let pending = record(Status::Pending, "e@example.com");
        let mut running = pending.clone();
        running.seq = 1;
        running.status = Status::Running;
        let mut back = pending.clone();
        back.seq = 2;
        let state = classify(rows(&[&pending, &running, &back]), &secrets);
        assert!(
            state.invalid[0].reason.contains("back from running"),
            "{:?}",
            state.invalid
        );
        let mut widened = running.clone();
        widened.purge = false;
        let state = classify(rows(&[&pending, &widened]), &secrets);
        assert!(
            state.invalid[0].reason.contains("disagree"),
            "{:?}",
            state.invalid
        );
        let mut twin = running.clone();
        twin.results = Some(serde_json::json!({"tables": {"t": {}}}));
        let state = classify(rows(&[&pending, &running, &twin]), &secrets);
        assert!(
            state.invalid[0].reason.contains("share one seq"),
            "{:?}",
            state.invalid
        );
        // The same row twice is not a conflict.
        let state = classify(rows(&[&pending, &running, &running]), &secrets);
        assert!(state.invalid.is_empty(), "{:?}", state.invalid);
    }

    /// A verified certificate stands: a later row (a replayed pending row, or
    /// garbage) is ignored and compaction is due; a forged certificate, an
    /// edited one, or a genuine one under another id is not done.
    #[test]
    fn certificates_decide_what_is_finished() {
        let secrets = secrets();
        let pending = record(Status::Pending, "f@example.com");
        let done = finished(pending.clone());
        let mut replay = pending.clone();
        replay.seq = 5;
        let garbage = RawRow {
            seq: Some(6),
            status: Some("garbage".into()),
            ..RawRow::from(&pending)
        };
        let mut raws = rows(&[&pending, &done, &replay]);
        raws.push(garbage);
        let state = classify(raws, &secrets);
        assert!(state.invalid.is_empty(), "{:?}", state.invalid);
        assert_eq!(state.requests[0].status, Status::Done);
        assert_eq!(state.ignored, vec![(pending.id.clone(), 2)]);
        assert!(state.stale);

        let mut edited = done.clone();
        if let Some(results) = edited.results.as_mut() {
            results["tables"] = serde_json::json!([{"table": "t"}]);
        }
        let mut moved = finished(record(Status::Pending, "g@example.com"));
        moved.results = done.results.clone();
        let other_key = Secrets::new("another-secret", &"11".repeat(32)).expect("secrets");
        for (row, why) in [(&edited, "does not verify"), (&moved, "another request")] {
            let state = classify(rows(&[row]), &secrets);
            assert!(state.requests.is_empty());
            assert!(state.invalid[0].reason.contains(why), "{:?}", state.invalid);
        }
        let state = classify(rows(&[&done]), &other_key);
        assert!(
            state.invalid[0].reason.contains("does not verify"),
            "{:?}",
            state.invalid
        );
    }

    /// A crash between a request's last row and the compaction leaves the
    /// sealed subjects in an older row; the next start compacts them away.
    /// Invalid rows survive compactions unchanged.
    #[tokio::test(flavor = "multi_thread")]
    async fn stale_sealed_rows_of_finished_requests_are_compacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
        let ledger = Ledger::new(warehouse.clone(), secrets());
        assert!(!ledger.compact_if_stale().await.expect("no ledger yet"));
        let (first, created) = ledger
            .insert_if_absent(record(Status::Pending, "r1@example.com"))
            .await
            .expect("insert");
        assert!(created);
        let second = record(Status::Pending, "r2@example.com");
        let (again, created) = ledger.insert_if_absent(second.clone()).await.expect("insert");
        assert!(created && again.id == second.id);
        let mut done = finished(first.clone());
        done.seq -= 1; // `update` bumps it
        ledger.update(&mut done).await.expect("update");
        let damaged = RawRow {
            id: Some("damaged".into()),
            ..RawRow::from(&second)
        };
        let mut table = ledger.table().await.expect("table");
        write_rows(&mut table, std::slice::from_ref(&damaged), WriteMode::Append)
            .await
            .expect("append");
        assert!(ledger.compact_if_stale().await.expect("compact"));
        let table = ledger.table().await.expect("table");
        let rows = read_rows(&table).await.expect("rows");
        assert_eq!(
            rows.len(),
            3,
            "one row per request, and the damaged row, after compaction"
        );
        assert!(
            rows.iter()
                .all(|r| r.id.as_deref() != Some(first.id.as_str()) || r.sealed.is_none())
        );
        // The open request keeps its sealed subjects; the damaged row is as it was.
        assert!(
            rows.iter()
                .any(|r| r.id.as_deref() == Some(second.id.as_str()) && r.sealed.is_some())
        );
        assert!(rows.contains(&damaged));
        assert!(!ledger.compact_if_stale().await.expect("nothing stale"));
        // Idempotent on request_id.
        let third = record(Status::Pending, "r3@example.com");
        let (existing, created) = ledger.insert_if_absent(third.clone()).await.expect("insert");
        assert!(created && existing.id == third.id);
        let (existing, created) = ledger
            .insert_if_absent(ErasureRecord {
                request_id: first.request_id.clone(),
                ..record(Status::Pending, "r4@example.com")
            })
            .await
            .expect("insert");
        assert!(!created);
        assert_eq!(existing.id, first.id);
    }
}
