"""silt vs its peers on the same generated data, in one run.

Benchmarks (DESIGN.md "Benchmarks"; issue: foundation):
  write   bulk write of a generated mixed-type table: `silt ingest` of a Parquet
          file vs Python deltalake (read the same file + write_deltalake), and
          vs arrow-rs's raw Parquet encode of the rows (the write limit)
  query   scan + group-by, plain and filtered, over the table silt wrote:
          `silt sql` vs DuckDB delta_scan, Polars scan_delta, and raw DataFusion
          over the same Parquet files (no Delta log: the query-layer limit)

Ratios are silt ÷ peer: below 1 silt is faster. silt and raw DataFusion are
timed as whole CLI processes (start-up included) and the Python peers
in-process, so small sizes favour the peers; the note in the output says so.

Usage: python benches/run.py [--rows 1000000 10000000] [--silt-bin PATH]
       [--raw-bin PATH] [--out benches/results] [--repeat 3]
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

QUERIES = {
    "group-by": "SELECT day, count(*) AS n, sum(amount) AS s, avg(qty) AS q FROM t GROUP BY day ORDER BY day",
    "filter+group-by": "SELECT day, count(*) AS n, sum(amount) AS s, avg(qty) AS q FROM t "
    "WHERE flag AND qty > 50 GROUP BY day ORDER BY day",
}


def generate(rows, path):
    rng = np.random.default_rng(42)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    users = np.char.add("user-", (rng.integers(0, 50_000, rows)).astype(str))
    note = np.where(rng.random(rows) < 0.1, None, np.char.add("note ", rng.integers(0, 1000, rows).astype(str)))
    table = pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "user": pa.array(users, pa.string()),
            "amount": pa.array(rng.normal(100, 30, rows)),
            "qty": pa.array(rng.integers(0, 100, rows, dtype=np.int32)),
            "flag": pa.array(rng.random(rows) < 0.5),
            "ts": pa.array(start + rng.integers(0, 30 * 86_400_000_000, rows).astype("timedelta64[us]"),
                           pa.timestamp("us", tz="UTC")),
            "day": pa.array((np.datetime64("2026-01-01") + rng.integers(0, 30, rows).astype("timedelta64[D]")),
                            pa.date32()),
            "note": pa.array(note, pa.string()),
        }
    )
    pq.write_table(table, path, compression="snappy")
    return table


def timed(fn, repeat):
    fn()  # warm-up (page cache, lazy imports)
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def duckdb_connection():
    import duckdb
    import duckdb_ext

    base = list(duckdb_ext.__path__)[0]
    ext = os.path.join(base, "extensions", "v1.4.4", "linux_amd64", "delta.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{ext}'")
    return con


def counts_from_csv(text):
    lines = text.strip().splitlines()[1:]
    return [int(line.split(",")[1]) for line in lines]


def bench_size(rows, args, work):
    results = []
    data = os.path.join(work, f"data-{rows}.parquet")
    print(f"[{rows:,} rows] generating", file=sys.stderr)
    generate(rows, data)
    size_mb = os.path.getsize(data) / 1e6

    # -- write ---------------------------------------------------------------
    from deltalake import write_deltalake

    def silt_write():
        wh = os.path.join(work, f"silt-{rows}")
        shutil.rmtree(wh, ignore_errors=True)
        run([args.silt_bin, "ingest", "--warehouse", wh, "t", data, "--create"])

    def python_write():
        path = os.path.join(work, f"py-{rows}")
        shutil.rmtree(path, ignore_errors=True)
        write_deltalake(path, pq.read_table(data))

    print(f"[{rows:,} rows] write: silt", file=sys.stderr)
    silt_ms, _ = timed(silt_write, args.repeat)
    print(f"[{rows:,} rows] write: python deltalake", file=sys.stderr)
    py_ms, _ = timed(python_write, args.repeat)
    raw = json.loads(run([args.raw_bin, "encode", data]))
    results.append(("write", rows, silt_ms, "python deltalake write_deltalake", py_ms))
    results.append(("write", rows, silt_ms, "arrow-rs parquet encode (no I/O, no log)", raw["ms"]))

    # -- query ---------------------------------------------------------------
    import polars as pl

    table_path = os.path.join(work, f"silt-{rows}", "t")
    con = duckdb_connection()
    for name, sql in QUERIES.items():
        print(f"[{rows:,} rows] query {name}", file=sys.stderr)
        silt_ms, out = timed(
            lambda: run([args.silt_bin, "sql", "--warehouse", os.path.dirname(table_path), "--format", "csv", sql]),
            args.repeat,
        )
        silt_counts = counts_from_csv(out)
        raw_ms, _ = timed(lambda: run([args.raw_bin, "query", table_path, sql]), args.repeat)
        duck_sql = sql.replace("FROM t", f"FROM delta_scan('{table_path}')")
        duck_ms, duck = timed(lambda: con.execute(duck_sql).fetchall(), args.repeat)

        def polars_query():
            frame = pl.scan_delta(table_path)
            if "WHERE" in sql:
                frame = frame.filter(pl.col("flag") & (pl.col("qty") > 50))
            return (
                frame.group_by("day")
                .agg(pl.len().alias("n"), pl.col("amount").sum().alias("s"), pl.col("qty").mean().alias("q"))
                .sort("day")
                .collect()
            )

        polars_ms, polars_frame = timed(polars_query, args.repeat)
        duck_counts = [r[1] for r in duck]
        polars_counts = polars_frame["n"].to_list()
        if not (silt_counts == duck_counts == polars_counts):
            sys.exit(f"results differ for {name}: silt {silt_counts} duckdb {duck_counts} polars {polars_counts}")
        results.append((f"query {name}", rows, silt_ms, "raw DataFusion over the Parquet files (CLI)", raw_ms))
        results.append((f"query {name}", rows, silt_ms, "DuckDB delta_scan (in-process)", duck_ms))
        results.append((f"query {name}", rows, silt_ms, "Polars scan_delta (in-process)", polars_ms))
    return results, size_mb


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import deltalake
    import duckdb
    import polars

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "deltalake": deltalake.__version__,
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pyarrow": pa.__version__,
    }


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--silt-bin", default=os.path.join(target, "release", "silt"))
    parser.add_argument("--raw-bin", default=os.path.join(target, "release", "raw_datafusion"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--label", default="bulk")
    args = parser.parse_args()
    for binary in (args.silt_bin, args.raw_bin):
        if not os.path.exists(binary):
            sys.exit(f"{binary} missing: cargo build --release -p silt -p silt-benches")

    rows_out = []
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="silt-bench-") as work:
        for rows in args.rows:
            results, size_mb = bench_size(rows, args, work)
            rows_out.extend(results)
            sizes[rows] = size_mb

    now = dt.datetime.now(dt.timezone.utc)
    info = machine()
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{now:%Y-%m-%d}-{args.label}")
    lines = [
        f"# silt benchmark: {args.label} ({now:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['os']}.",
        f"Peers: deltalake {info['deltalake']}, DuckDB {info['duckdb']}, Polars {info['polars']}, "
        f"pyarrow {info['pyarrow']}. silt: `{args.silt_bin}`.",
        "Median of " + str(args.repeat) + " runs after a warm-up. Ratio = silt ÷ peer (below 1: silt faster).",
        "silt and raw DataFusion are timed as whole CLI processes (start-up, Delta log replay included);",
        "Python peers in-process. Input Parquet sizes: "
        + ", ".join(f"{r:,} rows = {s:.0f} MB" for r, s in sizes.items()) + ".",
        "",
        "| benchmark | rows | silt ms | peer | peer ms | ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, rows, silt_ms, peer, peer_ms in rows_out:
        lines.append(f"| {name} | {rows:,} | {silt_ms:.0f} | {peer} | {peer_ms:.0f} | {silt_ms / peer_ms:.2f} |")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "results": [dict(zip(
            ["benchmark", "rows", "silt_ms", "peer", "peer_ms"], r)) for r in rows_out]}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
