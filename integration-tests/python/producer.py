"""Producers for silt's `silt serve` tests.

Rows are "events" (id BIGINT NOT NULL, email VARCHAR, ts TIMESTAMP, day DATE),
ids START..START+ROWS, the same values the Rust tests' NDJSON/CSV bodies carry.

  file FORMAT PATH --start N --rows K
      write the rows as an Arrow IPC stream (FORMAT=arrow) or Parquet file
      (FORMAT=parquet); prints {"rows": K}
  flight URI TABLE --batches B --rows R [--start N] [--producer P] [--first-sequence S]
         [--token T] [--silt BIN --warehouse DIR]
      one Flight DoPut of B batches of R rows, batch k carrying app_metadata
      {"sequence": S+k-1}; after writing each batch, reads its PutResult.
      Prints one JSON line per ack: the ack's app_metadata plus "count", the
      table's count(*) read with `silt sql` right after the ack (when --silt is
      given). A failure prints {"error": <exception class>, "message": ...}.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys

import pyarrow as pa

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("email", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("day", pa.date32()),
    ]
)

BASE_TS = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.timezone.utc)


def events(start, rows):
    ids = list(range(start, start + rows))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array([f"user{i}@example.com" for i in ids], pa.string()),
            pa.array([BASE_TS + dt.timedelta(seconds=i) for i in ids], pa.timestamp("us", tz="UTC")),
            pa.array([dt.date(2026, 11, 20 + i % 3) for i in ids], pa.date32()),
        ],
        schema=SCHEMA,
    )


def write_file(fmt, path, start, rows):
    batch = events(start, rows)
    if fmt == "arrow":
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer:
            writer.write_batch(batch)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_batches([batch]), path)
    else:
        sys.exit(f"unknown format {fmt}")
    print(json.dumps({"rows": rows}))


def silt_count(silt, warehouse, table):
    env = {k: v for k, v in os.environ.items() if k != "SILT_FORMAT"}
    out = subprocess.run(
        [silt, "sql", "--warehouse", warehouse, "--format", "json", f"SELECT count(*) FROM {table}"],
        capture_output=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout)["rows"][0][0]


def flight_put(args):
    import pyarrow.flight as flight

    path = [args.table] if args.producer is None else [args.table, args.producer]
    descriptor = flight.FlightDescriptor.for_path(*path)
    headers = []
    if args.token is not None:
        headers.append((b"authorization", f"Bearer {args.token}".encode()))
    options = flight.FlightCallOptions(headers=headers, timeout=120)
    try:
        client = flight.FlightClient(args.uri)
        writer, reader = client.do_put(descriptor, SCHEMA, options=options)
        missing = None
        for k in range(args.batches):
            sequence = args.first_sequence + k
            batch = events(args.start + k * args.rows, args.rows)
            meta = json.dumps({"sequence": sequence}).encode()
            writer.write_with_metadata(batch, pa.py_buffer(meta))
            buf = reader.read()
            if buf is None:
                missing = k + 1
                break
            ack = json.loads(buf.to_pybytes())
            if args.silt is not None:
                ack["count"] = silt_count(args.silt, args.warehouse, args.table)
            print(json.dumps(ack), flush=True)
        writer.done_writing()
        writer.close()  # raises the call's error status, if any
        if missing is not None:
            print(json.dumps({"error": "NoPutResult", "message": f"no PutResult for batch {missing}"}))
    except Exception as e:  # the test decides what a failure means
        print(json.dumps({"error": type(e).__name__, "message": str(e)}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("file")
    f.add_argument("format", choices=["arrow", "parquet"])
    f.add_argument("path")
    f.add_argument("--start", type=int, default=0)
    f.add_argument("--rows", type=int, required=True)
    p = sub.add_parser("flight")
    p.add_argument("uri")
    p.add_argument("table")
    p.add_argument("--batches", type=int, required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--producer")
    p.add_argument("--first-sequence", type=int, default=1)
    p.add_argument("--token")
    p.add_argument("--silt")
    p.add_argument("--warehouse")
    args = parser.parse_args()
    if args.cmd == "file":
        write_file(args.format, args.path, args.start, args.rows)
    else:
        flight_put(args)


if __name__ == "__main__":
    main()
    # As peer.py: skip interpreter teardown (native threads have aborted it).
    sys.stdout.flush()
    os._exit(0)
