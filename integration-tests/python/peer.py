"""Peer readers and writers for silt's interop tests.

Each subcommand prints one JSON document on stdout so the Rust tests can
compare what the peers see with what silt sees:

  read <engine> PATH [--version V]   rows sorted by id, as lists of JSON values
  configuration PATH                 the table configuration (properties)
  write_partitioned PATH             a 3-version partitioned table written by deltalake
"""

import argparse
import datetime as dt
import decimal
import glob
import json
import os
import sys


def normalise(value):
    if isinstance(value, (dt.datetime,)):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        # Epoch microseconds: comparable with CAST(ts AS BIGINT) in silt.
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def rows_from_arrow(table, columns):
    table = table.select(columns).sort_by("id")
    return [[normalise(v) for v in row.values()] for row in table.to_pylist()]


def read_deltalake(path, version, columns):
    from deltalake import DeltaTable

    table = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    return rows_from_arrow(table.to_pyarrow_table(), columns)


def read_polars(path, version, columns):
    import polars as pl

    frame = pl.read_delta(path, version=version) if version is not None else pl.read_delta(path)
    return rows_from_arrow(frame.to_arrow(), columns)


def duckdb_extension():
    import duckdb_ext  # shipped by the duckdb-ext-delta wheel

    base = list(duckdb_ext.__path__)[0]  # a namespace package: no __file__
    found = glob.glob(os.path.join(base, "extensions", "v1.4.4", "*", "delta.duckdb_extension"))
    if not found:
        sys.exit(f"delta.duckdb_extension not found under {base}")
    return found[0]


def read_duckdb(path, version, columns):
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{duckdb_extension()}'")
    source = f"delta_scan('{path}')" if version is None else f"delta_scan('{path}', version => {int(version)})"
    table = con.execute(f"SELECT * FROM {source}").arrow()
    if hasattr(table, "read_all"):
        table = table.read_all()
    return rows_from_arrow(table, columns)


def write_partitioned(path):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    def batch(ids, day):
        return pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "name": pa.array([f"n{i}" for i in ids], pa.string()),
                "day": pa.array([dt.date.fromisoformat(day)] * len(ids), pa.date32()),
            }
        )

    write_deltalake(path, batch([1, 2, 3], "2026-01-01"), partition_by=["day"])  # v0: 3 rows
    write_deltalake(path, batch([4, 5], "2026-01-02"), partition_by=["day"], mode="append")  # v1: 5
    DeltaTable(path).delete("id = 1")  # v2: 4 rows
    print(json.dumps({"version": DeltaTable(path).version()}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    read = sub.add_parser("read")
    read.add_argument("engine", choices=["deltalake", "polars", "duckdb"])
    read.add_argument("path")
    read.add_argument("--version", type=int)
    read.add_argument("--columns", required=True, help="comma list, must include id")
    conf = sub.add_parser("configuration")
    conf.add_argument("path")
    write = sub.add_parser("write_partitioned")
    write.add_argument("path")
    args = parser.parse_args()

    if args.cmd == "read":
        columns = args.columns.split(",")
        reader = {"deltalake": read_deltalake, "polars": read_polars, "duckdb": read_duckdb}[args.engine]
        print(json.dumps(reader(args.path, args.version, columns)))
    elif args.cmd == "configuration":
        from deltalake import DeltaTable

        print(json.dumps(DeltaTable(args.path).metadata().configuration))
    elif args.cmd == "write_partitioned":
        write_partitioned(args.path)


if __name__ == "__main__":
    main()
    # Skip interpreter teardown: native runtimes' background threads have
    # aborted it ("terminate called without an active exception") after the
    # answer was already printed, failing a test that had passed.
    sys.stdout.flush()
    os._exit(0)
