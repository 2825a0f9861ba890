//! The README's shell examples run as written, in order, in a fresh
//! directory (with the repository's `examples/`), with the debug `silt` on
//! `PATH`; and `scripts/quickstart.sh` runs, twice, as its header promises.
//!
//! Only three things are rewritten: `./scripts/serve.sh` starts the real
//! server on ports the OS picks (it would build and block), `localhost:7070`
//! / `127.0.0.1:7070` become that server's address, and `./scripts/test.sh`
//! is skipped (it is the suite this test runs in). `curl` is wrapped to add
//! `--fail-with-body`, so an error answer fails its block as a failing
//! command would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Silt, silt_bin};
use crate::server::Server;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// The ```sh blocks of `markdown`, in order, each with its first line number.
fn sh_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match current.as_mut() {
            None if line.trim_start() == "```sh" => current = Some((n + 2, String::new())),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A directory for `PATH` with `silt` (the debug binary) and a `curl` that
/// fails on HTTP errors.
fn tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::os::unix::fs::symlink(silt_bin(), bin.join("silt")).expect("link silt");
    let real_curl = ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("curl installed");
    let wrapper = bin.join("curl");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {real_curl} --fail-with-body \"$@\"\n"),
    )
    .expect("write curl wrapper");
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .expect("chmod");
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Runs `script` with bash (`set -euo pipefail`) in `cwd`; the failure
/// message (exit status and both streams) when it fails.
fn bash(cwd: &Path, path: &str, envs: &[(&str, String)], script: &str) -> Result<String, String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(cwd)
        .env_remove("SILT_WAREHOUSE")
        .env_remove("SILT_SERVER")
        .env_remove("SILT_TOKEN")
        .env_remove("SILT_FORMAT")
        .env("PATH", path)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("runs bash");
    let both = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(both)
    } else {
        Err(format!("exit {:?}\n{both}", out.status.code()))
    }
}

#[test]
fn readme_examples_run_in_order_in_a_fresh_directory() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 4, "README has {} sh blocks", blocks.len());

    // The server's warehouse is this fresh directory's ./silt-data (the
    // harness keeps it at <tmp>/wh; ./silt-data links there).
    let silt = Silt::new();
    let cwd = silt.scratch("checkout");
    copy_dir(&repo_root().join("examples"), &cwd.join("examples"));
    std::fs::create_dir_all(silt.warehouse()).expect("mkdir warehouse");
    std::os::unix::fs::symlink(silt.warehouse(), cwd.join("silt-data")).expect("link silt-data");
    let path = path_with(&tools(&silt.scratch("tools")));

    let mut server: Option<Server> = None;
    let mut failures = Vec::new();
    for (line, block) in blocks {
        let mut script = String::new();
        for command in block.lines() {
            let trimmed = command.trim_start();
            if trimmed.starts_with("./scripts/test.sh") {
                continue;
            }
            if trimmed.starts_with("./scripts/serve.sh") {
                server.get_or_insert_with(|| Server::start(&silt));
                continue;
            }
            script.push_str(command);
            script.push('\n');
        }
        if let Some(server) = &server {
            let addr = server.http_url().trim_start_matches("http://").to_string();
            let pg_port = server
                .pg_addr()
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            script = script
                .replace("localhost:7070", &addr)
                .replace("127.0.0.1:7070", &addr)
                .replace("-p 5433", &format!("-p {pg_port}"));
        }
        if script.trim().is_empty() {
            continue;
        }
        if let Err(output) = bash(&cwd, &path, &[], &script) {
            failures.push(format!("README.md block at line {line}:\n{script}{output}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} README block(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn quickstart_runs_and_runs_again() {
    let silt = Silt::new();
    let script = repo_root().join("scripts/quickstart.sh");
    let path = path_with(&tools(&silt.scratch("tools")));
    let envs = [
        ("SILT_BIN", silt_bin().to_string_lossy().into_owned()),
        ("SILT_WAREHOUSE", silt.warehouse().to_string_lossy().into_owned()),
    ];
    for run in ["first", "second"] {
        let result = bash(
            &silt.scratch(""),
            &path,
            &envs,
            &format!("bash {}", script.display()),
        );
        if let Err(output) = result {
            panic!("quickstart.sh ({run} run) failed: {output}");
        }
    }
    // Two runs, two ingests of both sample files each (versions 1..=4).
    assert_eq!(silt.version("events"), 4);
}
