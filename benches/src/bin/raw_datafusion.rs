//! Baselines for the benchmark harness, printed as one JSON line:
//!
//! - `raw_datafusion query DIR SQL`: DataFusion over every `*.parquet` under DIR
//!   (registered as table `t`, no Delta log): the query-layer limit.
//! - `raw_datafusion encode FILE`: arrow-rs Parquet encode rate of FILE's rows
//!   (decoded into memory first, encoded to memory): the write limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if !path.ends_with("_delta_log") {
                parquet_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

async fn query(dir: &Path, sql: &str) -> Result<serde_json::Value> {
    let started = Instant::now();
    let mut files = Vec::new();
    parquet_files(dir, &mut files)?;
    if files.is_empty() {
        bail!("no parquet files under {}", dir.display());
    }
    let ctx = SessionContext::new();
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let schema = options.infer_schema(&ctx.state(), &urls[0]).await?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table("t", Arc::new(ListingTable::try_new(config)?))?;
    let batches = ctx.sql(sql).await?.collect().await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    Ok(serde_json::json!({
        "mode": "query", "files": files.len(), "rows": rows,
        "ms": started.elapsed().as_secs_f64() * 1000.0,
    }))
}

fn encode(file: &Path) -> Result<serde_json::Value> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(input)?
        .with_batch_size(64 * 1024)
        .build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let schema = batches.first().map(RecordBatch::schema).context("empty input")?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let in_memory: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let started = Instant::now();
    let mut out = Vec::with_capacity(in_memory / 2);
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.close()?;
    let secs = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "mode": "encode", "rows": rows, "ms": secs * 1000.0,
        "rows_per_s": rows as f64 / secs, "encoded_bytes": out.len(),
        "mb_per_s_in_memory": in_memory as f64 / secs / 1e6,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["query", dir, sql] => query(Path::new(dir), sql).await?,
        ["encode", file] => encode(Path::new(file))?,
        _ => bail!("usage: raw_datafusion query DIR SQL | raw_datafusion encode FILE.parquet"),
    };
    println!("{result}");
    Ok(())
}
