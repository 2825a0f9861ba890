//! What a running source reports: its state, counters and lag, shared
//! between its task and the API (`GET /v1/sources`) without locks on the
//! hot path except for the rarely changing state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Where a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Connecting for the first time.
    Starting,
    /// Consuming.
    Running,
    /// Lost the broker (or never reached it); retrying with backoff.
    Reconnecting,
    /// Paused by an operator: nothing is fetched, messages stay pending.
    Paused,
    /// Connected, but its batches fail (a route's table is missing, a
    /// commit failed); retrying with backoff.
    Failed,
    /// Stopped with the server.
    Stopped,
}

/// One source's status, as `GET /v1/sources` shows it (no URL, no
/// credentials, no message content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// Its kind (`nats`).
    pub kind: &'static str,
    /// Where it is.
    pub state: State,
    /// What went wrong last (a fixed word such as `unreachable`,
    /// `stream-not-found` or an ingest error kind like `not-found`), if
    /// anything did since it last ran well.
    pub last_error: Option<String>,
    /// The tables its routes write.
    pub tables: Vec<String>,
    /// Messages taken from the broker and acknowledged.
    pub messages: u64,
    /// Rows committed.
    pub rows: u64,
    /// Messages that went to the dead-letter table.
    pub dead_letters: u64,
    /// Redelivered messages recognised as already committed.
    pub duplicates: u64,
    /// Messages no route matched (acknowledged, not written).
    pub unrouted: u64,
    /// The table version of the last commit, if any since start.
    pub last_commit_version: Option<u64>,
    /// Messages the broker holds for the consumer that it has not
    /// delivered yet (JetStream `num_pending`), when last asked.
    pub lag: Option<u64>,
}

/// The live counters behind a [`SourceStatus`].
#[derive(Debug)]
pub(crate) struct Counters {
    name: String,
    kind: &'static str,
    tables: Vec<String>,
    state: Mutex<(State, Option<String>)>,
    pub(crate) messages: AtomicU64,
    pub(crate) rows: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) unrouted: AtomicU64,
    /// -1: none yet.
    last_version: AtomicI64,
    /// -1: unknown.
    lag: AtomicI64,
}

impl Counters {
    pub(crate) fn new(name: &str, kind: &'static str, tables: Vec<String>) -> Self {
        Self {
            name: name.to_string(),
            kind,
            tables,
            state: Mutex::new((State::Starting, None)),
            messages: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unrouted: AtomicU64::new(0),
            last_version: AtomicI64::new(-1),
            lag: AtomicI64::new(-1),
        }
    }

    /// Moves to `state`; running clears the last error.
    pub(crate) fn set_state(&self, state: State) {
        if let Ok(mut current) = self.state.lock() {
            current.0 = state;
            if state == State::Running {
                current.1 = None;
            }
        }
    }

    /// Records a failure and the state it leaves the source in.
    pub(crate) fn set_error(&self, state: State, error: &str) {
        if let Ok(mut current) = self.state.lock() {
            *current = (state, Some(error.to_string()));
        }
    }

    pub(crate) fn committed(&self, version: u64) {
        self.last_version
            .fetch_max(i64::try_from(version).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn set_lag(&self, lag: u64) {
        self.lag
            .store(i64::try_from(lag).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SourceStatus {
        let (state, last_error) = self
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((State::Failed, None));
        let optional = |v: i64| u64::try_from(v).ok();
        SourceStatus {
            name: self.name.clone(),
            kind: self.kind,
            state,
            last_error,
            tables: self.tables.clone(),
            messages: self.messages.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            unrouted: self.unrouted.load(Ordering::Relaxed),
            last_commit_version: optional(self.last_version.load(Ordering::Relaxed)),
            lag: optional(self.lag.load(Ordering::Relaxed)),
        }
    }
}

/// Receives what sources do, for metrics. Every method has a no-op default.
/// Labels given are source and table names and fixed words only.
pub trait SourceObserver: Send + Sync {
    /// A batch was committed into `table`.
    fn committed(&self, _source: &str, _table: &str, _batch: &BatchStats) {}
    /// Messages were acknowledged (`duplicates` and `unrouted` among them).
    fn acknowledged(&self, _source: &str, _messages: u64) {}
    /// Something failed; `error` is a fixed word (see [`SourceStatus::last_error`]).
    fn failed(&self, _source: &str, _error: &str) {}
    /// The broker's count of messages not delivered yet.
    fn lag(&self, _source: &str, _lag: u64) {}
}

/// One table's share of a committed batch.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// Messages in it.
    pub messages: u64,
    /// Rows committed.
    pub rows: u64,
    /// Messages sent to dead letters.
    pub dead_letters: u64,
    /// From submitting to the durable commit.
    pub seconds: f64,
}

/// An observer that records nothing.
#[derive(Debug, Default)]
pub struct NoSourceObserver;
impl SourceObserver for NoSourceObserver {}
