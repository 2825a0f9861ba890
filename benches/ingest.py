"""Ingestion-service benchmarks (issue: ingestion service), in one run.

  streaming  1, 16 and 64 concurrent HTTP producers sending 1-1,000-row NDJSON
             requests to `silt serve` (the `load` generator): rows/s,
             commits/s, p50/p99 durable-ack latency, with group commit on and
             off (`[ingest] group_commit = false`: one commit per request).
  bulk       N bytes of Parquet and of CSV pushed through the service
             (`POST /v1/tables/t/rows`, one request per file, 2 in flight) vs
             Python `deltalake.write_deltalake` of the same data (read + write)
             and arrow-rs's raw Parquet encode of it (`raw_datafusion encode`).

The load generator runs on the same 2 cores as the server, so streaming
figures are a floor. Writes `benches/results/<date>-ingest.{md,json}`.

Usage: python benches/ingest.py [--seconds 10] [--producers 1 16 64]
       [--bulk-mb 1024] [--silt-bin PATH] [--load-bin PATH] [--raw-bin PATH]
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
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from run import generate, machine, run  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


class Server:
    def __init__(self, silt_bin, warehouse, config_text):
        self.config = os.path.join(warehouse + ".toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.proc = subprocess.Popen(
            [silt_bin, "serve", "--warehouse", warehouse, "--http", "127.0.0.1:0", "--flight", "127.0.0.1:0", "--pg", "127.0.0.1:0",
             "--config", self.config],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("silt listening"):
            sys.exit(f"silt serve did not start: {line!r}")
        self.url = "http://" + line.split("http=")[1].split()[0]

    def post(self, path, body, content_type, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        req.add_header("content-type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=3600) as resp:
            return json.loads(resp.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)


def create_load_table(server):
    spec = {"name": "load", "columns": [
        {"name": "id", "type": "BIGINT", "nullable": False},
        {"name": "producer", "type": "STRING"},
        {"name": "ts", "type": "TIMESTAMP"},
        {"name": "value", "type": "DOUBLE"},
        {"name": "note", "type": "STRING"},
    ]}
    server.post("/v1/tables", json.dumps(spec).encode(), "application/json")


def streaming(args, work):
    out = []
    for group in (True, False):
        for producers in args.producers:
            wh = os.path.join(work, f"stream-{group}-{producers}")
            server = Server(args.silt_bin, wh, f"[ingest]\ngroup_commit = {str(group).lower()}\n")
            try:
                create_load_table(server)
                print(f"streaming: {producers} producers, group commit {group}", file=sys.stderr)
                doc = json.loads(run([args.load_bin, "--url", server.url, "--table", "load", "--producers",
                                      str(producers), "--seconds", str(args.seconds)]))
            finally:
                server.stop()
            doc["group_commit"] = group
            out.append(doc)
            shutil.rmtree(wh, ignore_errors=True)
    return out


def bulk(args, work):
    rows_per_file = 2_000_000
    files = []
    total = 0
    index = 0
    print(f"bulk: generating ~{args.bulk_mb} MB of Parquet", file=sys.stderr)
    while total < args.bulk_mb * 1e6:
        path = os.path.join(work, f"part-{index}.parquet")
        table = generate(rows_per_file, path)
        # Distinct ids per file.
        table = table.set_column(0, "id", pa.array(range(index * rows_per_file, (index + 1) * rows_per_file),
                                                   pa.int64()))
        pq.write_table(table, path, compression="snappy")
        files.append(path)
        total += os.path.getsize(path)
        index += 1
    csv_files = []
    csv_total = 0
    for path in files:
        csv_path = path.replace(".parquet", ".csv")
        pacsv.write_csv(pq.read_table(path), csv_path)
        csv_files.append(csv_path)
        csv_total += os.path.getsize(csv_path)
    rows = rows_per_file * len(files)
    results = []

    def through_service(paths, content_type, label):
        wh = os.path.join(work, f"bulk-{label}")
        shutil.rmtree(wh, ignore_errors=True)
        server = Server(args.silt_bin, wh, "[ingest]\nmax_body_bytes = 2147483648\nmax_queued_bytes = 4294967296\n")
        try:
            first = open(paths[0], "rb").read()
            server.post("/v1/tables/t/rows?create=true", first, content_type,
                        {"silt-producer-id": "bulk", "silt-sequence": "0"})
            started = time.perf_counter()

            def send(item):
                seq, path = item
                with open(path, "rb") as f:
                    return server.post("/v1/tables/t/rows", f.read(), content_type,
                                       {"silt-producer-id": f"bulk-{seq % 2}", "silt-sequence": str(seq + 1)})

            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(send, enumerate(paths[1:])))
            elapsed = time.perf_counter() - started
            written = sum(a["rows_written"] for a in answers)
        finally:
            server.stop()
        shutil.rmtree(wh, ignore_errors=True)
        return elapsed * 1000, written

    from deltalake import write_deltalake

    def python_write(paths, reader):
        path = os.path.join(work, "py")
        shutil.rmtree(path, ignore_errors=True)
        write_deltalake(path, reader(paths[0]))
        started = time.perf_counter()
        for p in paths[1:]:
            write_deltalake(path, reader(p), mode="append")
        elapsed = time.perf_counter() - started
        shutil.rmtree(path, ignore_errors=True)
        return elapsed * 1000

    timed_rows = rows_per_file * (len(files) - 1)
    mb = sum(os.path.getsize(p) for p in files[1:]) / 1e6
    print("bulk: parquet through silt", file=sys.stderr)
    silt_ms, written = through_service(files, "application/vnd.apache.parquet", "parquet")
    assert written == timed_rows, (written, timed_rows)
    print("bulk: parquet with python deltalake", file=sys.stderr)
    py_ms = python_write(files, pq.read_table)
    raw_ms = sum(json.loads(run([args.raw_bin, "encode", p]))["ms"] for p in files[1:])
    results.append(("bulk Parquet via HTTP", f"{mb:.0f} MB", timed_rows, silt_ms, "python write_deltalake", py_ms))
    results.append(("bulk Parquet via HTTP", f"{mb:.0f} MB", timed_rows, silt_ms, "arrow-rs encode only", raw_ms))
    csv_mb = sum(os.path.getsize(p) for p in csv_files[1:]) / 1e6
    print("bulk: csv through silt", file=sys.stderr)
    silt_csv_ms, written = through_service(csv_files, "text/csv", "csv")
    assert written == timed_rows, (written, timed_rows)
    print("bulk: csv with python deltalake", file=sys.stderr)
    py_csv_ms = python_write(csv_files, pacsv.read_csv)
    results.append(("bulk CSV via HTTP", f"{csv_mb:.0f} MB", timed_rows, silt_csv_ms, "python read_csv + write_deltalake",
                    py_csv_ms))
    return results


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--producers", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--bulk-mb", type=int, default=1024)
    parser.add_argument("--skip", choices=["streaming", "bulk"], action="append", default=[])
    parser.add_argument("--silt-bin", default=os.path.join(target, "release", "silt"))
    parser.add_argument("--load-bin", default=os.path.join(target, "release", "load"))
    parser.add_argument("--raw-bin", default=os.path.join(target, "release", "raw_datafusion"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    for binary in (args.silt_bin, args.load_bin, args.raw_bin):
        if not os.path.exists(binary):
            sys.exit(f"{binary} missing: cargo build --release -p silt -p silt-benches")
    with tempfile.TemporaryDirectory(prefix="silt-ingest-bench-") as work:
        stream = [] if "streaming" in args.skip else streaming(args, work)
        bulk_results = [] if "bulk" in args.skip else bulk(args, work)
    now = dt.datetime.now(dt.timezone.utc)
    info = machine()
    lines = [
        f"# silt benchmark: ingest ({now:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB. Peers: deltalake "
        f"{info['deltalake']}, pyarrow {info['pyarrow']}. silt: `{args.silt_bin}`.",
        "",
    ]
    if stream:
        lines += [
            f"## Streaming: NDJSON requests of 1-1,000 rows, {args.seconds} s per cell, load generator on the same cores",
            "",
            "| producers | group commit | rows/s | requests | commits/s | requests/commit | p50 ack ms | p99 ack ms | errors |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for d in stream:
            lines.append(
                f"| {d['producers']} | {'on' if d['group_commit'] else 'off (1 commit/request)'} | "
                f"{d['rows_per_sec']:,.0f} | {d['requests']:,} | {d['commits_per_sec']:.1f} | "
                f"{d['requests_per_commit']:.1f} | {d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {d['errors']} |"
            )
        lines.append("")
    if bulk_results:
        lines += [
            "## Bulk through the service (ratio = silt ÷ peer; below 1: silt faster)",
            "",
            "| benchmark | size | rows | silt ms | peer | peer ms | ratio | silt MB/s |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for name, size, rows, silt_ms, peer, peer_ms in bulk_results:
            mb = float(size.split()[0])
            lines.append(f"| {name} | {size} | {rows:,} | {silt_ms:.0f} | {peer} | {peer_ms:.0f} | "
                         f"{silt_ms / peer_ms:.2f} | {mb / (silt_ms / 1000):.0f} |")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{now:%Y-%m-%d}-ingest")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "streaming": stream, "bulk": bulk_results}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
