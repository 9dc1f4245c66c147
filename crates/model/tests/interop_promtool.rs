//! Interop with the real Prometheus parser: `promtool check metrics` (Debian's `prometheus`
//! package, installed by `scripts/test`) must agree with our strict text-format parser on every
//! case under `tests/data/text/`, except the documented cases where Meridian is deliberately
//! more lenient or follows Prometheus 3 where Debian ships 2.42. Our encoder's output must
//! also pass promtool's parser.
//!
//! promtool's exit codes: 0 valid, 3 valid with lint findings, 1 parse error.

use model::exposition::{Entry, Format, Parser, TextEncoder};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Cases where promtool 2.42 rejects and Meridian accepts, and why.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "crlf_line_ends",
        "Meridian tolerates CRLF line ends in the 0.0.4 format",
    ),
    (
        "no_trailing_newline",
        "Meridian accepts a last line without a newline",
    ),
    (
        "tabs_and_multiple_spaces",
        "Meridian accepts trailing blanks after the value",
    ),
    (
        "quoted_utf8_names",
        "quoted UTF-8 names are Prometheus 3 syntax; Debian ships 2.42",
    ),
];

fn promtool_check(payload: &[u8]) -> i32 {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("promtool must be installed (scripts/test installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(payload)
        .expect("write to promtool");
    child.wait().expect("promtool ran").code().unwrap_or(-1)
}

fn ours_accepts(payload: &[u8]) -> bool {
    let Ok(p) = Parser::new(payload, Format::Text) else {
        return false;
    };
    let mut p = p.strict();
    while let Some(e) = p.next_entry() {
        if e.is_err() {
            return false;
        }
    }
    true
}

#[test]
fn strict_text_parser_agrees_with_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/text");
    let mut agreed = 0;
    let mut disagreed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("cases").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let payload = std::fs::read(e.path().join("metrics")).expect("case file");
        let theirs = promtool_check(&payload) != 1;
        let ours = ours_accepts(&payload);
        let known = KNOWN_DIFFERENCES.iter().any(|(n, _)| *n == name);
        match (ours == theirs, known) {
            (true, false) => agreed += 1,
            (false, true) if ours && !theirs => agreed += 1,
            (true, true) => disagreed.push(format!(
                "{name}: listed as a known difference but both agree now"
            )),
            _ => disagreed.push(format!(
                "{name}: meridian accepts={ours}, promtool accepts={theirs}"
            )),
        }
    }
    for d in &disagreed {
        eprintln!("DISAGREE {d}");
    }
    println!(
        "promtool agreement: {agreed} passed, {} failed",
        disagreed.len()
    );
    assert!(disagreed.is_empty());
}

#[test]
fn encoder_output_parses_in_promtool() {
    let mut out = Vec::new();
    let mut e = TextEncoder::new(&mut out);
    e.help(
        "http_requests_total",
        "Requests served, by code.\nSecond line with a \\ backslash.",
    );
    e.metric_type(
        "http_requests_total",
        model::exposition::MetricType::Counter,
    );
    for (code, v) in [("200", 1027.0), ("500", 3.0)] {
        e.sample_parts(
            "http_requests_total",
            [("code", code), ("path", "/a\"b\\c\nd")],
            v,
            Some(1_700_000_000_000),
        );
    }
    e.help("temperature_celsius", "Odd values.");
    e.metric_type("temperature_celsius", model::exposition::MetricType::Gauge);
    for v in [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-7,
        1.234567e21,
        -0.0,
    ] {
        let s = model::exposition::float_to_string(v);
        e.sample_parts("temperature_celsius", [("v", s.as_str())], v, None);
    }
    let code = promtool_check(&out);
    assert_eq!(
        code,
        0,
        "promtool rejected or linted:\n{}",
        String::from_utf8_lossy(&out)
    );
    // And it reads back identically with our parser.
    let mut p = Parser::new(&out, Format::Text).expect("utf-8").strict();
    let mut n = 0;
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(_) = e.expect("our own output parses") {
            n += 1;
        }
    }
    assert_eq!(n, 8);
}
