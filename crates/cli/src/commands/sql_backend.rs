//! Where `silt sql` runs a script: the embedded engine over the warehouse,
//! or a running server (`--server`). Both print each statement's result as
//! soon as it has run, stop at the first failing statement and name it by
//! position and line when the script has several.

use std::io::Write;
use std::time::{Duration, Instant};

use silt_sql::{Engine, OutputFormat, SqlError, StatementOutput};
use silt_table::{ErrorKind, Warehouse};

use super::remote_sql::RemoteSql;
use crate::failure::Failure;

/// What runs the statements of `silt sql`.
pub(super) enum SqlBackend {
    /// The warehouse, opened in this process.
    Embedded(Engine),
    /// A running `silt serve`, one `POST /v1/sql` per statement.
    Remote(RemoteSql),
}

/// What a backend reports of each statement it ran, besides its printed
/// result (for the shell's `\timing`).
pub(super) type OnStatement<'a> = &'a mut dyn FnMut(Duration);

impl SqlBackend {
    /// The embedded engine over `warehouse`.
    pub(super) fn embedded(warehouse: &Warehouse) -> Self {
        SqlBackend::Embedded(Engine::new(warehouse.clone()))
    }

    /// The server at `server`, with the bearer `token`, if any.
    pub(super) fn remote(server: &str, token: Option<String>) -> Self {
        SqlBackend::Remote(RemoteSql::new(server, token))
    }

    /// Runs every `;`-separated statement of `script` in order, printing
    /// each result in `format`; `done` hears how long each statement took.
    ///
    /// Embedded, the script is parsed and planned whole first (a syntax or
    /// planning error anywhere commits nothing; see docs/cli.md); through a
    /// server each statement is sent once the one before it succeeded.
    pub(super) async fn run(
        &self,
        script: &str,
        format: OutputFormat,
        done: OnStatement<'_>,
    ) -> Result<(), Failure> {
        match self {
            SqlBackend::Embedded(engine) => {
                let script = engine.parse(script)?;
                let mut started = Instant::now();
                engine
                    .execute_script_each(script, |output| {
                        write_output(format, &output)?;
                        done(started.elapsed());
                        started = Instant::now();
                        Ok(())
                    })
                    .await?;
                Ok(())
            }
            SqlBackend::Remote(remote) => {
                let statements = silt_sql::split_script(script)?;
                let several = statements.len() > 1;
                for (index, statement) in statements.iter().enumerate() {
                    let started = Instant::now();
                    remote
                        .run(&statement.text, format)
                        .await
                        .map_err(|failure| match several {
                            true => failure.in_statement(index + 1, statement.line),
                            false => failure,
                        })?;
                    done(started.elapsed());
                }
                Ok(())
            }
        }
    }
}

/// Writes one statement's result to stdout in `format`.
pub(super) fn write_output(format: OutputFormat, output: &StatementOutput) -> Result<(), SqlError> {
    let bytes = silt_sql::encode(format, &output.schema, &output.batches)?;
    write_stdout(&bytes).map_err(|failure| SqlError::Execution(failure.to_string()))
}

/// Writes `bytes` to stdout and flushes (a shell's result shows at once).
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot write output: {e}")))
}
