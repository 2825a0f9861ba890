//! silt-sources pulls rows from message brokers into tables: the
//! `[[sources]]` of the server's config, one task per source, each batch of
//! messages committed through silt-ingest's per-table group committer (so
//! rows from a broker and from HTTP can share a commit), exactly once per
//! stream into each table by the stream sequence in the commit's `txn`
//! action, with dead letters for messages that do not fit.
//!
//! ```text
//!  broker ──kind (nats: JetStream pull consumer)──▶ batch ──route by subject──▶ per table:
//!      Ingestor::ingest_records(producer "<source>-<stream>", sequence = highest)
//!      ──▶ one Delta commit with rows + txn ──▶ ack the batch at the broker
//! ```
//!
//! ```no_run
//! # async fn demo(ingestor: std::sync::Arc<silt_ingest::Ingestor>, entries: Vec<toml::Table>) -> Result<(), String> {
//! use std::sync::Arc;
//! let configs = silt_sources::parse_sources(&entries)?;
//! let sources = silt_sources::Sources::start(&configs, ingestor, Arc::new(silt_sources::NoSourceObserver));
//! for status in sources.statuses() {
//!     println!("{} {:?} lag {:?}", status.name, status.state, status.lag);
//! }
//! sources.shutdown().await;
//! # Ok(()) }
//! ```

mod batch;
pub mod config;
mod error;
mod nats;
mod runtime;
mod status;
pub mod subject;

pub use batch::producer_id;
pub use config::{KindConfig, SourceConfig, parse_sources};
pub use error::SourceError;
pub use runtime::Sources;
pub use status::{BatchStats, NoSourceObserver, SourceObserver, SourceStatus, State};
