//! Making decoded rows fit a table: column matching, safe casts, NOT NULL.

use std::sync::Arc;

use arrow::array::RecordBatchOptions;
use arrow::array::Scalar;
use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::kernels::cast::{CastOptions, cast, cast_with_options};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::nullif;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use silt_table::{CastError, cast_to_schema};

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
        // JSON/CSV conventions for top-level columns first (blank CSV text
        // is null, epoch numbers are times); then the one strict cast of
        // silt-table does the rest at every depth.
        let mut fields = Vec::with_capacity(target.fields().len());
        let mut columns = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let Some(source) = batch.column_by_name(field.name()) else {
                continue;
            };
            let column = prepare_column(source, field.data_type())
                .map_err(|(row, reason)| row_error(input, row_offset + row, field.name(), reason))?;
            fields.push(Field::new(field.name(), column.data_type().clone(), true));
            columns.push(column);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let prepared = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .map_err(|e| IngestError::Malformed {
                source_name: input.source_name.clone(),
                format: "rows",
                reason: e.to_string(),
            })?;
        let conformed =
            cast_to_schema(&prepared, target).map_err(|error| cast_error(input, table, row_offset, error))?;
        out.push(conformed);
        row_offset += batch.num_rows() as u64;
    }
    Ok(out)
}

/// An [`IngestError`] for a [`CastError`] of the batch whose first row is
/// `row_offset` of the source.
fn cast_error(input: &Decoded, table: &str, row_offset: u64, error: CastError) -> IngestError {
    match &error {
        CastError::UnknownField { path } => IngestError::UnknownField {
            source_name: input.source_name.clone(),
            path: path.clone(),
            table: table.to_string(),
        },
        CastError::MissingField { path } => IngestError::MissingColumn {
            source_name: input.source_name.clone(),
            column: path.clone(),
            table: table.to_string(),
        },
        _ => row_error(
            input,
            row_offset + error.row().unwrap_or(0) as u64,
            error.path(),
            error.reason(),
        ),
    }
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

/// A top-level column with the conventions of text formats applied for its
/// table type: blank text is null (CSV), and numbers, or text that is all
/// digits, for a TIMESTAMP column are epoch times (see
/// [`epoch_to_timestamp`]). On failure returns the 0-based index of the first
/// row that does not fit and a reason without the value.
fn prepare_column(source: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, (u64, String)> {
    if source.data_type() == to {
        return Ok(source.clone());
    }
    let source = blank_text_as_null(source, to);
    if let DataType::Timestamp(_, _) = to
        && let Some(epoch) = epoch_to_timestamp(&source, to)
    {
        return epoch;
    }
    Ok(source)
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
    // Text (a JSON field mixing RFC 3339 strings and numbers is decoded as
    // text) is split per value: numbers are epoch times, the rest RFC 3339.
    let mut text_times: Option<ArrayRef> = None;
    let numeric = match source.data_type() {
        d if d.is_integer() || d.is_floating() => cast(source, &DataType::Float64).ok()?,
        DataType::Utf8 => {
            let text = source.as_any().downcast_ref::<StringArray>()?;
            let numbers: Float64Array = text.iter().map(|v| v.and_then(epoch_number)).collect();
            if numbers.null_count() == numbers.len() {
                return None;
            }
            if numbers.null_count() > text.null_count() {
                let rest: StringArray = text
                    .iter()
                    .map(|v| v.filter(|v| epoch_number(v).is_none()))
                    .collect();
                let rest: ArrayRef = Arc::new(rest);
                let utc = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()));
                let strict = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                match cast_with_options(&rest, &utc, &strict) {
                    Ok(times) => text_times = Some(times),
                    Err(_) => {
                        let lenient = CastOptions::default();
                        let row = cast_with_options(&rest, &utc, &lenient)
                            .ok()
                            .and_then(|cast| (0..rest.len()).find(|i| rest.is_valid(*i) && cast.is_null(*i)))
                            .unwrap_or(0);
                        return Some(Err((
                            row as u64,
                            format!(
                                "value cannot be converted from {} to {}",
                                silt_table::sql_type_name(source.data_type()),
                                silt_table::sql_type_name(to)
                            ),
                        )));
                    }
                }
            }
            Arc::new(numbers)
        }
        _ => return None,
    };
    let values = numeric.as_any().downcast_ref::<Float64Array>()?;
    let text_times = text_times
        .as_ref()
        .and_then(|t| t.as_any().downcast_ref::<TimestampMicrosecondArray>().cloned());
    let mut micros = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        let Some(value) = value else {
            micros.push(
                text_times
                    .as_ref()
                    .and_then(|t| t.is_valid(row).then(|| t.value(row))),
            );
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

/// Text that is an epoch number: digits, at most one '.', an optional
/// leading '-'.
fn epoch_number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1;
    if !plain {
        return None;
    }
    text.parse::<f64>().ok()
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
    fn json_timestamps_mixing_rfc3339_text_and_epoch_numbers() {
        let target = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]));
        let body = b"{\"id\":1,\"ts\":\"2026-11-25T10:00:00Z\"}\n{\"id\":2,\"ts\":1764064800}\n{\"id\":3}\n";
        let decoded = decode_bytes(Format::Ndjson, body.to_vec(), "j").expect("decodes");
        let batches = conform_batches(&decoded, &target, "t").expect("conforms");
        let ts = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .expect("micros");
        assert_eq!(ts.value(0), 1_795_600_800_000_000); // 2026-11-25T10:00:00Z
        assert_eq!(ts.value(1), 1_764_064_800_000_000); // epoch seconds: 2025-11-25T10:00:00Z
        assert!(ts.is_null(2));
        // Text that is neither still names its row.
        let body = b"{\"ts\":\"2026-11-25T10:00:00Z\"}\n{\"ts\":1764064800}\n{\"ts\":\"soon\"}\n";
        let target = Arc::new(Schema::new(vec![target.field(1).clone()]));
        let decoded = decode_bytes(Format::Ndjson, body.to_vec(), "j").expect("decodes");
        let err = conform_batches(&decoded, &target, "t")
            .expect_err("not a time")
            .to_string();
        assert!(err.contains("row 3, column 'ts'"), "{err}");
        assert!(!err.contains("soon"), "{err}");
    }

    fn customer_table() -> Arc<Schema> {
        let address = Field::new(
            "address",
            DataType::Struct(vec![Field::new("city", DataType::Utf8, true)].into()),
            true,
        );
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("customer", DataType::Struct(vec![address].into()), true),
        ]))
    }

    #[test]
    fn nested_unknown_fields_are_refused_naming_the_path_not_dropped() {
        let body = b"{\"id\":1,\"customer\":{\"address\":{\"city\":\"Oslo\",\"country\":\"NO\"}}}\n";
        let decoded = decode_bytes(Format::Ndjson, body.to_vec(), "j").expect("decodes");
        let err = conform_batches(&decoded, &customer_table(), "t").expect_err("country is not in the table");
        assert_eq!(err.kind(), silt_table::ErrorKind::InvalidRows);
        let err = err.to_string();
        assert!(err.contains("customer.address.country"), "{err}");
        assert!(!err.contains("NO\"") && !err.contains("Oslo"), "{err}");
    }

    #[test]
    fn json_objects_into_a_map_column() {
        let entries = Arc::new(Field::new(
            "key_value",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Int64, true),
                ]
                .into(),
            ),
            false,
        ));
        let target = Arc::new(Schema::new(vec![Field::new(
            "attrs",
            DataType::Map(entries, false),
            true,
        )]));
        let body = b"{\"attrs\":{\"a\":1,\"b\":2}}\n{\"attrs\":{\"c\":3}}\n{\"attrs\":null}\n";
        let decoded = decode_bytes(Format::Ndjson, body.to_vec(), "j").expect("decodes");
        let batches = conform_batches(&decoded, &target, "t").expect("conforms");
        let map = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::MapArray>()
            .expect("map");
        assert_eq!((map.value_length(0), map.value_length(1)), (2, 1));
        assert!(map.is_null(2));
    }

    #[test]
    fn a_value_too_large_for_bigint_is_an_error_not_null() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::UInt64Array::from(vec![u64::MAX]))],
        )
        .expect("batch");
        let decoded = Decoded::typed("p", schema, vec![batch]);
        let target = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let err = conform_batches(&decoded, &target, "t")
            .expect_err("does not fit")
            .to_string();
        assert!(err.contains("row 1, column 'n'"), "{err}");
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
