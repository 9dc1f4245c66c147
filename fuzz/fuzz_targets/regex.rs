//! Fuzzes the Go-compatible regex layer: any pattern compiles or fails cleanly, and the fast
//! paths agree with matching the translated pattern by the plain regex engine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::regex::{AnchoredRegex, translate_go_regex};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // Split into pattern and subject at the first NUL-free separator.
    let (pattern, subject) = s.split_once('\u{1}').unwrap_or((s, ""));
    if pattern.len() > 512 {
        return;
    }
    let Ok(re) = AnchoredRegex::new(pattern) else { return };
    let Ok(translated) = translate_go_regex(pattern) else { panic!("compiled but did not translate") };
    if let Ok(reference) = regex::Regex::new(&format!("^(?s:{translated})$")) {
        assert_eq!(re.is_match(subject), reference.is_match(subject), "{pattern:?} on {subject:?}");
    }
});
