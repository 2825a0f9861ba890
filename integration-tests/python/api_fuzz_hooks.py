"""schemathesis extensions for api_fuzz.py: request bodies for the ingest route.

`POST /v1/tables/{table}/rows` takes NDJSON, CSV, Arrow IPC or Parquet, but
schemathesis knows none of these media types, so it skipped three of them
and sent JSON text as CSV. The serializers below turn whatever schemathesis
generated for such a body into a body of that format: structured rows
(columns of the seeded table and new ones; numbers, text, dates, epoch
times, nested values, nulls) built from a generator seeded by the generated
value, so a case and its replay send the same bytes, and sometimes damaged
(truncated, a byte flipped) or raw bytes.
"""

import csv
import io
import json
import random

import schemathesis

# Imported here, once, in the main thread: imported lazily from two of
# schemathesis's worker threads at once, numpy (which pyarrow and Hypothesis
# both import) fails with "partially initialized module".
try:
    import numpy  # noqa: F401
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401
    import pyarrow.parquet as pq
except ImportError:  # no pyarrow: Arrow IPC and Parquet bodies are raw bytes
    pa = pq = None

COLUMNS = [
    "id", "email", "n", "x", "s", "b", "d", "ts", "amount", "raw",
    "new_col", "Ünï", "a b", "", "_silt_x", "ID", "x" * 200,
]
TEXT = [
    "", "a", "é😀", "2024-01-02", "2024-01-02T03:04:05Z", "2024-13-45", "1700000000",
    "1700000000123", "12.345", "-0", "1e400", "true", "x" * 300, "\u0000", "a,b", 'q"q',
    "line\nbreak", "NaN", "null",
]
NUMBERS = [0, 1, -1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 2**64, 10**30, 1.5, -0.0, 1e308, 5e-324]


def value(rng):
    kind = rng.randrange(7)
    if kind == 0:
        return None
    if kind in (1, 2):
        return rng.choice(NUMBERS)
    if kind == 3:
        return rng.choice(TEXT)
    if kind == 4:
        return rng.random() < 0.5
    if kind == 5:
        return rng.choice([[1, 2], [], {"a": 1}, {"a": {"b": [None]}}, ["x", 1]])
    return rng.randrange(-1000, 1000)


def rows(rng):
    columns = rng.sample(COLUMNS, rng.randint(1, 5))
    if rng.random() < 0.7 and "id" not in columns:
        columns[0] = "id"
    out = []
    for _ in range(rng.randint(0, 6)):
        row = {}
        for column in columns:
            if rng.random() < 0.9:
                row[column] = rng.randrange(1, 100) if column == "id" and rng.random() < 0.8 else value(rng)
        out.append(row)
    return columns, out


def ndjson(rng):
    _, data = rows(rng)
    end = rng.choice(["\n", "\r\n", "\n\n"])
    return end.join(json.dumps(row) for row in data).encode() + (end.encode() if rng.random() < 0.8 else b"")


def csv_body(rng):
    columns, data = rows(rng)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(columns)
    for row in data:
        cells = ["" if row.get(c) is None else str(row.get(c)) for c in columns]
        if rng.random() < 0.1:
            cells = cells[: rng.randrange(len(cells) + 1)] + (["extra"] if rng.random() < 0.5 else [])
        writer.writerow(cells)
    return buf.getvalue().encode()


def arrow_table(rng):
    _, data = rows(rng)
    try:
        return pa.Table.from_pylist(data)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        # Mixed kinds in a column: send every value as text.
        return pa.Table.from_pylist([{k: None if v is None else str(v) for k, v in r.items()} for r in data])


def arrow_ipc(rng):
    table = arrow_table(rng)
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, table.schema) as writer:
        writer.write_table(table)
    return buf.getvalue()


def parquet(rng):
    table = arrow_table(rng)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=rng.choice(["NONE", "SNAPPY", "ZSTD"]))
    return buf.getvalue()


def body(make, generated):
    """A body of `make`'s format, chosen by the value schemathesis generated."""
    rng = random.Random(json.dumps(generated, sort_keys=True, default=repr))
    roll = rng.random()
    if roll < 0.1:
        # The generated value itself, as text (what was sent before).
        return json.dumps(generated, default=repr).encode()
    if roll < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    try:
        if pa is None and make in (arrow_ipc, parquet):
            raise RuntimeError("no pyarrow")
        data = make(rng)
    except Exception:  # noqa: BLE001 - pyarrow refusing odd data: send raw bytes
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if roll > 0.9 and data:
        data = data[: rng.randrange(len(data))]
    elif roll > 0.8 and data:
        i = rng.randrange(len(data))
        data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    return data


def register(media_type, make):
    @schemathesis.serializer(media_type)
    def serialize(ctx, value):
        return body(make, value)

    return serialize


register("application/x-ndjson", ndjson)
register("text/csv", csv_body)
register("application/vnd.apache.arrow.stream", arrow_ipc)
register("application/vnd.apache.parquet", parquet)
