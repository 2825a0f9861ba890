"""SQL-endpoint benchmarks (issue: SQL query endpoint), in one run.

  dml       MERGE upserting 1% and 10% of an N-row table, DELETE of 1%, UPDATE
            of 1%: `silt sql` (embedded CLI process) vs Python deltalake
            (`merge` / `delete` / `update`) on copies of the same table; wall
            time and peak RSS (each run in its own process, RSS from wait4).
  query     scan/filter/group-by/join through `POST /v1/sql` (Arrow answer,
            server already running) vs raw DataFusion over the same Parquet
            files (`raw_datafusion query`, a whole process), DuckDB
            `delta_scan` and Polars `scan_delta` (in-process).
  versions  open version N/2 of a table with `--commits` commits (checkpoints
            every 100): `SELECT count(*) … VERSION AS OF` through /v1/sql vs
            Python `DeltaTable(path, version=…)` + count.

Writes `benches/results/<date>-sql.{md,json}`.

Usage: python benches/sql.py [--rows 10000000] [--commits 10000]
       [--skip dml|query|versions] [--silt-bin PATH] [--raw-bin PATH]
"""

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from ingest import Server  # noqa: E402
from run import duckdb_connection, generate, machine, run  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def measured(cmd):
    """Runs cmd; returns (ms, peak RSS MB) of that process alone.

    Peak RSS comes from GNU time (`%M`): wait4's ru_maxrss of a forked child
    starts at this harness's own RSS, which holds the generated table."""
    cmd = ["/usr/bin/time", "-f", "SILT_MAXRSS_KB=%M"] + cmd
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    out, err = proc.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.decode()}")
    peak_kb = next((int(line.split("=", 1)[1]) for line in err.decode().splitlines()
                    if line.startswith("SILT_MAXRSS_KB=")), 0)
    return elapsed, peak_kb / 1024


PY_OP = r"""
import sys, pyarrow.parquet as pq
from deltalake import DeltaTable
path, op, arg = sys.argv[1], sys.argv[2], sys.argv[3]
dt = DeltaTable(path)
if op == "merge":
    source = pq.read_table(arg)
    (dt.merge(source, predicate="t.id = s.id", source_alias="s", target_alias="t")
       .when_matched_update_all().when_not_matched_insert_all().execute())
elif op == "delete":
    dt.delete(arg)
elif op == "update":
    dt.update(predicate=arg, updates={"amount": "amount + 1"})
"""


def dml(args, work):
    rows = args.rows
    data = os.path.join(work, "data.parquet")
    print(f"dml: generating {rows:,} rows", file=sys.stderr)
    table = generate(rows, data)
    base_wh = os.path.join(work, "silt-base")
    run([args.silt_bin, "ingest", "--warehouse", base_wh, "t", data, "--create"])
    base_py = os.path.join(work, "py-base")
    from deltalake import write_deltalake

    write_deltalake(base_py, pq.read_table(data))
    results = []
    for fraction in (0.01, 0.10):
        n = int(rows * fraction)
        # 90% of the source updates existing ids, 10% inserts new ones.
        existing = table.slice(0, int(n * 0.9))
        fresh = table.slice(0, n - existing.num_rows)
        fresh = fresh.set_column(0, "id", pa.array(range(rows, rows + fresh.num_rows), pa.int64()))
        source = pa.concat_tables([existing, fresh])
        source = source.set_column(2, "amount", pa.compute.add(source.column("amount"), 1.0))
        src = os.path.join(work, f"source-{fraction}.parquet")
        pq.write_table(source, src)
        results.append(("MERGE upsert", fraction, src))
    results.append(("DELETE", 0.01, "id % 100 = 7"))
    results.append(("UPDATE", 0.01, "id % 100 = 3"))
    out = []
    for name, fraction, arg in results:
        wh = os.path.join(work, "silt-op")
        py = os.path.join(work, "py-op")
        shutil.rmtree(wh, ignore_errors=True)
        shutil.rmtree(py, ignore_errors=True)
        shutil.copytree(base_wh, wh)
        shutil.copytree(base_py, py)
        if name.startswith("MERGE"):
            run([args.silt_bin, "ingest", "--warehouse", wh, "src", arg, "--create"])
            sql = ("MERGE INTO t USING src AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * "
                   "WHEN NOT MATCHED THEN INSERT *")
            py_args = ["merge", arg]
        elif name == "DELETE":
            sql = f"DELETE FROM t WHERE {arg}"
            py_args = ["delete", arg]
        else:
            sql = f"UPDATE t SET amount = amount + 1 WHERE {arg}"
            py_args = ["update", arg]
        print(f"dml: {name} {fraction:.0%}", file=sys.stderr)
        silt_ms, silt_mb = measured([args.silt_bin, "sql", "--warehouse", wh, "--format", "csv", sql])
        py_ms, py_mb = measured([sys.executable, "-c", PY_OP, py] + py_args)
        out.append({"op": name, "fraction": fraction, "rows": rows, "silt_ms": silt_ms, "silt_rss_mb": silt_mb,
                    "python_ms": py_ms, "python_rss_mb": py_mb})
    return out


QUERIES = {
    "scan count": "SELECT count(*) FROM t",
    "filter": "SELECT count(*), sum(amount) FROM t WHERE flag AND qty > 50",
    "group-by": "SELECT day, count(*) AS n, sum(amount) AS s, avg(qty) AS q FROM t GROUP BY day ORDER BY day",
    "join": "SELECT a.day, count(*) AS n FROM t a JOIN (SELECT DISTINCT day FROM t WHERE qty = 1) b "
            "ON a.day = b.day GROUP BY a.day ORDER BY a.day",
}


def post_sql(url, sql):
    req = urllib.request.Request(url + "/v1/sql", data=json.dumps({"sql": sql}).encode(), method="POST")
    req.add_header("accept", "application/vnd.apache.arrow.stream")
    with urllib.request.urlopen(req, timeout=3600) as resp:
        return pa.ipc.open_stream(resp.read()).read_all()


def timed(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def query(args, work):
    data = os.path.join(work, "q.parquet")
    generate(args.rows, data)
    wh = os.path.join(work, "silt-q")
    run([args.silt_bin, "ingest", "--warehouse", wh, "t", data, "--create"])
    path = os.path.join(wh, "t")
    server = Server(args.silt_bin, wh, "")
    con = duckdb_connection()
    import polars as pl

    out = []
    try:
        for name, sql in QUERIES.items():
            print(f"query: {name}", file=sys.stderr)
            silt_ms = timed(lambda: post_sql(server.url, sql))
            raw_ms = timed(lambda: run([args.raw_bin, "query", path, sql]))
            duck_sql = sql.replace("FROM t a", f"FROM delta_scan('{path}') a").replace(
                "FROM t", f"FROM delta_scan('{path}')")
            duck_ms = timed(lambda: con.execute(duck_sql).fetchall())
            ctx = pl.SQLContext(t=pl.scan_delta(path))
            polars_ms = timed(lambda: ctx.execute(sql).collect())
            out.append({"query": name, "rows": args.rows, "silt_ms": silt_ms, "raw_datafusion_ms": raw_ms,
                        "duckdb_ms": duck_ms, "polars_ms": polars_ms})
    finally:
        server.stop()
    return out


def versions(args, work):
    wh = os.path.join(work, "silt-v")
    server = Server(args.silt_bin, wh, "")
    try:
        server.post("/v1/tables", json.dumps({"name": "v", "columns": [
            {"name": "id", "type": "BIGINT"}, {"name": "note", "type": "STRING"}]}).encode(), "application/json")
        print(f"versions: writing {args.commits:,} commits", file=sys.stderr)
        for i in range(args.commits):
            server.post("/v1/tables/v/rows", f'{{"id":{i},"note":"n{i}"}}\n'.encode(), "application/x-ndjson")
        target = args.commits // 2
        sql = f"SELECT count(*) FROM v VERSION AS OF {target}"
        silt_ms = timed(lambda: post_sql(server.url, sql), repeat=5)
        got = post_sql(server.url, sql).column(0)[0].as_py()
    finally:
        server.stop()
    from deltalake import DeltaTable

    path = os.path.join(wh, "v")
    py_ms = timed(lambda: DeltaTable(path, version=target).to_pyarrow_dataset().count_rows(), repeat=5)
    py_count = DeltaTable(path, version=target).to_pyarrow_dataset().count_rows()
    if got != py_count:
        sys.exit(f"version {target}: silt counted {got}, deltalake {py_count}")
    return [{"commits": args.commits, "version": target, "silt_ms": silt_ms, "python_ms": py_ms}]


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--skip", choices=["dml", "query", "versions"], action="append", default=[])
    parser.add_argument("--silt-bin", default=os.path.join(target, "release", "silt"))
    parser.add_argument("--raw-bin", default=os.path.join(target, "release", "raw_datafusion"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    for binary in (args.silt_bin, args.raw_bin):
        if not os.path.exists(binary):
            sys.exit(f"{binary} missing: cargo build --release -p silt -p silt-benches")
    with tempfile.TemporaryDirectory(prefix="silt-sql-bench-") as work:
        dml_out = [] if "dml" in args.skip else dml(args, work)
        query_out = [] if "query" in args.skip else query(args, work)
        version_out = [] if "versions" in args.skip else versions(args, work)
    now = dt.datetime.now(dt.timezone.utc)
    info = machine()
    lines = [f"# silt benchmark: SQL ({now:%Y-%m-%d %H:%M} UTC)", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB. Peers: deltalake "
             f"{info['deltalake']}, DuckDB {info['duckdb']}, Polars {info['polars']}.", ""]
    if dml_out:
        lines += ["## DML (each a whole process; ratio = silt ÷ python)", "",
                  "| op | of rows | table rows | silt ms | python ms | time ratio | silt RSS MB | python RSS MB | RSS ratio |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for d in dml_out:
            lines.append(f"| {d['op']} | {d['fraction']:.0%} | {d['rows']:,} | {d['silt_ms']:.0f} | {d['python_ms']:.0f} | "
                         f"{d['silt_ms'] / d['python_ms']:.2f} | {d['silt_rss_mb']:.0f} | {d['python_rss_mb']:.0f} | "
                         f"{d['silt_rss_mb'] / d['python_rss_mb']:.2f} |")
        lines.append("")
    if query_out:
        lines += ["## Queries (median of 3 after a warm-up; silt through /v1/sql with an Arrow answer)", "",
                  "| query | rows | silt ms | raw DataFusion ms (process) | DuckDB ms | Polars ms | silt ÷ raw | silt ÷ DuckDB |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for q in query_out:
            lines.append(f"| {q['query']} | {q['rows']:,} | {q['silt_ms']:.0f} | {q['raw_datafusion_ms']:.0f} | "
                         f"{q['duckdb_ms']:.0f} | {q['polars_ms']:.0f} | {q['silt_ms'] / q['raw_datafusion_ms']:.2f} | "
                         f"{q['silt_ms'] / q['duckdb_ms']:.2f} |")
        lines.append("")
    if version_out:
        v = version_out[0]
        lines += ["## Time travel", "",
                  f"Open version {v['version']:,} of a {v['commits']:,}-commit table and count it: silt (/v1/sql) "
                  f"{v['silt_ms']:.0f} ms, Python deltalake {v['python_ms']:.0f} ms "
                  f"(ratio {v['silt_ms'] / v['python_ms']:.2f})."]
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{now:%Y-%m-%d}-sql")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "dml": dml_out, "query": query_out, "versions": version_out}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
