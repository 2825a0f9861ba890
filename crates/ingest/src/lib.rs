//! silt-ingest turns files and request bodies into record batches that fit a
//! table, and reports the first row that cannot be made to fit.
//!
//! ```text
//!  bytes ──decode::{csv,ndjson,parquet}──▶ batches (file's own types)
//!        ──conform::conform_batch(table schema)──▶ batches (table's types)
//!        ──silt_table::Table::write──▶ one Delta commit
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

pub mod conform;
pub mod decode;
mod error;
mod format;

pub use conform::{conform_batches, infer_table_schema};
pub use decode::{Decoded, decode_bytes, decode_reader};
pub use error::{IngestError, Result};
pub use format::Format;
