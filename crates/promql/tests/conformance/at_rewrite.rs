//! The `@`-modifier step-invariance re-check of FORMAT.md 7.2, done on the syntax tree: pins
//! every selector and subquery to the eval time (`@ T`) without reprinting the query, so
//! annotation positions still refer to the original text.

use promql::{AtModifier, Expr};

/// Functions whose value depends on the evaluation time even with step-invariant arguments:
/// an expression calling one is not re-checked.
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "time",
    "timestamp",
    "start",
    "end",
    "range",
    "step",
    "predict_linear",
    "minute",
    "hour",
    "month",
    "year",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
];

/// True when `expr` calls a function of [`AT_UNSAFE_FUNCTIONS`].
pub fn calls_at_unsafe_function(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => false,
        Expr::Subquery(s) => calls_at_unsafe_function(&s.expr),
        Expr::Paren(p) => calls_at_unsafe_function(&p.expr),
        Expr::Unary(u) => calls_at_unsafe_function(&u.expr),
        Expr::Binary(b) => calls_at_unsafe_function(&b.lhs) || calls_at_unsafe_function(&b.rhs),
        Expr::Aggregate(a) => {
            calls_at_unsafe_function(&a.expr)
                || a.param.as_ref().is_some_and(calls_at_unsafe_function)
        }
        Expr::Call(c) => {
            AT_UNSAFE_FUNCTIONS.contains(&c.func.name)
                || c.args.iter().any(calls_at_unsafe_function)
        }
    }
}

/// Sets `@ t` (ms) on every vector selector, range selector and subquery that has none, but
/// not inside a subquery (whose own `@` then fixes the times within). As upstream does, an
/// `@ start()` / `@ end()` counts as none: for an instant query at `t` both mean `@ t`.
pub fn pin_to(expr: &mut Expr, t: i64) {
    let pin = |at: &mut Option<AtModifier>| {
        if !matches!(at, Some(AtModifier::Timestamp(_))) {
            *at = Some(AtModifier::Timestamp(t));
        }
    };
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(v) => pin(&mut v.at),
        Expr::MatrixSelector(m) => pin(&mut m.selector.at),
        Expr::Subquery(s) => pin(&mut s.at),
        Expr::Paren(p) => pin_to(&mut p.expr, t),
        Expr::Unary(u) => pin_to(&mut u.expr, t),
        Expr::Binary(b) => {
            pin_to(&mut b.lhs, t);
            pin_to(&mut b.rhs, t);
        }
        Expr::Aggregate(a) => {
            pin_to(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                pin_to(p, t);
            }
        }
        Expr::Call(c) => {
            for arg in &mut c.args {
                pin_to(arg, t);
            }
        }
    }
}

/// The other evaluation times of the re-check for eval time `t`.
pub fn recheck_times(t: i64) -> Vec<i64> {
    if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![t.saturating_mul(-10), 0, t / 5, t, t.saturating_mul(10)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql::{ParserOptions, parse_with_options};

    #[test]
    fn pins_selectors_but_not_inside_subqueries() {
        let opts = ParserOptions::all_enabled();
        let mut e = parse_with_options(
            "sum(rate(a[5m])) + max_over_time(b[10m:1m]) + c @ 50 + d @ start()",
            &opts,
        )
        .unwrap();
        pin_to(&mut e, 100_000);
        let printed = e.to_string();
        assert!(printed.contains("a[5m] @ 100.000"), "{printed}");
        assert!(printed.contains("b[10m:1m] @ 100.000"), "{printed}");
        assert!(printed.contains("c @ 50.000"), "{printed}");
        assert!(printed.contains("d @ 100.000"), "{printed}");
        assert!(!printed.contains("b @"), "{printed}");
        let e = parse_with_options("hour(a) + b", &opts).unwrap();
        assert!(calls_at_unsafe_function(&e));
        let e = parse_with_options("rate(a[5m])", &opts).unwrap();
        assert!(!calls_at_unsafe_function(&e));
        assert_eq!(recheck_times(0), vec![-1000, 0, 1000]);
    }
}
