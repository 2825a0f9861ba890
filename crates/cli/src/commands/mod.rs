//! One module per subcommand; `run` builds the runtime and dispatches.

mod erase;
mod ingest;
mod progress;
mod remote;
mod remote_ingest;
mod remote_sql;
mod serve;
mod shell;
mod sql;
mod sql_backend;
mod table;

use std::io::Write;

use silt_sql::{OutputFormat, StatementOutput};
use silt_table::{ErrorKind, Warehouse};

use crate::args::{Cli, Command};
use crate::failure::Failure;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    // Embedded statements are planned on these threads (and the one that
    // blocks on them): their stacks must hold the deepest statement
    // silt-sql's limits admit.
    std::thread::Builder::new()
        .name("silt-main".into())
        .stack_size(silt_sql::QUERY_STACK_BYTES)
        .spawn(move || run_on_runtime(cli))
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot start the main thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(Failure::new(ErrorKind::Internal, "the command panicked")))
}

fn run_on_runtime(cli: Cli) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(silt_sql::QUERY_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot start runtime: {e}")))?;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sql {
                warehouse,
                format,
                sql,
                file,
                remote,
            } => {
                let input = sql::Input::choose(sql, file)?;
                match remote.server {
                    Some(server) => {
                        let backend = sql_backend::SqlBackend::remote(&server, remote.token);
                        sql::run(&backend, format.format, input).await
                    }
                    None => {
                        let warehouse = open(&warehouse.warehouse)?;
                        let _suppression = suppression(&warehouse).await?;
                        let backend = sql_backend::SqlBackend::embedded(&warehouse);
                        sql::run(&backend, format.format, input).await
                    }
                }
            }
            Command::Ingest {
                warehouse,
                table,
                files,
                format,
                create,
                evolve,
                upsert,
                remote,
                producer_id,
            } => {
                let mode = upsert.mode()?;
                if let Some(server) = &remote.server {
                    let target = remote_ingest::Target {
                        server,
                        token: remote.token.as_deref(),
                        producer_id: producer_id.as_deref(),
                    };
                    let flags = remote_ingest::Flags {
                        create,
                        evolve,
                        upsert: &upsert,
                    };
                    return remote_ingest::run(&target, &table, &files, format.as_deref(), flags).await;
                }
                if evolve {
                    return Err(Failure::new(
                        ErrorKind::Unsupported,
                        "--evolve needs --server (embedded ingest keeps the table schema)",
                    ));
                }
                let warehouse = open(&warehouse.warehouse)?;
                let _suppression = suppression(&warehouse).await?;
                ingest::run(&warehouse, &table, &files, format.as_deref(), create, mode).await
            }
            Command::Serve {
                warehouse,
                http,
                flight,
                pg,
                config,
            } => serve::run(warehouse.warehouse, http, flight, pg, config).await,
            Command::Erase {
                warehouse,
                subjects,
                tables,
                purge,
                wait,
                request_id,
                remote,
            } => {
                let args = erase::EraseArgs {
                    subjects,
                    tables,
                    purge,
                    wait,
                    request_id,
                };
                match &remote.server {
                    Some(server) => erase::run_remote(server, remote.token.as_deref(), args).await,
                    None => erase::run_embedded(&open(&warehouse.warehouse)?, args).await,
                }
            }
            Command::Table {
                warehouse,
                format,
                action,
            } => table::run(&open(&warehouse.warehouse)?, format.format, action).await,
        }
    });
    // Tasks still running (a server past its drain timeout) are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn open(location: &str) -> Result<Warehouse, Failure> {
    Ok(Warehouse::open(location)?)
}

/// Erased subjects stay erased in embedded writes too: when the warehouse
/// has its erasure key file (the secrets `silt erase` and a server without
/// `[erasure]` config use), the ledger's subjects are suppressed while the
/// returned service lives. Without the file no erasure ever ran here with
/// those secrets, so there is nothing to suppress.
async fn suppression(warehouse: &Warehouse) -> Result<Option<silt_erasure::Erasure>, Failure> {
    let Ok(root) = warehouse.root().to_file_path() else {
        return Ok(None);
    };
    if !root.join(silt_erasure::KEY_FILE).is_file() {
        return Ok(None);
    }
    let erasure = silt_erasure::Erasure::open(warehouse.clone(), silt_erasure::ErasureConfig::default())?;
    erasure.load_suppression().await?;
    Ok(Some(erasure))
}

/// Writes results to stdout in `format`.
pub(crate) fn print_outputs(format: OutputFormat, outputs: &[StatementOutput]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    for output in outputs {
        let bytes = silt_sql::encode(format, &output.schema, &output.batches)?;
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot write output: {e}")))?;
    }
    Ok(())
}
