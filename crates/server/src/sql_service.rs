//! The SQL service: what `/v1/sql` and Flight SQL both call, so the rules
//! of a statement are written once — the caller's role against what the
//! statement needs, the statement timeout, the row cap, the per-role cap on
//! running statements and one log line with literals redacted.
//!
//! Statements are parsed, planned and run on the *query runtime*: threads
//! of their own, with stacks large enough for the deepest statement
//! [`silt_sql::StatementLimits`] admit. The threads that answer requests
//! (`/healthz`, ingest, other clients) never run a query, so a heavy one
//! cannot starve them; the answer's batches cross over through a small
//! channel. Joins spend Tokio's task budget (silt-sql's cooperative rule), so
//! the timeout's abort takes effect even in a cross join that never waits.
//!
//! ```text
//!  adapter (HTTP / Flight) ── authenticate ── SqlService::run ──▶ query runtime
//!                                               │  permit per role      parse (limits)
//!                                               │  deadline             role check
//!                                               ◀── first batch ─────── plan, execute
//!                                               ◀── batches (channel) ─ …until deadline
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt};
use silt_sql::{Engine, Prepared, ScalarValue, SqlError};
use silt_table::ErrorKind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::auth::{Role, permit, role_for};
use crate::error::ApiError;
use crate::metrics::{Metrics, StatementMeter};
use crate::statement_log::StatementLog;

/// Limits every statement is held to, whichever protocol brought it.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Longest a statement may run.
    pub statement_timeout: Duration,
    /// Most rows one answer carries.
    pub max_rows: u64,
    /// Statements one role may run at once.
    pub max_concurrent: usize,
}

impl From<SqlError> for ApiError {
    fn from(error: SqlError) -> Self {
        ApiError::new(error.kind(), error.to_string())
    }
}

/// What a caller asks the service to run.
#[derive(Debug)]
pub struct Call {
    /// `http` or `flight`, for the log.
    pub protocol: &'static str,
    /// The protocol's command (`sql`, `statement_query`, `prepared_update`…).
    pub command: &'static str,
    /// The authenticated caller's role.
    pub caller: Role,
    /// The SQL text.
    pub sql: String,
    /// Values of `$1`, `$2`, ….
    pub params: Vec<ScalarValue>,
    /// A lower timeout than the server's, if the caller asked for one.
    pub timeout: Option<Duration>,
    /// A lower row cap than the server's, if the caller asked for one.
    pub max_rows: Option<u64>,
    /// Refuse anything but a query (Flight tickets carry queries only).
    pub query_only: bool,
}

/// A running statement's answer: its columns, the first batch (already
/// computed, so errors while running are still an error answer) and the rest.
pub struct Answer {
    /// Result columns.
    pub schema: SchemaRef,
    /// The first batch, if any.
    pub first: Option<RecordBatch>,
    /// The batches after the first, ending at the row cap, the end of the
    /// result, or an error (the timeout's among them).
    pub rest: Rows,
    /// The row cap applied.
    pub max_rows: u64,
    /// Set once the row cap cut the answer short.
    pub truncated: Arc<AtomicBool>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("schema", &self.schema)
            .field("max_rows", &self.max_rows)
            .finish_non_exhaustive()
    }
}

/// The batches of an [`Answer`] after the first. Dropping it (a client that
/// went away) stops the statement.
pub struct Rows {
    receiver: mpsc::Receiver<Result<RecordBatch, ApiError>>,
    backstop: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    abort: AbortOnDrop,
    done: bool,
    /// The statement's metrics, recorded as batches pass and when it ends.
    meter: Option<StatementMeter>,
}

impl Stream for Rows {
    type Item = Result<RecordBatch, ApiError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.receiver.poll_recv(cx) {
            if !matches!(item, Some(Ok(_))) {
                self.done = true;
            }
            if let Some(meter) = &mut self.meter {
                match &item {
                    Some(Ok(batch)) => meter.answered(batch),
                    Some(Err(error)) => meter.finish(Some(error.kind)),
                    None => meter.finish(None),
                }
            }
            return Poll::Ready(item);
        }
        // The query task stops itself at the deadline; this is the backstop
        // for a task that cannot get to its next yield.
        if self.backstop.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.abort.0.abort();
            if let Some(meter) = &mut self.meter {
                meter.finish(Some(ErrorKind::Timeout));
            }
            return Poll::Ready(Some(Err(timeout_error(self.limit))));
        }
        Poll::Pending
    }
}

/// How long past its deadline a statement's task may take to notice it.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// Aborts the query task when the answer is dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The statement timeout's error.
pub fn timeout_error(limit: Duration) -> ApiError {
    ApiError::new(
        ErrorKind::Timeout,
        format!(
            "statement did not finish within {} ms; narrow it or raise timeout_ms",
            limit.as_millis()
        ),
    )
}

/// The service; cheap to clone.
#[derive(Clone)]
pub struct SqlService {
    engine: Engine,
    limits: SqlLimits,
    runtime: tokio::runtime::Handle,
    permits: Arc<[Arc<Semaphore>; 3]>,
    /// Told which tables a script dropped, so its committers forget them.
    ingestor: Option<Arc<silt_ingest::Ingestor>>,
    /// Where statements are counted (`silt_sql_*` on `/metrics`).
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Builds the query runtime: `threads` workers (0: one per core), each with
/// [`silt_sql::QUERY_STACK_BYTES`] of stack.
pub fn query_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .thread_name("silt-query")
        .thread_stack_size(silt_sql::QUERY_STACK_BYTES)
        .max_blocking_threads(64)
        .enable_all()
        .build()
}

impl SqlService {
    /// A service running `engine`'s statements on `runtime` within `limits`.
    pub fn new(engine: Engine, limits: SqlLimits, runtime: tokio::runtime::Handle) -> Self {
        let semaphore = || Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        Self {
            engine,
            limits,
            runtime,
            permits: Arc::new([semaphore(), semaphore(), semaphore()]),
            ingestor: None,
            metrics: None,
        }
    }

    /// Counts every statement in `metrics`: by protocol, kind, role and
    /// outcome, with its latency and the rows and bytes it answered.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells `ingestor` about every table a statement drops (`DROP TABLE`,
    /// `CREATE OR REPLACE TABLE`): it forgets the table's committer, whose
    /// handle, schema and producer state belong to the dropped table.
    pub fn with_ingestor(mut self, ingestor: Arc<silt_ingest::Ingestor>) -> Self {
        self.ingestor = Some(ingestor);
        self
    }

    /// The engine (for catalog listings that run no statement).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn permit(&self, caller: Role) -> Result<OwnedSemaphorePermit, ApiError> {
        let index = match caller {
            Role::Reader => 0,
            Role::Writer => 1,
            Role::Operator => 2,
        };
        self.permits[index].clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorKind::Overloaded,
                format!(
                    "{} statements are already running for the {} role; retry when one has finished",
                    self.limits.max_concurrent,
                    caller.as_str()
                ),
            )
        })
    }

    /// Runs `call` and answers once its first batch is ready (or it failed).
    pub async fn run(&self, call: Call) -> Result<Answer, ApiError> {
        let log = StatementLog::start(call.protocol, call.command, &call.sql);
        let mut meter = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.statement_started(call.protocol, call.caller.as_str()));
        let (result, parsed) = self.start(call).await;
        log.finish(parsed.required, result.as_ref().err());
        let Some(mut meter) = meter.take() else {
            return result;
        };
        if let Some(kind) = parsed.kind {
            meter.set_kind(kind);
        }
        match result {
            Err(error) => {
                meter.finish(Some(error.kind));
                Err(error)
            }
            Ok(mut answer) => {
                if let Some(first) = &answer.first {
                    meter.answered(first);
                }
                // Only a query streams; any other statement has done its
                // work once its first (and only) batch is ready, and an
                // adapter may drop the rest unread (a command tag).
                if !parsed.streamed {
                    meter.finish(None);
                }
                answer.rest.meter = Some(meter);
                Ok(answer)
            }
        }
    }

    async fn start(&self, call: Call) -> (Result<Answer, ApiError>, Classified) {
        let permit = match self.permit(call.caller) {
            Ok(permit) => permit,
            Err(error) => return (Err(error), Classified::default()),
        };
        let limit = call.timeout.map_or(self.limits.statement_timeout, |t| {
            t.min(self.limits.statement_timeout)
        });
        let max_rows = call
            .max_rows
            .map_or(self.limits.max_rows, |m| m.min(self.limits.max_rows));
        let deadline = Instant::now() + limit;
        let truncated = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = oneshot::channel();
        let (rows_tx, rows_rx) = mpsc::channel(2);
        let engine = self.engine.clone();
        let ingestor = self.ingestor.clone();
        let task_truncated = truncated.clone();
        let task = self.runtime.spawn(async move {
            let _permit = permit;
            let (result, sent) = match start_statement(&engine, ingestor.as_deref(), call).await {
                Ok((schema, result, first, parsed)) => {
                    let (first, sent) = cap(first, 0, max_rows, &task_truncated);
                    let _ = started_tx.send((Ok((schema, first)), parsed));
                    (result, sent)
                }
                Err((error, parsed)) => {
                    let _ = started_tx.send((Err(error), parsed));
                    return;
                }
            };
            forward(result, rows_tx, sent, max_rows, deadline, limit, &task_truncated).await;
        });
        let abort = AbortOnDrop(task.abort_handle());
        let started = match tokio::time::timeout_at(deadline, started_rx).await {
            Err(_) => {
                // Answer once the task is gone, so its permit is free again
                // when the caller sees the 408 (a retry got 429 otherwise).
                task.abort();
                let _ = tokio::time::timeout(DEADLINE_GRACE, task).await;
                return (Err(timeout_error(limit)), Classified::default());
            }
            Ok(Err(_)) => {
                let failed = match task.await {
                    Err(join) if join.is_panic() => "statement task panicked".to_string(),
                    _ => "statement task ended without an answer".to_string(),
                };
                return (
                    Err(ApiError::new(ErrorKind::Internal, failed)),
                    Classified::default(),
                );
            }
            Ok(Ok(started)) => started,
        };
        let (result, parsed) = started;
        let answer = result.map(|(schema, first)| Answer {
            schema,
            first,
            rest: Rows {
                receiver: rows_rx,
                backstop: Box::pin(tokio::time::sleep_until(deadline + DEADLINE_GRACE)),
                limit,
                abort,
                done: false,
                meter: None,
            },
            max_rows,
            truncated,
        });
        (answer, parsed)
    }

    /// Plans `sql` without running it (Flight SQL's GetFlightInfo and
    /// prepared statements), with the same limits and role check as [`run`](Self::run).
    pub async fn prepare(&self, caller: Role, sql: String, query_only: bool) -> Result<Prepared, ApiError> {
        let permit = self.permit(caller)?;
        let engine = self.engine.clone();
        let ingestor = self.ingestor.clone();
        let limit = self.limits.statement_timeout;
        let task = self.runtime.spawn(async move {
            let _permit = permit;
            let script = engine.parse(&sql)?;
            permit_script(caller, &script, query_only)?;
            let dropped = script.dropped_tables();
            let prepared = engine.prepare_script(script).await;
            forget_dropped(ingestor.as_deref(), &dropped).await;
            Ok::<_, ApiError>(prepared?)
        });
        let abort = AbortOnDrop(task.abort_handle());
        let result = match tokio::time::timeout(limit, task).await {
            Err(_) => Err(timeout_error(limit)),
            Ok(Err(_)) => Err(ApiError::new(ErrorKind::Internal, "statement task failed")),
            Ok(Ok(result)) => result,
        };
        drop(abort);
        result
    }
}

type Started = (
    SchemaRef,
    silt_sql::StatementStream,
    Option<RecordBatch>,
    Classified,
);

/// What is known of a statement once it parsed, for the log and metrics.
#[derive(Debug, Clone, Copy, Default)]
struct Classified {
    /// The role it needs (once parsed and permitted).
    required: Option<Role>,
    /// Its kind (once parsed).
    kind: Option<silt_sql::StatementKind>,
    /// Whether its answer streams (a query) rather than being done at the
    /// first batch.
    streamed: bool,
}

fn permit_script(caller: Role, script: &silt_sql::Script, query_only: bool) -> Result<Role, ApiError> {
    let required = role_for(script.access());
    permit(caller, required)?;
    if query_only && !script.is_query() {
        return Err(ApiError::invalid(
            "this statement is not a query: run it with executeUpdate (DoPut CommandStatementUpdate)",
        ));
    }
    Ok(required)
}

/// Parse, role check, plan, first batch: on the query runtime.
async fn start_statement(
    engine: &Engine,
    ingestor: Option<&silt_ingest::Ingestor>,
    call: Call,
) -> Result<Started, (ApiError, Classified)> {
    let script = engine
        .parse(&call.sql)
        .map_err(|e| (ApiError::from(e), Classified::default()))?;
    let mut parsed = Classified {
        required: None,
        kind: Some(script.kind()),
        streamed: script.is_query(),
    };
    parsed.required =
        Some(permit_script(call.caller, &script, call.query_only).map_err(move |e| (e, parsed))?);
    let with_role = move |e: SqlError| (ApiError::from(e), parsed);
    let dropped = script.dropped_tables();
    let result = engine.execute_script_stream(script, call.params).await;
    // Also after a failure: a script may have dropped a table before a
    // later statement failed, and forgetting a live table only costs a re-open.
    forget_dropped(ingestor, &dropped).await;
    let mut result = result.map_err(with_role)?;
    let first = result
        .stream
        .next()
        .await
        .transpose()
        .map_err(|e| with_role(SqlError::from(e)))?;
    Ok((result.schema.clone(), result, first, parsed))
}

/// Makes the ingest service forget the committers of `dropped` tables.
async fn forget_dropped(ingestor: Option<&silt_ingest::Ingestor>, dropped: &[String]) {
    if let Some(ingestor) = ingestor {
        for name in dropped {
            ingestor.forget(name).await;
        }
    }
}

/// Cuts `batch` to what is left of the row cap after `sent` rows.
fn cap(
    batch: Option<RecordBatch>,
    sent: u64,
    max_rows: u64,
    truncated: &AtomicBool,
) -> (Option<RecordBatch>, u64) {
    let Some(batch) = batch else {
        return (None, sent);
    };
    let room = max_rows.saturating_sub(sent);
    if batch.num_rows() as u64 > room {
        truncated.store(true, Ordering::Relaxed);
        let kept = batch.slice(0, usize::try_from(room).unwrap_or(usize::MAX));
        return (Some(kept), max_rows);
    }
    let rows = sent + batch.num_rows() as u64;
    (Some(batch), rows)
}

/// Sends the rest of the result until the row cap, the end, an error, the
/// deadline, or a receiver that went away.
async fn forward(
    mut result: silt_sql::StatementStream,
    sender: mpsc::Sender<Result<RecordBatch, ApiError>>,
    mut sent: u64,
    max_rows: u64,
    deadline: Instant,
    limit: Duration,
    truncated: &AtomicBool,
) {
    while sent < max_rows {
        let next = match tokio::time::timeout_at(deadline, result.stream.next()).await {
            Err(_) => Err(timeout_error(limit)),
            Ok(None) => return,
            Ok(Some(Err(error))) => {
                // The text goes to the caller only: execution errors
                // (casts, parsing) can quote a value from the data.
                tracing::warn!("sql result stream failed after the answer started");
                Err(ApiError::from(SqlError::from(error)))
            }
            Ok(Some(Ok(batch))) => {
                let (batch, now) = cap(Some(batch), sent, max_rows, truncated);
                sent = now;
                Ok(batch)
            }
        };
        let failed = next.is_err();
        let item = match next {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => continue,
            Err(error) => Err(error),
        };
        if sender.send(item).await.is_err() || failed {
            return;
        }
    }
    // At the cap: one more poll tells whether rows were cut.
    if !truncated.load(Ordering::Relaxed)
        && let Ok(Some(Ok(batch))) = tokio::time::timeout_at(deadline, result.stream.next()).await
        && batch.num_rows() > 0
    {
        truncated.store(true, Ordering::Relaxed);
    }
}
