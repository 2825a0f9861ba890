//! `silt ingest --server URL`: push files through a running server, one
//! request per file, exactly-once by (producer id, file number).

use std::path::{Path, PathBuf};
use std::time::Duration;

use silt_ingest::Format;
use silt_table::ErrorKind;

use super::{progress, remote};
use crate::failure::Failure;

/// Where and as whom files are pushed.
pub(super) struct Target<'a> {
    /// Server base URL.
    pub server: &'a str,
    /// Bearer token.
    pub token: Option<&'a str>,
    /// Producer id, if given.
    pub producer_id: Option<&'a str>,
}

/// Attempts per file for retryable answers (429, 5xx, connection errors).
const ATTEMPTS: u32 = 8;

/// What the request asks of the table besides appending rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flags<'a> {
    pub(crate) create: bool,
    pub(crate) evolve: bool,
    pub(crate) upsert: &'a crate::args::UpsertArgs,
}

impl Flags<'_> {
    /// The query parameters of the ingest request.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("create", self.create.to_string()),
            ("evolve", self.evolve.to_string()),
        ];
        let upsert = self.upsert;
        if let Some(mode) = &upsert.mode {
            query.push(("mode", mode.clone()));
        }
        if !upsert.keys.is_empty() {
            query.push(("keys", upsert.keys.join(",")));
        }
        for (name, value) in [
            ("sequence", &upsert.sequence),
            ("delete_column", &upsert.delete_column),
            ("delete_value", &upsert.delete_value),
        ] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        query
    }
}

pub(super) async fn run(
    target: &Target<'_>,
    table: &str,
    files: &[PathBuf],
    format: Option<&str>,
    flags: Flags<'_>,
) -> Result<(), Failure> {
    silt_table::validate_table_name(table)?;
    let forced = format.map(str::parse::<Format>).transpose()?;
    let producer = match target.producer_id {
        Some(id) => id.to_string(),
        None => stable_producer_id(table, files)?,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot build HTTP client: {e}")))?;
    let url = format!("{}/v1/tables/{table}/rows", target.server.trim_end_matches('/'));
    let (mut rows, mut rejected, mut duplicates, mut version) = (0u64, 0u64, 0usize, None);
    let total: u64 = files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum();
    let bar = progress::Bytes::start(total, format!("{table}: file 1/{}", files.len()));
    for (index, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let format = super::ingest::file_format(path, forced)?;
        let body = std::fs::read(path)
            .map_err(|e| Failure::new(ErrorKind::NotFound, format!("cannot read {name}: {e}")))?;
        let sequence = index as u64 + 1;
        let size = body.len() as u64;
        let answer = send(
            &client,
            &url,
            target.token,
            &producer,
            sequence,
            format,
            body,
            &flags.query(),
        )
        .await
        .map_err(|f| Failure::new(f.0, format!("{name}: {}", f.1)))?;
        rows += answer["rows_written"].as_u64().unwrap_or(0);
        rejected += answer["rows_rejected"].as_u64().unwrap_or(0);
        if answer["duplicate"].as_bool() == Some(true) {
            duplicates += 1;
        }
        version = answer["version"].as_u64().or(version);
        bar.sent(
            size,
            format!(
                "{table}: file {}/{}, {rows} rows",
                (index + 2).min(files.len()),
                files.len()
            ),
        );
    }
    drop(bar);
    let version = version.map(|v| format!(" (version {v})")).unwrap_or_default();
    let mut line = format!("ingested {rows} rows into {table}{version}");
    if rejected > 0 {
        line.push_str(&format!(", {rejected} rows to dead letters"));
    }
    if duplicates > 0 {
        line.push_str(&format!(", {duplicates} files already ingested (skipped)"));
    }
    println!("{line}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    producer: &str,
    sequence: u64,
    format: Format,
    body: Vec<u8>,
    query: &[(&str, String)],
) -> Result<serde_json::Value, (ErrorKind, String)> {
    let content_type = match format {
        Format::Csv => "text/csv",
        Format::Ndjson => "application/x-ndjson",
        Format::Parquet => "application/vnd.apache.parquet",
        Format::ArrowIpc => "application/vnd.apache.arrow.stream",
    };
    let mut delay = Duration::from_millis(200);
    let mut last = (ErrorKind::Internal, "no attempt made".to_string());
    for _ in 0..ATTEMPTS {
        let request = client
            .post(url)
            .query(query)
            .header("content-type", content_type)
            .header("silt-producer-id", producer)
            .header("silt-sequence", sequence.to_string())
            .body(body.clone());
        match remote::authorize(request, token).send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let text = response.text().await.unwrap_or_default();
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if status.is_success() {
                    return Ok(doc);
                }
                let detail = remote::problem_detail(&doc).unwrap_or(text);
                let kind = remote::kind_of(status, &doc);
                // Retried: a full queue, storage that does not answer and
                // server-side failures (a proxy's 502/503 too); not a 501
                // unsupported, which will not change.
                if !matches!(
                    kind,
                    ErrorKind::Overloaded | ErrorKind::Unavailable | ErrorKind::Internal
                ) {
                    return Err((kind, detail));
                }
                last = (kind, detail);
                if let Some(seconds) = retry_after {
                    delay = Duration::from_secs(seconds.min(30));
                }
            }
            Err(error) => last = (ErrorKind::Internal, remote::unreachable(url, &error)),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    Err(last)
}

/// A producer id that is the same for the same table and files (path,
/// size, modification time), so rerunning a failed command skips what was
/// committed.
fn stable_producer_id(table: &str, files: &[PathBuf]) -> Result<String, Failure> {
    let mut key = format!("silt-ingest\n{table}\n");
    for path in files {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| Failure::new(ErrorKind::NotFound, format!("cannot read {name}: {e}")))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| Path::new(path).to_path_buf());
        key.push_str(&format!("{}\t{}\t{modified}\n", absolute.display(), meta.len()));
    }
    Ok(format!(
        "silt-ingest-{}",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes())
    ))
}
