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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL statements against the warehouse (embedded, no server).
    Sql {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        format: FormatArgs,
        /// One or more `;`-separated statements.
        sql: String,
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
