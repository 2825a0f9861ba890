//! CSV with a header line. Decoded as text so that a bad value is reported by
//! row and column when it is cast to the table's type, not as a parse failure
//! somewhere in the file.

use std::io::Cursor;
use std::sync::Arc;

use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format as CsvFormat;
use arrow::datatypes::{DataType, Field, Schema};

use super::{Decoded, malformed};
use crate::error::Result;

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    let format = CsvFormat::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(Cursor::new(bytes), None)
        .map_err(|e| malformed(source_name, "CSV", e))?;
    if inferred.fields().is_empty() {
        return Err(malformed(source_name, "CSV", "no header line"));
    }
    let text_schema = Arc::new(Schema::new(
        inferred
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = ReaderBuilder::new(text_schema.clone())
        .with_format(format)
        .with_batch_size(64 * 1024)
        .build(Cursor::new(bytes))
        .map_err(|e| malformed(source_name, "CSV", e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(source_name, "CSV", e))?;
    Ok(Decoded {
        source_name: source_name.to_string(),
        schema: text_schema,
        batches,
        inferred: Arc::new(inferred),
        header_line: true,
    })
}
