//! The one strict cast of a record batch to a table's schema.
//!
//! Every write that brings rows from elsewhere (ingest, and after the merge
//! CTAS, MERGE sources and rewrites) must make them fit the table the same
//! way: fields matched by name at every depth, nothing dropped, nothing
//! turned into NULL behind the caller's back. Arrow's default cast is
//! lenient (`safe: true`: a value that does not fit becomes NULL), which
//! silently loses data; this one refuses instead and says where (column path
//! and row), never what (the value may be personal data).
//!
//! ```text
//!  struct ─┬─ children by name (unknown child: error naming its path)
//!          └─ missing child: null if nullable, else error
//!  list / map ─ elements and keys/values cast recursively
//!  struct → map ─ a JSON object read as a struct becomes map entries
//!  leaf ─ arrow cast with safe = false; floats into integers must be whole
//! ```

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, OffsetSizeTrait, RecordBatch, StringArray,
    StructArray, new_null_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::kernels::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, SchemaRef};

use crate::types::sql_type_name;

/// Why a batch does not fit a schema. Names the column path (`a.b.c`, list
/// elements as `a[]`, map keys/values as `a{key}` / `a{value}`) and, where
/// one value is at fault, its 0-based row in the batch — never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CastError {
    /// A field at any depth that the target schema does not have.
    #[error("field '{path}' is not in the table's schema")]
    UnknownField {
        /// Dotted path of the field.
        path: String,
    },
    /// A NOT NULL field the input does not have.
    #[error("missing field '{path}', which the table requires (NOT NULL)")]
    MissingField {
        /// Dotted path of the field.
        path: String,
    },
    /// A null where the target field is NOT NULL.
    #[error("column '{path}', row {}: null in a NOT NULL column", row + 1)]
    NullInNotNull {
        /// Dotted path of the field.
        path: String,
        /// 0-based row of the batch.
        row: usize,
    },
    /// A value that does not fit the target type (overflow, parse failure,
    /// a fraction into an integer).
    #[error("column '{path}', row {}: value cannot be converted from {from} to {to}", row + 1)]
    Value {
        /// Dotted path of the field.
        path: String,
        /// 0-based row of the batch.
        row: usize,
        /// The input's type.
        from: String,
        /// The table's type.
        to: String,
    },
    /// No conversion exists between the two types.
    #[error("column '{path}': type {from} cannot be converted to {to}")]
    Incompatible {
        /// Dotted path of the field.
        path: String,
        /// The input's type.
        from: String,
        /// The table's type.
        to: String,
    },
}

impl CastError {
    /// The path of the field at fault.
    pub fn path(&self) -> &str {
        match self {
            CastError::UnknownField { path }
            | CastError::MissingField { path }
            | CastError::NullInNotNull { path, .. }
            | CastError::Value { path, .. }
            | CastError::Incompatible { path, .. } => path,
        }
    }

    /// The 0-based row of the batch at fault, when one value is.
    pub fn row(&self) -> Option<usize> {
        match self {
            CastError::NullInNotNull { row, .. } | CastError::Value { row, .. } => Some(*row),
            _ => None,
        }
    }

    /// What is wrong, without the path and row (for messages that name
    /// those their own way).
    pub fn reason(&self) -> String {
        match self {
            CastError::UnknownField { .. } => "not in the table's schema".to_string(),
            CastError::MissingField { .. } => "missing, and the table requires it (NOT NULL)".to_string(),
            CastError::NullInNotNull { .. } => "null in a NOT NULL column".to_string(),
            CastError::Value { from, to, .. } => format!("value cannot be converted from {from} to {to}"),
            CastError::Incompatible { from, to, .. } => format!("type {from} cannot be converted to {to}"),
        }
    }

    fn at_row(self, map: impl Fn(usize) -> usize) -> Self {
        match self {
            CastError::NullInNotNull { path, row } => CastError::NullInNotNull { path, row: map(row) },
            CastError::Value { path, row, from, to } => CastError::Value {
                path,
                row: map(row),
                from,
                to,
            },
            other => other,
        }
    }
}

/// Casts `batch` to `target`: top-level columns and struct children are
/// matched by name (order does not matter), a missing nullable field becomes
/// null, and everything else — a field `target` lacks at any depth, a
/// missing NOT NULL field, a null in a NOT NULL field, a value that does not
/// fit — is an error. The result has exactly `target`'s schema.
pub fn cast_to_schema(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, CastError> {
    if batch.schema() == *target {
        check_not_null(batch.columns(), target.fields())?;
        return Ok(batch.clone());
    }
    let source = batch.schema();
    for field in source.fields() {
        if target.field_with_name(field.name()).is_err() {
            return Err(CastError::UnknownField {
                path: field.name().clone(),
            });
        }
    }
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => cast_field(column, field, field.name())?,
            None if field.is_nullable() => new_null_array(field.data_type(), batch.num_rows()),
            None => {
                return Err(CastError::MissingField {
                    path: field.name().clone(),
                });
            }
        };
        columns.push(column);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.clone(), columns, &options).map_err(|_| {
        CastError::Incompatible {
            path: String::new(),
            from: sql_type_name(&DataType::Struct(source.fields().clone())),
            to: sql_type_name(&DataType::Struct(target.fields().clone())),
        }
    })
}

/// One column (or nested field) cast to `field`, with its NOT NULL checked.
fn cast_field(array: &ArrayRef, field: &Field, path: &str) -> Result<ArrayRef, CastError> {
    let cast = cast_array(array, field.data_type(), path)?;
    if !field.is_nullable()
        && let Some(row) = first_null(&cast)
    {
        return Err(CastError::NullInNotNull {
            path: path.to_string(),
            row,
        });
    }
    Ok(cast)
}

fn first_null(array: &dyn Array) -> Option<usize> {
    let nulls = array.logical_nulls()?;
    (0..array.len()).find(|i| nulls.is_null(*i))
}

fn cast_array(array: &ArrayRef, to: &DataType, path: &str) -> Result<ArrayRef, CastError> {
    let incompatible = || CastError::Incompatible {
        path: path.to_string(),
        from: sql_type_name(array.data_type()),
        to: sql_type_name(to),
    };
    match (array.data_type(), to) {
        (DataType::Null, _) => Ok(new_null_array(to, array.len())),
        (DataType::Struct(_), DataType::Struct(fields)) => cast_struct(array.as_struct(), fields, path),
        (DataType::Struct(_), DataType::Map(entries, _)) => struct_to_map(array.as_struct(), entries, path),
        (DataType::List(_), DataType::List(item)) => cast_list(array.as_list::<i32>(), item, path),
        (DataType::LargeList(_), DataType::List(item)) => cast_list(array.as_list::<i64>(), item, path),
        // Other list layouts (Arrow IPC may carry them) become a plain list
        // of the same items first; arrow's cast of the layout loses nothing.
        (
            DataType::FixedSizeList(source, _) | DataType::ListView(source) | DataType::LargeListView(source),
            DataType::List(_),
        ) => {
            let plain = cast_with_options(
                array,
                &DataType::List(source.clone()),
                &CastOptions {
                    safe: false,
                    ..Default::default()
                },
            )
            .map_err(|_| incompatible())?;
            cast_array(&plain, to, path)
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            cast_map(array.as_map(), entries, *sorted, path)
        }
        (DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(_, _), _) => {
            Err(incompatible())
        }
        (_, DataType::Struct(_) | DataType::List(_) | DataType::Map(_, _)) => Err(incompatible()),
        (from, to) if from == to => Ok(array.clone()),
        _ => cast_leaf(array, to, path),
    }
}

fn cast_leaf(array: &ArrayRef, to: &DataType, path: &str) -> Result<ArrayRef, CastError> {
    if !can_cast_types(array.data_type(), to) {
        return Err(CastError::Incompatible {
            path: path.to_string(),
            from: sql_type_name(array.data_type()),
            to: sql_type_name(to),
        });
    }
    let value_error = |row: usize| CastError::Value {
        path: path.to_string(),
        row,
        from: sql_type_name(array.data_type()),
        to: sql_type_name(to),
    };
    // Arrow truncates 1.5 to 1 without complaint, even when strict.
    if array.data_type().is_floating()
        && to.is_integer()
        && let Ok(floats) = cast_with_options(array, &DataType::Float64, &CastOptions::default())
    {
        let floats = floats.as_primitive::<arrow::datatypes::Float64Type>();
        if let Some(row) = (0..floats.len()).find(|i| floats.is_valid(*i) && floats.value(*i).fract() != 0.0)
        {
            return Err(value_error(row));
        }
    }
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    match cast_with_options(array, to, &strict) {
        Ok(cast) => Ok(cast),
        Err(_) => {
            // Find the row: the lenient cast turns exactly the values that
            // do not fit into nulls (error path only).
            let lenient = CastOptions {
                safe: true,
                ..Default::default()
            };
            let row = cast_with_options(array, to, &lenient)
                .ok()
                .and_then(|cast| (0..array.len()).find(|i| array.is_valid(*i) && cast.is_null(*i)))
                .unwrap_or(0);
            Err(value_error(row))
        }
    }
}

fn cast_struct(array: &StructArray, fields: &Fields, path: &str) -> Result<ArrayRef, CastError> {
    let DataType::Struct(source_fields) = array.data_type() else {
        return Err(CastError::Incompatible {
            path: path.to_string(),
            from: sql_type_name(array.data_type()),
            to: sql_type_name(&DataType::Struct(fields.clone())),
        });
    };
    for child in source_fields {
        if fields.find(child.name()).is_none() {
            return Err(CastError::UnknownField {
                path: format!("{path}.{}", child.name()),
            });
        }
    }
    let parent_nulls = array.nulls();
    let mut children = Vec::with_capacity(fields.len());
    for field in fields {
        let child_path = format!("{path}.{}", field.name());
        let child = match array.column_by_name(field.name()) {
            Some(child) => cast_array(child, field.data_type(), &child_path)?,
            None => {
                if !field.is_nullable() && array.null_count() < array.len() {
                    return Err(CastError::MissingField { path: child_path });
                }
                new_null_array(field.data_type(), array.len())
            }
        };
        if !field.is_nullable()
            && let Some(nulls) = child.logical_nulls()
            && let Some(row) =
                (0..child.len()).find(|i| nulls.is_null(*i) && parent_nulls.is_none_or(|p| p.is_valid(*i)))
        {
            return Err(CastError::NullInNotNull {
                path: child_path,
                row,
            });
        }
        children.push(child);
    }
    let incompatible = || CastError::Incompatible {
        path: path.to_string(),
        from: sql_type_name(array.data_type()),
        to: sql_type_name(&DataType::Struct(fields.clone())),
    };
    if fields.is_empty() {
        return StructArray::try_new_with_length(
            fields.clone(),
            children,
            parent_nulls.cloned(),
            array.len(),
        )
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|_| incompatible());
    }
    StructArray::try_new(fields.clone(), children, parent_nulls.cloned())
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|_| incompatible())
}

/// The row of the list element at `index`: the list whose offsets hold it.
fn row_of<O: OffsetSizeTrait>(offsets: &OffsetBuffer<O>, index: usize) -> usize {
    offsets
        .partition_point(|o| o.as_usize() <= index)
        .saturating_sub(1)
}

fn cast_list<O: OffsetSizeTrait>(
    array: &GenericListArray<O>,
    item: &FieldRef,
    path: &str,
) -> Result<ArrayRef, CastError> {
    let item_path = format!("{path}[]");
    let offsets = array.offsets();
    let values =
        cast_field(array.values(), item, &item_path).map_err(|e| e.at_row(|i| row_of(offsets, i)))?;
    let offsets: Vec<i32> = offsets
        .iter()
        .map(|o| i32::try_from(o.as_usize()))
        .collect::<Result<_, _>>()
        .map_err(|_| CastError::Incompatible {
            path: path.to_string(),
            from: sql_type_name(array.data_type()),
            to: sql_type_name(&DataType::List(item.clone())),
        })?;
    let list = arrow::array::ListArray::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        array.nulls().cloned(),
    )
    .map_err(|_| CastError::Incompatible {
        path: path.to_string(),
        from: sql_type_name(array.data_type()),
        to: sql_type_name(&DataType::List(item.clone())),
    })?;
    Ok(Arc::new(list))
}

/// The key and value fields of a map's entries field.
fn entry_fields<'a>(
    entries: &'a FieldRef,
    path: &str,
) -> Result<(&'a FieldRef, &'a FieldRef, &'a Fields), CastError> {
    match entries.data_type() {
        DataType::Struct(fields) if fields.len() == 2 => Ok((&fields[0], &fields[1], fields)),
        other => Err(CastError::Incompatible {
            path: path.to_string(),
            from: "map".to_string(),
            to: sql_type_name(other),
        }),
    }
}

fn cast_map(array: &MapArray, entries: &FieldRef, sorted: bool, path: &str) -> Result<ArrayRef, CastError> {
    let (key_field, value_field, fields) = entry_fields(entries, path)?;
    let offsets = array.offsets();
    let keys = cast_field(array.keys(), key_field, &format!("{path}{{key}}"))
        .map_err(|e| e.at_row(|i| row_of(offsets, i)))?;
    let values = cast_field(array.values(), value_field, &format!("{path}{{value}}"))
        .map_err(|e| e.at_row(|i| row_of(offsets, i)))?;
    build_map(
        entries,
        fields,
        offsets.clone(),
        keys,
        values,
        array.nulls().cloned(),
        sorted,
        path,
    )
}

#[allow(clippy::too_many_arguments)]
fn build_map(
    entries: &FieldRef,
    fields: &Fields,
    offsets: OffsetBuffer<i32>,
    keys: ArrayRef,
    values: ArrayRef,
    nulls: Option<NullBuffer>,
    sorted: bool,
    path: &str,
) -> Result<ArrayRef, CastError> {
    let incompatible = || CastError::Incompatible {
        path: path.to_string(),
        from: "map entries".to_string(),
        to: sql_type_name(&DataType::Map(entries.clone(), sorted)),
    };
    let entries_array =
        StructArray::try_new(fields.clone(), vec![keys, values], None).map_err(|_| incompatible())?;
    MapArray::try_new(entries.clone(), offsets, entries_array, nulls, sorted)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|_| incompatible())
}

/// A JSON object decoded as a struct (its keys became fields) into a MAP
/// column: each non-null child of a row is one entry, keyed by the child's
/// name. JSON decoding cannot tell `{"k": null}` from a missing `k`, so a
/// null value is no entry.
fn struct_to_map(array: &StructArray, entries: &FieldRef, path: &str) -> Result<ArrayRef, CastError> {
    let (key_field, value_field, fields) = entry_fields(entries, path)?;
    let DataType::Struct(source_fields) = array.data_type() else {
        return Err(CastError::Incompatible {
            path: path.to_string(),
            from: sql_type_name(array.data_type()),
            to: sql_type_name(&DataType::Map(entries.clone(), false)),
        });
    };
    let value_path = format!("{path}{{value}}");
    let children: Vec<ArrayRef> = array
        .columns()
        .iter()
        .map(|child| cast_array(child, value_field.data_type(), &value_path))
        .collect::<Result<_, _>>()?;
    let mut picks: Vec<(usize, usize)> = Vec::new();
    let mut key_names: Vec<&str> = Vec::new();
    let mut offsets: Vec<i32> = Vec::with_capacity(array.len() + 1);
    offsets.push(0);
    for row in 0..array.len() {
        if array.is_valid(row) {
            for (index, child) in children.iter().enumerate() {
                if child.is_valid(row) {
                    picks.push((index, row));
                    key_names.push(source_fields[index].name());
                }
            }
        }
        let end = i32::try_from(picks.len()).map_err(|_| CastError::Incompatible {
            path: path.to_string(),
            from: sql_type_name(array.data_type()),
            to: sql_type_name(&DataType::Map(entries.clone(), false)),
        })?;
        offsets.push(end);
    }
    let offsets = OffsetBuffer::new(offsets.into());
    let refs: Vec<&dyn Array> = children.iter().map(|c| c.as_ref()).collect();
    let values = if refs.is_empty() {
        new_null_array(value_field.data_type(), 0)
    } else {
        arrow::compute::interleave(&refs, &picks).map_err(|_| CastError::Incompatible {
            path: value_path.clone(),
            from: sql_type_name(array.data_type()),
            to: value_field.data_type().to_string(),
        })?
    };
    let keys: ArrayRef = Arc::new(StringArray::from(key_names));
    let keys = cast_field(&keys, key_field, &format!("{path}{{key}}"))
        .map_err(|e| e.at_row(|i| row_of(&offsets, i)))?;
    if !value_field.is_nullable()
        && let Some(index) = first_null(&values)
    {
        return Err(CastError::NullInNotNull {
            path: value_path,
            row: row_of(&offsets, index),
        });
    }
    build_map(
        entries,
        fields,
        offsets,
        keys,
        values,
        array.nulls().cloned(),
        false,
        path,
    )
}

/// NOT NULL checks of arrays that already have the target types.
fn check_not_null(columns: &[ArrayRef], fields: &Fields) -> Result<(), CastError> {
    for (column, field) in columns.iter().zip(fields.iter()) {
        let path = field.name().clone();
        // Re-casting an array onto its own type checks every depth.
        cast_field(column, field, &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, ListArray, UInt64Array};
    use arrow::datatypes::{Int64Type, Schema};

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    #[test]
    fn a_value_that_does_not_fit_is_an_error_naming_column_and_row_not_a_silent_null() {
        let source = schema(vec![Field::new("n", DataType::UInt64, true)]);
        let batch = RecordBatch::try_new(
            source,
            vec![Arc::new(UInt64Array::from(vec![Some(1), None, Some(u64::MAX)]))],
        )
        .expect("batch");
        let target = schema(vec![Field::new("n", DataType::Int64, true)]);
        let error = cast_to_schema(&batch, &target).expect_err("u64::MAX does not fit BIGINT");
        assert_eq!(error.path(), "n");
        assert_eq!(error.row(), Some(2));
        assert!(!error.to_string().contains(&u64::MAX.to_string()), "{error}");

        let fraction = RecordBatch::try_new(
            schema(vec![Field::new("n", DataType::Float64, true)]),
            vec![Arc::new(Float64Array::from(vec![1.0, 1.5]))],
        )
        .expect("batch");
        let error = cast_to_schema(&fraction, &target).expect_err("1.5 is not a BIGINT");
        assert_eq!(error.row(), Some(1));
    }

    #[test]
    fn nested_unknown_fields_are_refused_with_their_path() {
        let address = Field::new(
            "address",
            DataType::Struct(
                vec![
                    Field::new("city", DataType::Utf8, true),
                    Field::new("country", DataType::Utf8, true),
                ]
                .into(),
            ),
            true,
        );
        let source = Schema::new(vec![Field::new(
            "customer",
            DataType::Struct(vec![address].into()),
            true,
        )]);
        let target = schema(vec![Field::new(
            "customer",
            DataType::Struct(
                vec![Field::new(
                    "address",
                    DataType::Struct(vec![Field::new("city", DataType::Utf8, true)].into()),
                    true,
                )]
                .into(),
            ),
            true,
        )]);
        let batch = RecordBatch::new_empty(Arc::new(source.clone()));
        let error = cast_to_schema(&batch, &target).expect_err("country is unknown");
        assert_eq!(
            error,
            CastError::UnknownField {
                path: "customer.address.country".into()
            }
        );
    }

    #[test]
    fn lists_report_the_row_of_the_bad_element_and_not_null_children_are_checked() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(-1), Some(300)]),
        ]);
        let item = Arc::new(Field::new("item", DataType::Int8, true));
        let batch = RecordBatch::try_new(
            schema(vec![Field::new("l", list.data_type().clone(), true)]),
            vec![Arc::new(list)],
        )
        .expect("batch");
        let target = schema(vec![Field::new("l", DataType::List(item), true)]);
        let error = cast_to_schema(&batch, &target).expect_err("300 is not a TINYINT");
        assert_eq!((error.path(), error.row()), ("l[]", Some(1)));

        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        let strict = Fields::from(vec![Field::new("x", DataType::Int64, false)]);
        let column = StructArray::new(
            inner.clone(),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
            None,
        );
        let batch = RecordBatch::try_new(
            schema(vec![Field::new("s", DataType::Struct(inner), true)]),
            vec![Arc::new(column)],
        )
        .expect("batch");
        let target = schema(vec![Field::new("s", DataType::Struct(strict), true)]);
        let error = cast_to_schema(&batch, &target).expect_err("x is NOT NULL");
        assert_eq!((error.path(), error.row()), ("s.x", Some(1)));
    }

    #[test]
    fn fixed_size_lists_become_lists() {
        let fixed = arrow::array::FixedSizeListArray::from_iter_primitive::<Int64Type, _, _>(
            vec![Some(vec![Some(1), Some(2)]), None],
            2,
        );
        let batch = RecordBatch::try_new(
            schema(vec![Field::new("l", fixed.data_type().clone(), true)]),
            vec![Arc::new(fixed)],
        )
        .expect("batch");
        let item = Arc::new(Field::new("element", DataType::Int64, true));
        let target = schema(vec![Field::new("l", DataType::List(item), true)]);
        let cast = cast_to_schema(&batch, &target).expect("casts");
        assert_eq!(cast.schema(), target);
        assert!(cast.column(0).is_null(1));
    }

    #[test]
    fn a_struct_becomes_map_entries() {
        let fields = Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]);
        let column = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Int64Array::from(vec![Some(2), Some(3)])),
            ],
            None,
        );
        let batch = RecordBatch::try_new(
            schema(vec![Field::new("m", DataType::Struct(fields), true)]),
            vec![Arc::new(column)],
        )
        .expect("batch");
        let entries = Arc::new(Field::new(
            "key_value",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Int32, true),
                ]
                .into(),
            ),
            false,
        ));
        let target = schema(vec![Field::new("m", DataType::Map(entries, false), true)]);
        let cast = cast_to_schema(&batch, &target).expect("casts");
        let map = cast.column(0).as_map();
        assert_eq!(map.value_length(0), 2);
        assert_eq!(map.value_length(1), 1);
        let keys = map.keys().as_string::<i32>();
        assert_eq!(keys.value(2), "b");
    }
}
