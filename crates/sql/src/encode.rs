//! Result encoders shared by the CLI and the HTTP API: text table, CSV, JSON
//! (`{"columns":[{"name","type","sql_type"}],"rows":[[…]]}`) and NDJSON.

use std::str::FromStr;

use arrow::datatypes::Schema;
use arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use crate::error::{Result, SqlError};

/// An output format for query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Boxed text table, for people.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON document with columns and rows.
    Json,
    /// One JSON object per row.
    Ndjson,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "ndjson" | "jsonl" => Ok(OutputFormat::Ndjson),
            other => Err(format!(
                "unknown format '{other}': use table, csv, json or ndjson"
            )),
        }
    }
}

fn encode_error(e: impl ToString) -> SqlError {
    SqlError::Execution(format!("cannot encode result: {}", e.to_string()))
}

/// Encodes a whole result in `format`.
pub fn encode(format: OutputFormat, schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    match format {
        OutputFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches_with_schema(schema.clone().into(), batches)
                .map_err(encode_error)?;
            Ok(format!("{text}\n").into_bytes())
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            if batches.iter().all(|b| b.num_rows() == 0) {
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let mut writer = csv::Writer::from_writer(&mut out);
                writer.write_record(header).map_err(encode_error)?;
                writer.flush().map_err(encode_error)?;
                drop(writer);
                return Ok(out);
            }
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for batch in batches {
                writer.write(batch).map_err(encode_error)?;
            }
            drop(writer);
            Ok(out)
        }
        OutputFormat::Ndjson => {
            let mut out = Vec::new();
            let mut writer = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut out);
            for batch in batches {
                writer.write(batch).map_err(encode_error)?;
            }
            writer.finish().map_err(encode_error)?;
            drop(writer);
            Ok(out)
        }
        OutputFormat::Json => {
            let document = json_document(schema, batches)?;
            let mut out = serde_json::to_vec(&document).map_err(encode_error)?;
            out.push(b'\n');
            Ok(out)
        }
    }
}

/// `{"columns":[{"name","type","sql_type"}],"rows":[[…]]}` for a result:
/// `type` is the Arrow type (as clients have parsed it), `sql_type` the
/// SQL name a user declares (`STRING`, `DECIMAL(12,2)`).
pub fn json_document(schema: &Schema, batches: &[RecordBatch]) -> Result<Value> {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "sql_type": silt_table::sql_type_name(f.data_type()),
            })
        })
        .collect();
    // Rows are arrays by position: two columns of the same name (a join of
    // two versions of one table) must both survive, so the JSON writer sees
    // positional names.
    let positional = std::sync::Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
            .collect::<Vec<_>>(),
    ));
    let mut rows = Vec::new();
    for batch in batches {
        let batch =
            RecordBatch::try_new(positional.clone(), batch.columns().to_vec()).map_err(encode_error)?;
        let mut buf = Vec::new();
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut buf);
        writer.write(&batch).map_err(encode_error)?;
        writer.finish().map_err(encode_error)?;
        drop(writer);
        if buf.is_empty() {
            continue;
        }
        let objects: Vec<Map<String, Value>> = serde_json::from_slice(&buf).map_err(encode_error)?;
        for mut object in objects {
            let row: Vec<Value> = positional
                .fields()
                .iter()
                .map(|f| object.remove(f.name()).unwrap_or(Value::Null))
                .collect();
            rows.push(Value::Array(row));
        }
    }
    Ok(json!({"columns": columns, "rows": rows}))
}
