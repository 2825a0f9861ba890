//! silt-server will own the network surface: the axum HTTP API (`/v1/sql`,
//! `/v1/tables`, `/v1/tables/{t}/rows`, `/v1/erasures`, `/healthz`,
//! `/metrics`, `/openapi.json`), Arrow Flight (DoPut ingest, Flight SQL), auth
//! and config. It wires silt-ingest, silt-sql and silt-erasure and translates
//! their errors with `silt_table::ErrorKind`; it owns no logic of theirs.
//!
//! Not built yet: this crate is a placeholder so the workspace has the layout
//! of `DESIGN.md`. See the ingestion and SQL endpoint issues.
//!
//! ```
//! // Nothing to call yet; `silt serve` arrives with the ingestion issue.
//! ```
