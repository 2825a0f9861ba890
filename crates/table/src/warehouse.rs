//! The warehouse: a root location whose children are Delta tables.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::Schema as ArrowSchema;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTableBuilder, DeltaTableError, ObjectStore, Path};
use futures::TryStreamExt;
use url::Url;

use crate::error::{Result, TableError};
use crate::name::validate_table_name;
use crate::table::Table;

/// What `CREATE TABLE` needs: columns, partitioning and properties.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Column names, Arrow types and nullability.
    pub schema: Arc<ArrowSchema>,
    /// Partition columns, in order; each must be a column of `schema`.
    pub partition_columns: Vec<String>,
    /// Delta table configuration (`delta.*`, `silt.*`).
    pub properties: HashMap<String, String>,
    /// Succeed without change if the table exists.
    pub if_not_exists: bool,
}

/// The table property that raises the Delta writer protocol version.
const MIN_WRITER_VERSION: &str = "delta.minWriterVersion";

/// A root directory or object-store URL holding tables at `<root>/<name>/`.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    display: String,
    storage_options: HashMap<String, String>,
}

/// The environment variable that sets how long an object-store request
/// is retried (object_store's `retry_timeout`, e.g. `15s`, `2m`); a
/// `retry_timeout` storage option wins over it.
pub const RETRY_TIMEOUT_ENV: &str = "SILT_STORAGE_RETRY_TIMEOUT";

/// silt's default `retry_timeout` for object stores.
const DEFAULT_RETRY_TIMEOUT: &str = "15s";

/// How often [`Warehouse::table`] reads a table's log again when it changed
/// while being read.
const OPEN_RETRIES: u32 = 3;

impl Warehouse {
    /// Opens a warehouse at a local directory (created if missing) or an
    /// object-store URL such as `s3://bucket/prefix`.
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with_options(location, HashMap::new())
    }

    /// Like [`Warehouse::open`], with object-store options (credentials, endpoint).
    pub fn open_with_options(location: &str, storage_options: HashMap<String, String>) -> Result<Self> {
        let invalid = |reason: String| TableError::InvalidLocation {
            location: location.to_string(),
            reason,
        };
        let root = match Url::parse(location) {
            // A one-letter scheme is a Windows drive, not a URL.
            Ok(url) if url.scheme().len() > 1 && url.scheme() != "file" => url,
            _ => {
                let path = match Url::parse(location) {
                    Ok(url) if url.scheme() == "file" => url
                        .to_file_path()
                        .map_err(|()| invalid("not a local path".to_string()))?,
                    _ => std::path::PathBuf::from(location),
                };
                std::fs::create_dir_all(&path).map_err(|e| invalid(e.to_string()))?;
                let path = path.canonicalize().map_err(|e| invalid(e.to_string()))?;
                Url::from_directory_path(&path).map_err(|()| invalid("not an absolute path".to_string()))?
            }
        };
        let mut root = root;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let mut storage_options = storage_options;
        if root.scheme() != "file" {
            // object_store retries a failing request for up to 3 minutes by
            // default; a request to silt should fail with 503 long before
            // its client gives up (docs/operations.md).
            let timeout =
                std::env::var(RETRY_TIMEOUT_ENV).unwrap_or_else(|_| DEFAULT_RETRY_TIMEOUT.to_string());
            storage_options
                .entry("retry_timeout".to_string())
                .or_insert(timeout);
        }
        Ok(Self {
            root,
            display: location.to_string(),
            storage_options,
        })
    }

    /// Checks that the warehouse's storage answers: one listing of the root
    /// (a single LIST request on an object store), given at most `timeout`.
    /// `GET /readyz` asks this.
    pub async fn probe(&self, timeout: std::time::Duration) -> Result<()> {
        let store = self.root_store()?;
        match tokio::time::timeout(timeout, store.list_with_delimiter(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(TableError::storage(self.display.clone(), source)),
            Err(_) => Err(TableError::Unreachable {
                location: self.display.clone(),
                waited_ms: timeout.as_millis(),
            }),
        }
    }

    /// The warehouse root URL (always ends with `/`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The location as the user gave it, for messages.
    pub fn display_location(&self) -> &str {
        &self.display
    }

    /// The URL of table `name` (whether or not it exists).
    pub fn table_url(&self, name: &str) -> Result<Url> {
        validate_table_name(name)?;
        self.root
            .join(&format!("{name}/"))
            .map_err(|e| TableError::InvalidLocation {
                location: self.display.clone(),
                reason: e.to_string(),
            })
    }

    pub(crate) fn root_store(&self) -> Result<Arc<dyn ObjectStore>> {
        deltalake::logstore::store_for(&self.root, self.storage_options.clone()).map_err(|source| {
            TableError::Delta {
                table: self.display.clone(),
                source: Box::new(source),
            }
        })
    }

    /// Names of the tables in the warehouse, sorted. A table is a child
    /// directory with a `_delta_log`.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        let store = self.root_store()?;
        let listing = store
            .list_with_delimiter(None)
            .await
            .map_err(|source| TableError::storage(self.display.clone(), source))?;
        let mut names = Vec::new();
        for prefix in listing.common_prefixes {
            let Some(name) = prefix.parts().next_back().map(|p| p.as_ref().to_string()) else {
                continue;
            };
            if validate_table_name(&name).is_err() {
                continue;
            }
            let log = Path::from(format!("{name}/_delta_log"));
            let has_log = store
                .list_with_delimiter(Some(&log))
                .await
                .map(|l| !l.objects.is_empty())
                .unwrap_or(false);
            if has_log {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn builder(&self, name: &str) -> Result<DeltaTableBuilder> {
        let url = self.table_url(name)?;
        DeltaTableBuilder::from_url(url)
            .map(|b| b.with_storage_options(self.storage_options.clone()))
            .map_err(|source| TableError::delta(name, source))
    }

    fn not_found(&self, name: &str) -> TableError {
        TableError::NotFound {
            table: name.to_string(),
            warehouse: self.display.clone(),
        }
    }

    /// Opens table `name` at its latest version.
    pub async fn table(&self, name: &str) -> Result<Table> {
        if self.missing_locally(name) {
            return Err(self.not_found(name));
        }
        let mut attempt = 0;
        loop {
            let mut delta = self
                .builder(name)?
                .build()
                .map_err(|source| TableError::delta(name, source))?;
            match delta.load().await {
                Ok(()) => return Ok(Table::new(name, delta)),
                Err(DeltaTableError::NotATable(_)) | Err(DeltaTableError::InvalidTableLocation(_)) => {
                    return Err(self.not_found(name));
                }
                // The kernel reports a missing location as a generic error.
                Err(_) if !self.exists(name).await.unwrap_or(true) => return Err(self.not_found(name)),
                // The log moved while it was read: an erasure purge wrote a
                // new checkpoint and deleted the one `_last_checkpoint`
                // named a moment ago (the API fuzz pass found this as a 500).
                // Loading is read-only, so read the log again.
                Err(_) if attempt < OPEN_RETRIES => {
                    attempt += 1;
                    // No error text: a data file's path can hold a partition value.
                    tracing::debug!(
                        table = name,
                        attempt,
                        "table log moved while opening; reading it again"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
                }
                Err(source) => return Err(TableError::delta(name, source)),
            }
        }
    }

    /// True when the warehouse is a local directory and `name` has no
    /// `_delta_log` in it: answered without asking the Delta kernel, which
    /// logs a missing table location at ERROR level.
    fn missing_locally(&self, name: &str) -> bool {
        validate_table_name(name).is_ok()
            && self.root.scheme() == "file"
            && self
                .root
                .to_file_path()
                .is_ok_and(|root| !root.join(name).join("_delta_log").is_dir())
    }

    /// Whether table `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        if self.missing_locally(name) {
            return Ok(false);
        }
        let delta = self
            .builder(name)?
            .build()
            .map_err(|source| TableError::delta(name, source))?;
        delta
            .verify_deltatable_existence()
            .await
            .map_err(|source| TableError::delta(name, source))
    }

    /// Creates a table. Fails with [`TableError::AlreadyExists`] unless
    /// `spec.if_not_exists`, in which case the existing table is returned.
    pub async fn create_table(&self, name: &str, spec: TableSpec) -> Result<Table> {
        validate_table_name(name)?;
        if self.exists(name).await? {
            if spec.if_not_exists {
                return self.table(name).await;
            }
            return Err(TableError::AlreadyExists(name.to_string()));
        }
        if self.view(name).await?.is_some() {
            return Err(TableError::NameTaken {
                name: name.to_string(),
                existing: "view",
            });
        }
        let (schema, properties) = checked_definition(name, &spec)?;
        let invalid = |reason: String| TableError::InvalidDefinition {
            table: name.to_string(),
            reason,
        };
        let kernel: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| invalid(e.to_string()))?;
        let delta = self
            .builder(name)?
            .build()
            .map_err(|source| TableError::delta(name, source))?;
        let created = delta
            .create()
            .with_table_name(name)
            .with_columns(kernel.fields().cloned())
            .with_partition_columns(spec.partition_columns.clone())
            .with_configuration(properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            .with_save_mode(SaveMode::ErrorIfExists)
            // silt.* properties are ours; delta-rs only knows delta.*.
            .with_raise_if_key_not_exists(false)
            .await;
        let created = match created {
            Ok(created) => created,
            // ErrorIfExists fails with a generic error whose only sign is
            // its text; ask storage instead (another writer created it first).
            Err(source) => {
                return Err(match self.exists(name).await {
                    Ok(true) => TableError::AlreadyExists(name.to_string()),
                    _ => TableError::delta(name, source),
                });
            }
        };
        tracing::info!(table = name, "created table");
        Ok(Table::new(name, created))
    }

    /// `CREATE OR REPLACE TABLE name`: replaces the table's definition
    /// and rows with `spec` and `batches` in one commit that keeps its
    /// history (see [`crate::Change`]); creates it when there is none.
    pub async fn replace_table(
        &self,
        name: &str,
        spec: TableSpec,
        batches: Vec<deltalake::arrow::record_batch::RecordBatch>,
    ) -> Result<Table> {
        let table = match self.table(name).await {
            Ok(table) => table,
            Err(TableError::NotFound { .. }) => {
                let mut table = self.create_table(name, spec).await?;
                let batches: Vec<_> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
                if !batches.is_empty() {
                    table
                        .write(batches, crate::WriteMode::Append, crate::CommitOptions::default())
                        .await?;
                }
                return Ok(table);
            }
            Err(error) => return Err(error),
        };
        table
            .change()
            .replace(&spec, batches, &self.storage_options)
            .await
    }

    /// Deletes table `name` and all its files.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        if !self.exists(name).await? {
            return Err(self.not_found(name));
        }
        let store = self.root_store()?;
        let prefix = Path::from(name);
        let paths = Box::pin(store.list(Some(&prefix)).map_ok(|m| m.location));
        store
            .delete_stream(paths)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|source| TableError::storage(name.to_string(), source))?;
        if self.root.scheme() == "file"
            && let Ok(dir) = self.table_url(name)?.to_file_path()
        {
            // Local stores leave empty directories behind.
            let _ = std::fs::remove_dir_all(dir);
        }
        tracing::info!(table = name, "dropped table");
        Ok(())
    }
}

/// `spec`'s schema made Delta-compatible and its properties completed
/// (writer version 3 for CHECK constraints), after the checks every
/// definition passes: columns, partition columns, constraints.
pub(crate) fn checked_definition(
    name: &str,
    spec: &TableSpec,
) -> Result<(Arc<ArrowSchema>, HashMap<String, String>)> {
    let invalid = |reason: String| TableError::InvalidDefinition {
        table: name.to_string(),
        reason,
    };
    if spec.schema.fields().is_empty() {
        return Err(invalid("a table needs at least one column".to_string()));
    }
    for column in &spec.partition_columns {
        if spec.schema.field_with_name(column).is_err() {
            return Err(invalid(format!(
                "partition column '{column}' is not a column of the table"
            )));
        }
    }
    if spec.partition_columns.len() >= spec.schema.fields().len() {
        return Err(invalid(
            "at least one column must not be a partition column".to_string(),
        ));
    }
    let schema = crate::types::delta_compatible_schema(&spec.schema).map_err(invalid)?;
    let mut properties = spec.properties.clone();
    crate::constraints::validate_constraints(name, &schema, &properties)?;
    if properties.keys().any(|k| k.starts_with(crate::CONSTRAINT_PREFIX))
        && !properties.contains_key(MIN_WRITER_VERSION)
    {
        // Delta's CHECK constraints need writer version 3 (or the
        // checkConstraints feature, which deltalake adds when the
        // table is on writer version 7 anyway).
        properties.insert(MIN_WRITER_VERSION.to_string(), "3".to_string());
    }
    Ok((schema, properties))
}
