//! Byte-level verification: read every object under a root — referenced by
//! the log or not — and count occurrences of any subject. Parquet files are
//! decoded and every string value (at any nesting depth: checkpoint `stats`
//! live inside structs) is searched, besides their raw bytes; every other
//! object (JSON commits, `_last_checkpoint`, stray files) is searched as bytes.

use std::sync::Arc;

use arrow::array::{Array, ArrayData, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Type as PhysicalType;

use crate::certificate::Verification;
use crate::error::{ErasureError, Result};
use crate::matcher::Subjects;
use crate::reading::{in_flight, text_as_dictionaries};

/// Scans every object of `store` (rooted at a table) for the subjects.
/// `label` names the root in errors.
pub(crate) async fn scan_store(
    store: Arc<dyn ObjectStore>,
    subjects: &Arc<Subjects>,
    label: &str,
) -> Result<Verification> {
    let paths: Vec<object_store::path::Path> = store
        .list(None)
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| ErasureError::step(label, "verify", e))?;
    scan_objects(store, paths, subjects, label).await
}

/// Scans the objects at `paths`, a few at a time: each is fetched whole and
/// searched on a blocking thread, so verification uses every core and holds
/// at most [`crate::reading::MAX_IN_FLIGHT`] objects in memory.
pub(crate) async fn scan_objects(
    store: Arc<dyn ObjectStore>,
    paths: Vec<object_store::path::Path>,
    subjects: &Arc<Subjects>,
    label: &str,
) -> Result<Verification> {
    let scans = futures::stream::iter(paths)
        .map(|path| {
            let store = store.clone();
            let subjects = subjects.clone();
            async move {
                let bytes = store.get(&path).await?.bytes().await?;
                let size = bytes.len() as u64;
                let name = path.to_string();
                let scanned = tokio::task::spawn_blocking(move || {
                    let mut report = Verification::default();
                    let found = scan_object(&name, bytes, &subjects, &mut report);
                    (name, found, report.parquet_files_decoded)
                })
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "verify",
                    source: Box::new(e),
                })?;
                Ok::<_, object_store::Error>((scanned, size))
            }
        })
        .buffer_unordered(in_flight());
    futures::pin_mut!(scans);
    let mut report = Verification::default();
    while let Some(scanned) = scans.next().await {
        let ((path, found, decoded), size) = scanned.map_err(|e| ErasureError::step(label, "verify", e))?;
        report.objects_scanned += 1;
        report.bytes_scanned += size;
        report.parquet_files_decoded += decoded;
        if found > 0 {
            report.occurrences_found += found;
            report.paths_with_occurrences.push(path);
        }
    }
    report.paths_with_occurrences.sort();
    Ok(report)
}

/// Occurrences in one object. Parquet files are decoded and every string or
/// binary value searched; of their raw bytes only the footer (schema,
/// statistics, key-value metadata) is searched besides — a data page holds
/// nothing its decoded values do not, and page statistics are derived from
/// them. Every other object is searched as raw bytes.
pub(crate) fn scan_object(path: &str, bytes: Bytes, subjects: &Subjects, report: &mut Verification) -> u64 {
    if !path.ends_with(".parquet") {
        return subjects.count_in(&bytes);
    }
    report.parquet_files_decoded += 1;
    let footer = parquet_footer(&bytes).map(|f| subjects.count_in(f));
    match scan_parquet(bytes.clone(), subjects) {
        Ok(decoded) => footer.unwrap_or_else(|| subjects.count_in(&bytes)) + decoded,
        Err(reason) => {
            // A file that cannot be decoded cannot be shown clean: search
            // all of its bytes and count it as one occurrence more.
            tracing::warn!(path, %reason, "cannot decode parquet file during erasure verification");
            1 + subjects.count_in(&bytes)
        }
    }
}

/// The footer of a Parquet file (metadata and trailer), if well formed.
fn parquet_footer(bytes: &[u8]) -> Option<&[u8]> {
    let len = bytes.len();
    if len < 12 || &bytes[len - 4..] != b"PAR1" {
        return None;
    }
    let meta = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().ok()?) as usize;
    let start = len.checked_sub(8 + meta)?;
    Some(&bytes[start..])
}

fn scan_parquet(bytes: Bytes, subjects: &Subjects) -> std::result::Result<u64, String> {
    // The footer is parsed once; top-level text is read as dictionaries
    // (see `reading`), so a repeated value is searched, and counted, once.
    let plain = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
    let builder =
        ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, text_as_dictionaries(plain, |_| true));
    // Only byte-array leaves can hold text; skip decoding numbers and dates.
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c.physical_type(),
                PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY
            )
        })
        .map(|(i, _)| i)
        .collect();
    if leaves.is_empty() {
        return Ok(0);
    }
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder.with_projection(mask).build().map_err(|e| e.to_string())?;
    let mut found = 0;
    // Batches of one column chunk share its dictionary: search it once.
    let mut searched: Vec<ArrayData> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        for column in batch.columns() {
            if let Some(dictionary) = column.as_any_dictionary_opt() {
                let values = dictionary.values().to_data();
                if searched.iter().any(|seen| seen.ptr_eq(&values)) {
                    continue;
                }
                searched.push(values);
            }
            found += scan_array(column, subjects);
        }
    }
    Ok(found)
}

/// Occurrences in every string leaf of `array`.
fn scan_array(array: &ArrayRef, subjects: &Subjects) -> u64 {
    let count_strings = |values: &mut dyn Iterator<Item = Option<&str>>| -> u64 {
        values.flatten().map(|s| subjects.count_in(s.as_bytes())).sum()
    };
    match array.data_type() {
        DataType::Utf8 => count_strings(&mut array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => count_strings(&mut array.as_string::<i64>().iter()),
        DataType::Utf8View => count_strings(&mut array.as_string_view().iter()),
        DataType::Binary => array
            .as_binary::<i32>()
            .iter()
            .flatten()
            .map(|b| subjects.count_in(b))
            .sum(),
        DataType::LargeBinary => array
            .as_binary::<i64>()
            .iter()
            .flatten()
            .map(|b| subjects.count_in(b))
            .sum(),
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .map(|c| scan_array(c, subjects))
            .sum(),
        DataType::List(_) => scan_array(array.as_list::<i32>().values(), subjects),
        DataType::LargeList(_) => scan_array(array.as_list::<i64>().values(), subjects),
        DataType::Map(_, _) => {
            let entries: ArrayRef = Arc::new(array.as_map().entries().clone());
            scan_array(&entries, subjects)
        }
        DataType::Dictionary(_, _) => array
            .as_any_dictionary_opt()
            .map_or(0, |d| scan_array(d.values(), subjects)),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, StructArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    #[test]
    fn finds_subjects_inside_compressed_nested_parquet() {
        let inner: ArrayRef = Arc::new(StringArray::from(vec!["{\"min\":\"bob@x\"}", "none"]));
        let nested = StructArray::from(vec![(Arc::new(Field::new("stats", DataType::Utf8, true)), inner)]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "add",
            nested.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(nested)]).expect("batch");
        let mut buffer = Vec::new();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(props)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let subjects = Subjects::new(&["bob@x".to_string()]);
        let mut report = Verification::default();
        let found = scan_object(
            "x.checkpoint.parquet",
            Bytes::from(buffer),
            &subjects,
            &mut report,
        );
        assert!(found >= 1, "found {found}");
        assert_eq!(report.parquet_files_decoded, 1);
        assert_eq!(
            scan_object("a.json", Bytes::from_static(b"no"), &subjects, &mut report),
            0
        );
    }

    /// Text read as dictionaries: a subject in the last of many batches of
    /// a dictionary-encoded column, and in a plain-encoded one, is found.
    #[test]
    fn finds_subjects_late_in_dictionary_and_plain_encoded_columns() {
        let rows = 20_000;
        let column = |subject_row: usize, prefix: &str| -> ArrayRef {
            Arc::new(StringArray::from(
                (0..rows)
                    .map(|i| match i == subject_row {
                        // Sorts inside the column's range: not a min/max statistic.
                        true => format!("{prefix}3@x"),
                        false => format!("{prefix}{}", i % 7),
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("dict", DataType::Utf8, true),
            Field::new("plain", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column(rows - 1, "v"), column(rows - 2, "w")])
            .expect("batch");
        let props = WriterProperties::builder()
            .set_column_dictionary_enabled("plain".into(), false)
            .build();
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(props)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let subjects = Subjects::new(&["v3@x".to_string(), "w3@x".to_string()]);
        let mut report = Verification::default();
        assert_eq!(
            scan_object("d.parquet", Bytes::from(buffer), &subjects, &mut report),
            2
        );
    }

    /// A value kept only in the footer (key-value metadata) is found too,
    /// and a file that is not Parquet at all is searched byte by byte.
    #[test]
    fn finds_subjects_in_parquet_footers_and_in_undecodable_files() {
        use parquet::file::metadata::KeyValue;
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let column: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1, 2]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).expect("batch");
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new("origin".into(), "bob@x".to_string())]))
            .build();
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(props)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let subjects = Subjects::new(&["bob@x".to_string()]);
        let mut report = Verification::default();
        assert_eq!(
            scan_object("f.parquet", Bytes::from(buffer), &subjects, &mut report),
            1
        );
        let garbage = Bytes::from_static(b"not parquet, says bob@x");
        assert_eq!(scan_object("g.parquet", garbage, &subjects, &mut report), 2);
    }
}
