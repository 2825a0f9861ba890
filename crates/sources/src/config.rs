//! `[[sources]]` of the server's TOML config: what each source connects to,
//! how its messages route to tables, and how they are batched. Parsing
//! checks everything it can without a network: a bad source stops the
//! server from starting with one line naming it.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::subject::pattern_problem;

/// The kinds of source this build has (named in the error for another).
pub const KINDS: &[&str] = &["nats"];

/// One `[[sources]]` entry.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name: `GET /v1/sources`, metrics and producer ids use it.
    pub name: String,
    /// The broker and its settings.
    pub kind: KindConfig,
}

/// A source's broker-specific settings (`kind = "…"`).
#[derive(Debug, Clone)]
pub enum KindConfig {
    /// `kind = "nats"`: a NATS JetStream durable pull consumer.
    Nats(NatsConfig),
}

impl KindConfig {
    /// The `kind` word.
    pub fn name(&self) -> &'static str {
        match self {
            KindConfig::Nats(_) => "nats",
        }
    }
}

/// How a message's payload holds rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// One JSON object per message.
    Json,
    /// Newline-delimited JSON objects.
    Ndjson,
}

/// Where a consumer that has never run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The stream's first message.
    All,
    /// Messages published from now on.
    New,
}

/// One `[[sources.routes]]`: messages whose subject matches go to `table`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Subject pattern (`*` one token, final `>` the rest).
    pub subject: String,
    /// The table the rows are appended to (it must exist).
    pub table: String,
}

/// `kind = "nats"` settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` (or `tls://…`), without credentials.
    pub url: String,
    /// The JetStream stream to consume.
    pub stream: String,
    /// Durable consumer name; default `silt-<source name>`.
    #[serde(default)]
    pub durable: Option<String>,
    /// The consumer's filter subject; default: the only route's subject,
    /// or the whole stream when there are several routes.
    #[serde(default)]
    pub subject: Option<String>,
    /// Subject → table routing; the first matching route wins.
    pub routes: Vec<Route>,
    /// Payload format.
    #[serde(default = "default_format")]
    pub format: PayloadFormat,
    /// Where a consumer that has never run starts.
    #[serde(default = "default_start")]
    pub start: Start,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<String>,
    /// User for user/password authentication.
    #[serde(default)]
    pub user: Option<String>,
    /// Password for `user`.
    #[serde(default)]
    pub password: Option<String>,
    /// Most messages in one batch (one commit per table).
    #[serde(default = "default_batch_messages")]
    pub max_batch_messages: usize,
    /// Most payload bytes in one batch.
    #[serde(default = "default_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Longest a batch waits to fill, in milliseconds.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// How long the broker waits for an ack before redelivering, in
    /// milliseconds (it must cover a commit).
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
}

fn default_format() -> PayloadFormat {
    PayloadFormat::Json
}
fn default_start() -> Start {
    Start::All
}
fn default_batch_messages() -> usize {
    1000
}
fn default_batch_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_linger_ms() -> u64 {
    100
}
fn default_ack_wait_ms() -> u64 {
    30_000
}

// Credentials never reach a log line through `{:?}`.
impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &self.url)
            .field("stream", &self.stream)
            .field("durable", &self.durable)
            .field("subject", &self.subject)
            .field("routes", &self.routes)
            .field("format", &self.format)
            .field("start", &self.start)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("user", &self.user.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl NatsConfig {
    /// The durable consumer's name.
    pub fn durable_name(&self, source: &str) -> String {
        self.durable.clone().unwrap_or_else(|| format!("silt-{source}"))
    }

    /// The consumer's filter subject (empty: the whole stream).
    pub fn filter_subject(&self) -> String {
        match (&self.subject, self.routes.as_slice()) {
            (Some(subject), _) => subject.clone(),
            (None, [only]) => only.subject.clone(),
            (None, _) => String::new(),
        }
    }

    /// Longest a batch waits to fill.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    fn check(&self, source: &str) -> Result<(), String> {
        let url = self.url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("url must look like nats://host:port, got {url:?}"));
        };
        if !matches!(scheme, "nats" | "tls") || rest.is_empty() {
            return Err("url must start with nats:// or tls:// and name a host".into());
        }
        if rest
            .split('/')
            .next()
            .is_some_and(|authority| authority.contains('@'))
        {
            // The URL is shown in logs and errors; credentials are not.
            return Err("url must not hold credentials; set token, or user and password".into());
        }
        if name_problem(&self.stream).is_some() {
            return Err(format!("stream {:?} is not a valid stream name", self.stream));
        }
        let durable = self.durable_name(source);
        if let Some(problem) = name_problem(&durable) {
            return Err(format!("durable {durable:?} {problem}"));
        }
        if let Some(subject) = &self.subject
            && let Some(problem) = pattern_problem(subject)
        {
            return Err(format!("subject {subject:?} {problem}"));
        }
        if self.routes.is_empty() {
            return Err("needs at least one [[sources.routes]] entry (subject → table)".into());
        }
        for route in &self.routes {
            if let Some(problem) = pattern_problem(&route.subject) {
                return Err(format!("route subject {:?} {problem}", route.subject));
            }
            if silt_table::is_internal_table(&route.table) {
                return Err(format!(
                    "route table '{}' is one of silt's internal tables",
                    route.table
                ));
            }
            silt_table::validate_table_name(&route.table)
                .map_err(|e| format!("route table {:?}: {e}", route.table))?;
        }
        match (&self.token, &self.user, &self.password) {
            (Some(token), None, None) if !token.is_empty() => {}
            (None, Some(user), Some(_)) if !user.is_empty() => {}
            (None, None, None) => {}
            _ => return Err("set either token, or user and password (both), or none".into()),
        }
        if self.max_batch_messages == 0 || self.max_batch_bytes == 0 {
            return Err("max_batch_messages and max_batch_bytes must be greater than 0".into());
        }
        if self.linger_ms == 0 || self.ack_wait_ms < 1000 {
            return Err("linger_ms must be at least 1 and ack_wait_ms at least 1000".into());
        }
        Ok(())
    }
}

/// Why `name` is not a valid NATS stream or consumer name, if it is not.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 255 {
        return Some("must have 1 to 255 characters");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Some("must not hold white space, '.', '*', '>', '/' or '\\'");
    }
    None
}

/// Parses every `[[sources]]` entry; the error is one line naming the
/// source (by name, or by position when it has none).
pub fn parse_sources(entries: &[toml::Table]) -> Result<Vec<SourceConfig>, String> {
    let mut names = HashSet::new();
    let mut sources = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let source =
            parse_source(entry).map_err(|reason| match entry.get("name").and_then(toml::Value::as_str) {
                Some(name) => format!("sources[{index}] '{name}': {reason}"),
                None => format!("sources[{index}]: {reason}"),
            })?;
        if !names.insert(source.name.clone()) {
            return Err(format!(
                "sources[{index}] '{}': another source has this name",
                source.name
            ));
        }
        sources.push(source);
    }
    Ok(sources)
}

fn parse_source(entry: &toml::Table) -> Result<SourceConfig, String> {
    let name = match entry.get("name") {
        Some(toml::Value::String(name)) => name.clone(),
        Some(_) => return Err("name must be a string".into()),
        None => return Err("needs a name".into()),
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("name must be 1 to 64 letters, digits, '_' or '-'".into());
    }
    let kind = match entry.get("kind") {
        Some(toml::Value::String(kind)) => kind.as_str(),
        Some(_) => return Err("kind must be a string".into()),
        None => return Err(format!("needs a kind (one of: {})", KINDS.join(", "))),
    };
    let mut rest = entry.clone();
    rest.remove("name");
    rest.remove("kind");
    let kind = match kind {
        "nats" => {
            let config: NatsConfig = toml::Value::Table(rest)
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            config.check(&name)?;
            KindConfig::Nats(config)
        }
        other => {
            return Err(format!(
                "unknown kind {other:?} (this build has: {})",
                KINDS.join(", ")
            ));
        }
    };
    Ok(SourceConfig { name, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<SourceConfig>, String> {
        #[derive(Deserialize)]
        struct File {
            sources: Vec<toml::Table>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        parse_sources(&file.sources)
    }

    const GOOD: &str = r#"
[[sources]]
name = "orders"
kind = "nats"
url = "nats://127.0.0.1:4222"
stream = "ORDERS"
token = "secret"
[[sources.routes]]
subject = "orders.>"
table = "orders"
"#;

    #[test]
    fn a_nats_source_parses_with_defaults() {
        let sources = parse(GOOD).expect("parses");
        let KindConfig::Nats(nats) = &sources[0].kind;
        assert_eq!(nats.durable_name("orders"), "silt-orders");
        assert_eq!(nats.filter_subject(), "orders.>");
        assert_eq!(nats.format, PayloadFormat::Json);
        assert_eq!(nats.start, Start::All);
        assert!(!format!("{nats:?}").contains("secret"));
    }

    #[test]
    fn bad_sources_are_refused_in_one_line_naming_them() {
        let cases = [
            (GOOD.replace("\"nats\"", "\"kafkaa\""), "unknown kind \"kafkaa\""),
            (
                GOOD.replace(
                    "[[sources.routes]]\nsubject = \"orders.>\"\ntable = \"orders\"\n",
                    "",
                ),
                "routes",
            ),
            (GOOD.replace("orders.>", "orders.>.x"), "route subject"),
            (
                GOOD.replace("table = \"orders\"", "table = \"_silt_dead_letters\""),
                "internal",
            ),
            (GOOD.replace("nats://127", "nats://u:p@127"), "credentials"),
            (GOOD.replace("token = \"secret\"", "user = \"u\""), "password"),
            (
                GOOD.replace("stream = \"ORDERS\"", "stream = \"ORDERS\"\nfromat = \"json\""),
                "fromat",
            ),
            (GOOD.replace("name = \"orders\"\n", ""), "needs a name"),
            (format!("{GOOD}{GOOD}"), "another source"),
            (GOOD.replace("token = \"secret\"", "start = \"middle\""), "middle"),
        ];
        for (text, want) in cases {
            let error = parse(&text).expect_err(want);
            assert!(error.contains(want), "{error}");
            assert!(error.starts_with("sources["), "{error}");
            assert!(!error.contains('\n'), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
