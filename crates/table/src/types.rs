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

#[cfg(test)]
mod tests {
    use super::*;

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
