//! Inputs the fuzzer found (`fuzz/fuzz_targets/promql_parse.rs`): each must parse and print to
//! text that parses again to the same printed form.

fn round_trips(text: &str) {
    let Ok(expr) = promql::parse(text) else {
        return;
    };
    let printed = expr.to_string();
    match promql::parse(&printed) {
        Ok(again) => assert_eq!(again.to_string(), printed, "input {text:?}"),
        Err(e) => panic!("printed form {printed:?} of {text:?} does not parse: {e}"),
    }
}

#[test]
fn fuzzer_findings_round_trip() {
    for text in [
        "7e52^-i^infe>3e95^enf9m-inf^e>3e95^enf9m9m19me>3e95^e",
        "a - +Inf ^ 2",
        "(-1) ^ 2",
        "-1 ^ 2",
    ] {
        round_trips(text);
    }
}

#[test]
fn a_signed_infinity_left_of_a_power_inside_a_sum_round_trips() {
    // Found by the robustness proptest: `Inf` prints as `(+Inf)` on the left of `^`, which
    // reads back as a parenthesized literal.
    let options = promql::ParserOptions::all_enabled();
    let e = promql::parse_with_options("sum - Inf ^ and", &options).unwrap();
    let printed = e.to_string();
    let again = promql::parse_with_options(&printed, &options).unwrap();
    assert!(again.same_as(&e), "{printed} → {again}");
}
