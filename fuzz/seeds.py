"""Writes the seed corpus of each fuzz target into DIR/<target>/ (scripts/fuzz.sh).

    python fuzz/seeds.py DIR

Text seeds (NDJSON, CSV, SQL) need only the standard library; Parquet and
Arrow IPC seeds are written with pyarrow when it is importable (the peer venv
of scripts/setup-python.sh has it) and skipped otherwise, leaving libFuzzer
to start those two from nothing.
"""

import datetime as dt
import decimal
import io
import os
import sys

NDJSON = [
    b'{"id": 1, "s": "a", "x": 1.5, "b": true}\n{"id": 2, "s": null, "x": -2, "b": false}\n',
    b'{"id": 1, "ts": "2024-01-02T03:04:05Z", "d": "2024-01-02", "amount": "12.34"}\n',
    b'{"id": 1, "ts": 1700000000, "ntz": 1700000000123}\n{"id": 2, "ts": 1.7e9}\n',
    b'{"id": 1, "n": 2147483648, "amount": 123456789012.5}\n',
    b'{"id": 1, "nested": {"a": [1, 2, {"b": null}]}, "list": [1, 2, 3]}\n',
    b'{"id": 1, "s": 5}\n{"id": "x", "s": "y"}\n{"id": 2.5, "s": true}\n',
    b'{"id": 1}\n\n   \n{"id": 2, "new_column": "v"}\r\n',
    b'{"id": 1, "raw": "aGVsbG8="}\n{"id": 2, "s": "\\u00e9\\ud83d\\ude00"}\n',
    b'{"a": {"x": 1}}\n{"a": 123}\n',
    b'{"id": null, "s": ""}\n',
]

CSV = [
    b"id,s,x,b\n1,a,1.5,true\n2,,-2,false\n",
    b"id,ts,d,amount\n1,2024-01-02T03:04:05Z,2024-01-02,12.34\n2,1700000000,,\n",
    b'id,s\n1,"quoted, with comma"\n2,"line\nbreak"\n3,"say ""hi"""\n',
    b"id,n,ntz\n1,2147483648,2024-01-02 03:04:05\n2,-1,1700000000123\n",
    b"id\n\n1\n\n",
    b"id,s\n1\n2,a,extra\n",
    b"id,id\n1,2\n",
    b"\xef\xbb\xbfid,s\r\n1,a\r\n",
    b"id,amount\n1,99999999.999\n2,1e10\n3,-0.001\n",
    b"id,b,raw\n1,yes,abc\n2,0,\n",
]

SQL = [
    b"SELECT 1",
    b"SELECT * FROM t WHERE email = 'alice@example.com' AND n > $1",
    b"SELECT count(*) FROM t VERSION AS OF 3; SELECT * FROM t TIMESTAMP AS OF '2024-01-01'",
    b"INSERT INTO t VALUES (1, 'a', 2.5e3, X'00ff', DATE '2024-01-02')",
    b"UPDATE t SET s = N'x' WHERE id IN (1, 2, 3)",
    b"DELETE FROM t WHERE s LIKE 'a%' -- comment with data@example.com",
    b"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    b"DESCRIBE HISTORY t LIMIT 5",
    b"DESCRIBE DETAIL t",
    b"OPTIMIZE t WHERE d = '2024-01-01' ZORDER BY (id)",
    b"VACUUM t RETAIN 168 HOURS DRY RUN",
    b"RESTORE TABLE t TO VERSION AS OF 1",
    b"ALTER TABLE t ADD COLUMNS (c STRING, e DECIMAL(10, 2))",
    b"ALTER TABLE t SET TBLPROPERTIES ('silt.erasure.subject_columns' = 'email')",
    b"CREATE TABLE IF NOT EXISTS t (id BIGINT NOT NULL, s STRING) PARTITIONED BY (s)",
    b"DROP TABLE IF EXISTS t",
    b"EXPLAIN ANALYZE DELETE FROM t",
    b"SHOW TABLES; SHOW COLUMNS FROM t",
    b"SELECT /* secret 42 */ r'raw\\n', e'esc\\'', b'bytes', 7L, 1.5BD, 2Y, 0x1F, $$dollar$$ FROM t",
    b"SELECT `quoted id`, \"double\", '''triple''' FROM t",
    b"WITH a AS (SELECT 1 AS x) SELECT x FROM a UNION ALL SELECT 2",
    b"SELECT CAST('1' AS INT), ARRAY[1, 2], STRUCT(1 AS a), MAP('k', 1)",
    b"DECIMAL(38, 10)",
    b"TIMESTAMP_NTZ",
    b"ARRAY<STRUCT<a: INT, b: STRING>>",
]


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def arrow_seeds(out):
    try:
        import pyarrow as pa
        import pyarrow.ipc as ipc
        import pyarrow.parquet as pq
    except ImportError:
        print("fuzz seeds: no pyarrow; Parquet and Arrow IPC start empty", file=sys.stderr)
        return
    n = 5
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "n": pa.array([1, None, -3, 2**31 - 1, 0], pa.int32()),
            "x": pa.array([1.5, None, float("nan"), float("inf"), -0.0], pa.float64()),
            "s": pa.array(["a", None, "", "é😀", "x" * 40]),
            "b": pa.array([True, False, None, True, False]),
            "d": pa.array([dt.date(2024, 1, 2)] * n, pa.date32()),
            "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)] * n, pa.timestamp("us", "UTC")),
            "ntz": pa.array([dt.datetime(2024, 1, 2)] * n, pa.timestamp("ns")),
            "amount": pa.array([decimal.Decimal("12.34")] * n, pa.decimal128(10, 2)),
            "raw": pa.array([b"\x00\xff", None, b"", b"abc", b"z"], pa.binary()),
        }
    )
    odd = pa.table(
        {
            "id": pa.array(range(n), pa.uint64()),
            "dict": pa.array(["a", "b", "a", None, "c"]).dictionary_encode(),
            "list": pa.array([[1, 2], None, [], [3], [None]], pa.list_(pa.int16())),
            "st": pa.array([{"a": 1, "b": "x"}] * n, pa.struct([("a", pa.int8()), ("b", pa.string())])),
            "big": pa.array(["x"] * n, pa.large_string()),
            "view": pa.array(["y"] * n, pa.string_view()),
            "t32": pa.array([1, 2, 3, 4, 5], pa.time32("s")),
            "dur": pa.array([1, 2, 3, 4, 5], pa.duration("ms")),
            "d256": pa.array([decimal.Decimal("1.5")] * n, pa.decimal256(40, 5)),
            "f16": pa.array([1, 2, 3, 4, 5], pa.float16()) if hasattr(pa, "float16") else pa.nulls(n),
            "m": pa.array([[("k", 1)]] * n, pa.map_(pa.string(), pa.int32())),
        }
    )
    for label, t in (("plain", table), ("odd", odd), ("empty", table.slice(0, 0))):
        for compression in ("NONE", "SNAPPY", "ZSTD", "GZIP"):
            buf = io.BytesIO()
            try:
                pq.write_table(
                    t,
                    buf,
                    compression=compression,
                    row_group_size=2,
                    data_page_version="2.0" if compression == "ZSTD" else "1.0",
                    write_page_index=compression == "SNAPPY",
                    use_dictionary=compression != "GZIP",
                )
            except Exception as e:  # a type this pyarrow cannot write to Parquet
                print(f"fuzz seeds: parquet {label}/{compression}: {e}", file=sys.stderr)
                continue
            write(os.path.join(out, "parquet"), f"{label}-{compression.lower()}.parquet", buf.getvalue())
        for compression in (None, "lz4", "zstd"):
            buf = io.BytesIO()
            options = ipc.IpcWriteOptions(compression=compression)
            with ipc.new_stream(buf, t.schema, options=options) as writer:
                for batch in t.to_batches(max_chunksize=2):
                    writer.write_batch(batch)
            write(os.path.join(out, "arrow_ipc"), f"{label}-{compression or 'none'}.arrows", buf.getvalue())


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    for target, seeds in (("ndjson", NDJSON), ("csv", CSV), ("sql", SQL)):
        for i, seed in enumerate(seeds):
            write(os.path.join(out, target), f"seed-{i:02}", seed)
    arrow_seeds(out)


if __name__ == "__main__":
    main()
