//! silt-table owns the warehouse and its tables: plain Delta Lake tables at
//! `<warehouse>/<name>/`, read and written through the `deltalake` crate.
//!
//! It creates, lists, opens and drops tables; opens snapshots at the latest
//! version, at version N, or at an instant resolved from the commit timestamps
//! in the log; reads history; appends or overwrites Arrow record batches in one
//! commit that can carry producer `txn` actions for exactly-once ingest; gets
//! and sets table properties; and runs every other operation that changes a
//! table (`Table::change()`: INSERT of a plan, UPDATE, DELETE, MERGE,
//! OPTIMIZE, VACUUM, RESTORE, ADD COLUMNS, a rewrite's commit), each under
//! the table's write gate, with its writer properties and errors classified
//! by type. It is the only crate that holds a `DeltaTable`; rows reach a table
//! through its one strict cast (`cast_to_schema`).
//!
//! ```text
//!   Warehouse ──open(name)──▶ Table (one snapshot) ──write()──▶ new version
//!       │                       │
//!       └─ create_table(spec)   └─ at_version(n) / at_timestamp(t) / history()
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), silt_table::TableError> {
//! use silt_table::Warehouse;
//! let warehouse = Warehouse::open("./silt-data")?;
//! let table = warehouse.table("events").await?;
//! let before = table.at_version(table.version().saturating_sub(1)).await?;
//! println!("{} was at version {}", before.name(), before.version());
//! # Ok(()) }
//! ```

mod append;
mod cast;
mod cdc;
mod change;
mod constraints;
mod error;
mod gate;
mod identity;
mod kind;
mod log;
mod name;
mod suppress;
mod table;
pub mod types;
mod views;
mod warehouse;
mod writer_props;

pub use cast::{CastError, cast_to_schema};
pub use cdc::{ApplyChanges, ApplyCounts, DEFAULT_TOMBSTONE_RETENTION_HOURS, TOMBSTONE_RETENTION_PROPERTY};
pub use change::{
    Change, ChangeCounts, MergeClause, OptimizeMetrics, RestoreMetrics, VacuumSpec, commit_properties,
};
pub use constraints::{
    CONSTRAINT_PREFIX, CheckConstraint, Violation, constraints_of, validate_constraint_name,
};
pub use error::{Result, TableError, storage_kind};
pub use gate::{ExclusiveWriteGuard, SharedWriteGuard};
pub use identity::CommitStamp;
pub use kind::ErrorKind;
pub use log::CommitEntry;
pub use name::{INTERNAL_TABLE_PREFIX, is_internal_table, validate_table_name};
pub use suppress::{Suppressor, register_suppressor, text_marks};
pub use table::{CommitOptions, ProducerTxn, SmallFiles, Table, WriteMode};
pub use types::sql_type_name;
pub use views::ViewDefinition;
pub use warehouse::{TableSpec, Warehouse};
pub use writer_props::{SUBJECT_BLOOM_FPP, SUBJECT_COLUMNS_PROPERTY, subject_columns, writer_properties};

pub use deltalake;
