//! Exposition-format conformance: the OpenMetrics parser cases and Prometheus' textparse
//! samples from `../shared/conformance/` (or `MERIDIAN_OPENMETRICS_CORPUS`), plus the repo's own
//! cases under `tests/data/`. Every valid case must parse in strict mode, every invalid one
//! must be rejected; accepted inputs are also round-tripped through the text encoder.
//!
//! Prints `N passed, M failed` per corpus. A missing shared corpus fails the test (CI always has
//! it) unless `MERIDIAN_ALLOW_MISSING_CORPUS=1`.

use model::exposition::{Entry, Format, Parser, TextEncoder};
use std::path::{Path, PathBuf};

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

fn corpus_or_fail(dir: &Path) -> bool {
    if dir.is_dir() {
        return true;
    }
    if std::env::var("MERIDIAN_ALLOW_MISSING_CORPUS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: corpus {} not found", dir.display());
        return false;
    }
    panic!(
        "conformance corpus {} not found (clone ../shared beside the repo, or set MERIDIAN_ALLOW_MISSING_CORPUS=1)",
        dir.display()
    );
}

/// Parses the whole payload (strict: with the format's semantic rules); Ok(sample count) or the
/// first error.
fn parse_all(input: &[u8], format: Format, strict: bool) -> Result<usize, String> {
    let mut p = Parser::new(input, format).map_err(|e| e.to_string())?;
    if strict {
        p = p.strict();
    }
    let mut n = 0;
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(_) = e.map_err(|e| e.to_string())? {
            n += 1;
        }
    }
    Ok(n)
}

/// A sample flattened for comparison: name, sorted labels, value bits, timestamp.
type Flat = (String, Vec<(String, String)>, u64, Option<i64>);

fn flatten(input: &[u8], format: Format, strict: bool) -> Result<Vec<Flat>, String> {
    let mut p = Parser::new(input, format).map_err(|e| e.to_string())?;
    if strict {
        p = p.strict();
    }
    let mut out = Vec::new();
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(s) = e.map_err(|e| e.to_string())? {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|l| !l.value.is_empty())
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.sort();
            let v = if s.value.is_nan() {
                f64::NAN.to_bits()
            } else {
                s.value.to_bits()
            };
            out.push((s.name.to_string(), labels, v, s.timestamp));
        }
    }
    Ok(out)
}

/// Encodes the samples as 0.0.4 and parses them back: they must come back unchanged.
fn round_trip(input: &[u8], format: Format) -> Result<(), String> {
    let flat = flatten(input, format, false)?;
    let mut buf = Vec::new();
    let mut enc = TextEncoder::new(&mut buf);
    for (name, labels, v, ts) in &flat {
        enc.sample_parts(
            name,
            labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            f64::from_bits(*v),
            *ts,
        );
    }
    let back = flatten(&buf, Format::Text, false)?;
    if back != flat {
        return Err(format!(
            "round trip changed the samples:\n{}",
            String::from_utf8_lossy(&buf)
        ));
    }
    Ok(())
}

struct Tally {
    passed: usize,
    failed: Vec<String>,
}

/// Runs a directory of `<case>/{test.json,metrics}` cases.
fn run_cases(dir: &Path, format: Format) -> Tally {
    let mut tally = Tally {
        passed: 0,
        failed: Vec::new(),
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    for case in cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let spec: serde_json::Value = match std::fs::read(case.join("test.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                tally
                    .failed
                    .push(format!("{name}: unreadable test.json: {e}"));
                continue;
            }
        };
        let should_parse = spec["shouldParse"].as_bool().unwrap_or(false);
        let file = spec["file"].as_str().unwrap_or("metrics");
        let input = match std::fs::read(case.join(file)) {
            Ok(b) => b,
            Err(e) => {
                tally.failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        let result = parse_all(&input, format, true);
        let outcome = match (should_parse, result) {
            (true, Ok(_)) => round_trip(&input, format).map_err(|e| format!("{name}: {e}")),
            (true, Err(e)) => Err(format!("{name}: rejected a valid input: {e}")),
            (false, Err(_)) => Ok(()),
            (false, Ok(_)) => Err(format!("{name}: accepted an invalid input")),
        };
        match outcome {
            Ok(()) => tally.passed += 1,
            Err(e) => tally.failed.push(e),
        }
    }
    tally
}

fn report(what: &str, t: &Tally) {
    for f in &t.failed {
        eprintln!("FAIL {what}: {f}");
    }
    println!("{what}: {} passed, {} failed", t.passed, t.failed.len());
}

#[test]
fn openmetrics_shared_cases() {
    let dir = match std::env::var_os("MERIDIAN_OPENMETRICS_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => shared_dir().join("openmetrics/cases"),
    };
    if !corpus_or_fail(&dir) {
        return;
    }
    let t = run_cases(&dir, Format::OpenMetrics);
    report(&format!("openmetrics cases ({})", dir.display()), &t);
    assert!(t.passed > 0, "no cases found in {}", dir.display());
    assert!(
        t.failed.is_empty(),
        "{} conformance cases failed",
        t.failed.len()
    );
}

#[test]
fn own_openmetrics_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openmetrics");
    let t = run_cases(&dir, Format::OpenMetrics);
    report("own openmetrics cases", &t);
    assert!(t.passed > 0);
    assert!(t.failed.is_empty());
}

#[test]
fn own_text_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/text");
    let t = run_cases(&dir, Format::Text);
    report("own text 0.0.4 cases", &t);
    assert!(t.passed > 0);
    assert!(t.failed.is_empty());
}

#[test]
fn prometheus_textparse_samples() {
    let dir = shared_dir().join("exposition/prometheus-textparse");
    if !corpus_or_fail(&dir) {
        return;
    }
    // These are inputs of Prometheus' scrape parser, so they are scored on the lenient scrape
    // path. (alltypes.5mfs.om.txt, written by Prometheus' Go client, has a histogram with
    // negative buckets and a _sum, which the OpenMetrics 1.0 cases reject in strict mode.)
    let mut passed = 0;
    let mut failed = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("readable corpus dir") {
        let path = entry.expect("dir entry").path();
        let fname = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let format = if fname.ends_with(".om.txt") {
            Format::OpenMetrics
        } else if fname.ends_with(".prom.txt") {
            Format::Text
        } else {
            continue;
        };
        let input = std::fs::read(&path).expect("readable sample");
        // Every non-comment, non-blank line is one sample.
        let expected = input
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        match parse_all(&input, format, false).and_then(|n| {
            if n == expected {
                round_trip(&input, format)
            } else {
                Err(format!("parsed {n} samples, expected {expected}"))
            }
        }) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("{fname}: {e}")),
        }
    }
    for f in &failed {
        eprintln!("FAIL textparse sample: {f}");
    }
    println!(
        "prometheus textparse samples: {passed} passed, {} failed",
        failed.len()
    );
    assert_eq!(passed, 4, "expected the four sample files");
    assert!(failed.is_empty());
}
