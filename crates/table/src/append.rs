//! Appends that stage their files once and retry only the commit.
//!
//! deltalake's write builder writes the data files and commits them in one
//! call; when the commit fails (a real conflict: a metadata change, the same
//! producer committed by another server), the files it wrote stay in the
//! table's directory until VACUUM, and a caller that retries writes them
//! again. Here the files are written with the table's writer (its writer
//! properties, bloom filters on subject columns, statistics as configured),
//! the commit is tried (deltalake retries it at the next version after
//! checking the winning commits for a conflict), and a commit that did not
//! land deletes the files it staged.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use deltalake::DeltaTableError;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::DeltaWriter;
use object_store::ObjectStoreExt;

use crate::error::{Result, TableError};
use crate::log::commit_path;
use crate::table::Table;

/// Field metadata of a Delta generated column; deltalake's write builder
/// computes those, the staged path does not, so such tables take the builder.
const GENERATION_EXPRESSION: &str = "delta.generationExpression";

impl Table {
    /// Whether an append to this table can take the staged path: not when a
    /// column is generated (deltalake's builder computes it) or the table
    /// maps column names (deltalake's plain writer refuses those).
    pub(crate) fn stages_appends(&self) -> Result<bool> {
        let mapped = self
            .properties()?
            .get("delta.columnMapping.mode")
            .is_some_and(|mode| !mode.eq_ignore_ascii_case("none"));
        let generated = self
            .state()?
            .snapshot()
            .schema()
            .fields()
            .any(|field| field.metadata().contains_key(GENERATION_EXPRESSION));
        Ok(!mapped && !generated)
    }

    /// Appends `batches` (of the table's schema, already checked) in one
    /// commit carrying `transactions` and `metadata`; returns the new version.
    /// The caller holds the write gate.
    pub(crate) async fn append_staged(
        &mut self,
        batches: Vec<RecordBatch>,
        transactions: Vec<Transaction>,
        mut metadata: HashMap<String, serde_json::Value>,
        checkpoint: bool,
    ) -> Result<u64> {
        let started = Instant::now();
        let delta_error = |source| TableError::delta(self.name(), source);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut writer = self.file_writer()?;
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            writer.write(batch).await.map_err(delta_error)?;
        }
        let adds = writer.flush().await.map_err(delta_error)?;
        let partitions: BTreeSet<Vec<(String, Option<String>)>> = adds
            .iter()
            .map(|add| {
                let mut values: Vec<_> = add.partition_values.clone().into_iter().collect();
                values.sort();
                values
            })
            .collect();
        // The same figures deltalake's write builder records, so DESCRIBE
        // HISTORY and other Delta readers see appends as before.
        metadata.insert(
            "operationMetrics".to_string(),
            serde_json::json!({
                "num_added_files": adds.len(),
                "num_removed_files": 0,
                "num_partitions": if partitions.len() > 1 { partitions.len() } else { 0 },
                "num_added_rows": rows,
                "execution_time_ms": started.elapsed().as_millis() as u64,
                "num_retries": 0,
            }),
        );
        let partition_columns = self.partition_columns()?;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
            predicate: None,
        };
        let props = crate::change::commit_properties(metadata)
            .with_application_transactions(transactions)
            .with_create_checkpoint(checkpoint);
        let staged: Vec<String> = adds.iter().map(|add| add.path.clone()).collect();
        let snapshot = self.state()?.clone();
        let base = self.version();
        let committed = CommitBuilder::from(props)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(&snapshot), self.delta.log_store(), operation)
            .await;
        match committed {
            Ok(finalized) => {
                self.delta.state = Some(finalized.snapshot());
                Ok(self.version())
            }
            Err(source) => {
                if did_not_land(&source) {
                    self.discard_staged(base, &staged).await;
                }
                Err(crate::table::commit_error(self.name(), source))
            }
        }
    }

    /// Deletes the staged files of a commit that did not land, once no
    /// commit after `base` names one of them. An object store can apply a
    /// commit PUT whose answer was lost; deltalake's retry then meets its
    /// own commit as a rival and reports a conflict, and deleting the files
    /// would break the table. Anything that cannot be read keeps the files
    /// (VACUUM removes orphans after the retention).
    async fn discard_staged(&self, base: u64, staged: &[String]) {
        if staged.is_empty() {
            return;
        }
        let store = self.delta.log_store().object_store(None);
        let names: Vec<&str> = staged
            .iter()
            .map(|path| path.rsplit('/').next().unwrap_or(path))
            .collect();
        let latest = match self.delta.log_store().get_latest_version(base).await {
            Ok(latest) => latest.max(base),
            Err(error) => {
                tracing::warn!(table = %self.name(), %error, files = staged.len(), "a failed append keeps its files: the log does not read");
                return;
            }
        };
        for version in base + 1..=latest {
            let path = commit_path(version);
            let bytes = match store.get(&path).await {
                Ok(got) => got.bytes().await,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(error) => Err(error),
            };
            let text = match bytes {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(error) => {
                    tracing::warn!(table = %self.name(), %error, files = staged.len(), "a failed append keeps its files: a commit does not read");
                    return;
                }
            };
            // File names carry a random UUID, so a commit that holds one
            // holds this append's file.
            if names.iter().any(|name| text.contains(name)) {
                tracing::warn!(table = %self.name(), version, "an append reported as failed was committed; its files stay");
                return;
            }
        }
        let mut deleted = 0;
        for path in staged {
            match object_store::path::Path::from_url_path(path) {
                Ok(path) => match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(error) => {
                        tracing::warn!(table = %self.name(), %error, "a staged file of a failed append was not deleted")
                    }
                },
                Err(error) => {
                    tracing::warn!(table = %self.name(), %error, "a staged file of a failed append was not deleted")
                }
            }
        }
        tracing::info!(table = %self.name(), files = deleted, "deleted the staged files of an append that did not commit");
    }
}

/// Whether a commit error says for certain that the commit was not
/// written: a conflict, retries spent on versions others took, a protocol
/// refusal, or a log that moved away. A storage error is not certain (the
/// PUT may have been applied), so its files stay.
fn did_not_land(error: &DeltaTableError) -> bool {
    match error {
        DeltaTableError::VersionAlreadyExists(_)
        | DeltaTableError::InvalidVersion(_)
        | DeltaTableError::SerializeLogJson { .. } => true,
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
                | TransactionError::VersionAlreadyExists(_)
                | TransactionError::DeltaTableAppendOnly
                | TransactionError::UnsupportedTableFeatures(_)
                | TransactionError::TableFeaturesRequired(_)
                | TransactionError::SerializeLogJson { .. }
        ),
        _ => false,
    }
}
