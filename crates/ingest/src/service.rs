//! The ingestion service: one group committer per table, started on first
//! use, and the request path in front of it (decode → conform → enqueue → wait
//! for the durable ack).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use silt_table::{TableError, TableSpec, Warehouse};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::committer::{Ack, CommitStats, Committer, GroupSettings, RETRY_AFTER, Submission};
use crate::dead_letter::split_rows;
use crate::decode::Decoded;
use crate::error::{IngestError, Result};
use crate::evolve::target_schema;
use crate::mode::IngestMode;
use crate::policy::Policy;
use crate::{Format, conform_batches, decode_bytes, infer_table_schema};

/// Server-wide ingest settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Bytes that may wait in one table's queue; more is refused (429).
    pub max_queued_bytes: u64,
    /// Group queued requests into one commit (`false`: one commit per
    /// request, for comparison).
    pub group_commit: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_queued_bytes: 512 * 1024 * 1024,
            group_commit: true,
        }
    }
}

/// Receives what the committers do, for metrics. Every method has a no-op default.
pub trait IngestObserver: Send + Sync {
    /// A group was committed (or found to be all duplicates).
    fn committed(&self, _table: &str, _stats: &CommitStats) {}
    /// A table's queue holds `bytes` now.
    fn queued(&self, _table: &str, _bytes: u64) {}
    /// Automatic maintenance looked at (and maybe compacted) a table.
    fn maintained(&self, _table: &str, _stats: &crate::MaintenanceStats) {}
}

/// An observer that records nothing.
#[derive(Debug, Default)]
pub struct NoObserver;
impl IngestObserver for NoObserver {}

/// One write request, before decoding.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Target table.
    pub table: String,
    /// The body's format.
    pub format: Format,
    /// The body.
    pub body: Vec<u8>,
    /// `(producer id, sequence)` for exactly-once.
    pub producer: Option<(String, u64)>,
    /// Create the table from the body's inferred schema if it is missing.
    pub create: bool,
    /// Add the body's new columns to the table (also on by table property).
    pub evolve: bool,
    /// The caller may change table definitions on its own authority (the
    /// operator role). Without it `create` is refused and `evolve` is
    /// allowed only when the table's policy grants it
    /// ([`crate::policy::EVOLVE`], set by an operator).
    pub may_alter: bool,
    /// Append the rows, or apply them as keyed changes.
    pub mode: IngestMode,
}

/// State a table's request handlers share with its committer.
pub(crate) struct Shared {
    sender: std::sync::Mutex<Option<mpsc::UnboundedSender<Submission>>>,
    schema: RwLock<Arc<Schema>>,
    policy: RwLock<Policy>,
    queued: AtomicU64,
}

impl Shared {
    pub(crate) fn policy(&self) -> Policy {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    pub(crate) fn set_policy(&self, policy: Policy) {
        if let Ok(mut current) = self.policy.write() {
            *current = policy;
        }
    }

    pub(crate) fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.read().ok().map(|s| s.clone())
    }

    pub(crate) fn set_schema(&self, schema: Arc<Schema>) {
        if let Ok(mut current) = self.schema.write() {
            *current = schema;
        }
    }

    pub(crate) fn queued_bytes(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn release(&self, bytes: u64) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Charges `bytes` to the queue, or refuses if the limit would be passed
    /// (a single request larger than the limit is let through an empty queue).
    fn reserve(&self, bytes: u64, limit: u64) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if before > 0 && before + bytes > limit {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The ingestion service of one warehouse.
///
/// ```no_run
/// # async fn demo() -> silt_ingest::Result<()> {
/// use silt_ingest::{Format, IngestConfig, IngestRequest, Ingestor};
/// let warehouse = silt_table::Warehouse::open("./silt-data")?;
/// let ingestor = Ingestor::new(warehouse, IngestConfig::default());
/// let ack = ingestor
///     .ingest(IngestRequest {
///         table: "events".into(),
///         format: Format::Ndjson,
///         body: b"{\"id\":1}\n".to_vec(),
///         producer: Some(("loader-1".into(), 1)),
///         create: true,
///         evolve: false,
///         may_alter: true,
///         mode: silt_ingest::IngestMode::Append,
///     })
///     .await?;
/// println!("durable at version {}", ack.version);
/// ingestor.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Ingestor {
    warehouse: Warehouse,
    config: IngestConfig,
    observer: Arc<dyn IngestObserver>,
    tables: Mutex<HashMap<String, Arc<Shared>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Ingestor {
    /// A service over `warehouse` that records nothing.
    pub fn new(warehouse: Warehouse, config: IngestConfig) -> Self {
        Self::with_observer(warehouse, config, Arc::new(NoObserver))
    }

    /// A service that reports commits and queue depth to `observer`.
    pub fn with_observer(
        warehouse: Warehouse,
        config: IngestConfig,
        observer: Arc<dyn IngestObserver>,
    ) -> Self {
        Self {
            warehouse,
            config,
            observer,
            tables: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The warehouse written to.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// Whether a request to `table` with these flags may go ahead, checked
    /// before its body is read: internal tables (`_silt_*`) are answered as
    /// absent, a missing table without `create` is not found, `create`
    /// needs `may_alter`, and `evolve` needs `may_alter` or the table's
    /// [`crate::policy::EVOLVE`] policy. [`Ingestor::ingest`] checks the same.
    pub async fn check_allowed(
        &self,
        table: &str,
        create: bool,
        evolve: bool,
        may_alter: bool,
    ) -> Result<()> {
        refuse_internal(table)?;
        if may_alter {
            // An operator may create the table; a missing one is found out
            // (or created) when the rows arrive.
            return if create {
                silt_table::validate_table_name(table).map_err(Into::into)
            } else {
                self.table(table, None).await.map(drop)
            };
        }
        if create {
            return Err(IngestError::Forbidden(format!(
                "creating table '{table}' through ingest (create) is DDL and needs the operator role"
            )));
        }
        self.table(table, None).await?;
        if evolve {
            // Decided on the latest committed properties, not the
            // committer's copy (refreshed only by its own commits), so an
            // operator's grant or revocation applies to the next request.
            let latest = self.warehouse.table(table).await?;
            if !Policy::from_properties(&latest.properties()?).evolve {
                return Err(evolve_forbidden(table));
            }
        }
        Ok(())
    }

    /// Decodes, validates and commits one request; answers once durable.
    pub async fn ingest(&self, request: IngestRequest) -> Result<Ack> {
        let IngestRequest {
            table,
            format,
            body,
            producer,
            create,
            evolve,
            may_alter,
            mode,
        } = request;
        self.check_allowed(&table, create, evolve, may_alter).await?;
        if evolve && mode != IngestMode::Append {
            return Err(IngestError::InvalidRequest(
                "evolve works with mode=append only; add the columns first (ALTER TABLE … ADD COLUMNS)"
                    .to_string(),
            ));
        }
        let received_at = Utc::now();
        let bytes = body.len() as u64;
        let decoded = run_blocking(move || decode_bytes(format, body, "request")).await?;
        // check_allowed refused create and evolve the caller may not ask for.
        let change = Change {
            create: create && may_alter,
            evolve,
        };
        self.ingest_decoded(&table, decoded, producer, change, mode, bytes, received_at)
            .await
    }

    /// Commits already-decoded batches (Arrow Flight): validated and grouped
    /// like any request. Never creates the table nor adds columns beyond what
    /// the table's policy grants; internal tables are answered as absent.
    pub async fn ingest_batches(
        &self,
        table: &str,
        schema: Arc<Schema>,
        batches: Vec<RecordBatch>,
        producer: Option<(String, u64)>,
    ) -> Result<Ack> {
        refuse_internal(table)?;
        let bytes = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
        let decoded = Decoded {
            source_name: "batch".into(),
            inferred: schema.clone(),
            schema,
            batches,
            header_line: false,
        };
        // No create, no evolve beyond what the table's policy grants.
        let change = Change {
            create: false,
            evolve: false,
        };
        self.ingest_decoded(
            table,
            decoded,
            producer,
            change,
            IngestMode::Append,
            bytes,
            Utc::now(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn ingest_decoded(
        &self,
        table: &str,
        decoded: Decoded,
        producer: Option<(String, u64)>,
        change: Change,
        mode: IngestMode,
        bytes: u64,
        received_at: DateTime<Utc>,
    ) -> Result<Ack> {
        let shared = self.table(table, change.create.then_some(&decoded)).await?;
        let policy = shared.policy();
        let mut table_schema = shared
            .schema()
            .ok_or_else(|| IngestError::ShuttingDown(table.to_string()))?;
        // Upserts never evolve the table (a policy grant applies to appends).
        let evolve = (change.evolve || policy.evolve) && mode == IngestMode::Append;
        if let IngestMode::Upsert(upsert) = &mode {
            upsert.check(table, &table_schema)?;
            table_schema = Arc::new(upsert.input_schema(&table_schema));
        }
        let name = table.to_string();
        let (schema, batches, dead_letters) = run_blocking(move || {
            let target = target_schema(&table_schema, &decoded, evolve, &name)?;
            match conform_batches(&decoded, &target, &name) {
                Ok(batches) => Ok((target, batches, Vec::new())),
                Err(IngestError::InvalidRow { .. } | IngestError::MissingColumn { .. })
                    if policy.dead_letters =>
                {
                    let split = split_rows(&decoded, &target, &name)?;
                    Ok((target, split.good, split.rejected))
                }
                Err(error) => Err(error),
            }
        })
        .await?;
        let (mut submission, answer) =
            Submission::new(producer, schema, batches, dead_letters, mode, received_at, bytes);
        submission.evolve = evolve;
        self.submit(&shared, table, submission, answer).await
    }

    /// Charges the submission to the table's queue (refusing it when full),
    /// hands it to the committer and waits for the durable answer.
    pub(crate) async fn submit(
        &self,
        shared: &Shared,
        table: &str,
        submission: Submission,
        answer: oneshot::Receiver<Result<Ack>>,
    ) -> Result<Ack> {
        let bytes = submission.bytes;
        if !shared.reserve(bytes, self.config.max_queued_bytes) {
            return Err(IngestError::Overloaded {
                table: table.to_string(),
                limit_bytes: self.config.max_queued_bytes,
                retry_after_secs: RETRY_AFTER.as_secs(),
            });
        }
        self.observer.queued(table, shared.queued_bytes());
        let sent = shared
            .sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.send(submission).is_ok()))
            .unwrap_or(false);
        if !sent {
            shared.release(bytes);
            return Err(IngestError::ShuttingDown(table.to_string()));
        }
        answer
            .await
            .map_err(|_| IngestError::ShuttingDown(table.to_string()))?
    }

    /// The table's shared state, starting its committer on first use and
    /// creating the table from `create_from`'s inferred schema if asked.
    pub(crate) async fn table(&self, name: &str, create_from: Option<&Decoded>) -> Result<Arc<Shared>> {
        refuse_internal(name)?;
        silt_table::validate_table_name(name)?;
        if self.closed.load(Ordering::Relaxed) {
            return Err(IngestError::ShuttingDown(name.to_string()));
        }
        let mut tables = self.tables.lock().await;
        if let Some(shared) = tables.get(name) {
            return Ok(shared.clone());
        }
        let table = match self.warehouse.table(name).await {
            Ok(table) => table,
            Err(TableError::NotFound { .. }) if create_from.is_some() => {
                let inputs: Vec<Decoded> = create_from.into_iter().cloned().collect();
                let spec = TableSpec {
                    schema: infer_table_schema(&inputs)?,
                    partition_columns: Vec::new(),
                    properties: HashMap::new(),
                    if_not_exists: true,
                };
                self.warehouse.create_table(name, spec).await?
            }
            Err(error) => return Err(error.into()),
        };
        let (sender, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            sender: std::sync::Mutex::new(Some(sender)),
            schema: RwLock::new(table.schema()?),
            policy: RwLock::new(Policy::from_properties(&table.properties()?)),
            queued: AtomicU64::new(0),
        });
        let settings = GroupSettings {
            group_commit: self.config.group_commit,
        };
        let committer = Committer::new(
            table,
            self.warehouse.clone(),
            shared.clone(),
            settings,
            self.observer.clone(),
        );
        self.tasks.lock().await.push(tokio::spawn(committer.run(queue)));
        tables.insert(name.to_string(), shared.clone());
        Ok(shared)
    }

    /// Forgets a table's committer (after the table was dropped or replaced
    /// outside the service); its queue is drained first.
    pub async fn forget(&self, name: &str) {
        if let Some(shared) = self.tables.lock().await.remove(name)
            && let Ok(mut sender) = shared.sender.lock()
        {
            sender.take();
        }
    }

    /// Stops taking requests and waits until every queued one is committed
    /// and answered.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for shared in self.tables.lock().await.values() {
            if let Ok(mut sender) = shared.sender.lock() {
                sender.take();
            }
        }
        let tasks: Vec<_> = self.tasks.lock().await.drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// What a request may change about its table's definition.
#[derive(Debug, Clone, Copy)]
struct Change {
    /// Create the table if it is missing.
    create: bool,
    /// Add the input's new columns.
    evolve: bool,
}

/// silt's own tables (`_silt_*`) are not written through ingest: silt writes
/// dead letters itself (the committer, straight to the table) and the
/// erasure ledger belongs to silt-erasure.
fn refuse_internal(table: &str) -> Result<()> {
    if silt_table::is_internal_table(table) {
        return Err(IngestError::InternalTable(table.to_string()));
    }
    Ok(())
}

fn evolve_forbidden(table: &str) -> IngestError {
    IngestError::Forbidden(format!(
        "adding columns to table '{table}' through ingest (evolve) needs the operator role, \
         or the table property {} = true, set by an operator",
        crate::policy::EVOLVE
    ))
}

pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| IngestError::Malformed {
            source_name: "request".into(),
            format: "input",
            reason: format!("decoder stopped: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::read_dead_letters;
    use crate::policy::{DEAD_LETTER_TABLE, DEAD_LETTERS, EVOLVE};
    use arrow::datatypes::{DataType, Field};
    use silt_table::ErrorKind;

    fn request(table: &str, body: &str, create: bool, evolve: bool, may_alter: bool) -> IngestRequest {
        IngestRequest {
            table: table.to_string(),
            format: Format::Ndjson,
            body: body.as_bytes().to_vec(),
            producer: None,
            create,
            evolve,
            may_alter,
            mode: IngestMode::Append,
        }
    }

    async fn table(warehouse: &Warehouse, name: &str, properties: &[(&str, &str)]) {
        let spec = TableSpec {
            schema: Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("n", DataType::Int32, true),
            ])),
            partition_columns: Vec::new(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            if_not_exists: false,
        };
        warehouse.create_table(name, spec).await.expect("creates");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn internal_tables_are_not_written_but_dead_letters_still_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("opens");
        table(&warehouse, "t", &[(DEAD_LETTERS, "true")]).await;
        let ingestor = Ingestor::new(warehouse.clone(), IngestConfig::default());
        // A bad row goes to the dead letters through the committer's own path.
        let ack = ingestor
            .ingest(request("t", "{\"id\":1}\n{\"n\":2}\n", false, false, false))
            .await
            .expect("ingests");
        assert_eq!((ack.rows_written, ack.rows_rejected), (1, 1));
        let letters = read_dead_letters(&warehouse, Some("t"), 10).await.expect("reads");
        assert_eq!(letters.len(), 1);
        assert!(letters[0].reason.contains("column 'id'"), "{letters:?}");
        assert!(
            read_dead_letters(&warehouse, Some("other"), 10)
                .await
                .expect("reads")
                .is_empty()
        );

        for name in [DEAD_LETTER_TABLE, "_silt_erasures", "_SILT_new"] {
            for may_alter in [false, true] {
                let error = ingestor
                    .ingest(request(name, "{\"id\":1}\n", true, false, may_alter))
                    .await
                    .expect_err("internal");
                assert_eq!(error.kind(), ErrorKind::NotFound, "{name}: {error}");
            }
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(arrow::array::Int64Array::from(vec![1]))],
            )
            .expect("batch");
            let error = ingestor
                .ingest_batches(name, schema, vec![batch], None)
                .await
                .expect_err("internal");
            assert_eq!(error.kind(), ErrorKind::NotFound, "{name}: {error}");
        }
        let letters = read_dead_letters(&warehouse, None, 10).await.expect("reads");
        assert_eq!(letters.len(), 1, "{letters:?}");
        ingestor.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_and_evolve_need_authority_or_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("opens");
        table(&warehouse, "fixed", &[]).await;
        table(&warehouse, "open", &[(EVOLVE, "true")]).await;
        let ingestor = Ingestor::new(warehouse.clone(), IngestConfig::default());
        let new_column = "{\"id\":1,\"extra\":\"x\"}\n";

        let error = ingestor
            .ingest(request("fresh", "{\"id\":1}\n", true, false, false))
            .await
            .expect_err("create needs authority");
        assert_eq!(error.kind(), ErrorKind::Forbidden, "{error}");
        assert!(error.to_string().contains("operator"), "{error}");
        let error = ingestor
            .ingest(request("fixed", new_column, false, true, false))
            .await
            .expect_err("evolve needs authority or policy");
        assert_eq!(error.kind(), ErrorKind::Forbidden, "{error}");
        assert!(error.to_string().contains(EVOLVE), "{error}");
        assert_eq!(
            warehouse
                .table("fixed")
                .await
                .expect("opens")
                .schema()
                .expect("schema")
                .fields()
                .len(),
            2
        );

        ingestor
            .ingest(request("open", new_column, false, true, false))
            .await
            .expect("the table's policy grants evolve");
        ingestor
            .ingest(request("fixed", new_column, false, true, true))
            .await
            .expect("an operator evolves");
        ingestor
            .ingest(request("fresh", "{\"id\":1}\n", true, false, true))
            .await
            .expect("an operator creates");
        assert!(ingestor.check_allowed("fixed", false, false, false).await.is_ok());
        assert_eq!(
            ingestor
                .check_allowed("missing", false, false, false)
                .await
                .map_err(|e| e.kind()),
            Err(ErrorKind::NotFound)
        );
        ingestor.shutdown().await;
    }

    /// Parquet files under the table's directory, and the ones its latest
    /// version references.
    async fn files(warehouse: &Warehouse, dir: &std::path::Path, name: &str) -> (Vec<String>, Vec<String>) {
        let mut on_disk: Vec<String> = std::fs::read_dir(dir.join(name))
            .expect("table dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        on_disk.sort();
        let table = warehouse.table(name).await.expect("opens");
        let mut live: Vec<String> = table
            .snapshot()
            .expect("snapshot")
            .log_data()
            .iter()
            .map(|f| f.object_store_path().filename().unwrap_or_default().to_string())
            .collect();
        live.sort();
        (on_disk, live)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_dropped_and_recreated_elsewhere_is_noticed_without_orphans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().to_str().expect("utf-8");
        let warehouse = Warehouse::open(location).expect("opens");
        // Another process: its own warehouse handle on the same directory.
        let other = Warehouse::open(location).expect("opens");
        table(&warehouse, "d", &[]).await;
        let ingestor = Ingestor::new(warehouse.clone(), IngestConfig::default());
        for n in 0..4 {
            ingestor
                .ingest(request("d", &format!("{{\"id\":{n}}}\n"), false, false, false))
                .await
                .expect("ingests");
        }
        // Same schema, re-created behind the service's back.
        other.drop_table("d").await.expect("drops");
        table(&other, "d", &[]).await;
        let ack = ingestor
            .ingest(request("d", "{\"id\":10}\n", false, false, false))
            .await
            .expect("re-opens the new table and writes");
        assert_eq!(ack.version, 1, "{ack:?}");
        let (on_disk, live) = files(&warehouse, dir.path(), "d").await;
        assert_eq!(on_disk, live);
        assert_eq!(live.len(), 1);

        // A new schema: queued rows are validated against it.
        other.drop_table("d").await.expect("drops");
        let spec = TableSpec {
            schema: Arc::new(Schema::new(vec![Field::new("key", DataType::Utf8, false)])),
            partition_columns: Vec::new(),
            properties: HashMap::new(),
            if_not_exists: false,
        };
        other.create_table("d", spec).await.expect("creates");
        let error = ingestor
            .ingest(request("d", "{\"id\":11}\n", false, false, false))
            .await
            .expect_err("the old schema's rows do not fit the new table");
        assert!(error.kind().http_status() < 500, "{error}");
        let ack = ingestor
            .ingest(request("d", "{\"key\":\"k\"}\n", false, false, false))
            .await
            .expect("the new schema's rows are written");
        assert_eq!(ack.version, 1, "{ack:?}");
        let (on_disk, live) = files(&warehouse, dir.path(), "d").await;
        assert_eq!(on_disk, live);
        assert_eq!(live.len(), 1);

        // Dropped and not re-created: not found, and nothing written where it was.
        other.drop_table("d").await.expect("drops");
        let error = ingestor
            .ingest(request("d", "{\"key\":\"k\"}\n", false, false, false))
            .await
            .expect_err("the table is gone");
        assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
        assert!(!dir.path().join("d").exists());
        ingestor.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nested_new_fields_are_refused_or_added_with_evolve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("opens");
        let address = Field::new(
            "address",
            DataType::Struct(vec![Field::new("city", DataType::Utf8, true)].into()),
            true,
        );
        let spec = TableSpec {
            schema: Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("customer", DataType::Struct(vec![address].into()), true),
            ])),
            partition_columns: Vec::new(),
            properties: HashMap::new(),
            if_not_exists: false,
        };
        warehouse.create_table("c", spec).await.expect("creates");
        let ingestor = Ingestor::new(warehouse.clone(), IngestConfig::default());
        let body = "{\"id\":1,\"customer\":{\"address\":{\"city\":\"Oslo\",\"country\":\"NO\"}}}\n";
        let error = ingestor
            .ingest(request("c", body, false, false, true))
            .await
            .expect_err("never dropped");
        assert_eq!(error.kind(), ErrorKind::InvalidRows, "{error}");
        assert!(error.to_string().contains("customer.address.country"), "{error}");
        let ack = ingestor
            .ingest(request("c", body, false, true, true))
            .await
            .expect("evolve adds the nested field");
        assert_eq!(ack.rows_written, 1);
        let schema = warehouse
            .table("c")
            .await
            .expect("opens")
            .schema()
            .expect("schema");
        let customer = schema.field_with_name("customer").expect("customer");
        let DataType::Struct(children) = customer.data_type() else {
            panic!("{customer:?}")
        };
        let DataType::Struct(address) = children[0].data_type() else {
            panic!("{children:?}")
        };
        let names: Vec<&str> = address.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["city", "country"]);
        // The table has it now: the next body needs no evolve.
        ingestor
            .ingest(request("c", body, false, false, false))
            .await
            .expect("fits now");
        ingestor.shutdown().await;
    }
}
