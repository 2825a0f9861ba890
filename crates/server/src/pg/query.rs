//! The query handlers: simple protocol (psql) and extended protocol
//! (Parse/Bind/Describe/Execute: drivers' prepared statements). Both hand
//! every statement to the one [`SqlService`] — role check, timeout, row
//! cap, per-role concurrency and the redacted statement log are its — except
//! the catalog and session statements `catalog` answers.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use async_trait::async_trait;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use silt_sql::ScalarValue;
use silt_table::{ErrorKind, Warehouse};

use super::catalog::{self, Local};
use super::error::{fatal, info, wire};
use super::params;
use super::rows::{self, Kind};
use super::startup::SessionRole;
use crate::auth::Role;
use crate::error::ApiError;
use crate::sql_service::{Call, SqlService};
use crate::statement_log::StatementLog;

/// Per-session settings and the state of a `BEGIN` block.
#[derive(Debug, Default)]
struct Settings {
    /// `SET statement_timeout` in milliseconds; 0: the server's.
    timeout_ms: AtomicU64,
    /// Inside `BEGIN` … `COMMIT`.
    in_block: AtomicBool,
    /// A statement in the block changed something (it is committed).
    changed: AtomicBool,
}

/// Who is asking, and their settings.
struct Session {
    role: Role,
    settings: Arc<Settings>,
}

impl Session {
    fn of<C: ClientInfo>(client: &C) -> PgWireResult<Self> {
        let role = client
            .session_extensions()
            .get::<SessionRole>()
            .ok_or_else(|| fatal("28000", "not authenticated"))?
            .0;
        let settings = client.session_extensions().get_or_insert_with(Settings::default);
        Ok(Self { role, settings })
    }

    fn timeout(&self) -> Option<Duration> {
        match self.settings.timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// A parsed (extended protocol) statement.
#[derive(Debug, Clone)]
pub(crate) struct PgStatement {
    sql: String,
    /// Result columns, when they are known before running (queries, catalog answers).
    schema: SchemaRef,
    /// The inferred types of `$1`, `$2`, ….
    parameters: Vec<DataType>,
}

/// Both query protocols over one [`SqlService`].
pub(crate) struct Queries {
    sql: SqlService,
    parser: Arc<Parser>,
}

impl Queries {
    pub(crate) fn new(sql: SqlService) -> Self {
        Self {
            parser: Arc::new(Parser { sql: sql.clone() }),
            sql,
        }
    }

    fn warehouse(&self) -> &Warehouse {
        self.sql.engine().warehouse()
    }

    /// Runs one statement and shapes its answer for the wire.
    async fn run(
        &self,
        session: &Session,
        sql: &str,
        params: Vec<ScalarValue>,
        format: &Format,
        command: &'static str,
        described: Option<SchemaRef>,
    ) -> Result<Response, ApiError> {
        let timeout_ms = session.settings.timeout_ms.load(Ordering::Relaxed);
        if let Some(local) = catalog::answer(sql, self.warehouse(), timeout_ms).await {
            let log = StatementLog::start("pg", "session", sql);
            let result = local.and_then(|local| self.local(session, local, format));
            log.finish(Some(Role::Reader), result.as_ref().err());
            return result;
        }
        let kind = Kind::of(sql);
        let answer = self
            .sql
            .run(Call {
                protocol: "pg",
                command,
                caller: session.role,
                sql: sql.to_string(),
                params,
                timeout: session.timeout(),
                max_rows: None,
                query_only: false,
            })
            .await?;
        Ok(match kind {
            Kind::Change(command) => {
                session.settings.changed.store(true, Ordering::Relaxed);
                Response::Execution(rows::change_tag(command, answer.first.as_ref()))
            }
            Kind::Definition(tag) => {
                session.settings.changed.store(true, Ordering::Relaxed);
                Response::Execution(Tag::new(&tag))
            }
            Kind::Rows => rows::stream_rows(answer, format, described).map_err(internal)?,
        })
    }

    fn local(&self, session: &Session, local: Local, format: &Format) -> Result<Response, ApiError> {
        let settings = &session.settings;
        Ok(match local {
            Local::Rows(batch) => rows::local_rows(batch, format).map_err(internal)?,
            Local::Tag(tag) => Response::Execution(Tag::new(tag)),
            Local::StatementTimeout(ms) => {
                settings.timeout_ms.store(ms, Ordering::Relaxed);
                Response::Execution(Tag::new("SET"))
            }
            Local::Begin => {
                settings.in_block.store(true, Ordering::Relaxed);
                settings.changed.store(false, Ordering::Relaxed);
                Response::TransactionStart(Tag::new("BEGIN"))
            }
            Local::Commit => {
                settings.in_block.store(false, Ordering::Relaxed);
                Response::TransactionEnd(Tag::new("COMMIT"))
            }
            Local::Rollback => {
                let was_in_block = settings.in_block.swap(false, Ordering::Relaxed);
                if was_in_block && settings.changed.swap(false, Ordering::Relaxed) {
                    return Err(ApiError::new(
                        ErrorKind::Unsupported,
                        "silt has no multi-statement transactions: each statement since BEGIN was committed when it ran, and ROLLBACK cannot undo it",
                    ));
                }
                Response::TransactionEnd(Tag::new("ROLLBACK"))
            }
        })
    }
}

fn internal(error: PgWireError) -> ApiError {
    ApiError::new(ErrorKind::Internal, error.to_string())
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = Session::of(client)?;
        let response = match self
            .run(&session, query, Vec::new(), &Format::UnifiedText, "query", None)
            .await
        {
            Ok(response) => response,
            Err(error) => Response::Error(Box::new(info(&error))),
        };
        Ok(vec![response])
    }
}

/// Plans statements when they are parsed, so Describe can answer their
/// parameter and result types.
pub(crate) struct Parser {
    sql: SqlService,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = Session::of(client)?;
        let timeout_ms = session.settings.timeout_ms.load(Ordering::Relaxed);
        let warehouse = self.sql.engine().warehouse();
        if let Some(local) = catalog::answer(sql, warehouse, timeout_ms).await {
            let schema = match local.map_err(wire)? {
                Local::Rows(batch) => batch.schema(),
                _ => Arc::new(Schema::empty()),
            };
            return Ok(Some(PgStatement {
                sql: sql.to_string(),
                schema,
                parameters: Vec::new(),
            }));
        }
        let prepared = self
            .sql
            .prepare(session.role, sql.to_string(), false)
            .await
            .map_err(wire)?;
        Ok(Some(PgStatement {
            sql: sql.to_string(),
            schema: prepared.schema,
            parameters: prepared
                .parameters
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
        }))
    }

    fn get_parameter_types(&self, statement: &PgStatement) -> PgWireResult<Vec<Type>> {
        Ok(statement.parameters.iter().map(params::pg_type).collect())
    }

    fn get_result_schema(
        &self,
        statement: &PgStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let fields = rows::fields(
            &rows::promised(&statement.schema),
            format.unwrap_or(&Format::UnifiedText),
        )?;
        Ok(fields.as_ref().clone())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = PgStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = Session::of(client)?;
        let statement = &portal.statement.statement;
        let params = params::decode(portal, &statement.parameters).map_err(wire)?;
        let described = !statement.schema.fields().is_empty();
        let promised = described.then(|| rows::promised(&statement.schema));
        let response = self
            .run(
                &session,
                &statement.sql,
                params,
                &portal.result_column_format,
                "execute",
                promised,
            )
            .await
            .map_err(wire)?;
        // Describe promised no columns for a statement that was not a query
        // (its columns are known only once it ran): answer its tag alone.
        Ok(match response {
            Response::Query(mut rows) if !described => {
                let mut count = 0;
                while let Some(row) = futures::StreamExt::next(rows.data_rows()).await {
                    row?;
                    count += 1;
                }
                Response::Execution(Tag::new("SELECT").with_rows(count))
            }
            other => other,
        })
    }
}
