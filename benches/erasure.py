"""Erasure benchmarks (issue: GDPR/CCPA erasure), in one run.

  setup    an N-row table (id, email, amount, ts, note; ~1M distinct emails,
           seeded) written INTO silt through `POST /v1/tables/t/rows`, one
           Parquet request per file (--files, default 120), rows sorted by
           email so file i holds the i-th email range and the target subject
           sits in 1-2 files. `silt.erasure.subject_columns = email` is set at
           create time, before any row, so every file silt writes is one an
           erasure-aware writer wrote (bloom filters on email, where silt
           writes them; the run records whether it did). The warehouse is then
           copied, so every measurement below starts from identical bytes.
  one      `POST /v1/erasures` of 1 subject with purge (delete + VACUUM full
           + checkpoint + log expiry + byte-level verification): wall time
           from submit to `done` seen by polling, the server's own
           received_at -> completed_at, and the certificate's files
           rewritten, rows deleted, files purged, objects scanned and per-phase
           timings. The same without purge (delete + verification of the
           current version only) on a fresh copy.
  peer     naive Python deltalake on a copy: `DeltaTable(path).delete("email
           = '...'")` + `vacuum(retention_hours=0, full=True, ...)`, in-process,
           table open included. It neither checkpoints, expires the log (whose
           `add` statistics can still quote the subject) nor verifies anything.
  batch    10,000 subjects in one request (1 present, 9,999 absent emails
           inside the table's email range, so min/max statistics cannot rule
           files out) vs the 1-subject run, on equal fresh copies; target:
           ratio <= 1.5.

Ratios are silt / peer (below 1: silt faster). The server runs on the same
cores as this harness; polling is adaptive (50 ms, growing with the wait to
at most 2% of it). Writes `benches/results/<date>-erasure.{md,json}`.

Usage: python benches/erasure.py [--rows 10000000] [--files 120]
       [--batch 10000] [--skip nopurge|peer|batch] [--silt-bin PATH]
       [--out benches/results]
"""

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from run import machine  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

TABLE = "t"
SPEC = {"name": TABLE, "columns": [
    {"name": "id", "type": "BIGINT", "nullable": False},
    {"name": "email", "type": "STRING"},
    {"name": "amount", "type": "DOUBLE"},
    {"name": "ts", "type": "TIMESTAMP"},
    {"name": "note", "type": "STRING"},
], "properties": {"silt.erasure.subject_columns": "email"}}


class Silt:
    """`silt serve` on a warehouse, ports :0; its log goes to <warehouse>.log."""

    def __init__(self, silt_bin, warehouse):
        self.log = warehouse + ".log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [silt_bin, "serve", "--warehouse", warehouse, "--http", "127.0.0.1:0", "--flight", "127.0.0.1:0", "--pg", "127.0.0.1:0"],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            )
        line = self.proc.stdout.readline()
        if not line.startswith("silt listening"):
            sys.exit(f"silt serve did not start: {line!r}\n{self.tail()}")
        self.url = "http://" + line.split("http=")[1].split()[0]

    def call(self, method, path, body=None, content_type="application/json"):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            req.add_header("content-type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=3600) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            sys.exit(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}\n{self.tail()}")

    def tail(self, lines=20):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)


# -- data ------------------------------------------------------------------------------------------

def email_of(k, width):
    """user<k zero-padded>@example.com: zero-padding makes text order = number order."""
    return f"user{k:0{width}d}@example.com"


def plan(rows, emails):
    """Sorted email numbers of every row and the target subject (a handful of rows)."""
    rng = np.random.default_rng(42)
    ks = np.sort(rng.integers(0, emails, rows))
    target = int(ks[int(rows * 0.4)])
    return ks, target


def file_table(ks, start, stop, width, seed):
    n = stop - start
    rng = np.random.default_rng(seed)
    k = pa.array(ks[start:stop])
    padded = pc.utf8_lpad(pc.cast(k, pa.string()), width, "0")
    email = pc.binary_join_element_wise("user", padded, "@example.com", "")
    note = np.where(rng.random(n) < 0.1, None, np.char.add("note ", rng.integers(0, 1000, n).astype(str)))
    t0 = np.datetime64("2026-01-01T00:00:00", "us")
    return pa.table({
        "id": pa.array(np.arange(start, stop, dtype=np.int64)),
        "email": email,
        "amount": pa.array(rng.normal(100, 30, n)),
        "ts": pa.array(t0 + rng.integers(0, 30 * 86_400_000_000, n).astype("timedelta64[us]"),
                       pa.timestamp("us", tz="UTC")),
        "note": pa.array(note, pa.string()),
    })


def ingest(args, warehouse):
    """Writes the table into silt, one Parquet POST per file; returns facts about it."""
    emails = args.emails or max(1, min(1_000_000, args.rows // 10))
    width = len(str(emails - 1))
    ks, target = plan(args.rows, emails)
    bounds = np.linspace(0, args.rows, args.files + 1).astype(np.int64)
    target_files = [i for i in range(args.files) if ks[bounds[i]] <= target <= ks[bounds[i + 1] - 1]]
    server = Silt(args.silt_bin, warehouse)
    try:
        server.call("POST", "/v1/tables", json.dumps(SPEC).encode())
        started = time.perf_counter()
        for i in range(args.files):
            table = file_table(ks, bounds[i], bounds[i + 1], width, seed=1000 + i)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="snappy")
            answer = server.call("POST", f"/v1/tables/{TABLE}/rows", sink.getvalue().to_pybytes(),
                                 "application/vnd.apache.parquet")
            assert answer["rows_written"] == table.num_rows, answer
            if i % 20 == 0:
                print(f"setup: file {i + 1}/{args.files}", file=sys.stderr)
        ingest_ms = (time.perf_counter() - started) * 1000
        info = server.call("GET", f"/v1/tables/{TABLE}")
    finally:
        server.stop()
    if info["files"] < args.files:
        sys.exit(f"silt holds {info['files']} files, expected at least {args.files}")
    return {
        "rows": args.rows, "emails": emails, "files_posted": args.files, "files": info["files"],
        "bytes": info["bytes"], "version": info["version"], "ingest_ms": ingest_ms,
        "subject": email_of(target, width), "subject_rows": int(np.count_nonzero(ks == target)),
        "subject_files": len(target_files), "width": width, "properties": info.get("properties"),
        "bloom_filter_on_email": bloom_filters(os.path.join(warehouse, TABLE)),
    }


def bloom_filters(table_dir):
    """Whether silt's data files carry a Parquet bloom filter on email: 'all', 'none' or 'k of n'."""
    files = [os.path.join(root, f) for root, _, names in os.walk(table_dir) for f in names
             if f.endswith(".parquet") and "_delta_log" not in root]
    try:
        import duckdb

        con = duckdb.connect()
        have = sum(1 for f in files if con.execute(
            "SELECT count(*) FROM parquet_metadata(?) WHERE path_in_schema = 'email' "
            "AND bloom_filter_offset IS NOT NULL AND bloom_filter_length > 0", [f]).fetchone()[0] > 0)
    except Exception as e:  # noqa: BLE001 - a probe, not a measurement
        return f"unknown ({e})"
    return "all" if have == len(files) else "none" if have == 0 else f"{have} of {len(files)}"


# -- silt ------------------------------------------------------------------------------------------

def erase(args, warehouse, subjects, purge):
    """One erasure request through a fresh server; returns wall times and the certificate."""
    server = Silt(args.silt_bin, warehouse)
    try:
        body = json.dumps({"subjects": subjects, "tables": [TABLE], "purge": purge}).encode()
        started = time.perf_counter()
        accepted = server.call("POST", "/v1/erasures", body)
        while True:
            waited = time.perf_counter() - started
            time.sleep(max(0.05, min(0.02 * waited, 2.0)))
            status = server.call("GET", f"/v1/erasures/{accepted['id']}")
            if status["status"] in ("done", "failed"):
                break
        wall_ms = (time.perf_counter() - started) * 1000
    finally:
        server.stop()
    cert = status.get("certificate") or {}
    if status["status"] != "done":
        sys.exit(f"erasure {accepted['id']} {status['status']}: {status.get('error')}\n"
                 f"{json.dumps(cert, indent=1)[:4000]}")
    table = next(t for t in cert["tables"] if t["table"] == TABLE)

    def ts(s):
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))

    return {
        "subjects": len(subjects), "purge": purge, "wall_ms": wall_ms,
        "server_ms": (ts(cert["completed_at"]) - ts(cert["received_at"])).total_seconds() * 1000,
        "run_ms": (ts(cert["completed_at"]) - ts(cert["started_at"])).total_seconds() * 1000,
        "rows_deleted": table["rows_deleted"], "files_rewritten": table["files_rewritten"],
        "files_live": table.get("files_live"), "files_pruned": table.get("files_pruned"),
        "files_read": table.get("files_read"), "files_added": table["files_added"], "files_purged": table["files_purged"],
        "log_entries_expired": table["log_entries_expired"],
        "objects_scanned": table["verification"]["objects_scanned"],
        "bytes_scanned": table["verification"]["bytes_scanned"],
        "parquet_files_decoded": table["verification"]["parquet_files_decoded"],
        "delete_ms": table["timings_ms"]["delete_ms"], "purge_ms": table["timings_ms"]["purge_ms"],
        "verify_ms": table["timings_ms"]["verify_ms"],
        "ledger_objects_scanned": cert["ledger"]["objects_scanned"],
        # The certificate without its subject hashes (10,000 of them in the batch run).
        "certificate": {**cert, "subject_hashes": len(cert["subject_hashes"])},
    }


def absent_subjects(n, facts):
    """n emails that no row holds but that sort inside the table's range (other domain, same numbers)."""
    rng = np.random.default_rng(7)
    nums = rng.choice(facts["emails"], size=n, replace=False)
    return [f"user{k:0{facts['width']}d}@example.net" for k in nums]


# -- peer ------------------------------------------------------------------------------------------

def python_peer(table_dir, subject):
    from deltalake import DeltaTable

    started = time.perf_counter()
    table = DeltaTable(table_dir)
    metrics = table.delete(f"email = '{subject}'")
    delete_ms = (time.perf_counter() - started) * 1000
    removed = table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
    wall_ms = (time.perf_counter() - started) * 1000
    return {"wall_ms": wall_ms, "delete_ms": delete_ms, "vacuum_ms": wall_ms - delete_ms,
            "rows_deleted": metrics.get("num_deleted_rows"), "files_rewritten": metrics.get("num_removed_files"),
            "files_added": metrics.get("num_added_files"), "files_vacuumed": len(removed), "metrics": metrics}


# -- report ----------------------------------------------------------------------------------------

def report(args, facts, runs, peer, now, info):
    one = runs["one"]
    lines = [
        f"# silt benchmark: erasure ({now:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['os']}. "
        f"Peer: deltalake {info['deltalake']}. silt: `{args.silt_bin}`.",
        f"Table: {facts['rows']:,} rows, {facts['emails']:,} distinct emails, {facts['files']} files "
        f"({facts['bytes'] / 1e6:.0f} MB), written through `POST /v1/tables/t/rows` ({facts['files_posted']} "
        f"Parquet requests, {facts['ingest_ms'] / 1000:.1f} s), sorted by email. Bloom filter on email in "
        f"silt's files: {facts['bloom_filter_on_email']}. The subject is in {facts['subject_rows']} rows "
        f"in {facts['subject_files']} file(s).",
        "Wall = submit until `done` is seen by polling (server already running, fresh copy of the table each "
        "run); server = the certificate's received_at -> completed_at.",
        "",
        "## One subject",
        "",
        "| run | wall ms | server ms | delete ms | purge ms | verify ms | rows deleted | files pruned / read "
        "/ rewritten | files purged | log entries expired | objects scanned | MB scanned |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (("one", "silt, purge"), ("nopurge", "silt, delete only (purge false)"),
                       ("batch", f"silt, purge, {args.batch:,} subjects (1 present)")):
        r = runs.get(key)
        if r:
            lines.append(f"| {label} | {r['wall_ms']:.0f} | {r['server_ms']:.0f} | {r['delete_ms']} | "
                         f"{r['purge_ms']} | {r['verify_ms']} | {r['rows_deleted']} | "
                         f"{r['files_pruned']} / {r['files_read']} / {r['files_rewritten']} | "
                         f"{r['files_purged']} | {r['log_entries_expired']} | {r['objects_scanned']} | "
                         f"{r['bytes_scanned'] / 1e6:.0f} |")
    if peer:
        lines.append(f"| Python deltalake delete + vacuum(full) | {peer['wall_ms']:.0f} | - | {peer['delete_ms']:.0f} "
                     f"| {peer['vacuum_ms']:.0f} | - | {peer['rows_deleted']} | {peer['files_rewritten']} | "
                     f"{peer['files_vacuumed']} | - | - | - |")
    lines.append("")
    ratios = {}
    if peer:
        ratios["silt_purge_vs_python"] = one["wall_ms"] / peer["wall_ms"]
        ratios["silt_delete_phase_vs_python_delete"] = one["delete_ms"] / peer["delete_ms"]
        if "nopurge" in runs:
            ratios["silt_nopurge_vs_python"] = runs["nopurge"]["wall_ms"] / peer["wall_ms"]
    if "batch" in runs:
        ratios["batch_vs_one"] = runs["batch"]["wall_ms"] / one["wall_ms"]
        ratios["batch_vs_one_server"] = runs["batch"]["server_ms"] / one["server_ms"]
    if ratios:
        lines += ["## Ratios", "", "| ratio | value |", "| --- | ---: |"]
        names = {
            "silt_purge_vs_python": "silt erasure with purge ÷ Python delete + vacuum (wall)",
            "silt_delete_phase_vs_python_delete": "silt delete phase ÷ Python delete",
            "silt_nopurge_vs_python": "silt erasure without purge ÷ Python delete + vacuum (wall)",
            "batch_vs_one": f"{args.batch:,} subjects ÷ 1 subject (wall; target ≤ 1.5)",
            "batch_vs_one_server": f"{args.batch:,} subjects ÷ 1 subject (server received -> completed)",
        }
        for key, value in ratios.items():
            lines.append(f"| {names[key]} | {value:.2f} |")
        lines.append("")
    lines += ["silt's run also checkpoints, expires old log entries and reads back every object under the table "
              "root (and its ledger); the Python peer does none of that."]
    return lines, ratios


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/silt-target-release"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--emails", type=int, default=0, help="distinct emails (default min(1M, rows/10))")
    parser.add_argument("--batch", type=int, default=10_000, help="subjects in the batched request")
    parser.add_argument("--skip", choices=["nopurge", "peer", "batch"], action="append", default=[])
    parser.add_argument("--silt-bin", default=os.path.join(target, "release", "silt"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--label", default="erasure")
    args = parser.parse_args()
    if not os.path.exists(args.silt_bin):
        sys.exit(f"{args.silt_bin} missing: cargo build --release -p silt")
    if subprocess.run([args.silt_bin, "erase", "--help"], capture_output=True).returncode != 0:
        sys.exit(f"{args.silt_bin} has no erasure support (no `silt erase`): rebuild it")

    with tempfile.TemporaryDirectory(prefix="silt-erasure-bench-") as work:
        base = os.path.join(work, "base")
        print(f"setup: {args.rows:,} rows in {args.files} requests", file=sys.stderr)
        facts = ingest(args, base)
        print(f"setup: {facts['files']} files, subject in {facts['subject_rows']} rows / "
              f"{facts['subject_files']} file(s); bloom filters: {facts['bloom_filter_on_email']}", file=sys.stderr)
        copies = {"one": base}
        for name in ("nopurge", "batch", "peer"):
            if name not in args.skip:
                copies[name] = os.path.join(work, name)
                shutil.copytree(base, copies[name])
        subject = facts["subject"]
        runs = {}
        print("one: 1 subject, purge", file=sys.stderr)
        runs["one"] = erase(args, copies["one"], [subject], True)
        if "nopurge" in copies:
            print("nopurge: 1 subject, delete only", file=sys.stderr)
            runs["nopurge"] = erase(args, copies["nopurge"], [subject], False)
        if "batch" in copies:
            print(f"batch: {args.batch:,} subjects, purge", file=sys.stderr)
            subjects = [subject] + absent_subjects(args.batch - 1, facts)
            runs["batch"] = erase(args, copies["batch"], subjects, True)
        peer = None
        if "peer" in copies:
            print("peer: Python deltalake delete + vacuum", file=sys.stderr)
            peer = python_peer(os.path.join(copies["peer"], TABLE), subject)
        for name, r in list(runs.items()) + ([("peer", peer)] if peer else []):
            if r["rows_deleted"] != facts["subject_rows"]:
                sys.exit(f"{name}: deleted {r['rows_deleted']} rows, the subject has {facts['subject_rows']}")

    now = dt.datetime.now(dt.timezone.utc)
    info = machine()
    lines, ratios = report(args, facts, runs, peer, now, info)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{now:%Y-%m-%d}-{args.label}")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    facts = {k: v for k, v in facts.items() if k != "subject"}  # keep even a synthetic subject out of results
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "silt_bin": args.silt_bin, "table": facts, "silt": runs, "python": peer,
                   "ratios": ratios}, f, indent=1, default=str)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
