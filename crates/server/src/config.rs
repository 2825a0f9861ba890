//! The server's optional TOML configuration (`silt serve --config FILE`);
//! its JSON Schema is `schemas/config.schema.json`.

use std::path::Path;

use serde::Deserialize;

use crate::auth::Role;
use crate::error::ServerError;

/// Everything `--config` can set. Every field has a default, so an empty
/// file (or none) is a valid configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bearer tokens and their roles.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Ingest limits and grouping.
    #[serde(default)]
    pub ingest: IngestSection,
    /// Query limits.
    #[serde(default)]
    pub sql: SqlSection,
    /// GDPR/CCPA erasure secrets.
    #[serde(default)]
    pub erasure: ErasureSection,
    /// Process lifecycle.
    #[serde(default)]
    pub server: ServerSection,
    /// The Postgres wire endpoint.
    #[serde(default)]
    pub pg: PgSection,
    /// `[[sources]]` as written; [`Config::parse`] checks them into
    /// [`Config::sources`] and empties this (it may hold credentials).
    #[serde(default, rename = "sources")]
    source_entries: Vec<toml::Table>,
    /// Pull sources (brokers) feeding tables, checked.
    #[serde(skip)]
    pub sources: Vec<silt_sources::SourceConfig>,
}

/// `[pg]`: TLS on the Postgres wire endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PgSection {
    /// PEM file with the server's certificate chain; with `tls_key`,
    /// clients that ask for TLS (`sslmode=prefer`, `require`,
    /// `verify-full`) get it.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<std::path::PathBuf>,
    /// Refuse clients that do not use TLS (needs `tls_cert` and `tls_key`).
    pub require_tls: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// After SIGTERM/SIGINT, how long in-flight requests and queued commits
    /// may take before the process exits anyway, in milliseconds.
    pub drain_timeout_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            drain_timeout_ms: 30_000,
        }
    }
}

/// `[erasure]`. Unset secrets come from `<warehouse>/_silt/erasure.key`
/// (generated, mode 0600); an object-store warehouse needs both set.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErasureSection {
    /// HMAC-SHA256 secret for subject hashes and certificate signatures.
    pub secret: Option<String>,
    /// AES-256-GCM key (64 hex digits) sealing pending requests' subjects.
    pub key: Option<String>,
    /// Pause after each step of a table's erasure, in milliseconds
    /// (throttling; crash tests use it to kill the server mid-erasure).
    pub step_delay_ms: u64,
}

// Secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for ErasureSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErasureSection")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .field("step_delay_ms", &self.step_delay_ms)
            .finish()
    }
}

/// `[sql]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlSection {
    /// Longest a statement may run, in milliseconds (a request may lower it).
    pub statement_timeout_ms: u64,
    /// Most rows one answer carries (a request may lower it).
    pub max_rows: u64,
    /// Longest SQL text accepted, in bytes (400 above).
    pub max_statement_bytes: usize,
    /// Deepest expression accepted: operators chained without a comma, plus
    /// the brackets around them (400 above).
    pub max_expression_depth: usize,
    /// Statements one role may run at once, over every protocol (429 above).
    pub max_concurrent_statements: usize,
    /// Memory all running statements may hold together, in bytes; 0 means
    /// unbounded. Operators that can spill do; others fail with 400.
    pub memory_limit_bytes: usize,
    /// Threads that plan and run statements, apart from the ones that answer
    /// requests (so a heavy query never delays `/healthz` or ingest); 0
    /// means one per core.
    pub query_threads: usize,
}

impl Default for SqlSection {
    fn default() -> Self {
        Self {
            statement_timeout_ms: 15 * 60 * 1000,
            max_rows: 100_000_000,
            max_statement_bytes: 1024 * 1024,
            max_expression_depth: 1000,
            max_concurrent_statements: 16,
            memory_limit_bytes: 0,
            query_threads: 0,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `[[auth.tokens]]`: with none, every request is let in and the
    /// server binds loopback addresses only.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret a client sends as `Authorization: Bearer <token>`.
    pub token: String,
    /// What the token may do.
    pub role: Role,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: u64,
    /// Bytes that may wait in one table's queue (429 above).
    pub max_queued_bytes: u64,
    /// Group concurrent requests into one commit (`false`: one commit per
    /// request; for comparison benchmarks).
    pub group_commit: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024 * 1024,
            max_queued_bytes: 512 * 1024 * 1024,
            group_commit: true,
        }
    }
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ConfigRead {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| ServerError::ConfigInvalid {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses TOML text (errors name the key, never a token).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.sources = silt_sources::parse_sources(&std::mem::take(&mut config.source_entries))?;
        if config.auth.tokens.iter().any(|t| t.token.trim().is_empty()) {
            return Err("auth.tokens: a token must not be empty".into());
        }
        if config.erasure.secret.as_deref().is_some_and(str::is_empty) {
            return Err("erasure.secret must not be empty".into());
        }
        if config.ingest.max_body_bytes == 0 {
            return Err("ingest.max_body_bytes must be greater than 0".into());
        }
        if config.pg.tls_cert.is_some() != config.pg.tls_key.is_some() {
            return Err("pg.tls_cert and pg.tls_key go together: set both or neither".into());
        }
        if config.pg.require_tls && config.pg.tls_cert.is_none() {
            return Err("pg.require_tls needs pg.tls_cert and pg.tls_key".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::parse("").expect("parses");
        assert!(config.auth.tokens.is_empty());
        assert!(config.ingest.group_commit);
    }

    #[test]
    fn tokens_and_limits_parse_and_unknown_keys_are_refused() {
        let config = Config::parse(
            "[[auth.tokens]]\ntoken = \"a\"\nrole = \"writer\"\n[ingest]\nmax_body_bytes = 10\n",
        )
        .expect("parses");
        assert_eq!(config.auth.tokens[0].role, Role::Writer);
        assert_eq!(config.ingest.max_body_bytes, 10);
        let err = Config::parse("[ingest]\nmax_bodybytes = 1\n").expect_err("typo");
        assert!(err.contains("max_bodybytes"), "{err}");
        assert!(Config::parse("[[auth.tokens]]\ntoken = \"a\"\nrole = \"admin\"\n").is_err());
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// The example parses, and every key the JSON Schema lists is one the
    /// parser accepts (it refuses unknown keys), so the two cannot drift apart.
    #[test]
    fn example_and_schema_agree_with_the_parser() {
        let example = include_str!("../../../schemas/config.example.toml");
        let config = Config::parse(example).expect("example parses");
        assert_eq!(config.auth.tokens.len(), 3);
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/config.schema.json"))
                .expect("schema is JSON");
        let ingest = schema["properties"]["ingest"]["properties"]
            .as_object()
            .expect("ingest keys");
        for (key, spec) in ingest {
            let value = match spec["type"].as_str() {
                Some("boolean") => "true".to_string(),
                _ => "1".to_string(),
            };
            Config::parse(&format!("[ingest]\n{key} = {value}\n"))
                .unwrap_or_else(|e| panic!("schema key ingest.{key} refused: {e}"));
        }
        let erasure = schema["properties"]["erasure"]["properties"]
            .as_object()
            .expect("erasure keys");
        for (key, spec) in erasure {
            let value = match spec["type"].as_str() {
                Some("integer") => "1".to_string(),
                _ => format!("\"{}\"", "ab".repeat(32)),
            };
            Config::parse(&format!("[erasure]\n{key} = {value}\n"))
                .unwrap_or_else(|e| panic!("schema key erasure.{key} refused: {e}"));
        }
        let sources = schema["properties"]["sources"]["items"]["properties"]
            .as_object()
            .expect("source keys");
        for key in sources.keys() {
            // Every key the schema names is one the parser knows: adding
            // it to the example's source with a wrong type must fail on
            // that key's type, never as an unknown field.
            let text = format!(
                "[[sources]]\nname = \"s\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nstream = \"S\"\n\
                 routes = [{{ subject = \"a\", table = \"t\" }}]\n{key} = [[1]]\n"
            );
            let error = Config::parse(&text).expect_err("wrong type");
            assert!(
                !error.contains("unknown field"),
                "schema key sources.{key}: {error}"
            );
        }
        let defaults = IngestSection::default();
        assert_eq!(ingest["max_body_bytes"]["default"], defaults.max_body_bytes);
        assert_eq!(ingest["max_queued_bytes"]["default"], defaults.max_queued_bytes);
    }
}
