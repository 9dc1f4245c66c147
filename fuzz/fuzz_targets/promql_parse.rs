//! Fuzzes the PromQL parser: no panic, no stack overflow, no hang on any input, and every
//! expression it accepts prints to text that parses again and prints the same (the printer
//! round-trips, which `/api/v1/format_query` relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = promql::parse(text) {
        let printed = expr.to_string();
        match promql::parse(&printed) {
            Ok(again) => assert_eq!(again.to_string(), printed, "input {text:?}"),
            Err(e) => panic!("printed form {printed:?} of {text:?} does not parse: {e}"),
        }
    }
});
