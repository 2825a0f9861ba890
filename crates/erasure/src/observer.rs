//! Hooks through which the server counts erasures (Prometheus). Callers see
//! table names, counts and statuses only: never a subject or its hash.

use crate::certificate::TableReport;
use crate::ledger::Status;

/// Told about erasure progress; every method defaults to doing nothing.
pub trait ErasureObserver: Send + Sync {
    /// A new request was filed (not an idempotent repeat).
    fn filed(&self) {}
    /// A request finished: what happened to one of its tables.
    fn table_erased(&self, _report: &TableReport) {}
    /// A request finished with `status` after `seconds` of work (from the
    /// worker's start, across restarts).
    fn finished(&self, _status: Status, _seconds: f64) {}
    /// The worker read the ledger: `entries` of its entries fail validation
    /// (listed as `invalid`, never run). A gauge: alert when above 0.
    fn ledger_invalid(&self, _entries: usize) {}
    /// A pass of the worker failed and will be retried after a delay
    /// (`requests`: how many requests it carries).
    fn retrying(&self, _requests: usize) {}
    /// `rows` rows written to `table` were not stored: they held an erased
    /// subject (see the `suppression` module).
    fn suppressed(&self, _table: &str, _rows: u64) {}
}

/// An observer that records nothing.
#[derive(Debug, Default)]
pub struct NoObserver;

impl ErasureObserver for NoObserver {}
