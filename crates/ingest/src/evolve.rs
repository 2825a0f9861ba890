//! Schema evolution on ingest: which schema a request's rows are conformed to.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};

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
    if input
        .inferred
        .fields()
        .iter()
        .any(|f| f.name().is_empty() && table_schema.field_with_name("").is_err())
    {
        return Err(nameless_field(&input.source_name));
    }
    let (fields, changed) =
        merge_fields(table_schema.fields(), input.inferred.fields(), "").map_err(|reason| {
            IngestError::SchemaConflict {
                source_name: input.source_name.clone(),
                reason,
            }
        })?;
    if !changed {
        return Ok(table_schema.clone());
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        table_schema.metadata().clone(),
    )))
}

/// `table`'s fields plus the fields of `input` it lacks, appended as
/// nullable fields of their Delta-compatible type — also inside STRUCT
/// columns, at any depth (`customer.address.country`), which deltalake's
/// schema merge adds to the table in the commit. Whether anything was added.
/// Fields inside LIST or MAP columns are not merged: the strict cast then
/// refuses them by path.
pub(crate) fn merge_fields(
    table: &Fields,
    input: &Fields,
    prefix: &str,
) -> std::result::Result<(Vec<FieldRef>, bool), String> {
    let mut fields: Vec<FieldRef> = table.iter().cloned().collect();
    let mut changed = false;
    for field in input {
        let path = if prefix.is_empty() {
            field.name().clone()
        } else {
            format!("{prefix}.{}", field.name())
        };
        match fields.iter().position(|f| f.name() == field.name()) {
            Some(index) => {
                if let (DataType::Struct(have), DataType::Struct(more)) =
                    (fields[index].data_type(), field.data_type())
                {
                    let (children, added) = merge_fields(have, more, &path)?;
                    if added {
                        let merged = fields[index]
                            .as_ref()
                            .clone()
                            .with_data_type(DataType::Struct(children.into()));
                        fields[index] = Arc::new(merged);
                        changed = true;
                    }
                }
            }
            None => {
                if field.name().is_empty() {
                    return Err("a field with an empty name cannot become a column".to_string());
                }
                let data_type = silt_table::types::delta_compatible_type(field.data_type())
                    .map_err(|reason| format!("new column '{path}': {reason}"))?;
                fields.push(Arc::new(Field::new(field.name(), data_type, true)));
                changed = true;
            }
        }
    }
    Ok((fields, changed))
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
