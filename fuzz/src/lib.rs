//! What the fuzz targets share: the ingest request path, from body bytes to
//! the rows a commit would write, without a warehouse.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use silt_ingest::dead_letter::{Origin, dead_letter_batch, split_rows};
use silt_ingest::evolve::target_schema;
use silt_ingest::{Format, conform_batches, decode_bytes, infer_table_schema};

/// The table an existing-table request writes to: one column of each type a
/// table can have, so the casts from every decoded type are exercised.
fn table_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("n", DataType::Int32, true),
        Field::new("x", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("d", DataType::Date32, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("ntz", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("raw", DataType::Binary, true),
    ]))
}

/// A body sent to `POST /v1/tables/t/rows`, as the ingest service handles it:
/// decode; for a new table infer its schema and conform to it; for the
/// existing table above, evolve (`?evolve=true`) and conform, and on a row
/// that does not fit split the rows into good ones and dead letters.
/// Every error is an answer (4xx); only a panic, a crash or a hang is a
/// finding.
pub fn ingest(format: Format, data: &[u8]) {
    let Ok(decoded) = decode_bytes(format, data.to_vec(), "fuzz") else {
        return;
    };
    let rows = decoded.rows();
    let decoded_rows: usize = decoded.batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, decoded_rows);
    for batch in &decoded.batches {
        assert_eq!(batch.schema().fields().len(), decoded.schema.fields().len());
    }

    // `?create=true`: the new table's schema comes from the body.
    if let Ok(schema) = infer_table_schema(std::slice::from_ref(&decoded))
        && let Ok(batches) = conform_batches(&decoded, &schema, "t")
    {
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
    }

    // An existing table, with and without `?evolve=true`.
    let table = table_schema();
    for evolve in [false, true] {
        let Ok(target) = target_schema(&table, &decoded, evolve, "t") else {
            continue;
        };
        match conform_batches(&decoded, &target, "t") {
            Ok(batches) => {
                assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
            }
            Err(_) => {
                if let Ok(split) = split_rows(&decoded, &target, "t") {
                    let good: usize = split.good.iter().map(|b| b.num_rows()).sum();
                    assert_eq!(good + split.rejected.len(), rows);
                    let origin = Origin {
                        table: "t",
                        received_at: Default::default(),
                        producer: Some("fuzz"),
                        sequence: Some(1),
                    };
                    let _ = dead_letter_batch(&origin, &split.rejected);
                }
            }
        }
    }
}
