//! One log line per SQL statement, over HTTP or Flight SQL, with its literals
//! redacted by [`silt_sql::redact_literals`]. Operators see which statement
//! ran, for which role, how long it took and how it ended; the log never holds
//! the values a statement carried (an e-mail address in a `WHERE` would be
//! personal data in a file no erasure reaches).

use std::time::Instant;

use crate::auth::Role;
use crate::error::ApiError;

/// A statement being served; [`StatementLog::finish`] writes its line.
pub(crate) struct StatementLog {
    protocol: &'static str,
    command: &'static str,
    statement: String,
    started: Instant,
}

impl StatementLog {
    /// Starts the clock for `sql`, received over `protocol` (`http`,
    /// `flight`) as `command` (`sql`, `statement_query`, `prepared_update`…).
    pub(crate) fn start(protocol: &'static str, command: &'static str, sql: &str) -> Self {
        Self {
            protocol,
            command,
            statement: silt_sql::redact_literals(sql),
            started: Instant::now(),
        }
    }

    /// Logs the statement at info level: the role it needs (when it could be
    /// told), the milliseconds until its answer started, and `ok` or the
    /// error's kind (`invalid-input`, `forbidden`…) — never the error's
    /// text, which may quote a value.
    pub(crate) fn finish(self, required_role: Option<Role>, error: Option<&ApiError>) {
        tracing::info!(
            protocol = self.protocol,
            command = self.command,
            statement = self.statement,
            required_role = required_role.map(Role::as_str),
            ms = self.started.elapsed().as_millis() as u64,
            outcome = if error.is_some() { "error" } else { "ok" },
            error = error.map(|e| e.kind.slug()),
            "sql statement"
        );
    }
}
