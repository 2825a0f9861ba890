//! Prometheus metrics, per table and per pull source. Labels are table and
//! source names and fixed reason
//! words only — never a value from the data or a producer's payload, and
//! never the name of one of silt's internal tables (`_silt_*`): their
//! counts are labelled [`INTERNAL_LABEL`].

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use silt_erasure::{ErasureObserver, Status, TableReport};
use silt_ingest::{CommitStats, IngestObserver, MaintenanceStats};
use silt_sources::{BatchStats, SourceObserver};

/// The `table` label of silt's internal tables (dead letters, the erasure
/// ledger), whose names are not shown to metric readers.
pub const INTERNAL_LABEL: &str = "_internal";

/// The `table` label value for `table`.
fn table_label(table: &str) -> &str {
    if silt_table::is_internal_table(table) {
        INTERNAL_LABEL
    } else {
        table
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    rows: IntCounterVec,
    bytes: IntCounterVec,
    requests: IntCounterVec,
    commits: IntCounterVec,
    rejections: IntCounterVec,
    dead_letters: IntCounterVec,
    duplicates: IntCounterVec,
    queue_bytes: IntGaugeVec,
    commit_seconds: HistogramVec,
    ack_seconds: HistogramVec,
    erasure_requests: IntCounterVec,
    erasure_rows: IntCounterVec,
    erasure_files: IntCounterVec,
    erasure_seconds: HistogramVec,
    erasure_ledger_invalid: IntGaugeVec,
    erasure_retries: IntCounterVec,
    erasure_suppressed: IntCounterVec,
    source_messages: IntCounterVec,
    source_rows: IntCounterVec,
    source_dead_letters: IntCounterVec,
    source_errors: IntCounterVec,
    source_lag: IntGaugeVec,
    source_commit_seconds: HistogramVec,
    sql_statements: IntCounterVec,
    sql_seconds: HistogramVec,
    sql_rows: IntCounterVec,
    sql_bytes: IntCounterVec,
    sql_active: IntGaugeVec,
    maintenance_runs: IntCounterVec,
    maintenance_files: IntCounterVec,
    maintenance_bytes: IntCounterVec,
    table_files: IntGaugeVec,
    table_small_files: IntGaugeVec,
    maintenance_last_run: IntGaugeVec,
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge =
        IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(gauge.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    gauge
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), &[]).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(gauge.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    gauge
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    // Registration fails only on a duplicate name, a programming error.
    registry
        .register(Box::new(counter.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    counter
}

fn histogram(registry: &Registry, name: &str, help: &str) -> HistogramVec {
    let buckets = vec![
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    histogram_with(registry, name, help, buckets, &["table"])
}

fn histogram_with(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> HistogramVec {
    let histogram = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(histogram.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    histogram
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every silt metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let queue_bytes = IntGaugeVec::new(
            Opts::new(
                "silt_ingest_queue_bytes",
                "bytes waiting in a table's ingest queue",
            ),
            &["table"],
        )
        .unwrap_or_else(|e| panic!("metric silt_ingest_queue_bytes: {e}"));
        registry
            .register(Box::new(queue_bytes.clone()))
            .unwrap_or_else(|e| panic!("metric silt_ingest_queue_bytes: {e}"));
        Self {
            rows: counter(
                &registry,
                "silt_ingest_rows_total",
                "rows committed by ingest",
                &["table"],
            ),
            bytes: counter(
                &registry,
                "silt_ingest_bytes_total",
                "request body bytes received for ingest",
                &["table"],
            ),
            requests: counter(
                &registry,
                "silt_ingest_requests_total",
                "ingest requests answered, by outcome",
                &["table", "outcome"],
            ),
            commits: counter(
                &registry,
                "silt_ingest_commits_total",
                "Delta commits made by ingest",
                &["table"],
            ),
            rejections: counter(
                &registry,
                "silt_ingest_rejections_total",
                "ingest requests refused, by reason",
                &["table", "reason"],
            ),
            dead_letters: counter(
                &registry,
                "silt_ingest_dead_letter_rows_total",
                "rows sent to _silt_dead_letters",
                &["table"],
            ),
            duplicates: counter(
                &registry,
                "silt_ingest_duplicates_total",
                "requests answered as duplicates",
                &["table"],
            ),
            queue_bytes,
            commit_seconds: histogram(
                &registry,
                "silt_ingest_commit_seconds",
                "from taking a group to its durable commit",
            ),
            ack_seconds: histogram(
                &registry,
                "silt_ingest_ack_seconds",
                "from receiving a request to its durable ack",
            ),
            erasure_requests: counter(
                &registry,
                "silt_erasure_requests_total",
                "erasure requests filed, done and failed",
                &["status"],
            ),
            erasure_rows: counter(
                &registry,
                "silt_erasure_rows_deleted_total",
                "rows deleted by erasure requests",
                &["table"],
            ),
            erasure_files: counter(
                &registry,
                "silt_erasure_files_total",
                "data files an erasure pruned (unread), read, rewritten or purged",
                &["table", "outcome"],
            ),
            erasure_seconds: histogram_with(
                &registry,
                "silt_erasure_seconds",
                "from the worker taking an erasure request to its certificate",
                vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0],
                &["status"],
            ),
            erasure_ledger_invalid: gauge(
                &registry,
                "silt_erasure_ledger_invalid_entries",
                "ledger entries that fail validation (damaged or forged; listed as invalid, never run): alert above 0",
            ),
            erasure_retries: counter(
                &registry,
                "silt_erasure_retries_total",
                "erasure worker passes that failed and were scheduled for a retry",
                &[],
            ),
            erasure_suppressed: counter(
                &registry,
                "silt_erasure_suppressed_rows_total",
                "rows not stored because they held a subject of an erasure request",
                &["table"],
            ),
            source_messages: counter(
                &registry,
                "silt_source_messages_total",
                "messages a pull source took and acknowledged",
                &["source"],
            ),
            source_rows: counter(
                &registry,
                "silt_source_rows_total",
                "rows a pull source committed",
                &["source", "table"],
            ),
            source_dead_letters: counter(
                &registry,
                "silt_source_dead_letters_total",
                "messages a pull source sent to _silt_dead_letters",
                &["source", "table"],
            ),
            source_errors: counter(
                &registry,
                "silt_source_errors_total",
                "failed pull-source sessions, by a fixed error word",
                &["source", "error"],
            ),
            source_lag: {
                let lag = IntGaugeVec::new(
                    Opts::new(
                        "silt_source_lag",
                        "messages the broker has not delivered to the source yet",
                    ),
                    &["source"],
                )
                .unwrap_or_else(|e| panic!("metric silt_source_lag: {e}"));
                registry
                    .register(Box::new(lag.clone()))
                    .unwrap_or_else(|e| panic!("metric silt_source_lag: {e}"));
                lag
            },
            source_commit_seconds: histogram_with(
                &registry,
                "silt_source_commit_seconds",
                "from submitting a source batch's share for a table to its durable commit",
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                &["source"],
            ),
            sql_statements: counter(
                &registry,
                "silt_sql_statements_total",
                "SQL statements finished, by protocol, kind, caller role and outcome (ok, cancelled or an error kind)",
                &["protocol", "kind", "role", "outcome"],
            ),
            sql_seconds: histogram_with(
                &registry,
                "silt_sql_statement_seconds",
                "from receiving a statement to its last result row (or its error)",
                vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                ],
                &["protocol", "kind"],
            ),
            sql_rows: counter(
                &registry,
                "silt_sql_rows_returned_total",
                "result rows SQL statements answered with",
                &["protocol", "kind"],
            ),
            sql_bytes: counter(
                &registry,
                "silt_sql_bytes_returned_total",
                "Arrow memory size of the result batches SQL statements answered with (before the protocol's encoding)",
                &["protocol", "kind"],
            ),
            sql_active: {
                let active = IntGaugeVec::new(
                    Opts::new("silt_sql_active_statements", "SQL statements running now"),
                    &["protocol"],
                )
                .unwrap_or_else(|e| panic!("metric silt_sql_active_statements: {e}"));
                registry
                    .register(Box::new(active.clone()))
                    .unwrap_or_else(|e| panic!("metric silt_sql_active_statements: {e}"));
                active
            },
            maintenance_runs: counter(
                &registry,
                "silt_maintenance_runs_total",
                "automatic maintenance runs, by outcome (compacted, nothing, conflict, failed)",
                &["table", "outcome"],
            ),
            maintenance_files: counter(
                &registry,
                "silt_maintenance_files_total",
                "data files automatic maintenance compacted (merged away) or vacuumed",
                &["table", "action"],
            ),
            maintenance_bytes: counter(
                &registry,
                "silt_maintenance_bytes_compacted_total",
                "bytes of the small files automatic compaction merged",
                &["table"],
            ),
            table_files: gauge_vec(
                &registry,
                "silt_table_files",
                "live data files of a table after maintenance last ran",
                &["table"],
            ),
            table_small_files: gauge_vec(
                &registry,
                "silt_table_small_files",
                "live data files under half the target size after maintenance last ran",
                &["table"],
            ),
            maintenance_last_run: gauge_vec(
                &registry,
                "silt_maintenance_last_run_timestamp_seconds",
                "when automatic maintenance last looked at a table (Unix seconds)",
                &["table"],
            ),
            registry,
        }
    }

    /// A statement received over `protocol` (`http`, `flight`, `pg`) from a
    /// caller of `role`; the meter counts it as active until it is finished
    /// or dropped.
    pub fn statement_started(self: &Arc<Self>, protocol: &'static str, role: &'static str) -> StatementMeter {
        self.sql_active.with_label_values(&[protocol]).inc();
        StatementMeter {
            metrics: self.clone(),
            protocol,
            role,
            kind: "unknown",
            started: std::time::Instant::now(),
            rows: 0,
            bytes: 0,
            outcome: None,
        }
    }

    /// A received body.
    pub fn received(&self, table: &str, bytes: u64) {
        self.bytes.with_label_values(&[table_label(table)]).inc_by(bytes);
    }

    /// A request answered; `outcome` is a fixed word (`ok`, `duplicate`, or a problem kind).
    pub fn answered(&self, table: &str, outcome: &str, seconds: f64) {
        let table = table_label(table);
        self.requests.with_label_values(&[table, outcome]).inc();
        if outcome == "ok" || outcome == "duplicate" {
            self.ack_seconds.with_label_values(&[table]).observe(seconds);
        }
    }

    /// A request refused before commit, by a fixed reason word.
    pub fn rejected(&self, table: &str, reason: &str) {
        self.rejections
            .with_label_values(&[table_label(table), reason])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// One SQL statement's share of the metrics, from its arrival to its last
/// row: rows and bytes as they are answered, then (when finished or
/// dropped) its count, latency and the active gauge. Labels are fixed
/// words only: protocol, statement kind, role and outcome — never SQL text
/// or a value.
pub struct StatementMeter {
    metrics: Arc<Metrics>,
    protocol: &'static str,
    role: &'static str,
    kind: &'static str,
    started: std::time::Instant,
    rows: u64,
    bytes: u64,
    /// `ok` once every row was answered, an error kind's word once it
    /// failed; `None` when dropped before either (`cancelled`).
    outcome: Option<&'static str>,
}

impl StatementMeter {
    /// The statement's kind (`query`, `dml`…), once it parsed.
    pub fn set_kind(&mut self, kind: silt_sql::StatementKind) {
        self.kind = kind.as_str();
    }

    /// A result batch answered.
    pub fn answered(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.bytes += batch.get_array_memory_size() as u64;
    }

    /// The statement ended: every row answered (`None`) or an error of `kind`.
    pub fn finish(&mut self, error: Option<silt_table::ErrorKind>) {
        self.outcome
            .get_or_insert(error.map_or("ok", silt_table::ErrorKind::slug));
    }
}

impl Drop for StatementMeter {
    fn drop(&mut self) {
        let metrics = &self.metrics;
        let outcome = self.outcome.unwrap_or("cancelled");
        metrics
            .sql_statements
            .with_label_values(&[self.protocol, self.kind, self.role, outcome])
            .inc();
        metrics
            .sql_seconds
            .with_label_values(&[self.protocol, self.kind])
            .observe(self.started.elapsed().as_secs_f64());
        metrics
            .sql_rows
            .with_label_values(&[self.protocol, self.kind])
            .inc_by(self.rows);
        metrics
            .sql_bytes
            .with_label_values(&[self.protocol, self.kind])
            .inc_by(self.bytes);
        metrics.sql_active.with_label_values(&[self.protocol]).dec();
    }
}

impl IngestObserver for Metrics {
    fn committed(&self, table: &str, stats: &CommitStats) {
        let table = table_label(table);
        self.rows.with_label_values(&[table]).inc_by(stats.rows);
        self.dead_letters
            .with_label_values(&[table])
            .inc_by(stats.rows_rejected);
        self.duplicates
            .with_label_values(&[table])
            .inc_by(stats.duplicates as u64);
        if stats.committed {
            self.commits.with_label_values(&[table]).inc();
            self.commit_seconds
                .with_label_values(&[table])
                .observe(stats.seconds);
        }
    }

    fn queued(&self, table: &str, bytes: u64) {
        let table = table_label(table);
        self.queue_bytes
            .with_label_values(&[table])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    fn maintained(&self, table: &str, stats: &MaintenanceStats) {
        let table = table_label(table);
        let outcome = if stats.failed {
            "failed"
        } else if stats.conflicted {
            "conflict"
        } else if stats.files_removed > 0 {
            "compacted"
        } else {
            "nothing"
        };
        self.maintenance_runs.with_label_values(&[table, outcome]).inc();
        self.maintenance_files
            .with_label_values(&[table, "compacted"])
            .inc_by(stats.files_removed);
        self.maintenance_files
            .with_label_values(&[table, "vacuumed"])
            .inc_by(stats.files_vacuumed);
        self.maintenance_bytes
            .with_label_values(&[table])
            .inc_by(stats.bytes_compacted);
        self.table_files
            .with_label_values(&[table])
            .set(i64::try_from(stats.files).unwrap_or(i64::MAX));
        self.table_small_files
            .with_label_values(&[table])
            .set(i64::try_from(stats.small_files).unwrap_or(i64::MAX));
        self.maintenance_last_run
            .with_label_values(&[table])
            .set(chrono::Utc::now().timestamp());
    }
}

// Labels are source names (from the operator's config), route tables
// (never internal ones: the config refuses them) and fixed error words.
impl SourceObserver for Metrics {
    fn committed(&self, source: &str, table: &str, batch: &BatchStats) {
        let table = table_label(table);
        self.source_rows
            .with_label_values(&[source, table])
            .inc_by(batch.rows);
        self.source_dead_letters
            .with_label_values(&[source, table])
            .inc_by(batch.dead_letters);
        self.source_commit_seconds
            .with_label_values(&[source])
            .observe(batch.seconds);
    }

    fn acknowledged(&self, source: &str, messages: u64) {
        self.source_messages.with_label_values(&[source]).inc_by(messages);
    }

    fn failed(&self, source: &str, error: &str) {
        self.source_errors.with_label_values(&[source, error]).inc();
    }

    fn lag(&self, source: &str, lag: u64) {
        self.source_lag
            .with_label_values(&[source])
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
    }
}

impl ErasureObserver for Metrics {
    fn filed(&self) {
        self.erasure_requests.with_label_values(&["filed"]).inc();
    }

    fn table_erased(&self, report: &TableReport) {
        let table = table_label(&report.table);
        self.erasure_rows
            .with_label_values(&[table])
            .inc_by(report.rows_deleted);
        for (outcome, count) in [
            ("pruned", report.files_pruned),
            ("read", report.files_read),
            ("rewritten", report.files_rewritten),
            ("purged", report.files_purged),
        ] {
            self.erasure_files
                .with_label_values(&[table, outcome])
                .inc_by(count);
        }
    }

    fn finished(&self, status: Status, seconds: f64) {
        self.erasure_requests.with_label_values(&[status.as_str()]).inc();
        self.erasure_seconds
            .with_label_values(&[status.as_str()])
            .observe(seconds);
    }

    fn ledger_invalid(&self, entries: usize) {
        self.erasure_ledger_invalid
            .with_label_values(&[] as &[&str])
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    fn retrying(&self, requests: usize) {
        self.erasure_retries
            .with_label_values(&[] as &[&str])
            .inc_by(u64::try_from(requests).unwrap_or(u64::MAX));
    }

    fn suppressed(&self, table: &str, rows: u64) {
        self.erasure_suppressed
            .with_label_values(&[table_label(table)])
            .inc_by(rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_counted_once_when_its_meter_goes() {
        let metrics = Arc::new(Metrics::new());
        let mut ok = metrics.statement_started("http", "reader");
        ok.set_kind(silt_sql::StatementKind::Query);
        let batch = RecordBatch::try_from_iter([(
            "n",
            Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3])) as arrow::array::ArrayRef,
        )])
        .expect("batch");
        ok.answered(&batch);
        assert!(
            metrics
                .render()
                .contains("silt_sql_active_statements{protocol=\"http\"} 1")
        );
        ok.finish(None);
        drop(ok);
        let mut failed = metrics.statement_started("pg", "writer");
        failed.finish(Some(silt_table::ErrorKind::InvalidInput));
        drop(failed);
        drop(metrics.statement_started("flight", "reader"));
        let text = metrics.render();
        for line in [
            "silt_sql_statements_total{kind=\"query\",outcome=\"ok\",protocol=\"http\",role=\"reader\"} 1",
            "silt_sql_statements_total{kind=\"unknown\",outcome=\"invalid-input\",protocol=\"pg\",role=\"writer\"} 1",
            "silt_sql_statements_total{kind=\"unknown\",outcome=\"cancelled\",protocol=\"flight\",role=\"reader\"} 1",
            "silt_sql_rows_returned_total{kind=\"query\",protocol=\"http\"} 3",
            "silt_sql_statement_seconds_count{kind=\"query\",protocol=\"http\"} 1",
            "silt_sql_active_statements{protocol=\"http\"} 0",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }

    #[test]
    fn internal_tables_are_never_label_values() {
        let metrics = Metrics::new();
        metrics.received("_silt_dead_letters", 5);
        metrics.answered("_SILT_erasures", "ok", 0.1);
        metrics.rejected("_silt_x", "not-found");
        metrics.queued("_silt_dead_letters", 1);
        metrics.received("events", 1);
        let text = metrics.render();
        assert!(!text.to_ascii_lowercase().contains("table=\"_silt_"), "{text}");
        assert!(text.contains("table=\"_internal\""), "{text}");
        assert!(text.contains("table=\"events\""), "{text}");
    }
}
