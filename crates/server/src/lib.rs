//! silt-server owns the network surface: the axum HTTP API (`/v1/tables`,
//! `/v1/tables/{t}/rows`, `/healthz`, `/metrics`, `/openapi.json`), Arrow
//! Flight `DoPut` ingest, bearer-token auth and the TOML config. It wires
//! silt-ingest, silt-sql and silt-erasure (whose worker it starts) and translates their
//! errors through `silt_table::ErrorKind`; it owns no logic of theirs.
//!
//! ```text
//!  HTTP :7070 ── axum router ── auth ──┬─ /v1/tables*        → silt-table
//!                                      ├─ /v1/erasures*      → silt-erasure (worker task)
//!                                      ├─ /v1/sources*       → silt-sources (status, pause)
//!                                      └─ /v1/tables/t/rows  → silt-ingest Ingestor ─┐
//!  Flight :7071 ── DoPut ── auth ──────────────────────────────────────────────────┤
//!  Postgres :5433 ── password = token ── SqlService (as /v1/sql and Flight SQL)    │
//!  [[sources]] ── silt-sources tasks (NATS JetStream) ─────────────────────────────┤
//!                                        one group committer per table ◀───────────┘
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), silt_server::ServerError> {
//! silt_server::serve(silt_server::ServeOptions {
//!     warehouse: "./silt-data".into(),
//!     http: "127.0.0.1:7070".into(),
//!     flight: "127.0.0.1:7071".into(),
//!     pg: "127.0.0.1:5433".into(),
//!     config: None,
//! })
//! .await
//! # }
//! ```

pub mod auth;
pub mod config;
mod error;
pub mod flight;
pub mod http;
pub mod metrics;
pub mod pg;
pub mod readiness;
mod sql_encode;
pub mod sql_service;
mod statement_log;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use silt_ingest::{IngestConfig, Ingestor};
use silt_table::Warehouse;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{ApiError, Problem, ServerError};

/// What `silt serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Warehouse directory or object-store URL.
    pub warehouse: String,
    /// HTTP listen address (`127.0.0.1:0` picks a free port).
    pub http: String,
    /// Flight listen address.
    pub flight: String,
    /// Postgres wire protocol listen address.
    pub pg: String,
    /// Optional TOML config file.
    pub config: Option<PathBuf>,
}

fn parse_addr(text: &str) -> Result<SocketAddr, ServerError> {
    text.parse()
        .map_err(|e: std::net::AddrParseError| ServerError::Bind {
            addr: text.to_string(),
            reason: format!("{e}; use IP:PORT such as 127.0.0.1:7070"),
        })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|e| ServerError::Bind {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

/// Runs the server until SIGINT/SIGTERM, then stops taking requests, lets
/// in-flight ones finish and waits for every queued commit.
///
/// Once every listener is bound it prints one line on stdout:
/// `silt listening http=ADDR flight=ADDR pg=ADDR`.
pub async fn serve(options: ServeOptions) -> Result<(), ServerError> {
    let config = match &options.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let auth = auth::Auth::new(&config.auth);
    // Certificate problems stop the start, before anything is bound.
    let pg_tls = pg::PgTls::from_config(&config.pg).map_err(|reason| ServerError::ConfigInvalid {
        path: options
            .config
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string()),
        reason,
    })?;
    let http_addr = parse_addr(&options.http)?;
    let flight_addr = parse_addr(&options.flight)?;
    let pg_addr = parse_addr(&options.pg)?;
    for addr in [http_addr, flight_addr, pg_addr] {
        if !auth.enabled() && !addr.ip().is_loopback() {
            return Err(ServerError::OpenNonLoopback {
                addr: addr.to_string(),
            });
        }
    }
    let warehouse = Warehouse::open(&options.warehouse)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let ingest_config = IngestConfig {
        max_queued_bytes: config.ingest.max_queued_bytes,
        group_commit: config.ingest.group_commit,
    };
    let ingestor = Arc::new(Ingestor::with_observer(
        warehouse.clone(),
        ingest_config,
        metrics.clone(),
    ));
    let http_listener = bind(http_addr).await?;
    let flight_listener = bind(flight_addr).await?;
    let pg_listener = bind(pg_addr).await?;
    let local = |l: &TcpListener, fallback: SocketAddr| l.local_addr().unwrap_or(fallback);
    let (http_local, flight_local, pg_local) = (
        local(&http_listener, http_addr),
        local(&flight_listener, flight_addr),
        local(&pg_listener, pg_addr),
    );

    // Erasure needs its secrets; without them (an object-store warehouse
    // with no [erasure] config) the rest of the server still serves.
    let mut erasure_unavailable = String::new();
    let erasure = match silt_erasure::Erasure::open_with_observer(
        warehouse.clone(),
        silt_erasure::ErasureConfig {
            secret: config.erasure.secret.clone(),
            key: config.erasure.key.clone(),
            step_delay: std::time::Duration::from_millis(config.erasure.step_delay_ms),
        },
        metrics.clone(),
    ) {
        Ok(service) => {
            // Erased subjects stay erased from the first write this server takes.
            if let Err(error) = service.load_suppression().await {
                tracing::warn!(%error, "erasure ledger not readable at start; erased subjects are suppressed from the worker's first round");
            }
            Some(Arc::new(service))
        }
        Err(error) => {
            tracing::warn!(%error, "erasure is not available");
            erasure_unavailable = error.to_string();
            None
        }
    };
    let erasure_state = match &erasure {
        Some(service) => http::ErasureState::ready(service.clone()),
        None => http::ErasureState::unavailable(erasure_unavailable),
    };
    // Statements run on threads of their own (see sql_service).
    let query_runtime =
        sql_service::query_runtime(config.sql.query_threads).map_err(|e| ServerError::Serve {
            service: "sql",
            reason: format!("cannot start the query threads: {e}"),
        })?;
    let engine = silt_sql::Engine::with_options(
        warehouse.clone(),
        silt_sql::EngineOptions {
            limits: silt_sql::StatementLimits {
                max_statement_bytes: config.sql.max_statement_bytes,
                max_expression_depth: config.sql.max_expression_depth,
            },
            memory_limit: (config.sql.memory_limit_bytes > 0).then_some(config.sql.memory_limit_bytes),
        },
    );
    let sql = sql_service::SqlService::new(
        engine,
        sql_service::SqlLimits {
            statement_timeout: std::time::Duration::from_millis(config.sql.statement_timeout_ms),
            max_rows: config.sql.max_rows,
            max_concurrent: config.sql.max_concurrent_statements,
        },
        query_runtime.handle().clone(),
    )
    .with_ingestor(ingestor.clone())
    .with_metrics(metrics.clone());
    // Listeners are bound: the sources start consuming now, and stop
    // before the ingest service drains.
    let sources = Arc::new(silt_sources::Sources::start(
        &config.sources,
        ingestor.clone(),
        metrics.clone(),
    ));
    let state = http::AppState {
        warehouse: warehouse.clone(),
        ingestor: ingestor.clone(),
        auth: auth.clone(),
        metrics,
        max_body_bytes: config.ingest.max_body_bytes,
        sql: sql.clone(),
        erasure: erasure_state,
        sources: sources.clone(),
        readiness: readiness::Readiness::new(warehouse.clone()),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The erasure worker resumes requests a crash left open, then waits for new ones.
    let erasure_worker = erasure.map(|service| tokio::spawn(service.work(stopped.clone())));
    let wait = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let http_server =
        axum::serve(http_listener, http::router(state)).with_graceful_shutdown(wait(stopped.clone()));
    let pg_server = tokio::spawn(pg::serve(
        pg_listener,
        sql.clone(),
        auth.clone(),
        pg_tls,
        wait(stopped.clone()),
    ));
    let flight_service = FlightServiceServer::new(flight::SiltFlight::new(ingestor.clone(), sql, auth))
        .max_decoding_message_size(usize::try_from(config.ingest.max_body_bytes).unwrap_or(usize::MAX));
    let flight_server = tonic::transport::Server::builder()
        .add_service(flight_service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(flight_listener),
            wait(stopped.clone()),
        );

    println!("silt listening http={http_local} flight={flight_local} pg={pg_local}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(warehouse = warehouse.display_location(), http = %http_local, flight = %flight_local, pg = %pg_local, "serving");

    let drain = std::time::Duration::from_millis(config.server.drain_timeout_ms);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            drain_ms = drain.as_millis() as u64,
            "shutting down: finishing in-flight requests and commits"
        );
        let _ = stop.send(true);
        // The drain is bounded: a streaming answer or a client that never
        // reads must not keep the process alive.
        tokio::time::sleep(drain).await;
        let _ = drain_tx.send(());
    });
    let stop_sources = {
        let sources = sources.clone();
        let stopped = stopped.clone();
        async move {
            wait(stopped).await;
            sources.shutdown().await;
        }
    };
    let servers = async {
        let (http_result, flight_result, ()) =
            tokio::join!(async { http_server.await }, flight_server, stop_sources);
        ingestor.shutdown().await;
        (http_result, flight_result)
    };
    let (http_result, flight_result) = tokio::select! {
        results = servers => results,
        _ = drain_rx => {
            tracing::warn!("drain timeout passed: stopping with requests still in flight");
            query_runtime.shutdown_background();
            return Ok(());
        }
    };
    signals.abort();
    pg_server.abort();
    // Listeners are closed, in-flight requests answered, queues drained.
    if let Some(worker) = erasure_worker {
        // A request cut short here stays open in the ledger and resumes on restart.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), worker).await;
    }
    query_runtime.shutdown_background();
    tracing::info!("stopped");
    http_result.map_err(|e| ServerError::Serve {
        service: "http",
        reason: e.to_string(),
    })?;
    flight_result.map_err(|e| ServerError::Serve {
        service: "flight",
        reason: e.to_string(),
    })?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
