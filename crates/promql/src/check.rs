//! The type checks Prometheus runs on a parsed tree: operand types of operators, aggregations
//! and function arguments, argument counts, vector-matching rules, and non-empty selectors.
//! It also normalises vector matching the way Prometheus does (set operators match
//! many-to-many; operations with a scalar side carry no matching).
//!
//! The walk is recursive; the parser bounds the depth of every tree it builds.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::go_quote;

/// Checks `expr` and returns its type, or the first error in Prometheus' order (children
/// before their parent's own checks).
pub(crate) fn check(expr: &mut Expr, input: &str) -> Result<ValueType, ParseError> {
    Checker { input }.expr(expr)
}

struct Checker<'a> {
    input: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, span, message)
    }

    fn expect_type(
        &self,
        expr: &mut Expr,
        want: ValueType,
        context: &str,
    ) -> Result<(), ParseError> {
        let got = self.expr(expr)?;
        if got != want {
            return Err(self.type_error(expr.span(), want, context, got));
        }
        Ok(())
    }

    fn type_error(&self, span: Span, want: ValueType, context: &str, got: ValueType) -> ParseError {
        self.error(
            span,
            format!(
                "expected type {} in {context}, got {}",
                want.documented(),
                got.documented()
            ),
        )
    }

    /// Dispatches on the node; the per-node work lives in helpers so that this function,
    /// which is on every recursion path, keeps a small stack frame.
    fn expr(&self, expr: &mut Expr) -> Result<ValueType, ParseError> {
        match expr {
            Expr::NumberLiteral(_) => Ok(ValueType::Scalar),
            Expr::StringLiteral(_) => Ok(ValueType::String),
            Expr::VectorSelector(vs) => self.selector(vs, false).map(|()| ValueType::Vector),
            Expr::MatrixSelector(ms) => self
                .selector(&ms.selector, false)
                .map(|()| ValueType::Matrix),
            Expr::Subquery(sq) => self.subquery(sq),
            Expr::Paren(p) => self.expr(&mut p.expr),
            Expr::Unary(u) => self.unary(u),
            Expr::Binary(b) => self.binary(b),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Call(c) => self.call(c),
        }
    }

    fn subquery(&self, sq: &mut Subquery) -> Result<ValueType, ParseError> {
        let inner = self.expr(&mut sq.expr)?;
        if inner != ValueType::Vector {
            return Err(self.error(
                sq.span,
                format!("subquery is only allowed on instant vector, got {inner} instead"),
            ));
        }
        Ok(ValueType::Matrix)
    }

    fn unary(&self, u: &mut Unary) -> Result<ValueType, ParseError> {
        let inner = self.expr(&mut u.expr)?;
        if !matches!(inner, ValueType::Scalar | ValueType::Vector) {
            return Err(self.error(
                u.span,
                format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    go_quote(inner.documented())
                ),
            ));
        }
        Ok(inner)
    }

    fn aggregate(&self, a: &mut Aggregate) -> Result<ValueType, ParseError> {
        self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression")?;
        if let Some(param) = &mut a.param {
            let want = if a.op == AggregateOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            self.expect_type(param, want, "aggregation parameter")?;
        }
        Ok(ValueType::Vector)
    }

    fn selector(&self, vs: &VectorSelector, bypass_empty_check: bool) -> Result<(), ParseError> {
        if let Some(name) = &vs.name {
            // The last matcher is the one for the name written outside the braces.
            let inside = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = inside.iter().find(|m| m.name == model::labels::METRIC_NAME) {
                return Err(self.error(
                    vs.span,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        go_quote(name),
                        go_quote(&m.value)
                    ),
                ));
            }
            return Ok(());
        }
        // A selector that every series matches is almost always a mistake.
        if !bypass_empty_check && vs.matchers.iter().all(|m| m.matches_empty()) {
            return Err(self.error(
                vs.span,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }

    fn binary(&self, b: &mut Binary) -> Result<ValueType, ParseError> {
        let lt = self.expr(&mut b.lhs)?;
        let rt = self.expr(&mut b.rhs)?;
        self.binary_rules(b, lt, rt)
    }

    /// The checks of a binary operation once its operands' types are known.
    fn binary_rules(
        &self,
        b: &mut Binary,
        lt: ValueType,
        rt: ValueType,
    ) -> Result<ValueType, ParseError> {
        let op = b.op;
        if b.return_bool && !op.is_comparison() {
            return Err(self.error(
                b.op_span,
                "bool modifier can only be used on comparison operators",
            ));
        }
        if op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            return Err(self.error(
                b.op_span,
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        if let Some(m) = &mut b.matching {
            if op.is_set_operator() && m.card == Cardinality::OneToOne {
                m.card = Cardinality::ManyToMany;
            }
            if m.on
                && let Some(label) = m.labels.iter().find(|l| m.include.contains(l))
            {
                return Err(self.error(
                    b.op_span,
                    format!(
                        "label {} must not occur in ON and GROUP clause at once",
                        go_quote(label)
                    ),
                ));
            }
        }
        for (t, side) in [(lt, &b.lhs), (rt, &b.rhs)] {
            if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                return Err(self.error(
                    side.span(),
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        if lt != ValueType::Vector || rt != ValueType::Vector {
            if let Some(m) = &b.matching {
                if !m.labels.is_empty() {
                    return Err(self.error(
                        b.span,
                        "vector matching only allowed between instant vectors",
                    ));
                }
                if !m.fill.is_empty() {
                    return Err(self.error(
                        b.span,
                        "filling in missing series only allowed between instant vectors",
                    ));
                }
            }
            b.matching = None;
        } else if op.is_set_operator()
            && let Some(m) = &b.matching
        {
            if matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany) {
                return Err(self.error(
                    b.span,
                    format!(
                        "no grouping allowed for {} operation",
                        go_quote(op.as_str())
                    ),
                ));
            }
            if m.card != Cardinality::ManyToMany {
                return Err(self.error(b.span, "set operations must always be many-to-many"));
            }
            if !m.fill.is_empty() {
                return Err(self.error(
                    b.span,
                    "filling in missing series not allowed for set operators",
                ));
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set_operator() {
            return Err(self.error(
                b.span,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    go_quote(op.as_str())
                ),
            ));
        }
        Ok(if lt == ValueType::Scalar && rt == ValueType::Scalar {
            ValueType::Scalar
        } else {
            ValueType::Vector
        })
    }

    fn call(&self, c: &mut Call) -> Result<ValueType, ParseError> {
        let info_selector = self.call_shape(c)?;
        for i in 0..c.args.len() {
            self.call_arg(c, i, info_selector)?;
        }
        Ok(c.func.return_type)
    }

    /// Checks the argument count and `info()`'s selector argument; returns whether the
    /// second argument is an `info()` label selector.
    fn call_shape(&self, c: &Call) -> Result<bool, ParseError> {
        let func = c.func;
        let count = c.args.len();
        if func.variadic == 0 {
            if count != func.arg_types.len() {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected {} argument(s) in call to {}, got {count}",
                        func.arg_types.len(),
                        go_quote(func.name)
                    ),
                ));
            }
        } else if count < func.min_args() {
            return Err(self.error(
                c.span,
                format!(
                    "expected at least {} argument(s) in call to {}, got {count}",
                    func.min_args(),
                    go_quote(func.name)
                ),
            ));
        } else if let Some(max) = func.max_args()
            && count > max
        {
            return Err(self.error(
                c.span,
                format!(
                    "expected at most {max} argument(s) in call to {}, got {count}",
                    go_quote(func.name)
                ),
            ));
        }

        // info()'s second argument selects info series by labels only.
        let mut info_selector = false;
        if func.name == "info"
            && let Some(arg) = c.args.get(1)
        {
            if arg.value_type() != ValueType::Vector {
                return Err(self.error(
                    c.span,
                    format!(
                        "expected type instant vector in call to function \"info\", got {}",
                        arg.value_type().documented()
                    ),
                ));
            }
            match arg {
                Expr::VectorSelector(vs) if vs.name.is_some() => {
                    return Err(self.error(
                        arg.span(),
                        "expected label selectors only, got vector selector instead",
                    ));
                }
                Expr::VectorSelector(_) => info_selector = true,
                _ => return Err(self.error(arg.span(), "expected label selectors only")),
            }
        }

        Ok(info_selector)
    }

    /// Checks argument `i` of a call.
    fn call_arg(&self, c: &mut Call, i: usize, info_selector: bool) -> Result<(), ParseError> {
        let func = c.func;
        let Some(want) = func.arg_type(i) else {
            return Ok(());
        };
        let Some(arg) = c.args.get_mut(i) else {
            return Ok(());
        };
        let got = match arg {
            Expr::VectorSelector(vs) if i == 1 && info_selector => {
                self.selector(vs, true)?;
                ValueType::Vector
            }
            _ => self.expr(arg)?,
        };
        if got != want {
            return Err(self.argument_error(arg.span(), want, func.name, got));
        }
        Ok(())
    }

    fn argument_error(
        &self,
        span: Span,
        want: ValueType,
        func: &str,
        got: ValueType,
    ) -> ParseError {
        let context = format!("call to function {}", go_quote(func));
        self.type_error(span, want, &context, got)
    }
}
