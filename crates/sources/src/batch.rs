//! From a batch of messages of one ordered stream to durable commits: route
//! each message to its table, leave out what the table already holds, and
//! commit each table's share through the ingest service as one request
//! whose producer sequence is the highest stream sequence in it.
//!
//! Exactly-once rests on two facts. The table's `txn` action for the
//! producer (`<source>-<stream>`) is written in the same commit as the rows,
//! so "rows committed" and "position committed" cannot diverge. And the
//! messages of a stream arrive in sequence order (the consumer is re-created
//! from its ack floor on every start, so no older redelivery can follow a
//! newer message), so every message at or below a table's committed
//! sequence is already in that table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use silt_ingest::{Ingestor, Record, RecordFormat, RecordsRequest};

use crate::config::{PayloadFormat, Route};
use crate::error::SourceError;
use crate::status::{BatchStats, Counters, SourceObserver};
use crate::subject::matches;

/// One message as a kind hands it over.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub subject: String,
    pub sequence: u64,
    pub payload: Bytes,
}

/// The routing and committed positions of one source over one stream.
pub(crate) struct Pipeline {
    source: String,
    producer: String,
    routes: Vec<Route>,
    format: RecordFormat,
    ingestor: Arc<Ingestor>,
    counters: Arc<Counters>,
    observer: Arc<dyn SourceObserver>,
    /// Table → highest stream sequence it holds (0: none).
    committed: HashMap<String, u64>,
}

impl Pipeline {
    pub(crate) fn new(
        source: &str,
        stream: &str,
        routes: Vec<Route>,
        format: PayloadFormat,
        ingestor: Arc<Ingestor>,
        counters: Arc<Counters>,
        observer: Arc<dyn SourceObserver>,
    ) -> Self {
        Self {
            source: source.to_string(),
            producer: producer_id(source, stream),
            routes,
            format: match format {
                PayloadFormat::Json => RecordFormat::Json,
                PayloadFormat::Ndjson => RecordFormat::Ndjson,
            },
            ingestor,
            counters,
            observer,
            committed: HashMap::new(),
        }
    }

    /// Reads every route table's committed sequence from its log; the
    /// lowest of them, or `None` when no table has any.
    pub(crate) async fn load_committed(&mut self) -> Result<Option<u64>, SourceError> {
        self.committed.clear();
        for route in &self.routes {
            if self.committed.contains_key(&route.table) {
                continue;
            }
            let table = self
                .ingestor
                .warehouse()
                .table(&route.table)
                .await
                .map_err(|error| SourceError::Table {
                    source_name: self.source.clone(),
                    error: Box::new(error),
                })?;
            let sequence =
                table
                    .producer_sequence(&self.producer)
                    .await
                    .map_err(|error| SourceError::Table {
                        source_name: self.source.clone(),
                        error: Box::new(error),
                    })?;
            let sequence = sequence.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
            self.committed.insert(route.table.clone(), sequence);
        }
        Ok(self.committed.values().copied().filter(|s| *s > 0).min())
    }

    fn route(&self, subject: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| matches(&r.subject, subject))
            .map(|r| r.table.as_str())
    }

    /// Commits `messages` (in stream order) and returns once every table's
    /// share is durable; the caller acknowledges them then. On an error
    /// nothing may be acknowledged: tables that did commit remember their
    /// new sequence, so a redelivery skips what they hold.
    pub(crate) async fn commit(&mut self, messages: Vec<Incoming>) -> Result<(), SourceError> {
        let total = messages.len() as u64;
        let mut shares: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        let (mut duplicates, mut unrouted) = (0u64, 0u64);
        for message in messages {
            let Some(table) = self.route(&message.subject) else {
                unrouted += 1;
                continue;
            };
            if message.sequence <= self.committed.get(table).copied().unwrap_or(0) {
                duplicates += 1;
                continue;
            }
            shares.entry(table.to_string()).or_default().push(Record {
                payload: message.payload,
                sequence: message.sequence,
                label: message.subject,
            });
        }
        let started = Instant::now();
        let commits = shares.into_iter().map(|(table, records)| {
            let request = RecordsRequest {
                table: table.clone(),
                producer: self.producer.clone(),
                source: self.source.clone(),
                format: self.format,
                records,
            };
            let count = request.records.len() as u64;
            let last = request.records.iter().map(|r| r.sequence).max().unwrap_or(0);
            let ingestor = self.ingestor.clone();
            async move { (table, count, last, ingestor.ingest_records(request).await) }
        });
        let results = futures::future::join_all(commits).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut failure = None;
        for (table, count, last, result) in results {
            match result {
                Ok(ack) => {
                    self.committed.insert(table.clone(), last);
                    if ack.duplicate {
                        duplicates += count;
                        continue;
                    }
                    self.counters.rows.fetch_add(ack.rows_written, Ordering::Relaxed);
                    self.counters
                        .dead_letters
                        .fetch_add(ack.rows_rejected, Ordering::Relaxed);
                    self.counters.committed(ack.version);
                    self.observer.committed(
                        &self.source,
                        &table,
                        &BatchStats {
                            messages: count,
                            rows: ack.rows_written,
                            dead_letters: ack.rows_rejected,
                            seconds,
                        },
                    );
                }
                Err(error) => {
                    failure.get_or_insert(SourceError::Ingest {
                        source_name: self.source.clone(),
                        error: Box::new(error),
                    });
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        self.counters.messages.fetch_add(total, Ordering::Relaxed);
        self.counters.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        self.counters.unrouted.fetch_add(unrouted, Ordering::Relaxed);
        self.observer.acknowledged(&self.source, total);
        Ok(())
    }
}

/// The producer id a source's commits carry for `stream`.
pub fn producer_id(source: &str, stream: &str) -> String {
    format!("{source}-{stream}")
}
