//! Arrow IPC streams.

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;

use super::{Decoded, malformed};
use crate::error::Result;

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| malformed(source_name, "Arrow IPC", e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(source_name, "Arrow IPC", e))?;
    Ok(Decoded::typed(source_name, schema, batches))
}
