//! How a request's rows change the table: appended (the default) or applied
//! as changes keyed by columns (CDC apply, SCD type 1: see
//! `silt_table::ApplyChanges`).

use arrow::datatypes::{DataType, Field, Schema};
use silt_table::deltalake::datafusion::logical_expr::{Expr, col, lit};

use crate::error::{IngestError, Result};

/// What a request does with its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IngestMode {
    /// Add the rows (the default).
    #[default]
    Append,
    /// Apply the rows as changes: each key ends up as its newest row says.
    Upsert(Upsert),
}

/// `mode=upsert`: keys, the sequence that orders a key's changes, and what
/// marks a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    /// Columns identifying a row.
    pub keys: Vec<String>,
    /// Column ordering a key's changes (in the table): a change applies only
    /// above the row's sequence and any tombstone's. `None`: the rows are in
    /// order; within a request the last of a key wins, and it always applies.
    pub sequence: Option<String>,
    /// Rows whose `column` holds `value` delete their key. The column need
    /// not be in the table (it is read, never written).
    pub delete: Option<DeleteMarker>,
}

/// A column and the text in it that marks a delete (`op` = `d` for Debezium).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteMarker {
    /// The column.
    pub column: String,
    /// The value, compared as text.
    pub value: String,
}

impl IngestMode {
    /// The mode a request's parameters ask for: `mode` (`append` or
    /// `upsert`), `keys` (comma-separated), `sequence`, `delete_column` and
    /// `delete_value` (default `d`). Parameters of upsert without
    /// `mode=upsert` are refused rather than ignored.
    pub fn from_params(
        mode: Option<&str>,
        keys: Option<&str>,
        sequence: Option<&str>,
        delete_column: Option<&str>,
        delete_value: Option<&str>,
    ) -> Result<Self> {
        let invalid = |m: &str| Err(IngestError::InvalidRequest(m.to_string()));
        match mode.unwrap_or("append") {
            "append" => {
                if keys.is_some() || sequence.is_some() || delete_column.is_some() || delete_value.is_some() {
                    return invalid("keys, sequence, delete_column and delete_value need mode=upsert");
                }
                Ok(IngestMode::Append)
            }
            "upsert" => {
                let keys: Vec<String> = keys
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect();
                if keys.is_empty() {
                    return invalid("mode=upsert needs keys=COLUMN[,COLUMN…]");
                }
                let delete = match (delete_column, delete_value) {
                    (Some(column), value) if !column.trim().is_empty() => Some(DeleteMarker {
                        column: column.trim().to_string(),
                        value: value.unwrap_or("d").to_string(),
                    }),
                    (None, Some(_)) => return invalid("delete_value needs delete_column"),
                    (Some(_), _) => return invalid("delete_column needs a column name"),
                    (None, None) => None,
                };
                let sequence = match sequence.map(str::trim) {
                    Some("") => return invalid("sequence needs a column name"),
                    other => other.map(str::to_string),
                };
                Ok(IngestMode::Upsert(Upsert {
                    keys,
                    sequence,
                    delete,
                }))
            }
            other => Err(IngestError::InvalidRequest(format!(
                "unknown mode '{}': use append or upsert",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

impl Upsert {
    /// The schema a request's rows are conformed to: the table's, plus the
    /// delete marker column (text) when the table does not have it.
    pub fn input_schema(&self, table: &Schema) -> Schema {
        match &self.delete {
            Some(marker) if table.field_with_name(&marker.column).is_err() => {
                let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new(&marker.column, DataType::Utf8, true));
                Schema::new_with_metadata(fields, table.metadata().clone())
            }
            _ => table.clone(),
        }
    }

    /// Refuses keys or a sequence the table does not have.
    pub fn check(&self, table_name: &str, table: &Schema) -> Result<()> {
        for column in self.keys.iter().chain(self.sequence.as_ref()) {
            if table.field_with_name(column).is_err() {
                return Err(IngestError::InvalidRequest(format!(
                    "mode=upsert: '{column}' is not a column of table '{table_name}'"
                )));
            }
        }
        if let Some(marker) = &self.delete
            && self.keys.contains(&marker.column)
        {
            return Err(IngestError::InvalidRequest(
                "mode=upsert: the delete column cannot be a key".to_string(),
            ));
        }
        Ok(())
    }

    /// The table columns an upsert writes: all the table's (the delete
    /// marker is only read).
    pub fn spec(
        &self,
        table: &Schema,
        transactions: Vec<silt_table::ProducerTxn>,
    ) -> silt_table::ApplyChanges {
        let columns = table.fields().iter().map(|f| f.name().clone()).collect();
        silt_table::ApplyChanges {
            keys: self.keys.clone(),
            sequence: self.sequence.clone(),
            delete_when: self.delete.as_ref().map(|m| -> Expr {
                // Text comparison: cast, so a boolean or numeric marker works too.
                silt_table::deltalake::datafusion::logical_expr::cast(col(m.column.as_str()), DataType::Utf8)
                    .eq(lit(m.value.clone()))
            }),
            columns: Some(columns),
            transactions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters() {
        assert_eq!(
            IngestMode::from_params(None, None, None, None, None).expect("append"),
            IngestMode::Append
        );
        let upsert = IngestMode::from_params(Some("upsert"), Some("id, k"), Some("seq"), Some("op"), None)
            .expect("upsert");
        assert_eq!(
            upsert,
            IngestMode::Upsert(Upsert {
                keys: vec!["id".into(), "k".into()],
                sequence: Some("seq".into()),
                delete: Some(DeleteMarker {
                    column: "op".into(),
                    value: "d".into()
                }),
            })
        );
        for bad in [
            IngestMode::from_params(Some("upsert"), None, None, None, None),
            IngestMode::from_params(Some("merge"), Some("id"), None, None, None),
            IngestMode::from_params(None, Some("id"), None, None, None),
            IngestMode::from_params(Some("upsert"), Some("id"), None, None, Some("x")),
            IngestMode::from_params(Some("upsert"), Some("id"), Some(""), None, None),
        ] {
            assert!(matches!(bad, Err(IngestError::InvalidRequest(_))), "{bad:?}");
        }
    }
}
