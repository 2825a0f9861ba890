//! Incremental result encoders for `/v1/sql`: each batch becomes a chunk of
//! the response body as soon as it is computed.

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use axum::body::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use silt_sql::{OutputFormat, SqlError};

use crate::error::ApiError;

/// A format `/v1/sql` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// `{"columns":[…],"rows":[[…]],"truncated":bool}`.
    Json,
    /// One JSON object per row.
    Ndjson,
    /// CSV with a header line.
    Csv,
    /// Arrow IPC stream.
    Arrow,
    /// A Parquet file (Snappy), written row group by row group.
    Parquet,
}

impl ResultFormat {
    /// The format an `Accept` header asks for (first match wins; none or
    /// `*/*` is JSON).
    pub fn from_accept(accept: Option<&str>) -> Result<Self, ApiError> {
        let Some(accept) = accept else {
            return Ok(ResultFormat::Json);
        };
        for media in accept.split(',') {
            let media = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            match media.as_str() {
                "application/json" | "*/*" | "application/*" | "" => return Ok(ResultFormat::Json),
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    return Ok(ResultFormat::Ndjson);
                }
                "text/csv" | "text/*" => return Ok(ResultFormat::Csv),
                "application/vnd.apache.arrow.stream" => return Ok(ResultFormat::Arrow),
                "application/vnd.apache.parquet" => return Ok(ResultFormat::Parquet),
                _ => {}
            }
        }
        Err(ApiError::invalid(format!(
            "cannot answer in '{accept}': accept application/json, application/x-ndjson, text/csv, \
             application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
        )))
    }

    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json => "application/json",
            ResultFormat::Ndjson => "application/x-ndjson",
            ResultFormat::Csv => "text/csv; charset=utf-8",
            ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
            ResultFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Encodes one result incrementally, stopping at a row cap.
pub struct Encoder {
    format: ResultFormat,
    schema: SchemaRef,
    max_rows: u64,
    rows: u64,
    truncated: bool,
    arrow: Option<StreamWriter<Vec<u8>>>,
    parquet: Option<ArrowWriter<Vec<u8>>>,
}

/// A Parquet answer's row group is closed (and sent) once this much is
/// buffered, so a large result never sits whole in server memory.
const PARQUET_ROW_GROUP_BYTES: usize = 16 * 1024 * 1024;

impl Encoder {
    /// An encoder for `schema` that emits at most `max_rows` rows.
    pub fn new(format: ResultFormat, schema: SchemaRef, max_rows: u64) -> Self {
        Self {
            format,
            schema,
            max_rows,
            rows: 0,
            truncated: false,
            arrow: None,
            parquet: None,
        }
    }

    /// What comes before the first row.
    pub fn start(&mut self) -> Result<Bytes, SqlError> {
        match self.format {
            ResultFormat::Json => {
                let columns: Vec<serde_json::Value> = self
                    .schema
                    .fields()
                    .iter()
                    // `type` stays Arrow's name (clients parse it); `sql_type`
                    // is the name a user declares (STRING, DECIMAL(12,2)).
                    .map(|f| {
                        serde_json::json!({
                            "name": f.name(),
                            "type": f.data_type().to_string(),
                            "sql_type": silt_sql::sql_type_name(f.data_type()),
                        })
                    })
                    .collect();
                let columns = serde_json::to_string(&columns).map_err(encode_error)?;
                Ok(Bytes::from(format!("{{\"columns\":{columns},\"rows\":[")))
            }
            ResultFormat::Csv => {
                let empty = RecordBatch::new_empty(self.schema.clone());
                Ok(Bytes::from(silt_sql::encode(
                    OutputFormat::Csv,
                    &self.schema,
                    &[empty],
                )?))
            }
            ResultFormat::Ndjson => Ok(Bytes::new()),
            ResultFormat::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let writer = ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(properties))
                    .map_err(encode_error)?;
                self.parquet = Some(writer);
                Ok(self.take_parquet())
            }
            ResultFormat::Arrow => {
                let writer = StreamWriter::try_new(Vec::new(), &self.schema).map_err(encode_error)?;
                self.arrow = Some(writer);
                Ok(self.take_arrow())
            }
        }
    }

    fn take_arrow(&mut self) -> Bytes {
        self.arrow
            .as_mut()
            .map(|w| Bytes::from(std::mem::take(w.get_mut())))
            .unwrap_or_default()
    }

    /// The bytes the Parquet writer has passed down so far. Taking them out
    /// of its `Vec` is safe: the writer counts offsets itself, and what it
    /// still buffers is appended after them.
    fn take_parquet(&mut self) -> Bytes {
        self.parquet
            .as_mut()
            .map(|w| Bytes::from(std::mem::take(w.inner_mut())))
            .unwrap_or_default()
    }

    /// Records that rows beyond the cap were left out (the JSON answer's
    /// `"truncated"`).
    pub fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// The chunk for one batch (cut at the row cap).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, SqlError> {
        let room = self.max_rows.saturating_sub(self.rows);
        if batch.num_rows() as u64 > room {
            self.truncated = true;
        }
        let batch = batch.slice(
            0,
            batch.num_rows().min(usize::try_from(room).unwrap_or(usize::MAX)),
        );
        if batch.num_rows() == 0 {
            return Ok(Bytes::new());
        }
        let first = self.rows == 0;
        self.rows += batch.num_rows() as u64;
        match self.format {
            ResultFormat::Json => {
                let document = silt_sql::json_document(&self.schema, std::slice::from_ref(&batch))?;
                let mut out = Vec::new();
                if let Some(rows) = document["rows"].as_array() {
                    for (i, row) in rows.iter().enumerate() {
                        if !(first && i == 0) {
                            out.push(b',');
                        }
                        serde_json::to_writer(&mut out, row).map_err(encode_error)?;
                    }
                }
                Ok(Bytes::from(out))
            }
            ResultFormat::Ndjson => Ok(Bytes::from(silt_sql::encode(
                OutputFormat::Ndjson,
                &self.schema,
                &[batch],
            )?)),
            ResultFormat::Csv => {
                let mut out = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut out);
                writer.write(&batch).map_err(encode_error)?;
                drop(writer);
                Ok(Bytes::from(out))
            }
            ResultFormat::Arrow => {
                if let Some(writer) = self.arrow.as_mut() {
                    writer.write(&batch).map_err(encode_error)?;
                }
                Ok(self.take_arrow())
            }
            ResultFormat::Parquet => {
                if let Some(writer) = self.parquet.as_mut() {
                    writer.write(&batch).map_err(encode_error)?;
                    if writer.in_progress_size() >= PARQUET_ROW_GROUP_BYTES {
                        writer.flush().map_err(encode_error)?;
                    }
                }
                Ok(self.take_parquet())
            }
        }
    }

    /// What comes after the last row.
    pub fn finish(&mut self) -> Result<Bytes, std::io::Error> {
        match self.format {
            ResultFormat::Json => Ok(Bytes::from(format!("],\"truncated\":{}}}\n", self.truncated))),
            ResultFormat::Arrow => {
                if let Some(writer) = self.arrow.as_mut() {
                    writer.finish().map_err(std::io::Error::other)?;
                }
                Ok(self.take_arrow())
            }
            ResultFormat::Parquet => {
                if let Some(writer) = self.parquet.as_mut() {
                    writer.finish().map_err(std::io::Error::other)?;
                }
                Ok(self.take_parquet())
            }
            ResultFormat::Csv | ResultFormat::Ndjson => Ok(Bytes::new()),
        }
    }
}

fn encode_error(e: impl ToString) -> SqlError {
    SqlError::Execution(format!("cannot encode result: {}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn batch(schema: &SchemaRef, from: i64, rows: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + rows).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("batch")
    }

    /// The chunks of a Parquet answer, joined, are one readable file with
    /// every row up to the cap.
    #[test]
    fn parquet_answers_stream_one_readable_file_cut_at_the_row_cap() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        assert_eq!(
            ResultFormat::from_accept(Some("application/vnd.apache.parquet")).expect("parquet"),
            ResultFormat::Parquet
        );
        let mut encoder = Encoder::new(ResultFormat::Parquet, schema.clone(), 250);
        let mut file = encoder.start().expect("start").to_vec();
        for n in 0..3 {
            file.extend_from_slice(&encoder.batch(&batch(&schema, n * 100, 100)).expect("batch"));
        }
        file.extend_from_slice(&encoder.finish().expect("finish"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
            .expect("a parquet file")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("rows");
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("ids")
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, (0..250).collect::<Vec<i64>>());
        assert_eq!(batches[0].schema().field(1).name(), "name");
    }

    #[test]
    fn an_empty_parquet_answer_is_a_file_with_the_schema() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut encoder = Encoder::new(ResultFormat::Parquet, schema, 10);
        let mut file = encoder.start().expect("start").to_vec();
        file.extend_from_slice(&encoder.finish().expect("finish"));
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).expect("a parquet file");
        assert_eq!(builder.schema().field(0).name(), "id");
        assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    }
}
