//! Bind parameters: each value is decoded by its type — the one the client
//! declared, else the one DataFusion inferred for `$n`, else text — in the
//! format the client sent (text or binary), then cast to the inferred type,
//! and bound into the plan as a value (never spliced into the SQL text).

use arrow::datatypes::DataType;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use rust_decimal::Decimal;
use silt_sql::ScalarValue;
use silt_table::ErrorKind;

use crate::error::ApiError;

/// The pg type of an Arrow type a parameter was inferred as.
pub(crate) fn pg_type(data_type: &DataType) -> Type {
    arrow_pg::datatypes::into_pg_type(data_type).unwrap_or(Type::UNKNOWN)
}

fn bad(index: usize, error: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("parameter ${}: {error}", index + 1))
}

/// The values of `portal`'s parameters, for a statement whose `$n` were
/// inferred as `inferred` (empty when nothing was inferred).
pub(crate) fn decode<S: Clone>(
    portal: &Portal<S>,
    inferred: &[DataType],
) -> Result<Vec<ScalarValue>, ApiError> {
    let declared = &portal.statement.parameter_types;
    (0..portal.parameter_len())
        .map(|index| {
            let target = inferred.get(index).filter(|t| !matches!(t, DataType::Null));
            let pg = declared
                .get(index)
                .cloned()
                .flatten()
                .filter(|t| *t != Type::UNKNOWN)
                .or_else(|| target.map(pg_type))
                .filter(|t| *t != Type::UNKNOWN)
                .unwrap_or(Type::TEXT);
            let value = one(portal, index, &pg)?;
            match target {
                Some(target) if value.data_type() != *target => value
                    .cast_to(target)
                    .map_err(|_| bad(index, format!("the value does not fit {target}"))),
                _ => Ok(value),
            }
        })
        .collect()
}

fn one<S: Clone>(portal: &Portal<S>, index: usize, pg: &Type) -> Result<ScalarValue, ApiError> {
    let e = |error: pgwire::error::PgWireError| bad(index, error);
    Ok(match *pg {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(index, pg).map_err(e)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(index, pg).map_err(e)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(index, pg).map_err(e)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(index, pg).map_err(e)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(index, pg).map_err(e)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(index, pg).map_err(e)?),
        Type::NUMERIC => match portal.parameter::<Decimal>(index, pg).map_err(e)? {
            None => ScalarValue::Decimal128(None, 38, 10),
            Some(value) => {
                let scale = i8::try_from(value.scale()).map_err(|_| bad(index, "scale too large"))?;
                ScalarValue::Decimal128(Some(value.mantissa()), 38, scale)
            }
        },
        Type::DATE => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            ScalarValue::Date32(
                portal
                    .parameter::<NaiveDate>(index, pg)
                    .map_err(e)?
                    .map(|d| i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)),
            )
        }
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<NaiveDateTime>(index, pg)
                .map_err(e)?
                .map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<DateTime<FixedOffset>>(index, pg)
                .map_err(e)?
                .map(|t| t.timestamp_micros()),
            Some("UTC".into()),
        ),
        Type::BYTEA => ScalarValue::Binary(portal.parameter::<Vec<u8>>(index, pg).map_err(e)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            ScalarValue::Utf8(portal.parameter::<String>(index, pg).map_err(e)?)
        }
        ref other => {
            return Err(ApiError::new(
                ErrorKind::Unsupported,
                format!(
                    "parameter ${}: type {} is not supported yet",
                    index + 1,
                    other.name()
                ),
            ));
        }
    })
}
