//! silt-sql owns SQL over the warehouse: a DataFusion session whose catalog is
//! the warehouse, Delta time travel (`VERSION AS OF`, `TIMESTAMP AS OF`), DDL
//! and DML planned here and run as silt-table operations, `DESCRIBE
//! HISTORY`, and the result encoders (table, CSV, JSON, NDJSON).
//!
//! ```text
//!  SQL text ─Engine::parse (limits, Databricks dialect)─▶ Script (access it needs)
//!    ├─ several statements: every query / INSERT planned before any runs
//!    ├─ CREATE / DROP / DESCRIBE HISTORY ─▶ silt-table Warehouse
//!    ├─ ALTER / DESCRIBE DETAIL / OPTIMIZE / VACUUM / RESTORE
//!    │    ─▶ Table::change() operations (alter.rs, maintenance.rs)
//!    ├─ UPDATE / DELETE / MERGE: expressions planned and checked on empty
//!    │    inputs (dml.rs, merge.rs) ─▶ Table::change()
//!    └─ SELECT / INSERT / EXPLAIN / SHOW
//!         ─time_travel::pin_versions─▶ `t@vN` names
//!         ─DataFusion planner over catalog::StatementSchema─▶ plan
//!         ─▶ batches (queries) / Table::change().insert (INSERT)
//! ```
//!
//! Style: modules import downward only (`engine` at the top, `catalog`,
//! `ddl` and `error` at the bottom; `farm-studio look crates/sql/src` shows no
//! circle); this crate holds no `DeltaTable` — every change to a table is a
//! silt-table operation, which applies the table's rules (docs/ARCHITECTURE.md,
//! "Writes").
//!
//! Each statement pins one snapshot per table at its start, so a statement
//! never sees a half-applied commit and readers never block writers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let warehouse = silt_table::Warehouse::open("./silt-data")?;
//! let engine = silt_sql::Engine::new(warehouse);
//! let results = engine
//!     .execute("SELECT (SELECT count(*) FROM t) - (SELECT count(*) FROM t VERSION AS OF 1)")
//!     .await?;
//! print!("{}", String::from_utf8_lossy(&silt_sql::encode(
//!     silt_sql::OutputFormat::Table, &results[0].schema, &results[0].batches)?));
//! # Ok(()) }
//! ```

mod access;
mod alter;
mod apply;
mod catalog;
mod cooperative;
mod ddl;
mod dml;
mod encode;
mod engine;
mod error;
mod history;
mod kind;
mod limits;
mod listing;
mod maintenance;
mod merge;
mod params;
mod redact;
mod show_create;
mod statement;
mod time_travel;
mod view;

pub use access::{Access, required_access};
pub use datafusion::common::ScalarValue;
pub use ddl::{parse_data_type, sql_type_name};
pub use encode::{OutputFormat, encode, json_document};
pub use engine::{
    CATALOG, Engine, EngineOptions, Prepared, SCHEMA, Script, StatementOutput, StatementStream,
};
pub use error::{Result, SqlError, storage_detail};
pub use kind::StatementKind;
pub use limits::{QUERY_STACK_BYTES, StatementLimits, check_text};
pub use redact::{UNTOKENIZABLE, redact_literals};
pub use statement::{StatementText, ends_statement, split_script, split_statements};
