//! silt-ingest turns files and request bodies into record batches that fit a
//! table, reports the first row that cannot be made to fit, and runs the
//! ingestion service: one group committer per table with exactly-once by
//! (producer, sequence), schema evolution, dead letters and bounded queues.
//!
//! ```text
//!  bytes ──decode::{csv,ndjson,parquet,ipc}──▶ batches (file's own types)
//!        ──evolve::target_schema + conform──▶ batches (table's types) | dead letters
//!        ──Ingestor: per-table queue ──▶ committer: group ──▶ one Delta commit
//!                                                        ──▶ ack every request
//! ```
//!
//! Decoding uses the file's own (inferred) types, then every column is cast
//! to the table's type with overflow and parse errors turned into an error
//! naming the source, row and column — never the offending value, which may be
//! personal data.
//!
//! ```no_run
//! use silt_ingest::{Format, decode_reader};
//! let file = std::fs::File::open("events.csv").unwrap();
//! let decoded = decode_reader(Format::Csv, file, "events.csv").unwrap();
//! println!("{} rows in {} columns", decoded.rows(), decoded.schema.fields().len());
//! ```

mod committer;
pub mod conform;
pub mod dead_letter;
pub mod decode;
mod error;
pub mod evolve;
mod format;
pub mod maintenance;
mod mode;
pub mod policy;
mod records;
mod service;

pub use committer::{Ack, CommitStats};
pub use conform::{conform_batches, infer_table_schema};
pub use decode::{Decoded, decode_bytes, decode_reader};
pub use error::{IngestError, Result};
pub use format::Format;
pub use maintenance::{MaintenancePolicy, MaintenanceStats};
pub use mode::{DeleteMarker, IngestMode, Upsert};
pub use policy::Policy;
pub use records::{Record, RecordFormat, RecordsRequest};
pub use service::{IngestConfig, IngestObserver, IngestRequest, Ingestor, NoObserver};
