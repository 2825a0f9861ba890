//! Issue 11, item 5, against the real server: the erasure ledger
//! `_silt_erasures` damaged on disk — rows appended to the Delta table by
//! another writer (the Python `deltalake` peer), as `INSERT INTO
//! _silt_erasures VALUES (…'garbage'…)` once could — does not stall
//! erasure. A real request filed afterwards is erased and certified within a
//! bounded time; `GET /v1/erasures` shows the damaged rows as `invalid`
//! (a forged `done` row is not `done`); the server's log names them by id or
//! row position and quotes none of their values.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Silt, python};
use crate::server::{AUTH_CONFIG, Http, NDJSON, Server, ndjson_values};

const SECRET: &str = "it-hardening-erasure-secret";
const KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
/// Erased first, so that the ledger exists and holds a genuine certificate.
const FIRST: &str = "first-subject-8c1d@example.org";
/// The real request filed after the damage.
const SUBJECT: &str = "real-subject-2b7e@example.org";
/// A value a forger put where a request id belongs.
const PLANTED: &str = "planted-value-61fa@example.org";

fn config() -> String {
    format!("{AUTH_CONFIG}\n[erasure]\nsecret = \"{SECRET}\"\nkey = \"{KEY}\"\n")
}

/// Polls `GET /v1/erasures/{id}` until done or failed, at most `within`.
fn wait_finished(server: &Server, http: &Http, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let reply = http.get(&format!("/v1/erasures/{id}"));
        assert_eq!(reply.status, 200, "{}\nserver log:\n{}", reply.body, server.log());
        let doc = reply.json();
        if matches!(doc["status"].as_str(), Some("done") | Some("failed")) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "erasure {id} not finished after {within:?}: {doc}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn file(http: &Http, subject: &str) -> String {
    let reply = http.post_json("/v1/erasures", &json!({ "subjects": [subject] }));
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()["id"].as_str().expect("id").to_string()
}

/// Runs `script` with the peer Python, `args` on its command line and
/// `stdin` on its standard input; returns its stdout.
fn run_python(script: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Appends `rows` (JSON objects; timestamps as epoch microseconds) to the
/// Delta table at `path` with the Python `deltalake` writer, in the table's
/// own schema.
fn append_with_deltalake(path: &str, rows: &[Value]) {
    let script = r#"
import json, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
rows = json.loads(sys.stdin.read())
schema = pa.schema(DeltaTable(path).schema().to_arrow())
arrays = []
for field in schema:
    values = [row.get(field.name) for row in rows]
    if pa.types.is_timestamp(field.type):
        arrays.append(pa.array(values, type=pa.int64()).cast(field.type))
    else:
        arrays.append(pa.array(values, type=field.type))
write_deltalake(path, pa.Table.from_arrays(arrays, schema=schema), mode="append")
print(DeltaTable(path).version())
"#;
    run_python(script, &[path], &Value::from(rows.to_vec()).to_string());
}

/// Whether `certificate` carries a valid HMAC-SHA256 under SECRET, checked
/// by Python's hmac as an auditor would (canonical JSON without `signature`).
fn auditor_verifies(certificate: &Value) -> bool {
    let script = r#"
import hashlib, hmac, json, sys
cert = json.loads(sys.stdin.read())
signature = cert.pop("signature")
canonical = json.dumps(cert, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
print(json.dumps(hmac.compare_digest(
    hmac.new(sys.argv[1].encode(), canonical.encode(), hashlib.sha256).hexdigest(), signature)))
"#;
    run_python(script, &[SECRET], &certificate.to_string()).trim() == "true"
}

fn micros_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    i64::try_from(now.as_micros()).expect("micros")
}

/// A ledger row with every required column filled.
fn row(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "seq": 0,
        "status": status,
        "received_at": micros_now(),
        "updated_at": micros_now(),
        "subject_hashes": json!(["ab".repeat(32)]).to_string(),
        "purge": true,
    })
}

#[test]
fn a_ledger_damaged_on_disk_does_not_stall_erasure() {
    let silt = Silt::new();
    let server = Server::start_with_config(&silt, &config());
    let operator = server.http().with_token("o-token");
    let reply = operator.post_json(
        "/v1/tables",
        &json!({
            "name": "accounts",
            "columns": [
                {"name": "id", "type": "BIGINT", "nullable": false},
                {"name": "email", "type": "VARCHAR"}
            ],
            "properties": {"silt.erasure.subject_columns": "email"}
        }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let rows = [(1, "keep@example.org"), (2, FIRST), (3, SUBJECT)]
        .map(|(id, email)| json!({"id": id, "email": email}));
    let reply = operator.post("/v1/tables/accounts/rows", NDJSON, ndjson_values(rows), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A first request: the ledger exists and holds a genuine certificate.
    let first = file(&operator, FIRST);
    let done = wait_finished(&server, &operator, &first, Duration::from_secs(120));
    assert_eq!(done["status"], "done", "{done:#}");
    let genuine = done["certificate"].clone();

    // Damage the ledger on disk, as another Delta writer would.
    let forged = "00000000-0000-4000-8000-00000000f0f0";
    let undecryptable = "00000000-0000-4000-8000-00000000dead";
    let mut edited = genuine.clone();
    edited["request_id"] = json!(forged);
    let mut insert_garbage = row("garbage", "garbage");
    for column in [
        "request_id",
        "subject_hashes",
        "tables",
        "sealed",
        "results",
        "error",
    ] {
        insert_garbage[column] = json!("garbage");
    }
    let mut forged_done = row(forged, "done");
    forged_done["subject_hashes"] = json!(genuine["subject_hashes"].to_string());
    forged_done["results"] = json!(edited.to_string());
    let mut sealed_garbage = row(undecryptable, "pending");
    sealed_garbage["sealed"] = json!("de".repeat(40));
    let damage = [
        insert_garbage,
        forged_done,
        sealed_garbage,
        row(PLANTED, "pending"),
    ];
    append_with_deltalake(&silt.table_path("_silt_erasures"), &damage);

    // A real request is erased regardless, within a bounded time.
    let real = file(&operator, SUBJECT);
    let status = wait_finished(&server, &operator, &real, Duration::from_secs(120));
    assert_eq!(status["status"], "done", "{status:#}");
    let certificate = &status["certificate"];
    assert!(auditor_verifies(certificate), "{certificate:#}");
    assert_eq!(certificate["request_id"], real.as_str());
    let accounts = certificate["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "accounts"))
        .expect("accounts in the certificate");
    assert_eq!(accounts["rows_deleted"], 1, "{certificate:#}");
    assert_eq!(
        accounts["verification"]["occurrences_found"], 0,
        "{certificate:#}"
    );

    // The listing: the real requests are done, the damage is invalid.
    let reply = operator.get("/v1/erasures");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let listing = reply.json();
    let entries = listing["erasures"].as_array().expect("erasures");
    let with_status = |status: &str| -> Vec<&str> {
        entries
            .iter()
            .filter(|e| e["status"] == status)
            .filter_map(|e| e["id"].as_str())
            .collect()
    };
    let mut done_ids = with_status("done");
    done_ids.sort_unstable();
    let mut expected = vec![first.as_str(), real.as_str()];
    expected.sort_unstable();
    assert_eq!(done_ids, expected, "{listing:#}");
    let invalid = with_status("invalid");
    assert_eq!(invalid.len(), damage.len(), "{listing:#}");
    assert!(
        invalid.contains(&forged) && invalid.contains(&undecryptable),
        "{listing:#}"
    );
    for entry in entries.iter().filter(|e| e["status"] == "invalid") {
        assert!(entry["certificate"].is_null(), "{entry:#}");
        assert!(
            entry["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{entry:#}"
        );
    }
    for value in [PLANTED, "garbage", FIRST, SUBJECT] {
        assert!(
            !reply.body.contains(value),
            "the listing quotes '{value}': {}",
            reply.body
        );
    }
    let forged_view = operator.get(&format!("/v1/erasures/{forged}"));
    assert_eq!(forged_view.status, 200, "{}", forged_view.body);
    assert_eq!(forged_view.json()["status"], "invalid", "{}", forged_view.body);

    // The log reports the damage by request id or row position, and quotes
    // none of it (nor any subject).
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("fails validation") && l.contains(forged)),
        "no report of the forged row:\n{log}"
    );
    for value in [PLANTED, "garbage", FIRST, SUBJECT] {
        assert!(!log.contains(value), "the log quotes '{value}':\n{log}");
    }

    // Prometheus shows the damage as a gauge an operator can alert on.
    let metrics = operator.get("/metrics").body;
    let invalid = metrics
        .lines()
        .find_map(|l| l.strip_prefix("silt_erasure_ledger_invalid_entries "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no silt_erasure_ledger_invalid_entries in /metrics:\n{metrics}"));
    assert!(invalid > 0.0, "{invalid}");
}
