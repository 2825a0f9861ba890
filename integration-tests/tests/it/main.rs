//! One integration-test binary: every module drives the real `silt` binary
//! (and, for interop, the Python peers) against a fresh temporary warehouse.

mod harness;
mod server;

mod cdc;
mod cli_ingest;
mod cli_server;
mod cli_shell;
mod console;
mod constraints;
mod disk_full;
mod dml_concurrency;
mod erasure;
mod error_contract;
mod errors;
mod fault_proxy;
mod flight_sql;
mod hardening_erasure;
mod hardening_http;
mod hardening_sql;
mod ingest_contract;
mod interop;
mod maintenance;
mod object_store;
mod pg_wire;
mod readme;
mod serve_ingest;
mod serve_sql;
mod sources_nats;
mod sql_metrics;
mod storage_outage;
mod time_travel;
mod views;
mod write_path;
