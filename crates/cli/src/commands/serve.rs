//! `silt serve`: the HTTP API, Arrow Flight and the Postgres wire endpoint over one warehouse.

use std::path::PathBuf;

use silt_server::{ServeOptions, ServerError};

use crate::failure::Failure;

pub(super) async fn run(
    warehouse: String,
    http: String,
    flight: String,
    pg: String,
    config: Option<PathBuf>,
) -> Result<(), Failure> {
    silt_server::serve(ServeOptions {
        warehouse,
        http,
        flight,
        pg,
        config,
    })
    .await
    .map_err(|e: ServerError| Failure::new(e.kind(), e))
}
