//! `silt sql` as psql and duckdb users drive it (issue 17, part 3): scripts
//! from `-f FILE` and standard input, embedded and through `--server`, run
//! in order and stop at the first failing statement, named by position and
//! line; and the interactive shell, driven through a real pseudo-terminal.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{Run, Silt, python, silt_bin};
use crate::server::Server;

/// A script whose fourth statement (line 6) fails while it runs (NOT NULL),
/// after a query whose result must already be printed, and before an
/// INSERT that must not run.
const SCRIPT: &str = "\
CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR);
INSERT INTO t VALUES (1, 'a');

SELECT count(*) AS n FROM t;
-- the bad one:
INSERT INTO t
  VALUES (NULL, 'x');
INSERT INTO t VALUES (2, 'b');
";

fn assert_stopped_at_statement_4(run: &Run) {
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("error: statement 4 (line 6): ") && run.stderr.contains("NOT NULL"),
        "{}",
        run.stderr
    );
    // The query before the failure printed its result.
    assert!(
        run.stdout.contains("| n |") && run.stdout.contains("| 1 |"),
        "{}",
        run.stdout
    );
}

#[test]
fn scripts_from_a_file_and_stdin_run_in_order_and_stop_at_the_first_error() {
    let silt = Silt::new();
    let file = silt.file("script.sql", SCRIPT.as_bytes());
    let run = silt.run(&["sql", "-f", &file]);
    assert_stopped_at_statement_4(&run);
    // Nothing after the failing statement ran: one row, versions 0 and 1.
    assert_eq!(silt.count("t", None), 1);
    assert_eq!(silt.version("t"), 1);

    let piped = silt.run_with_stdin(
        &["sql", "--format", "csv"],
        "INSERT INTO t VALUES (3, 'c');\nSELECT id FROM t ORDER BY id;\n",
    );
    assert_eq!(piped.code, Some(0), "{}", piped.stderr);
    assert!(piped.stdout.ends_with("id\n1\n3\n"), "{}", piped.stdout);

    // Embedded, a script is parsed whole first: a syntax error on line 3
    // names its statement and nothing before it runs.
    let syntax = silt.run_with_stdin(&["sql"], "INSERT INTO t VALUES (4, 'd');\n\nSELEC 1;\n");
    assert_eq!(syntax.code, Some(4), "{}", syntax.stderr);
    assert!(
        syntax
            .stderr
            .starts_with("error: statement 2 (line 3): syntax error"),
        "{}",
        syntax.stderr
    );
    assert_eq!(silt.count("t", None), 2);

    let missing = silt.run(&["sql", "-f", &silt.scratch("nope.sql").to_string_lossy()]);
    assert_eq!(missing.code, Some(3), "{}", missing.stderr);
    assert!(
        missing.stderr.starts_with("error: cannot read "),
        "{}",
        missing.stderr
    );
}

#[test]
fn scripts_through_the_server_stop_at_the_first_error_with_the_embedded_exit_code() {
    let silt = Silt::new();
    let server = Server::start(&silt);
    let url = server.http_url();
    let file = silt.file("script.sql", SCRIPT.as_bytes());
    let run = silt.run(&["sql", "--server", &url, "-f", &file]);
    assert_stopped_at_statement_4(&run);
    assert_eq!(silt.count("t", None), 1);

    let piped = silt.run_with_stdin(
        &["sql", "--server", &url, "--format", "csv"],
        "SELECT id FROM t;\nSELECT nope FROM t;\nINSERT INTO t VALUES (9, 'z');\n",
    );
    assert_eq!(piped.code, Some(4), "{}", piped.stderr);
    assert!(
        piped.stderr.starts_with("error: statement 2 (line 2): "),
        "{}",
        piped.stderr
    );
    assert_eq!(piped.stdout, "id\n1\n");
    assert_eq!(silt.count("t", None), 1);
}

/// Runs `silt args…` in a pseudo-terminal through `pty_session.py`, with
/// the history under `data_home`; returns the session document.
fn pty_session(silt: &Silt, data_home: &Path, args: &[&str], steps: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/pty_session.py");
    let out = Command::new(python())
        .arg(script)
        .arg(steps.to_string())
        .arg("--")
        .arg(silt_bin())
        .args(args)
        .envs(silt.env())
        .env("XDG_DATA_HOME", data_home)
        .env_remove("SILT_FORMAT")
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let session: Value = serde_json::from_slice(&out.stdout).expect("session JSON");
    assert!(
        session["failed"].is_null(),
        "step {} did not show what it expected; the terminal showed:\n{}",
        session["failed"],
        session["output"].as_str().unwrap_or_default()
    );
    session
}

/// The steps of a shell session over table `t` (one row, id 1): a
/// statement over three lines, `\d`, `\d t`, `\timing`, an error and then
/// a good statement, Ctrl-C on a half-typed line and on a running query,
/// and Ctrl-D.
fn shell_steps() -> Value {
    serde_json::json!([
        {"expect": "silt> "},
        {"send": "SELECT\r", "expect": "..> "},
        {"send": "  count(*) AS rows_in_t\r", "expect": "..> "},
        {"send": "FROM t;\r", "expect": "silt> "},
        {"send": "\\d\r", "expect": "silt> "},
        {"send": "\\d t\r", "expect": "silt> "},
        {"send": "\\timing\r", "expect": "silt> "},
        {"send": "SELECT 40 + 2 AS answer;\r", "expect": "silt> "},
        {"send": "\\timing off\r", "expect": "silt> "},
        {"send": "SELECT nope FROM t;\r", "expect": "silt> "},
        {"send": "SELECT 'after the error' AS still;\r", "expect": "silt> "},
        {"send": "SELECT 'never run'", "pause": 0.3},
        {"send": "\u{3}", "expect": "silt> "},
        {"send": "SELECT sum(value) FROM range(100000000000);\r", "pause": 1.5},
        {"send": "\u{3}", "expect": "silt> "},
        {"send": "SELECT 'alive' AS state;\r", "expect": "silt> "},
        {"send": "\u{4}"}
    ])
}

fn assert_shell_session(session: &Value, data_home: &Path) {
    let steps: Vec<&str> = session["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect();
    assert_eq!(session["exit"], 0, "{}", session["output"]);
    assert!(
        steps[3].contains("rows_in_t") && steps[3].contains("| 1 "),
        "{}",
        steps[3]
    );
    assert!(
        steps[4].contains("| name |") && steps[4].contains("| t "),
        "{}",
        steps[4]
    );
    assert!(
        steps[5].contains("| id ") && steps[5].contains("BIGINT"),
        "{}",
        steps[5]
    );
    assert!(
        steps[5].contains("| name ") && steps[5].contains("STRING"),
        "{}",
        steps[5]
    );
    assert!(steps[6].contains("timing is on"), "{}", steps[6]);
    assert!(
        steps[7].contains("| 42 ") && steps[7].contains("Time: "),
        "{}",
        steps[7]
    );
    assert!(
        steps[9].contains("error: ") && steps[9].contains("nope"),
        "{}",
        steps[9]
    );
    assert!(!steps[9].contains("Time: "), "{}", steps[9]);
    assert!(steps[10].contains("after the error"), "{}", steps[10]);
    assert!(steps[14].contains("cancelled"), "{}", steps[14]);
    assert!(steps[15].contains("alive"), "{}", steps[15]);
    let output = session["output"].as_str().unwrap_or_default();
    assert!(!output.contains("| never run"), "{output}");

    // History: the whole multi-line statement is one entry; the cancelled
    // line is not there.
    let history = std::fs::read_to_string(data_home.join("silt/history")).expect("history file written");
    assert!(history.contains("SELECT"), "{history}");
    assert!(history.contains("rows_in_t"), "{history}");
    assert!(history.contains("\\d t"), "{history}");
    assert!(!history.contains("never run"), "{history}");
}

#[test]
fn the_interactive_shell_runs_statements_and_commands_on_a_terminal() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR); INSERT INTO t VALUES (1, 'a')",
    ]);
    let data_home = silt.scratch("data-home");
    let session = pty_session(&silt, &data_home, &["sql"], &shell_steps());
    assert_shell_session(&session, &data_home);
    // The history lives in the user's data dir, never in the warehouse.
    assert!(!silt.warehouse().join("history").exists());

    // A second session reads the first one's history: Up brings back the
    // last statement.
    let again = pty_session(
        &silt,
        &data_home,
        &["sql"],
        &serde_json::json!([
            {"expect": "silt> "},
            {"send": "\u{1b}[A", "expect": "alive"},
            {"send": "\r", "expect": "silt> "},
            {"send": "\\q\r"}
        ]),
    );
    assert_eq!(again["exit"], 0, "{}", again["output"]);
    assert!(
        again["steps"][2].as_str().unwrap_or_default().contains("| alive"),
        "{}",
        again["output"]
    );
}

#[test]
fn the_interactive_shell_works_through_the_server() {
    let silt = Silt::new();
    silt.ok(&[
        "sql",
        "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR); INSERT INTO t VALUES (1, 'a')",
    ]);
    let server = Server::start(&silt);
    let data_home = silt.scratch("data-home");
    let session = pty_session(
        &silt,
        &data_home,
        &["sql", "--server", &server.http_url()],
        &shell_steps(),
    );
    assert_shell_session(&session, &data_home);
}
