//! The batched delete on subject columns, done by silt rather than by
//! deltalake's DELETE, for three reasons:
//!
//! - **Pruning.** deltalake cannot prune files with a function predicate, so
//!   its DELETE reads every file. Here a file is skipped when its column
//!   statistics put every subject out of range, or when the bloom filter of
//!   each row group (written on subject columns, see
//!   [`silt_table::writer_properties`]) says no subject is there. Only the
//!   remaining files are read, and only those with a matching row rewritten.
//! - **A value-free log.** The commit is a Delta `DELETE` with no predicate;
//!   its `commitInfo` carries the erasure id and counts only.
//! - **One pass for any number of subjects.** Statistics are checked with a
//!   binary search over the sorted subjects, bloom filters with one probe per
//!   subject, rows with one hash lookup per cell.
//!
//! Tables this cannot write (column mapping, deletion vectors) are left to
//! the deltalake DELETE of the caller.

// `ParquetObjectReader` is deprecated in parquet 59.3 in favour of a
// hand-written `AsyncFileReader`; it still reads ranges from the table's
// object store, which is all that pruning needs (footer and bloom filters,
// never whole files).
#![allow(deprecated)]

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::{filter_record_batch, kernels::boolean};
use arrow::datatypes::DataType;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use deltalake::kernel::Action;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, WriteMode};
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use serde_json::Value;
use silt_table::{ExclusiveWriteGuard, Table};

use crate::error::{ErasureError, Result};
use crate::matcher::{MatchMode, Subjects, match_array};
use crate::reading::{in_flight, text_as_dictionaries};

/// Delta truncates string statistics (Spark to 32 characters); a maximum
/// that long may be a cut prefix and is no upper bound.
const MAX_STAT_CHARS: usize = 32;

/// What the rewrite did to one table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rewritten {
    /// The commit, if any row matched.
    pub(crate) version: Option<u64>,
    /// Rows removed.
    pub(crate) rows_deleted: u64,
    /// Data files of the version the delete started from.
    pub(crate) files_live: u64,
    /// Files skipped on statistics or bloom filters, without reading data.
    pub(crate) files_pruned: u64,
    /// Files whose subject columns were read.
    pub(crate) files_read: u64,
    /// Files removed (rewritten without the subjects' rows, or dropped).
    pub(crate) files_rewritten: u64,
    /// Files written in their place.
    pub(crate) files_added: u64,
}

/// Why the rewrite cannot handle a table (the caller uses deltalake's DELETE).
#[derive(Debug)]
pub(crate) struct Unsupported(pub(crate) String);

/// One subject column as the rewrite sees it.
#[derive(Debug, Clone)]
struct SubjectColumn {
    name: String,
    partition: bool,
    /// String columns are pruned by statistics and bloom filters; other
    /// types (compared by their text) only by reading.
    string: bool,
}

/// Deletes every row whose subject column equals a subject (`Equals`), or
/// whose text contains one (`Contains`: the dead letters' raw rows, which
/// no statistic or bloom filter can prune), in one commit.
pub(crate) async fn erase_rows(
    table: &Table,
    columns: &[String],
    mode: MatchMode,
    subjects: &Arc<Subjects>,
    metadata: Vec<(String, Value)>,
    gate: &ExclusiveWriteGuard,
) -> Result<std::result::Result<Rewritten, Unsupported>> {
    let name = table.name();
    let step = |e: &dyn std::fmt::Display| ErasureError::Step {
        table: name.to_string(),
        step: "delete",
        reason: e.to_string(),
    };
    let mut writer = match table.file_writer() {
        Ok(writer) => writer,
        Err(e) => return Ok(Err(Unsupported(e.to_string()))),
    };
    let schema = table.schema()?;
    let partitions = table.partition_columns()?;
    let file_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !partitions.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<SubjectColumn> = columns
        .iter()
        .filter_map(|c| {
            let field = schema.field_with_name(c).ok()?;
            Some(SubjectColumn {
                name: c.clone(),
                partition: partitions.contains(c),
                string: matches!(
                    field.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ),
            })
        })
        .collect();
    let snapshot = table.snapshot().map_err(|e| step(&e))?;
    let files: Vec<_> = snapshot.log_data().iter().collect();
    if files.iter().any(|f| f.deletion_vector_descriptor().is_some()) {
        return Ok(Err(Unsupported("the table has deletion vectors".into())));
    }
    let mut done = Rewritten {
        files_live: files.len() as u64,
        ..Rewritten::default()
    };
    if columns.is_empty() {
        return Ok(Ok(done));
    }
    let store = table.object_store();
    let data_columns: Arc<Vec<SubjectColumn>> =
        Arc::new(columns.iter().filter(|c| !c.partition).cloned().collect());
    // Statistics first (no I/O), then the remaining files probed a few at a
    // time on their own tasks: bloom filters, then their subject columns.
    let mut probes = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let partition_values = file.partition_values_map();
        // A subject partition column matches the whole file.
        let whole_file = columns.iter().any(|c| {
            c.partition
                && partition_values
                    .get(&c.name)
                    .and_then(Option::as_deref)
                    .is_some_and(|v| subjects.matches(mode, v))
        });
        if !whole_file {
            let stats: Value = file
                .stats()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null);
            if !data_columns
                .iter()
                .any(|c| mode == MatchMode::Contains || may_hold(&stats, c, subjects.sorted()))
            {
                done.files_pruned += 1;
                continue;
            }
        }
        let (store, path) = (store.clone(), file.object_store_path());
        let size = u64::try_from(file.size()).unwrap_or_default();
        let (columns, subjects) = (data_columns.clone(), subjects.clone());
        probes.push(async move {
            let probe =
                tokio::spawn(
                    async move { probe(store, path, size, whole_file, mode, &columns, &subjects).await },
                );
            (index, probe.await)
        });
    }
    let mut doomed_files: Vec<(usize, u64, bool)> = Vec::new();
    let mut probed = futures::stream::iter(probes).buffer_unordered(in_flight());
    while let Some((index, outcome)) = probed.next().await {
        match outcome.map_err(|e| step(&e))?.map_err(|e| step(&e))? {
            Probe::Pruned => done.files_pruned += 1,
            Probe::Read(0) => done.files_read += 1,
            Probe::Read(rows) => {
                done.files_read += 1;
                doomed_files.push((index, rows, false));
            }
            Probe::Whole(rows) => doomed_files.push((index, rows, true)),
        }
    }
    drop(probed);
    doomed_files.sort_unstable();
    let data_columns: Vec<&SubjectColumn> = data_columns.iter().collect();
    // Every removal and every rewrite's partition values before any file is
    // written: a table this cannot handle must leave nothing behind.
    let mut removes = Vec::new();
    let mut rewrites = Vec::new();
    for (index, doomed, whole_file) in doomed_files {
        let file = &files[index];
        done.rows_deleted += doomed;
        done.files_rewritten += 1;
        removes.push(file.remove_action(true));
        if whole_file {
            continue;
        }
        let partition_scalars: IndexMap<String, _> = match file.partition_values() {
            Some(values) => values
                .fields()
                .iter()
                .map(|f| f.name().to_string())
                .zip(values.values().iter().cloned())
                .collect(),
            None => IndexMap::new(),
        };
        if partition_scalars.len() != partitions.len() {
            return Ok(Err(Unsupported("partition values not parsed".into())));
        }
        rewrites.push((file, partition_scalars));
    }
    // Each file rewritten without the matching rows, under its partition.
    for (file, partition_scalars) in rewrites {
        let path = file.object_store_path();
        let reader = ParquetObjectReader::new(store.clone(), path)
            .with_file_size(u64::try_from(file.size()).unwrap_or_default());
        let mut stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .and_then(|b| b.build())
            .map_err(|e| step(&e))?;
        while let Some(batch) = stream.try_next().await.map_err(|e| step(&e))? {
            let keep = boolean::not(&matching(&batch, &data_columns, mode, subjects).map_err(|e| step(&e))?)
                .map_err(|e| step(&e))?;
            let kept = filter_record_batch(&batch, &keep).map_err(|e| step(&e))?;
            // The file's own Arrow types (Utf8View…) or an older schema
            // (columns added since) are conformed to the table's.
            let kept = conform(&kept, &file_schema)
                .map_err(|_| step(&"cannot rewrite a data file into the table schema"))?;
            if kept.num_rows() > 0 {
                writer
                    .write_partition(kept, &partition_scalars, WriteMode::Default)
                    .await
                    // Conforming to the table schema can quote a cell: no reason.
                    .map_err(|_| step(&"cannot rewrite a data file into the table schema"))?;
            }
        }
    }
    if removes.is_empty() {
        return Ok(Ok(done));
    }
    let adds = writer.flush().await.map_err(|e| step(&e))?;
    done.files_added = adds.len() as u64;
    let mut metadata = metadata;
    metadata.extend([
        (
            "silt.erasure.rows_deleted".to_string(),
            Value::from(done.rows_deleted),
        ),
        (
            "silt.erasure.files_removed".to_string(),
            Value::from(done.files_rewritten),
        ),
        (
            "silt.erasure.files_added".to_string(),
            Value::from(done.files_added),
        ),
    ]);
    let actions: Vec<Action> = removes
        .into_iter()
        .map(Action::Remove)
        .chain(adds.into_iter().map(Action::Add))
        .collect();
    let committed = table
        .change()
        .holding(gate)
        .with_metadata(metadata)
        .commit_actions(actions, DeltaOperation::Delete { predicate: None })
        .await
        .map_err(|e| step(&e))?;
    done.version = Some(committed);
    Ok(Ok(done))
}

/// `batch` with exactly the columns of `schema`, cast to its types; a
/// column the file predates is all nulls.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> std::result::Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            // Strict: a value that does not fit fails the rewrite (nothing
            // is committed) instead of becoming NULL in the rewritten file.
            Some(column) => arrow::compute::cast_with_options(
                column,
                field.data_type(),
                &arrow::compute::CastOptions {
                    safe: false,
                    ..Default::default()
                },
            ),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<std::result::Result<Vec<ArrayRef>, ArrowError>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// Rows per batch when probing: large, so a column chunk's dictionary is
/// matched few times.
const PROBE_BATCH_ROWS: usize = 65_536;

/// What probing one file found.
enum Probe {
    /// Its bloom filters rule every subject out.
    Pruned,
    /// Its subject columns were read: this many rows match.
    Read(u64),
    /// A subject partition value: all of its rows match.
    Whole(u64),
}

/// Bloom filters, then the subject columns, of the file at `path`.
async fn probe(
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
    whole_file: bool,
    mode: MatchMode,
    columns: &[SubjectColumn],
    subjects: &Subjects,
) -> parquet::errors::Result<Probe> {
    let mut reader = ParquetObjectReader::new(store, path).with_file_size(size);
    let plain = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?;
    if whole_file {
        let rows = u64::try_from(plain.metadata().file_metadata().num_rows()).unwrap_or(0);
        return Ok(Probe::Whole(rows));
    }
    // Subject text columns as dictionaries: matched once per distinct value.
    let metadata = text_as_dictionaries(plain, |f| columns.iter().any(|c| c.name == *f.name()));
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata)
        .with_batch_size(PROBE_BATCH_ROWS);
    let columns: Vec<&SubjectColumn> = columns.iter().collect();
    // Bloom filters answer "equals", never "contains".
    let row_groups = match mode {
        MatchMode::Equals => bloom_candidates(&mut builder, &columns, subjects.sorted()).await?,
        MatchMode::Contains => (0..builder.metadata().num_row_groups()).collect(),
    };
    if row_groups.is_empty() {
        return Ok(Probe::Pruned);
    }
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaf_indices(&builder, &columns));
    let mut stream = builder
        .with_row_groups(row_groups)
        .with_projection(mask)
        .build()?;
    let mut doomed = 0u64;
    while let Some(batch) = stream.try_next().await? {
        doomed += matching(&batch, &columns, mode, subjects)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?
            .true_count() as u64;
    }
    Ok(Probe::Read(doomed))
}

/// Whether a file's statistics leave room for a subject in `column`.
fn may_hold(stats: &Value, column: &SubjectColumn, sorted: &[String]) -> bool {
    if !column.string {
        return true;
    }
    let name = column.name.as_str();
    if let (Some(records), Some(nulls)) = (stats["numRecords"].as_u64(), stats["nullCount"][name].as_u64())
        && records == nulls
    {
        return false;
    }
    let Some(min) = stats["minValues"][name].as_str() else {
        return true;
    };
    let max = stats["maxValues"][name]
        .as_str()
        .filter(|m| m.chars().count() < MAX_STAT_CHARS);
    // The first subject not below the minimum must not be above the maximum.
    let first = sorted.partition_point(|s| s.as_str() < min);
    match (sorted.get(first), max) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(s), Some(max)) => s.as_str() <= max,
    }
}

/// Row groups whose bloom filter (on any subject column) may hold a subject;
/// a row group without a filter always may.
async fn bloom_candidates(
    builder: &mut ParquetRecordBatchStreamBuilder<ParquetObjectReader>,
    columns: &[&SubjectColumn],
    sorted: &[String],
) -> parquet::errors::Result<Vec<usize>> {
    let indices = leaf_indices(builder, columns);
    let strings: Vec<bool> = columns
        .iter()
        .filter(|c| leaf_index(builder, c).is_some())
        .map(|c| c.string)
        .collect();
    let mut out = Vec::new();
    for group in 0..builder.metadata().num_row_groups() {
        let mut maybe = indices.is_empty();
        for (index, string) in indices.iter().zip(&strings) {
            if !string {
                maybe = true;
                break;
            }
            match builder.get_row_group_column_bloom_filter(group, *index).await? {
                Some(filter) if !sorted.iter().any(|s| filter.check(s.as_str())) => {}
                _ => {
                    maybe = true;
                    break;
                }
            }
        }
        if maybe {
            out.push(group);
        }
    }
    Ok(out)
}

/// The Parquet leaf index of a top-level subject column, if the file has it.
fn leaf_index(
    builder: &ParquetRecordBatchStreamBuilder<ParquetObjectReader>,
    column: &SubjectColumn,
) -> Option<usize> {
    builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [column.name.as_str()])
}

fn leaf_indices(
    builder: &ParquetRecordBatchStreamBuilder<ParquetObjectReader>,
    columns: &[&SubjectColumn],
) -> Vec<usize> {
    columns.iter().filter_map(|c| leaf_index(builder, c)).collect()
}

/// Rows of `batch` where any subject column matches a subject (per `mode`).
fn matching(
    batch: &RecordBatch,
    columns: &[&SubjectColumn],
    mode: MatchMode,
    subjects: &Subjects,
) -> datafusion::common::Result<BooleanArray> {
    let mut hits = BooleanArray::from(vec![false; batch.num_rows()]);
    for column in columns {
        if let Some(array) = batch.column_by_name(&column.name) {
            hits = boolean::or(&hits, &match_array(subjects, mode, array)?)?;
        }
    }
    Ok(hits)
}
