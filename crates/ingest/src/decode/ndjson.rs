//! Newline-delimited JSON objects.

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema;

use super::{Decoded, malformed};
use crate::error::{IngestError, Result};

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    let (schema, _) = infer_json_schema(BufReader::new(Cursor::new(bytes)), None)
        .map_err(|_| locate_syntax_error(bytes, source_name))?;
    let schema = Arc::new(in_file_order(schema, bytes));
    // A field seen with mixed types is inferred as text; coercing numbers
    // and booleans to text lets such a body decode, and the cast to the
    // table's type then names the row that does not fit (422 / dead letter).
    let reader = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(64 * 1024)
        .build(Cursor::new(bytes))
        .map_err(|e| malformed(source_name, "NDJSON", e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| locate_syntax_error(bytes, source_name))?;
    Ok(Decoded::typed(source_name, schema, batches))
}

/// arrow-json infers fields in sorted order; a new table should keep the
/// order the producer wrote them in (first appearance in the file).
fn in_file_order(inferred: Schema, bytes: &[u8]) -> Schema {
    let mut order: Vec<String> = Vec::with_capacity(inferred.fields().len());
    for line in bytes.split(|b| *b == b'\n').take(10_000) {
        let Ok(object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line) else {
            continue;
        };
        for key in object.keys() {
            if !order.contains(key) {
                order.push(key.clone());
            }
        }
        if order.len() == inferred.fields().len() {
            break;
        }
    }
    let mut fields: Vec<_> = inferred.fields().iter().cloned().collect();
    fields.sort_by_key(|f| order.iter().position(|k| k == f.name()).unwrap_or(usize::MAX));
    Schema::new_with_metadata(fields, inferred.metadata().clone())
}

/// arrow-json does not say which line failed; find it (error path only).
fn locate_syntax_error(bytes: &[u8], source_name: &str) -> IngestError {
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
    // Every line is a JSON object: the decoder refused a value's type.
    // arrow's message can quote the value, and the field's name is a key of
    // the body (which may be data too), so neither is repeated.
    malformed(
        source_name,
        "NDJSON",
        "a field holds JSON values of kinds that cannot share one column (e.g. an object in one row \
         and a number in another)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_clash_names_the_field_but_not_the_value() {
        let body = b"{\"a\": {\"x\": 1}}\n{\"a\": 123456789}\n";
        let err = decode(body, "req")
            .expect_err("object and number cannot share a column")
            .to_string();
        assert!(!err.contains("123456789"), "{err}");
        assert!(!err.contains("'a'"), "{err}");
        assert!(err.contains("NDJSON"), "{err}");
    }

    #[test]
    fn numbers_and_text_in_one_field_decode_as_text() {
        let body = b"{\"id\": 1}\n{\"id\": \"x\"}\n{\"id\": 2.5}\n";
        let decoded = decode(body, "req").expect("decodes");
        assert_eq!(decoded.rows(), 3);
    }
}
