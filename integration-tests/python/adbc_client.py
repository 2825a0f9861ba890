"""Flight SQL through ADBC (adbc-driver-flightsql), as an analyst's notebook would.

Usage: adbc_client.py grpc://HOST:PORT [TOKEN]
Prints one JSON document: the rows of a query, of a prepared statement run
with two different parameter values, the catalog metadata, and the row
count after an INSERT run through executeUpdate.
"""

import json
import os
import sys
import warnings

import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions

warnings.simplefilter("ignore")  # "cannot disable autocommit": silt has no transactions


def main():
    uri = sys.argv[1]
    kwargs = {}
    if len(sys.argv) > 2:
        kwargs["db_kwargs"] = {DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {sys.argv[2]}"}
    out = {}
    with flightsql.connect(uri, **kwargs) as conn:
        cur = conn.cursor()
        cur.execute("SELECT id, name FROM t ORDER BY id")
        out["query"] = [list(r) for r in cur.fetchall()]
        cur.adbc_prepare("SELECT count(*) AS n FROM t WHERE id > $1")
        prepared = []
        for bound in (0, 2):
            cur.execute("SELECT count(*) AS n FROM t WHERE id > $1", parameters=(bound,))
            prepared.append(cur.fetchone()[0])
        out["prepared"] = prepared
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        out["catalogs"] = [o["catalog_name"] for o in objects]
        out["tables"] = sorted(
            t["table_name"] for o in objects for s in (o["catalog_db_schemas"] or []) for t in (s["db_schema_tables"] or [])
        )
        # executeUpdate: DoPut CommandStatementUpdate, answered with a row count.
        cur.adbc_statement.set_sql_query("INSERT INTO t VALUES (10, 'z')")
        out["update_count"] = cur.adbc_statement.execute_update()
        cur.execute("SELECT count(*) FROM t")
        out["count_after"] = cur.fetchone()[0]
        cur.close()
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
