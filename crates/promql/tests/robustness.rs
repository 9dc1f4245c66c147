//! Robustness of the parser on malformed input: every prefix and every one-character deletion
//! of the corpus expressions, and random token sequences, must give a tree or an error
//! (never a panic), and every tree must print to text that parses back to the same tree.

use promql::{ParserOptions, parse_with_options};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("MERIDIAN_PROMQL_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/promql"),
    }
}

/// The expressions of the `eval` lines of the test scripts (see `parse_conformance.rs` for
/// the full rules; here the header is simply skipped).
fn corpus_expressions() -> Option<Vec<String>> {
    let dir = corpus_dir();
    if !dir.is_dir() {
        assert_eq!(
            std::env::var("MERIDIAN_ALLOW_MISSING_CORPUS").as_deref(),
            Ok("1"),
            "conformance data not found at {}",
            dir.display()
        );
        return None;
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|ext| ext != "test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let skip = match words.as_slice() {
                [cmd, "instant", ..] if cmd.starts_with("eval") => 4,
                [cmd, "range", ..] if cmd.starts_with("eval") => 8,
                _ => continue,
            };
            if words.len() > skip {
                out.push(words[skip..].join(" "));
            }
        }
    }
    Some(out)
}

/// Parses `input`; if it parses, checks the round trip.
fn parse_and_round_trip(input: &str) -> Result<(), String> {
    let options = ParserOptions::all_enabled();
    let Ok(expr) = parse_with_options(input, &options) else {
        return Ok(());
    };
    let printed = expr.to_string();
    match parse_with_options(&printed, &options) {
        Ok(again) if again.same_as(&expr) => Ok(()),
        Ok(again) => Err(format!("`{input}` → `{printed}` → `{again}`")),
        Err(e) => Err(format!("`{input}` → `{printed}`: {e}")),
    }
}

#[test]
fn truncated_and_damaged_corpus_expressions() {
    let Some(expressions) = corpus_expressions() else {
        return;
    };
    let mut failures = Vec::new();
    let mut inputs = 0;
    for expr in &expressions {
        let boundaries: Vec<usize> = expr.char_indices().map(|(i, _)| i).collect();
        for &cut in &boundaries {
            inputs += 2;
            if let Err(e) = parse_and_round_trip(&expr[..cut]) {
                failures.push(e);
            }
            let next = expr[cut..].chars().next().map_or(0, char::len_utf8);
            let damaged = format!("{}{}", &expr[..cut], &expr[cut + next..]);
            if let Err(e) = parse_and_round_trip(&damaged) {
                failures.push(e);
            }
        }
    }
    println!(
        "damaged inputs: {} passed, {} failed",
        inputs - failures.len(),
        failures.len()
    );
    for failure in failures.iter().take(50) {
        println!("  FAIL {failure}");
    }
    assert!(failures.is_empty());
}

/// Pieces of PromQL to glue together at random.
const PIECES: &[&str] = &[
    "foo",
    "bar",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "5m",
    "1",
    "-",
    "+",
    "*",
    "/",
    "^",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "</",
    ">/",
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "on",
    "ignoring",
    "(a)",
    "group_left",
    "group_right",
    "fill(0)",
    "fill_left(1)",
    "sum",
    "by",
    "without",
    "topk",
    "rate",
    "abs",
    "offset",
    "@",
    "start()",
    "end()",
    "step()",
    "range()",
    "min_of",
    ":",
    ",",
    "a=\"b\"",
    "=~",
    "\"x\"",
    "'y'",
    "`z`",
    "anchored",
    "smoothed",
    "Inf",
    "NaN",
    "0x1f",
    "1e3",
    " ",
    "\n",
    "# c\n",
    "label_replace",
    "info",
    "count_values",
    "x:y",
    "\"a.b\"",
    "-1h",
];

proptest! {
    // No failure persistence: an integration test has no `src/lib.rs` beside it to anchor the
    // regressions file, and a failing case is printed in full anyway.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_token_soup_never_panics(indices in proptest::collection::vec(0..PIECES.len(), 0..24)) {
        let input: String = indices.iter().map(|i| PIECES[*i]).collect::<Vec<_>>().join(" ");
        prop_assert_eq!(parse_and_round_trip(&input), Ok(()));
    }

    #[test]
    fn arbitrary_text_never_panics(input in "\\PC{0,40}") {
        prop_assert_eq!(parse_and_round_trip(&input), Ok(()));
    }
}
