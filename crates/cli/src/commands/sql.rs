//! `silt sql`: embedded SQL.

use silt_sql::{Engine, OutputFormat};
use silt_table::Warehouse;

use super::print_outputs;
use crate::failure::Failure;

pub(super) async fn run(warehouse: &Warehouse, format: OutputFormat, sql: &str) -> Result<(), Failure> {
    let engine = Engine::new(warehouse.clone());
    let outputs = engine.execute(sql).await?;
    print_outputs(format, &outputs)
}
