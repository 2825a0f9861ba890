//! How the erasure reads a table's Parquet files, for the delete's probe and
//! for verification alike: text columns as dictionaries (a dictionary-encoded
//! column chunk then yields each distinct value once instead of one string
//! per row, so it is matched or searched once), and a few files at a time.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

/// Files read (or objects verified) at once: one per core, 2 to 8.
pub(crate) fn in_flight() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, MAX_IN_FLIGHT)
}

/// Most files held or read at once.
pub(crate) const MAX_IN_FLIGHT: usize = 8;

/// `plain` with every top-level text column for which `wanted` holds read
/// as `Dictionary(Int32, Utf8)`; `plain` itself when the file refuses the
/// hint.
pub(crate) fn text_as_dictionaries(
    plain: ArrowReaderMetadata,
    wanted: impl Fn(&Field) -> bool,
) -> ArrowReaderMetadata {
    let fields: Vec<Field> = plain
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let text = matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            match text && wanted(f) {
                true => f.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(DataType::Utf8),
                )),
                false => f.as_ref().clone(),
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    ArrowReaderMetadata::try_new(plain.metadata().clone(), options).unwrap_or(plain)
}
