"""Bounded schemathesis pass against a real `silt serve` (issue 11).

Starts the `silt` binary on loopback (ports chosen by the OS) over a temporary
warehouse, with a config holding one token per role, seeds one table, then
runs `st run` against the server's own `/openapi.json` once per token with a
time budget. Fails (exit 1) when schemathesis reports a failure, when the
server dies or stops answering `/healthz`, when its log shows a panic, or
when SIGTERM does not stop it within the drain timeout.

    python integration-tests/python/api_fuzz.py --silt PATH/TO/silt

Environment (all optional):
  API_FUZZ_SECONDS    time budget of each role's run (default 60)
  API_FUZZ_SEED       schemathesis seed (default: fixed, so CI is repeatable)
  API_FUZZ_WORKERS    concurrent schemathesis workers (default 2)
  API_FUZZ_ROLES      comma-separated roles to run (default reader,writer,operator)
  API_FUZZ_CHECKS     comma-separated schemathesis checks instead of CHECKS below
                      (e.g. "all", to explore)
  API_FUZZ_ARGS       more `st run` options (e.g. "--report har --phases fuzzing")

Needs schemathesis (scripts/requirements-peers.txt) in this Python.
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROLES = ("reader", "writer", "operator")

# What every answer is checked for: no 5xx, a documented status code, a
# documented content type, a body matching the documented schema, and that
# auth is enforced (a request without / with a wrong token is refused).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "ignored_auth",
]

# Checks known to fail on the current server, skipped by name until the fix
# lands. Each entry names the issue that tracks it; the run prints them so a
# skipped check is never silent. Empty: nothing is skipped.
KNOWN_FAILING = {
    # "check_name": "issue 11: why",
}

# Values schemathesis draws for some fields instead of random ones (with the
# probability given), so requests reach real tables and run real statements:
# random text is almost never a valid table name, column type or SQL.
TABLES = ["fuzz_seed", "fuzz_rows", "fuzz_sql", "_silt_dead_letters", "_silt_erasures"]
NEW_TABLES = ["fuzz_t1", "fuzz_t2", "fuzz_seed", "_silt_erasures", "_silt_x", "a" * 129]
COLUMN_NAMES = ["id", "email", "s", "a b", "Ünï", "_silt", "x" * 200]
COLUMN_TYPES = [
    "BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "STRING", "VARCHAR(10)", "BOOLEAN",
    "DATE", "TIMESTAMP", "TIMESTAMP_NTZ", "DECIMAL(10,2)", "DECIMAL(38,0)", "DECIMAL(39,0)",
    "BINARY", "ARRAY<INT>", "STRUCT<a: INT, b: STRING>", "MAP<STRING, INT>", "INTERVAL", "VOID",
]
SUBJECTS = ["a@example.com", "b@example.com", "nobody@example.com"]
SQL = [
    "SELECT * FROM fuzz_seed",
    "SELECT id, email FROM fuzz_seed WHERE id = $1",
    "SELECT count(*), min(id), max(email) FROM fuzz_seed GROUP BY email ORDER BY 1 LIMIT 5",
    "SELECT * FROM fuzz_seed VERSION AS OF 0",
    "SELECT * FROM fuzz_seed VERSION AS OF 999",
    "SELECT * FROM fuzz_seed TIMESTAMP AS OF '2000-01-01'",
    "SELECT * FROM missing_table",
    "SELECT CAST('x' AS INT)",
    "SELECT 1/0",
    "SELECT 1e400, -0.0, 'é😀', X'00ff', DATE '2024-02-30'",
    "SELECT arrow_typeof(now()), current_date, uuid()",
    "SELECT * FROM fuzz_seed a JOIN fuzz_seed b ON a.id = b.id",
    "WITH t AS (SELECT 1 AS x) SELECT * FROM t UNION ALL SELECT 2",
    "SELECT sum(value) FROM generate_series(1, 100000)",
    "SELECT * FROM fuzz_seed WHERE id IN (" + ", ".join(str(i) for i in range(300)) + ")",
    "SELECT " + " + ".join(["1"] * 300),
    "SELECT * FROM _silt_dead_letters",
    "SELECT * FROM _silt_erasures",
    "SHOW TABLES",
    "SHOW COLUMNS FROM fuzz_seed",
    "DESCRIBE HISTORY fuzz_seed",
    "DESCRIBE HISTORY fuzz_seed LIMIT 1",
    "DESCRIBE DETAIL fuzz_seed",
    "EXPLAIN SELECT * FROM fuzz_seed",
    "EXPLAIN ANALYZE SELECT count(*) FROM fuzz_seed",
    "INSERT INTO fuzz_seed VALUES (3, 'c@example.com')",
    "INSERT INTO fuzz_seed VALUES (NULL, 'x')",
    "INSERT INTO fuzz_seed (email) VALUES ('y')",
    "INSERT INTO fuzz_seed VALUES ('not a number', 1)",
    "UPDATE fuzz_seed SET email = 'z' WHERE id = 3",
    "DELETE FROM fuzz_seed WHERE id > 2",
    "MERGE INTO fuzz_seed t USING (SELECT 4 AS id, 'm' AS email) s ON t.id = s.id "
    "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    "INSERT INTO _silt_dead_letters SELECT * FROM _silt_dead_letters",
    "DELETE FROM _silt_erasures",
    "CREATE TABLE IF NOT EXISTS fuzz_sql (id BIGINT, v STRING)",
    "CREATE TABLE fuzz_ctas AS SELECT * FROM fuzz_seed",
    "CREATE VIEW fuzz_view AS SELECT 1",
    # Views: made, replaced, read, described, refused, broken, dropped.
    "CREATE VIEW fuzz_seed_view AS SELECT id, email FROM fuzz_seed WHERE id > 0",
    "CREATE OR REPLACE VIEW fuzz_seed_view AS SELECT id FROM fuzz_seed",
    "CREATE VIEW IF NOT EXISTS fuzz_seed_view AS SELECT 2 AS two",
    "SELECT * FROM fuzz_seed_view",
    "SELECT * FROM fuzz_seed_view WHERE id = $1",
    "SELECT v.id, s.email FROM fuzz_seed_view v JOIN fuzz_seed s ON v.id = s.id",
    "SELECT * FROM fuzz_seed_view VERSION AS OF 0",
    "DESCRIBE fuzz_seed_view",
    "SHOW CREATE TABLE fuzz_seed_view",
    "INSERT INTO fuzz_seed_view VALUES (9)",
    "DELETE FROM fuzz_seed_view",
    "CREATE VIEW fuzz_loop AS SELECT * FROM fuzz_loop",
    "CREATE VIEW fuzz_seed AS SELECT 1 AS one",
    "CREATE MATERIALIZED VIEW fuzz_mv AS SELECT 1",
    "CREATE TEMPORARY VIEW fuzz_tv AS SELECT 1",
    "CREATE VIEW fuzz_bad AS SELECT nope FROM fuzz_seed",
    "CREATE VIEW fuzz_internal AS SELECT * FROM _silt_erasures",
    "CREATE VIEW _silt_view AS SELECT 1",
    "CREATE VIEW fuzz_over_sql AS SELECT * FROM fuzz_sql",
    # LOCATION is given a path in the temp dir (see schemathesis_config).
    "CREATE TABLE fuzz_loc (id INT) LOCATION '{elsewhere}'",
    "ALTER TABLE fuzz_sql ADD COLUMNS (extra INT)",
    "ALTER TABLE fuzz_seed SET TBLPROPERTIES ('delta.appendOnly' = 'false')",
    "OPTIMIZE fuzz_seed",
    "VACUUM fuzz_seed RETAIN 168 HOURS",
    "VACUUM fuzz_seed RETAIN 0 HOURS",
    "RESTORE TABLE fuzz_seed TO VERSION AS OF 1",
    "DROP TABLE IF EXISTS fuzz_sql",
    # fuzz_over_sql now reads a dropped table: it is a 404, listings still work.
    "SELECT * FROM fuzz_over_sql",
    "SELECT table_name, column_name, data_type FROM information_schema.columns",
    "SHOW TABLES",
    "DROP VIEW fuzz_seed",
    "DROP TABLE fuzz_seed_view",
    "DROP VIEW IF EXISTS fuzz_nope",
    "DROP VIEW fuzz_nope",
    "DROP VIEW _silt_erasures",
    "DROP VIEW fuzz_over_sql",
    "DROP VIEW fuzz_seed_view",
    "SELECT 1; SELECT 2",
    "",
    "   ",
    "-- only a comment",
    "SELECT 'unterminated",
]


def sql_statements(workdir):
    return [sql.replace("{elsewhere}", os.path.join(workdir, "elsewhere")) for sql in SQL]


def toml_string(value):
    # JSON string escapes are TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def schemathesis_config(path):
    dictionaries = {
        "tables": TABLES,
        "new_tables": NEW_TABLES,
        "column_names": COLUMN_NAMES,
        "column_types": COLUMN_TYPES,
        "subjects": SUBJECTS,
        "sql": sql_statements(os.path.dirname(path)),
    }
    bindings = {
        "path.table": ("tables", 0.7),
        "query.table": ("tables", 0.7),
        "body.sql": ("sql", 0.8),
        "body.name": ("new_tables", 0.5),
        "body.columns[*].name": ("column_names", 0.5),
        "body.columns[*].type": ("column_types", 0.8),
        "body.partition_columns[*]": ("column_names", 0.5),
        "body.subjects[*]": ("subjects", 0.7),
        "body.tables[*]": ("tables", 0.7),
    }
    with open(path, "w") as f:
        for name, values in dictionaries.items():
            f.write(f"[dictionaries.{name}]\nvalues = [{', '.join(toml_string(v) for v in values)}]\n\n")
        f.write("[parameters]\n")
        for key, (name, probability) in bindings.items():
            f.write(f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}\n')


START_TIMEOUT = 60.0
HEALTH_TIMEOUT = 30.0
# Longest SIGTERM may take to stop the server (its drain timeout and some).
STOP_TIMEOUT = 45.0


def log(message):
    print(f"api-fuzz: {message}", file=sys.stderr, flush=True)


def request(url, method="GET", body=None, token=None, content_type=None, timeout=30.0):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    """A running `silt serve` on a temporary warehouse."""

    def __init__(self, silt, workdir, tokens):
        self.workdir = workdir
        self.warehouse = os.path.join(workdir, "warehouse")
        self.config = os.path.join(workdir, "silt.toml")
        self.log_path = os.path.join(workdir, "server.log")
        with open(self.config, "w") as f:
            for role, token in tokens.items():
                f.write(f'[[auth.tokens]]\ntoken = "{token}"\nrole = "{role}"\n\n')
            # A fuzzed statement must not hold a worker for long.
            f.write("[sql]\nstatement_timeout_ms = 10000\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SILT_")}
        env.setdefault("RUST_BACKTRACE", "1")
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                silt,
                "serve",
                "--warehouse",
                self.warehouse,
                "--http",
                "127.0.0.1:0",
                "--flight",
                "127.0.0.1:0",
                "--pg",
                "127.0.0.1:0",
                "--config",
                self.config,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            env=env,
        )
        self.http = self._read_listening_line()
        self.base = f"http://{self.http}"
        self._wait_healthy()

    def _read_listening_line(self):
        found = {}

        def read():
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            found["line"] = line
            # Keep draining so the server never writes into a closed pipe.
            for _ in iter(self.proc.stdout.readline, b""):
                pass

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while "line" not in found and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        line = found.get("line", "")
        match = re.match(r"silt listening http=(\S+) flight=(\S+)", line.strip())
        if not match:
            self.kill()
            raise SystemExit(
                f"api-fuzz: silt serve printed no listening line (got {line!r}); "
                f"log:\n{self.log_text()}"
            )
        return match.group(1)

    def _wait_healthy(self):
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"api-fuzz: silt serve exited ({self.proc.returncode}) before "
                    f"/healthz answered; log:\n{self.log_text()}"
                )
            try:
                status, _ = request(self.base + "/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise SystemExit(f"api-fuzz: /healthz did not answer 200; log:\n{self.log_text()}")

    def problem(self):
        """Why the server is not well, or None."""
        if self.proc.poll() is not None:
            return f"silt serve exited with status {self.proc.returncode}"
        try:
            started = time.monotonic()
            status, _ = request(self.base + "/healthz", timeout=10)
            took = time.monotonic() - started
        except OSError as e:
            return f"/healthz did not answer: {e}"
        if status != 200:
            return f"/healthz answered {status}"
        if took > 5:
            return f"/healthz took {took:.1f} s"
        return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def seed(server, token):
    """One table with a few rows, so listings and lookups have content."""
    body = json.dumps(
        {
            "name": "fuzz_seed",
            "columns": [
                {"name": "id", "type": "BIGINT", "nullable": False},
                {"name": "email", "type": "STRING"},
            ],
            "properties": {"silt.erasure.subject_columns": "email"},
        }
    ).encode()
    status, text = request(
        server.base + "/v1/tables", "POST", body, token, "application/json", timeout=120
    )
    if status not in (200, 201):
        raise SystemExit(f"api-fuzz: seeding: POST /v1/tables answered {status}: {text!r}")
    rows = b'{"id": 1, "email": "a@example.com"}\n{"id": 2, "email": "b@example.com"}\n'
    status, text = request(
        server.base + "/v1/tables/fuzz_seed/rows",
        "POST",
        rows,
        token,
        "application/x-ndjson",
        timeout=120,
    )
    if status != 200:
        raise SystemExit(f"api-fuzz: seeding: POST rows answered {status}: {text!r}")


def sweep_sql(server, role, token, workdir):
    """Every statement of the SQL dictionary once, in order, with this role's
    token: schemathesis draws from it at random, so within a time budget it
    may miss one; this makes sure each is sent. Returns failures (an answer
    of 5xx, or of a status or content type /v1/sql does not document)."""
    status, text = request(server.base + "/openapi.json")
    documented = set(json.loads(text)["paths"]["/v1/sql"]["post"]["responses"])
    failures = []
    for sql in sql_statements(workdir):
        body = json.dumps({"sql": sql}).encode()
        req = urllib.request.Request(
            server.base + "/v1/sql",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, ctype, answer = resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            status, ctype, answer = e.code, e.headers.get("Content-Type", ""), e.read()
        except OSError as e:
            failures.append(f"{role}: {sql[:80]!r}: no answer ({e})")
            continue
        problems = []
        if status >= 500:
            problems.append("a server error")
        if str(status) not in documented:
            problems.append(f"undocumented (documented: {', '.join(sorted(documented))})")
        if status >= 400 and not ctype.startswith("application/problem+json"):
            problems.append(f"content type {ctype!r}, not application/problem+json")
        if problems:
            failures.append(
                f"{role}: POST /v1/sql {sql[:80]!r} answered {status}: {'; '.join(problems)}: "
                f"{answer[:200].decode('utf-8', 'replace')}\n"
                f"    curl -s -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
                f"-d {shell_quote(body.decode())} {server.base}/v1/sql"
            )
    return failures


def shell_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


# Runs the schemathesis CLI in this Python. CPython 3.11.7 (this machine's)
# can raise "SystemError: AST constructor recursion depth mismatch" from
# ast.parse deep in a recursion (CPython gh-106905, fixed in later 3.11s);
# Hypothesis calls ast.parse only to describe a lambda in a strategy's repr,
# so such a failure is answered with a placeholder description instead of
# ending the run with an error that is not the server's.
ST_MAIN = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import api_fuzz_hooks  # serializers for the ingest body formats
import hypothesis.internal.lambda_sources as lambda_sources
_describe = lambda_sources._lambda_description
def _described(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"
lambda_sources._lambda_description = _described
from schemathesis.cli import schemathesis
sys.argv[0] = "st"
sys.exit(schemathesis())
"""


def run_schemathesis(server, role, token, seconds, seed_value, workers, workdir):
    wanted = os.environ.get("API_FUZZ_CHECKS")
    checks = wanted.split(",") if wanted else [c for c in CHECKS if c not in KNOWN_FAILING]
    report_dir = os.path.join(workdir, f"report-{role}")
    config = os.path.join(workdir, "schemathesis.toml")
    if not os.path.exists(config):
        schemathesis_config(config)
    cmd = [
        sys.executable,
        "-c",
        ST_MAIN,
        os.path.dirname(os.path.abspath(__file__)),
        "--config-file",
        config,
        "run",
        server.base + "/openapi.json",
        "--url",
        server.base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(checks),
        "--max-time",
        str(seconds),
        "--workers",
        str(workers),
        "--seed",
        str(seed_value),
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--continue-on-failure",
        "--report",
        "junit",
        "--report-dir",
        report_dir,
        "--no-color",
    ] + os.environ.get("API_FUZZ_ARGS", "").split()
    shown = ["st"] + [c if "Bearer" not in c else "'Authorization: Bearer ***'" for c in cmd[4:]]
    log(f"{role}: {' '.join(shown)}")
    started = time.monotonic()
    out_path = os.path.join(workdir, f"schemathesis-{role}.txt")
    cap = seconds * 3 + 120
    with open(out_path, "wb") as out:
        # Its own working directory, so nothing (e.g. .hypothesis/) lands in
        # the clone; a hard cap in case the time budget is not honoured (a
        # request the server never answers is cut by --request-timeout).
        try:
            code = subprocess.run(
                cmd,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=cap,
            ).returncode
        except subprocess.TimeoutExpired:
            code = f"killed after {cap} s"
    took = time.monotonic() - started
    with open(out_path, "rb") as f:
        output = f.read().decode("utf-8", "replace")
    return code, output, took


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--silt", required=True, help="the silt binary")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, reports)")
    args = parser.parse_args()

    seconds = int(os.environ.get("API_FUZZ_SECONDS", "60"))
    seed_value = int(os.environ.get("API_FUZZ_SEED", "20240611"))
    workers = int(os.environ.get("API_FUZZ_WORKERS", "2"))
    roles = [r for r in os.environ.get("API_FUZZ_ROLES", ",".join(ROLES)).split(",") if r]
    for role in roles:
        if role not in ROLES:
            raise SystemExit(f"api-fuzz: unknown role {role!r} (want {', '.join(ROLES)})")

    if importlib.util.find_spec("schemathesis") is None:
        raise SystemExit(
            f"api-fuzz: schemathesis is not installed in {sys.executable}; run scripts/setup-python.sh"
        )
    for check, why in KNOWN_FAILING.items():
        log(f"SKIPPED check {check}: {why}")

    workdir = tempfile.mkdtemp(prefix="silt-api-fuzz-")
    tokens = {role: f"fuzz-{role}-{os.getpid()}" for role in ROLES}
    failures = []
    server = Server(os.path.abspath(args.silt), workdir, tokens)
    log(f"silt serve on {server.base} (warehouse {server.warehouse})")
    try:
        seed(server, tokens["operator"])
        for role in roles:
            swept = sweep_sql(server, role, tokens[role], workdir)
            log(f"{role}: {len(SQL)} dictionary statements swept, {len(swept)} failure(s)")
            failures.extend(swept)
            code, output, took = run_schemathesis(
                server, role, tokens[role], seconds, seed_value, workers, workdir
            )
            log(f"{role}: schemathesis exit {code} after {took:.0f} s")
            if code != 0:
                print(f"\n===== schemathesis ({role} token) =====\n{output}", flush=True)
                failures.append(f"{role}: schemathesis reported failures (exit {code})")
            else:
                # The summary lines only, to keep CI logs short.
                tail = "\n".join(output.strip().splitlines()[-12:])
                print(f"\n===== schemathesis ({role} token): passed =====\n{tail}", flush=True)
            problem = server.problem()
            if problem:
                failures.append(f"after the {role} run: {problem}")
                break
    finally:
        status = server.stop()
        server.log_file.close()
    if status is None:
        failures.append(f"SIGTERM did not stop silt serve within {STOP_TIMEOUT:.0f} s (killed)")
    elif status != 0 and not any("exited" in f for f in failures):
        failures.append(f"silt serve exited with status {status} on SIGTERM")
    server_log = server.log_text()
    panics = [line for line in server_log.splitlines() if "panicked" in line or "overflowed" in line]
    if panics:
        failures.append("the server log shows panics:\n  " + "\n  ".join(panics[:20]))
    if failures:
        tail = "\n".join(server_log.splitlines()[-60:])
        print(f"\n===== server log (last 60 lines) =====\n{tail}", flush=True)
        print("\napi-fuzz: FAILED", flush=True)
        for failure in failures:
            print(f"  - {failure}", flush=True)
        # The reproducers schemathesis prints filter the token out.
        print(f"api-fuzz: tokens: {', '.join(f'{r}={t}' for r, t in tokens.items())}", flush=True)
        print(f"api-fuzz: logs and reports in {workdir}", flush=True)
        return 1
    print(f"api-fuzz: passed ({', '.join(roles)}; {seconds} s each; seed {seed_value})", flush=True)
    if args.keep:
        print(f"api-fuzz: logs and reports in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
