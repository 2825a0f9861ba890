//! Mapping of Arrow types onto the ones the Delta protocol can store.
//!
//! Decoders and DataFusion produce Arrow types Delta has no name for
//! (`Utf8View`, unsigned integers, nanosecond timestamps); silt stores them as
//! the nearest Delta type that loses nothing a reader would notice.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// The Arrow type silt stores for `data_type`, or why it cannot be stored.
///
/// Timestamps become microsecond UTC (`timestamp` in Delta); timezone-less
/// timestamps are read as UTC, as Spark does for `TIMESTAMP`.
pub fn delta_compatible_type(data_type: &DataType) -> Result<DataType, String> {
    Ok(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            DataType::Binary
        }
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32 => data_type.clone(),
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Decimal128(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Dictionary(_, value) => delta_compatible_type(value)?,
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::FixedSizeList(item, _) => DataType::List(Arc::new(delta_compatible_field(item)?)),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| delta_compatible_field(f))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        DataType::Map(entries, sorted) => DataType::Map(Arc::new(delta_compatible_field(entries)?), *sorted),
        other => return Err(format!("type {other} cannot be stored in a Delta table")),
    })
}

fn delta_compatible_field(field: &Field) -> Result<Field, String> {
    let data_type = delta_compatible_type(field.data_type())
        .map_err(|reason| format!("column '{}': {reason}", field.name()))?;
    Ok(Field::new(field.name(), data_type, field.is_nullable()))
}

/// [`delta_compatible_type`] over every column of a schema.
pub fn delta_compatible_schema(schema: &Schema) -> Result<Arc<Schema>, String> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| delta_compatible_field(f))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// The SQL name of an Arrow type, in the Databricks spelling a user
/// declares (`BIGINT`, `STRING`, `DECIMAL(12,2)`, `ARRAY<INT>`,
/// `STRUCT<a: INT, b: STRING>`, `MAP<STRING, INT>`): what DESCRIBE,
/// information_schema and error messages show instead of Arrow's names
/// (`Utf8View`, `Dictionary(UInt16, Utf8)`, `Decimal128(12, 2)`), which are
/// how a value is held in memory, not what the column is. Encodings of one
/// SQL type (string views, dictionaries, large offsets) share its name.
/// Types Delta cannot store still get a readable SQL-like name.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "VOID".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 => "HALF".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "BINARY".into()
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Duration(_) | DataType::Interval(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            format!("DECIMAL({p},{s})")
        }
        DataType::Dictionary(_, value) => sql_type_name(value),
        DataType::RunEndEncoded(_, values) => sql_type_name(values.data_type()),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => format!("ARRAY<{}>", sql_type_name(item.data_type())),
        DataType::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| {
                    let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                    format!(
                        "{}: {}{not_null}",
                        field_name(f.name()),
                        sql_type_name(f.data_type())
                    )
                })
                .collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            _ => "MAP".into(),
        },
        DataType::Union(_, _) => "UNION".into(),
    }
}

/// A struct field's name as written in `STRUCT<…>`: back-quoted unless it
/// is a plain identifier, so `STRUCT<`a b`: INT>` reads unambiguously.
fn field_name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_hide_arrow_encodings() {
        use deltalake::arrow::datatypes::Fields;
        let dict = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        assert_eq!(sql_type_name(&dict), "STRING");
        assert_eq!(sql_type_name(&DataType::Utf8View), "STRING");
        assert_eq!(sql_type_name(&DataType::Decimal128(12, 2)), "DECIMAL(12,2)");
        assert_eq!(
            sql_type_name(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
            "TIMESTAMP"
        );
        let list = DataType::List(Arc::new(Field::new("element", DataType::Int32, true)));
        assert_eq!(sql_type_name(&list), "ARRAY<INT>");
        let record = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b c", DataType::Utf8View, false),
        ]));
        assert_eq!(sql_type_name(&record), "STRUCT<a: INT, `b c`: STRING NOT NULL>");
        let entries = Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int64, true),
            ])),
            false,
        );
        assert_eq!(
            sql_type_name(&DataType::Map(Arc::new(entries), false)),
            "MAP<STRING, BIGINT>"
        );
    }

    #[test]
    fn maps_arrow_only_types_to_delta_types() {
        assert_eq!(
            delta_compatible_type(&DataType::Utf8View).ok(),
            Some(DataType::Utf8)
        );
        assert_eq!(
            delta_compatible_type(&DataType::UInt32).ok(),
            Some(DataType::Int64)
        );
        assert_eq!(
            delta_compatible_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)).ok(),
            Some(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        );
        assert!(delta_compatible_type(&DataType::Duration(TimeUnit::Second)).is_err());
    }
}
