//! Making decoded rows fit a table: column matching, safe casts, NOT NULL.

use std::sync::Arc;

use arrow::array::Scalar;
use arrow::array::{Array, ArrayRef, StringArray, new_null_array};
use arrow::compute::kernels::cast::{CastOptions, cast, cast_with_options};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::nullif;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

use crate::decode::Decoded;
use crate::error::{IngestError, Result};

/// The schema a new table gets from its first inputs: their inferred types,
/// merged, mapped to Delta types.
pub fn infer_table_schema(inputs: &[Decoded]) -> Result<Arc<Schema>> {
    let mut merged: Option<Schema> = None;
    for input in inputs {
        let next = input.inferred.as_ref().clone();
        merged = Some(match merged {
            None => next,
            Some(current) => Schema::try_merge([current, next]).map_err(|e| IngestError::SchemaConflict {
                source_name: input.source_name.clone(),
                reason: e.to_string(),
            })?,
        });
    }
    let merged = merged.unwrap_or_else(Schema::empty);
    if merged.fields().iter().any(|f| f.name().is_empty()) {
        let source = inputs.first().map(|i| i.source_name.as_str()).unwrap_or_default();
        return Err(crate::evolve::nameless_field(source));
    }
    // Inferred columns are nullable: a later file may lack a value.
    let nullable = Schema::new(
        merged
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    );
    silt_table::types::delta_compatible_schema(&nullable).map_err(|reason| IngestError::SchemaConflict {
        source_name: inputs.first().map(|i| i.source_name.clone()).unwrap_or_default(),
        reason,
    })
}

/// Casts every batch of `input` to `target` (the table's schema): columns are
/// matched by name, missing nullable columns become null, and the first row
/// that cannot be cast or breaks NOT NULL fails the whole input.
pub fn conform_batches(input: &Decoded, target: &Arc<Schema>, table: &str) -> Result<Vec<RecordBatch>> {
    conform_from_row(input, target, table, 0)
}

/// [`conform_batches`] for an input whose first row is row `first_row`
/// (0-based) of its source, so errors name the source's row.
pub(crate) fn conform_from_row(
    input: &Decoded,
    target: &Arc<Schema>,
    table: &str,
    first_row: u64,
) -> Result<Vec<RecordBatch>> {
    if let Some(error) = unknown_columns(&input.source_name, input.schema.fields(), target, table) {
        return Err(error);
    }
    let mut out = Vec::with_capacity(input.batches.len());
    let mut row_offset = first_row;
    for batch in &input.batches {
        let mut columns = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let column = match batch.column_by_name(field.name()) {
                Some(source) => cast_column(source, field.data_type())
                    .map_err(|(row, reason)| row_error(input, row_offset + row, field.name(), reason))?,
                None if field.is_nullable() => new_null_array(field.data_type(), batch.num_rows()),
                None => {
                    return Err(IngestError::MissingColumn {
                        source_name: input.source_name.clone(),
                        column: field.name().clone(),
                        table: table.to_string(),
                    });
                }
            };
            if !field.is_nullable() && column.null_count() > 0 {
                let row = (0..column.len()).find(|i| column.is_null(*i)).unwrap_or(0) as u64;
                return Err(row_error(
                    input,
                    row_offset + row,
                    field.name(),
                    "null in a NOT NULL column".into(),
                ));
            }
            columns.push(column);
        }
        let conformed =
            RecordBatch::try_new(target.clone(), columns).map_err(|e| IngestError::Malformed {
                source_name: input.source_name.clone(),
                format: "rows",
                reason: e.to_string(),
            })?;
        out.push(conformed);
        row_offset += batch.num_rows() as u64;
    }
    Ok(out)
}

/// Most table columns an [`IngestError::UnknownColumns`] message lists.
const LISTED_COLUMNS: usize = 32;

/// The error for `fields` that `target` has no column for, if any. The
/// fields' names are not in it (see [`IngestError::UnknownColumns`]).
pub(crate) fn unknown_columns(
    source_name: &str,
    fields: &arrow::datatypes::Fields,
    target: &Schema,
    table: &str,
) -> Option<IngestError> {
    let count = fields
        .iter()
        .filter(|f| target.field_with_name(f.name()).is_err())
        .count();
    if count == 0 {
        return None;
    }
    let names: Vec<&str> = target.fields().iter().map(|f| f.name().as_str()).collect();
    let mut columns = names
        .iter()
        .take(LISTED_COLUMNS)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_COLUMNS {
        columns.push_str(&format!(", and {} more", names.len() - LISTED_COLUMNS));
    }
    if columns.is_empty() {
        columns = "none".to_string();
    }
    Some(IngestError::UnknownColumns {
        source_name: source_name.to_string(),
        count,
        table: table.to_string(),
        columns,
    })
}

fn row_error(input: &Decoded, row_index: u64, column: &str, reason: String) -> IngestError {
    let row = row_index + 1;
    let line = if input.header_line {
        format!(" (line {})", row + 1)
    } else {
        String::new()
    };
    IngestError::InvalidRow {
        source_name: input.source_name.clone(),
        row,
        line,
        column: column.to_string(),
        reason,
    }
}

/// Casts one column; on failure returns the 0-based index of the first row
/// that could not be cast and a reason that does not contain the value.
fn cast_column(source: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, (u64, String)> {
    if source.data_type() == to {
        return Ok(source.clone());
    }
    let source = blank_text_as_null(source, to);
    if let DataType::Timestamp(_, _) = to
        && let Some(epoch) = epoch_to_timestamp(&source, to)
    {
        return epoch;
    }
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    match cast_with_options(&source, to, &strict) {
        Ok(cast) => Ok(cast),
        Err(_) => {
            let lenient = CastOptions {
                safe: true,
                ..Default::default()
            };
            let reason = format!("value cannot be converted from {} to {to}", source.data_type());
            let row = cast_with_options(&source, to, &lenient)
                .ok()
                .and_then(|cast| (0..source.len()).find(|i| !source.is_null(*i) && cast.is_null(*i)))
                .unwrap_or(0);
            Err((row as u64, reason))
        }
    }
}

/// Numbers sent for a TIMESTAMP column are Unix epoch times. The unit is
/// read from the magnitude, per value, the way log shippers emit them:
/// below 10^11 seconds (fractions allowed), below 10^14 milliseconds, below
/// 10^17 microseconds, else nanoseconds. Text that is all digits counts as a
/// number (CSV). Returns `None` when `source` is not numeric, so the normal
/// cast (RFC 3339 text) applies.
fn epoch_to_timestamp(
    source: &ArrayRef,
    to: &DataType,
) -> Option<std::result::Result<ArrayRef, (u64, String)>> {
    use arrow::array::{Float64Array, TimestampMicrosecondArray};
    let numeric = match source.data_type() {
        d if d.is_integer() || d.is_floating() => cast(source, &DataType::Float64).ok()?,
        DataType::Utf8 => {
            let text = source.as_any().downcast_ref::<StringArray>()?;
            let all_numbers = text.iter().flatten().all(|v| {
                !v.is_empty()
                    && v.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'.')
            });
            if !all_numbers || text.null_count() == text.len() {
                return None;
            }
            cast(source, &DataType::Float64).ok()?
        }
        _ => return None,
    };
    let values = numeric.as_any().downcast_ref::<Float64Array>()?;
    let mut micros = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        let Some(value) = value else {
            micros.push(None);
            continue;
        };
        let magnitude = value.abs();
        let us = if magnitude < 1e11 {
            value * 1e6
        } else if magnitude < 1e14 {
            value * 1e3
        } else if magnitude < 1e17 {
            value
        } else {
            value / 1e3
        };
        if !us.is_finite() || us.abs() > 9.2e18 {
            return Some(Err((row as u64, "epoch time out of range".to_string())));
        }
        micros.push(Some(us.round() as i64));
    }
    let array: ArrayRef = Arc::new(TimestampMicrosecondArray::from(micros));
    let target = match to {
        DataType::Timestamp(unit, tz) => DataType::Timestamp(*unit, tz.clone()),
        _ => return None,
    };
    let with_tz = match &target {
        DataType::Timestamp(_, Some(tz)) => cast(
            &array,
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(tz.clone())),
        ),
        _ => Ok(array),
    };
    Some(
        with_tz
            .and_then(|a| cast(&a, &target))
            .map_err(|e| (0, format!("epoch time cannot be stored: {e}"))),
    )
}

/// An empty CSV field means "no value" for every type but text.
fn blank_text_as_null(source: &ArrayRef, to: &DataType) -> ArrayRef {
    if source.data_type() != &DataType::Utf8
        || matches!(to, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    {
        return source.clone();
    }
    let blank = Scalar::new(StringArray::from(vec![""]));
    match eq(source, &blank).and_then(|mask| nullif(source, &mask)) {
        Ok(array) => array,
        Err(_) => source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, decode::decode_bytes};
    use arrow::datatypes::Field;

    fn target() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]))
    }

    #[test]
    fn csv_casts_to_table_types() {
        let csv = b"id,name,amount\n1,a,1.5\n2,,\n".to_vec();
        let decoded = decode_bytes(Format::Csv, csv, "a.csv").expect("decodes");
        let batches = conform_batches(&decoded, &target(), "t").expect("conforms");
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema(), target());
        assert!(batches[0].column(2).is_null(1));
    }

    #[test]
    fn csv_bad_value_names_row_line_and_column_but_not_value() {
        let csv = b"id,name,amount\n1,a,1.5\nsecret@example.com,b,2\n".to_vec();
        let decoded = decode_bytes(Format::Csv, csv, "a.csv").expect("decodes");
        let err = conform_batches(&decoded, &target(), "t")
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("a.csv: row 2 (line 3), column 'id'"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn null_in_not_null_column_is_rejected() {
        let json = b"{\"id\": 1}\n{\"name\": \"x\"}\n".to_vec();
        let decoded = decode_bytes(Format::Ndjson, json, "b.ndjson").expect("decodes");
        let err = conform_batches(&decoded, &target(), "t")
            .expect_err("must fail")
            .to_string();
        assert!(
            err.contains("row 2, column 'id': null in a NOT NULL column"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_counted_but_never_quoted() {
        let json = b"{\"id\": 1, \"alice@example.com\": true, \"extra\": 2}\n".to_vec();
        let decoded = decode_bytes(Format::Ndjson, json, "b.ndjson").expect("decodes");
        let err = conform_batches(&decoded, &target(), "t").expect_err("must fail");
        assert_eq!(err.kind(), silt_table::ErrorKind::InvalidRows);
        let err = err.to_string();
        assert!(
            err.contains(
                "2 fields of the input are not a column of table 't' (its columns: id, name, amount)"
            ),
            "{err}"
        );
        assert!(!err.contains("alice") && !err.contains("extra"), "{err}");
    }

    #[test]
    fn inferred_ndjson_columns_keep_file_order() {
        let json = b"{\"id\": 1, \"url\": \"/a\", \"ms\": 1.5}\n{\"ok\": true, \"id\": 2}\n".to_vec();
        let decoded = decode_bytes(Format::Ndjson, json, "c.ndjson").expect("decodes");
        let schema = infer_table_schema(&[decoded]).expect("infers");
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "url", "ms", "ok"]);
    }

    #[test]
    fn json_timestamps_as_rfc3339_and_epoch_of_any_unit() {
        let target = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )]));
        let expected = 1_764_064_800_000_000i64; // 2025-11-25T10:00:00Z
        for body in [
            "{\"ts\": \"2025-11-25T10:00:00Z\"}\n",
            "{\"ts\": 1764064800}\n",
            "{\"ts\": 1764064800000}\n",
            "{\"ts\": 1764064800000000}\n",
            "{\"ts\": 1764064800.0}\n",
        ] {
            let decoded = decode_bytes(Format::Ndjson, body.as_bytes().to_vec(), "j").expect("decodes");
            let batches = conform_batches(&decoded, &target, "t").expect(body);
            let ts = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .expect("micros");
            assert_eq!(ts.value(0), expected, "{body}");
        }
    }

    #[test]
    fn json_dates_decimals_structs_lists_and_nulls() {
        let target = Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new(
                "geo",
                DataType::Struct(vec![Field::new("lat", DataType::Float64, true)].into()),
                true,
            ),
        ]));
        let body = b"{\"day\":\"2026-01-02\",\"price\":\"12.34\",\"tags\":[\"a\",\"b\"],\"geo\":{\"lat\":1.5}}\n{\"day\":null}\n";
        let decoded = decode_bytes(Format::Ndjson, body.to_vec(), "j").expect("decodes");
        let batches = conform_batches(&decoded, &target, "t").expect("conforms");
        assert_eq!(batches[0].num_rows(), 2);
        let price = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>()
            .expect("decimal");
        assert_eq!(price.value(0), 1234);
        assert!(batches[0].column(0).is_null(1));
        assert!(batches[0].column(3).is_null(1));
    }

    #[test]
    fn malformed_json_names_the_line() {
        let json = b"{\"id\": 1}\n{\"id\": \n".to_vec();
        let err = decode_bytes(Format::Ndjson, json, "b.ndjson")
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
