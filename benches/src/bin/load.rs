//! Streaming-ingest load generator for `silt serve`: N concurrent HTTP
//! producers, each sending NDJSON requests of a random size (one request in
//! flight per producer, exactly-once headers on), for a fixed time. Prints
//! one JSON document: rows/s, commits/s, and durable-ack latency percentiles.
//!
//! Usage: load --url http://127.0.0.1:7070 --table t --producers 16
//!             [--seconds 10] [--min-rows 1] [--max-rows 1000] [--token T]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

struct Args {
    url: String,
    table: String,
    producers: usize,
    seconds: u64,
    min_rows: usize,
    max_rows: usize,
    token: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        url: "http://127.0.0.1:7070".into(),
        table: "load".into(),
        producers: 1,
        seconds: 10,
        min_rows: 1,
        max_rows: 1000,
        token: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--table" => args.table = value()?,
            "--producers" => args.producers = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--min-rows" => args.min_rows = value()?.parse()?,
            "--max-rows" => args.max_rows = value()?.parse()?,
            "--token" => args.token = Some(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    if args.min_rows == 0 || args.max_rows < args.min_rows {
        bail!("need 1 <= --min-rows <= --max-rows");
    }
    Ok(args)
}

/// splitmix64: a fixed, seeded sequence so every run sends the same sizes.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pool of request bodies (built before the clock starts).
fn bodies(producer: usize, count: usize, args: &Args) -> Vec<(usize, Vec<u8>)> {
    let mut state = producer as u64 + 1;
    let span = (args.max_rows - args.min_rows + 1) as u64;
    (0..count)
        .map(|i| {
            let rows = args.min_rows + (next(&mut state) % span) as usize;
            let mut body = Vec::with_capacity(rows * 110);
            for r in 0..rows {
                let id = (producer as u64) << 40 | (i as u64) << 12 | r as u64;
                body.extend_from_slice(
                    format!(
                        "{{\"id\":{id},\"producer\":\"p{producer}\",\"ts\":\"2026-11-25T10:00:{:02}Z\",\"value\":{}.5,\"note\":\"event {r}\"}}\n",
                        r % 60,
                        next(&mut state) % 1000
                    )
                    .as_bytes(),
                );
            }
            (rows, body)
        })
        .collect()
}

async fn version(client: &reqwest::Client, args: &Args) -> Result<u64> {
    let mut request = client.get(format!("{}/v1/tables/{}", args.url, args.table));
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let doc: serde_json::Value = request.send().await?.json().await?;
    doc["version"].as_u64().context("no version in table description")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = std::sync::Arc::new(parse_args()?);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let before = version(&client, &args).await?;
    let run_id = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..args.producers {
        let client = client.clone();
        let args = args.clone();
        let pool = bodies(producer, 64, &args);
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/v1/tables/{}/rows", args.url, args.table);
            let mut latencies = Vec::new();
            let (mut rows, mut errors) = (0u64, 0u64);
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let (n, body) = &pool[sequence as usize % pool.len()];
                sequence += 1;
                let sent = Instant::now();
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .header("silt-producer-id", format!("load-{run_id}-{producer}"))
                    .header("silt-sequence", sequence.to_string())
                    .body(body.clone());
                if let Some(token) = &args.token {
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        rows += *n as u64;
                    }
                    Ok(response) => {
                        errors += 1;
                        if response.status().as_u16() == 429 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, rows, errors)
        }));
    }
    let mut latencies = Vec::new();
    let (mut rows, mut errors) = (0u64, 0u64);
    for task in tasks {
        let (l, r, e) = task.await?;
        latencies.extend(l);
        rows += r;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = version(&client, &args).await?;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize]
    };
    let commits = after - before;
    let doc = serde_json::json!({
        "producers": args.producers,
        "seconds": elapsed,
        "requests": latencies.len(),
        "errors": errors,
        "rows": rows,
        "rows_per_sec": rows as f64 / elapsed,
        "commits": commits,
        "commits_per_sec": commits as f64 / elapsed,
        "requests_per_commit": if commits > 0 { latencies.len() as f64 / commits as f64 } else { 0.0 },
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    });
    println!("{doc}");
    Ok(())
}
