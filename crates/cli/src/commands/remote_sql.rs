//! `silt sql --server URL`: each statement through `POST /v1/sql`, printed
//! like the embedded command prints it.

use silt_sql::{OutputFormat, StatementOutput};
use silt_table::ErrorKind;

use super::progress;
use super::remote::{self, NoDetail};
use super::sql_backend::{write_output, write_stdout};
use crate::failure::Failure;

/// How long a statement runs before a spinner says it is still running.
const SPINNER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A server that runs statements, and the token to show it.
pub(super) struct RemoteSql {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl RemoteSql {
    /// The SQL endpoint of the server at `server`.
    pub(super) fn new(server: &str, token: Option<String>) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: format!("{}/v1/sql", server.trim_end_matches('/')),
            token,
        }
    }

    /// Sends one statement and prints its answer in `format`.
    pub(super) async fn run(&self, statement: &str, format: OutputFormat) -> Result<(), Failure> {
        // The table format is drawn here from Arrow; the others pass through.
        let accept = match format {
            OutputFormat::Table => "application/vnd.apache.arrow.stream",
            OutputFormat::Csv => "text/csv",
            OutputFormat::Json => "application/json",
            OutputFormat::Ndjson => "application/x-ndjson",
        };
        let request = self
            .client
            .post(&self.url)
            .header("accept", accept)
            .json(&serde_json::json!({ "sql": statement }));
        let send = remote::send(request, self.token.as_deref(), &self.url, NoDetail::Body);
        tokio::pin!(send);
        // A statement that takes a while (OPTIMIZE, a big query) shows a
        // spinner on a terminal; a quick one shows nothing.
        let body = tokio::select! {
            body = &mut send => body,
            () = tokio::time::sleep(SPINNER_AFTER) => {
                let _spinner = progress::Spinner::start("waiting for the server");
                send.await
            }
        }?;
        if format != OutputFormat::Table {
            return write_stdout(&body);
        }
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
            .map_err(|e| Failure::new(ErrorKind::Internal, format!("bad Arrow answer: {e}")))?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::new(ErrorKind::Internal, format!("bad Arrow answer: {e}")))?;
        Ok(write_output(format, &StatementOutput { schema, batches })?)
    }
}
