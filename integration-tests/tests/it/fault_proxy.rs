//! A TCP proxy in front of a real server (here moto's S3) that a test can
//! make fail the way object stores fail: pass bytes through, drop every
//! connection (a network outage: refused or reset before an answer), or
//! answer every HTTP request `503 SlowDown` (S3 throttling or a 5xx).
//! Setting a mode cuts the connections already open, so a pooled
//! keep-alive connection cannot slip past the fault.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the server.
    Pass = 0,
    /// Close each connection at once, before any answer.
    Drop = 1,
    /// Answer each request `503 SlowDown` and close, forwarding nothing.
    SlowDown = 2,
}

/// A running proxy; stops accepting on drop.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use instead of the server's endpoint.
    pub endpoint: String,
    mode: Arc<AtomicU8>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl FaultProxy {
    /// A proxy to `target` (`host:port`) in [`Fault::Pass`] mode.
    pub fn start(target: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let mode = Arc::new(AtomicU8::new(Fault::Pass as u8));
        let open = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let target = target.to_string();
        let (mode2, open2, stop2) = (mode.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                match mode2.load(Ordering::SeqCst) {
                    0 => forward(client, &target, &open2),
                    1 => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    _ => {
                        std::thread::spawn(move || slow_down(client));
                    }
                }
            }
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            mode,
            open,
            stop,
            port,
        }
    }

    /// Switches to `fault`, cutting every open connection.
    pub fn set(&self, fault: Fault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
        for stream in self.open.lock().expect("proxy lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set(Fault::Drop);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn forward(client: TcpStream, target: &str, open: &Mutex<Vec<TcpStream>>) {
    let Ok(server) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let pairs = (|| Some((client.try_clone().ok()?, server.try_clone().ok()?)))();
    let Some((client_out, server_in)) = pairs else {
        return;
    };
    if let Ok(mut open) = open.lock() {
        open.extend(client.try_clone().ok());
        open.extend(server.try_clone().ok());
    }
    std::thread::spawn(move || pump(client, server_in));
    std::thread::spawn(move || pump(server, client_out));
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads a request's head and answers S3's throttling error.
fn slow_down(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(answer.as_bytes());
    let _ = client.shutdown(Shutdown::Both);
}
