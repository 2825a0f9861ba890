//! Newline-delimited JSON objects.

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema;

use super::{Decoded, malformed};
use crate::error::{IngestError, Result};

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    let (schema, _) = infer_json_schema(BufReader::new(Cursor::new(bytes)), None)
        .map_err(|e| locate_syntax_error(bytes, source_name, e))?;
    let schema = Arc::new(schema);
    let reader = ReaderBuilder::new(schema.clone())
        .with_batch_size(64 * 1024)
        .build(Cursor::new(bytes))
        .map_err(|e| malformed(source_name, "NDJSON", e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| locate_syntax_error(bytes, source_name, e))?;
    Ok(Decoded {
        source_name: source_name.to_string(),
        inferred: schema.clone(),
        schema,
        batches,
        header_line: false,
    })
}

/// arrow-json does not say which line failed; find it (error path only).
fn locate_syntax_error(bytes: &[u8], source_name: &str, error: impl ToString) -> IngestError {
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => {
                return malformed(
                    source_name,
                    "NDJSON",
                    format!("line {}: not a JSON object", index + 1),
                );
            }
            Err(e) => {
                // serde's message names only the position, not the content.
                return malformed(source_name, "NDJSON", format!("line {}: {e}", index + 1));
            }
        }
    }
    malformed(source_name, "NDJSON", error.to_string())
}
