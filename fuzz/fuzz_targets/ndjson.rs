//! Fuzzes the ndjson body decoder and the ingest path behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    silt_fuzz::ingest(silt_ingest::Format::Ndjson, data);
});
