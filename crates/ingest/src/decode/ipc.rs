//! Arrow IPC streams.
//!
//! Compressed buffers (LZ4/ZSTD) are refused: arrow-ipc reserves each
//! buffer's *declared* uncompressed length before decompressing it, so a
//! 2 KB body declaring 40 TB aborted the process (an allocation failure is
//! not a panic that can be caught). Messages are checked from their headers
//! before any buffer is read.

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::{MessageHeader, root_as_message};

use super::{Decoded, malformed};
use crate::error::Result;

/// What a refused compressed stream is told.
pub const COMPRESSED_IPC: &str =
    "compressed Arrow IPC buffers (LZ4, ZSTD) are not accepted: send the stream uncompressed";

pub(super) fn decode(bytes: &[u8], source_name: &str) -> Result<Decoded> {
    if stream_is_compressed(bytes) {
        return Err(malformed(source_name, "Arrow IPC", COMPRESSED_IPC));
    }
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| malformed(source_name, "Arrow IPC", e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(source_name, "Arrow IPC", e))?;
    Ok(Decoded::typed(source_name, schema, batches))
}

/// Whether the IPC message whose flatbuffer header is `metadata` (a Flight
/// message's `data_header`) declares compressed buffers. A header that does
/// not parse is left to the decoder to refuse.
pub fn message_is_compressed(metadata: &[u8]) -> bool {
    let Ok(message) = root_as_message(metadata) else {
        return false;
    };
    match message.header_type() {
        MessageHeader::RecordBatch => message
            .header_as_record_batch()
            .is_some_and(|batch| batch.compression().is_some()),
        MessageHeader::DictionaryBatch => message
            .header_as_dictionary_batch()
            .and_then(|dictionary| dictionary.data())
            .is_some_and(|batch| batch.compression().is_some()),
        _ => false,
    }
}

/// Walks the stream's framing (continuation marker, metadata length,
/// metadata, body) and reports whether any message is compressed.
fn stream_is_compressed(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    let word = |at: usize| -> Option<u32> {
        bytes
            .get(at..at.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    while let Some(mut length) = word(at) {
        at += 4;
        if length == u32::MAX {
            let Some(next) = word(at) else { return false };
            length = next;
            at += 4;
        }
        if length == 0 {
            return false;
        }
        let Some(metadata) = at.checked_add(length as usize).and_then(|end| bytes.get(at..end)) else {
            return false;
        };
        if message_is_compressed(metadata) {
            return true;
        }
        let body = root_as_message(metadata).map_or(0, |m| m.bodyLength());
        let Ok(body) = usize::try_from(body) else {
            return false;
        };
        at = match at.checked_add(length as usize).and_then(|a| a.checked_add(body)) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::CompressionType;
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
    use arrow::record_batch::RecordBatch;

    use super::*;

    fn stream(compression: Option<CompressionType>) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])
            .expect("batch");
        let options = IpcWriteOptions::default()
            .try_with_compression(compression)
            .expect("options");
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new_with_options(&mut out, &schema, options).expect("writer");
        writer.write(&batch).expect("write");
        writer.write(&batch).expect("write");
        writer.finish().expect("finish");
        drop(writer);
        out
    }

    #[test]
    fn compressed_streams_are_refused_before_any_buffer_is_read() {
        assert!(!stream_is_compressed(&stream(None)));
        assert!(decode(&stream(None), "body").is_ok());
        for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
            let bytes = stream(Some(codec));
            assert!(stream_is_compressed(&bytes), "{codec:?}");
            let error = decode(&bytes, "body")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("compressed Arrow IPC"), "{error}");
        }
        // Truncated or garbage framing is not "compressed"; the decoder names it.
        assert!(!stream_is_compressed(&[0xff, 0xff, 0xff, 0xff, 0x10]));
        assert!(!stream_is_compressed(b"not arrow at all"));
    }
}
