"""Issue 11 (hardening): the attacks of items 1-3 against a RELEASE silt.

  crash     POST /v1/sql with `SELECT 1+1+…+1` (30,000 terms, ~60 KB) without
            a token, with a wrong token, and with a reader token: the status
            of each and whether the process is still alive after.
  in-list   `SELECT count(*) FROM t WHERE id IN (0, …, N-1)` on a Delta table
            (N = 2,000, 10,000, 50,000): status and time.
  hang      four readers each run the cross join of two 1e8-row
            generate_series with timeout_ms 3000, while /healthz is probed
            every 50 ms: each reader's status and seconds, healthz median and
            worst latency.
  sigterm   SIGTERM while a hanging query runs with [server]
            drain_timeout_ms = 2000: seconds until the process exits.

Usage: python3 benches/hardening.py PATH/TO/release/silt
(benches/hardening.sh builds the release binary in its own target dir.)
Standard library only. Writes benches/results/<date>-hardening.{md,json}.
"""

import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CONFIG = """
[[auth.tokens]]
token = "r-token"
role = "reader"

[[auth.tokens]]
token = "o-token"
role = "operator"

[server]
drain_timeout_ms = 2000
"""

HANGING = (
    "SELECT count(*) FROM generate_series(1,100000000) a "
    "CROSS JOIN generate_series(1,100000000) b"
)


class Server:
    def __init__(self, binary, root):
        self.root = root
        config = os.path.join(root, "silt.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        self.log = open(os.path.join(root, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--warehouse", os.path.join(root, "wh"), "--http", "127.0.0.1:0",
             "--flight", "127.0.0.1:0", "--pg", "127.0.0.1:0", "--config", config],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline()
        self.http = line.split("http=")[1].split()[0]

    def alive(self):
        return self.proc.poll() is None

    def request(self, path, body=None, token=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.http}{path}", data=data)
        if body is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()


def crash(binary, root):
    server = Server(binary, root)
    deep = {"sql": "SELECT " + "+".join(["1"] * 30000)}
    rows = []
    for who, token in [("no token", None), ("wrong token", "nope"), ("reader", "r-token")]:
        status, _ = server.request("/v1/sql", deep, token)
        rows.append({"caller": who, "status": status, "alive": server.alive()})
    server.stop()
    return rows


def in_list(binary, root):
    server = Server(binary, root)
    server.request("/v1/sql", {"sql": "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR)"}, "o-token")
    server.request("/v1/sql", {"sql": "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"}, "o-token")
    rows = []
    for n in (2000, 10000, 50000):
        sql = "SELECT count(*) FROM t WHERE id IN (" + ", ".join(str(i) for i in range(n)) + ")"
        started = time.monotonic()
        status, body = server.request("/v1/sql", {"sql": sql}, "r-token")
        rows.append({"values": n, "status": status, "ms": round((time.monotonic() - started) * 1000, 1),
                     "alive": server.alive(), "answer": json.loads(body).get("rows") if status == 200 else None})
    server.stop()
    return rows


def hang(binary, root):
    server = Server(binary, root)
    latencies, done = [], threading.Event()

    def probe():
        while not done.is_set():
            started = time.monotonic()
            status, _ = server.request("/healthz", timeout=30)
            latencies.append((status, time.monotonic() - started))
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    results = []

    def reader():
        started = time.monotonic()
        status, _ = server.request("/v1/sql", {"sql": HANGING, "timeout_ms": 3000}, "r-token")
        results.append({"status": status, "seconds": round(time.monotonic() - started, 2)})

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    prober.join()
    ms = sorted(l * 1000 for _, l in latencies)
    out = {
        "readers": results,
        "healthz_probes": len(ms),
        "healthz_all_200": all(s == 200 for s, _ in latencies),
        "healthz_median_ms": round(statistics.median(ms), 1),
        "healthz_worst_ms": round(ms[-1], 1),
        "alive": server.alive(),
    }
    server.stop()
    return out


def sigterm(binary, root):
    server = Server(binary, root)
    threading.Thread(target=lambda: server.request("/v1/sql", {"sql": HANGING}, "r-token", timeout=60),
                     daemon=True).start()
    time.sleep(1.5)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=60)
        took = round(time.monotonic() - started, 2)
    except subprocess.TimeoutExpired:
        took = None
    server.stop()
    return {"exit_seconds": took, "exit_code": server.proc.returncode}


def main():
    binary = sys.argv[1]
    out = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "binary": binary}
    for name, fn in [("crash", crash), ("in_list", in_list), ("hang", hang), ("sigterm", sigterm)]:
        with tempfile.TemporaryDirectory() as root:
            out[name] = fn(binary, root)
            print(name, json.dumps(out[name]), file=sys.stderr)
    md = [f"# Hardening attacks against the release binary ({out['date']}, {out['machine']})", "",
          "| attack | result |", "| --- | --- |"]
    for row in out["crash"]:
        md.append(f"| 30,000-term `1+…+1`, {row['caller']} | {row['status']}, server alive: {row['alive']} |")
    for row in out["in_list"]:
        md.append(f"| `IN` list of {row['values']:,} values on a Delta table | {row['status']} in {row['ms']} ms, alive: {row['alive']} |")
    h = out["hang"]
    md.append("| 4 readers × 1e8 × 1e8 cross join, timeout 3 s | " +
              ", ".join(f"{r['status']} after {r['seconds']} s" for r in h["readers"]) + " |")
    md.append(f"| /healthz meanwhile ({h['healthz_probes']} probes) | median {h['healthz_median_ms']} ms, "
              f"worst {h['healthz_worst_ms']} ms, all 200: {h['healthz_all_200']} |")
    s = out["sigterm"]
    md.append(f"| SIGTERM during a hanging query (drain 2 s) | exited after {s['exit_seconds']} s (code {s['exit_code']}) |")
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    base = os.path.join(results, f"{out['date']}-hardening")
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=2)
    with open(base + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
