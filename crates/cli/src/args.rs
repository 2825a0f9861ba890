//! Flags, each defined once with its env var and docs (see docs/cli.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use silt_sql::OutputFormat;

/// silt: a transactional data lake over Delta Lake tables.
#[derive(Debug, Parser)]
#[command(name = "silt", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the tables are.
#[derive(Debug, Args, Clone)]
pub struct WarehouseArgs {
    /// Warehouse: a local directory or an object-store URL (s3://bucket/prefix).
    #[arg(long, env = "SILT_WAREHOUSE", default_value = "./silt-data", global = true)]
    pub warehouse: String,
}

/// How results are printed.
#[derive(Debug, Args, Clone)]
pub struct FormatArgs {
    /// Output format: table, csv, json or ndjson.
    #[arg(long, env = "SILT_FORMAT", default_value = "table", value_parser = parse_format, global = true)]
    pub format: OutputFormat,
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

/// Talking to a running server instead of the warehouse directly.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// Go through a running `silt serve` at this URL (e.g. http://127.0.0.1:7070).
    #[arg(long, env = "SILT_SERVER")]
    pub server: Option<String>,
    /// Bearer token for the server.
    #[arg(long, env = "SILT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// How `silt ingest` changes the table: append, or apply keyed changes.
#[derive(Debug, Args, Clone)]
pub struct UpsertArgs {
    /// `append` (the default) or `upsert`: apply the rows as changes keyed
    /// by --key (CDC apply, SCD type 1: each key ends up as its newest row).
    #[arg(long, env = "SILT_INGEST_MODE")]
    pub mode: Option<String>,
    /// Key column for --mode upsert (repeat, or separate with commas).
    #[arg(long = "key", value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Column ordering a key's changes (--mode upsert): a change applies
    /// only above the row's sequence. Without it the last row of a key wins.
    #[arg(long)]
    pub sequence: Option<String>,
    /// Column whose value --delete-value marks a delete (--mode upsert).
    #[arg(long)]
    pub delete_column: Option<String>,
    /// Text in --delete-column that marks a delete (default `d`).
    #[arg(long)]
    pub delete_value: Option<String>,
}

impl UpsertArgs {
    /// The ingest mode these flags ask for.
    pub fn mode(&self) -> silt_ingest::Result<silt_ingest::IngestMode> {
        let keys = self.keys.join(",");
        silt_ingest::IngestMode::from_params(
            self.mode.as_deref(),
            (!self.keys.is_empty()).then_some(keys.as_str()),
            self.sequence.as_deref(),
            self.delete_column.as_deref(),
            self.delete_value.as_deref(),
        )
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL statements against the warehouse (embedded, or through
    /// --server): from the argument, from -f FILE, from standard input, or,
    /// on a terminal without either, in an interactive shell.
    Sql {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        format: FormatArgs,
        /// One or more `;`-separated statements.
        sql: Option<String>,
        /// Read the statements from this file.
        #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with = "sql")]
        file: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Append files to a table in one commit.
    Ingest {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// Table to write.
        table: String,
        /// Files to read (CSV with header, NDJSON, Parquet, Arrow IPC).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Input format; by default taken from each file's extension.
        #[arg(long, env = "SILT_INGEST_FORMAT")]
        format: Option<String>,
        /// Create the table, inferring its schema, if it does not exist.
        #[arg(long)]
        create: bool,
        /// Add the files' new columns to the table (nullable).
        #[arg(long)]
        evolve: bool,
        #[command(flatten)]
        upsert: UpsertArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Producer id for exactly-once (with --server); by default derived
        /// from the table and the files (path, size, modification time), so a
        /// rerun of the same command skips the files already committed.
        #[arg(long, env = "SILT_PRODUCER_ID")]
        producer_id: Option<String>,
    },
    /// Serve the warehouse: HTTP API, Arrow Flight and the Postgres wire protocol.
    Serve {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// HTTP listen address.
        #[arg(long, env = "SILT_HTTP", default_value = "127.0.0.1:7070")]
        http: String,
        /// Arrow Flight listen address.
        #[arg(long, env = "SILT_FLIGHT", default_value = "127.0.0.1:7071")]
        flight: String,
        /// Postgres wire protocol listen address (psql, drivers; the
        /// password is a bearer token).
        #[arg(long, env = "SILT_PG", default_value = "127.0.0.1:5433")]
        pg: String,
        /// TOML config: tokens, limits (see schemas/config.schema.json).
        #[arg(long, env = "SILT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Erase data subjects (GDPR/CCPA) from every table with subject
    /// columns, and prove it with a signed certificate.
    Erase {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// An identifier to erase (repeat for several); a value of the
        /// tables' `silt.erasure.subject_columns`.
        #[arg(long = "subject", required = true, value_name = "VALUE")]
        subjects: Vec<String>,
        /// Only these tables (default: every table with subject columns).
        #[arg(long, num_args = 1.., value_name = "TABLE")]
        tables: Option<Vec<String>>,
        /// Also purge history: VACUUM with zero retention, checkpoint, log
        /// expiry (time travel before the erasure is lost).
        #[arg(long)]
        purge: bool,
        /// With --server: wait for the request to finish and print its certificate
        /// (embedded runs always wait).
        #[arg(long)]
        wait: bool,
        /// Idempotency key: filing the same key again answers the first request.
        #[arg(long, env = "SILT_ERASURE_REQUEST_ID")]
        request_id: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Inspect tables.
    Table {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        format: FormatArgs,
        #[command(subcommand)]
        action: TableAction,
    },
}

/// `silt table …`.
#[derive(Debug, Subcommand)]
pub enum TableAction {
    /// List the tables of the warehouse.
    List,
    /// Show a table's columns, version, files and properties.
    Describe {
        /// Table name.
        table: String,
    },
    /// Show a table's commits, newest first.
    History {
        /// Table name.
        table: String,
        /// Show at most this many commits.
        #[arg(long)]
        limit: Option<usize>,
    },
}
