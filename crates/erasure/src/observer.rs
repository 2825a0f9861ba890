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
}

/// An observer that records nothing.
#[derive(Debug, Default)]
pub struct NoObserver;

impl ErasureObserver for NoObserver {}
