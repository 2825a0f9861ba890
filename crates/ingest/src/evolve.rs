//! Schema evolution on ingest: which schema a request's rows are conformed to.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};

use crate::decode::Decoded;
use crate::error::{IngestError, Result};

/// The schema `input` is conformed to: the table's columns, plus — when
/// `evolve` is on — the input's columns the table lacks, appended as nullable
/// columns of their inferred (Delta-compatible) type. Without `evolve` an
/// unknown column is an error naming it.
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
    let mut added = Vec::new();
    for field in input.inferred.fields() {
        if table_schema.field_with_name(field.name()).is_ok() {
            continue;
        }
        if !evolve {
            return Err(IngestError::UnknownColumn {
                source_name: input.source_name.clone(),
                column: field.name().clone(),
                table: table.to_string(),
            });
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
        assert!(err.to_string().contains("column 'note' does not exist"), "{err}");
        let evolved = target_schema(&table(), &input, true, "t").expect("evolves");
        assert_eq!(evolved.fields().len(), 2);
        let note = evolved.field_with_name("note").expect("added");
        assert!(note.is_nullable());
        assert_eq!(note.data_type(), &DataType::Utf8);
    }
}
