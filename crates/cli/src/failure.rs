//! The CLI's one error path: one line on stderr, an exit code by error kind.

use std::process::ExitCode;

use silt_table::ErrorKind;

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl ToString) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    /// This failure as that of statement `index` (1-based) of a script,
    /// starting on `line`; the kind (and so the exit code) stays.
    pub fn in_statement(self, index: usize, line: usize) -> Self {
        Self {
            kind: self.kind,
            message: format!("statement {index} (line {line}): {}", self.message),
        }
    }

    /// The message on one line, as `report` prints it after `error: `.
    pub fn one_line(&self) -> String {
        self.message.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Prints `error: …` on one line and returns the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.one_line());
        ExitCode::from(self.kind.exit_code())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<silt_table::TableError> for Failure {
    fn from(e: silt_table::TableError) -> Self {
        Failure::new(e.kind(), e)
    }
}

impl From<silt_sql::SqlError> for Failure {
    fn from(e: silt_sql::SqlError) -> Self {
        Failure::new(e.kind(), e)
    }
}

impl From<silt_ingest::IngestError> for Failure {
    fn from(e: silt_ingest::IngestError) -> Self {
        Failure::new(e.kind(), e)
    }
}

/// Logs go to stderr so stdout stays the result: off for one-shot commands
/// unless `RUST_LOG` asks, silt's own info lines for `silt serve`.
pub fn init_tracing(serving: bool) {
    let default = if serving {
        "warn,silt=info,silt_server=info,silt_ingest=info,silt_table=info,silt_erasure=info,silt_sources=info"
    } else {
        "off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
