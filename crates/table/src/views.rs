//! Views: named queries kept in the warehouse, so every server, the CLI and
//! a restart see the same ones.
//!
//! A view is one JSON object at `<warehouse>/_silt/views/<name>.json`
//! holding its query text (SQL, planned again each time the view is used).
//! `_silt/` is silt's own area of the warehouse: it has no `_delta_log`, so
//! it is never listed as a table. A view shares the table namespace: a name
//! is a table or a view, never both. CREATE without OR REPLACE is a
//! conditional put, so two servers creating the same view cannot both win.

use deltalake::{ObjectStore, Path};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TableError};
use crate::name::validate_table_name;
use crate::warehouse::Warehouse;

/// Where views live under the warehouse root.
const VIEWS_DIR: &str = "_silt/views";

/// A stored view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDefinition {
    /// The view's name.
    pub name: String,
    /// The query, as SQL text (`SELECT …`).
    pub query: String,
    /// When it was created or last replaced (RFC 3339).
    pub created_at: String,
}

fn view_path(name: &str) -> Path {
    Path::from(format!("{VIEWS_DIR}/{name}.json"))
}

impl Warehouse {
    /// Stores view `name` with `query`. Without `replace`, a view of that
    /// name already stored is [`TableError::NameTaken`]; a table of that
    /// name always is.
    pub async fn create_view(&self, name: &str, query: &str, replace: bool) -> Result<ViewDefinition> {
        validate_table_name(name)?;
        if self.exists(name).await? {
            return Err(TableError::NameTaken {
                name: name.to_string(),
                existing: "table",
            });
        }
        let definition = ViewDefinition {
            name: name.to_string(),
            query: query.to_string(),
            created_at: chrono::Utc::now().to_rfc3339(),
        };
        let body = serde_json::to_vec_pretty(&definition).map_err(|e| TableError::InvalidDefinition {
            table: name.to_string(),
            reason: e.to_string(),
        })?;
        let store = self.root_store()?;
        let path = view_path(name);
        let mode = if replace {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match store.put_opts(&path, PutPayload::from(body), options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(TableError::NameTaken {
                    name: name.to_string(),
                    existing: "view",
                });
            }
            Err(source) => return Err(TableError::storage(path, source)),
        }
        tracing::info!(view = name, replace, "stored view");
        Ok(definition)
    }

    /// View `name`, if one is stored.
    pub async fn view(&self, name: &str) -> Result<Option<ViewDefinition>> {
        if validate_table_name(name).is_err() {
            return Ok(None);
        }
        let store = self.root_store()?;
        let path = view_path(name);
        let bytes = match store.get(&path).await {
            Ok(got) => got.bytes().await.map_err(|e| TableError::storage(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(TableError::storage(path, source)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TableError::InvalidView {
                view: name.to_string(),
                reason: e.to_string(),
            })
    }

    /// Names of the stored views, sorted.
    pub async fn list_views(&self) -> Result<Vec<String>> {
        let store = self.root_store()?;
        let prefix = Path::from(VIEWS_DIR);
        let objects: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| TableError::storage(&prefix, e))?;
        let mut names: Vec<String> = objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(".json").map(str::to_string))
            .filter(|name| validate_table_name(name).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every object under the views' area (`_silt/views/`), with the store
    /// that holds them (the warehouse root; paths are relative to it). A
    /// view's query text can quote any value, so erasure verification reads
    /// each of these, a file that is no valid view included.
    pub async fn view_objects(&self) -> Result<(std::sync::Arc<dyn ObjectStore>, Vec<Path>)> {
        let store = self.root_store()?;
        let prefix = Path::from(VIEWS_DIR);
        let mut paths: Vec<Path> = store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| TableError::storage(&prefix, e))?;
        paths.sort();
        Ok((store, paths))
    }

    /// Deletes view `name`; [`TableError::ViewNotFound`] when there is none.
    pub async fn drop_view(&self, name: &str) -> Result<()> {
        if self.view(name).await?.is_none() {
            return Err(TableError::ViewNotFound {
                view: name.to_string(),
                warehouse: self.display_location().to_string(),
            });
        }
        let path = view_path(name);
        match self.root_store()?.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => return Err(TableError::storage(path, source)),
        }
        tracing::info!(view = name, "dropped view");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn views_are_stored_listed_replaced_and_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("warehouse");
        warehouse
            .create_view("v", "SELECT 1", false)
            .await
            .expect("create");
        let again = warehouse.create_view("v", "SELECT 2", false).await;
        assert!(
            matches!(again, Err(TableError::NameTaken { existing: "view", .. })),
            "{again:?}"
        );
        warehouse
            .create_view("v", "SELECT 2", true)
            .await
            .expect("replace");
        let reopened = Warehouse::open(&dir.path().to_string_lossy()).expect("warehouse");
        assert_eq!(
            reopened.view("v").await.expect("read").map(|v| v.query),
            Some("SELECT 2".into())
        );
        assert_eq!(reopened.list_views().await.expect("list"), ["v"]);
        assert!(reopened.list_tables().await.expect("tables").is_empty());
        reopened.drop_view("v").await.expect("drop");
        assert!(matches!(
            reopened.drop_view("v").await,
            Err(TableError::ViewNotFound { .. })
        ));
        assert!(reopened.list_views().await.expect("list").is_empty());
    }
}
