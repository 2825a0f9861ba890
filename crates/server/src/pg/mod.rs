//! The Postgres wire endpoint (`silt serve --pg ADDR`): psql, Postgres
//! drivers and BI tools reach silt through the same [`SqlService`] as
//! `/v1/sql` and Flight SQL — a thin adapter, owning no rule of its own.
//!
//! ```text
//!  TCP ── frame guard (size limit; SSL → TLS with a [pg] certificate, else `N`) ── pgwire codec
//!     ── startup: password = bearer token → role (auth.rs)
//!     ── Query / Parse·Bind·Describe·Execute ── catalog & session statements (catalog.rs)
//!                                            └─ SqlService::run / prepare ── rows (arrow-pg) + tags
//! ```
//!
//! `frame` bounds every message, `startup` authenticates, `query` runs,
//! `params` decodes bind values, `rows` encodes answers, `catalog` answers
//! psql's `\dt` / `\d` and session statements, `error` maps kinds to SQLSTATEs.

mod catalog;
mod error;
mod frame;
mod params;
mod query;
mod rows;
mod startup;
mod tls;

pub use tls::PgTls;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{PgWireMessageServerCodec, process_error, process_message};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;

use crate::auth::Auth;
use crate::sql_service::SqlService;

/// The largest message a client may send (a statement with its bind
/// values), as `/v1/sql` bounds its body.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

/// How long a client has to send its startup message and password.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// pgwire's handlers, all over one [`SqlService`], and the TLS settings.
struct Handlers {
    startup: Arc<startup::Startup>,
    queries: Arc<query::Queries>,
    tls: PgTls,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }
}

/// Serves the Postgres protocol on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    sql: SqlService,
    auth: Auth,
    tls: PgTls,
    stop: impl std::future::Future<Output = ()>,
) {
    let handlers = Arc::new(Handlers {
        startup: Arc::new(startup::Startup::new(auth)),
        queries: Arc::new(query::Queries::new(sql)),
        tls,
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (socket, _) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "pg: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handlers = handlers.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection(socket, handlers).await {
                tracing::debug!(%error, "pg: connection ended with an error");
            }
        });
    }
}

async fn connection(socket: TcpStream, handlers: Arc<Handlers>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let addr = socket.peer_addr()?;
    let guarded = match tokio::time::timeout(
        STARTUP_TIMEOUT,
        frame::FrameGuard::negotiate(socket, MAX_MESSAGE_BYTES, handlers.tls.acceptor.as_ref()),
    )
    .await
    {
        Ok(guarded) => guarded?,
        Err(_) => return Ok(()),
    };
    let secure = guarded.is_tls();
    let client = DefaultClient::new(addr, secure);
    let mut socket = Framed::new(guarded, PgWireMessageServerCodec::new(client));
    if handlers.tls.required && !secure {
        // Before the startup message is read: no password crosses in clear
        // text to be checked.
        let info = ErrorInfo::new(
            "FATAL".to_owned(),
            "28000".to_owned(),
            "this server accepts only TLS connections; connect with sslmode=require or verify-full"
                .to_owned(),
        );
        let _ = socket
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await;
        return Ok(());
    }
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        let authenticating = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let message = if authenticating {
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(message) => message,
                Err(_) => return Ok(()),
            }
        } else {
            socket.next().await
        };
        let message = match message {
            None => return Ok(()),
            Some(Ok(PgWireFrontendMessage::Terminate(_))) => return Ok(()),
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                // A message over the limit, or one that does not decode:
                // say so, then close (the stream is out of step).
                let info = ErrorInfo::new("FATAL".to_owned(), "08P01".to_owned(), error.to_string());
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await;
                return Ok(());
            }
        };
        let extended_message = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(error) = process_message(
            message,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            process_error(&mut socket, error, extended_message).await?;
        }
    }
}
