"""Flight SQL hardening checks through ADBC (adbc-driver-flightsql).

Usage: adbc_hardening.py grpc://HOST:PORT TOKEN   (TOKEN "-" sends none)
Prints one JSON document. With a token: a query over the partitioned table
`p`, `cursor.execute` of INSERT (its rowcount), CREATE and DROP TABLE, a query
past the statement timeout (its error and how long it took), a query of an
internal table (its error) and the table list. Without: the error a deep
statement gets.
"""

import json
import os
import sys
import time
import warnings

import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions

warnings.simplefilter("ignore")

HANGING = (
    "SELECT count(*) FROM generate_series(1,100000000) a "
    "CROSS JOIN generate_series(1,100000000) b"
)


def error_of(cur, sql):
    try:
        cur.execute(sql)
        cur.fetchall()
        return "no error"
    except Exception as e:  # the driver's error text is what a user sees
        return str(e)


def main():
    uri, token = sys.argv[1], sys.argv[2]
    kwargs = {}
    if token != "-":
        kwargs["db_kwargs"] = {DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"}
    out = {}
    with flightsql.connect(uri, **kwargs) as conn:
        cur = conn.cursor()
        if token == "-":
            out["deep"] = error_of(cur, "SELECT " + "+".join(["1"] * 30000))
        else:
            cur.execute("SELECT id, day FROM p ORDER BY id")
            out["partitioned"] = [list(r) for r in cur.fetchall()]
            cur.execute("INSERT INTO p VALUES (4, 'wed'), (5, 'wed')")
            out["insert_rowcount"] = cur.rowcount
            cur.execute("CREATE TABLE q (a BIGINT)")
            cur.fetchall()
            out["create"] = "ok"
            cur.execute("DROP TABLE q")
            cur.fetchall()
            out["drop"] = "ok"
            cur.execute("SELECT count(*) FROM p")
            out["count_after"] = cur.fetchone()[0]
            started = time.monotonic()
            out["hanging"] = error_of(cur, HANGING)
            out["hanging_seconds"] = time.monotonic() - started
            out["internal"] = error_of(cur, "SELECT * FROM _silt_erasures")
            objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
            out["tables"] = sorted(
                t["table_name"]
                for o in objects
                for s in (o["catalog_db_schemas"] or [])
                for t in (s["db_schema_tables"] or [])
            )
        cur.close()
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
