//! Prints a tree in Prometheus' canonical form, the one `/api/v1/format_query` returns:
//! `sum by (job) (rate(x[5m]))`, `a + on (b) group_left (c) d`, `x{a="b",c!="d"} offset 5m`.
//!
//! Parentheses are printed where the query had them (the tree keeps them), so printing and
//! parsing again gives the same tree. Label matchers are sorted by their printed form; names
//! that are not classic identifiers are quoted.

use crate::ast::*;
use crate::duration::format_duration;
use crate::number::format_number;
use model::MatchOp;
use model::names::is_valid_legacy_metric_name;
use std::fmt::{self, Display, Formatter, Write};

impl Display for Expr {
    /// Dispatches on the node. The per-node functions recurse through `Display::fmt` directly
    /// rather than `write!`, and keep formatting temporaries out of the recursion path.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => write_number(f, n),
            Expr::StringLiteral(s) => f.write_str(&crate::strings::quote(&s.value)),
            Expr::VectorSelector(vs) => write_selector(f, vs, true),
            Expr::MatrixSelector(ms) => write_matrix(f, ms),
            Expr::Subquery(sq) => write_subquery(f, sq),
            Expr::Paren(p) => write_paren(f, p),
            Expr::Unary(u) => write_unary(f, u),
            Expr::Binary(b) => write_binary(f, b),
            Expr::Aggregate(a) => write_aggregate(f, a),
            Expr::Call(c) => write_call(f, c),
        }
    }
}

fn write_matrix(f: &mut Formatter<'_>, ms: &MatrixSelector) -> fmt::Result {
    write_selector(f, &ms.selector, false)?;
    write!(f, "[{}]", RangeDuration(&ms.range))?;
    if ms.selector.anchored {
        f.write_str(" anchored")?;
    } else if ms.selector.smoothed {
        f.write_str(" smoothed")?;
    }
    write_at(f, ms.selector.at)?;
    write_offset(f, &ms.selector.offset)
}

fn write_subquery(f: &mut Formatter<'_>, sq: &Subquery) -> fmt::Result {
    Display::fmt(&sq.expr, f)?;
    write_subquery_suffix(f, sq)
}

fn write_subquery_suffix(f: &mut Formatter<'_>, sq: &Subquery) -> fmt::Result {
    write!(f, "[{}:", RangeDuration(&sq.range))?;
    if let Some(step) = &sq.step {
        write!(f, "{}", RangeDuration(step))?;
    }
    f.write_char(']')?;
    write_at(f, sq.at)?;
    write_offset(f, &sq.offset)
}

fn write_paren(f: &mut Formatter<'_>, p: &Paren) -> fmt::Result {
    f.write_char('(')?;
    Display::fmt(&p.expr, f)?;
    f.write_char(')')
}

fn write_unary(f: &mut Formatter<'_>, u: &Unary) -> fmt::Result {
    f.write_str(u.op.as_str())?;
    Display::fmt(&u.expr, f)
}

fn write_binary(f: &mut Formatter<'_>, b: &Binary) -> fmt::Result {
    // A literal printed with a sign (`+Inf`, a negative number) on the left of `^` would read
    // back as a unary operator applied to the whole power (`-2 ^ 2` is `-(2 ^ 2)`), so it
    // keeps parentheses; everything else prints as is.
    if let (BinaryOp::Pow, Expr::NumberLiteral(n)) = (b.op, &b.lhs)
        && (n.value.is_sign_negative() || n.value == f64::INFINITY)
        && !n.value.is_nan()
    {
        f.write_char('(')?;
        Display::fmt(&b.lhs, f)?;
        f.write_char(')')?;
    } else {
        Display::fmt(&b.lhs, f)?;
    }
    write_binary_operator(f, b)?;
    Display::fmt(&b.rhs, f)
}

/// ` op[ bool][ matching] ` between the operands.
fn write_binary_operator(f: &mut Formatter<'_>, b: &Binary) -> fmt::Result {
    f.write_char(' ')?;
    f.write_str(b.op.as_str())?;
    if b.return_bool {
        f.write_str(" bool")?;
    }
    if let Some(m) = &b.matching {
        write_matching(f, m)?;
    }
    f.write_char(' ')
}

fn write_aggregate(f: &mut Formatter<'_>, a: &Aggregate) -> fmt::Result {
    write_aggregate_head(f, a)?;
    if let Some(param) = &a.param {
        Display::fmt(param, f)?;
        f.write_str(", ")?;
    }
    Display::fmt(&a.expr, f)?;
    f.write_char(')')
}

/// `op by (labels) (` up to the arguments.
fn write_aggregate_head(f: &mut Formatter<'_>, a: &Aggregate) -> fmt::Result {
    f.write_str(a.op.as_str())?;
    if a.without {
        write!(f, " without ({}) ", LabelList(&a.grouping))?;
    } else if !a.grouping.is_empty() {
        write!(f, " by ({}) ", LabelList(&a.grouping))?;
    }
    f.write_char('(')
}

fn write_call(f: &mut Formatter<'_>, c: &Call) -> fmt::Result {
    f.write_str(c.func.name)?;
    f.write_char('(')?;
    for (i, arg) in c.args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        Display::fmt(arg, f)?;
    }
    f.write_char(')')
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Number(n) => write_number(f, n),
            DurationExpr::Step(_) => f.write_str("step()"),
            DurationExpr::Range(_) => f.write_str("range()"),
            DurationExpr::MinOf(a, b, _) => write_duration_call(f, "min_of(", a, b),
            DurationExpr::MaxOf(a, b, _) => write_duration_call(f, "max_of(", a, b),
            DurationExpr::Negate(e, _) => {
                f.write_char('-')?;
                Display::fmt(e, f)
            }
            DurationExpr::Binary { op, lhs, rhs, .. } => {
                Display::fmt(lhs, f)?;
                f.write_char(' ')?;
                f.write_str(op.as_str())?;
                f.write_char(' ')?;
                Display::fmt(rhs, f)
            }
            DurationExpr::Paren(e, _) => {
                f.write_char('(')?;
                Display::fmt(e, f)?;
                f.write_char(')')
            }
        }
    }
}

fn write_duration_call(
    f: &mut Formatter<'_>,
    head: &str,
    a: &DurationExpr,
    b: &DurationExpr,
) -> fmt::Result {
    f.write_str(head)?;
    Display::fmt(a, f)?;
    f.write_str(", ")?;
    Display::fmt(b, f)?;
    f.write_char(')')
}

fn write_number(f: &mut Formatter<'_>, n: &NumberLiteral) -> fmt::Result {
    if n.is_duration && n.value.is_finite() {
        f.write_str(&format_duration((n.value * 1000.0).round() as i64))
    } else {
        f.write_str(&format_number(n.value))
    }
}

/// A range or step inside brackets.
struct RangeDuration<'a>(&'a Duration);

impl Display for RangeDuration<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Duration::Fixed(ms) => f.write_str(&format_duration(*ms)),
            Duration::Expr(e) => write!(f, "{e}"),
        }
    }
}

/// Label names separated by `, `, quoted unless they read back as the same name: Prometheus
/// leaves names that are valid classic metric names (colons included) bare; `inf` and `nan`
/// would read back as numbers.
struct LabelList<'a>(&'a [String]);

impl Display for LabelList<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let reads_as_number =
                label.eq_ignore_ascii_case("inf") || label.eq_ignore_ascii_case("nan");
            if is_valid_legacy_metric_name(label) && !reads_as_number {
                f.write_str(label)?;
            } else {
                f.write_str(&crate::strings::quote(label.as_bytes()))?;
            }
        }
        Ok(())
    }
}

fn write_selector(f: &mut Formatter<'_>, vs: &VectorSelector, with_modifiers: bool) -> fmt::Result {
    let mut matchers: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            // The name written before the braces is not repeated inside them.
            let is_name = m.name == model::labels::METRIC_NAME
                && m.op == MatchOp::Equal
                && !m.value.is_empty()
                && vs.name.as_deref() == Some(m.value.as_str());
            !is_name
        })
        .map(|m| m.to_string())
        .collect();
    matchers.sort();
    if let Some(name) = &vs.name {
        f.write_str(name)?;
    }
    if !matchers.is_empty() || vs.name.is_none() {
        write!(f, "{{{}}}", matchers.join(","))?;
    }
    if with_modifiers {
        write_at(f, vs.at)?;
        if vs.anchored {
            f.write_str(" anchored")?;
        } else if vs.smoothed {
            f.write_str(" smoothed")?;
        }
        write_offset(f, &vs.offset)?;
    }
    Ok(())
}

fn write_at(f: &mut Formatter<'_>, at: Option<AtModifier>) -> fmt::Result {
    match at {
        None => Ok(()),
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {:.3}", ms as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
    }
}

fn write_offset(f: &mut Formatter<'_>, offset: &Option<Duration>) -> fmt::Result {
    match offset {
        None | Some(Duration::Fixed(0)) => Ok(()),
        Some(Duration::Fixed(ms)) => write!(f, " offset {}", format_duration(*ms)),
        Some(Duration::Expr(e)) => write!(f, " offset {e}"),
    }
}

fn write_matching(f: &mut Formatter<'_>, m: &VectorMatching) -> fmt::Result {
    let grouped = matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany);
    if !m.labels.is_empty() || m.on || grouped {
        let keyword = if m.on { "on" } else { "ignoring" };
        write!(f, " {keyword} ({})", LabelList(&m.labels))?;
    }
    if grouped {
        let side = if m.card == Cardinality::ManyToOne {
            "left"
        } else {
            "right"
        };
        write!(f, " group_{side} ({})", LabelList(&m.include))?;
    }
    match (m.fill.lhs, m.fill.rhs) {
        (Some(l), Some(r)) if l == r => write!(f, " fill ({})", fill_value(l)),
        (l, r) => {
            if let Some(l) = l {
                write!(f, " fill_left ({})", fill_value(l))?;
            }
            if let Some(r) = r {
                write!(f, " fill_right ({})", fill_value(r))?;
            }
            Ok(())
        }
    }
}

/// Fill values print like Go's `%v` of a float.
fn fill_value(v: f64) -> String {
    model::exposition::float_to_string(v)
}
