//! PromQL for Meridian: the query language's lexer, syntax tree, parser with Prometheus'
//! parse-time checks, and the printer of Prometheus' canonical form.
//!
//! ```
//! let expr = promql::parse("sum by(job)(rate(http_requests_total{code=~'5..'}[5m]))")?;
//! assert_eq!(expr.value_type(), promql::ValueType::Vector);
//! assert_eq!(
//!     expr.to_string(),
//!     r#"sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))"#
//! );
//! # Ok::<(), promql::ParseError>(())
//! ```
//!
//! - [`ast`]: the tree ([`Expr`] and its nodes, [`ValueType`], [`Span`]).
//! - [`parse`] / [`parse_with_options`]: text to a checked tree; errors read like
//!   Prometheus' (`1:5: parse error: unexpected identifier "bar"`).
//! - `Display` on [`Expr`]: the canonical text, which parses back to the same tree.
//! - [`functions`]: the function table; [`duration`] and [`strings`]: literal syntax.
//!
//! Parsing is linear in the query length and bounded in depth and length (see
//! [`ParserOptions`]), so no query can exhaust the stack or take quadratic time.

pub mod ast;
mod check;
mod compare;
pub mod duration;
pub mod engine;
mod error;
pub mod functions;
mod lexer;
mod number;
mod parser;
mod printer;
pub mod strings;

pub use ast::{
    Aggregate, AggregateOp, AtModifier, Binary, BinaryOp, Call, Cardinality, Duration,
    DurationExpr, DurationOp, Expr, FillValues, MatrixSelector, NumberLiteral, Paren, Span,
    StringLiteral, Subquery, Unary, UnaryOp, ValueType, VectorMatching, VectorSelector,
};
pub use error::ParseError;
pub use functions::{FunctionDef, lookup_function};
pub use parser::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_QUERY_LENGTH, ParserOptions, parse, parse_with_options,
};
