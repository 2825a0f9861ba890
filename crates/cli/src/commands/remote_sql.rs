//! `silt sql --server URL`: each statement through `POST /v1/sql`, printed
//! like the embedded command prints it.

use std::io::Write;

use silt_sql::{OutputFormat, StatementOutput};
use silt_table::ErrorKind;

use super::print_outputs;
use super::remote::{self, NoDetail};
use crate::failure::Failure;

pub(super) async fn run(
    server: &str,
    token: Option<&str>,
    format: OutputFormat,
    sql: &str,
) -> Result<(), Failure> {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/sql", server.trim_end_matches('/'));
    for statement in silt_sql::split_statements(sql)? {
        // The table format is drawn here from Arrow; the others pass through.
        let accept = match format {
            OutputFormat::Table => "application/vnd.apache.arrow.stream",
            OutputFormat::Csv => "text/csv",
            OutputFormat::Json => "application/json",
            OutputFormat::Ndjson => "application/x-ndjson",
        };
        let request = client
            .post(&url)
            .header("accept", accept)
            .json(&serde_json::json!({ "sql": statement }));
        let body = remote::send(request, token, &url, NoDetail::Body).await?;
        if format == OutputFormat::Table {
            let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
                .map_err(|e| Failure::new(ErrorKind::Internal, format!("bad Arrow answer: {e}")))?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::new(ErrorKind::Internal, format!("bad Arrow answer: {e}")))?;
            print_outputs(format, &[StatementOutput { schema, batches }])?;
        } else {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&body)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot write output: {e}")))?;
        }
    }
    Ok(())
}
