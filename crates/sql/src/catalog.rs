//! The warehouse as a DataFusion schema, one instance per statement.
//!
//! Each statement gets its own [`StatementSchema`], which loads every table it
//! names once and keeps that snapshot for the rest of the statement: snapshot
//! isolation without locks. Time-travel references are rewritten beforehand to
//! synthetic names (`t@v12`) that this schema resolves to that version.
//!
//! A name that is no table may be a view stored in the warehouse: it is
//! planned here, at plan time, by the [`ExpandView`] the engine hands in
//! (planning needs the time-travel and parse modules, which sit above this
//! one), with a child schema that shares this statement's pinned snapshots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider,
    TableProvider,
};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, TableType};
use futures::future::BoxFuture;
use silt_table::{Table, TableError, ViewDefinition, Warehouse};

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

/// How deep views may nest (a view over a view over …), so a cycle
/// written with OR REPLACE ends in an error, not a stack overflow.
const MAX_VIEW_DEPTH: usize = 16;

/// Plans a view's query over `schema` (a child of the statement's schema,
/// see [`StatementSchema::for_view`]).
pub(crate) type ExpandView = Arc<
    dyn Fn(Arc<StatementSchema>, ViewDefinition) -> BoxFuture<'static, crate::error::Result<LogicalPlan>>
        + Send
        + Sync,
>;

/// Tables resolved for one statement.
pub(crate) struct StatementSchema {
    warehouse: Warehouse,
    /// The engine's base session: scans follow its settings (Parquet filter
    /// pushdown, view types) and register object stores in its runtime.
    session: Arc<SessionState>,
    /// Shared with the schemas of the views this statement expands, so a
    /// table read inside and outside a view is one snapshot.
    resolved: Arc<Mutex<HashMap<String, Table>>>,
    expand: ExpandView,
    /// The views being expanded, outermost first.
    expanding: Vec<String>,
    /// The statement's `$n` values (UPDATE/DELETE/MERGE bind them per
    /// expression, see `params.rs`).
    params: Arc<crate::params::Params>,
}

impl std::fmt::Debug for StatementSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementSchema")
            .field("warehouse", &self.warehouse)
            .field("expanding", &self.expanding)
            .finish_non_exhaustive()
    }
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
    pub(crate) fn new(warehouse: Warehouse, session: Arc<SessionState>, expand: ExpandView) -> Self {
        Self {
            warehouse,
            session,
            resolved: Arc::new(Mutex::new(HashMap::new())),
            expand,
            expanding: Vec::new(),
            params: Arc::new(crate::params::Params::default()),
        }
    }

    /// This schema binding `params` in the statement planned over it.
    pub(crate) fn with_params(mut self, params: crate::params::Params) -> Self {
        self.params = Arc::new(params);
        self
    }

    /// The statement's parameter values.
    pub(crate) fn params(&self) -> &crate::params::Params {
        &self.params
    }

    /// The engine's base session.
    pub(crate) fn session(&self) -> &Arc<SessionState> {
        &self.session
    }

    /// The schema a view's query is planned in: the same pinned tables,
    /// one level deeper. Refuses a view that (through others) refers to
    /// itself, and nesting beyond [`MAX_VIEW_DEPTH`].
    pub(crate) fn for_view(&self, view: &str) -> crate::error::Result<Arc<StatementSchema>> {
        if self.expanding.iter().any(|v| v == view) {
            let chain: Vec<&str> = self.expanding.iter().map(String::as_str).chain([view]).collect();
            return Err(crate::error::SqlError::Invalid(format!(
                "view '{view}' refers to itself ({}); replace one of these views",
                chain.join(" → ")
            )));
        }
        if self.expanding.len() >= MAX_VIEW_DEPTH {
            return Err(crate::error::SqlError::Invalid(format!(
                "views nest deeper than {MAX_VIEW_DEPTH} levels at view '{view}'"
            )));
        }
        let mut expanding = self.expanding.clone();
        expanding.push(view.to_string());
        Ok(Arc::new(StatementSchema {
            warehouse: self.warehouse.clone(),
            session: self.session.clone(),
            resolved: self.resolved.clone(),
            expand: self.expand.clone(),
            expanding,
            params: self.params.clone(),
        }))
    }

    /// The stored view `name`, if `name` is a view (never for a versioned name).
    pub(crate) async fn view(&self, name: &str) -> crate::error::Result<Option<ViewDefinition>> {
        if name.contains(VERSION_MARK) || silt_table::is_internal_table(name) {
            return Ok(None);
        }
        Ok(self.warehouse.view(name).await?)
    }

    /// The tables and views of the warehouse, sorted, internal tables left
    /// out; unlike [`SchemaProvider::table_names`] a failed listing is an
    /// error, not an empty answer.
    pub(crate) async fn object_names(&self) -> DfResult<Vec<String>> {
        let external = |e: TableError| DataFusionError::External(Box::new(e));
        let mut names = self.warehouse.list_tables().await.map_err(external)?;
        names.extend(self.warehouse.list_views().await.map_err(external)?);
        names.retain(|name| !silt_table::is_internal_table(name));
        names.sort();
        Ok(names)
    }

    /// View `definition` planned, as a provider DataFusion inlines.
    async fn expand_view(&self, definition: ViewDefinition) -> DfResult<Arc<dyn TableProvider>> {
        let name = definition.name.clone();
        let query = definition.query.clone();
        let planned = match self.for_view(&name) {
            Ok(child) => (self.expand)(child, definition).await,
            Err(error) => Err(error),
        };
        let plan = planned.map_err(|error| {
            // Say which view failed: "table 't' not found" alone would
            // puzzle a user who only named the view.
            let error = match error {
                crate::error::SqlError::NotFound(reason) => crate::error::SqlError::NotFound(format!(
                    "view '{name}' cannot be read: {reason}; replace the view (CREATE OR REPLACE VIEW) or drop it"
                )),
                crate::error::SqlError::Table(TableError::NotFound { table, .. }) => {
                    crate::error::SqlError::NotFound(format!(
                        "view '{name}' cannot be read: table '{table}' not found; replace the view (CREATE OR REPLACE VIEW) or drop it"
                    ))
                }
                other => other,
            };
            DataFusionError::External(Box::new(error))
        })?;
        Ok(Arc::new(ViewTable::new(plan, Some(query))))
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
        let (tables, views) = tokio::task::block_in_place(|| {
            handle.block_on(async { (warehouse.list_tables().await, warehouse.list_views().await) })
        });
        let mut names = tables.unwrap_or_default();
        names.extend(views.unwrap_or_default());
        names.retain(|name| !silt_table::is_internal_table(name));
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.resolve(name).await? else {
            if let Some(definition) = self
                .view(name)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
            {
                return self.expand_view(definition).await.map(Some);
            }
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

    /// Answered without planning a view (SHOW TABLES, information_schema.tables).
    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        if self.resolve(name).await?.is_some() {
            return Ok(Some(TableType::Base));
        }
        let view = self
            .view(name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(view.map(|_| TableType::View))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.pinned(name).is_some() || self.table_names().iter().any(|t| t == name)
    }
}
