//! TLS for the Postgres endpoint: the certificate and key of `[pg]`, read
//! once at start-up into a rustls acceptor (ring, TLS 1.2 and 1.3), and the
//! stream a connection runs on once it asked for TLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::PgSection;

/// What the endpoint does about TLS.
#[derive(Clone, Default)]
pub struct PgTls {
    /// Set when `[pg] tls_cert` and `tls_key` are.
    pub acceptor: Option<TlsAcceptor>,
    /// `[pg] require_tls`: plain-text clients are refused.
    pub required: bool,
}

impl PgTls {
    /// Reads `[pg]`'s certificate and key; the error names the file and
    /// what is wrong with it.
    pub fn from_config(section: &PgSection) -> Result<Self, String> {
        let (Some(cert), Some(key)) = (&section.tls_cert, &section.tls_key) else {
            return Ok(Self::default());
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| format!("pg.tls: cannot read {}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("pg.tls_cert {}: not a PEM certificate: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("pg.tls_cert {}: holds no certificate", cert.display()));
        }
        let private = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| format!("pg.tls_key {}: not a PEM private key: {e}", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("pg.tls: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| format!("pg.tls: the key does not fit the certificate: {e}"))?;
        // What libpq 17 offers; clients that offer nothing still connect.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Self {
            acceptor: Some(TlsAcceptor::from(Arc::new(config))),
            required: section.require_tls,
        })
    }
}

/// A connection's byte stream: plain TCP, or TLS after an SSLRequest.
pub(crate) enum Wire {
    /// Plain text.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_flush(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
