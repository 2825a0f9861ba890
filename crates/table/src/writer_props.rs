//! The Parquet writer properties of every file silt writes into a table.
//!
//! A table's subject columns (`silt.erasure.subject_columns`, the columns
//! that identify a data subject such as `email`) get a split-block bloom
//! filter in each row group, so an erasure opens only files that may hold a
//! subject (column statistics prune by range, the filter by value). The
//! filter is sized for a full row group and folded down when the file is
//! closed (parquet ≥ 57), so a small ingest commit pays a small filter.

use std::collections::{HashMap, HashSet};

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// The table property listing a table's subject columns (comma-separated).
pub const SUBJECT_COLUMNS_PROPERTY: &str = "silt.erasure.subject_columns";

/// False-positive rate of the subject columns' bloom filters: 1 in 100 row
/// groups without the subject is opened for nothing.
pub const SUBJECT_BLOOM_FPP: f64 = 0.01;

/// The subject columns named by `properties`, trimmed, without duplicates.
pub fn subject_columns(properties: &HashMap<String, String>) -> Vec<String> {
    let mut seen = HashSet::new();
    properties
        .get(SUBJECT_COLUMNS_PROPERTY)
        .map(|v| {
            v.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty() && seen.insert(c.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Writer properties for a table with `properties`: deltalake's defaults
/// (Snappy) plus a bloom filter on each subject column. Partition columns
/// are not in the files, so a filter on one is never written.
pub fn writer_properties(properties: &HashMap<String, String>) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("silt {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY);
    for column in subject_columns(properties) {
        let path = ColumnPath::from(column.as_str());
        builder = builder
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path, SUBJECT_BLOOM_FPP);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_columns_get_bloom_filters_and_others_do_not() {
        let properties = HashMap::from([(
            SUBJECT_COLUMNS_PROPERTY.to_string(),
            " email, user_id ,email,".to_string(),
        )]);
        assert_eq!(subject_columns(&properties), ["email", "user_id"]);
        let props = writer_properties(&properties);
        let email = props
            .bloom_filter_properties(&ColumnPath::from("email"))
            .expect("email has a bloom filter");
        assert_eq!(email.fpp(), SUBJECT_BLOOM_FPP);
        assert!(
            props
                .bloom_filter_properties(&ColumnPath::from("user_id"))
                .is_some()
        );
        assert!(
            props
                .bloom_filter_properties(&ColumnPath::from("amount"))
                .is_none()
        );
        assert_eq!(
            props.compression(&ColumnPath::from("amount")),
            Compression::SNAPPY
        );
        assert!(
            writer_properties(&HashMap::new())
                .bloom_filter_properties(&ColumnPath::from("email"))
                .is_none()
        );
    }
}
