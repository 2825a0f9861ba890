//! silt-sql owns SQL over the warehouse: a DataFusion session whose catalog is
//! the warehouse, Delta time travel (`VERSION AS OF`, `TIMESTAMP AS OF`), DDL
//! and DML translated to silt-table / deltalake operations, `DESCRIBE
//! HISTORY`, and the result encoders (table, CSV, JSON, NDJSON).
//!
//! ```text
//!  SQL text ─statement::parse (Databricks dialect)─▶ statements
//!    ├─ CREATE / DROP / DESCRIBE HISTORY ─▶ silt-table
//!    ├─ ALTER / DESCRIBE DETAIL / OPTIMIZE / VACUUM / RESTORE
//!    │    ─▶ deltalake operations (alter.rs, maintenance.rs)
//!    └─ SELECT / INSERT / EXPLAIN / SHOW
//!         ─time_travel::pin_versions─▶ `t@vN` names
//!         ─DataFusion planner over catalog::StatementSchema─▶ plan ─▶ batches
//! ```
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
mod catalog;
mod cooperative;
mod ddl;
mod dml;
mod encode;
mod engine;
mod error;
mod history;
mod limits;
mod maintenance;
mod merge;
mod redact;
mod statement;
mod time_travel;

pub use access::{Access, required_access};
pub use datafusion::common::ScalarValue;
pub use ddl::{parse_data_type, sql_type_name};
pub use encode::{OutputFormat, encode, json_document};
pub use engine::{
    CATALOG, Engine, EngineOptions, Prepared, SCHEMA, Script, StatementOutput, StatementStream,
};
pub use error::{Result, SqlError};
pub use limits::{QUERY_STACK_BYTES, StatementLimits, check_text};
pub use redact::{UNTOKENIZABLE, redact_literals};
pub use statement::split_statements;
