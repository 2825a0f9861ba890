//! Schema evolution on ingest: which schema a request's rows are conformed to.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};

use crate::conform::unknown_columns;
use crate::decode::Decoded;
use crate::error::{IngestError, Result};

/// The schema `input` is conformed to: the table's columns, plus — when
/// `evolve` is on — the input's columns the table lacks, appended as nullable
/// columns of their inferred (Delta-compatible) type. Without `evolve` input
/// fields the table lacks are an error that counts them without naming them
/// (a key that is not a column may be data).
///
/// Existing columns keep their table type: narrower input (int32 into a
/// BIGINT column, float32 into DOUBLE) is widened by the cast in
/// [`crate::conform_batches`]; anything that does not cast safely is rejected.
pub fn target_schema(
    table_schema: &Arc<Schema>,
    input: &Decoded,
    evolve: bool,
    table: &str,
) -> Result<Arc<Schema>> {
    if !evolve {
        return match unknown_columns(&input.source_name, input.inferred.fields(), table_schema, table) {
            Some(error) => Err(error),
            None => Ok(table_schema.clone()),
        };
    }
    let mut added = Vec::new();
    for field in input.inferred.fields() {
        if table_schema.field_with_name(field.name()).is_ok() {
            continue;
        }
        if field.name().is_empty() {
            return Err(nameless_field(&input.source_name));
        }
        let data_type = silt_table::types::delta_compatible_type(field.data_type()).map_err(|reason| {
            IngestError::SchemaConflict {
                source_name: input.source_name.clone(),
                reason: format!("new column '{}': {reason}", field.name()),
            }
        })?;
        added.push(Arc::new(Field::new(field.name(), data_type, true)));
    }
    if added.is_empty() {
        return Ok(table_schema.clone());
    }
    let fields: Vec<_> = table_schema.fields().iter().cloned().chain(added).collect();
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        table_schema.metadata().clone(),
    )))
}

/// A field whose name is empty cannot become a column (no SQL can name it).
pub(crate) fn nameless_field(source_name: &str) -> IngestError {
    IngestError::NamelessField {
        source_name: source_name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, decode_bytes};
    use arrow::datatypes::DataType;

    fn table() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]))
    }

    #[test]
    fn new_column_is_added_only_with_evolve() {
        let input =
            decode_bytes(Format::Ndjson, b"{\"id\":1,\"note\":\"x\"}\n".to_vec(), "req").expect("decodes");
        let err = target_schema(&table(), &input, false, "t").expect_err("unknown column");
        assert!(
            err.to_string().contains("1 field of the input is not a column"),
            "{err}"
        );
        assert!(!err.to_string().contains("note"), "{err}");
        let evolved = target_schema(&table(), &input, true, "t").expect("evolves");
        assert_eq!(evolved.fields().len(), 2);
        let note = evolved.field_with_name("note").expect("added");
        assert!(note.is_nullable());
        assert_eq!(note.data_type(), &DataType::Utf8);
        let nameless =
            decode_bytes(Format::Ndjson, b"{\"id\":1,\"\":\"x\"}\n".to_vec(), "req").expect("decodes");
        let err = target_schema(&table(), &nameless, true, "t").expect_err("no nameless column");
        assert!(err.to_string().contains("empty name"), "{err}");
    }
}
