//! `SHOW CREATE TABLE t`: the statement that makes a table like `t` (its
//! columns with SQL type names and NOT NULL, partitioning, CHECK
//! constraints, properties), or a view's `CREATE VIEW`. The text parses back
//! into the same table: identifiers are back-quoted, strings escaped.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use silt_table::{CONSTRAINT_PREFIX, TableError, Warehouse};

use crate::ddl::sql_type_name;
use crate::error::{Result, SqlError};

/// Properties that describe the Delta protocol rather than the table: a
/// CREATE TABLE sets them itself from what the table uses.
const PROTOCOL_PROPERTIES: &[&str] = &["delta.minReaderVersion", "delta.minWriterVersion"];

/// The one-row answer (`createtab_stmt`, Spark's column name) for `name`.
pub(crate) async fn show_create(warehouse: &Warehouse, name: &str) -> Result<RecordBatch> {
    let text = match warehouse.table(name).await {
        Ok(table) => {
            let schema = table.schema()?;
            let partitions = table.partition_columns()?;
            let mut properties: Vec<(String, String)> = table.properties()?.into_iter().collect();
            properties.sort();
            create_table_text(name, &schema, &partitions, &properties)
        }
        Err(TableError::NotFound { .. }) => match warehouse.view(name).await? {
            Some(view) => format!("CREATE VIEW {} AS {}", quote_ident(name), view.query),
            None => return Err(SqlError::NotFound(format!("table '{name}' not found"))),
        },
        Err(error) => return Err(error.into()),
    };
    let schema = Arc::new(Schema::new(vec![Field::new(
        "createtab_stmt",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text]))])
        .map_err(|e| SqlError::Execution(e.to_string()))
}

fn create_table_text(
    name: &str,
    schema: &Schema,
    partitions: &[String],
    properties: &[(String, String)],
) -> String {
    let mut lines: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| {
            let not_null = if field.is_nullable() { "" } else { " NOT NULL" };
            format!(
                "  {} {}{not_null}",
                quote_ident(field.name()),
                sql_type_name(field.data_type())
            )
        })
        .collect();
    for (key, expression) in properties {
        if let Some(constraint) = key.strip_prefix(CONSTRAINT_PREFIX) {
            lines.push(format!(
                "  CONSTRAINT {} CHECK ({expression})",
                quote_ident(constraint)
            ));
        }
    }
    let mut text = format!("CREATE TABLE {} (\n{}\n)", quote_ident(name), lines.join(",\n"));
    if !partitions.is_empty() {
        let columns: Vec<String> = partitions.iter().map(|c| quote_ident(c)).collect();
        text.push_str(&format!("\nPARTITIONED BY ({})", columns.join(", ")));
    }
    let kept: Vec<String> = properties
        .iter()
        .filter(|(key, _)| {
            !key.starts_with(CONSTRAINT_PREFIX) && !PROTOCOL_PROPERTIES.contains(&key.as_str())
        })
        .map(|(key, value)| format!("  {} = {}", quote_string(key), quote_string(value)))
        .collect();
    if !kept.is_empty() {
        text.push_str(&format!("\nTBLPROPERTIES (\n{}\n)", kept.join(",\n")));
    }
    text
}

/// `name` back-quoted (a back quote inside doubled), so any column name
/// reads back as written, case included.
fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_columns_partitions_constraints_and_properties() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Day", DataType::Date32, true),
        ]);
        let properties = vec![
            ("delta.constraints.positive".to_string(), "id > 0".to_string()),
            ("delta.minWriterVersion".to_string(), "3".to_string()),
            ("owner".to_string(), "it's me".to_string()),
        ];
        let text = create_table_text("t", &schema, &["Day".to_string()], &properties);
        assert_eq!(
            text,
            "CREATE TABLE `t` (\n  `id` BIGINT NOT NULL,\n  `Day` DATE,\n  CONSTRAINT `positive` CHECK (id > 0)\n)\n\
             PARTITIONED BY (`Day`)\nTBLPROPERTIES (\n  'owner' = 'it''s me'\n)"
        );
    }

    /// The text of SHOW CREATE TABLE, run as a statement, makes a table
    /// with the same columns, nullability, partitioning, constraints and
    /// properties.
    #[tokio::test(flavor = "multi_thread")]
    async fn show_create_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(&dir.path().to_string_lossy()).expect("warehouse");
        let engine = crate::Engine::new(warehouse.clone());
        engine
            .execute(
                "CREATE TABLE orig (id BIGINT NOT NULL, `Mixed Case` STRING, amount DECIMAL(12,3), \
                 at TIMESTAMP, ok BOOLEAN, day DATE, CONSTRAINT pos CHECK (id > 0)) PARTITIONED BY (day) \
                 TBLPROPERTIES ('silt.erasure.subject_columns' = 'Mixed Case', 'note' = 'a ''quoted'' value')",
            )
            .await
            .expect("create");
        let shown = engine.execute("SHOW CREATE TABLE orig").await.expect("show");
        let text = shown[0].batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text")
            .value(0)
            .replacen("`orig`", "`copy`", 1);
        engine.execute(&text).await.expect("the shown statement runs");
        let (orig, copy) = (
            warehouse.table("orig").await.expect("orig"),
            warehouse.table("copy").await.expect("copy"),
        );
        assert_eq!(orig.schema().expect("schema"), copy.schema().expect("schema"));
        assert_eq!(
            orig.partition_columns().expect("partitions"),
            copy.partition_columns().expect("partitions")
        );
        assert_eq!(
            orig.properties().expect("props"),
            copy.properties().expect("props")
        );
    }
}
