//! The web console at `/ui` in a real browser: headless Chromium (Debian's,
//! from `scripts/setup-browser.sh`) driven by Playwright
//! (`integration-tests/console/console.mjs`) against the real server with
//! tokens configured. This module makes the data over HTTP — a table with
//! three versions, a second table whose subject is erased — and checks what
//! the script cannot see: the assets' headers, and that no token reaches the
//! server log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Silt;
use crate::server::{AUTH_CONFIG, NDJSON, Server, ndjson_values};

const SECRET: &str = "console-erasure-secret";
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const SUBJECT: &str = "carol-7d1e@example.org";

fn node_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console/console.mjs")
}

fn assert_browser_installed() {
    let tools = std::env::var_os("SILT_UI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/silt-ui-tools")
        });
    assert!(
        Path::new("/usr/bin/chromium").exists() && tools.join("node_modules/playwright-core").exists(),
        "the console test needs chromium and playwright-core: run scripts/setup-browser.sh"
    );
}

/// Waits until erasure `id` is finished; returns its status document.
fn wait_finished(http: &crate::server::Http, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let doc = http.get(&format!("/v1/erasures/{id}")).json();
        if matches!(doc["status"].as_str(), Some("done") | Some("failed")) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "erasure still open after 180 s: {doc:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_console_shows_tables_runs_sql_and_shows_erasures_to_operators_only() {
    assert_browser_installed();
    let silt = Silt::new();
    let server = Server::start_with_config(
        &silt,
        &format!("{AUTH_CONFIG}\n[erasure]\nsecret = \"{SECRET}\"\nkey = \"{KEY}\"\n"),
    );
    let http = server.http();
    let operator = http.with_token("o-token");
    let writer = http.with_token("w-token");

    // The assets are public, typed, cached with revalidation, under a strict CSP.
    let page = http.get("/ui/");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type(), "text/html");
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(http.get("/ui/app.js").content_type(), "text/javascript");
    assert_eq!(http.get("/ui/console.css").content_type(), "text/css");
    let missing = http.get("/ui/secrets.toml");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type(), "application/problem+json");
    assert_eq!(http.get("/v1/whoami").status, 401);
    assert_eq!(
        http.with_token("r-token").get("/v1/whoami").json()["role"],
        "reader"
    );

    // events: created (v0), then two ingests (v1, v2).
    let created = operator.post_json(
        "/v1/tables",
        &json!({"name": "events", "columns": [
                {"name": "id", "type": "BIGINT", "nullable": false},
                {"name": "name", "type": "STRING"}],
            "properties": {"silt.ingest.linger_ms": "0"}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let names = ["ann", "<b>bo</b>", "cy", "di", "ed"];
    let rows = |ids: std::ops::Range<usize>| {
        ndjson_values(ids.map(|i| json!({"id": i as u64 + 1, "name": names[i]})))
    };
    for range in [0..3, 3..5] {
        let answer = writer.post("/v1/tables/events/rows", NDJSON, rows(range), &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let history = operator.get("/v1/tables/events/history").json();
    let version_1 = history["history"]
        .as_array()
        .and_then(|h| h.iter().find(|c| c["version"] == 1))
        .unwrap_or_else(|| panic!("no version 1 in {history:#}"));
    let query = "SELECT id, name FROM events ORDER BY id";
    let csv = operator.try_post(
        "/v1/sql",
        "application/json",
        serde_json::to_vec(&json!({"sql": query})).expect("json"),
        &[("accept", "text/csv".to_string())],
    );
    let csv = csv.expect("csv answer").body;
    assert_eq!(csv, "id,name\n1,ann\n2,<b>bo</b>\n3,cy\n4,di\n5,ed\n");

    // people: a subject erased with its certificate.
    let created = operator.post_json(
        "/v1/tables",
        &json!({"name": "people", "columns": [
                {"name": "email", "type": "STRING"}, {"name": "id", "type": "BIGINT"}],
            "properties": {"silt.erasure.subject_columns": "email"}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let people = ndjson_values([
        json!({"email": SUBJECT, "id": 1}),
        json!({"email": "dan@example.org", "id": 2}),
    ]);
    assert_eq!(
        writer.post("/v1/tables/people/rows", NDJSON, people, &[]).status,
        200
    );
    let filed = operator.post_json("/v1/erasures", &json!({"subjects": [SUBJECT]}));
    assert_eq!(filed.status, 202, "{}", filed.body);
    let erasure_id = filed.json()["id"].as_str().expect("id").to_string();
    let done = wait_finished(&operator, &erasure_id);
    assert_eq!(done["status"], "done", "{done:#}");

    let shots = std::env::var_os("SILT_CONSOLE_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| silt.scratch("screenshots"));
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let expected: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| vec![(i + 1).to_string(), name.to_string()])
        .collect();
    let config = json!({
        "url": server.http_url(),
        "reader_token": "r-token",
        "operator_token": "o-token",
        "table": "events",
        "schema": [["id", "BIGINT", "no"], ["name", "STRING", "yes"]],
        "version": 2,
        "query": query,
        "rows": expected,
        "rows_at_version_1": 3,
        "version_1_timestamp": version_1["timestamp"],
        "csv": csv,
        "writer_token": "w-token",
        "live_table": "people",
        "live_rows": String::from_utf8(ndjson_values((10..40).map(|i| json!({"email": format!("p{i}@example.org"), "id": i})))).expect("utf-8"),
        "erasure_id": erasure_id,
        "erasure_table": "people",
        "erasure_rows_deleted": 1,
        "erasure_secret": SECRET,
        "erasure_subject": SUBJECT,
        "screenshots": shots,
    });
    let out = Command::new("node")
        .arg(node_script())
        .env("SILT_CONSOLE", config.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("runs node (install Node.js 18 or later)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("console: all checks passed"),
        "the browser script failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    eprintln!("{stdout}screenshots in {}", shots.display());
    for name in [
        "console-tables.png",
        "console-sql.png",
        "console-ingest.png",
        "console-erasure.png",
    ] {
        assert!(shots.join(name).exists(), "no screenshot {name}");
    }
    // The Parquet file the browser saved holds the query's rows.
    let parquet =
        std::fs::File::open(shots.join("result.parquet")).expect("the browser saved result.parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet)
        .expect("a Parquet file")
        .build()
        .expect("reader");
    let mut downloaded = Vec::new();
    for batch in reader {
        let batch = batch.expect("rows");
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("id BIGINT");
        // Text may come back as Utf8View (DataFusion's scan type); compare as Utf8.
        let names =
            arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).expect("name as text");
        let names = names
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("name STRING");
        for row in 0..batch.num_rows() {
            downloaded.push(vec![ids.value(row).to_string(), names.value(row).to_string()]);
        }
    }
    assert_eq!(downloaded, expected);
    let log = server.log();
    for token in ["r-token", "o-token", "w-token", SECRET] {
        assert!(!log.contains(token), "the server log holds '{token}'");
    }
}
