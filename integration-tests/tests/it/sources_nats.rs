//! Pull ingest from NATS JetStream: a real `nats-server -js` per test
//! (installed by `scripts/setup-brokers.sh`), messages published with
//! async-nats, the real `silt serve` consuming them through `[[sources]]`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{Http, Server};

const TABLE: &str = "orders";
const STREAM: &str = "ORDERS";
const PRODUCER: &str = "orders-ORDERS";

/// A `nats-server -js` on a free loopback port, with its store in a temp dir.
struct Nats {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SILT_NATS_SERVER") {
        return PathBuf::from(bin);
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let candidate = PathBuf::from(dir).join("nats-server");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("no nats-server: run scripts/setup-brokers.sh");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Nats {
    fn start() -> Nats {
        Nats::start_on(free_port())
    }

    fn start_on(port: u16) -> Nats {
        let store = tempfile::tempdir().expect("tempdir");
        let child = Command::new(nats_server_bin())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            port,
            _store: store,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JetStream publisher on its own small runtime.
struct Publisher {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
}

impl Publisher {
    /// Connects and creates the stream `ORDERS` over `orders.>`.
    fn connect(url: &str) -> Publisher {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let js = runtime.block_on(async {
            let client = async_nats::connect(url).await.expect("connects to nats");
            let js = jetstream::new(client);
            js.create_stream(jetstream::stream::Config {
                name: STREAM.to_string(),
                subjects: vec!["orders.>".to_string()],
                ..Default::default()
            })
            .await
            .expect("creates the stream");
            js
        });
        Publisher { runtime, js }
    }

    /// Publishes every payload to `subject` and waits for the stream's acks.
    fn publish(&self, subject: &str, payloads: impl IntoIterator<Item = String>) {
        self.runtime.block_on(async {
            let mut acks = Vec::new();
            for payload in payloads {
                let ack = self
                    .js
                    .publish(subject.to_string(), payload.into())
                    .await
                    .expect("publishes");
                acks.push(ack);
                if acks.len() >= 256 {
                    for ack in acks.drain(..) {
                        ack.await.expect("stream acks");
                    }
                }
            }
            for ack in acks {
                ack.await.expect("stream acks");
            }
        });
    }

    /// Creates the durable consumer silt would use (`silt-orders`), as a
    /// crashed silt leaves it: it delivered nothing acknowledged.
    fn create_unacked_consumer(&self) {
        self.runtime.block_on(async {
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            stream
                .create_consumer(jetstream::consumer::pull::Config {
                    durable_name: Some("silt-orders".to_string()),
                    ack_policy: jetstream::consumer::AckPolicy::All,
                    ..Default::default()
                })
                .await
                .expect("creates the consumer");
        });
    }

    /// The stream's last sequence.
    fn last_sequence(&self) -> u64 {
        self.runtime.block_on(async {
            let mut stream = self.js.get_stream(STREAM).await.expect("stream");
            stream.info().await.expect("stream info").state.last_sequence
        })
    }
}

fn order(id: u64) -> String {
    json!({"id": id, "item": format!("item-{}", id % 17), "qty": id % 5}).to_string()
}

fn create_orders(http: &Http) {
    let reply = http.post_json(
        "/v1/tables",
        &json!({
            "name": TABLE,
            "columns": [
                {"name": "id", "type": "BIGINT", "nullable": false},
                {"name": "item", "type": "VARCHAR"},
                {"name": "qty", "type": "INT"}
            ]
        }),
    );
    assert_eq!(reply.status, 201, "POST /v1/tables: {}", reply.body);
}

fn source_config(url: &str, extra: &str) -> String {
    format!(
        r#"
[[sources]]
name = "orders"
kind = "nats"
url = "{url}"
stream = "{STREAM}"
max_batch_messages = 500
{extra}
[[sources.routes]]
subject = "orders.*"
table = "{TABLE}"
"#
    )
}

fn scalar(http: &Http, sql: &str) -> Value {
    let reply = http.post_json("/v1/sql", &json!({"sql": sql}));
    assert_eq!(reply.status, 200, "{sql}: {}", reply.body);
    reply.json()["rows"][0][0].clone()
}

fn count(http: &Http) -> u64 {
    scalar(http, "SELECT count(*) FROM orders").as_u64().unwrap_or(0)
}

/// Polls `probe` until it holds, or fails after `within`.
fn wait_until(within: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !probe() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn source_status(http: &Http) -> Value {
    let reply = http.get("/v1/sources");
    assert_eq!(reply.status, 200, "GET /v1/sources: {}", reply.body);
    reply.json()["sources"][0].clone()
}

#[test]
fn nats_messages_land_exactly_once_across_two_kill_9s() {
    const MESSAGES: u64 = 20_000;
    let nats = Nats::start();
    let publisher = Publisher::connect(&nats.url());
    let silt = Silt::new();
    let mut server = Server::start_with_config(&silt, &source_config(&nats.url(), ""));
    let http = server.http();
    create_orders(&http);

    // Published in steps while silt consumes; silt is killed twice mid-stream.
    let step = MESSAGES / 10;
    let mut kills = 0;
    for chunk in 0..10 {
        let ids = chunk * step + 1..=(chunk + 1) * step;
        if chunk == 4 || chunk == 7 {
            // silt is consuming; it is killed right after a chunk is
            // published, while that chunk is being committed.
            wait_until(Duration::from_secs(120), "rows before the kill", || {
                count(&http) > 0
            });
            publisher.publish("orders.eu", ids.map(order));
            server.kill9();
            kills += 1;
            let at_kill = u64::try_from(silt.count(TABLE, None)).unwrap_or(0);
            eprintln!(
                "kill -9 with {at_kill} of {} published rows committed",
                (chunk + 1) * step
            );
            // Messages keep arriving while silt is down.
            server.restart();
            assert!(count(&http) >= at_kill, "rows lost across kill -9");
        } else {
            publisher.publish("orders.eu", ids.map(order));
        }
    }
    assert_eq!(kills, 2);
    assert_eq!(publisher.last_sequence(), MESSAGES);

    wait_until(Duration::from_secs(240), "every message in the table", || {
        count(&http) >= MESSAGES
    });
    // Nothing more arrives later (no late duplicate).
    std::thread::sleep(Duration::from_secs(2));
    let row = http.post_json(
        "/v1/sql",
        &json!({"sql": "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM orders"}),
    );
    assert_eq!(row.status, 200, "{}", row.body);
    assert_eq!(
        row.json()["rows"][0],
        json!([MESSAGES, MESSAGES, 1, MESSAGES]),
        "exactly the published ids, once each"
    );

    // Python deltalake agrees, and the txn action holds the stream's last sequence.
    let script = format!(
        "import json, os\nfrom deltalake import DeltaTable\n\
         t = DeltaTable({path:?})\n\
         print(json.dumps({{'rows': t.to_pyarrow_table().num_rows, 'txn': t.transaction_version({PRODUCER:?})}}))\n\
         os._exit(0)\n",
        path = silt.table_path(TABLE)
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let peer: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(peer, json!({"rows": MESSAGES, "txn": MESSAGES}));

    let status = source_status(&http);
    eprintln!("after the last restart: {status}");
    assert_eq!(status["state"], "running", "{status}");
    wait_until(Duration::from_secs(10), "lag 0", || {
        source_status(&http)["lag"] == 0
    });
}

#[test]
fn bad_messages_become_dead_letters_and_pause_holds_messages_pending() {
    let nats = Nats::start();
    let publisher = Publisher::connect(&nats.url());
    let silt = Silt::new();
    let config = format!(
        "{}\n[[auth.tokens]]\ntoken = \"r\"\nrole = \"reader\"\n[[auth.tokens]]\ntoken = \"o\"\nrole = \"operator\"\n",
        source_config(&nats.url(), "linger_ms = 50\nsubject = \"orders.>\"")
    );
    let server = Server::start_with_config(&silt, &config);
    let reader = server.http().with_token("r");
    let operator = server.http().with_token("o");
    create_orders(&operator);

    publisher.publish("orders.eu", (1..=10).map(order));
    publisher.publish(
        "orders.eu",
        ["not json".to_string(), json!({"id": "eleven"}).to_string()],
    );
    publisher.publish("orders.us", (11..=20).map(order));
    // A subject no route matches: acknowledged, not written.
    publisher.publish("orders.eu.late", [order(99)]);
    wait_until(Duration::from_secs(60), "20 rows", || count(&operator) == 20);

    let letters = operator.get("/v1/dead-letters?table=orders");
    assert_eq!(letters.status, 200, "{}", letters.body);
    let mut letters = letters.json()["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    letters.sort_by_key(|l| l["sequence"].as_i64());
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0]["sequence"], 11);
    assert_eq!(letters[1]["sequence"], 12);
    assert_eq!(letters[0]["producer"], PRODUCER);
    assert_eq!(letters[0]["raw"], "not json");
    let reason = letters[1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("source 'orders', subject 'orders.eu', sequence 12"),
        "{reason}"
    );
    assert!(
        !reason.contains("eleven"),
        "no data value in the reason: {reason}"
    );

    wait_until(Duration::from_secs(10), "lag 0", || {
        source_status(&reader)["lag"] == 0
    });
    let status = source_status(&reader);
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["rows"], 20, "{status}");
    assert_eq!(status["messages"], 23, "{status}");
    assert_eq!(status["dead_letters"], 2, "{status}");
    assert_eq!(status["unrouted"], 1, "{status}");
    assert_eq!(status["tables"], json!([TABLE]), "{status}");
    assert!(status["last_commit_version"].as_u64().is_some(), "{status}");
    assert!(!status.to_string().contains("nats://"), "no URL shown: {status}");

    // Pause: operator only; messages stay pending while paused.
    assert_eq!(
        reader.post_json("/v1/sources/orders/pause", &json!({})).status,
        403
    );
    assert_eq!(
        operator.post_json("/v1/sources/nope/pause", &json!({})).status,
        404
    );
    let paused = operator.post_json("/v1/sources/orders/pause", &json!({}));
    assert_eq!(paused.status, 200, "{}", paused.body);
    wait_until(Duration::from_secs(10), "paused", || {
        source_status(&reader)["state"] == "paused"
    });
    publisher.publish("orders.eu", (21..=25).map(order));
    wait_until(Duration::from_secs(10), "lag 5", || {
        source_status(&reader)["lag"] == 5
    });
    assert_eq!(count(&operator), 20, "nothing ingested while paused");

    let resumed = operator.post_json("/v1/sources/orders/resume", &json!({}));
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    wait_until(Duration::from_secs(30), "25 rows", || count(&operator) == 25);
    wait_until(Duration::from_secs(10), "lag 0 again", || {
        source_status(&reader)["lag"] == 0
    });

    let metrics = reader.get("/metrics").body;
    assert!(
        metrics.contains("silt_source_rows_total{source=\"orders\",table=\"orders\"} 25"),
        "{metrics}"
    );
    assert!(
        metrics.contains("silt_source_lag{source=\"orders\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_source_without_its_broker_reconnects_and_the_server_keeps_serving() {
    let port = free_port();
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, &source_config(&format!("nats://127.0.0.1:{port}"), ""));
    let http = server.http();
    create_orders(&http);
    wait_until(Duration::from_secs(20), "reconnecting", || {
        let status = source_status(&http);
        status["state"] == "reconnecting" && status["last_error"] == "unreachable"
    });
    assert_eq!(http.get("/healthz").status, 200);

    let nats = Nats::start_on(port);
    let publisher = Publisher::connect(&nats.url());
    publisher.publish("orders.eu", (1..=3).map(order));
    wait_until(Duration::from_secs(60), "rows once the broker is up", || {
        count(&http) == 3
    });
    assert_eq!(source_status(&http)["state"], "running");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn a_bad_source_stops_the_server_from_starting_with_one_line() {
    let silt = Silt::new();
    let good = source_config("nats://127.0.0.1:4222", "");
    let cases = [
        (
            good.replace("kind = \"nats\"", "kind = \"kafkaa\""),
            "unknown kind \"kafkaa\"",
        ),
        (
            good.replace(
                &format!("[[sources.routes]]\nsubject = \"orders.*\"\ntable = \"{TABLE}\"\n"),
                "",
            ),
            "routes",
        ),
        (good.replace("url = \"nats://", "url = \"http://"), "url"),
    ];
    for (index, (config, want)) in cases.iter().enumerate() {
        let path = silt.scratch(&format!("bad-{index}.toml"));
        std::fs::write(&path, config).expect("writes config");
        let path = path.to_string_lossy().into_owned();
        let run = silt.run(&[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--flight",
            "127.0.0.1:0",
            "--pg",
            "127.0.0.1:0",
            "--config",
            &path,
        ]);
        assert_ne!(run.code, Some(0), "{config}");
        let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
        assert!(lines[0].contains("sources[0] 'orders'"), "{}", lines[0]);
        assert!(lines[0].contains(want), "{}", lines[0]);
    }
}

#[test]
fn a_table_whose_txn_is_ahead_of_the_consumer_skips_what_it_holds() {
    // As after a crash between a commit and its ack: the table already holds
    // stream sequences 1..=5 (committed with the source's producer id), the
    // broker's consumer has no ack for them, so it delivers them again.
    let nats = Nats::start();
    let publisher = Publisher::connect(&nats.url());
    publisher.publish("orders.eu", (1..=10).map(order));
    publisher.create_unacked_consumer();
    let silt = Silt::new();
    let mut server = Server::start(&silt);
    let http = server.http();
    create_orders(&http);
    let body: String = (1..=5).map(|id| order(id) + "\n").collect();
    let reply = http.post(
        "/v1/tables/orders/rows",
        "application/x-ndjson",
        body.into_bytes(),
        &[
            ("Silt-Producer-Id", PRODUCER.to_string()),
            ("Silt-Sequence", "5".to_string()),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.terminate();
    drop(server);

    let server = Server::start_with_config(&silt, &source_config(&nats.url(), ""));
    let http = server.http();
    wait_until(Duration::from_secs(60), "the other five rows", || {
        source_status(&http)["messages"] == 10
    });
    let row = http.post_json(
        "/v1/sql",
        &json!({"sql": "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM orders"}),
    );
    assert_eq!(row.json()["rows"][0], json!([10, 10, 1, 10]), "{}", row.body);
    let status = source_status(&http);
    assert_eq!(
        (status["rows"].clone(), status["duplicates"].clone()),
        (json!(5), json!(5)),
        "{status}"
    );
}
