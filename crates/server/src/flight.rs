//! Arrow Flight on one port: `DoPut` ingest and Flight SQL.
//!
//! **Ingest.** `DoPut` with a *path* descriptor streams record batches into a
//! table, group-committed with the HTTP traffic. Path `[table]` or `[table,
//! producer]`; each batch's `app_metadata` may carry `{"sequence": n}`; one
//! `PutResult` per batch, once durable, with `{"sequence", "version",
//! "duplicate"}`. Batches of one stream are committed in order: the next
//! message is read only after the previous batch's ack, so gRPC flow control
//! is the back-pressure and a producer's sequences cannot overtake.
//!
//! **Flight SQL** (command descriptors): statement queries, prepared
//! statements with `$n` parameters, `executeUpdate` for DML/DDL, and catalog
//! metadata (catalogs, schemas, tables, table types), so ADBC and JDBC Flight
//! SQL clients work. Results stream from DataFusion as Flight data.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes,
    CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, PutResult, SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use silt_ingest::Ingestor;
use silt_sql::ScalarValue;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tonic::{Request, Response, Status};

use crate::auth::{Auth, Role, permit};
use crate::error::ApiError;
use crate::sql_service::{Call, SqlService};
use crate::statement_log::StatementLog;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A prepared statement: its text, the parameters bound so far, and who
/// made it (a handle is usable only with the token that prepared it).
#[derive(Debug, Clone)]
struct PreparedStatement {
    sql: String,
    params: Vec<ScalarValue>,
    owner: Role,
    created: Instant,
}

/// Prepared statements and finished results kept per server: bounded in
/// number, dropped after [`KEPT_FOR`].
const MAX_KEPT: usize = 10_000;
const KEPT_FOR: Duration = Duration::from_secs(3600);

/// Prefix of a ticket that fetches the stored answer of a statement that
/// already ran while its FlightInfo was made (DML, DDL: they run once, when
/// the client asks for the FlightInfo, whose `total_records` is their row count).
const RESULT_TICKET: &[u8] = b"silt-result:";

/// The Flight service: ingest and Flight SQL.
pub struct SiltFlight {
    ingestor: Arc<Ingestor>,
    sql: SqlService,
    auth: Auth,
    prepared: Mutex<HashMap<String, PreparedStatement>>,
    results: Mutex<HashMap<String, (Instant, RecordBatch)>>,
}

impl SiltFlight {
    /// A service writing through `ingestor` and running SQL through `sql`.
    pub fn new(ingestor: Arc<Ingestor>, sql: SqlService, auth: Auth) -> Self {
        Self {
            ingestor,
            sql,
            auth,
            prepared: Mutex::new(HashMap::new()),
            results: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's role from the request's bearer token (401 without one).
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Role, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.authenticate(header).map_err(|e| e.to_status())
    }

    fn authorize<T>(&self, request: &Request<T>, role: Role) -> Result<(), Status> {
        permit(self.authenticate(request)?, role).map_err(|e| e.to_status())
    }

    fn prepared(&self, handle: &[u8], caller: Role) -> Result<PreparedStatement, Status> {
        let key = String::from_utf8_lossy(handle).into_owned();
        let statement = self
            .prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements unavailable"))?
            .get(&key)
            .cloned()
            .filter(|s| s.created.elapsed() < KEPT_FOR)
            .ok_or_else(|| {
                Status::not_found(
                    "unknown prepared statement handle (closed, expired after an hour, or from another server)",
                )
            })?;
        // A lower role cannot run what a higher one prepared.
        if caller < statement.owner {
            return Err(
                ApiError::forbidden("this prepared statement was made with another role's token").to_status(),
            );
        }
        Ok(statement)
    }

    fn keep_prepared(&self, handle: String, statement: PreparedStatement) -> Result<(), Status> {
        let mut prepared = self
            .prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements unavailable"))?;
        prepared.retain(|_, s| s.created.elapsed() < KEPT_FOR);
        if prepared.len() >= MAX_KEPT && !prepared.contains_key(&handle) {
            return Err(ApiError::new(
                silt_table::ErrorKind::Overloaded,
                format!("{MAX_KEPT} prepared statements are open on this server; close some (ClosePreparedStatement)"),
            )
            .to_status());
        }
        prepared.insert(handle, statement);
        Ok(())
    }

    /// Runs a statement through the SQL service and streams its answer as
    /// Flight data, in the schema its FlightInfo announced (dictionaries hydrated).
    async fn stream_statement(&self, call: Call) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let answer = self.sql.run(call).await.map_err(|e| e.to_status())?;
        let first = futures::stream::iter(answer.first.map(Ok));
        let batches = first
            .chain(answer.rest)
            .map_err(|e| FlightError::Tonic(Box::new(e.to_status())));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(answer.schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(encoded)))
    }

    /// The FlightInfo of `sql` for `caller`: a query is planned and its
    /// ticket runs it; any other statement runs now, once, and its ticket
    /// fetches the answer (`total_records` = rows affected), so ADBC's
    /// `cursor.execute("INSERT …")` and its `rowcount` work.
    async fn statement_info(
        &self,
        command: &'static str,
        caller: Role,
        statement: &PreparedStatement,
        query_ticket: Any,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let log = crate::statement_log::StatementLog::start("flight", command, &statement.sql);
        let prepared = self.sql.prepare(caller, statement.sql.clone(), false).await;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                log.finish(None, Some(&error));
                return Err(error.to_status());
            }
        };
        if prepared.query {
            // A query that plans is logged once, when DoGet runs it.
            return Self::flight_info(&prepared.schema, query_ticket, descriptor, -1);
        }
        drop(log);
        let answer = self
            .sql
            .run(Call {
                protocol: "flight",
                command,
                caller,
                sql: statement.sql.clone(),
                params: statement.params.clone(),
                timeout: None,
                max_rows: None,
                query_only: false,
            })
            .await
            .map_err(|e| e.to_status())?;
        let mut batches: Vec<RecordBatch> = answer.first.into_iter().collect();
        let rest: Vec<RecordBatch> = answer.rest.try_collect().await.map_err(|e| e.to_status())?;
        batches.extend(rest);
        let batch = arrow::compute::concat_batches(&answer.schema, &batches)
            .map_err(|e| Status::internal(format!("cannot assemble the answer: {e}")))?;
        let affected = affected_rows(&batch);
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut results = self
                .results
                .lock()
                .map_err(|_| Status::internal("results unavailable"))?;
            results.retain(|_, (at, _)| at.elapsed() < KEPT_FOR);
            if results.len() >= MAX_KEPT {
                // Oldest first: answers nobody fetched.
                if let Some(oldest) = results
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                {
                    results.remove(&oldest);
                }
            }
            results.insert(id.clone(), (Instant::now(), batch.clone()));
        }
        let mut handle = RESULT_TICKET.to_vec();
        handle.extend_from_slice(id.as_bytes());
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        Self::flight_info(&batch.schema(), ticket.as_any(), descriptor, affected)
    }

    /// A FlightInfo whose one endpoint's ticket is `ticket` (an `Any`); the
    /// schema is announced as the stream will carry it (dictionaries hydrated,
    /// as the Flight encoder sends them).
    fn flight_info(
        schema: &Schema,
        ticket: Any,
        descriptor: FlightDescriptor,
        total_records: i64,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(&hydrated(schema))
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec())))
            .with_descriptor(descriptor)
            .with_total_records(total_records);
        Ok(Response::new(info))
    }

    fn batch_stream(batch: RecordBatch) -> Response<BoxedStream<FlightData>> {
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(Status::from);
        Response::new(Box::pin(stream))
    }

    /// An update statement (plain or prepared) from the caller of `request`,
    /// run through the SQL service; the answer's `num_affected_rows` (DML) or 0.
    async fn update<T>(
        &self,
        command: &'static str,
        sql: String,
        params: Vec<ScalarValue>,
        request: &Request<T>,
    ) -> Result<i64, Status> {
        let caller = self.authenticate(request)?;
        let answer = self
            .sql
            .run(Call {
                protocol: "flight",
                command,
                caller,
                sql,
                params,
                timeout: None,
                max_rows: None,
                query_only: false,
            })
            .await
            .map_err(|e| e.to_status())?;
        let rest: Vec<RecordBatch> = answer.rest.try_collect().await.map_err(|e| e.to_status())?;
        Ok(answer
            .first
            .iter()
            .chain(rest.iter())
            .last()
            .map(affected_rows)
            .unwrap_or(0)
            .max(0))
    }

    async fn table_names(&self) -> Result<Vec<String>, Status> {
        let mut names = self
            .sql
            .engine()
            .warehouse()
            .list_tables()
            .await
            .map_err(|e| ApiError::from(e).to_status())?;
        names.retain(|name| !silt_table::is_internal_table(name));
        Ok(names)
    }
}

/// `num_affected_rows` of a change answer; -1 (unknown) for other answers.
fn affected_rows(batch: &RecordBatch) -> i64 {
    batch
        .column_by_name("num_affected_rows")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
        .filter(|a| !a.is_empty())
        .map_or(-1, |a| a.value(0))
}

/// `schema` with every dictionary replaced by its value type, as
/// `FlightDataEncoder` sends dictionary columns (hydrated). A FlightInfo that
/// announced the dictionary made ADBC refuse the stream.
fn hydrated(schema: &Schema) -> Schema {
    use arrow::datatypes::{DataType, Field};
    fn field(f: &Field) -> Field {
        f.clone().with_data_type(data_type(f.data_type()))
    }
    fn data_type(t: &DataType) -> DataType {
        match t {
            DataType::Dictionary(_, value) => data_type(value),
            DataType::List(f) => DataType::List(Arc::new(field(f))),
            DataType::LargeList(f) => DataType::LargeList(Arc::new(field(f))),
            DataType::FixedSizeList(f, n) => DataType::FixedSizeList(Arc::new(field(f)), *n),
            DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| field(f)).collect()),
            DataType::Map(f, sorted) => DataType::Map(Arc::new(field(f)), *sorted),
            other => other.clone(),
        }
    }
    Schema::new_with_metadata(
        schema.fields().iter().map(|f| field(f)).collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

fn invalid(detail: impl Into<String>) -> Status {
    ApiError::invalid(detail).to_status()
}

/// `(table, producer)` from a DoPut path descriptor.
fn target(descriptor: &FlightDescriptor) -> Result<(String, Option<String>), Status> {
    match descriptor.path.as_slice() {
        [table] => Ok((table.clone(), None)),
        [table, producer] if !producer.is_empty() && producer.len() <= 256 => {
            Ok((table.clone(), Some(producer.clone())))
        }
        _ => Err(invalid(
            "the descriptor path must be [table] or [table, producer_id]",
        )),
    }
}

/// The `sequence` of a batch's app_metadata, if any.
fn sequence(app_metadata: &[u8]) -> Result<Option<u64>, Status> {
    if app_metadata.is_empty() {
        return Ok(None);
    }
    let doc: serde_json::Value = serde_json::from_slice(app_metadata).map_err(|e| {
        invalid(format!(
            "batch app_metadata must be JSON like {{\"sequence\": 1}}: {e}"
        ))
    })?;
    match doc.get("sequence") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|s| i64::try_from(*s).is_ok())
            .map(Some)
            .ok_or_else(|| invalid("app_metadata sequence must be a whole number from 0 to 2^63-1")),
    }
}

/// `messages`, refusing any whose header declares compressed buffers, before
/// arrow-ipc reserves their declared (attacker-chosen) uncompressed size.
fn uncompressed<S>(messages: S) -> impl Stream<Item = Result<FlightData, Status>>
where
    S: Stream<Item = Result<FlightData, Status>>,
{
    messages.and_then(|data| async move {
        if silt_ingest::decode::ipc::message_is_compressed(&data.data_header) {
            return Err(invalid(silt_ingest::decode::ipc::COMPRESSED_IPC));
        }
        Ok(data)
    })
}

/// Streams a path-descriptor DoPut into the ingestor, acking batch by batch.
fn ingest_stream<S>(
    ingestor: Arc<Ingestor>,
    messages: S,
    table: String,
    producer: Option<String>,
) -> BoxedStream<PutResult>
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    let mut decoder = FlightDataDecoder::new(uncompressed(messages).map_err(FlightError::from));
    let (sender, receiver) = mpsc::channel::<Result<PutResult, Status>>(1);
    tokio::spawn(async move {
        while let Some(item) = decoder.next().await {
            let decoded = match item {
                Ok(decoded) => decoded,
                Err(error) => {
                    let _ = sender
                        .send(Err(invalid(format!("cannot decode the Flight stream: {error}"))))
                        .await;
                    return;
                }
            };
            let DecodedPayload::RecordBatch(batch) = decoded.payload else {
                continue;
            };
            let answer = async {
                let sequence = sequence(&decoded.inner.app_metadata)?;
                let exactly_once = match (&producer, sequence) {
                    (Some(producer), Some(sequence)) => Some((producer.clone(), sequence)),
                    (None, None) => None,
                    (None, Some(_)) => {
                        return Err(invalid(
                            "a sequence needs a producer: use the descriptor path [table, producer_id]",
                        ));
                    }
                    (Some(_), None) => {
                        return Err(invalid(
                            "with a producer in the descriptor every batch needs {\"sequence\": n}",
                        ));
                    }
                };
                let ack = ingestor
                    .ingest_batches(&table, batch.schema(), vec![batch], exactly_once)
                    .await
                    .map_err(|e| ApiError::from(e).to_status())?;
                let metadata = serde_json::json!({
                    "sequence": sequence,
                    "version": ack.version,
                    "duplicate": ack.duplicate,
                    "rows_written": ack.rows_written,
                    "rows_rejected": ack.rows_rejected,
                });
                Ok(PutResult {
                    app_metadata: serde_json::to_vec(&metadata).unwrap_or_default().into(),
                })
            }
            .await;
            let failed = answer.is_err();
            if sender.send(answer).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    }))
}

#[tonic::async_trait]
impl FlightSqlService for SiltFlight {
    type FlightService = SiltFlight;

    async fn do_put_fallback(
        &self,
        request: Request<PeekableFlightDataStream>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        self.authorize(&request, Role::Writer)?;
        if !message.type_url.is_empty() {
            return Err(Status::unimplemented(format!(
                "DoPut command {} is not served",
                message.type_url
            )));
        }
        let mut stream = request.into_inner().into_peekable();
        let descriptor = match Pin::new(&mut stream).peek().await {
            Some(Ok(first)) => first.flight_descriptor.clone(),
            Some(Err(status)) => return Err(status.clone()),
            None => None,
        }
        .ok_or_else(|| invalid("the first DoPut message must carry the flight descriptor"))?;
        let (table, producer) = target(&descriptor)?;
        Ok(Response::new(ingest_stream(
            self.ingestor.clone(),
            stream,
            table,
            producer,
        )))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authenticate(&request)?;
        let statement = PreparedStatement {
            sql: query.query.clone(),
            params: Vec::new(),
            owner: caller,
            created: Instant::now(),
        };
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        self.statement_info(
            "statement_query",
            caller,
            &statement,
            ticket.as_any(),
            request.into_inner(),
        )
        .await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: arrow_flight::sql::CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = self.authenticate(&request)?;
        let statement = self.prepared(&query.prepared_statement_handle, caller)?;
        self.update("prepared_update", statement.sql, statement.params, &request)
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        if let Some(id) = ticket.statement_handle.strip_prefix(RESULT_TICKET) {
            let id = String::from_utf8_lossy(id).into_owned();
            let batch = self
                .results
                .lock()
                .map_err(|_| Status::internal("results unavailable"))?
                .remove(&id)
                .map(|(_, batch)| batch)
                .ok_or_else(|| Status::not_found("unknown or already fetched result ticket"))?;
            return Ok(Self::batch_stream(batch));
        }
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| invalid("ticket is not UTF-8 SQL"))?;
        self.stream_statement(Call {
            protocol: "flight",
            command: "statement_query",
            caller,
            sql,
            params: Vec::new(),
            timeout: None,
            max_rows: None,
            query_only: true,
        })
        .await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.update("statement_update", command.query, Vec::new(), &request)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.authenticate(&request)?;
        // Only a failure is logged here: the statement is logged each time
        // it runs (DoGet or DoPut with its handle).
        let log = StatementLog::start("flight", "prepared_statement", &query.query);
        let prepared = match self.sql.prepare(caller, query.query.clone(), false).await {
            Ok(prepared) => prepared,
            Err(error) => {
                log.finish(None, Some(&error));
                return Err(error.to_status());
            }
        };
        drop(log);
        let handle = uuid::Uuid::new_v4().to_string();
        self.keep_prepared(
            handle.clone(),
            PreparedStatement {
                sql: query.query,
                params: Vec::new(),
                owner: caller,
                created: Instant::now(),
            },
        )?;
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let schema_bytes = |schema: &Schema| -> Result<prost::bytes::Bytes, Status> {
            let message: IpcMessage = SchemaAsIpc::new(schema, &options)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
            Ok(message.0)
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: schema_bytes(&hydrated(&prepared.schema))?,
            parameter_schema: schema_bytes(&prepared.parameters)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = self.authenticate(&request)?;
        let mut statement = self.prepared(&query.prepared_statement_handle, caller)?;
        let batches: Vec<RecordBatch> =
            FlightDataDecoder::new(uncompressed(request.into_inner()).map_err(FlightError::from))
                .try_filter_map(|d| async move {
                    Ok(match d.payload {
                        DecodedPayload::RecordBatch(batch) => Some(batch),
                        _ => None,
                    })
                })
                .try_collect()
                .await
                .map_err(|e| invalid(format!("cannot decode parameters: {e}")))?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Err(invalid("no parameter values were sent"));
        };
        statement.params = batch
            .columns()
            .iter()
            .map(|column| ScalarValue::try_from_array(column, 0))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("bad parameter value: {e}")))?;
        self.keep_prepared(
            String::from_utf8_lossy(&query.prepared_statement_handle).into_owned(),
            statement,
        )?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authenticate(&request)?;
        let statement = self.prepared(&query.prepared_statement_handle, caller)?;
        self.statement_info(
            "prepared_query",
            caller,
            &statement,
            query.as_any(),
            request.into_inner(),
        )
        .await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        let statement = self.prepared(&query.prepared_statement_handle, caller)?;
        self.stream_statement(Call {
            protocol: "flight",
            command: "prepared_query",
            caller,
            sql: statement.sql,
            params: statement.params,
            timeout: None,
            max_rows: None,
            query_only: false,
        })
        .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        self.authorize(&request, Role::Reader)?;
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.remove(&String::from_utf8_lossy(&query.prepared_statement_handle).into_owned());
        }
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Role::Reader)?;
        let schema = query.into_builder().schema();
        Self::flight_info(&schema, query.as_any(), request.into_inner(), -1)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request, Role::Reader)?;
        let mut builder = query.into_builder();
        builder.append(silt_sql::CATALOG);
        let batch = builder.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Self::batch_stream(batch))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Role::Reader)?;
        let schema = query.clone().into_builder().schema();
        Self::flight_info(&schema, query.as_any(), request.into_inner(), -1)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request, Role::Reader)?;
        let mut builder = query.into_builder();
        builder.append(silt_sql::CATALOG, silt_sql::SCHEMA);
        let batch = builder.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Self::batch_stream(batch))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Role::Reader)?;
        let schema = query.clone().into_builder().schema();
        Self::flight_info(&schema, query.as_any(), request.into_inner(), -1)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request, Role::Reader)?;
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        for name in self.table_names().await? {
            let schema = if include_schema {
                match self.sql.engine().warehouse().table(&name).await {
                    Ok(table) => table
                        .schema()
                        .map(|s| s.as_ref().clone())
                        .unwrap_or_else(|_| Schema::empty()),
                    Err(_) => continue,
                }
            } else {
                Schema::empty()
            };
            builder
                .append(silt_sql::CATALOG, silt_sql::SCHEMA, &name, "TABLE", &schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let batch = builder.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Self::batch_stream(batch))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Role::Reader)?;
        let schema = query.into_builder().schema();
        Self::flight_info(&schema, query.as_any(), request.into_inner(), -1)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request, Role::Reader)?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        let batch = builder.build().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Self::batch_stream(batch))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_metadata_are_checked() {
        let descriptor = FlightDescriptor::new_path(vec!["t".into(), "p".into()]);
        assert_eq!(
            target(&descriptor).expect("ok"),
            ("t".to_string(), Some("p".to_string()))
        );
        assert!(target(&FlightDescriptor::new_path(vec![])).is_err());
        assert_eq!(sequence(b"{\"sequence\": 4}").expect("ok"), Some(4));
        assert_eq!(sequence(b"").expect("ok"), None);
        assert!(sequence(b"{\"sequence\": -1}").is_err());
        assert!(sequence(b"nope").is_err());
    }
}
