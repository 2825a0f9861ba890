//! Runs the configured sources: one task per source, driving its kind's
//! session loop with backoff between sessions, and the handle the server
//! keeps to show status, pause, resume and stop them.
//!
//! A new kind is one module with a `session` function (connect, position
//! from the tables' committed sequences, consume until stopped) and one arm
//! in [`run`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use silt_ingest::Ingestor;
use tokio::sync::watch;

use crate::config::{KindConfig, SourceConfig};
use crate::error::SourceError;
use crate::status::{Counters, SourceObserver, SourceStatus, State};

/// First pause after a failed session; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between sessions.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a source's session sees of the runtime.
pub(crate) struct Context {
    pub name: String,
    pub counters: Arc<Counters>,
    pub ingestor: Arc<Ingestor>,
    pub observer: Arc<dyn SourceObserver>,
    paused: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    backoff: Duration,
}

impl Context {
    /// Whether an operator paused the source.
    pub fn paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits until resumed (`true`) or stopped (`false`).
    pub async fn wait_resumed(&self) -> bool {
        let mut paused = self.paused.clone();
        let mut stop = self.stop.clone();
        let resumed = tokio::select! {
            resumed = paused.wait_for(|p| !*p) => resumed.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        resumed && !self.stopped()
    }

    /// Resolves once the server stops.
    pub async fn stopping(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A batch went through: the next failure starts from the first pause.
    pub fn backoff_reset(&mut self) {
        self.backoff = FIRST_BACKOFF;
    }
}

struct Entry {
    counters: Arc<Counters>,
    paused: watch::Sender<bool>,
}

/// The running sources of one server.
pub struct Sources {
    entries: Vec<Entry>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Sources {
    /// Starts one task per configured source, writing through `ingestor`.
    pub fn start(
        configs: &[SourceConfig],
        ingestor: Arc<Ingestor>,
        observer: Arc<dyn SourceObserver>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut entries = Vec::new();
        let mut tasks = Vec::new();
        for config in configs {
            let tables = match &config.kind {
                KindConfig::Nats(nats) => {
                    let mut tables: Vec<String> = Vec::new();
                    for route in &nats.routes {
                        if !tables.contains(&route.table) {
                            tables.push(route.table.clone());
                        }
                    }
                    tables
                }
            };
            let counters = Arc::new(Counters::new(&config.name, config.kind.name(), tables));
            let (paused, paused_rx) = watch::channel(false);
            let ctx = Context {
                name: config.name.clone(),
                counters: counters.clone(),
                ingestor: ingestor.clone(),
                observer: observer.clone(),
                paused: paused_rx,
                stop: stopped.clone(),
                backoff: FIRST_BACKOFF,
            };
            tasks.push(tokio::spawn(run(config.kind.clone(), ctx)));
            entries.push(Entry { counters, paused });
        }
        Self {
            entries,
            stop,
            tasks: Mutex::new(tasks),
        }
    }

    /// Every source's status, in configuration order.
    pub fn statuses(&self) -> Vec<SourceStatus> {
        self.entries.iter().map(|e| e.counters.snapshot()).collect()
    }

    fn entry(&self, name: &str) -> Result<&Entry, SourceError> {
        self.entries
            .iter()
            .find(|e| e.counters.snapshot().name == name)
            .ok_or_else(|| SourceError::NotFound(name.to_string()))
    }

    /// Stops fetching after the batch in flight; messages stay pending at
    /// the broker. Idempotent.
    pub fn pause(&self, name: &str) -> Result<SourceStatus, SourceError> {
        let entry = self.entry(name)?;
        entry.paused.send_replace(true);
        Ok(entry.counters.snapshot())
    }

    /// Fetches again. Idempotent.
    pub fn resume(&self, name: &str) -> Result<SourceStatus, SourceError> {
        let entry = self.entry(name)?;
        entry.paused.send_replace(false);
        Ok(entry.counters.snapshot())
    }

    /// Stops every source: a batch being committed finishes and is
    /// acknowledged, nothing new is fetched. Call before the ingest service
    /// drains.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// One kind's connection: what [`drive`] runs again after each failure.
pub(crate) trait Session {
    /// Connects, positions from the tables' committed sequences and
    /// consumes until the server stops (`Ok`) or something fails.
    async fn session(&mut self, ctx: &mut Context) -> Result<(), SourceError>;
}

/// A source's task.
async fn run(kind: KindConfig, ctx: Context) {
    match kind {
        KindConfig::Nats(config) => {
            let source = crate::nats::NatsSource::new(config, &ctx);
            drive(source, ctx).await;
        }
    }
}

/// Sessions until the server stops, with backoff between them.
async fn drive(mut source: impl Session, mut ctx: Context) {
    while !ctx.stopped() {
        match source.session(&mut ctx).await {
            Ok(()) => break,
            Err(error) => {
                let state = if error.is_connection() {
                    State::Reconnecting
                } else {
                    State::Failed
                };
                ctx.counters.set_error(state, error.word());
                ctx.observer.failed(&ctx.name, error.word());
                tracing::warn!(source = %ctx.name, %error, retry_ms = ctx.backoff.as_millis() as u64, "source session ended; retrying");
                let pause = ctx.backoff;
                ctx.backoff = (ctx.backoff * 2).min(MAX_BACKOFF);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = ctx.stopping() => break,
                }
            }
        }
    }
    ctx.counters.set_state(State::Stopped);
    tracing::info!(source = %ctx.name, "source stopped");
}
