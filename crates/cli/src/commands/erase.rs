//! `silt erase`: file an erasure request with a running server
//! (`--server`), or run it embedded — the worker runs inline and the command
//! prints the signed certificate. Subject values are never printed.

use std::time::Duration;

use serde_json::{Value, json};
use silt_erasure::{Erasure, ErasureConfig, NewRequest, Status};
use silt_table::{ErrorKind, Warehouse};

use super::progress;
use super::remote::{self, NoDetail};
use crate::failure::Failure;

/// What `silt erase` was asked.
pub(super) struct EraseArgs {
    pub(super) subjects: Vec<String>,
    pub(super) tables: Option<Vec<String>>,
    pub(super) purge: bool,
    pub(super) wait: bool,
    pub(super) request_id: Option<String>,
}

impl From<silt_erasure::ErasureError> for Failure {
    fn from(e: silt_erasure::ErasureError) -> Self {
        Failure::new(e.kind(), e)
    }
}

fn print(doc: &Value) {
    println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}

/// Exit non-zero when verification failed, so scripts notice.
fn check(doc: &Value) -> Result<(), Failure> {
    match doc["status"].as_str() {
        Some("failed") => Err(Failure::new(
            ErrorKind::Internal,
            format!(
                "erasure {} failed: {}",
                doc["id"].as_str().unwrap_or("?"),
                doc["error"].as_str().unwrap_or("see the certificate")
            ),
        )),
        // The ledger holds a row for it that does not verify (docs/erasure.md,
        // "A damaged ledger"): final, and not a success.
        Some("invalid") => Err(Failure::new(
            ErrorKind::Internal,
            format!(
                "erasure {} is invalid in the ledger: {}",
                doc["id"].as_str().unwrap_or("?"),
                doc["error"].as_str().unwrap_or("see GET /v1/erasures")
            ),
        )),
        _ => Ok(()),
    }
}

/// Runs the request in this process: file it, run every open request, print it.
pub(super) async fn run_embedded(warehouse: &Warehouse, args: EraseArgs) -> Result<(), Failure> {
    let erasure = Erasure::open(warehouse.clone(), ErasureConfig::default())?;
    let filed = erasure
        .submit(NewRequest {
            subjects: args.subjects,
            tables: args.tables,
            purge: Some(args.purge),
            request_id: args.request_id,
        })
        .await?;
    eprintln!("erasure {} filed; running it", filed.id);
    erasure.run_pending().await?;
    let view = erasure.get(&filed.id).await?;
    let doc = serde_json::to_value(&view).unwrap_or_default();
    print(&doc);
    if view.status == Status::Failed {
        return check(&doc);
    }
    Ok(())
}

/// Files the request with a server; with `wait`, polls until it finishes.
pub(super) async fn run_remote(server: &str, token: Option<&str>, args: EraseArgs) -> Result<(), Failure> {
    let client = reqwest::Client::new();
    let base = format!("{}/v1/erasures", server.trim_end_matches('/'));
    let body = json!({
        "subjects": args.subjects,
        "tables": args.tables,
        "purge": args.purge,
        "request_id": args.request_id,
    });
    let accepted = send_json(client.post(&base).json(&body), token, &base).await?;
    let Some(id) = accepted["id"].as_str().map(str::to_string) else {
        return Err(Failure::new(
            ErrorKind::Internal,
            format!("no id in the answer of {base}"),
        ));
    };
    if !args.wait {
        print(&accepted);
        return Ok(());
    }
    eprintln!("erasure {id} filed; waiting for it to finish");
    let url = format!("{base}/{id}");
    let spinner = progress::Spinner::start(format!("erasure {id}"));
    loop {
        let doc = send_json(client.get(&url), token, &url).await?;
        let status = doc["status"].as_str().unwrap_or("unknown");
        if matches!(status, "done" | "failed" | "invalid") {
            drop(spinner);
            print(&doc);
            return check(&doc);
        }
        // The status is one of the ledger's fixed words, never a subject.
        spinner.say(format!("erasure {id}: {status}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends `request` and reads its JSON answer (null if it is not JSON).
async fn send_json(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
    url: &str,
) -> Result<Value, Failure> {
    let body = remote::send(request, token, url, NoDetail::Status).await?;
    Ok(serde_json::from_slice(&body).unwrap_or_default())
}
