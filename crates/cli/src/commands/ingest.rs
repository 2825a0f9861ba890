//! `silt ingest`: files → one commit.

use std::fs::File;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use silt_ingest::{
    Decoded, Format, IngestError, IngestMode, conform_batches, decode_reader, infer_table_schema,
};
use silt_table::{CommitOptions, ErrorKind, TableError, TableSpec, Warehouse, WriteMode};

use crate::failure::Failure;

pub(super) async fn run(
    warehouse: &Warehouse,
    table_name: &str,
    files: &[std::path::PathBuf],
    format: Option<&str>,
    create: bool,
    mode: IngestMode,
) -> Result<(), Failure> {
    silt_table::validate_table_name(table_name)?;
    let forced = format.map(str::parse::<Format>).transpose()?;
    let mut inputs = Vec::with_capacity(files.len());
    for path in files {
        inputs.push(decode_file(path, forced)?);
    }
    let existing = match warehouse.table(table_name).await {
        Ok(table) => Some(table),
        Err(TableError::NotFound { .. }) if create => None,
        Err(e) => return Err(e.into()),
    };
    let table_schema = match &existing {
        Some(table) => table.schema()?,
        None => infer_table_schema(&inputs)?,
    };
    let schema = match &mode {
        IngestMode::Upsert(upsert) => {
            upsert.check(table_name, &table_schema)?;
            std::sync::Arc::new(upsert.input_schema(&table_schema))
        }
        IngestMode::Append => table_schema.clone(),
    };
    // Everything is validated before anything is written: a bad row anywhere
    // means no commit at all.
    let mut batches = Vec::new();
    for input in &inputs {
        batches.extend(conform_batches(input, &schema, table_name)?);
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut table = match existing {
        Some(table) => table,
        None => {
            let spec = TableSpec {
                schema: table_schema.clone(),
                partition_columns: Vec::new(),
                properties: Default::default(),
                if_not_exists: false,
            };
            warehouse.create_table(table_name, spec).await?
        }
    };
    if rows == 0 {
        // Nothing to add: no empty commit (deltalake refuses one anyway).
        println!("ingested 0 rows into {table_name} (version {})", table.version());
        return Ok(());
    }
    let spinner = progress(None, "committing");
    if let IngestMode::Upsert(upsert) = &mode {
        use silt_table::deltalake::datafusion::datasource::MemTable;
        use silt_table::deltalake::datafusion::prelude::SessionContext;
        let invalid = |e: silt_table::deltalake::datafusion::error::DataFusionError| {
            Failure::new(ErrorKind::Internal, format!("cannot read the rows: {e}"))
        };
        let ctx = SessionContext::new();
        // The batches' own schema: conform may differ from the target in
        // nullability or metadata, which MemTable compares strictly.
        let events_schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| schema.clone());
        let events = MemTable::try_new(events_schema, vec![batches]).map_err(invalid)?;
        let events = ctx.read_table(std::sync::Arc::new(events)).map_err(invalid)?;
        let (after, counts) = table
            .change()
            .apply_changes(events, &upsert.spec(&table_schema, Vec::new()))
            .await?;
        spinner.finish_and_clear();
        println!(
            "applied {rows} changes to {table_name} (version {}): {} inserted, {} updated, {} deleted, {} unchanged",
            after.version(),
            counts.inserted,
            counts.updated,
            counts.deleted,
            counts.unchanged()
        );
        return Ok(());
    }
    let version = table
        .write(batches, WriteMode::Append, CommitOptions::default())
        .await?;
    spinner.finish_and_clear();
    println!("ingested {rows} rows into {table_name} (version {version})");
    Ok(())
}

/// `forced`, else the format the file's extension names.
pub(super) fn file_format(path: &Path, forced: Option<Format>) -> Result<Format, Failure> {
    forced.or_else(|| Format::from_path(path)).ok_or_else(|| {
        Failure::new(
            ErrorKind::InvalidInput,
            format!(
                "{}: cannot tell the format from the extension; pass --format",
                path.display()
            ),
        )
    })
}

fn decode_file(path: &Path, forced: Option<Format>) -> Result<Decoded, Failure> {
    let name = path.display().to_string();
    let format = file_format(path, forced)?;
    let file = File::open(path).map_err(|source| IngestError::Io {
        source_name: name.clone(),
        source,
    })?;
    let size = file.metadata().map(|m| m.len()).ok();
    let bar = progress(size, &name);
    let decoded = decode_reader(format, bar.wrap_read(file), &name)?;
    bar.finish_and_clear();
    Ok(decoded)
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress(total: Option<u64>, label: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    bar.set_message(label.to_string());
    bar
}
