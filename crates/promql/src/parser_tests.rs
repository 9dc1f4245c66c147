//! Unit tests of the parser: precedence and associativity, the tree it builds, Prometheus'
//! error messages and positions, feature switches, and the length and depth limits (including
//! on small thread stacks).

use super::*;
use crate::ast::Duration as Dur;

fn all() -> ParserOptions {
    ParserOptions::all_enabled()
}

fn parse_all(input: &str) -> Expr {
    match parse_with_options(input, &all()) {
        Ok(expr) => expr,
        Err(e) => panic!("{input}: {e}"),
    }
}

fn error_of(input: &str) -> String {
    match parse_with_options(input, &all()) {
        Ok(expr) => panic!("{input}: accepted as {expr}"),
        Err(e) => e.to_string(),
    }
}

/// The tree with every binary and unary operation parenthesised, to show grouping.
fn shape(expr: &Expr) -> String {
    match expr {
        Expr::Binary(b) => format!("({} {} {})", shape(&b.lhs), b.op.as_str(), shape(&b.rhs)),
        Expr::Unary(u) => format!("{}{}", u.op.as_str(), shape(&u.expr)),
        Expr::Paren(p) => format!("[{}]", shape(&p.expr)),
        other => other.to_string(),
    }
}

#[test]
fn precedence_and_associativity() {
    for (input, want) in [
        ("a + b * c", "(a + (b * c))"),
        ("a * b + c", "((a * b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b * c % d", "(((a / b) * c) % d)"),
        ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
        ("a or b and c", "(a or (b and c))"),
        ("a and b unless c", "((a and b) unless c)"),
        (
            "a or b unless c == d + e * f ^ g",
            "(a or (b unless (c == (d + (e * (f ^ g))))))",
        ),
        ("a > b == c", "((a > b) == c)"),
        ("a atan2 b * c", "((a atan2 b) * c)"),
        ("a </ b + c", "(a </ (b + c))"),
        ("a >/ b or c", "((a >/ b) or c)"),
        ("a + (b + c)", "(a + [(b + c)])"),
        // Unary minus binds like `*`: looser than `^`, tighter than `+`.
        ("-a ^ b", "-(a ^ b)"),
        ("-a * b", "(-a * b)"),
        ("-a + b", "(-a + b)"),
        ("a ^ -b ^ c", "(a ^ -(b ^ c))"),
        ("a ^ -b * c", "((a ^ -b) * c)"),
        ("2 * -3 + 1", "((2 * -3) + 1)"),
        // Postfix modifiers bind tighter than any operator.
        ("a + b offset 5m", "(a + b offset 5m)"),
        ("-a offset 5m", "-a offset 5m"),
        ("a + rate(b[5m:])", "(a + rate(b[5m:]))"),
    ] {
        assert_eq!(shape(&parse_all(input)), want, "{input}");
    }
}

#[test]
fn minus_two_squared_is_minus_four() {
    let expr = parse_all("-2^2");
    let Expr::Unary(u) = &expr else {
        panic!("not a unary: {expr:?}")
    };
    assert_eq!(u.op, UnaryOp::Neg);
    assert!(matches!(&*u.expr, Expr::Binary(b) if b.op == BinaryOp::Pow));
}

#[test]
fn signs_fold_into_number_literals() {
    for (input, value) in [("-1", -1.0), ("--1", 1.0), ("+1", 1.0), ("- 0x10", -16.0)] {
        match parse_all(input) {
            Expr::NumberLiteral(n) => assert_eq!(n.value, value, "{input}"),
            other => panic!("{input}: {other:?}"),
        }
    }
    // Parentheses keep the sign as an operator.
    assert!(matches!(parse_all("-(1)"), Expr::Unary(_)));
    match parse_all("-5m") {
        Expr::NumberLiteral(n) => {
            assert_eq!((n.value, n.is_duration), (-300.0, true));
            assert_eq!(n.span, Span::new(0, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn offset_takes_a_single_duration_term() {
    // `offset 100 + 2` is `(x offset 100) + 2`, and `offset -2 ^ 2` is `(x offset -2) ^ 2`.
    assert_eq!(
        shape(&parse_all("x offset 100 + 2")),
        "(x offset 1m40s + 2)"
    );
    assert_eq!(shape(&parse_all("x offset -2 ^ 2")), "(x offset -2s ^ 2)");
    assert_eq!(
        shape(&parse_all("x offset step()*2")),
        "(x offset step() * 2)"
    );
    assert_eq!(
        parse_all("x offset (-2 ^ 2)").to_string(),
        "x offset (-2 ^ 2)"
    );
    assert_eq!(
        parse_all("x offset (2 * 2)").to_string(),
        "x offset (2 * 2)"
    );
    assert_eq!(parse_all("x offset -(5m)").to_string(), "x offset -5m");
    assert_eq!(parse_all("x offset (5m)").to_string(), "x offset 5m");
    assert_eq!(
        parse_all("x offset -(min_of(step(), 1s))+8000").to_string(),
        "x offset -(min_of(step(), 1s)) + 8000"
    );
    // A zero offset is no offset.
    let Expr::VectorSelector(vs) = parse_all("x offset 0s") else {
        panic!()
    };
    assert_eq!(vs.offset, None);
}

#[test]
fn selectors_and_modifiers() {
    let Expr::VectorSelector(vs) = parse_all(r#"foo{a="b", c=~"d.*",}"#) else {
        panic!()
    };
    assert_eq!(vs.name.as_deref(), Some("foo"));
    let matchers: Vec<String> = vs.matchers.iter().map(|m| m.to_string()).collect();
    assert_eq!(matchers, [r#"a="b""#, r#"c=~"d.*""#, r#"__name__="foo""#]);
    assert_eq!(vs.span, Span::new(0, 21));

    let Expr::MatrixSelector(ms) = parse_all("foo[5m] @ 100 offset -1h anchored") else {
        panic!()
    };
    assert_eq!(ms.range, Dur::Fixed(300_000));
    assert_eq!(ms.selector.at, Some(AtModifier::Timestamp(100_000)));
    assert_eq!(ms.selector.offset, Some(Dur::Fixed(-3_600_000)));
    assert!(ms.selector.anchored);
    assert_eq!(ms.span, Span::new(0, 33));

    let Expr::Subquery(sq) = parse_all("rate(x[1m])[1h:step()] @ end()") else {
        panic!()
    };
    assert_eq!(sq.range, Dur::Fixed(3_600_000));
    assert!(matches!(&sq.step, Some(Dur::Expr(e)) if matches!(**e, DurationExpr::Step(_))));
    assert_eq!(sq.at, Some(AtModifier::End));
    assert_eq!(sq.expr.value_type(), ValueType::Vector);

    let Expr::VectorSelector(vs) = parse_all(r#"{"service.name"="api", "http.requests"}"#) else {
        panic!()
    };
    assert_eq!(vs.name, None);
    assert_eq!(vs.matchers[0].name, "service.name");
    assert_eq!(vs.matchers[1].to_string(), r#"__name__="http.requests""#);

    // Keywords double as metric names where an operand is expected.
    for input in [
        "sum",
        "offset + by",
        "step",
        "fill + fill(0) fill",
        "anchored{a=\"b\"}",
        "min_of",
    ] {
        parse_all(input);
    }
}

#[test]
fn binary_modifiers() {
    let Expr::Binary(b) = parse_all("a * on(x, \"y.z\") group_left(w) fill_right(2) b") else {
        panic!()
    };
    let m = b.matching.as_ref().expect("vector matching");
    assert!(m.on);
    assert_eq!(m.labels, ["x", "y.z"]);
    assert_eq!(m.card, Cardinality::ManyToOne);
    assert_eq!(m.include, ["w"]);
    assert_eq!(
        m.fill,
        FillValues {
            lhs: None,
            rhs: Some(2.0)
        }
    );

    // Set operators match many-to-many; a scalar side removes matching.
    let Expr::Binary(b) = parse_all("a and b") else {
        panic!()
    };
    assert_eq!(
        b.matching.as_ref().map(|m| m.card),
        Some(Cardinality::ManyToMany)
    );
    let Expr::Binary(b) = parse_all("a + 1") else {
        panic!()
    };
    assert!(b.matching.is_none());
    let Expr::Binary(b) = parse_all("1 == bool 2") else {
        panic!()
    };
    assert!(b.return_bool);
    assert_eq!(parse_all("1 == bool 2").value_type(), ValueType::Scalar);
}

#[test]
fn aggregations_accept_both_modifier_positions() {
    let a = parse_all("sum(x) by (job)");
    let b = parse_all("sum by (job) (x)");
    assert!(a.same_as(&b));
    assert_eq!(a.to_string(), "sum by (job) (x)");
    assert_eq!(
        parse_all("SUM without() (x)").to_string(),
        "sum without () (x)"
    );
    assert_eq!(
        parse_all("topk by (a,) (3, x)").to_string(),
        "topk by (a) (3, x)"
    );
    let Expr::Aggregate(agg) = parse_all("quantile without (a) (0.9, x)") else {
        panic!()
    };
    assert!(agg.without);
    assert!(matches!(agg.param, Some(Expr::NumberLiteral(_))));
}

#[test]
fn duration_expressions() {
    let Expr::MatrixSelector(ms) = parse_all("x[24m+((1.5*2m)+2m)]") else {
        panic!()
    };
    let Dur::Expr(e) = &ms.range else { panic!() };
    assert_eq!(e.evaluate_seconds(0.0, 0.0), 24.0 * 60.0 + 300.0);
    assert_eq!(
        parse_all("x[24m+((1.5*2m)+2m)]").to_string(),
        "x[24m + ((1.5 * 2m) + 2m)]"
    );
    let Expr::MatrixSelector(ms) = parse_all("x[1+(STep()-5)*2]") else {
        panic!()
    };
    let Dur::Expr(e) = &ms.range else { panic!() };
    assert_eq!(e.evaluate_seconds(10.0, 0.0), 11.0);
    // A literal range folds to milliseconds.
    let Expr::MatrixSelector(ms) = parse_all("x[(5m)]") else {
        panic!()
    };
    assert_eq!(ms.range, Dur::Fixed(300_000));
    let Expr::MatrixSelector(ms) = parse_all("x[-5m+35m]") else {
        panic!()
    };
    assert!(matches!(ms.range, Dur::Expr(_)));
}

#[test]
fn experimental_step_and_range_functions_in_expressions() {
    for input in [
        "step()",
        "vector(range())",
        "metric * step()",
        "start() - end()",
        "min_of(1, 2)",
    ] {
        let expr = parse_all(input);
        assert!(
            matches!(expr.value_type(), ValueType::Scalar | ValueType::Vector),
            "{input}"
        );
    }
    assert_eq!(parse_all("STEP()").to_string(), "step()");
}

#[test]
fn error_messages_and_positions() {
    for (input, want) in [
        ("", "1:1: parse error: no expression found in input"),
        (
            "# only a comment",
            "1:1: parse error: no expression found in input",
        ),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("foo +", "1:6: parse error: unexpected end of input"),
        ("foo\n  + * bar", "2:5: parse error: unexpected <op:*>"),
        (
            "1 == 1",
            "1:3: parse error: comparisons between scalars must use BOOL modifier",
        ),
        (
            "foo and bool 10",
            "1:5: parse error: bool modifier can only be used on comparison operators",
        ),
        (
            "1 and 1",
            "1:1: parse error: set operator \"and\" not allowed in binary scalar expression",
        ),
        (
            "{}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "foo{__name__=\"bar\"}",
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"",
        ),
        (
            "foo{a=b}",
            "1:7: parse error: unexpected identifier \"b\" in label matching, expected string",
        ),
        (
            "foo{,}",
            "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\"",
        ),
        (
            "foo{a \"b\"}",
            "1:7: parse error: unexpected string \"\\\"b\\\"\" in label matching, expected label matching operator",
        ),
        (
            "sum some_metric by (test)",
            "1:5: parse error: unexpected identifier \"some_metric\" in aggregation",
        ),
        (
            "sum without(==)(x)",
            "1:13: parse error: unexpected <op:==> in grouping opts, expected label",
        ),
        (
            "sum by x (y)",
            "1:8: parse error: unexpected identifier \"x\" in grouping opts, expected \"(\"",
        ),
        (
            "topk(x,)",
            "1:7: parse error: trailing commas not allowed in function call args",
        ),
        (
            "topk(x)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
        ),
        (
            "floor()",
            "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0",
        ),
        (
            "hour(x, x, x)",
            "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3",
        ),
        (
            "label_join(x)",
            "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1",
        ),
        (
            "floor(1)",
            "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar",
        ),
        (
            "nope()",
            "1:1: parse error: unknown function with name \"nope\"",
        ),
        (
            "RATE(x[5m])",
            "1:1: parse error: unknown function with name \"RATE\"",
        ),
        (
            "-\"s\"",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
        ),
        (
            "1 offset 1d",
            "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
        ),
        (
            "foo offset 1s offset 2s",
            "1:1: parse error: offset may not be set multiple times",
        ),
        (
            "foo offset",
            "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()",
        ),
        (
            "foo @ 1 @ 2",
            "1:1: parse error: @ <timestamp> may not be set multiple times",
        ),
        (
            "foo @ x",
            "1:7: parse error: unexpected identifier \"x\" in @, expected timestamp",
        ),
        (
            "foo @ 1e100",
            "1:1: parse error: timestamp out of bounds for @ modifier: 10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.000000",
        ),
        (
            "foo[5m] offset 1m [5m]",
            "1:19: parse error: ranges only allowed for vector selectors",
        ),
        (
            "foo offset 1m [5m]",
            "1:15: parse error: no offset modifiers allowed before range",
        ),
        (
            "foo @ 1 [5m]",
            "1:9: parse error: no @ modifiers allowed before range",
        ),
        (
            "foo[]",
            "1:5: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()",
        ),
        (
            "foo[5m:1m:1m]",
            "1:10: parse error: unexpected \":\" in subquery selector, expected \"]\"",
        ),
        (
            "foo[5m x]",
            "1:8: parse error: unexpected identifier \"x\" in subquery or range, expected \":\" or \"]\"",
        ),
        (
            "foo[0]",
            "1:5: parse error: duration must be greater than 0",
        ),
        (
            "foo[-1m]",
            "1:5: parse error: duration must be greater than 0",
        ),
        (
            "foo[5m:0s]",
            "1:8: parse error: duration must be greater than 0",
        ),
        ("foo[1h/0]", "1:7: parse error: division by zero"),
        ("foo[1h%0]", "1:7: parse error: modulo by zero"),
        (
            "foo[5mm]",
            "1:5: parse error: bad number or duration syntax: \"5mm\"",
        ),
        (
            "foo[1.5m]",
            "1:5: parse error: unknown unit \".\" in duration \"1.5m\"",
        ),
        (
            "foo[30m1h]",
            "1:5: parse error: not a valid duration string: \"30m1h\"",
        ),
        (
            "1e400",
            "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range",
        ),
        ("foo)", "1:4: parse error: unexpected right parenthesis ')'"),
        ("(foo", "1:5: parse error: unclosed left parenthesis"),
        ("foo[5m", "1:7: parse error: unclosed left bracket"),
        (
            "foo{a=\"b\"",
            "1:10: parse error: unexpected end of input inside braces",
        ),
        (
            "\"\\q\"",
            "1:1: parse error: unknown escape sequence U+0071 'q'",
        ),
        (
            "foo =~ bar",
            "1:5: parse error: unexpected character after '=': '~'",
        ),
        (
            "a - on(b) ignoring(c) d",
            "1:11: parse error: unexpected <ignoring>",
        ),
        (
            "a * group_left b",
            "1:5: parse error: unexpected <group_left>",
        ),
        (
            "foo{a=~\"(\"}",
            "1:5: parse error: error parsing regexp: unclosed group",
        ),
        (
            "foo and on(a) group_left bar",
            "1:1: parse error: no grouping allowed for \"and\" operation",
        ),
        (
            "foo * on(a) group_left(a) bar",
            "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once",
        ),
        (
            "x[5m] anchored smoothed",
            "1:1: parse error: anchored and smoothed modifiers cannot be used together",
        ),
        (
            "x[5m:] smoothed",
            "1:1: parse error: smoothed modifier is not supported for subqueries",
        ),
        (
            "info(x, y)",
            "1:9: parse error: expected label selectors only, got vector selector instead",
        ),
        (
            "info(x, 1)",
            "1:1: parse error: expected type instant vector in call to function \"info\", got scalar",
        ),
        (
            "foo + fill(0) 1",
            "1:1: parse error: filling in missing series only allowed between instant vectors",
        ),
        (
            "foo * on(a) 1",
            "1:1: parse error: vector matching only allowed between instant vectors",
        ),
        (
            "sum by (\"\") (x)",
            "1:9: parse error: invalid label name for grouping: \"\"",
        ),
    ] {
        assert_eq!(error_of(input), want, "{input}");
    }
}

#[test]
fn error_carries_span_and_position() {
    let e = parse_with_options("up +\n  foo bar", &all()).expect_err("two operands");
    assert_eq!((e.line, e.column), (2, 7));
    assert_eq!(e.span.start, 11);
    assert_eq!(e.message, "unexpected identifier \"bar\"");
}

#[test]
fn feature_switches() {
    let default = ParserOptions::default();
    let rejected = |input: &str, message: &str| {
        let e = parse_with_options(input, &default).expect_err(input);
        assert!(e.message.contains(message), "{input}: {e}");
        parse_with_options(input, &all()).unwrap_or_else(|e| panic!("{input}: {e}"));
    };
    rejected("limitk(1, x)", "limitk() is experimental");
    rejected("info(x)", "function \"info\" is not enabled");
    rejected("step()", "function \"step\" is not enabled");
    rejected(
        "x[5m] anchored",
        "anchored modifier is experimental and not enabled",
    );
    rejected(
        "x smoothed",
        "smoothed modifier is experimental and not enabled",
    );
    rejected(
        "a + fill(0) b",
        "binop fill modifiers are experimental and not enabled",
    );
    // Duration expressions and trim operators are on by default since Prometheus 3.14.
    for input in ["x[5m+1m]", "x offset step()", "x </ 1"] {
        parse_with_options(input, &default).unwrap_or_else(|e| panic!("{input}: {e}"));
    }
    let no_durations = ParserOptions {
        experimental_duration_expr: false,
        ..all()
    };
    for input in ["x[5m+1m]", "x[step()]", "x offset (1h/2)"] {
        let e = parse_with_options(input, &no_durations).expect_err(input);
        assert_eq!(
            e.message, "experimental duration expression is not enabled",
            "{input}"
        );
    }
    parse_with_options("x[5m] offset -1h", &no_durations).expect("literals need no switch");
}

#[test]
fn strings_keep_bytes() {
    let Expr::StringLiteral(s) = parse_all(r#""a\xc5z""#) else {
        panic!()
    };
    assert_eq!(s.value, b"a\xc5z");
    assert_eq!(s.as_str(), None);
    assert_eq!(parse_all(r#""a\xc5z""#).to_string(), r#""a\xc5z""#);
    let Expr::StringLiteral(s) = parse_all(r"`a\b`") else {
        panic!()
    };
    assert_eq!(s.as_str(), Some(r"a\b"));
}

// ----- Limits -----

fn nested(open: &str, close: &str, leaf: &str, n: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * n + leaf.len());
    for _ in 0..n {
        s.push_str(open);
    }
    s.push_str(leaf);
    for _ in 0..n {
        s.push_str(close);
    }
    s
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

/// Inputs that nest or chain `n` levels deep, in every form the grammar nests.
fn deep_inputs(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("parentheses", nested("(", ")", "x", n)),
        ("function calls", nested("abs(", ")", "x", n)),
        ("aggregations", nested("sum by (a) (", ")", "x", n)),
        ("aggregation parameters", nested("topk(", ", x)", "1", n)),
        (
            "subqueries",
            nested("last_over_time(", "[5m:])", "x", n / 2),
        ),
        ("unary minus", nested("-(", ")", "x", n / 2)),
        ("signs", format!("{}x", "-".repeat(n))),
        (
            "duration parentheses",
            format!("x[{}]", nested("(", ")", "1+1", n)),
        ),
        (
            "min_of",
            format!("x[{}]", nested("min_of(1m, ", ")", "1m", n)),
        ),
        ("duration signs", format!("x[{}1m]", "-".repeat(n))),
        ("sum chain", chain("a", " + ", n)),
        ("power chain", chain("a", " ^ ", n)),
        ("or chain", chain("a", " or ", n)),
    ]
}

/// Runs `f` on a thread with `stack` bytes of stack; a stack overflow aborts the process, so
/// reaching the end is the proof.
fn on_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::Builder::new().stack_size(stack).spawn(f) {
        Ok(handle) => match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(e) => panic!("cannot spawn a thread: {e}"),
    }
}

const TWO_MIB: usize = 2 << 20;
const EIGHT_MIB: usize = 8 << 20;

/// 100 000 levels of every nesting form fail cleanly with a depth error, on a 2 MiB stack
/// (the test threads' default) and on 8 MiB (a main thread's default). The length limit is
/// raised so that the depth limit is what stops them.
#[test]
fn hundred_thousand_levels_fail_cleanly() {
    for stack in [TWO_MIB, EIGHT_MIB] {
        on_stack(stack, || {
            let options = ParserOptions {
                max_query_length: 16 << 20,
                ..all()
            };
            for (name, input) in deep_inputs(100_000) {
                let e = parse_with_options(&input, &options).expect_err(name);
                assert!(e.message.contains("nested too deeply"), "{name}: {e}");
            }
        });
    }
}

/// Trees right at the depth limit parse, type-check, print, parse again, compare and drop on
/// a 2 MiB stack; one level more is refused.
#[test]
fn maximum_depth_is_usable_on_a_small_stack() {
    on_stack(TWO_MIB, || {
        let options = all();
        let limit = options.max_depth;
        // `deep_inputs(n)` builds trees of about n + 2 levels.
        for (name, input) in deep_inputs(limit - 2) {
            let expr = match parse_with_options(&input, &options) {
                Ok(expr) => expr,
                // `topk(topk(...))` is a type error (the parameter is a vector), which is
                // fine: the whole tree was built and checked.
                Err(e) if name == "aggregation parameters" => {
                    assert!(e.message.contains("expected type"), "{name}: {e}");
                    continue;
                }
                Err(e) => panic!("{name}: {e}"),
            };
            let printed = expr.to_string();
            let again =
                parse_with_options(&printed, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(again.same_as(&expr), "{name}");
        }
        for (name, input) in [
            ("parentheses", nested("(", ")", "x", limit)),
            ("sum chain", chain("a", " + ", limit + 1)),
        ] {
            let e = parse_with_options(&input, &options).expect_err(name);
            assert!(e.message.contains("nested too deeply"), "{name}: {e}");
        }
    });
}

/// A 100 000-term chain under a raised depth limit parses in linear time without recursion
/// in the parser.
#[test]
fn long_chain_with_raised_limit_parses_linearly() {
    let options = ParserOptions {
        max_depth: 200_000,
        ..all()
    };
    let input = chain("a", " + ", 100_000);
    let started = std::time::Instant::now();
    // Parse without the type check, which walks the tree recursively.
    let lexed = crate::lexer::lex(&input);
    let mut parser = Parser {
        input: &input,
        tokens: lexed.tokens,
        lex_error: lexed.error,
        pos: 0,
        options: &options,
        nesting: 0,
    };
    let parsed = parser.parse_expr().expect("chain parses");
    assert_eq!(parsed.depth, 100_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Dropping a tree this deep would recurse: take it apart iteratively.
    let mut pending = vec![parsed.expr];
    while let Some(expr) = pending.pop() {
        if let Expr::Binary(b) = expr {
            let Binary { lhs, rhs, .. } = *b;
            pending.push(lhs);
            pending.push(rhs);
        }
    }
}

#[test]
fn query_length_limit() {
    let options = ParserOptions {
        max_query_length: 10,
        ..all()
    };
    assert!(parse_with_options("up", &options).is_ok());
    let e = parse_with_options("up + up + up", &options).expect_err("too long");
    assert_eq!(
        e.to_string(),
        "1:1: parse error: query is too long: 12 bytes, the limit is 10"
    );
    assert_eq!(
        ParserOptions::default().max_query_length,
        DEFAULT_MAX_QUERY_LENGTH
    );
}
