//! `silt sql`: where the statements come from (the argument, `-f FILE`,
//! standard input, or an interactive shell on a terminal) and running them
//! as one script on a [`SqlBackend`].

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use silt_sql::OutputFormat;
use silt_table::ErrorKind;

use super::shell;
use super::sql_backend::SqlBackend;
use crate::failure::Failure;

/// Where `silt sql` reads its statements.
pub(super) enum Input {
    /// A script: the argument, a file's text or standard input.
    Script(String),
    /// No statement and a terminal on standard input: the interactive shell.
    Shell,
}

impl Input {
    /// The statement argument, else `-f FILE`, else standard input when it
    /// is not a terminal (`silt sql < script.sql`), else the shell.
    pub(super) fn choose(sql: Option<String>, file: Option<PathBuf>) -> Result<Self, Failure> {
        if let Some(sql) = sql {
            return Ok(Input::Script(sql));
        }
        if let Some(path) = file {
            return std::fs::read_to_string(&path).map(Input::Script).map_err(|e| {
                let kind = match e.kind() {
                    std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                    _ => ErrorKind::InvalidInput,
                };
                Failure::new(kind, format!("cannot read {}: {e}", path.display()))
            });
        }
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Ok(Input::Shell);
        }
        let mut script = String::new();
        stdin.read_to_string(&mut script).map_err(|e| {
            Failure::new(
                ErrorKind::InvalidInput,
                format!("cannot read standard input: {e}"),
            )
        })?;
        Ok(Input::Script(script))
    }
}

/// Runs `input` on `backend`, printing results in `format`.
pub(super) async fn run(backend: &SqlBackend, format: OutputFormat, input: Input) -> Result<(), Failure> {
    match input {
        Input::Script(script) => backend.run(&script, format, &mut |_| {}).await,
        Input::Shell => shell::run(backend, format).await,
    }
}
