//! Authentication before anything else: the password a client sends is a
//! bearer token, checked by the same [`Auth`] as HTTP and Flight, and its
//! role is kept in the session (pgwire's typed extensions, which no client
//! message can write). Until then, pgwire routes every message here, so an
//! unauthenticated client's Query or Parse is never read as SQL. With no
//! tokens configured the server is open, as the HTTP API is, and every
//! session is an operator's.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::error::fatal;
use crate::auth::{Auth, Role};

/// The role a session authenticated as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionRole(pub(crate) Role);

/// The version psql and drivers see: a Postgres major they know the
/// catalog queries of, and silt's own.
pub(crate) const SERVER_VERSION: &str = concat!("15.0 (silt ", env!("CARGO_PKG_VERSION"), ")");

/// Checks the password and starts the session.
pub(crate) struct Startup {
    auth: Auth,
    parameters: DefaultServerParameterProvider,
}

impl Startup {
    pub(crate) fn new(auth: Auth) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_owned();
        parameters.is_superuser = false;
        parameters.time_zone = "UTC".to_owned();
        Self { auth, parameters }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.auth.enabled() {
                    client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    client
                        .send(PgWireBackendMessage::Authentication(
                            Authentication::CleartextPassword,
                        ))
                        .await?;
                } else {
                    client.session_extensions().insert(SessionRole(Role::Operator));
                    finish_authentication(client, &self.parameters).await?;
                }
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(password)
                if matches!(client.state(), PgWireConnectionState::AuthenticationInProgress) =>
            {
                let password = password.into_password()?;
                match self.auth.role_of_token(&password.password) {
                    Ok(role) => {
                        client.session_extensions().insert(SessionRole(role));
                        finish_authentication(client, &self.parameters).await
                    }
                    Err(_) => Err(fatal(
                        "28P01",
                        "password authentication failed: the password must be a bearer token this server knows",
                    )),
                }
            }
            _ => Err(fatal(
                "28000",
                "authenticate first: send the startup message and then the password",
            )),
        }
    }
}
