"""Decodes `POST /v1/sql` answers with standard Python clients.

  decode arrow:PATH csv:PATH ndjson:PATH --types T,T,…

reads each saved answer body with the ordinary reader for its format —
`pyarrow.ipc.open_stream`, the `csv` module, `json.loads` per line — and
prints one JSON document {"<format>": {"columns": [...], "rows": [[...]]}}.
Values are normalised to the conventions of silt's JSON answer, so the Rust
test can compare every format with it: dates `YYYY-MM-DD`, timestamps
`YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, NULL as null.

`--types` gives the column types (from the JSON answer's `columns`), which
only CSV needs: `int`, `float`, `bool`, `date`, `timestamp` or `str`. An
empty CSV field is NULL (the test data has no empty strings).
"""

import argparse
import csv
import datetime as dt
import json
import sys


def timestamp_text(value):
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def normalise(value):
    if isinstance(value, dt.datetime):
        return timestamp_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def decode_arrow(path, _types):
    import pyarrow as pa

    with open(path, "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    columns = table.schema.names
    rows = [[normalise(row[c]) for c in columns] for row in table.to_pylist()]
    return {"columns": columns, "rows": rows}


def csv_value(text, kind):
    if text == "":
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text not in ("true", "false"):
            sys.exit(f"CSV boolean {text!r}")
        return text == "true"
    if kind == "date":
        return dt.date.fromisoformat(text).isoformat()
    if kind == "timestamp":
        return timestamp_text(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    return text


def decode_csv(path, types):
    with open(path, newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    header, body = records[0], records[1:]
    if len(types) != len(header):
        sys.exit(f"{len(types)} types for CSV header {header}")
    rows = [[csv_value(v, k) for v, k in zip(record, types)] for record in body]
    return {"columns": header, "rows": rows}


def decode_ndjson(path, _types):
    columns = None
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            # object_pairs_hook keeps duplicate keys visible instead of
            # silently keeping the last one.
            pairs = json.loads(line, object_pairs_hook=lambda p: p)
            names = [k for k, _ in pairs]
            if columns is None:
                columns = names
            elif names != columns:
                sys.exit(f"NDJSON keys changed: {columns} then {names}")
            rows.append([v for _, v in pairs])
    return {"columns": columns or [], "rows": rows}


DECODERS = {"arrow": decode_arrow, "csv": decode_csv, "ndjson": decode_ndjson}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode")
    d.add_argument("inputs", nargs="+", help="FORMAT:PATH")
    d.add_argument("--types", default="")
    args = parser.parse_args()

    types = [t for t in args.types.split(",") if t]
    out = {}
    for spec in args.inputs:
        fmt, _, path = spec.partition(":")
        if fmt not in DECODERS:
            sys.exit(f"unknown format {fmt}")
        out[fmt] = DECODERS[fmt](path, types)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
