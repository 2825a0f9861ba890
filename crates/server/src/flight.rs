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
use silt_sql::{Access, Engine, ScalarValue};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::auth::{Auth, Role};
use crate::error::ApiError;
use crate::statement_log::StatementLog;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A prepared statement: its text and the parameters bound so far.
#[derive(Debug, Clone)]
struct PreparedStatement {
    sql: String,
    params: Vec<ScalarValue>,
}

/// The Flight service: ingest and Flight SQL.
pub struct SiltFlight {
    ingestor: Arc<Ingestor>,
    engine: Engine,
    auth: Auth,
    prepared: Mutex<HashMap<String, PreparedStatement>>,
}

impl SiltFlight {
    /// A service writing through `ingestor` and querying with `engine`.
    pub fn new(ingestor: Arc<Ingestor>, engine: Engine, auth: Auth) -> Self {
        Self {
            ingestor,
            engine,
            auth,
            prepared: Mutex::new(HashMap::new()),
        }
    }

    fn authorize<T>(&self, request: &Request<T>, role: Role) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.check(header, role).map_err(|e| e.to_status())
    }

    fn prepared(&self, handle: &[u8]) -> Result<PreparedStatement, Status> {
        let key = String::from_utf8_lossy(handle).into_owned();
        self.prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements unavailable"))?
            .get(&key)
            .cloned()
            .ok_or_else(|| {
                Status::not_found("unknown prepared statement handle (closed or from another server)")
            })
    }

    /// Runs a query and streams it as Flight data.
    async fn stream_query(
        &self,
        sql: &str,
        params: Vec<ScalarValue>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let result = self
            .engine
            .execute_stream(sql, params)
            .await
            .map_err(sql_status)?;
        let batches = result.stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(result.schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(encoded)))
    }

    /// A FlightInfo whose one endpoint's ticket is `ticket` (an `Any`).
    fn flight_info(
        schema: &Schema,
        ticket: Any,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec())))
            .with_descriptor(descriptor);
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

    /// An update statement (plain or prepared) from the caller of `request`:
    /// authorized by the role the statement needs, run, logged once with its
    /// literals redacted.
    async fn logged_update<T>(
        &self,
        command: &'static str,
        sql: &str,
        request: &Request<T>,
    ) -> Result<i64, Status> {
        let log = StatementLog::start("flight", command, sql);
        let mut required_role = None;
        let result = async {
            let access = silt_sql::required_access(sql).map_err(sql_status)?;
            required_role = Some(role_for(access));
            self.authorize(request, role_for(access))?;
            self.execute_update(sql).await
        }
        .await;
        log.finish_flight(required_role, &result);
        result
    }

    /// Runs a statement for its effect; the answer's `num_affected_rows`
    /// (DML) or 0.
    async fn execute_update(&self, sql: &str) -> Result<i64, Status> {
        let outputs = self.engine.execute(sql).await.map_err(sql_status)?;
        Ok(outputs
            .last()
            .and_then(|o| o.batches.first())
            .and_then(|b| b.column_by_name("num_affected_rows"))
            .and_then(|c| {
                c.as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0))
    }

    async fn table_names(&self) -> Result<Vec<String>, Status> {
        self.engine
            .warehouse()
            .list_tables()
            .await
            .map_err(|e| ApiError::from(e).to_status())
    }
}

fn sql_status(error: silt_sql::SqlError) -> Status {
    ApiError::new(error.kind(), error.to_string()).to_status()
}

fn invalid(detail: impl Into<String>) -> Status {
    ApiError::invalid(detail).to_status()
}

fn role_for(access: Access) -> Role {
    match access {
        Access::Read => Role::Reader,
        Access::Write => Role::Writer,
        Access::Admin => Role::Operator,
    }
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
    let mut decoder = FlightDataDecoder::new(messages.map_err(FlightError::from));
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
        // Only a failure is logged here: a query that plans is logged once,
        // when DoGet runs its ticket.
        let log = StatementLog::start("flight", "statement_query", &query.query);
        let mut required_role = None;
        let result = async {
            let access = silt_sql::required_access(&query.query).map_err(sql_status)?;
            required_role = Some(role_for(access));
            if access != Access::Read {
                return Err(invalid(
                    "this statement changes data: run it with executeUpdate (DoPut CommandStatementUpdate)",
                ));
            }
            self.authorize(&request, Role::Reader)?;
            self.engine.prepare(&query.query).await.map_err(sql_status)
        }
        .await;
        if result.is_err() {
            log.finish_flight(required_role, &result);
        }
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into_bytes().into(),
        };
        Self::flight_info(&result?.schema, ticket.as_any(), request.into_inner())
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: arrow_flight::sql::CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let statement = self.prepared(&query.prepared_statement_handle)?;
        self.logged_update("prepared_update", &statement.sql, &request)
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| invalid("ticket is not UTF-8 SQL"))?;
        let log = StatementLog::start("flight", "statement_query", &sql);
        let mut required_role = None;
        let result = async {
            self.authorize(&request, Role::Reader)?;
            let access = silt_sql::required_access(&sql).map_err(sql_status)?;
            required_role = Some(role_for(access));
            if access != Access::Read {
                return Err(invalid("a statement ticket may only hold a query"));
            }
            self.stream_query(&sql, Vec::new()).await
        }
        .await;
        log.finish_flight(required_role, &result);
        result
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.logged_update("statement_update", &command.query, &request)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        // Only a failure is logged here: the statement is logged each time
        // it runs (DoGet or DoPut with its handle).
        let log = StatementLog::start("flight", "prepared_statement", &query.query);
        let result = async {
            self.authorize(&request, Role::Reader)?;
            self.engine.prepare(&query.query).await.map_err(sql_status)
        }
        .await;
        if result.is_err() {
            let required_role = silt_sql::required_access(&query.query).ok().map(role_for);
            log.finish_flight(required_role, &result);
        }
        let prepared = result?;
        let handle = uuid::Uuid::new_v4().to_string();
        self.prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements unavailable"))?
            .insert(
                handle.clone(),
                PreparedStatement {
                    sql: query.query,
                    params: Vec::new(),
                },
            );
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let schema_bytes = |schema: &Schema| -> Result<prost::bytes::Bytes, Status> {
            let message: IpcMessage = SchemaAsIpc::new(schema, &options)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
            Ok(message.0)
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: schema_bytes(&prepared.schema)?,
            parameter_schema: schema_bytes(&prepared.parameters)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.authorize(&request, Role::Reader)?;
        let mut statement = self.prepared(&query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> =
            FlightDataDecoder::new(request.into_inner().map_err(FlightError::from))
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
        self.prepared
            .lock()
            .map_err(|_| Status::internal("prepared statements unavailable"))?
            .insert(
                String::from_utf8_lossy(&query.prepared_statement_handle).into_owned(),
                statement,
            );
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request, Role::Reader)?;
        let statement = self.prepared(&query.prepared_statement_handle)?;
        let prepared = self.engine.prepare(&statement.sql).await.map_err(sql_status)?;
        Self::flight_info(&prepared.schema, query.as_any(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let statement = self.prepared(&query.prepared_statement_handle)?;
        let log = StatementLog::start("flight", "prepared_query", &statement.sql);
        let mut required_role = None;
        let result = async {
            let access = silt_sql::required_access(&statement.sql).map_err(sql_status)?;
            required_role = Some(role_for(access));
            self.authorize(&request, role_for(access))?;
            self.stream_query(&statement.sql, statement.params).await
        }
        .await;
        log.finish_flight(required_role, &result);
        result
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
        Self::flight_info(&schema, query.as_any(), request.into_inner())
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
        Self::flight_info(&schema, query.as_any(), request.into_inner())
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
        Self::flight_info(&schema, query.as_any(), request.into_inner())
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
                match self.engine.warehouse().table(&name).await {
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
        Self::flight_info(&schema, query.as_any(), request.into_inner())
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
