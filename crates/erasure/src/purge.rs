//! Purge of a table's history after its batched delete: VACUUM in full
//! mode with zero retention (every file no longer in the latest version,
//! change-data files and files the log never referenced included), a
//! checkpoint of the latest version, then expiry of every log entry older
//! than that checkpoint — their `add` statistics can hold a subject as a
//! column minimum or maximum.

use chrono::Utc;
use silt_table::{ExclusiveWriteGuard, Table, VacuumSpec};

use crate::error::{ErasureError, Result};

/// What one purge did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Purged {
    /// Files VACUUM deleted.
    pub(crate) files_purged: u64,
    /// Log entries deleted.
    pub(crate) log_entries_expired: u64,
    /// The checkpoint version (the latest after VACUUM's commits).
    pub(crate) checkpoint_version: u64,
}

/// The `commitInfo` fields of every erasure commit: the request id (no
/// values) and `extra`.
pub(crate) fn commit_metadata(
    erasure_id: &str,
    extra: &[(&str, serde_json::Value)],
) -> Vec<(String, serde_json::Value)> {
    let mut metadata = vec![("silt.erasure.id".to_string(), serde_json::json!(erasure_id))];
    metadata.extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
    metadata
}

/// Purges `table`'s history (see the module docs); the caller holds the
/// table's write gate alone.
pub(crate) async fn purge(table: &Table, erasure_id: &str, gate: &ExclusiveWriteGuard) -> Result<Purged> {
    let name = table.name();
    let spec = VacuumSpec {
        retention: chrono::Duration::zero(),
        dry_run: false,
        lite: false,
        enforce_retention: false,
    };
    let (vacuumed, files) = table
        .change()
        .holding(gate)
        .with_metadata(commit_metadata(erasure_id, &[]))
        .vacuum(spec)
        .await
        .map_err(|e| ErasureError::step(name, "vacuum", e))?;
    vacuumed
        .checkpoint()
        .await
        .map_err(|e| ErasureError::step(name, "checkpoint", e))?;
    let checkpoint_version = vacuumed.version();
    // Every log file is older than "now + 1 s", so the cutoff keeps nothing
    // but the checkpoint and what follows it.
    let cutoff = Utc::now().timestamp_millis() + 1_000;
    let expired = vacuumed
        .expire_logs(checkpoint_version, cutoff)
        .await
        .map_err(|e| ErasureError::step(name, "expire-logs", e))?;
    // On a local file system VACUUM leaves the emptied directories behind;
    // a partition directory is named after its value, which may be a subject.
    if let Ok(root) = vacuumed.location().to_file_path() {
        remove_empty_dirs(&root);
    }
    Ok(Purged {
        files_purged: files.len() as u64,
        log_entries_expired: expired as u64,
        checkpoint_version,
    })
}

/// Removes empty directories below `dir` (never `dir` itself); best effort.
fn remove_empty_dirs(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_empty_dirs(&path);
            // Fails, harmlessly, when the directory still holds files.
            let _ = std::fs::remove_dir(&path);
        }
    }
}
