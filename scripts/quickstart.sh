#!/usr/bin/env bash
# Quickstart on the embedded default warehouse (./silt-data): builds silt,
# creates a partitioned table, ingests the sample files in two commits and
# queries the latest and the previous version. Safe to run again.
#   SILT_WAREHOUSE  the warehouse (default ./silt-data)
#   SILT_BIN        the binary (default $CARGO_TARGET_DIR/debug/silt, built)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/silt-target}"
if [ -z "${SILT_BIN:-}" ]; then
  cargo build -q -p silt
fi
silt="${SILT_BIN:-$CARGO_TARGET_DIR/debug/silt}"
export SILT_WAREHOUSE="${SILT_WAREHOUSE:-./silt-data}"

"$silt" sql "CREATE TABLE IF NOT EXISTS events (id BIGINT NOT NULL, user VARCHAR, amount DOUBLE, day DATE)
             PARTITIONED BY (day) TBLPROPERTIES ('silt.erasure.subject_columns' = 'user')"
"$silt" ingest events examples/events.csv
"$silt" ingest events examples/more-events.ndjson
"$silt" sql "SELECT day, count(*) AS events, sum(amount) AS amount FROM events GROUP BY day ORDER BY day"
"$silt" sql "SELECT (SELECT count(*) FROM events) AS now,
                    (SELECT count(*) FROM events VERSION AS OF 1) AS after_first_ingest"
"$silt" table history events
echo "warehouse: $SILT_WAREHOUSE — try: $silt sql \"SELECT * FROM events TIMESTAMP AS OF '$(date -u +%Y-%m-%dT%H:%M:%SZ)'\""
