//! The PromQL syntax tree: expressions, operators, durations and the value types the parser
//! assigns to them.
//!
//! Every node carries a [`Span`] (byte offsets into the query) so that errors and evaluation
//! annotations can point at the sub-expression they are about. Durations are integer
//! milliseconds; a duration written as an expression (`[5m+1m]`, `offset step()`) stays a
//! [`DurationExpr`] because `step()` and `range()` only have a value once a query runs.
//!
//! The tree is built by [`crate::parse`] and printed in Prometheus' canonical form by its
//! `Display` implementation (see `printer.rs`).

use crate::functions::FunctionDef;
use model::Matcher;

/// A byte range `start..end` of the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// The type of value an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    String,
}

impl ValueType {
    /// Prometheus' internal name (`vector`, `matrix`, ...), used by some error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }

    /// The name the documentation uses (`instant vector`, `range vector`, ...).
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PromQL expression.
///
/// Large variants are boxed so that an `Expr` stays small: the parser and every tree walk keep
/// them on the stack, once per nesting level.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(StringLiteral),
    VectorSelector(Box<VectorSelector>),
    MatrixSelector(Box<MatrixSelector>),
    Subquery(Box<Subquery>),
    Paren(Paren),
    Unary(Unary),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call(Box<Call>),
}

impl Expr {
    /// Where the expression is in the query.
    pub fn span(&self) -> Span {
        match self {
            Expr::NumberLiteral(n) => n.span,
            Expr::StringLiteral(s) => s.span,
            Expr::VectorSelector(v) => v.span,
            Expr::MatrixSelector(m) => m.span,
            Expr::Subquery(s) => s.span,
            Expr::Paren(p) => p.span,
            Expr::Unary(u) => u.span,
            Expr::Binary(b) => b.span,
            Expr::Aggregate(a) => a.span,
            Expr::Call(c) => c.span,
        }
    }

    /// The type of value the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        // Parentheses and unary operators pass their operand's type through; walk them in a
        // loop rather than recursively.
        let mut expr = self;
        loop {
            return match expr {
                Expr::NumberLiteral(_) => ValueType::Scalar,
                Expr::StringLiteral(_) => ValueType::String,
                Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
                Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
                Expr::Call(c) => c.func.return_type,
                Expr::Binary(b) => {
                    if b.lhs.value_type() == ValueType::Scalar
                        && b.rhs.value_type() == ValueType::Scalar
                    {
                        ValueType::Scalar
                    } else {
                        ValueType::Vector
                    }
                }
                Expr::Paren(p) => {
                    expr = &p.expr;
                    continue;
                }
                Expr::Unary(u) => {
                    expr = &u.expr;
                    continue;
                }
            };
        }
    }

    /// True when both trees are the same expression, ignoring spans: what a parse → print →
    /// parse round trip must preserve. Numbers compare by value with all NaNs equal, and label
    /// matchers compare as sets because the printer sorts them.
    pub fn same_as(&self, other: &Expr) -> bool {
        crate::compare::same_expr(self, other)
    }
}

/// A number: `1`, `0x1f`, `1e3`, `Inf`, or a duration used as a number of seconds (`5m`).
#[derive(Debug, Clone, PartialEq)]
pub struct NumberLiteral {
    pub value: f64,
    /// Written as a duration (`5m`): the value is in seconds and prints back as a duration.
    pub is_duration: bool,
    pub span: Span,
}

/// A string literal. Go escapes (`"\xff"`) can produce bytes that are not UTF-8, which
/// Prometheus keeps and later rejects where a label name is needed; so the value is bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StringLiteral {
    pub value: Vec<u8>,
    pub span: Span,
}

impl StringLiteral {
    /// The value when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// The value with invalid UTF-8 sequences replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtModifier {
    /// `@ <seconds>`, stored in milliseconds since the epoch.
    Timestamp(i64),
    /// `@ start()`: the start of the query range.
    Start,
    /// `@ end()`: the end of the query range.
    End,
}

/// A duration in a range, subquery step or offset.
#[derive(Debug, Clone, PartialEq)]
pub enum Duration {
    /// A literal (`5m`, `300`, `-1h` for offsets), in milliseconds.
    Fixed(i64),
    /// An expression evaluated once the query's step and range are known.
    Expr(Box<DurationExpr>),
}

/// Arithmetic over durations: `5m+1m`, `step()*2`, `min_of(range(), 1h)`. Values are seconds
/// (as floats, like Prometheus), so `1.5*2m` is 180.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A number (`30`, in seconds) or a duration literal (`5m`, `is_duration` set).
    Number(NumberLiteral),
    /// `step()`: the query step.
    Step(Span),
    /// `range()`: the query range (end − start).
    Range(Span),
    /// `min_of(a, b)`.
    MinOf(Box<DurationExpr>, Box<DurationExpr>, Span),
    /// `max_of(a, b)`.
    MaxOf(Box<DurationExpr>, Box<DurationExpr>, Span),
    /// `-e` on anything but a literal (literals fold the sign in).
    Negate(Box<DurationExpr>, Span),
    /// `a op b`.
    Binary {
        op: DurationOp,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
        span: Span,
    },
    /// `( e )`.
    Paren(Box<DurationExpr>, Span),
}

impl DurationExpr {
    pub fn span(&self) -> Span {
        match self {
            DurationExpr::Number(n) => n.span,
            DurationExpr::Step(s) | DurationExpr::Range(s) => *s,
            DurationExpr::MinOf(_, _, s)
            | DurationExpr::MaxOf(_, _, s)
            | DurationExpr::Negate(_, s)
            | DurationExpr::Paren(_, s) => *s,
            DurationExpr::Binary { span, .. } => *span,
        }
    }

    /// The value in seconds, given the query's step and range in seconds (both 0 for an
    /// instant query). The caller converts and range-checks the result.
    pub fn evaluate_seconds(&self, step_seconds: f64, range_seconds: f64) -> f64 {
        match self {
            DurationExpr::Number(n) => n.value,
            DurationExpr::Step(_) => step_seconds,
            DurationExpr::Range(_) => range_seconds,
            DurationExpr::MinOf(a, b, _) => a
                .evaluate_seconds(step_seconds, range_seconds)
                .min(b.evaluate_seconds(step_seconds, range_seconds)),
            DurationExpr::MaxOf(a, b, _) => a
                .evaluate_seconds(step_seconds, range_seconds)
                .max(b.evaluate_seconds(step_seconds, range_seconds)),
            DurationExpr::Negate(e, _) => -e.evaluate_seconds(step_seconds, range_seconds),
            DurationExpr::Paren(e, _) => e.evaluate_seconds(step_seconds, range_seconds),
            DurationExpr::Binary { op, lhs, rhs, .. } => {
                let l = lhs.evaluate_seconds(step_seconds, range_seconds);
                let r = rhs.evaluate_seconds(step_seconds, range_seconds);
                match op {
                    DurationOp::Add => l + r,
                    DurationOp::Sub => l - r,
                    DurationOp::Mul => l * r,
                    DurationOp::Div => l / r,
                    DurationOp::Mod => l % r,
                    DurationOp::Pow => l.powf(r),
                }
            }
        }
    }
}

/// The operators of duration expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl DurationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationOp::Add => "+",
            DurationOp::Sub => "-",
            DurationOp::Mul => "*",
            DurationOp::Div => "/",
            DurationOp::Mod => "%",
            DurationOp::Pow => "^",
        }
    }
}

/// `name{matchers}` with its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers, including `__name__="<name>"` (appended last) when `name` is set, so that
    /// a storage lookup needs only this list.
    pub matchers: Vec<Matcher>,
    pub offset: Option<Duration>,
    pub at: Option<AtModifier>,
    /// `anchored` (extended range selectors).
    pub anchored: bool,
    /// `smoothed` (extended range selectors).
    pub smoothed: bool,
    pub span: Span,
}

/// `selector[range]`. The selector's `offset`, `@`, `anchored` and `smoothed` apply to the
/// whole range selector (Prometheus keeps them on the inner selector too).
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    pub selector: VectorSelector,
    pub range: Duration,
    pub span: Span,
}

/// `expr[range:step]`, `expr[range:]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    pub expr: Expr,
    pub range: Duration,
    /// `None` when omitted: the engine's default evaluation interval applies.
    pub step: Option<Duration>,
    pub offset: Option<Duration>,
    pub at: Option<AtModifier>,
    pub span: Span,
}

/// `( expr )`.
#[derive(Debug, Clone, PartialEq)]
pub struct Paren {
    pub expr: Box<Expr>,
    pub span: Span,
}

/// The unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
}

impl UnaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Plus => "+",
        }
    }
}

/// `-expr` or `+expr` (a sign on a number literal is folded into the literal instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Unary {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub span: Span,
}

/// The binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    And,
    Or,
    Unless,
    /// `</`: keeps the part of a native histogram below the threshold.
    TrimUpper,
    /// `>/`: keeps the part of a native histogram above the threshold.
    TrimLower,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Lss => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gtr => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
        }
    }

    /// Binding strength, higher binds tighter: `or` 1, `and unless` 2, comparisons and trims 3,
    /// `+ -` 4, `* / % atan2` 5, `^` 6.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Lss
            | BinaryOp::Lte
            | BinaryOp::Gtr
            | BinaryOp::Gte
            | BinaryOp::TrimUpper
            | BinaryOp::TrimLower => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Only `^` groups to the right: `2^3^2` is `2^(3^2)`.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }

    /// `== != < <= > >=`: the operators that filter, or return 0/1 with `bool`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Lss
                | BinaryOp::Lte
                | BinaryOp::Gtr
                | BinaryOp::Gte
        )
    }

    /// `and or unless`: defined between instant vectors only.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// How the two sides of a vector/vector operation are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// Values filled in for series missing on one side (`fill`, `fill_left`, `fill_right`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

impl FillValues {
    pub fn is_empty(&self) -> bool {
        self.lhs.is_none() && self.rhs.is_none()
    }
}

/// The `on`/`ignoring`, `group_left`/`group_right` and fill modifiers of a binary operation.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// The `on(...)` or `ignoring(...)` labels.
    pub labels: Vec<String>,
    /// `on` rather than `ignoring`.
    pub on: bool,
    /// The extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
    pub fill: FillValues,
}

/// `lhs op rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub op: BinaryOp,
    pub lhs: Expr,
    pub rhs: Expr,
    /// The `bool` modifier of comparisons.
    pub return_bool: bool,
    /// Present when both sides are instant vectors (the checker drops it otherwise, as
    /// Prometheus does).
    pub matching: Option<VectorMatching>,
    /// Where the operator token is.
    pub op_span: Span,
    pub span: Span,
}

/// The aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Looks an operator up by its (lower-case) name.
    pub fn from_name(name: &str) -> Option<AggregateOp> {
        Some(match name {
            "sum" => AggregateOp::Sum,
            "avg" => AggregateOp::Avg,
            "count" => AggregateOp::Count,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "count_values" => AggregateOp::CountValues,
            "quantile" => AggregateOp::Quantile,
            "limitk" => AggregateOp::Limitk,
            "limit_ratio" => AggregateOp::LimitRatio,
            _ => return None,
        })
    }

    /// The operators that take a parameter before the vector: `topk(3, x)`.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }

    /// `limitk` and `limit_ratio` need `enable_experimental_functions`.
    pub fn is_experimental(self) -> bool {
        matches!(self, AggregateOp::Limitk | AggregateOp::LimitRatio)
    }
}

/// `op by (labels) ([param,] expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    pub expr: Expr,
    pub param: Option<Expr>,
    /// The `by` labels, or the `without` labels when `without` is set.
    pub grouping: Vec<String>,
    pub without: bool,
    pub span: Span,
}

/// `function(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub func: &'static FunctionDef,
    pub args: Vec<Expr>,
    pub span: Span,
}
