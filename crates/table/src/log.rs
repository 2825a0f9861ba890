//! Reads of the Delta log that delta-rs does not offer the way silt needs:
//! commit timestamps from `commitInfo` (not file mtimes) and per-version history.
//!
//! These read single commit files by version; they are used for time travel
//! and history, never on the ingest hot path.

use chrono::{DateTime, TimeZone, Utc};
use deltalake::ObjectStore;
use deltalake::Path;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Result, TableError};

/// One commit of a table's history.
#[derive(Debug, Clone, Serialize)]
pub struct CommitEntry {
    /// Table version this commit created.
    pub version: u64,
    /// Commit time: `commitInfo.inCommitTimestamp`, else `commitInfo.timestamp`,
    /// else (a writer that records neither) the log file's modification time.
    pub timestamp: DateTime<Utc>,
    /// `commitInfo.operation`, e.g. `WRITE`, `CREATE TABLE`.
    pub operation: Option<String>,
    /// `commitInfo.operationParameters`.
    pub operation_parameters: Option<Value>,
    /// `commitInfo.operationMetrics`.
    pub operation_metrics: Option<Value>,
    /// `commitInfo.engineInfo` / `clientVersion`.
    pub engine: Option<String>,
    /// Application transactions (`txn` actions: app id, version) in this commit.
    pub transactions: Vec<(String, i64)>,
}

pub(crate) fn commit_path(version: u64) -> Path {
    Path::from(format!("_delta_log/{version:020}.json"))
}

/// Reads and parses commit `version`; `Ok(None)` if the file does not exist
/// (never written, or expired from the log).
pub(crate) async fn read_commit(store: &dyn ObjectStore, version: u64) -> Result<Option<CommitEntry>> {
    let path = commit_path(version);
    let got = match store.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => {
            return Err(TableError::storage(path.to_string(), source));
        }
    };
    let modified = got.meta.last_modified;
    let bytes = got
        .bytes()
        .await
        .map_err(|source| TableError::storage(path.to_string(), source))?;
    Ok(Some(parse_commit(version, &bytes, modified)))
}

fn parse_commit(version: u64, bytes: &[u8], modified: DateTime<Utc>) -> CommitEntry {
    let mut entry = CommitEntry {
        version,
        timestamp: modified,
        operation: None,
        operation_parameters: None,
        operation_metrics: None,
        engine: None,
        transactions: Vec::new(),
    };
    // A log line that is not JSON is left to delta-rs to report; history only
    // shows what it can read.
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(action) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(info) = action.get("commitInfo") {
            let millis = info
                .get("inCommitTimestamp")
                .and_then(Value::as_i64)
                .or_else(|| info.get("timestamp").and_then(Value::as_i64));
            if let Some(ts) = millis.and_then(|ms| Utc.timestamp_millis_opt(ms).single()) {
                entry.timestamp = ts;
            }
            entry.operation = info.get("operation").and_then(Value::as_str).map(str::to_string);
            entry.operation_parameters = info.get("operationParameters").cloned();
            entry.operation_metrics = info.get("operationMetrics").cloned();
            entry.engine = info
                .get("engineInfo")
                .or_else(|| info.get("clientVersion"))
                .and_then(Value::as_str)
                .map(str::to_string);
        } else if let Some(txn) = action.get("txn")
            && let (Some(app), Some(v)) = (
                txn.get("appId").and_then(Value::as_str),
                txn.get("version").and_then(Value::as_i64),
            )
        {
            entry.transactions.push((app.to_string(), v));
        }
    }
    entry
}

/// The earliest version whose commit file is still in the log.
pub(crate) async fn earliest_version(store: &dyn ObjectStore, latest: u64) -> Result<u64> {
    if store.head(&commit_path(0)).await.is_ok() {
        return Ok(0);
    }
    // The log was cleaned up: list it once (time travel only, not a hot path).
    let prefix = Path::from("_delta_log");
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| TableError::storage(prefix.to_string(), source))?;
    let earliest = metas
        .iter()
        .filter_map(|m| {
            let name = m.location.filename()?;
            let stem = name.strip_suffix(".json")?;
            (stem.len() == 20).then(|| stem.parse::<u64>().ok()).flatten()
        })
        .min();
    Ok(earliest.unwrap_or(latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_timestamp_prefers_in_commit_timestamp_over_mtime() {
        let mtime = Utc.timestamp_millis_opt(1_000).single().expect("valid");
        let log = br#"{"commitInfo":{"timestamp":5000,"inCommitTimestamp":7000,"operation":"WRITE"}}
{"txn":{"appId":"p1","version":3}}
{"add":{"path":"a.parquet"}}"#;
        let entry = parse_commit(4, log, mtime);
        assert_eq!(entry.timestamp.timestamp_millis(), 7000);
        assert_eq!(entry.operation.as_deref(), Some("WRITE"));
        assert_eq!(entry.transactions, vec![("p1".to_string(), 3)]);
    }

    #[test]
    fn commit_without_commit_info_falls_back_to_mtime() {
        let mtime = Utc.timestamp_millis_opt(1_000).single().expect("valid");
        let entry = parse_commit(0, br#"{"add":{"path":"a.parquet"}}"#, mtime);
        assert_eq!(entry.timestamp, mtime);
        assert!(entry.operation.is_none());
    }
}
