//! Fuzzes the OpenMetrics parser (lenient and strict): no panic, no hang, and every payload it
//! accepts survives a round trip through the text encoder unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::exposition::Format;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check(data, Format::OpenMetrics);
});
