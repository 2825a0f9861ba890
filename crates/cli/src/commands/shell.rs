//! `silt sql` on a terminal with no statement: an interactive shell, as
//! `psql` and `duckdb` have. Lines gather until one ends a statement with
//! `;`; a line starting with `\` is a shell command when no statement is
//! pending. Errors are printed and the shell goes on; Ctrl-C drops the line
//! being typed or stops the running statement, Ctrl-D (or `\q`) leaves.
//! History is kept in `<data dir>/silt/history` (`$XDG_DATA_HOME` or
//! `~/.local/share`), never in a warehouse.

use std::path::PathBuf;
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};
use silt_sql::OutputFormat;
use silt_table::ErrorKind;

use super::sql_backend::SqlBackend;
use crate::failure::Failure;

const PROMPT: &str = "silt> ";
const CONTINUE: &str = "  ..> ";
const HELP: &str = "\
statements end with ;   (they may span lines)
\\d           list tables
\\d NAME      columns of table NAME
\\timing      toggle (or \\timing on|off) printing each statement's time
\\?           this help
\\q           quit (also Ctrl-D); Ctrl-C drops the current line or statement
";

/// A line that is a shell command, not SQL.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Quit,
    Help,
    Tables,
    Describe(String),
    Timing(Option<bool>),
    Unknown(String),
}

impl Command {
    /// The command on `line` (which starts with `\`).
    fn parse(line: &str) -> Self {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default();
        let argument = words.next();
        match (name, argument) {
            ("\\q" | "\\quit", None) => Command::Quit,
            ("\\?" | "\\h" | "\\help", None) => Command::Help,
            ("\\d" | "\\dt", None) => Command::Tables,
            ("\\d", Some(table)) => Command::Describe(table.to_string()),
            ("\\timing", None) => Command::Timing(None),
            ("\\timing", Some("on")) => Command::Timing(Some(true)),
            ("\\timing", Some("off")) => Command::Timing(Some(false)),
            _ => Command::Unknown(line.trim().to_string()),
        }
    }
}

/// The shell's state between lines.
struct Shell<'a> {
    backend: &'a SqlBackend,
    format: OutputFormat,
    timing: bool,
}

/// Runs the shell until Ctrl-D or `\q`.
pub(super) async fn run(backend: &SqlBackend, format: OutputFormat) -> Result<(), Failure> {
    let config = Config::builder()
        .max_history_size(10_000)
        .and_then(|config| config.history_ignore_dups(true))
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot set up the line editor: {e}")))?
        .history_ignore_space(true)
        .build();
    let mut editor: Editor<(), DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot start the line editor: {e}")))?;
    let history = history_file();
    if let Some(path) = &history {
        // A missing history file is the first run; an unreadable one only
        // costs the old entries.
        let _ = editor.load_history(path);
    }
    let mut shell = Shell {
        backend,
        format,
        timing: false,
    };
    eprintln!(
        "silt {} shell; \\? for help, \\q or Ctrl-D to quit",
        env!("CARGO_PKG_VERSION")
    );
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() { PROMPT } else { CONTINUE };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                return Err(Failure::new(
                    ErrorKind::Internal,
                    format!("cannot read the terminal: {e}"),
                ));
            }
        };
        if pending.is_empty() && line.trim_start().starts_with('\\') {
            remember(&mut editor, history.as_ref(), line.trim());
            match Command::parse(&line) {
                Command::Quit => break,
                command => shell.command(command).await,
            }
            continue;
        }
        if pending.is_empty() && line.trim().is_empty() {
            continue;
        }
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if silt_sql::ends_statement(&pending) {
            let script = std::mem::take(&mut pending);
            remember(&mut editor, history.as_ref(), &script);
            shell.statements(&script).await;
        }
    }
    Ok(())
}

impl Shell<'_> {
    /// Runs `script`; prints its error (and goes on) or its timing.
    async fn statements(&mut self, script: &str) {
        let timing = self.timing;
        let mut report = |elapsed: Duration| {
            if timing {
                println!("Time: {:.3} ms", elapsed.as_secs_f64() * 1000.0);
            }
        };
        let run = self.backend.run(script, self.format, &mut report);
        // Dropping the statement's future stops it: a query stops reading,
        // a change that has not committed commits nothing, a request to a
        // server is abandoned (the server sees the connection close).
        tokio::select! {
            result = run => {
                if let Err(failure) = result {
                    eprintln!("error: {}", failure.one_line());
                }
            }
            _ = tokio::signal::ctrl_c() => eprintln!("cancelled"),
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Quit => {}
            Command::Help => eprint!("{HELP}"),
            Command::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                eprintln!("timing is {}", if self.timing { "on" } else { "off" });
            }
            Command::Tables => {
                self.statements(&format!(
                    "SELECT table_name AS name FROM information_schema.tables \
                     WHERE table_schema = '{}' ORDER BY table_name;",
                    silt_sql::SCHEMA
                ))
                .await;
            }
            Command::Describe(table) => {
                self.statements(&format!(
                    "SELECT column_name AS column, data_type AS type, is_nullable AS nullable \
                     FROM information_schema.columns WHERE table_schema = '{}' AND table_name = '{}' \
                     ORDER BY ordinal_position;",
                    silt_sql::SCHEMA,
                    table_name(&table).replace('\'', "''")
                ))
                .await;
            }
            Command::Unknown(line) => eprintln!("error: unknown command {line}; \\? lists the commands"),
        }
    }
}

/// The name `\d NAME` looks up: as SQL reads it, lowercase unless quoted.
fn table_name(argument: &str) -> String {
    match argument.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => argument.to_lowercase(),
    }
}

/// `<data dir>/silt/history`, its directory created; `None` without a data
/// dir (no `$HOME`) or when it cannot be created: the shell then keeps no
/// history rather than failing.
fn history_file() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("silt");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// Adds `entry` to the history and saves it at once, so a shell that is
/// killed keeps what was typed before.
fn remember(editor: &mut Editor<(), DefaultHistory>, history: Option<&PathBuf>, entry: &str) {
    if editor.add_history_entry(entry).unwrap_or(false)
        && let Some(path) = history
    {
        let _ = editor.save_history(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands_parse() {
        assert_eq!(Command::parse("\\q"), Command::Quit);
        assert_eq!(Command::parse("  \\d  "), Command::Tables);
        assert_eq!(Command::parse("\\d events"), Command::Describe("events".into()));
        assert_eq!(Command::parse("\\timing"), Command::Timing(None));
        assert_eq!(Command::parse("\\timing off"), Command::Timing(Some(false)));
        assert_eq!(
            Command::parse("\\timing maybe"),
            Command::Unknown("\\timing maybe".into())
        );
        assert_eq!(Command::parse("\\x"), Command::Unknown("\\x".into()));
    }

    #[test]
    fn a_described_name_reads_as_sql_reads_it() {
        assert_eq!(table_name("Events"), "events");
        assert_eq!(table_name("\"Mixed\""), "Mixed");
    }
}
