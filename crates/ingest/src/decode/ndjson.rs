//! Newline-delimited JSON objects, or one JSON array of objects (what most
//! HTTP clients send as `application/json`).

use std::io::{BufReader, Cursor};
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema;

use super::{Decoded, malformed};
use crate::error::{IngestError, Result};

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let lines = array_to_lines(bytes).map_err(|reason| malformed(source_name, "JSON", reason))?;
        return decode_lines(&lines, source_name);
    }
    decode_lines(bytes, source_name)
}

/// A JSON array of objects rewritten as one object per line, each object's
/// bytes copied unchanged (numbers keep their exact text). The scan is a
/// loop with a depth counter, not a recursive parse, so a body of 100,000
/// `[` is refused without touching the stack; the objects themselves are
/// parsed by the NDJSON decoder, which validates them.
fn array_to_lines(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = bytes
        .iter()
        .position(|b| *b == b'[')
        .map_or(bytes.len(), |p| p + 1);
    let skip = |at: &mut usize| {
        while bytes.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    let mut element = 0usize;
    skip(&mut at);
    if bytes.get(at) == Some(&b']') {
        at += 1;
    } else {
        loop {
            element += 1;
            skip(&mut at);
            if bytes.get(at) != Some(&b'{') {
                return Err(format!("array element {element}: not a JSON object"));
            }
            let start = at;
            let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
            loop {
                let Some(&b) = bytes.get(at) else {
                    return Err(format!("array element {element}: unexpected end of input"));
                };
                at += 1;
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            // A raw line break can only sit between tokens (JSON strings
            // escape theirs); as a line break it would split the object.
            out.extend(
                bytes[start..at]
                    .iter()
                    .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { *b }),
            );
            out.push(b'\n');
            skip(&mut at);
            match bytes.get(at) {
                Some(b',') => at += 1,
                Some(b']') => {
                    at += 1;
                    break;
                }
                _ => return Err(format!("array element {element}: expected ',' or ']' after it")),
            }
        }
    }
    skip(&mut at);
    if at < bytes.len() {
        return Err("unexpected content after the array".to_string());
    }
    Ok(out)
}

fn decode_lines(bytes: &[u8], source_name: &str) -> Result<Decoded> {
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
    fn a_json_array_of_objects_decodes_like_ndjson() {
        let body = b" [ {\"id\": 1, \"s\": \"a]}\\\"\"},\n {\"id\": 2, \"tags\": [1, 2]} ] \n";
        let decoded = decode(body, "req").expect("decodes");
        assert_eq!(decoded.rows(), 2);
        assert_eq!(decode(b"[]", "req").expect("empty array").rows(), 0);
        for bad in [
            &b"[1, 2]"[..],
            b"[{\"id\": 1}",
            b"[{\"id\": 1}] x",
            b"[{\"id\": 1} {\"id\": 2}]",
        ] {
            assert!(decode(bad, "req").is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = vec![b'['; 100_000];
        let err = decode(&deep, "req").expect_err("refused").to_string();
        assert!(err.contains("not a JSON object"), "{err}");
        let mut deep = b"[{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(decode(&deep, "req").is_err());
    }

    #[test]
    fn numbers_and_text_in_one_field_decode_as_text() {
        let body = b"{\"id\": 1}\n{\"id\": \"x\"}\n{\"id\": 2.5}\n";
        let decoded = decode(body, "req").expect("decodes");
        assert_eq!(decoded.rows(), 3);
    }
}
