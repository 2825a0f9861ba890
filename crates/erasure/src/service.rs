//! The erasure service: files requests in the ledger, runs them (one
//! batched delete per table, purge, verification, certificate) and answers
//! about them. One worker per process takes open requests oldest first; a
//! restarted process resumes what the ledger shows open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use silt_table::{ExclusiveWriteGuard, Table, TableError, Warehouse};
use tokio::sync::{Mutex, Notify};

use crate::certificate::{Certificate, TableReport, Timings, Verification};
use crate::error::{ErasureError, Result};
use crate::ledger::{ErasureRecord, InvalidEntry, LEDGER_TABLE, Ledger, LedgerState, Status};
use crate::matcher::{MatchMode, Subjects, predicate};
use crate::observer::{ErasureObserver, NoObserver};
use crate::purge::{commit_metadata, purge};
use crate::rewrite::{Unsupported, erase_rows};
use crate::secrets::Secrets;
use crate::verify::scan_store;

/// The table property listing a table's subject columns (comma-separated).
pub use silt_table::SUBJECT_COLUMNS_PROPERTY;
/// The dead-letter table, whose `raw` text is searched for subjects.
pub const DEAD_LETTER_TABLE: &str = "_silt_dead_letters";
/// Table property set by a purge: the erasure request that removed the
/// table's history before the version in [`PURGED_BEFORE_PROPERTY`].
pub const PURGED_BY_PROPERTY: &str = "silt.erasure.purged_by";
/// Table property set by a purge: versions before this one are gone.
pub const PURGED_BEFORE_PROPERTY: &str = "silt.erasure.purged_before_version";
/// Delta's tombstone retention, lowered to nothing for the purge's checkpoint.
const RETENTION_PROPERTY: &str = "delta.deletedFileRetentionDuration";
const NO_RETENTION: &str = "interval 0 seconds";
/// Delta's default, restored when the table had no retention of its own.
const DEFAULT_RETENTION: &str = "interval 1 weeks";
/// Days a controller has to answer an erasure request (GDPR art. 12(3)).
pub const DEADLINE_DAYS: i64 = 30;
/// Most subjects one request may carry.
pub const MAX_SUBJECTS: usize = 100_000;
/// The worker's first delay before retrying a failed pass (doubled after
/// each further failure, up to [`RETRY_MOST`]).
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// The longest delay between two attempts of a failing pass.
const RETRY_MOST: Duration = Duration::from_secs(300);

/// How the erasure service is set up.
#[derive(Debug, Clone, Default)]
pub struct ErasureConfig {
    /// HMAC secret for subject hashes and certificate signatures.
    pub secret: Option<String>,
    /// AES-256-GCM key (64 hex digits) sealing pending subjects.
    pub key: Option<String>,
    /// A pause after each step of a table's erasure: throttling, and the
    /// window crash tests kill the server in.
    pub step_delay: Duration,
}

/// A new request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewRequest {
    /// The identifiers to erase (emails, user ids…).
    pub subjects: Vec<String>,
    /// Limit the erasure to these tables (default: every table with subject columns).
    pub tables: Option<Vec<String>>,
    /// Also purge history (default true).
    pub purge: Option<bool>,
    /// Idempotency key: a second request with it answers the first.
    pub request_id: Option<String>,
}

/// What `submit` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// The erasure id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// False when `request_id` matched an earlier request.
    pub created: bool,
}

/// A request as shown to operators: hashes, never values.
///
/// Ledger rows that fail validation are shown too, with status
/// [`Status::Invalid`]: `id` is the request id when the row has one silt
/// issues, else `invalid-row-<hex>` (a keyed hash of the row); `error` says what is wrong (columns and row
/// positions, never a stored value); no subjects, tables or certificate are
/// shown, since none of what such rows hold can be trusted.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// The erasure id (or `invalid-row-<hex>` for a row without one).
    pub id: String,
    /// The caller's idempotency key.
    pub request_id: Option<String>,
    /// Where it is.
    pub status: Status,
    /// When it was received (RFC 3339).
    pub received_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// received_at + 30 days.
    pub deadline: DateTime<Utc>,
    /// Still open past its deadline.
    pub overdue: bool,
    /// Number of subjects.
    pub subjects: usize,
    /// Their salted hashes.
    pub subject_hashes: Vec<String>,
    /// Tables it was limited to.
    pub tables: Option<Vec<String>>,
    /// Whether history is purged.
    pub purge: bool,
    /// The signed certificate, once finished.
    pub certificate: Option<Value>,
    /// Why it failed, if it did (paths and steps, no values); for an open
    /// request whose last attempt failed, that failure and when the worker
    /// tries again; for an invalid entry, what is wrong with it.
    pub error: Option<String>,
}

impl From<&InvalidEntry> for RequestView {
    fn from(entry: &InvalidEntry) -> Self {
        RequestView {
            id: entry.key.clone(),
            request_id: None,
            status: Status::Invalid,
            received_at: entry.received_at,
            updated_at: entry.updated_at,
            deadline: entry.received_at + chrono::Duration::days(DEADLINE_DAYS),
            overdue: false,
            subjects: 0,
            subject_hashes: Vec::new(),
            tables: None,
            purge: false,
            certificate: None,
            error: Some(format!(
                "{}; not run (see the erasure guide, 'A damaged ledger')",
                entry.reason
            )),
        }
    }
}

impl From<ErasureRecord> for RequestView {
    fn from(r: ErasureRecord) -> Self {
        let deadline = r.received_at + chrono::Duration::days(DEADLINE_DAYS);
        let finished = !r.status.is_open();
        RequestView {
            overdue: !finished && Utc::now() > deadline,
            deadline,
            certificate: if finished { r.results.clone() } else { None },
            subjects: r.subject_hashes.len(),
            id: r.id,
            request_id: r.request_id,
            status: r.status,
            received_at: r.received_at,
            updated_at: r.updated_at,
            subject_hashes: r.subject_hashes,
            tables: r.tables,
            purge: r.purge,
            error: r.error,
        }
    }
}

/// Progress of a running request, kept in the ledger so a restart resumes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    started_at: Option<DateTime<Utc>>,
    /// The request leading the pass this one is part of (None: it leads).
    #[serde(default)]
    batch: Option<String>,
    /// On the leader: every request of the pass, itself first.
    #[serde(default)]
    members: Vec<String>,
    tables: BTreeMap<String, TableProgress>,
}

fn progress_of(record: &ErasureRecord) -> Progress {
    record
        .results
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Groups open requests into passes: interrupted passes first (a leader and
/// the running requests that name it), then pending requests with the same
/// tables and purge setting, at most [`MAX_SUBJECTS`] subjects per pass.
fn plan_passes(open: Vec<ErasureRecord>) -> Vec<Vec<ErasureRecord>> {
    let (running, pending): (Vec<_>, Vec<_>) = open.into_iter().partition(|r| r.status == Status::Running);
    let leader_of = |r: &ErasureRecord| progress_of(r).batch.unwrap_or_else(|| r.id.clone());
    let running_ids: HashSet<String> = running.iter().map(|r| r.id.clone()).collect();
    let mut passes: Vec<Vec<ErasureRecord>> = Vec::new();
    let mut by_leader: BTreeMap<String, Vec<ErasureRecord>> = BTreeMap::new();
    for record in running {
        let mut leader = leader_of(&record);
        // A follower whose leader already finished runs on its own.
        if !running_ids.contains(&leader) {
            leader = record.id.clone();
        }
        by_leader.entry(leader).or_default().push(record);
    }
    for (leader, mut members) in by_leader {
        members.sort_by_key(|r| r.id != leader);
        passes.push(members);
    }
    // Requests limited to the same tables, with the same purge setting.
    type PassKey = (Option<Vec<String>>, bool);
    let mut groups: Vec<(PassKey, Vec<ErasureRecord>)> = Vec::new();
    for record in pending {
        let key = (record.tables.clone(), record.purge);
        let open_group = groups.iter_mut().rev().find(|(k, members)| {
            *k == key
                && members.iter().map(|m| m.subject_hashes.len()).sum::<usize>() + record.subject_hashes.len()
                    <= MAX_SUBJECTS
        });
        match open_group {
            Some((_, members)) => members.push(record),
            None => groups.push((key, vec![record])),
        }
    }
    passes.extend(groups.into_iter().map(|(_, members)| members));
    passes
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TableProgress {
    deleted: bool,
    purged: bool,
    report: TableReport,
}

/// A failed pass, waiting for its next attempt.
#[derive(Debug, Clone)]
struct Retry {
    attempts: u32,
    next: Instant,
    /// The failure (value-free, like every [`ErasureError`]).
    error: String,
}

/// The erasure service of one warehouse.
pub struct Erasure {
    warehouse: Warehouse,
    secrets: Secrets,
    ledger: Ledger,
    config: ErasureConfig,
    observer: Arc<dyn ErasureObserver>,
    wake: Notify,
    running: Mutex<()>,
    retry_first: Duration,
    retry_most: Duration,
    /// Open requests whose pass failed, by request id.
    retries: StdMutex<HashMap<String, Retry>>,
    /// Invalid ledger entries and ignored rows already reported in a log line.
    reported: StdMutex<HashSet<String>>,
    /// Erased subjects stay erased: registered with silt-table for this
    /// warehouse while this service lives.
    suppression: Arc<crate::suppression::Suppression>,
}

/// Locks `mutex`, also after a panic elsewhere (the maps stay usable).
fn locked<T>(mutex: &StdMutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one round of the worker did.
struct Round {
    /// Open requests it ran.
    ran: usize,
    /// The first failure of a pass (the pass's requests wait for a retry).
    failed: Option<ErasureError>,
}

impl std::fmt::Debug for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasure")
            .field("warehouse", &self.warehouse)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Erasure {
    /// Opens the service: loads or creates the secrets (see [`Secrets::load`]).
    pub fn open(warehouse: Warehouse, config: ErasureConfig) -> Result<Self> {
        Self::open_with_observer(warehouse, config, Arc::new(NoObserver))
    }

    /// Like [`Erasure::open`], reporting progress to `observer` (metrics).
    pub fn open_with_observer(
        warehouse: Warehouse,
        config: ErasureConfig,
        observer: Arc<dyn ErasureObserver>,
    ) -> Result<Self> {
        let local = match warehouse.root().scheme() {
            "file" => warehouse.root().to_file_path().ok(),
            _ => None,
        };
        let secrets = Secrets::load(config.secret.as_deref(), config.key.as_deref(), local.as_deref())?;
        let suppression = Arc::new(crate::suppression::Suppression::new(&secrets, observer.clone()));
        let suppressor: Arc<dyn silt_table::Suppressor> = suppression.clone();
        silt_table::register_suppressor(warehouse.root().as_str(), &suppressor);
        Ok(Self {
            suppression,
            ledger: Ledger::new(warehouse.clone(), secrets.clone()),
            warehouse,
            secrets,
            config,
            observer,
            wake: Notify::new(),
            running: Mutex::new(()),
            retry_first: RETRY_FIRST,
            retry_most: RETRY_MOST,
            retries: StdMutex::new(HashMap::new()),
            reported: StdMutex::new(HashSet::new()),
        })
    }

    /// Sets how long the worker waits before retrying a failed pass: `first`
    /// after the first failure, doubled after each further one, at most
    /// `most` (defaults: 5 s and 5 min).
    pub fn with_retry_delays(mut self, first: Duration, most: Duration) -> Self {
        self.retry_first = first;
        self.retry_most = most.max(first);
        self
    }

    /// The delay after the `attempts`-th failure in a row.
    fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        self.retry_first.saturating_mul(factor).min(self.retry_most)
    }

    /// Reads the ledger and suppresses the subjects of every request in it
    /// (call once at start, before serving writes; the worker keeps it up to
    /// date afterwards).
    pub async fn load_suppression(&self) -> Result<()> {
        let state = self.ledger.state().await?;
        self.suppression.add(&state.requests);
        Ok(())
    }

    /// The secrets (to verify certificates).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Files a request (idempotent on `request_id`) and wakes the worker.
    pub async fn submit(&self, request: NewRequest) -> Result<Submitted> {
        let mut subjects: Vec<String> = request.subjects.into_iter().filter(|s| !s.is_empty()).collect();
        subjects.sort();
        subjects.dedup();
        if subjects.is_empty() {
            return Err(ErasureError::Invalid(
                "'subjects' must list at least one non-empty identifier".into(),
            ));
        }
        if subjects.len() > MAX_SUBJECTS {
            return Err(ErasureError::Invalid(format!(
                "at most {MAX_SUBJECTS} subjects per request; split it"
            )));
        }
        if let Some(tables) = &request.tables {
            for name in tables {
                // Of silt's internal tables only the dead letters hold rows
                // of data subjects; the ledger is never a target (opening it
                // here raced its own compaction: a 500).
                if silt_table::is_internal_table(name) && name != DEAD_LETTER_TABLE {
                    return Err(ErasureError::Invalid(format!(
                        "table '{name}' is internal to silt and cannot be erased; list tables with subject columns, or {DEAD_LETTER_TABLE}"
                    )));
                }
                let table = self.warehouse.table(name).await.map_err(|e| match e {
                    TableError::NotFound { .. } => ErasureError::Invalid(format!("table '{name}' not found")),
                    e => e.into(),
                })?;
                if subject_columns(&table).is_empty() && name != DEAD_LETTER_TABLE {
                    return Err(ErasureError::Invalid(format!(
                        "table '{name}' has no subject columns; set TBLPROPERTIES ('{SUBJECT_COLUMNS_PROPERTY}' = 'col,…')"
                    )));
                }
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let plaintext =
            serde_json::to_vec(&subjects).map_err(|e| ErasureError::Invalid(format!("subjects: {e}")))?;
        let now = Utc::now();
        let record = ErasureRecord {
            sealed: Some(self.secrets.seal(&id, &plaintext)?),
            subject_hashes: subjects.iter().map(|s| self.secrets.subject_hash(s)).collect(),
            id,
            seq: 0,
            request_id: request.request_id,
            status: Status::Pending,
            received_at: now,
            updated_at: now,
            tables: request.tables,
            purge: request.purge.unwrap_or(true),
            results: None,
            error: None,
        };
        let asked = (record.subject_hashes.clone(), record.tables.clone(), record.purge);
        let (stored, created) = self.ledger.insert_if_absent(record).await?;
        // From acceptance on, this server stores no row of these subjects.
        self.suppression.add(std::slice::from_ref(&stored));
        if !created && (stored.subject_hashes.clone(), stored.tables.clone(), stored.purge) != asked {
            return Err(ErasureError::Conflict(
                stored.request_id.clone().unwrap_or_default(),
            ));
        }
        if created {
            tracing::info!(erasure = %stored.id, subjects = stored.subject_hashes.len(), "erasure request filed");
            self.observer.filed();
            self.wake.notify_one();
        }
        Ok(Submitted {
            id: stored.id,
            status: stored.status,
            created,
        })
    }

    /// One request (or invalid ledger entry, by the id [`Erasure::list`] shows).
    pub async fn get(&self, id: &str) -> Result<RequestView> {
        let state = self.ledger.state().await?;
        if let Some(record) = state.requests.into_iter().find(|r| r.id == id) {
            return Ok(self.view(record));
        }
        state
            .invalid
            .iter()
            .find(|e| e.key == id)
            .map(RequestView::from)
            .ok_or_else(|| ErasureError::NotFound(id.to_string()))
    }

    /// Every request, oldest first, and every ledger entry that fails
    /// validation (status `invalid`, see [`RequestView`]).
    pub async fn list(&self) -> Result<Vec<RequestView>> {
        let state = self.ledger.state().await?;
        let mut views: Vec<RequestView> = state.invalid.iter().map(RequestView::from).collect();
        views.extend(state.requests.into_iter().map(|r| self.view(r)));
        views.sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
        Ok(views)
    }

    /// A request as shown, with the worker's last failure if it is waiting
    /// to retry.
    fn view(&self, record: ErasureRecord) -> RequestView {
        let retry = record
            .status
            .is_open()
            .then(|| locked(&self.retries).get(&record.id).cloned())
            .flatten();
        let mut view = RequestView::from(record);
        if let Some(retry) = retry {
            let wait = retry.next.saturating_duration_since(Instant::now());
            view.error = Some(format!(
                "attempt {} failed: {}; the worker tries again in {} s",
                retry.attempts,
                retry.error,
                wait.as_secs()
            ));
        }
        view
    }

    /// Runs every open request to its end; returns how many ran. Ledger
    /// entries that fail validation are skipped (see [`RequestView`]); a
    /// pass that fails leaves its requests open and answers its error.
    pub async fn run_pending(&self) -> Result<usize> {
        let round = self.run_round(false).await?;
        match round.failed {
            Some(error) => Err(error),
            None => Ok(round.ran),
        }
    }

    /// One round: reads and validates the ledger, reports what fails
    /// validation, compacts a stale ledger, and runs every open request —
    /// with `respect_retries`, only those whose retry delay has passed.
    async fn run_round(&self, respect_retries: bool) -> Result<Round> {
        let _one_at_a_time = self.running.lock().await;
        let state = self.ledger.state().await?;
        // Requests filed through other servers are suppressed here too.
        self.suppression.add(&state.requests);
        self.report(&state);
        if state.stale {
            // A crash after a request finished but before the ledger was
            // compacted (or rows written after a certificate) leaves
            // sealed subjects or ignored rows behind.
            if let Err(error) = self.ledger.compact("ledger-recovery").await {
                tracing::warn!(%error, "erasure ledger compaction failed; tried again next round");
            }
        }
        let now = Instant::now();
        let open: Vec<ErasureRecord> = state
            .requests
            .into_iter()
            .filter(|r| r.status.is_open())
            .collect();
        {
            // Requests finished or gone meanwhile need no retry.
            let ids: HashSet<&str> = open.iter().map(|r| r.id.as_str()).collect();
            locked(&self.retries).retain(|id, _| ids.contains(id.as_str()));
        }
        let open: Vec<ErasureRecord> = if respect_retries {
            let retries = locked(&self.retries);
            open.into_iter()
                .filter(|r| retries.get(&r.id).is_none_or(|retry| retry.next <= now))
                .collect()
        } else {
            open
        };
        let mut round = Round {
            ran: open.len(),
            failed: None,
        };
        for pass in plan_passes(open) {
            let ids: Vec<String> = pass.iter().map(|r| r.id.clone()).collect();
            match self.run_pass(pass).await {
                Ok(()) => {
                    let mut retries = locked(&self.retries);
                    for id in &ids {
                        retries.remove(id);
                    }
                }
                Err(error) => {
                    // The requests stay open; the other passes still run,
                    // and this one is tried again later, each time later.
                    let attempts = {
                        let mut retries = locked(&self.retries);
                        let attempts = ids
                            .iter()
                            .filter_map(|id| retries.get(id).map(|r| r.attempts))
                            .max()
                            .unwrap_or(0)
                            + 1;
                        let retry = Retry {
                            attempts,
                            next: Instant::now() + self.retry_delay(attempts),
                            error: error.to_string(),
                        };
                        for id in &ids {
                            retries.insert(id.clone(), retry.clone());
                        }
                        attempts
                    };
                    self.observer.retrying(ids.len());
                    tracing::warn!(erasure = %ids[0], requests = ids.len(), attempt = attempts,
                        retry_in_s = self.retry_delay(attempts).as_secs_f64(), %error,
                        "erasure pass failed; the worker tries again later");
                    round.failed.get_or_insert(error);
                }
            }
        }
        Ok(round)
    }

    /// Logs each invalid ledger entry and each ignored row once per process
    /// (by request id or row position and reason: never a stored value) and
    /// tells the observer how many invalid entries there are.
    fn report(&self, state: &LedgerState) {
        self.observer.ledger_invalid(state.invalid.len());
        let mut reported = locked(&self.reported);
        for entry in &state.invalid {
            if reported.insert(format!("invalid {} {}", entry.key, entry.rows)) {
                tracing::warn!(erasure = %entry.key, rows = entry.rows, reason = %entry.reason,
                    "erasure ledger entry fails validation: skipped, listed as invalid");
            }
        }
        for (id, rows) in &state.ignored {
            if reported.insert(format!("ignored {id} {rows}")) {
                tracing::warn!(erasure = %id, rows,
                    "erasure ledger rows after a request's verified certificate are ignored");
            }
        }
    }

    /// When the earliest waiting retry is due.
    fn next_retry(&self) -> Option<Instant> {
        locked(&self.retries).values().map(|r| r.next).min()
    }

    /// The worker loop: runs open requests at start (resuming what a crash
    /// interrupted), then whenever a request is filed or a failed pass is
    /// due again, until `stop` is set. A ledger that cannot be read and a
    /// failing pass are retried after growing delays, never in a tight loop;
    /// a request filed meanwhile runs at once.
    pub async fn work(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut ledger_failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let due = match self.run_round(true).await {
                Ok(_) => {
                    ledger_failures = 0;
                    self.next_retry()
                }
                Err(error) => {
                    ledger_failures = ledger_failures.saturating_add(1);
                    let delay = self.retry_delay(ledger_failures);
                    tracing::warn!(%error, attempt = ledger_failures, retry_in_s = delay.as_secs_f64(),
                        "erasure ledger cannot be read; the worker tries again later");
                    Some(Instant::now() + delay)
                }
            };
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = sleep => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn pause(&self) {
        if !self.config.step_delay.is_zero() {
            tokio::time::sleep(self.config.step_delay).await;
        }
    }

    /// Opens a request's sealed subjects.
    fn unseal(&self, record: &ErasureRecord) -> Result<Vec<String>> {
        let sealed = record.sealed.clone().ok_or_else(|| ErasureError::Sealed {
            id: record.id.clone(),
            reason: "no sealed subjects on an open request".into(),
        })?;
        let plaintext = self.secrets.open(&record.id, &sealed)?;
        serde_json::from_slice(&plaintext).map_err(|_| ErasureError::Sealed {
            id: record.id.clone(),
            reason: "sealed subjects are not a JSON list".into(),
        })
    }

    /// Runs one pass: every request in `members` (the first leads) erased
    /// with one delete per table, one purge and one verification for all of
    /// their subjects; each request then gets its own certificate.
    async fn run_pass(&self, members: Vec<ErasureRecord>) -> Result<()> {
        let mut members = members.into_iter();
        let Some(mut record) = members.next() else {
            return Ok(());
        };
        let mut followers: Vec<ErasureRecord> = members.collect();
        let mut values = self.unseal(&record)?;
        for follower in &followers {
            values.extend(self.unseal(follower)?);
        }
        let subjects = Arc::new(Subjects::new(&values));
        let subject_count = values.len();
        drop(values);

        let mut progress = progress_of(&record);
        let started_at = *progress.started_at.get_or_insert_with(Utc::now);
        let resumed = record.status == Status::Running;
        // Followers are marked before the leader: a crash in between leaves
        // them running under a leader that is still pending, and they then
        // run on their own (nothing was deleted yet).
        for follower in followers.iter_mut().filter(|f| f.status == Status::Pending) {
            follower.status = Status::Running;
            follower.results = serde_json::to_value(Progress {
                started_at: Some(started_at),
                batch: Some(record.id.clone()),
                ..Progress::default()
            })
            .ok();
            self.ledger.update(follower).await?;
        }
        progress.members = std::iter::once(&record)
            .chain(&followers)
            .map(|r| r.id.clone())
            .collect();
        if record.status == Status::Pending {
            record.status = Status::Running;
            record.results = serde_json::to_value(&progress).ok();
            self.ledger.update(&mut record).await?;
        } else {
            tracing::info!(erasure = %record.id, "resuming interrupted erasure");
        }
        tracing::info!(erasure = %record.id, requests = progress.members.len(), subjects = subject_count,
            "erasure started");

        let mut targets = self.targets(&record).await?;
        if self.warehouse.exists(DEAD_LETTER_TABLE).await?
            && record
                .tables
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| n == DEAD_LETTER_TABLE))
            && !targets.iter().any(|(t, _, _)| t == DEAD_LETTER_TABLE)
        {
            targets.push((
                DEAD_LETTER_TABLE.to_string(),
                vec!["raw".to_string()],
                MatchMode::Contains,
            ));
        }

        for (name, columns, mode) in &targets {
            let mut step = progress.tables.get(name).cloned().unwrap_or_default();
            // Writers of this process wait while the table is erased: the
            // purge's zero-retention VACUUM must not delete the data file of
            // a write that has not committed yet, and the delete's rewrite
            // then never loses a commit race to an append.
            // (Released during the configured pauses between steps: the
            // purge takes it again and waits for writes begun meanwhile.)
            if !step.deleted {
                let exclusive = self.warehouse.table(name).await?.exclusive_write_gate().await;
                step.report = self
                    .delete(
                        &record,
                        subject_count,
                        resumed,
                        name,
                        columns,
                        *mode,
                        &subjects,
                        &exclusive,
                    )
                    .await?;
                self.erase_tombstones(&record, name, &subjects).await?;
                step.deleted = true;
                progress.tables.insert(name.clone(), step.clone());
                record.results = serde_json::to_value(&progress).ok();
                self.ledger.update(&mut record).await?;
                drop(exclusive);
                self.pause().await;
            }
            if record.purge && !step.purged {
                let exclusive = self.warehouse.table(name).await?.exclusive_write_gate().await;
                let clock = Instant::now();
                let mut table = self.warehouse.table(name).await?;
                // Recorded before the purge so time travel into the purged
                // range can name the request.
                let retention = table
                    .properties()?
                    .get(RETENTION_PROPERTY)
                    .filter(|v| v.as_str() != NO_RETENTION)
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_RETENTION.to_string());
                let marker = [
                    (PURGED_BY_PROPERTY.to_string(), record.id.clone()),
                    (
                        PURGED_BEFORE_PROPERTY.to_string(),
                        (table.version() + 1).to_string(),
                    ),
                    // The checkpoint keeps `remove` tombstones younger than
                    // this retention, and a tombstone's path and partition
                    // values can name a subject (a subject partition column).
                    (RETENTION_PROPERTY.to_string(), NO_RETENTION.to_string()),
                ];
                table.set_properties(marker.into_iter().collect()).await?;
                let purged = purge(&table, &record.id, &exclusive).await?;
                table.refresh().await?;
                table
                    .set_properties(
                        [(RETENTION_PROPERTY.to_string(), retention)]
                            .into_iter()
                            .collect(),
                    )
                    .await?;
                step.report.files_purged = purged.files_purged;
                step.report.log_entries_expired = purged.log_entries_expired;
                step.report.checkpoint_version = Some(purged.checkpoint_version);
                step.report.timings_ms.purge_ms = clock.elapsed().as_millis() as u64;
                step.purged = true;
                progress.tables.insert(name.clone(), step.clone());
                record.results = serde_json::to_value(&progress).ok();
                self.ledger.update(&mut record).await?;
                tracing::info!(erasure = %record.id, table = %name, files = purged.files_purged,
                    log_entries = purged.log_entries_expired, "purged table history");
                drop(exclusive);
                self.pause().await;
            }
        }

        // Verification: every object under each table root (or, without a
        // purge, the files of the latest version, since history still holds rows).
        let mut reports = Vec::new();
        for (name, _, _) in &targets {
            let mut report = progress
                .tables
                .get(name)
                .map(|p| p.report.clone())
                .unwrap_or_default();
            let clock = Instant::now();
            let table = self.warehouse.table(name).await?;
            report.version_after = table.version();
            report.verification = if record.purge {
                scan_store(table.object_store(), &subjects, name).await?
            } else {
                scan_live_files(&table, &subjects).await?
            };
            report.timings_ms.verify_ms = clock.elapsed().as_millis() as u64;
            reports.push(report);
        }
        let ledger_table = self.ledger.table().await?;
        let ledger = scan_store(ledger_table.object_store(), &subjects, LEDGER_TABLE).await?;
        // View definitions are query text outside every table root: a view
        // that quotes a subject keeps it whatever the delete and purge did.
        // Always all of them, whichever tables the request named.
        let (views_store, view_paths) = self.warehouse.view_objects().await?;
        let views = crate::verify::scan_objects(views_store, view_paths, &subjects, "views").await?;

        let found: u64 = reports
            .iter()
            .map(|r| r.verification.occurrences_found)
            .sum::<u64>()
            + ledger.occurrences_found
            + views.occurrences_found;
        let status = if found == 0 { Status::Done } else { Status::Failed };
        let completed_at = Utc::now().to_rfc3339();
        let batch = if followers.is_empty() {
            Vec::new()
        } else {
            progress.members.clone()
        };
        // Followers first: the leader's record is what a restart resumes from.
        for member in followers.iter_mut().chain(std::iter::once(&mut record)) {
            let mut certificate = Certificate {
                certificate_version: 1,
                request_id: member.id.clone(),
                client_request_id: member.request_id.clone(),
                status: status.as_str().to_string(),
                hash_algorithm: "HMAC-SHA256".into(),
                subject_hashes: member.subject_hashes.clone(),
                purge: member.purge,
                received_at: member.received_at.to_rfc3339(),
                started_at: started_at.to_rfc3339(),
                completed_at: completed_at.clone(),
                batch: batch.clone(),
                tables: reports.clone(),
                ledger: ledger.clone(),
                views: views.clone(),
                signature_algorithm: "HMAC-SHA256".into(),
                signature: String::new(),
            };
            certificate.sign(&self.secrets);
            member.error = certificate.failure_summary();
            member.status = status;
            member.sealed = None;
            member.results = serde_json::to_value(&certificate).ok();
            self.ledger.update(member).await?;
        }
        // The sealed subjects are still in the ledger's older rows and files.
        self.ledger.compact(&record.id).await?;
        for report in &reports {
            self.observer.table_erased(report);
        }
        let seconds = (Utc::now() - started_at).num_milliseconds().max(0) as f64 / 1000.0;
        for _ in 0..=followers.len() {
            self.observer.finished(status, seconds);
        }
        tracing::info!(erasure = %record.id, requests = progress.members.len(), status = status.as_str(),
            occurrences = found, "erasure finished");
        Ok(())
    }

    /// Tables to erase from, with their subject columns.
    async fn targets(&self, record: &ErasureRecord) -> Result<Vec<(String, Vec<String>, MatchMode)>> {
        let names = match &record.tables {
            Some(tables) => tables.clone(),
            None => self.warehouse.list_tables().await?,
        };
        let mut out = Vec::new();
        for name in names {
            if name == LEDGER_TABLE || name == DEAD_LETTER_TABLE {
                continue;
            }
            let table = match self.warehouse.table(&name).await {
                Ok(table) => table,
                // Dropped since the request was filed: nothing left to erase.
                Err(TableError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let columns = subject_columns(&table);
            if !columns.is_empty() {
                out.push((name, columns, MatchMode::Equals));
            }
        }
        Ok(out)
    }

    /// A table's CDC tombstones (`silt_table::Table::tombstones`) hold the
    /// keys of deleted rows; where a key is a subject column, the subjects'
    /// tombstones are deleted too, and with a purge their history goes (the
    /// byte-level verification reads them as part of the table).
    async fn erase_tombstones(
        &self,
        record: &ErasureRecord,
        name: &str,
        subjects: &Arc<Subjects>,
    ) -> Result<()> {
        let table = self.warehouse.table(name).await?;
        let Some(tombstones) = table.tombstones().await? else {
            return Ok(());
        };
        let columns = subject_columns(&tombstones);
        if columns.is_empty() {
            return Ok(());
        }
        let gate = tombstones.exclusive_write_gate().await;
        let metadata = vec![("silt.erasure.id".to_string(), serde_json::json!(record.id))];
        if let Err(Unsupported(reason)) = erase_rows(
            &tombstones,
            &columns,
            MatchMode::Equals,
            subjects,
            metadata,
            &gate,
        )
        .await?
        {
            return Err(ErasureError::Step {
                table: name.to_string(),
                step: "delete tombstones",
                reason,
            });
        }
        if record.purge
            && let Some(tombstones) = table.tombstones().await?
        {
            purge(&tombstones, &record.id, &gate).await?;
        }
        Ok(())
    }

    /// The batched delete on one table: one rewrite for all subjects.
    #[allow(clippy::too_many_arguments)]
    async fn delete(
        &self,
        record: &ErasureRecord,
        subject_count: usize,
        resumed: bool,
        name: &str,
        columns: &[String],
        mode: MatchMode,
        subjects: &Arc<Subjects>,
        gate: &ExclusiveWriteGuard,
    ) -> Result<TableReport> {
        let clock = Instant::now();
        let table = self.warehouse.table(name).await?;
        let version_before = table.version();
        let mut report = TableReport {
            table: name.to_string(),
            columns: columns.to_vec(),
            match_mode: match mode {
                MatchMode::Equals => "equals",
                MatchMode::Contains => "contains",
            }
            .to_string(),
            version_before,
            version_after: version_before,
            ..TableReport::default()
        };
        // A crash between the delete's commit and the ledger recording it:
        // take the counts from that commit instead of deleting (nothing) again.
        if resumed && let Some((version, metrics)) = committed_delete(&table, &record.id).await {
            let count = |key: &str| metrics.get(key).and_then(Value::as_u64).unwrap_or(0);
            report.delete_version = Some(version);
            report.rows_deleted = count("num_deleted_rows");
            report.files_rewritten = count("num_removed_files");
            report.files_added = count("num_added_files");
            tracing::info!(erasure = %record.id, table = name, version, "delete had committed before a restart");
            return Ok(report);
        }
        let schema = table.schema()?;
        let present: Vec<String> = columns
            .iter()
            .filter(|c| schema.field_with_name(c).is_ok())
            .cloned()
            .collect();
        let metadata = vec![
            ("silt.erasure.id".to_string(), serde_json::json!(record.id)),
            (
                "silt.erasure.subjects".to_string(),
                serde_json::json!(subject_count),
            ),
        ];
        match erase_rows(&table, &present, mode, subjects, metadata, gate).await? {
            Ok(done) => {
                report.delete_version = done.version;
                report.version_after = done.version.unwrap_or(version_before);
                report.rows_deleted = done.rows_deleted;
                report.files_live = done.files_live;
                report.files_pruned = done.files_pruned;
                report.files_read = done.files_read;
                report.files_rewritten = done.files_rewritten;
                report.files_added = done.files_added;
                report.timings_ms.delete_ms = clock.elapsed().as_millis() as u64;
                tracing::info!(erasure = %record.id, table = name, rows = report.rows_deleted,
                    files_live = done.files_live, files_pruned = done.files_pruned,
                    files_read = done.files_read, files_rewritten = done.files_rewritten,
                    "erasure delete committed");
                return Ok(report);
            }
            Err(Unsupported(reason)) => {
                tracing::info!(erasure = %record.id, table = name, %reason,
                    "erasure falls back to deltalake DELETE (no file pruning)");
            }
        }
        let Some(expr) = predicate(subjects, &present, mode) else {
            return Ok(report);
        };
        let metadata = commit_metadata(
            &record.id,
            &[("silt.erasure.subjects", serde_json::json!(subject_count))],
        );
        let (deleted, counts) = table
            .change()
            .holding(gate)
            .with_metadata(metadata)
            .delete(Some(expr))
            .await
            .map_err(|e| ErasureError::step(name, "delete", e))?;
        let after = deleted.version();
        report.delete_version = (after > version_before).then_some(after);
        report.version_after = after;
        report.rows_deleted = counts.deleted.unwrap_or(0);
        report.files_rewritten = counts.files_removed;
        report.files_added = counts.files_added;
        // deltalake's DELETE reads every file it cannot prune by partition.
        report.files_live = table.file_stats()?.0;
        report.files_read = report.files_live;
        report.timings_ms = Timings {
            delete_ms: clock.elapsed().as_millis() as u64,
            ..Timings::default()
        };
        tracing::info!(erasure = %record.id, table = name, rows = report.rows_deleted,
            files_rewritten = report.files_rewritten, "erasure delete committed");
        Ok(report)
    }
}

/// How far back a resumed request looks for its own delete commit.
const RESUME_LOOKBACK: u64 = 50;

/// The version and `operationMetrics` of a DELETE commit of `table` made by
/// erasure `id`, if one is among the latest commits.
async fn committed_delete(table: &Table, id: &str) -> Option<(u64, serde_json::Map<String, Value>)> {
    use object_store::ObjectStoreExt;
    let store = table.object_store();
    let latest = table.version();
    for version in (latest.saturating_sub(RESUME_LOOKBACK)..=latest).rev() {
        let path = deltalake::Path::from(format!("_delta_log/{version:020}.json"));
        let Ok(object) = store.get(&path).await else {
            continue;
        };
        let Ok(bytes) = object.bytes().await else {
            continue;
        };
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let info = &action["commitInfo"];
            if info["silt.erasure.id"].as_str() == Some(id) && info["operation"].as_str() == Some("DELETE") {
                let mut metrics = info["operationMetrics"].as_object().cloned().unwrap_or_default();
                // silt's own rewrite records its counts as commit metadata.
                for (ours, theirs) in [
                    ("silt.erasure.rows_deleted", "num_deleted_rows"),
                    ("silt.erasure.files_removed", "num_removed_files"),
                    ("silt.erasure.files_added", "num_added_files"),
                ] {
                    if let Some(value) = info.get(ours) {
                        metrics.insert(theirs.to_string(), value.clone());
                    }
                }
                return Some((version, metrics));
            }
        }
    }
    None
}

/// A table's subject columns, from its property.
pub fn subject_columns(table: &Table) -> Vec<String> {
    silt_table::subject_columns(&table.properties().unwrap_or_default())
}

/// Without a purge, only the latest version's files must be clean.
async fn scan_live_files(table: &Table, subjects: &Arc<Subjects>) -> Result<Verification> {
    let store = table.object_store();
    let state = table
        .snapshot()
        .map_err(|e| ErasureError::step(table.name(), "verify", e))?;
    let paths: Vec<deltalake::Path> = state.log_data().iter().map(|f| f.object_store_path()).collect();
    crate::verify::scan_objects(store, paths, subjects, table.name()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use silt_table::{CommitOptions, TableSpec, WriteMode};

    fn open_record(
        id: &str,
        status: Status,
        batch: Option<&str>,
        subjects: usize,
        purge: bool,
    ) -> ErasureRecord {
        ErasureRecord {
            id: id.into(),
            seq: 0,
            request_id: None,
            status,
            received_at: Utc::now(),
            updated_at: Utc::now(),
            tables: None,
            purge,
            results: batch.map(|leader| {
                serde_json::to_value(Progress {
                    batch: Some(leader.into()),
                    ..Progress::default()
                })
                .expect("progress")
            }),
            error: None,
            sealed: None,
            subject_hashes: vec!["h".into(); subjects],
        }
    }

    /// Interrupted passes resume as they were (a follower whose leader
    /// finished runs alone); pending requests join by tables and purge, up
    /// to MAX_SUBJECTS subjects per pass.
    #[test]
    fn passes_resume_interrupted_batches_and_group_pending_requests() {
        let passes = plan_passes(vec![
            open_record("f1", Status::Running, Some("l1"), 1, true),
            open_record("l1", Status::Running, None, 1, true),
            open_record("orphan", Status::Running, Some("gone"), 1, true),
            open_record("p1", Status::Pending, None, MAX_SUBJECTS - 1, true),
            open_record("p2", Status::Pending, None, 1, false),
            open_record("p3", Status::Pending, None, 1, true),
            open_record("p4", Status::Pending, None, 1, true),
        ]);
        let ids: Vec<Vec<&str>> = passes
            .iter()
            .map(|p| p.iter().map(|r| r.id.as_str()).collect())
            .collect();
        assert_eq!(
            ids,
            vec![
                vec!["l1", "f1"],
                vec!["orphan"],
                vec!["p1", "p3"],
                vec!["p2"],
                vec!["p4"],
            ]
        );
    }

    /// Retry delays double from the first up to the longest, without
    /// overflowing however often a pass fails.
    #[test]
    fn retry_delays_grow_and_are_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
        let erasure = Erasure::open(warehouse, ErasureConfig::default()).expect("open");
        assert_eq!(erasure.retry_delay(1), RETRY_FIRST);
        assert_eq!(erasure.retry_delay(2), RETRY_FIRST * 2);
        assert_eq!(erasure.retry_delay(u32::MAX), RETRY_MOST);
        let erasure = erasure.with_retry_delays(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u128> = (1..=6).map(|a| erasure.retry_delay(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
    }

    /// A resumed request finds the delete it committed before a crash, with
    /// its counts, instead of deleting (nothing) again.
    #[tokio::test(flavor = "multi_thread")]
    async fn resume_finds_the_delete_committed_before_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf8")).expect("warehouse");
        let schema = Arc::new(Schema::new(vec![Field::new("email", DataType::Utf8, true)]));
        let mut table = warehouse
            .create_table(
                "t",
                TableSpec {
                    schema: schema.clone(),
                    partition_columns: vec![],
                    properties: Default::default(),
                    if_not_exists: false,
                },
            )
            .await
            .expect("create");
        let column: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a"]));
        let batch = RecordBatch::try_new(schema, vec![column]).expect("batch");
        table
            .write(vec![batch], WriteMode::Append, CommitOptions::default())
            .await
            .expect("write");
        assert!(committed_delete(&table, "e1").await.is_none());
        let subjects = Arc::new(Subjects::new(&["a".to_string()]));
        let expr = predicate(&subjects, &["email".to_string()], MatchMode::Equals).expect("expr");
        table
            .change()
            .with_metadata(commit_metadata("e1", &[]))
            .delete(Some(expr))
            .await
            .expect("delete");
        table.refresh().await.expect("refresh");
        let (version, metrics) = committed_delete(&table, "e1").await.expect("found");
        assert_eq!(version, 2);
        assert_eq!(metrics["num_deleted_rows"], 2);
        assert!(committed_delete(&table, "e2").await.is_none());
        // The log shows the value-free predicate, never the subject.
        let log =
            std::fs::read_to_string(dir.path().join("t/_delta_log/00000000000000000002.json")).expect("log");
        assert!(log.contains("silt_erasure_match(email)"), "{log}");
        assert!(!log.contains("\"a\""), "{log}");
    }
}
