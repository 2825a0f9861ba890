//! One table: its snapshot, time travel, history and commits.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::Schema as ArrowSchema;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::Transaction;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError, ObjectStore};

use crate::error::{Result, TableError};
use crate::log::{CommitEntry, earliest_version, read_commit};

/// How a write replaces or extends the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace all rows.
    Overwrite,
}

/// An application transaction carried by a commit: the producer's id and its
/// sequence number. Written as a Delta `txn` action, so a reader of the log can
/// tell which producer sequences a version contains (exactly-once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerTxn {
    /// Producer id (Delta `txn.appId`).
    pub producer: String,
    /// The producer's sequence (Delta `txn.version`).
    pub sequence: i64,
}

/// Options for one commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Producer transactions to record in the commit.
    pub transactions: Vec<ProducerTxn>,
    /// Extra `commitInfo` fields (must never hold data values).
    pub metadata: HashMap<String, serde_json::Value>,
    /// Add the batches' new (nullable) columns to the table schema in the
    /// same commit (Delta schema evolution, deltalake's `SchemaMode::Merge`).
    pub merge_schema: bool,
    /// Do not write a checkpoint inline even when the checkpoint interval
    /// is reached; the caller writes them in the background ([`Table::checkpoint`]).
    pub skip_checkpoint: bool,
}

/// A table opened at one version. Cheap to clone; a clone is an independent
/// snapshot.
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    pub(crate) delta: DeltaTable,
}

impl Table {
    pub(crate) fn new(name: &str, delta: DeltaTable) -> Self {
        Self {
            name: name.to_string(),
            delta,
        }
    }

    /// The table's name in the warehouse.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The snapshot of this version, read only: its files, metadata and
    /// protocol (erasure probes files by their statistics). Changes go
    /// through [`Table::change`] and [`Table::write`].
    pub fn snapshot(&self) -> Result<&deltalake::table::state::DeltaTableState> {
        self.state()
    }

    /// The table's location (its URL).
    pub fn location(&self) -> url::Url {
        self.delta.table_url().clone()
    }

    /// The object store rooted at the table (data files and `_delta_log/`).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store()
    }

    /// A DataFusion provider scanning this version with `session`'s
    /// settings; registers the table's object store in the session first.
    pub async fn table_provider(
        &self,
        session: &Arc<deltalake::datafusion::execution::context::SessionState>,
    ) -> Result<Arc<dyn deltalake::datafusion::catalog::TableProvider>> {
        self.delta
            .update_datafusion_session(session.as_ref())
            .map_err(|source| TableError::delta(&self.name, source))?;
        self.delta
            .table_provider()
            .with_session(session.clone())
            .await
            .map_err(|source| TableError::delta(&self.name, source.into()))
    }

    /// A writer of data files for this table (its writer properties: bloom
    /// filters on subject columns), for a rewrite committed with
    /// [`crate::Change::commit_actions`]. Hold the write gate from the
    /// first file until that commit.
    pub fn file_writer(&self) -> Result<deltalake::writer::RecordBatchWriter> {
        let writer = deltalake::writer::RecordBatchWriter::for_table(&self.delta)
            .map_err(|source| TableError::delta(&self.name, source))?;
        Ok(writer.with_writer_properties(self.writer_properties()?))
    }

    /// Deletes the log entries before `keep_version` (which must have a
    /// checkpoint) written before `cutoff_ms`; returns how many.
    pub async fn expire_logs(&self, keep_version: u64, cutoff_ms: i64) -> Result<usize> {
        deltalake::protocol::checkpoints::cleanup_expired_logs_for(
            keep_version,
            self.delta.log_store().as_ref(),
            cutoff_ms,
            None,
        )
        .await
        .map_err(|source| TableError::delta(&self.name, source))
    }

    /// The version this handle is at.
    pub fn version(&self) -> u64 {
        self.delta.version().unwrap_or(0)
    }

    pub(crate) fn state(&self) -> Result<&deltalake::table::state::DeltaTableState> {
        self.delta
            .snapshot()
            .map_err(|source| TableError::delta(&self.name, source))
    }

    /// The Arrow schema at this version.
    pub fn schema(&self) -> Result<Arc<ArrowSchema>> {
        Ok(self.state()?.snapshot().arrow_schema())
    }

    /// Partition columns, in order.
    pub fn partition_columns(&self) -> Result<Vec<String>> {
        Ok(self.state()?.metadata().partition_columns().to_vec())
    }

    /// Table configuration (`delta.*` and `silt.*` properties).
    pub fn properties(&self) -> Result<HashMap<String, String>> {
        Ok(self.state()?.metadata().configuration().clone())
    }

    /// Takes this table's write gate shared (see [`crate::SharedWriteGuard`]):
    /// hold it from writing data files until the commit lands.
    pub async fn write_gate(&self) -> crate::SharedWriteGuard {
        crate::gate::gate(self.delta.table_url().as_str())
            .read_owned()
            .await
    }

    /// Takes this table's write gate alone: waits for writers of this process
    /// to commit and keeps new ones out until the guard is dropped.
    pub async fn exclusive_write_gate(&self) -> crate::ExclusiveWriteGuard {
        crate::gate::gate(self.delta.table_url().as_str())
            .write_owned()
            .await
    }

    /// Parquet writer properties for files written into this table: bloom
    /// filters on its subject columns (see [`crate::writer_properties`]).
    pub fn writer_properties(&self) -> Result<parquet::file::properties::WriterProperties> {
        Ok(crate::writer_properties(&self.properties()?))
    }

    /// Number of live data files and their total size in bytes.
    pub fn file_stats(&self) -> Result<(u64, u64)> {
        let state = self.state()?;
        let mut files = 0u64;
        let mut bytes = 0u64;
        for file in state.log_data().iter() {
            files += 1;
            bytes += u64::try_from(file.size()).unwrap_or(0);
        }
        Ok((files, bytes))
    }

    /// How many of the live data files are smaller than `below` bytes, and
    /// the most of those in any one partition (compaction bins files
    /// partition by partition, so that is what one OPTIMIZE can merge).
    pub fn small_files(&self, below: u64) -> Result<SmallFiles> {
        let state = self.state()?;
        let mut per_partition: HashMap<Vec<(String, Option<String>)>, u64> = HashMap::new();
        let mut counts = SmallFiles::default();
        for file in state.log_data().iter() {
            counts.files += 1;
            if u64::try_from(file.size()).unwrap_or(0) < below {
                counts.small += 1;
                let mut key: Vec<_> = file.partition_values_map().into_iter().collect();
                key.sort();
                *per_partition.entry(key).or_default() += 1;
            }
        }
        counts.most_in_one_partition = per_partition.into_values().max().unwrap_or(0);
        Ok(counts)
    }

    /// The size compaction aims for: `delta.targetFileSize`, or deltalake's
    /// default of 100 MiB.
    pub fn target_file_size(&self) -> u64 {
        self.properties()
            .ok()
            .and_then(|p| p.get("delta.targetFileSize").and_then(|v| v.trim().parse().ok()))
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE)
    }

    /// Data files of this version that `newer` no longer references and that
    /// are gone from storage (deleted by VACUUM): a version with any cannot
    /// be read. Checks at most `limit` of those files, because VACUUM deletes
    /// every expired file at once and each check is a request to storage.
    pub async fn vacuumed_files(&self, newer: &Table, limit: usize) -> Result<Vec<String>> {
        use futures::StreamExt;
        use object_store::ObjectStoreExt;
        let live: std::collections::HashSet<deltalake::Path> = newer
            .state()?
            .log_data()
            .iter()
            .map(|file| file.object_store_path())
            .collect();
        let candidates: Vec<deltalake::Path> = self
            .state()?
            .log_data()
            .iter()
            .map(|file| file.object_store_path())
            .filter(|path| !live.contains(path))
            .take(limit)
            .collect();
        let store = self.store();
        let checks = futures::stream::iter(candidates).map(|path| {
            let store = store.clone();
            async move {
                match store.head(&path).await {
                    Ok(_) => Ok(None),
                    Err(object_store::Error::NotFound { .. }) => Ok(Some(path.to_string())),
                    Err(source) => Err(TableError::storage(path.to_string(), source)),
                }
            }
        });
        let found: Vec<Option<String>> = checks
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        Ok(found.into_iter().flatten().collect())
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        self.delta.log_store().object_store(None)
    }

    /// The newest version in storage (may be newer than this handle).
    pub async fn latest_version(&self) -> Result<u64> {
        self.delta
            .get_latest_version()
            .await
            .map_err(|source| TableError::delta(&self.name, source))
    }

    /// The table at `version`. Fails with [`TableError::VersionNotFound`] if
    /// the version was never written or its log entry has expired.
    pub async fn at_version(&self, version: u64) -> Result<Table> {
        let range = self.log_range().await?;
        self.load_in_range(version, range).await
    }

    /// `(earliest, latest)`: the versions whose commit files are in the log.
    async fn log_range(&self) -> Result<(u64, u64)> {
        let latest = self.latest_version().await?;
        let earliest = earliest_version(self.store().as_ref(), latest).await?;
        Ok((earliest, latest))
    }

    async fn load_in_range(&self, version: u64, (earliest, latest): (u64, u64)) -> Result<Table> {
        let not_found = || TableError::VersionNotFound {
            table: self.name.clone(),
            version,
            earliest,
            latest,
        };
        if version > latest {
            return Err(not_found());
        }
        let mut delta = self.delta.clone();
        match delta.load_version(version).await {
            Ok(()) => Ok(Table::new(&self.name, delta)),
            Err(DeltaTableError::InvalidVersion(_)) | Err(DeltaTableError::NotATable(_)) => Err(not_found()),
            Err(source) if version < earliest => {
                tracing::debug!(table = %self.name, error = %source, "version before the log's start");
                Err(not_found())
            }
            Err(source) => Err(TableError::delta(&self.name, source)),
        }
    }

    /// The latest version whose commit time is at or before `at`.
    ///
    /// Commit times come from the log's `commitInfo`, not from file modification
    /// times, so copying or touching the log does not move history.
    pub async fn version_at(&self, at: DateTime<Utc>) -> Result<u64> {
        let range = self.log_range().await?;
        self.version_at_in_range(at, range).await
    }

    async fn version_at_in_range(&self, at: DateTime<Utc>, (earliest, latest): (u64, u64)) -> Result<u64> {
        let store = self.store();
        let ts = |v: u64| {
            let store = store.clone();
            async move {
                read_commit(store.as_ref(), v)
                    .await
                    .map(|c| c.map(|c| c.timestamp))
            }
        };
        let first = ts(earliest).await?;
        if first.is_none_or(|first| first > at) {
            return Err(TableError::TimestampTooEarly {
                table: self.name.clone(),
                timestamp: at.to_rfc3339(),
                earliest,
                earliest_at: first.map(|t| t.to_rfc3339()).unwrap_or_else(|| "unknown".into()),
            });
        }
        // Binary search for the last version with ts <= at; commit times are
        // non-decreasing in a Delta log.
        let (mut lo, mut hi) = (earliest, latest);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match ts(mid).await? {
                Some(t) if t <= at => lo = mid,
                Some(_) => hi = mid - 1,
                // A hole in the log: stay on the side we know.
                None => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// The table as of instant `at` (see [`Table::version_at`]).
    pub async fn at_timestamp(&self, at: DateTime<Utc>) -> Result<Table> {
        let range = self.log_range().await?;
        let version = self.version_at_in_range(at, range).await?;
        self.load_in_range(version, range).await
    }

    /// Commits, newest first, at most `limit`.
    pub async fn history(&self, limit: Option<usize>) -> Result<Vec<CommitEntry>> {
        let store = self.store();
        let (earliest, latest) = self.log_range().await?;
        let mut out = Vec::new();
        for version in (earliest..=latest).rev() {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            if let Some(entry) = read_commit(store.as_ref(), version).await? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// The last committed sequence of `producer`, if any (Delta `txn` state).
    pub async fn producer_sequence(&self, producer: &str) -> Result<Option<i64>> {
        let state = self.state()?;
        state
            .transaction_version(self.delta.log_store().as_ref(), producer)
            .await
            .map_err(|source| TableError::delta(&self.name, source))
    }

    /// Writes `batches` in one commit and moves this handle to the new
    /// version, which is returned. The batches must already have the table's
    /// schema (see silt-ingest for casting).
    ///
    /// The commit neither lists `_delta_log` for expired-log cleanup nor
    /// reloads the snapshot: the handle is advanced from the commit itself.
    pub async fn write(
        &mut self,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        options: CommitOptions,
    ) -> Result<u64> {
        // Named, value-free refusal before anything is written (deltalake's
        // own check would quote the offending rows).
        self.check_rows(&batches)?;
        let _gate = self.write_gate().await;
        // Rows of erased subjects are never stored (see `suppress.rs`).
        let batches = match crate::suppress::Check::of(self)? {
            Some(check) => check.batches(batches)?,
            None => batches,
        };
        let txns = txn_actions(&options.transactions);
        let mut metadata = options.metadata;
        if mode == WriteMode::Append && !options.merge_schema {
            // These rows were decided without reading the table, so the
            // commit is a blind append (Delta's `isBlindAppend`): under
            // WriteSerializable, a concurrent UPDATE/DELETE/MERGE does not
            // conflict with it and rebases onto it (without the flag, 45 of
            // 46 UPDATEs under streaming ingest answered 409).
            metadata.insert(BLIND_APPEND.to_string(), serde_json::Value::Bool(true));
        }
        if mode == WriteMode::Append && !options.merge_schema && self.stages_appends()? {
            return self
                .append_staged(batches, txns, metadata, !options.skip_checkpoint)
                .await;
        }
        // Overwrites and schema evolution take deltalake's write builder
        // (it writes the removes and the new metadata); a failed commit of
        // theirs leaves its files to VACUUM.
        let props = crate::change::commit_properties(metadata)
            .with_application_transactions(txns)
            .with_create_checkpoint(!options.skip_checkpoint);
        let save_mode = match mode {
            WriteMode::Append => SaveMode::Append,
            WriteMode::Overwrite => SaveMode::Overwrite,
        };
        let mut builder = self
            .delta
            .clone()
            .write(batches)
            .with_save_mode(save_mode)
            .with_writer_properties(self.writer_properties()?)
            .with_commit_properties(props);
        if options.merge_schema {
            builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
        }
        let written = builder.await.map_err(|source| commit_error(&self.name, source))?;
        self.delta = written;
        Ok(self.version())
    }

    /// Commits only the producers' `txn` actions, with no data: how a group
    /// whose rows were all rejected (dead-lettered) still records that its
    /// sequences were handled, so their retries are duplicates.
    pub async fn commit_transactions(&mut self, transactions: &[ProducerTxn]) -> Result<u64> {
        let txns = txn_actions(transactions);
        let blind = HashMap::from([(BLIND_APPEND.to_string(), serde_json::Value::Bool(true))]);
        let operation = deltalake::protocol::DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let props = crate::change::commit_properties(blind)
            .with_application_transactions(txns)
            .with_create_checkpoint(false);
        let snapshot = self.state()?.clone();
        let finalized = deltalake::kernel::transaction::CommitBuilder::from(props)
            .build(Some(&snapshot), self.delta.log_store(), operation)
            .await
            .map_err(|source| commit_error(&self.name, source))?;
        self.delta.state = Some(finalized.snapshot());
        Ok(self.version())
    }

    /// Sets table properties in one commit; returns the new version.
    pub async fn set_properties(&mut self, properties: HashMap<String, String>) -> Result<u64> {
        let updated = self
            .delta
            .clone()
            .set_tbl_properties()
            .with_properties(properties)
            .with_raise_if_not_exists(false)
            .with_commit_properties(crate::change::commit_properties(HashMap::new()))
            .await
            .map_err(|source| TableError::delta(&self.name, source))?;
        self.delta = updated;
        Ok(self.version())
    }

    /// Writes a checkpoint of this handle's version (so readers and log
    /// expiry need not replay every JSON commit).
    pub async fn checkpoint(&self) -> Result<()> {
        deltalake::protocol::checkpoints::create_checkpoint(&self.delta, None)
            .await
            .map_err(|source| TableError::delta(&self.name, source))
    }

    /// The table's checkpoint interval (`delta.checkpointInterval`, default 100).
    pub fn checkpoint_interval(&self) -> u64 {
        self.properties()
            .ok()
            .and_then(|p| p.get("delta.checkpointInterval").and_then(|v| v.parse().ok()))
            .filter(|n| *n > 0)
            .unwrap_or(100)
    }

    /// Moves this handle to the newest version in storage. When the commits
    /// between this handle's version and the newest are gone (an erasure
    /// purge expired them behind a checkpoint), the table is loaded afresh
    /// from its latest checkpoint instead.
    pub async fn refresh(&mut self) -> Result<u64> {
        match self.delta.update_state().await {
            Ok(()) => Ok(self.version()),
            Err(DeltaTableError::InvalidVersion(_)) => {
                let mut fresh = DeltaTable::new(self.delta.log_store());
                fresh
                    .load()
                    .await
                    .map_err(|source| TableError::delta(&self.name, source))?;
                self.delta = fresh;
                Ok(self.version())
            }
            Err(source) => Err(TableError::delta(&self.name, source)),
        }
    }
}

/// A failed commit's error. A version this handle cannot read while
/// committing means the log moved under it and the commits it would check
/// against are gone (expired by an erasure purge): nothing was written, and
/// the caller should refresh and retry, as after a conflict.
pub(crate) fn commit_error(table: &str, source: DeltaTableError) -> TableError {
    match source {
        DeltaTableError::InvalidVersion(_) => TableError::Conflict {
            table: table.to_string(),
            source: Box::new(source),
        },
        source => TableError::delta(table, source),
    }
}

/// The `commitInfo` field that marks a commit as a blind append (it adds
/// files and read none): deltalake's conflict checker lets a concurrent
/// operation that read the table commit after it.
const BLIND_APPEND: &str = "isBlindAppend";

/// deltalake's OPTIMIZE target when `delta.targetFileSize` is not set.
const DEFAULT_TARGET_FILE_SIZE: u64 = 100 * 1024 * 1024;

/// The small data files of a table version (see [`Table::small_files`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmallFiles {
    /// Live data files.
    pub files: u64,
    /// Of those, files under the size asked about.
    pub small: u64,
    /// The most small files in one partition.
    pub most_in_one_partition: u64,
}

/// The Delta `txn` actions recording each producer's sequence, stamped now.
pub(crate) fn txn_actions(transactions: &[ProducerTxn]) -> Vec<Transaction> {
    let now = Utc::now().timestamp_millis();
    transactions
        .iter()
        .map(|t| Transaction {
            app_id: t.producer.clone(),
            version: t.sequence,
            last_updated: Some(now),
        })
        .collect()
}
