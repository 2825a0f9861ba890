//! The warehouse as a DataFusion schema, one instance per statement.
//!
//! Each statement gets its own [`StatementSchema`], which loads every table it
//! names once and keeps that snapshot for the rest of the statement: snapshot
//! isolation without locks. Time-travel references are rewritten beforehand to
//! synthetic names (`t@v12`) that this schema resolves to that version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider,
    TableProvider,
};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use silt_table::{Table, TableError, Warehouse};

/// The catalog and schema names silt's tables live under.
pub const CATALOG: &str = "silt";
/// See [`CATALOG`].
pub const SCHEMA: &str = "public";

/// Separator between a table name and its pinned version in rewritten SQL.
/// `@` cannot occur in a table name (see `validate_table_name`).
pub(crate) const VERSION_MARK: &str = "@v";

/// The synthetic name of table `name` at `version`.
pub(crate) fn versioned_name(name: &str, version: u64) -> String {
    format!("{name}{VERSION_MARK}{version}")
}

/// Tables resolved for one statement.
#[derive(Debug)]
pub(crate) struct StatementSchema {
    warehouse: Warehouse,
    /// The engine's base session: scans follow its settings (Parquet filter
    /// pushdown, view types) and register object stores in its runtime.
    session: Arc<SessionState>,
    resolved: Mutex<HashMap<String, Table>>,
}

/// `schema` as the only catalog of a statement's session: `silt.public`.
pub(crate) fn statement_catalogs(schema: &Arc<StatementSchema>) -> DfResult<Arc<MemoryCatalogProviderList>> {
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SCHEMA, schema.clone())?;
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(CATALOG.to_string(), Arc::new(catalog));
    Ok(Arc::new(catalogs))
}

impl StatementSchema {
    pub(crate) fn new(warehouse: Warehouse, session: Arc<SessionState>) -> Self {
        Self {
            warehouse,
            session,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Pins `table` under `name` for the rest of the statement.
    pub(crate) fn pin(&self, name: String, table: Table) {
        if let Ok(mut resolved) = self.resolved.lock() {
            resolved.insert(name, table);
        }
    }

    /// The table already resolved under `name` in this statement, if any.
    pub(crate) fn pinned(&self, name: &str) -> Option<Table> {
        self.resolved.lock().ok().and_then(|r| r.get(name).cloned())
    }

    /// Loads (or returns the pinned) table for a possibly versioned name.
    pub(crate) async fn resolve(&self, name: &str) -> DfResult<Option<Table>> {
        if let Some(table) = self.pinned(name) {
            return Ok(Some(table));
        }
        let (base, version) = match name.split_once(VERSION_MARK) {
            Some((base, v)) => (base, v.parse::<u64>().ok()),
            None => (name, None),
        };
        if silt_table::validate_table_name(base).is_err() {
            return Ok(None);
        }
        if silt_table::is_internal_table(base) {
            return Err(DataFusionError::External(Box::new(crate::error::internal_table(
                base,
            ))));
        }
        let external = |e: TableError| DataFusionError::External(Box::new(e));
        let table = match self.warehouse.table(base).await {
            Ok(table) => table,
            Err(TableError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(external(e)),
        };
        let table = match version {
            Some(v) => table.at_version(v).await.map_err(external)?,
            None => table,
        };
        self.pin(name.to_string(), table.clone());
        Ok(Some(table))
    }
}

#[async_trait]
impl SchemaProvider for StatementSchema {
    fn table_names(&self) -> Vec<String> {
        // DataFusion asks synchronously (SHOW TABLES, information_schema);
        // blocking is only allowed on a multi-thread runtime.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Vec::new();
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            tracing::warn!("table listing needs a multi-thread runtime; showing no tables");
            return Vec::new();
        }
        let warehouse = self.warehouse.clone();
        let mut names =
            tokio::task::block_in_place(|| handle.block_on(warehouse.list_tables())).unwrap_or_default();
        names.retain(|name| !silt_table::is_internal_table(name));
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.resolve(name).await? else {
            // DataFusion asks for a table before it tries a table function
            // of that name (generate_series): those stay for it to find.
            if self.session.table_functions().contains_key(name) {
                return Ok(None);
            }
            // A typed error, not DataFusion's "not found" plan error, so
            // the kind (404) does not hang on its message text.
            let missing =
                crate::error::SqlError::NotFound(format!("table '{CATALOG}.{SCHEMA}.{name}' not found"));
            return Err(DataFusionError::External(Box::new(missing)));
        };
        // Scans read through the table's own object store (credentials,
        // prefix). Without a session deltalake forces Parquet row-filter
        // pushdown on, which made filtered scans ~3x slower than plain
        // DataFusion (benches/results/2026-11-25-bulk.md).
        let provider = table
            .table_provider(&self.session)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.pinned(name).is_some() || self.table_names().iter().any(|t| t == name)
    }
}
