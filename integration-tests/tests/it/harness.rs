//! Runs the `silt` binary and the Python peers; one temporary warehouse per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The `silt` binary: `$SILT_BIN`, else `<target>/debug/silt` next to this test's `deps/`.
pub fn silt_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SILT_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let debug_dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = debug_dir.join("silt");
    assert!(
        bin.exists(),
        "no silt binary at {}: build it with `cargo build -p silt`",
        bin.display()
    );
    bin
}

/// The peer Python: `$SILT_PYTHON`, else the venv `scripts/setup-python.sh` makes.
pub fn python() -> PathBuf {
    let path = std::env::var_os("SILT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME");
            PathBuf::from(home).join(".cache/silt-venv/bin/python")
        });
    assert!(
        path.exists(),
        "no peer python at {}: run scripts/setup-python.sh",
        path.display()
    );
    path
}

/// Runs `integration-tests/python/peer.py` with `args`; returns its JSON output.
pub fn peer(args: &[&str]) -> Value {
    peer_with_env(args, &[])
}

/// [`peer`] with extra environment (object-store credentials).
pub fn peer_with_env(args: &[&str], envs: &[(String, String)]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/peer.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("peer prints JSON")
}

/// A temporary warehouse and the commands to drive silt against it.
pub struct Silt {
    dir: tempfile::TempDir,
    /// `SILT_WAREHOUSE` when not the local temp dir (e.g. `s3://…`).
    location: Option<String>,
    /// Extra environment for every command (object-store credentials).
    envs: Vec<(String, String)>,
}

/// What a finished `silt` command left behind.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Silt {
    pub fn new() -> Self {
        Silt {
            dir: tempfile::tempdir().expect("tempdir"),
            location: None,
            envs: Vec::new(),
        }
    }

    /// A warehouse at `location` (a URL), with `envs` set for every command.
    pub fn at(location: &str, envs: Vec<(String, String)>) -> Self {
        Silt {
            location: Some(location.to_string()),
            envs,
            ..Silt::new()
        }
    }

    /// The warehouse location: the URL given to [`Silt::at`], or the
    /// local directory.
    pub fn location(&self) -> String {
        self.location
            .clone()
            .unwrap_or_else(|| self.warehouse().to_string_lossy().into_owned())
    }

    /// Whether the warehouse is the local directory.
    pub fn is_local(&self) -> bool {
        self.location.is_none()
    }

    /// The extra environment of every command.
    pub fn envs(&self) -> Vec<(String, String)> {
        self.envs.clone()
    }

    /// The warehouse directory.
    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("wh")
    }

    /// A scratch directory for input files.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<warehouse>/<table>` as a string, for peers.
    pub fn table_path(&self, table: &str) -> String {
        self.warehouse().join(table).to_string_lossy().into_owned()
    }

    /// Runs `silt args…` with the warehouse in `SILT_WAREHOUSE`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("runs silt")
            .into()
    }

    /// [`run`](Self::run) with `input` on standard input (a pipe, not a terminal).
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs silt");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_string();
        // Written from a thread: a large script must not deadlock against
        // a child that fills its stdout pipe first.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("silt finishes");
        writer.join().expect("writer").expect("write stdin");
        out.into()
    }

    /// The environment every command gets: the warehouse and [`Silt::at`]'s extras.
    pub fn env(&self) -> Vec<(String, String)> {
        let location = self
            .location
            .clone()
            .unwrap_or_else(|| self.warehouse().to_string_lossy().into_owned());
        let mut envs = self.envs.clone();
        envs.push(("SILT_WAREHOUSE".to_string(), location));
        envs
    }

    /// `silt args…` with [`env`](Self::env), not yet started.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(silt_bin());
        command.args(args).envs(self.env()).env_remove("SILT_FORMAT");
        command
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "silt {args:?} failed:\n{}", run.stderr);
        run.stdout
    }

    /// Runs one statement with `--format json`; returns the document.
    pub fn sql_json(&self, sql: &str) -> Value {
        let out = self.ok(&["sql", "--format", "json", sql]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from silt ({e}): {out}"))
    }

    /// The rows of a query.
    pub fn rows(&self, sql: &str) -> Vec<Value> {
        self.sql_json(sql)["rows"].as_array().expect("rows").clone()
    }

    /// The single value of a one-row, one-column query.
    pub fn scalar(&self, sql: &str) -> Value {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "{sql} gave {rows:?}");
        rows[0][0].clone()
    }

    /// `count(*)` of `table`, optionally at a version.
    pub fn count(&self, table: &str, version: Option<u64>) -> i64 {
        let at = version.map(|v| format!(" VERSION AS OF {v}")).unwrap_or_default();
        self.scalar(&format!("SELECT count(*) FROM {table}{at}"))
            .as_i64()
            .expect("count")
    }

    /// The table's latest version.
    pub fn version(&self, table: &str) -> u64 {
        let out = self.ok(&["table", "describe", "--format", "json", table]);
        let doc: Value = serde_json::from_str(&out).expect("describe JSON");
        doc["version"].as_u64().expect("version")
    }

    /// Writes `contents` to a scratch file and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.scratch(name);
        std::fs::write(&path, contents).expect("write input");
        path.to_string_lossy().into_owned()
    }
}

/// A real S3-compatible server (moto's server mode from the peer venv) on a
/// free loopback port, with one bucket; stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start(bucket: &str) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = python().with_file_name("moto_server");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run scripts/setup-python.sh)",
                    server.display()
                )
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let create = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', \
             aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='{bucket}')",
            moto.endpoint
        );
        let status = Command::new(python())
            .args(["-c", &create])
            .status()
            .expect("runs python");
        assert!(status.success(), "cannot create bucket {bucket}");
        moto
    }

    /// The `AWS_*` variables silt and the Python peers read.
    pub fn envs(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
