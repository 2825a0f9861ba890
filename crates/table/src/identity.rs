//! Which Delta table a handle is on. A table dropped and re-created under
//! the same name (by this process or another) is a different table: its
//! metadata id is new and its log starts again at version 0. A long-lived
//! handle (the ingest committer's) must notice before it commits, or it
//! would write data files into the new table's directory and commit them
//! against the old table's snapshot.

use deltalake::Path;
use object_store::ObjectStoreExt;

use crate::error::{Result, TableError};
use crate::table::Table;

/// What storage says about a table's first commit file
/// (`_delta_log/00000000000000000000.json`): written once by CREATE, so a
/// different stamp means the table was re-created. One HEAD request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStamp {
    e_tag: Option<String>,
    last_modified: chrono::DateTime<chrono::Utc>,
    size: u64,
}

impl Table {
    /// The Delta metadata id of this handle's version (a new table, even
    /// under an old name, has a new one).
    pub fn table_id(&self) -> Result<String> {
        let state = self
            .delta
            .snapshot()
            .map_err(|source| TableError::delta(self.name(), source))?;
        Ok(state.metadata().id().to_string())
    }

    /// The stamp of the table's first commit file in storage now, or `None`
    /// when there is none: the table was dropped, or its early log expired
    /// (an erasure purge expires commits behind a checkpoint), so no cheap
    /// answer exists and callers fall back to [`Table::table_id`] of a fresh load.
    pub async fn first_commit_stamp(&self) -> Result<Option<CommitStamp>> {
        let store = self.delta.log_store().object_store(None);
        let path = Path::from(format!("_delta_log/{:020}.json", 0));
        match store.head(&path).await {
            Ok(meta) => Ok(Some(CommitStamp {
                e_tag: meta.e_tag,
                last_modified: meta.last_modified,
                size: meta.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(TableError::storage(path.to_string(), source)),
        }
    }
}
