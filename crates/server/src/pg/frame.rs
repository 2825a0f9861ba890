//! Bounds what one client can make the server hold: every frontend message
//! declares its length up front, and this reader refuses a length above the
//! limit before the message's bytes are buffered (pgwire alone would buffer
//! a simple Query of up to 1 GiB). It sits under pgwire's codec and sees the
//! raw bytes: the startup message (no type byte), then typed messages.
//!
//! It also answers the encryption requests: an SSLRequest gets `S` and a
//! TLS handshake when `[pg]` has a certificate, `N` otherwise (as a server
//! without TLS does, so `sslmode=prefer` clients, psql's default, carry on in
//! plain text); a GSSENCRequest always gets `N`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::tls::Wire;

/// The codes of the SSLRequest and GSSENCRequest packets.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// A stream that fails a read once a message declares more than `limit` bytes.
pub(crate) struct FrameGuard {
    inner: Wire,
    prefix: Vec<u8>,
    prefix_at: usize,
    limit: usize,
    typed: bool,
    header: [u8; 5],
    have: usize,
    remaining: usize,
}

impl FrameGuard {
    /// Answers encryption requests on `socket` (at most two: GSS, then SSL),
    /// with a TLS handshake through `tls` when given, and wraps it; the
    /// bytes read past them are the startup message's.
    pub(crate) async fn negotiate(
        socket: TcpStream,
        limit: usize,
        tls: Option<&TlsAcceptor>,
    ) -> io::Result<Self> {
        let mut first = [0u8; 8];
        let mut socket = Wire::Plain(socket);
        for _ in 0..3 {
            socket.read_exact(&mut first).await?;
            let length = u32::from_be_bytes([first[0], first[1], first[2], first[3]]);
            let code = u32::from_be_bytes([first[4], first[5], first[6], first[7]]);
            if length == 8 && (code == SSL_REQUEST || code == GSSENC_REQUEST) {
                socket = match (socket, tls) {
                    (Wire::Plain(mut tcp), Some(acceptor)) if code == SSL_REQUEST => {
                        tcp.write_all(b"S").await?;
                        tcp.flush().await?;
                        Wire::Tls(Box::new(acceptor.accept(tcp).await?))
                    }
                    (mut other, _) => {
                        other.write_all(b"N").await?;
                        other.flush().await?;
                        other
                    }
                };
                continue;
            }
            let mut guard = Self {
                inner: socket,
                prefix: Vec::new(),
                prefix_at: 0,
                limit,
                typed: false,
                header: [0; 5],
                have: 0,
                remaining: 0,
            };
            guard.prefix = first.to_vec();
            return Ok(guard);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many encryption requests",
        ))
    }

    /// Whether the connection runs over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.inner, Wire::Tls(_))
    }

    /// Follows message boundaries through `bytes`.
    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            let need = if self.typed { 5 } else { 4 };
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have == need {
                let at = need - 4;
                let length = u32::from_be_bytes([
                    self.header[at],
                    self.header[at + 1],
                    self.header[at + 2],
                    self.header[at + 3],
                ]) as usize;
                if !(4..=self.limit).contains(&length) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "a message of {length} bytes is over this server's limit of {} bytes",
                            self.limit
                        ),
                    ));
                }
                self.remaining = length - 4;
                self.have = 0;
                self.typed = true;
            }
        }
        Ok(())
    }
}

impl AsyncRead for FrameGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.prefix_at < this.prefix.len() {
            let n = (this.prefix.len() - this.prefix_at).min(buf.remaining());
            let bytes = this.prefix[this.prefix_at..this.prefix_at + n].to_vec();
            this.prefix_at += n;
            // Scanned as it is handed on, so a refusal reaches the codec
            // (and the client gets an ErrorResponse).
            this.scan(&bytes)?;
            buf.put_slice(&bytes);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                Poll::Ready(this.scan(fresh))
            }
            other => other,
        }
    }
}

impl AsyncWrite for FrameGuard {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
