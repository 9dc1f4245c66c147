//! Structural equality of trees, ignoring spans: what printing and parsing again must
//! preserve. Numbers are equal by value with every NaN equal to every NaN; label matchers are
//! compared as multisets because the printer sorts them.

use crate::ast::*;
use model::Matcher;

pub(crate) fn same_expr(a: &Expr, b: &Expr) -> bool {
    // The printer parenthesizes a signed literal on the left of `^` (`(+Inf) ^ x`), which
    // reads back as a parenthesized literal: the same value.
    match (a, b) {
        (Expr::Paren(p), Expr::NumberLiteral(_)) if matches!(*p.expr, Expr::NumberLiteral(_)) => {
            return same_expr(&p.expr, b);
        }
        (Expr::NumberLiteral(_), Expr::Paren(p)) if matches!(*p.expr, Expr::NumberLiteral(_)) => {
            return same_expr(a, &p.expr);
        }
        _ => {}
    }
    match (a, b) {
        (Expr::NumberLiteral(x), Expr::NumberLiteral(y)) => same_number(x, y),
        (Expr::StringLiteral(x), Expr::StringLiteral(y)) => x.value == y.value,
        (Expr::VectorSelector(x), Expr::VectorSelector(y)) => same_selector(x, y),
        (Expr::MatrixSelector(x), Expr::MatrixSelector(y)) => {
            same_selector(&x.selector, &y.selector) && same_duration(&x.range, &y.range)
        }
        (Expr::Subquery(x), Expr::Subquery(y)) => {
            same_expr(&x.expr, &y.expr)
                && same_duration(&x.range, &y.range)
                && same_option(&x.step, &y.step, same_duration)
                && same_option(&x.offset, &y.offset, same_duration)
                && x.at == y.at
        }
        (Expr::Paren(x), Expr::Paren(y)) => same_expr(&x.expr, &y.expr),
        (Expr::Unary(x), Expr::Unary(y)) => x.op == y.op && same_expr(&x.expr, &y.expr),
        (Expr::Binary(x), Expr::Binary(y)) => {
            x.op == y.op
                && x.return_bool == y.return_bool
                && same_option(&x.matching, &y.matching, same_matching)
                && same_expr(&x.lhs, &y.lhs)
                && same_expr(&x.rhs, &y.rhs)
        }
        (Expr::Aggregate(x), Expr::Aggregate(y)) => {
            x.op == y.op
                && x.without == y.without
                && x.grouping == y.grouping
                && same_option(&x.param, &y.param, same_expr)
                && same_expr(&x.expr, &y.expr)
        }
        (Expr::Call(x), Expr::Call(y)) => {
            x.func.name == y.func.name
                && x.args.len() == y.args.len()
                && x.args.iter().zip(&y.args).all(|(a, b)| same_expr(a, b))
        }
        _ => false,
    }
}

fn same_option<T>(a: &Option<T>, b: &Option<T>, same: fn(&T, &T) -> bool) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn same_float(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_number(a: &NumberLiteral, b: &NumberLiteral) -> bool {
    same_float(a.value, b.value) && a.is_duration == b.is_duration
}

fn matcher_key(m: &Matcher) -> (&str, &str, &str) {
    (m.name.as_str(), m.op.as_str(), m.value.as_str())
}

fn same_selector(a: &VectorSelector, b: &VectorSelector) -> bool {
    let mut ma: Vec<_> = a.matchers.iter().map(matcher_key).collect();
    let mut mb: Vec<_> = b.matchers.iter().map(matcher_key).collect();
    ma.sort_unstable();
    mb.sort_unstable();
    a.name == b.name
        && ma == mb
        && same_option(&a.offset, &b.offset, same_duration)
        && a.at == b.at
        && a.anchored == b.anchored
        && a.smoothed == b.smoothed
}

fn same_matching(a: &VectorMatching, b: &VectorMatching) -> bool {
    a.card == b.card
        && a.labels == b.labels
        && a.on == b.on
        && a.include == b.include
        && same_option(&a.fill.lhs, &b.fill.lhs, |x, y| same_float(*x, *y))
        && same_option(&a.fill.rhs, &b.fill.rhs, |x, y| same_float(*x, *y))
}

fn same_duration(a: &Duration, b: &Duration) -> bool {
    match (a, b) {
        (Duration::Fixed(x), Duration::Fixed(y)) => x == y,
        (Duration::Expr(x), Duration::Expr(y)) => same_duration_expr(x, y),
        _ => false,
    }
}

fn same_duration_expr(a: &DurationExpr, b: &DurationExpr) -> bool {
    match (a, b) {
        (DurationExpr::Number(x), DurationExpr::Number(y)) => same_number(x, y),
        (DurationExpr::Step(_), DurationExpr::Step(_))
        | (DurationExpr::Range(_), DurationExpr::Range(_)) => true,
        (DurationExpr::MinOf(a1, b1, _), DurationExpr::MinOf(a2, b2, _))
        | (DurationExpr::MaxOf(a1, b1, _), DurationExpr::MaxOf(a2, b2, _)) => {
            same_duration_expr(a1, a2) && same_duration_expr(b1, b2)
        }
        (DurationExpr::Negate(x, _), DurationExpr::Negate(y, _))
        | (DurationExpr::Paren(x, _), DurationExpr::Paren(y, _)) => same_duration_expr(x, y),
        (
            DurationExpr::Binary {
                op: o1,
                lhs: l1,
                rhs: r1,
                ..
            },
            DurationExpr::Binary {
                op: o2,
                lhs: l2,
                rhs: r2,
                ..
            },
        ) => o1 == o2 && same_duration_expr(l1, l2) && same_duration_expr(r1, r2),
        _ => false,
    }
}
