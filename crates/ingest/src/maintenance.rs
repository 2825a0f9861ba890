//! Automatic maintenance of the tables silt ingests into (what Databricks
//! calls auto compaction): streaming ingest writes one small file per
//! commit, and a table of ten thousand 20 KB files reads slowly in every
//! engine. After every few commits the committer hands the table to a
//! background task that compacts it once enough small files gathered, and
//! now and then runs VACUUM within the table's retention.
//!
//! ```text
//!  committer ── every `check_commits` commits ──▶ task (one per table at a time)
//!                                                 ├─ fresh handle: count files < target/2
//!                                                 ├─ ≥ compact_min_files in a partition → OPTIMIZE
//!                                                 │    (dataChange=false; appends rebase onto it,
//!                                                 │     a DML that removed the same files wins)
//!                                                 └─ vacuum interval passed → VACUUM LITE
//!                                                      (delta.deletedFileRetentionDuration, enforced)
//! ```
//!
//! Compaction goes through silt-table's `Change::optimize`, so it takes the
//! write gate and writes with the table's writer properties (bloom filters
//! on subject columns) like every other write. A conflict is not an error
//! anyone sees: the next check tries again. Checkpoints stay with the
//! committer (`delta.checkpointInterval`). Maintenance runs in this process
//! only; two servers ingesting into one table may both compact it, and the
//! loser's commit conflicts and is dropped (wasted work, never wrong data).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use silt_table::{TableError, VacuumSpec, Warehouse};

use crate::service::IngestObserver;

/// Property: `false` turns automatic maintenance off for the table.
pub const ENABLED: &str = "silt.maintenance.enabled";
/// Property: compact once a partition holds this many small files (files
/// under half the target size, `delta.targetFileSize`, 100 MiB by default).
pub const COMPACT_MIN_FILES: &str = "silt.maintenance.compact_min_files";
/// Property: look at the table's files after this many ingest commits.
pub const CHECK_COMMITS: &str = "silt.maintenance.check_commits";
/// Property: hours between automatic `VACUUM LITE` runs (0: never).
pub const VACUUM_INTERVAL_HOURS: &str = "silt.maintenance.vacuum_interval_hours";

/// The commit metadata key automatic maintenance commits carry
/// (`"silt.maintenance": "auto"` in DESCRIBE HISTORY's operation metrics).
pub const COMMIT_MARK: &str = "silt.maintenance";

/// One table's maintenance settings, from its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenancePolicy {
    /// See [`ENABLED`].
    pub enabled: bool,
    /// See [`COMPACT_MIN_FILES`].
    pub compact_min_files: u64,
    /// See [`CHECK_COMMITS`].
    pub check_commits: u64,
    /// See [`VACUUM_INTERVAL_HOURS`]; `None` is off.
    pub vacuum_interval: Option<Duration>,
}

impl Default for MaintenancePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            compact_min_files: 32,
            check_commits: 16,
            vacuum_interval: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

impl MaintenancePolicy {
    /// The policy the properties give; unparsable values keep the default.
    pub fn from_properties(properties: &HashMap<String, String>) -> Self {
        let default = Self::default();
        let number = |key: &str| properties.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        Self {
            enabled: !properties
                .get(ENABLED)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            // Two is the fewest files a compaction can merge.
            compact_min_files: number(COMPACT_MIN_FILES)
                .map(|n| n.max(2))
                .unwrap_or(default.compact_min_files),
            check_commits: number(CHECK_COMMITS)
                .map(|n| n.max(1))
                .unwrap_or(default.check_commits),
            vacuum_interval: match number(VACUUM_INTERVAL_HOURS) {
                Some(0) => None,
                Some(hours) => Some(Duration::from_secs(hours.saturating_mul(3600))),
                None => default.vacuum_interval,
            },
        }
    }
}

/// What one maintenance run found and did, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintenanceStats {
    /// Live data files after the run.
    pub files: u64,
    /// Of those, small ones (under half the target size).
    pub small_files: u64,
    /// Files a compaction removed (merged into `files_added`).
    pub files_removed: u64,
    /// Files a compaction wrote.
    pub files_added: u64,
    /// Bytes of the files a compaction merged.
    pub bytes_compacted: u64,
    /// Files VACUUM deleted.
    pub files_vacuumed: u64,
    /// The compaction lost a conflict (it is tried again later).
    pub conflicted: bool,
    /// Any other failure (logged; tried again later).
    pub failed: bool,
    /// Wall time of the run.
    pub seconds: f64,
}

/// The committer's side: counts commits and starts at most one run at a time.
#[derive(Default)]
pub(crate) struct Maintainer {
    commits: u64,
    running: Option<tokio::task::JoinHandle<Outcome>>,
    /// Small-file count at which the last compaction merged nothing: no new
    /// attempt until more small files than that gathered (small files
    /// spread one per partition cannot be merged; retrying would loop).
    fruitless_at: Option<u64>,
    last_vacuum: Option<Instant>,
}

/// What a finished run tells the next one.
struct Outcome {
    fruitless_at: Option<u64>,
    vacuumed: bool,
}

impl Maintainer {
    /// Called after each commit of `table`; starts a run when one is due.
    pub(crate) fn committed(
        &mut self,
        table: &str,
        warehouse: &Warehouse,
        policy: &MaintenancePolicy,
        observer: &Arc<dyn IngestObserver>,
    ) {
        if !policy.enabled || silt_table::is_internal_table(table) {
            return;
        }
        self.commits += 1;
        if let Some(task) = &self.running {
            if !task.is_finished() {
                return;
            }
            // Finished: taking its value does not wait.
            if let Some(task) = self.running.take()
                && let Some(Ok(outcome)) = task.now_or_never()
            {
                self.fruitless_at = outcome.fruitless_at;
                if outcome.vacuumed {
                    self.last_vacuum = Some(Instant::now());
                }
            }
        }
        if self.commits < policy.check_commits {
            return;
        }
        self.commits = 0;
        let vacuum = policy
            .vacuum_interval
            .filter(|every| self.last_vacuum.is_none_or(|at| at.elapsed() >= *every))
            .is_some();
        let run = Run {
            table: table.to_string(),
            warehouse: warehouse.clone(),
            min_files: policy.compact_min_files,
            fruitless_at: self.fruitless_at,
            vacuum,
            observer: observer.clone(),
        };
        self.running = Some(tokio::spawn(run.go()));
    }

    /// Waits for a running maintenance task (shutdown).
    pub(crate) async fn finish(&mut self) {
        if let Some(task) = self.running.take() {
            let _ = task.await;
        }
    }
}

struct Run {
    table: String,
    warehouse: Warehouse,
    min_files: u64,
    fruitless_at: Option<u64>,
    vacuum: bool,
    observer: Arc<dyn IngestObserver>,
}

impl Run {
    async fn go(self) -> Outcome {
        let started = Instant::now();
        let mut stats = MaintenanceStats::default();
        let mut outcome = Outcome {
            fruitless_at: self.fruitless_at,
            vacuumed: false,
        };
        // A fresh handle: the committer's own may not show files removed by
        // DML or an earlier compaction that it rebased over.
        let table = match self.warehouse.table(&self.table).await {
            Ok(table) => table,
            Err(error) => {
                tracing::info!(table = %self.table, %error, "maintenance: table not readable; skipped");
                return outcome;
            }
        };
        let small = match table.small_files(table.target_file_size() / 2) {
            Ok(small) => small,
            Err(error) => {
                tracing::warn!(table = %self.table, %error, "maintenance: cannot list files");
                return outcome;
            }
        };
        stats.files = small.files;
        stats.small_files = small.small;
        let worth_it = small.most_in_one_partition >= self.min_files
            && self
                .fruitless_at
                .is_none_or(|at| small.small >= at + self.min_files);
        let mut table = table;
        if worth_it {
            let mark = [(COMMIT_MARK.to_string(), serde_json::json!("auto"))];
            match table.change().with_metadata(mark).optimize(&[], Vec::new()).await {
                Ok((optimized, metrics)) => {
                    stats.files_removed = metrics.num_files_removed;
                    stats.files_added = metrics.num_files_added;
                    stats.bytes_compacted = u64::try_from(metrics.files_removed.total_size).unwrap_or(0);
                    outcome.fruitless_at = (metrics.num_files_removed == 0).then_some(small.small);
                    tracing::info!(
                        table = %self.table,
                        files_removed = metrics.num_files_removed,
                        files_added = metrics.num_files_added,
                        "maintenance: compacted"
                    );
                    if let Ok(after) = optimized.small_files(optimized.target_file_size() / 2) {
                        stats.files = after.files;
                        stats.small_files = after.small;
                    }
                    table = optimized;
                }
                Err(error @ TableError::Conflict { .. }) => {
                    stats.conflicted = true;
                    tracing::info!(table = %self.table, %error, "maintenance: compaction lost a conflict; tried again later");
                }
                Err(error) => {
                    stats.failed = true;
                    tracing::warn!(table = %self.table, %error, "maintenance: compaction failed");
                }
            }
        }
        if self.vacuum {
            let retention = table
                .properties()
                .ok()
                .and_then(|p| p.get("delta.deletedFileRetentionDuration").cloned())
                .and_then(|text| parse_interval(&text))
                .unwrap_or_else(|| chrono::Duration::days(7));
            let spec = VacuumSpec {
                retention,
                dry_run: false,
                lite: true,
                enforce_retention: true,
            };
            outcome.vacuumed = true;
            match table.change().vacuum(spec).await {
                Ok((_, files)) => stats.files_vacuumed = files.len() as u64,
                Err(error) => {
                    stats.failed = true;
                    tracing::warn!(table = %self.table, %error, "maintenance: vacuum failed");
                }
            }
        }
        stats.seconds = started.elapsed().as_secs_f64();
        self.observer.maintained(&self.table, &stats);
        outcome
    }
}

/// A Delta interval property (`interval 7 days`, `168 hours`).
fn parse_interval(text: &str) -> Option<chrono::Duration> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    let number = if first.eq_ignore_ascii_case("interval") {
        words.next()?
    } else {
        first
    };
    let n: i64 = number.parse().ok()?;
    let unit = words.next().unwrap_or("days").to_ascii_lowercase();
    let unit = unit.trim_end_matches('s');
    match unit {
        "week" => Some(chrono::Duration::weeks(n)),
        "day" => Some(chrono::Duration::days(n)),
        "hour" => Some(chrono::Duration::hours(n)),
        "minute" => Some(chrono::Duration::minutes(n)),
        "second" => Some(chrono::Duration::seconds(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_set_the_policy() {
        let policy = MaintenancePolicy::from_properties(&HashMap::from([
            (ENABLED.to_string(), "FALSE".to_string()),
            (COMPACT_MIN_FILES.to_string(), "1".to_string()),
            (CHECK_COMMITS.to_string(), "junk".to_string()),
            (VACUUM_INTERVAL_HOURS.to_string(), "0".to_string()),
        ]));
        assert!(!policy.enabled);
        assert_eq!(policy.compact_min_files, 2, "one file cannot be compacted");
        assert_eq!(policy.check_commits, MaintenancePolicy::default().check_commits);
        assert_eq!(policy.vacuum_interval, None);
        assert!(MaintenancePolicy::from_properties(&HashMap::new()).enabled);
    }

    #[test]
    fn delta_intervals_parse() {
        assert_eq!(parse_interval("interval 7 days"), Some(chrono::Duration::days(7)));
        assert_eq!(parse_interval("168 hours"), Some(chrono::Duration::hours(168)));
        assert_eq!(
            parse_interval("interval 1 week"),
            Some(chrono::Duration::weeks(1))
        );
        assert_eq!(parse_interval("soon"), None);
    }
}
