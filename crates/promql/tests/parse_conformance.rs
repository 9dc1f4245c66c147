//! Parser conformance against the shared PromQL data:
//!
//! 1. every expression of every `eval` command in `shared/conformance/promql/*.test` parses
//!    (all experimental features on, as the upstream test runner has them), except an eval
//!    whose expected failure message is a parse error, which must fail to parse;
//! 2. every line of `promql-parse/invalid_exprs.txt` is rejected and every line of
//!    `promql-parse/feature_probes.txt` accepted;
//! 3. every expression that parsed prints to text that parses to the same tree.
//!
//! The corpus directory is `../../../shared/conformance/promql` from this crate, or
//! `MERIDIAN_PROMQL_CORPUS`; the parse lists sit beside it in `promql-parse`. A missing corpus
//! fails the test unless `MERIDIAN_ALLOW_MISSING_CORPUS=1`.

use promql::{Expr, ParserOptions, parse_with_options};
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("MERIDIAN_PROMQL_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/promql"),
    }
}

fn parse_lists_dir() -> PathBuf {
    let corpus = corpus_dir();
    corpus
        .parent()
        .map(|p| p.join("promql-parse"))
        .unwrap_or_else(|| PathBuf::from("promql-parse"))
}

/// Returns false (after saying why) when the directory is missing and that is allowed.
fn require_dir(dir: &Path) -> bool {
    if dir.is_dir() {
        return true;
    }
    if std::env::var("MERIDIAN_ALLOW_MISSING_CORPUS").as_deref() == Ok("1") {
        eprintln!(
            "skipping: {} not found (MERIDIAN_ALLOW_MISSING_CORPUS=1)",
            dir.display()
        );
        return false;
    }
    panic!(
        "conformance data not found at {} (set MERIDIAN_PROMQL_CORPUS, or MERIDIAN_ALLOW_MISSING_CORPUS=1 to skip)",
        dir.display()
    );
}

/// One expression taken from a test script.
struct Case {
    location: String,
    expr: String,
    /// The eval expects a failure whose message is a parse error.
    expects_parse_error: bool,
}

/// The expression of an `eval` header: the rest of the line after `eval instant at <T>` or
/// `eval range from <A> to <B> step <C>` (also for the `eval_fail`-style prefixes).
fn eval_expression(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let command = words.next()?.to_ascii_lowercase();
    if !command.starts_with("eval") {
        return None;
    }
    let skip = match words.next()? {
        "instant" => 2, // at <T>
        "range" => 6,   // from <A> to <B> step <C>
        _ => return None,
    };
    // Find where the expression starts: after `1 + 1 + skip` whitespace-separated words.
    let mut rest = line.trim_start();
    for _ in 0..2 + skip {
        let word_end = rest.find(char::is_whitespace)?;
        rest = rest[word_end..].trim_start();
    }
    Some(rest.to_string())
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.split('\n').map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(expr) = eval_expression(line) else {
                continue;
            };
            // The body runs to the next empty or comment line; look there for the expected
            // failure message.
            let body = lines[i + 1..]
                .iter()
                .take_while(|l| !l.is_empty() && !l.starts_with('#'));
            let expects_parse_error = body.into_iter().any(|l| {
                let is_fail_message = l.starts_with("expect fail")
                    || l.starts_with("expected_fail_message")
                    || l.starts_with("expected_fail_regexp");
                is_fail_message && l.contains("parse error")
            });
            cases.push(Case {
                location: format!("{name}:{}", i + 1),
                expr,
                expects_parse_error,
            });
        }
    }
    cases
}

/// The non-comment, non-blank lines of a parse list.
fn load_list(path: &Path) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (format!("{name}:{}", i + 1), l.to_string()))
        .collect()
}

/// Prints the tally and the failures; panics when there are failures.
fn report(title: &str, passed: usize, failures: &[String]) {
    println!("{title}: {passed} passed, {} failed", failures.len());
    for failure in failures {
        println!("  FAIL {failure}");
    }
    assert!(failures.is_empty(), "{title}: {} failures", failures.len());
}

/// Checks that `expr` prints to text that parses to the same tree.
fn round_trip(location: &str, source: &str, expr: &Expr, failures: &mut Vec<String>) -> bool {
    let printed = expr.to_string();
    match parse_with_options(&printed, &ParserOptions::all_enabled()) {
        Ok(again) if again.same_as(expr) => true,
        Ok(again) => {
            failures.push(format!(
                "{location}: `{source}` printed as `{printed}`, which parses to a different tree (prints as `{again}`)"
            ));
            false
        }
        Err(e) => {
            failures.push(format!(
                "{location}: `{source}` printed as `{printed}`, which does not parse: {e}"
            ));
            false
        }
    }
}

#[test]
fn test_scripts_parse() {
    let dir = corpus_dir();
    if !require_dir(&dir) {
        return;
    }
    let options = ParserOptions::all_enabled();
    let mut passed = 0;
    let mut failures = Vec::new();
    for case in load_cases(&dir) {
        match (
            parse_with_options(&case.expr, &options),
            case.expects_parse_error,
        ) {
            (Ok(_), false) | (Err(_), true) => passed += 1,
            (Err(e), false) => failures.push(format!("{}: `{}`: {e}", case.location, case.expr)),
            (Ok(_), true) => failures.push(format!(
                "{}: `{}` parsed, but the script expects a parse error",
                case.location, case.expr
            )),
        }
    }
    report("test scripts (promql/*.test)", passed, &failures);
}

#[test]
fn invalid_expressions_are_rejected() {
    let dir = parse_lists_dir();
    if !require_dir(&dir) {
        return;
    }
    let options = ParserOptions::all_enabled();
    let mut passed = 0;
    let mut failures = Vec::new();
    for (location, expr) in load_list(&dir.join("invalid_exprs.txt")) {
        match parse_with_options(&expr, &options) {
            Err(_) => passed += 1,
            Ok(tree) => failures.push(format!("{location}: `{expr}` was accepted as `{tree}`")),
        }
    }
    report("invalid_exprs.txt", passed, &failures);
}

#[test]
fn feature_probes_are_accepted() {
    let dir = parse_lists_dir();
    if !require_dir(&dir) {
        return;
    }
    let options = ParserOptions::all_enabled();
    let mut passed = 0;
    let mut failures = Vec::new();
    for (location, expr) in load_list(&dir.join("feature_probes.txt")) {
        match parse_with_options(&expr, &options) {
            Ok(_) => passed += 1,
            Err(e) => failures.push(format!("{location}: `{expr}`: {e}")),
        }
    }
    report("feature_probes.txt", passed, &failures);
}

#[test]
fn parsed_expressions_round_trip() {
    let dir = corpus_dir();
    let lists = parse_lists_dir();
    if !require_dir(&dir) || !require_dir(&lists) {
        return;
    }
    let options = ParserOptions::all_enabled();
    let mut sources: Vec<(String, String)> = load_cases(&dir)
        .into_iter()
        .map(|c| (c.location, c.expr))
        .collect();
    sources.extend(load_list(&lists.join("feature_probes.txt")));
    sources.extend(load_list(&lists.join("invalid_exprs.txt")));
    let mut passed = 0;
    let mut failures = Vec::new();
    for (location, source) in sources {
        // Only what parses takes part; the other tests account for the rest.
        if let Ok(expr) = parse_with_options(&source, &options)
            && round_trip(&location, &source, &expr, &mut failures)
        {
            passed += 1;
        }
    }
    report("round trip (parse, print, parse)", passed, &failures);
}
