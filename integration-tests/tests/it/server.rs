//! A real `silt serve` process on a test's temporary warehouse.
//!
//! The server binds both listeners on ports it chooses (`127.0.0.1:0`) and
//! announces them on its first stdout line
//! (`silt listening http=ADDR flight=ADDR pg=ADDR`); the harness reads that line, then
//! polls `GET /healthz` until it answers `{"status":"ok"}`. Its stderr (the
//! log) goes to a file in the temp dir so tests can grep it. Dropping a
//! [`Server`] kills it.
//!
//! [`Http`] clients follow the server across [`Server::restart`] (which gets
//! new ports): they look the address up at every request.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::{Silt, python, silt_bin};

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `/healthz` may take to answer 200 after that.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a single HTTP request may take (a commit in a debug build).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Numbers config and log files so several servers share one temp dir.
static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);

/// The addresses a running server announced.
#[derive(Debug, Clone)]
struct Addrs {
    http: String,
    flight: String,
    pg: String,
}

/// A running `silt serve`.
pub struct Server {
    /// The warehouse location (a local directory or an `s3://` URL).
    warehouse: String,
    /// Extra environment (object-store credentials) of `silt serve`.
    envs: Vec<(String, String)>,
    config: Option<PathBuf>,
    log: PathBuf,
    child: Child,
    addrs: Arc<RwLock<Addrs>>,
    client: Client,
}

impl Server {
    /// Starts a server on `silt`'s warehouse, without a config file.
    pub fn start(silt: &Silt) -> Server {
        Server::launch(silt, None)
    }

    /// Starts a server on `silt`'s warehouse with `config` (TOML) as `--config`.
    pub fn start_with_config(silt: &Silt, config: &str) -> Server {
        let path = silt.scratch(&format!(
            "silt-{}.toml",
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, config).expect("write server config");
        Server::launch(silt, Some(path))
    }

    fn launch(silt: &Silt, config: Option<PathBuf>) -> Server {
        let warehouse = silt.location();
        if silt.is_local() {
            std::fs::create_dir_all(silt.warehouse()).expect("create warehouse dir");
        }
        let envs = silt.envs();
        let log = silt.scratch(&format!(
            "serve-{}.log",
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        ));
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        let (child, addrs) = spawn(&warehouse, &envs, config.as_deref(), &log, &client);
        Server {
            warehouse,
            envs,
            config,
            log,
            child,
            addrs: Arc::new(RwLock::new(addrs)),
            client,
        }
    }

    /// An HTTP client for this server (no token); it follows restarts.
    pub fn http(&self) -> Http {
        Http {
            addrs: Arc::clone(&self.addrs),
            client: self.client.clone(),
            token: None,
        }
    }

    /// `grpc://127.0.0.1:PORT`, the Flight endpoint.
    pub fn flight_uri(&self) -> String {
        format!("grpc://{}", self.addrs().flight)
    }

    /// `127.0.0.1:PORT`, the Postgres wire endpoint.
    pub fn pg_addr(&self) -> String {
        self.addrs().pg
    }

    /// `http://127.0.0.1:PORT`, the HTTP endpoint.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addrs().http)
    }

    fn addrs(&self) -> Addrs {
        self.addrs.read().expect("addrs lock").clone()
    }

    /// The process id of the running server (it changes on [`Server::restart`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server (and its earlier incarnations) wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same warehouse and config (killing it
    /// with SIGKILL first if it still runs). It gets new ports; [`Http`]
    /// clients made before follow.
    pub fn restart(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
        let (child, addrs) = spawn(
            &self.warehouse,
            &self.envs,
            self.config.as_deref(),
            &self.log,
            &self.client,
        );
        self.child = child;
        *self.addrs.write().expect("addrs lock") = addrs;
    }

    /// SIGTERM, then waits (at most 30 s) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "silt serve did not exit within 30 s of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that fails because the server stopped answering is only
        // diagnosable with the server's side: did it exit (how), and what
        // did it log last.
        if std::thread::panicking() {
            let state = match self.child.try_wait() {
                Ok(Some(status)) => format!("had exited: {status:?}"),
                Ok(None) => "was still running".to_string(),
                Err(e) => format!("state unknown: {e}"),
            };
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "silt serve (pid {}) {state}; last lines of its log {}:\n{}",
                self.child.id(),
                self.log.display(),
                tail.join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An error with its sources ("error sending request: … : connection
/// refused" or "… operation timed out"): which one tells a crashed server
/// from a stalled one.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Spawns `silt serve`, reads its listening line and waits for `/healthz`.
fn spawn(
    warehouse: &str,
    envs: &[(String, String)],
    config: Option<&Path>,
    log: &Path,
    client: &Client,
) -> (Child, Addrs) {
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open server log");
    let mut cmd = Command::new(silt_bin());
    cmd.arg("serve").arg("--warehouse").arg(warehouse).args([
        "--http",
        "127.0.0.1:0",
        "--flight",
        "127.0.0.1:0",
        "--pg",
        "127.0.0.1:0",
    ]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .env_remove("SILT_WAREHOUSE")
        .env_remove("SILT_HTTP")
        .env_remove("SILT_FLIGHT")
        .env_remove("SILT_PG")
        .env_remove("SILT_CONFIG")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn silt serve");

    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining, so the server never writes into a closed pipe.
        for line in lines {
            if line.is_err() {
                break;
            }
        }
    });
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "silt serve printed no listening line ({e}); exit: {status:?}; log:\n{}",
                log_text()
            );
        }
    };
    let Some(addrs) = parse_listening(&line) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "want `silt listening http=ADDR flight=ADDR pg=ADDR`, got {line:?}; log:\n{}",
            log_text()
        );
    };

    let deadline = Instant::now() + HEALTH_TIMEOUT;
    let url = format!("http://{}/healthz", addrs.http);
    loop {
        if let Ok(resp) = client.get(&url).send()
            && resp.status().as_u16() == 200
        {
            let body: Value = resp.json().expect("/healthz answers JSON");
            assert_eq!(body["status"], "ok", "/healthz body: {body}");
            return (child, addrs);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "silt serve exited ({status}) before /healthz answered; log:\n{}",
                log_text()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "/healthz did not answer 200 within {HEALTH_TIMEOUT:?}; log:\n{}",
                log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `silt listening http=127.0.0.1:P flight=127.0.0.1:Q pg=127.0.0.1:R` → the addresses.
fn parse_listening(line: &str) -> Option<Addrs> {
    let rest = line.trim().strip_prefix("silt listening ")?;
    let mut http = None;
    let mut flight = None;
    let mut pg = None;
    for part in rest.split_whitespace() {
        if let Some(addr) = part.strip_prefix("http=") {
            http = Some(addr.to_string());
        } else if let Some(addr) = part.strip_prefix("flight=") {
            flight = Some(addr.to_string());
        } else if let Some(addr) = part.strip_prefix("pg=") {
            pg = Some(addr.to_string());
        }
    }
    let (http, flight, pg) = (http?, flight?, pg?);
    let port_ok = |a: &str| {
        a.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_some_and(|p| p > 0)
    };
    (port_ok(&http) && port_ok(&flight) && port_ok(&pg)).then_some(Addrs { http, flight, pg })
}

/// An HTTP client bound to one [`Server`], optionally with a bearer token.
#[derive(Clone)]
pub struct Http {
    addrs: Arc<RwLock<Addrs>>,
    client: Client,
    token: Option<String>,
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics, showing the body, if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("status {} body is not JSON ({e}): {}", self.status, self.body))
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

impl Http {
    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_token(&self, token: &str) -> Http {
        Http {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.read().expect("addrs lock").http)
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Result<Reply, reqwest::Error> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let resp = request.send()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text()?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        let url = self.url(path);
        self.send(self.client.get(&url))
            .unwrap_or_else(|e| panic!("GET {url}: {}", chain(&e)))
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        let url = self.url(path);
        self.send(self.client.post(&url).json(body))
            .unwrap_or_else(|e| panic!("POST {url}: {}", chain(&e)))
    }

    /// `POST path` with raw bytes; transport errors are returned, not panics.
    pub fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.send(request)
    }

    /// [`Http::try_post`], panicking on transport errors.
    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Reply {
        self.try_post(path, content_type, body, headers)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }
}

// ---------------------------------------------------------------- shared fixtures
//
// The events table, producers and problem documents, shared by the modules
// that drive a real server (`serve_ingest`, `serve_sql`).

/// The table the server tests ingest into.
pub const EVENTS: &str = "events";
/// Its ingest endpoint.
pub const EVENTS_ROWS: &str = "/v1/tables/events/rows";
/// The NDJSON media type.
pub const NDJSON: &str = "application/x-ndjson";

/// The `POST /v1/tables` body for the events table.
pub fn events_spec(properties: Value) -> Value {
    json!({
        "name": EVENTS,
        "columns": [
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "email", "type": "VARCHAR"},
            {"name": "ts", "type": "TIMESTAMP"},
            {"name": "day", "type": "DATE"}
        ],
        "partition_columns": ["day"],
        "properties": properties
    })
}

/// Creates the events table over HTTP; returns the 201 body.
pub fn create_events(http: &Http, properties: Value) -> Value {
    let reply = http.post_json("/v1/tables", &events_spec(properties));
    assert_eq!(reply.status, 201, "POST /v1/tables: {}", reply.body);
    reply.json()
}

/// Event `id` as a JSON row (deterministic fields).
pub fn event(id: u64) -> Value {
    json!({
        "id": id,
        "email": format!("user{id}@example.com"),
        "ts": format!("2026-11-25T10:{:02}:{:02}Z", (id / 60) % 60, id % 60),
        "day": format!("2026-11-{}", 20 + id % 3),
    })
}

/// NDJSON events with these ids.
pub fn ndjson(ids: Range<u64>) -> Vec<u8> {
    ndjson_values(ids.map(event))
}

/// One JSON document per line.
pub fn ndjson_values(values: impl IntoIterator<Item = Value>) -> Vec<u8> {
    let mut out = String::new();
    for v in values {
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// `integration-tests/python/producer.py`.
pub fn producer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/producer.py")
}

/// Runs `python/producer.py args…`; returns the JSON lines it printed.
pub fn producer(args: &[&str]) -> Vec<Value> {
    let out = Command::new(python())
        .arg(producer_script())
        .args(args)
        .env_remove("SILT_FORMAT")
        .output()
        .expect("runs python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "producer.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("producer.py printed {l:?}: {e}")))
        .collect()
}

/// Arrow IPC stream or Parquet bytes of events `start..start+rows`, made by pyarrow.
pub fn pyarrow_bytes(silt: &Silt, format: &str, start: u64, rows: u64) -> Vec<u8> {
    let path = silt.scratch(&format!("{format}-{start}.{format}"));
    let path_str = path.to_string_lossy().into_owned();
    producer(&[
        "file",
        format,
        &path_str,
        "--start",
        &start.to_string(),
        "--rows",
        &rows.to_string(),
    ]);
    std::fs::read(&path).expect("read pyarrow output")
}

/// `Silt-Producer-Id` and `Silt-Sequence` headers.
pub fn sequence_headers(producer: &str, sequence: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Silt-Producer-Id", producer.to_string()),
        ("Silt-Sequence", sequence.to_string()),
    ]
}

/// Asserts a 200 ingest answer and returns its body.
pub fn assert_ingested(reply: &Reply, rows_written: u64) -> Value {
    assert_eq!(
        reply.status, 200,
        "ingest answered {}: {}",
        reply.status, reply.body
    );
    let body = reply.json();
    assert_eq!(body["table"], EVENTS, "{body}");
    assert_eq!(body["rows_written"], rows_written, "{body}");
    assert_eq!(body["rows_rejected"], 0, "{body}");
    assert_eq!(body["duplicate"], false, "{body}");
    assert!(body["version"].is_u64(), "{body}");
    body
}

/// Asserts an RFC 7807 error with `status`; returns the problem document.
pub fn assert_problem(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status, status,
        "want {status}, got {}: {}",
        reply.status, reply.body
    );
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "content-type of a {status}: {:?}",
        reply.header("content-type")
    );
    let problem = reply.json();
    for field in ["type", "title", "detail"] {
        assert!(
            problem[field].as_str().is_some_and(|s| !s.is_empty()),
            "problem lacks {field}: {problem}"
        );
    }
    assert_eq!(problem["status"], status, "{problem}");
    problem
}

/// A problem document's `detail`.
pub fn detail(problem: &Value) -> String {
    problem["detail"].as_str().unwrap_or("").to_string()
}

/// How a request that got no answer is treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outages {
    /// A connection error fails the test: the server must not go away.
    Fail,
    /// The server may be killed and restarted: retry with the same sequence.
    Retry,
}

/// Posts one request (same producer and sequence every time) until a server
/// acknowledges it with 200 (always the same `server`). 429 and 503
/// are retried after `Retry-After` / a backoff; connection errors too when
/// `outages` is `Retry`; anything else, or passing `deadline`, fails the test.
/// Returns the server, its answer and whether an attempt got no answer.
pub fn send_until_acked(
    servers: &[Http],
    server: usize,
    producer: &str,
    sequence: u64,
    body: &[u8],
    outages: Outages,
    deadline: Instant,
) -> (usize, Value, bool) {
    let mut attempt = 0u32;
    let mut lost = false;
    loop {
        let backoff = Duration::from_millis(50u64 << attempt.min(4));
        let result = servers[server].try_post(
            EVENTS_ROWS,
            NDJSON,
            body.to_vec(),
            &sequence_headers(producer, sequence),
        );
        let wait = match result {
            Ok(reply) if reply.status == 200 => return (server, reply.json(), lost),
            Ok(reply) if reply.status == 429 || reply.status == 503 => reply
                .header("retry-after")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(5)))
                .unwrap_or(backoff),
            Ok(reply) => panic!(
                "{producer} sequence {sequence}: server {server} answered {}: {}",
                reply.status, reply.body
            ),
            Err(_) if outages == Outages::Retry => {
                lost = true;
                backoff
            }
            Err(e) => panic!(
                "{producer} sequence {sequence}: server {server} did not answer: {}",
                chain(&e)
            ),
        };
        assert!(
            Instant::now() < deadline,
            "{producer} sequence {sequence}: not acknowledged after {attempt} attempts"
        );
        std::thread::sleep(wait);
        attempt += 1;
    }
}

/// A config with one token per role: `r-token` (reader), `w-token`
/// (writer), `o-token` (operator).
pub const AUTH_CONFIG: &str = r#"
[[auth.tokens]]
token = "r-token"
role = "reader"

[[auth.tokens]]
token = "w-token"
role = "writer"

[[auth.tokens]]
token = "o-token"
role = "operator"
"#;
