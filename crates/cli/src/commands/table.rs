//! `silt table list|describe|history`.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use silt_sql::{Engine, OutputFormat, StatementOutput};
use silt_table::{ErrorKind, Warehouse};

use super::print_outputs;
use crate::args::TableAction;
use crate::failure::Failure;

pub(super) async fn run(
    warehouse: &Warehouse,
    format: OutputFormat,
    action: TableAction,
) -> Result<(), Failure> {
    match action {
        TableAction::List => {
            let names = warehouse.list_tables().await?;
            let batch = string_batch(&[("name", names)])?;
            print_outputs(
                format,
                &[StatementOutput {
                    schema: batch.schema(),
                    batches: vec![batch],
                }],
            )
        }
        TableAction::History { table, limit } => {
            silt_table::validate_table_name(&table)?;
            let limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
            let outputs = Engine::new(warehouse.clone())
                .execute(&format!("DESCRIBE HISTORY {table}{limit}"))
                .await?;
            print_outputs(format, &outputs)
        }
        TableAction::Describe { table } => describe(warehouse, format, &table).await,
    }
}

async fn describe(warehouse: &Warehouse, format: OutputFormat, name: &str) -> Result<(), Failure> {
    let table = warehouse.table(name).await?;
    let schema = table.schema()?;
    let partitions = table.partition_columns()?;
    let properties = table.properties()?;
    let (files, bytes) = table.file_stats()?;
    if format == OutputFormat::Json {
        let doc = serde_json::json!({
            "name": name,
            "version": table.version(),
            // `type` stays Arrow's name (scripts parse it); `sql_type` is
            // the declared SQL type, as the text form shows.
            "columns": schema.fields().iter().map(|f| serde_json::json!({
                "name": f.name(), "type": f.data_type().to_string(),
                "sql_type": silt_sql::sql_type_name(f.data_type()), "nullable": f.is_nullable(),
            })).collect::<Vec<_>>(),
            "partition_columns": partitions,
            "properties": properties,
            "files": files,
            "bytes": bytes,
        });
        println!("{doc}");
        return Ok(());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            schema.fields().iter().map(|f| f.name().clone()),
        )),
        Arc::new(StringArray::from_iter_values(
            schema
                .fields()
                .iter()
                .map(|f| silt_sql::sql_type_name(f.data_type())),
        )),
        Arc::new(BooleanArray::from_iter(
            schema.fields().iter().map(|f| Some(f.is_nullable())),
        )),
        Arc::new(BooleanArray::from_iter(
            schema
                .fields()
                .iter()
                .map(|f| Some(partitions.contains(f.name()))),
        )),
    ];
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("nullable", DataType::Boolean, false),
        Field::new("partition", DataType::Boolean, false),
    ]));
    let batch =
        RecordBatch::try_new(out_schema, columns).map_err(|e| Failure::new(ErrorKind::Internal, e))?;
    let mut props: Vec<(String, String)> = properties.into_iter().collect();
    props.sort();
    let detail = string_batch(&[
        (
            "property",
            [
                vec!["version".to_string(), "files".into(), "bytes".into()],
                props.iter().map(|p| p.0.clone()).collect(),
            ]
            .concat(),
        ),
        (
            "value",
            [
                vec![table.version().to_string(), files.to_string(), bytes.to_string()],
                props.into_iter().map(|p| p.1).collect(),
            ]
            .concat(),
        ),
    ])?;
    print_outputs(
        format,
        &[
            StatementOutput {
                schema: batch.schema(),
                batches: vec![batch],
            },
            StatementOutput {
                schema: detail.schema(),
                batches: vec![detail],
            },
        ],
    )
}

fn string_batch(columns: &[(&str, Vec<String>)]) -> Result<RecordBatch, Failure> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, values)| Arc::new(StringArray::from_iter_values(values.iter())) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| Failure::new(ErrorKind::Internal, e))
}
