//! The PromQL parser: tokens to [`Expr`], with the checks Prometheus makes while building the
//! tree (offset/`@` placement, ranges only on selectors, positive durations, ...). Type checks
//! that need the whole tree run afterwards in `check.rs`.
//!
//! Binary and unary operators are parsed by precedence climbing over explicit operand and
//! operator stacks, so an operator chain (`a + a + ... + a`) costs no recursion and linear
//! time. Recursion happens only for syntactic nesting (parentheses, call and aggregation
//! arguments, duration sub-expressions) and is bounded by [`ParserOptions::max_depth`], which
//! also bounds the depth of the tree built (chains included), so every later recursive walk
//! over the tree (type check, printer, comparison, drop) is bounded too.
//!
//! Operator semantics follow Prometheus' grammar:
//! - precedence `or` < `and unless` < comparisons and `</ >/` < `+ -` < `* / % atan2` < `^`,
//!   all left-associative except `^`;
//! - unary `-`/`+` binds like `*`, so `-2^2` is `-(2^2)` and `-a*b` is `(-a)*b`; a sign on a
//!   number literal is folded into the literal;
//! - postfix `[..]`, `offset`, `@`, `anchored`, `smoothed` bind tighter than any operator;
//! - after `offset`, only a signed literal, `step()`, `range()`, `min_of(..)`, `max_of(..)` or
//!   a parenthesised duration expression is taken, so `x offset 1m + 2` is `(x offset 1m) + 2`.

use crate::ast::*;
use crate::error::ParseError;
use crate::functions::lookup_function;
use crate::lexer::{Token, TokenKind, describe, go_quote, lex};
use crate::number::{NumberError, parse_number};
use model::{MatchOp, Matcher};

/// What the parser accepts. The experimental switches carry the names of Prometheus' parser
/// options; [`ParserOptions::default`] matches a Prometheus 3.14 server started without
/// feature flags, [`ParserOptions::all_enabled`] the PromQL test scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserOptions {
    /// Experimental functions (`info`, `sort_by_label`, `mad_over_time`, `step()` ...) and the
    /// `limitk`/`limit_ratio` aggregations (`--enable-feature=promql-experimental-functions`).
    pub enable_experimental_functions: bool,
    /// Arithmetic in durations (`[5m+1m]`, `offset (1h/2)`, `step()`, `min_of(..)`); on by
    /// default since Prometheus 3.14 (`--enable-feature=promql-duration-expr` before).
    pub experimental_duration_expr: bool,
    /// The `anchored` and `smoothed` modifiers
    /// (`--enable-feature=promql-extended-range-selectors`).
    pub enable_extended_range_selectors: bool,
    /// `fill()`, `fill_left()`, `fill_right()` on binary operators
    /// (`--enable-feature=promql-binop-fill-modifiers`).
    pub enable_binop_fill_modifiers: bool,
    /// Longest query accepted, in bytes.
    pub max_query_length: usize,
    /// Deepest tree accepted: nesting of parentheses, calls and aggregations, and the length
    /// of operator chains, all count.
    pub max_depth: usize,
}

/// Default [`ParserOptions::max_query_length`]: 1 MiB, far above hand-written or generated
/// dashboards' queries.
pub const DEFAULT_MAX_QUERY_LENGTH: usize = 1 << 20;

/// Default [`ParserOptions::max_depth`]. Each level costs a few stack frames in the parser and
/// in each tree walk; 256 keeps the deepest accepted query well inside a 2 MiB thread stack
/// (see the `limits` tests) while allowing operator chains of 255 terms.
pub const DEFAULT_MAX_DEPTH: usize = 256;

impl Default for ParserOptions {
    fn default() -> Self {
        ParserOptions {
            enable_experimental_functions: false,
            experimental_duration_expr: true,
            enable_extended_range_selectors: false,
            enable_binop_fill_modifiers: false,
            max_query_length: DEFAULT_MAX_QUERY_LENGTH,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl ParserOptions {
    /// Every experimental feature on, default limits.
    pub fn all_enabled() -> Self {
        ParserOptions {
            enable_experimental_functions: true,
            experimental_duration_expr: true,
            enable_extended_range_selectors: true,
            enable_binop_fill_modifiers: true,
            ..ParserOptions::default()
        }
    }
}

/// Parses and checks a query with [`ParserOptions::default`].
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with_options(input, &ParserOptions::default())
}

/// Parses and checks a query.
pub fn parse_with_options(input: &str, options: &ParserOptions) -> Result<Expr, ParseError> {
    if input.len() > options.max_query_length {
        return Err(ParseError::new(
            input,
            Span::new(0, 0),
            format!(
                "query is too long: {} bytes, the limit is {}",
                input.len(),
                options.max_query_length
            ),
        ));
    }
    let lexed = lex(input);
    let mut parser = Parser {
        input,
        tokens: lexed.tokens,
        lex_error: lexed.error,
        pos: 0,
        options,
        nesting: 0,
    };
    if parser.peek().kind == TokenKind::Eof {
        return Err(parser.error(Span::new(0, 0), "no expression found in input"));
    }
    let parsed = parser.parse_expr()?;
    let next = parser.peek();
    if next.kind != TokenKind::Eof {
        return Err(parser.unexpected(next, "", ""));
    }
    let mut expr = parsed.expr;
    crate::check::check(&mut expr, input)?;
    Ok(expr)
}

/// An expression with the depth of its tree.
struct Parsed {
    expr: Expr,
    depth: usize,
}

/// A duration expression with the depth of its tree.
struct ParsedDuration {
    expr: DurationExpr,
    depth: usize,
}

/// An operator waiting on the operator stack for its right operand.
enum PendingOp {
    Unary {
        op: UnaryOp,
        start: usize,
    },
    Binary {
        op: BinaryOp,
        op_span: Span,
        // Boxed to keep the operator stack's entries, and stack temporaries, small.
        modifiers: Box<BinModifiers>,
    },
}

/// The operand and operator stacks of one operator chain.
struct OperatorStacks {
    operands: Vec<Parsed>,
    operators: Vec<PendingOp>,
}

/// Precedence of unary operators: that of `*`.
const UNARY_PRECEDENCE: u8 = 5;

/// The modifiers written after a binary operator.
struct BinModifiers {
    return_bool: bool,
    on: bool,
    labels: Vec<String>,
    card: Cardinality,
    include: Vec<String>,
    fill: FillValues,
}

/// The operand and operator stacks of one duration expression.
struct DurationStacks {
    operands: Vec<ParsedDuration>,
    operators: Vec<DurationPending>,
}

enum DurationPending {
    Negate { start: usize },
    Plus,
    Binary { op: DurationOp, op_span: Span },
}

fn duration_precedence(op: DurationOp) -> u8 {
    match op {
        DurationOp::Add | DurationOp::Sub => 4,
        DurationOp::Mul | DurationOp::Div | DurationOp::Mod => 5,
        DurationOp::Pow => 6,
    }
}

/// Largest magnitude of a duration in seconds: a Go `time.Duration` counts nanoseconds in an
/// `i64`.
const MAX_DURATION_SECONDS: f64 = 9_223_372_036.854_775;

/// Seconds to milliseconds the way Prometheus gets there: rounded to nanoseconds, then
/// truncated to milliseconds.
fn seconds_to_millis(seconds: f64) -> i64 {
    ((seconds * 1e9).round() / 1e6).trunc() as i64
}

fn binary_op(kind: TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Add => BinaryOp::Add,
        TokenKind::Sub => BinaryOp::Sub,
        TokenKind::Mul => BinaryOp::Mul,
        TokenKind::Div => BinaryOp::Div,
        TokenKind::Mod => BinaryOp::Mod,
        TokenKind::Pow => BinaryOp::Pow,
        TokenKind::Atan2 => BinaryOp::Atan2,
        TokenKind::Eqlc => BinaryOp::Eql,
        TokenKind::Neq => BinaryOp::Neq,
        TokenKind::Lss => BinaryOp::Lss,
        TokenKind::Lte => BinaryOp::Lte,
        TokenKind::Gtr => BinaryOp::Gtr,
        TokenKind::Gte => BinaryOp::Gte,
        TokenKind::And => BinaryOp::And,
        TokenKind::Or => BinaryOp::Or,
        TokenKind::Unless => BinaryOp::Unless,
        TokenKind::TrimUpper => BinaryOp::TrimUpper,
        TokenKind::TrimLower => BinaryOp::TrimLower,
        _ => return None,
    })
}

/// Tokens that may follow a complete expression: after an aggregation keyword they mean the
/// keyword is a metric name (`sum + 1`).
fn can_follow_expr(kind: TokenKind) -> bool {
    binary_op(kind).is_some()
        || matches!(
            kind,
            TokenKind::Eof
                | TokenKind::Error
                | TokenKind::RightParen
                | TokenKind::RightBracket
                | TokenKind::LeftBracket
                | TokenKind::LeftBrace
                | TokenKind::Comma
                | TokenKind::Colon
                | TokenKind::Offset
                | TokenKind::At
                | TokenKind::Anchored
                | TokenKind::Smoothed
        )
}

/// Formats like Go's `%f`.
fn go_fixed(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    lex_error: Option<String>,
    pos: usize,
    options: &'a ParserOptions,
    /// Current recursion depth of the parse functions.
    nesting: usize,
}

impl<'a> Parser<'a> {
    // ----- Token access and errors -----

    fn peek(&self) -> Token {
        self.peek_nth(0)
    }

    fn peek_nth(&self, n: usize) -> Token {
        // The list always ends with `Eof` or `Error`, which is repeated past the end.
        let last = self.tokens.len().saturating_sub(1);
        self.tokens
            .get((self.pos + n).min(last))
            .copied()
            .unwrap_or(Token {
                kind: TokenKind::Eof,
                span: Span::new(self.input.len(), self.input.len()),
            })
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        if !matches!(token.kind, TokenKind::Eof | TokenKind::Error) {
            self.pos += 1;
        }
        token
    }

    /// End of the last consumed token.
    fn last_end(&self) -> usize {
        match self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(t) => t.span.end,
            None => 0,
        }
    }

    fn text(&self, token: Token) -> &'a str {
        self.input
            .get(token.span.start..token.span.end)
            .unwrap_or_default()
    }

    fn error(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, span, message)
    }

    /// `unexpected <token>[ in <context>][, expected <expected>]`, or the lexer's message when
    /// the token is a lexical error.
    fn unexpected(&self, token: Token, context: &str, expected: &str) -> ParseError {
        if token.kind == TokenKind::Error {
            let message = self
                .lex_error
                .clone()
                .unwrap_or_else(|| "lexer error".into());
            return self.error(token.span, message);
        }
        let mut message = format!("unexpected {}", describe(&token, self.input));
        if !context.is_empty() {
            message.push_str(" in ");
            message.push_str(context);
        }
        if !expected.is_empty() {
            message.push_str(", expected ");
            message.push_str(expected);
        }
        self.error(token.span, message)
    }

    /// Consumes a token of `kind` or fails with a generic "unexpected" error.
    fn expect(
        &mut self,
        kind: TokenKind,
        context: &str,
        expected: &str,
    ) -> Result<Token, ParseError> {
        let token = self.peek();
        if token.kind != kind {
            return Err(self.unexpected(token, context, expected));
        }
        Ok(self.advance())
    }

    fn depth_error(&self, span: Span) -> ParseError {
        self.error(
            span,
            format!(
                "expression is nested too deeply: more than {} levels",
                self.options.max_depth
            ),
        )
    }

    /// Enters one level of recursion.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > self.options.max_depth {
            return Err(self.depth_error(self.peek().span));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    fn check_depth(&self, depth: usize, span: Span) -> Result<(), ParseError> {
        if depth > self.options.max_depth {
            return Err(self.depth_error(span));
        }
        Ok(())
    }

    fn internal_error(&self) -> ParseError {
        self.error(
            self.peek().span,
            "internal parser error: operand stack underflow",
        )
    }

    // ----- Expressions -----
    //
    // The functions on a recursion path (`parse_expr` → `parse_operand` → `parse_primary` →
    // `parse_paren`/`parse_call`/`parse_aggregate` → `parse_call_args` → `parse_expr`) stay
    // small and leave error formatting and node building to helpers: unoptimised builds give
    // every temporary its own stack slot, so each of their locals is paid once per level.

    fn parse_expr(&mut self) -> Result<Parsed, ParseError> {
        self.enter()?;
        let mut stacks = OperatorStacks {
            operands: Vec::new(),
            operators: Vec::new(),
        };
        loop {
            self.parse_prefix_operators(&mut stacks)?;
            let operand = self.parse_operand()?;
            stacks.operands.push(operand);
            if !self.parse_binary_operator(&mut stacks)? {
                break;
            }
        }
        let result = self.finish_expr(stacks)?;
        self.leave();
        Ok(result)
    }

    /// Pushes the unary `-`/`+` in front of an operand.
    fn parse_prefix_operators(&mut self, stacks: &mut OperatorStacks) -> Result<(), ParseError> {
        while let kind @ (TokenKind::Add | TokenKind::Sub) = self.peek().kind {
            let token = self.advance();
            let op = if kind == TokenKind::Sub {
                UnaryOp::Neg
            } else {
                UnaryOp::Plus
            };
            stacks.operators.push(PendingOp::Unary {
                op,
                start: token.span.start,
            });
            // Each pending operator adds a level to the tree being built.
            self.check_depth(stacks.operators.len(), token.span)?;
        }
        Ok(())
    }

    /// An operand with its postfix modifiers.
    fn parse_operand(&mut self) -> Result<Parsed, ParseError> {
        let primary = self.parse_primary()?;
        self.parse_postfix(primary)
    }

    /// Reads a binary operator and its modifiers after an operand, first reducing the pending
    /// operators that bind tighter. Returns false at the end of the chain.
    fn parse_binary_operator(&mut self, stacks: &mut OperatorStacks) -> Result<bool, ParseError> {
        let Some(op) = binary_op(self.peek().kind) else {
            return Ok(false);
        };
        let op_token = self.advance();
        while let Some(top) = stacks.operators.last() {
            let top_precedence = match top {
                PendingOp::Unary { .. } => UNARY_PRECEDENCE,
                PendingOp::Binary { op, .. } => op.precedence(),
            };
            let reduce = top_precedence > op.precedence()
                || (top_precedence == op.precedence() && !op.is_right_associative());
            if !reduce {
                break;
            }
            let Some(top) = stacks.operators.pop() else {
                break;
            };
            self.reduce(&mut stacks.operands, top)?;
        }
        let modifiers = self.parse_bin_modifiers()?;
        stacks.operators.push(PendingOp::Binary {
            op,
            op_span: op_token.span,
            modifiers: Box::new(modifiers),
        });
        Ok(true)
    }

    /// Applies the remaining operators; the single operand left is the expression.
    fn finish_expr(&self, mut stacks: OperatorStacks) -> Result<Parsed, ParseError> {
        while let Some(top) = stacks.operators.pop() {
            self.reduce(&mut stacks.operands, top)?;
        }
        stacks.operands.pop().ok_or_else(|| self.internal_error())
    }

    /// Applies one pending operator to the operands on top of the stack.
    fn reduce(&self, operands: &mut Vec<Parsed>, op: PendingOp) -> Result<(), ParseError> {
        match op {
            PendingOp::Unary { op, start } => {
                let operand = operands.pop().ok_or_else(|| self.internal_error())?;
                let span = Span::new(start, operand.expr.span().end);
                let parsed = match operand.expr {
                    Expr::NumberLiteral(mut number) => {
                        if op == UnaryOp::Neg {
                            number.value = -number.value;
                        }
                        number.span = span;
                        Parsed {
                            expr: Expr::NumberLiteral(number),
                            depth: operand.depth,
                        }
                    }
                    expr => {
                        let depth = operand.depth + 1;
                        self.check_depth(depth, span)?;
                        Parsed {
                            expr: Expr::Unary(Unary {
                                op,
                                expr: Box::new(expr),
                                span,
                            }),
                            depth,
                        }
                    }
                };
                operands.push(parsed);
            }
            PendingOp::Binary {
                op,
                op_span,
                modifiers,
            } => {
                let rhs = operands.pop().ok_or_else(|| self.internal_error())?;
                let lhs = operands.pop().ok_or_else(|| self.internal_error())?;
                let span = lhs.expr.span().to(rhs.expr.span());
                let depth = lhs.depth.max(rhs.depth) + 1;
                self.check_depth(depth, op_span)?;
                if !modifiers.fill.is_empty() && !self.options.enable_binop_fill_modifiers {
                    return Err(self.error(
                        span,
                        "binop fill modifiers are experimental and not enabled",
                    ));
                }
                let BinModifiers {
                    return_bool,
                    on,
                    labels,
                    card,
                    include,
                    fill,
                } = *modifiers;
                operands.push(Parsed {
                    expr: Expr::Binary(Box::new(Binary {
                        op,
                        lhs: lhs.expr,
                        rhs: rhs.expr,
                        return_bool,
                        matching: Some(VectorMatching {
                            card,
                            labels,
                            on,
                            include,
                            fill,
                        }),
                        op_span,
                        span,
                    })),
                    depth,
                });
            }
        }
        Ok(())
    }

    /// `bool`, `on(..)`/`ignoring(..)`, `group_left(..)`/`group_right(..)` and the fill
    /// modifiers, in that order.
    fn parse_bin_modifiers(&mut self) -> Result<BinModifiers, ParseError> {
        let mut modifiers = BinModifiers {
            return_bool: false,
            on: false,
            labels: Vec::new(),
            card: Cardinality::OneToOne,
            include: Vec::new(),
            fill: FillValues::default(),
        };
        if self.peek().kind == TokenKind::Bool {
            self.advance();
            modifiers.return_bool = true;
        }
        if let kind @ (TokenKind::On | TokenKind::Ignoring) = self.peek().kind {
            self.advance();
            modifiers.on = kind == TokenKind::On;
            modifiers.labels = self.parse_grouping_labels()?;
            if let kind @ (TokenKind::GroupLeft | TokenKind::GroupRight) = self.peek().kind {
                self.advance();
                modifiers.card = if kind == TokenKind::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                // A `(` right after `group_x` is always its label list, as in Prometheus.
                if self.peek().kind == TokenKind::LeftParen {
                    modifiers.include = self.parse_grouping_labels()?;
                }
            }
        }
        match self.peek().kind {
            TokenKind::Fill => {
                self.advance();
                let value = self.parse_fill_value()?;
                modifiers.fill = FillValues {
                    lhs: Some(value),
                    rhs: Some(value),
                };
            }
            TokenKind::FillLeft => {
                self.advance();
                modifiers.fill.lhs = Some(self.parse_fill_value()?);
                if self.peek().kind == TokenKind::FillRight {
                    self.advance();
                    modifiers.fill.rhs = Some(self.parse_fill_value()?);
                }
            }
            TokenKind::FillRight => {
                self.advance();
                modifiers.fill.rhs = Some(self.parse_fill_value()?);
                if self.peek().kind == TokenKind::FillLeft {
                    self.advance();
                    modifiers.fill.lhs = Some(self.parse_fill_value()?);
                }
            }
            _ => {}
        }
        Ok(modifiers)
    }

    /// `( [+|-] number )` after a fill keyword.
    fn parse_fill_value(&mut self) -> Result<f64, ParseError> {
        self.expect(TokenKind::LeftParen, "fill modifier", "\"(\"")?;
        let value = self.parse_signed_number("fill modifier", "number")?;
        self.expect(TokenKind::RightParen, "fill modifier", "\")\"")?;
        Ok(value)
    }

    /// `[+|-] (number | duration)`, the value in seconds.
    fn parse_signed_number(&mut self, context: &str, expected: &str) -> Result<f64, ParseError> {
        let mut sign = 1.0;
        if let kind @ (TokenKind::Add | TokenKind::Sub) = self.peek().kind {
            self.advance();
            if kind == TokenKind::Sub {
                sign = -1.0;
            }
        }
        let token = self.peek();
        match token.kind {
            TokenKind::Number | TokenKind::Duration => {
                self.advance();
                Ok(sign * self.literal_seconds(token)?)
            }
            _ => Err(self.unexpected(token, context, expected)),
        }
    }

    /// The value of a number or duration token, in seconds.
    fn literal_seconds(&self, token: Token) -> Result<f64, ParseError> {
        let text = self.text(token);
        if token.kind == TokenKind::Duration {
            return crate::duration::parse_duration(text)
                .map(|ms| ms as f64 / 1000.0)
                .map_err(|message| self.error(token.span, message));
        }
        parse_number(text).map_err(|e| {
            let reason = match e {
                NumberError::Syntax => "invalid syntax",
                NumberError::Range => "value out of range",
            };
            self.error(
                token.span,
                format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: {reason}",
                    go_quote(text)
                ),
            )
        })
    }

    fn number_literal(&self, token: Token) -> Result<NumberLiteral, ParseError> {
        Ok(NumberLiteral {
            value: self.literal_seconds(token)?,
            is_duration: token.kind == TokenKind::Duration,
            span: token.span,
        })
    }

    fn unquote(&self, token: Token) -> Result<Vec<u8>, ParseError> {
        let text = self.text(token);
        crate::strings::unquote(text).map_err(|e| {
            self.error(
                token.span,
                format!("error unquoting string {}: {e}", go_quote(text)),
            )
        })
    }

    /// Dispatches on the first token of an operand.
    fn parse_primary(&mut self) -> Result<Parsed, ParseError> {
        let token = self.peek();
        let next = self.peek_nth(1).kind;
        match token.kind {
            TokenKind::Number | TokenKind::Duration | TokenKind::String => {
                self.parse_literal(token)
            }
            TokenKind::LeftParen => self.parse_paren(token),
            TokenKind::LeftBrace => self.parse_vector_selector(None),
            TokenKind::Aggregator(op)
                if matches!(
                    next,
                    TokenKind::LeftParen | TokenKind::By | TokenKind::Without
                ) =>
            {
                self.parse_aggregate(token, op)
            }
            // These words name functions when called and metrics otherwise.
            TokenKind::Identifier
            | TokenKind::Start
            | TokenKind::End
            | TokenKind::Step
            | TokenKind::Range
            | TokenKind::MinOf
            | TokenKind::MaxOf
                if next == TokenKind::LeftParen =>
            {
                self.parse_call(token)
            }
            _ => self.parse_named_selector(token),
        }
    }

    fn parse_literal(&mut self, token: Token) -> Result<Parsed, ParseError> {
        self.advance();
        let expr = if token.kind == TokenKind::String {
            Expr::StringLiteral(StringLiteral {
                value: self.unquote(token)?,
                span: token.span,
            })
        } else {
            Expr::NumberLiteral(self.number_literal(token)?)
        };
        Ok(Parsed { expr, depth: 1 })
    }

    fn parse_paren(&mut self, open: Token) -> Result<Parsed, ParseError> {
        self.advance();
        let inner = self.parse_expr()?;
        self.finish_paren(open, inner)
    }

    fn finish_paren(&mut self, open: Token, inner: Parsed) -> Result<Parsed, ParseError> {
        let close = self.expect(TokenKind::RightParen, "", "")?;
        let depth = inner.depth + 1;
        let span = Span::new(open.span.start, close.span.end);
        self.check_depth(depth, span)?;
        Ok(Parsed {
            expr: Expr::Paren(Paren {
                expr: Box::new(inner.expr),
                span,
            }),
            depth,
        })
    }

    /// A selector starting with a metric name: identifiers and the keywords Prometheus also
    /// accepts as metric names.
    fn parse_named_selector(&mut self, token: Token) -> Result<Parsed, ParseError> {
        match token.kind {
            TokenKind::Aggregator(_) if !can_follow_expr(self.peek_nth(1).kind) => {
                Err(self.unexpected(self.peek_nth(1), "aggregation", ""))
            }
            TokenKind::Identifier
            | TokenKind::MetricIdentifier
            | TokenKind::Aggregator(_)
            | TokenKind::Start
            | TokenKind::End
            | TokenKind::Step
            | TokenKind::Range
            | TokenKind::MinOf
            | TokenKind::MaxOf
            | TokenKind::By
            | TokenKind::Without
            | TokenKind::Offset
            | TokenKind::Anchored
            | TokenKind::Smoothed
            | TokenKind::Fill
            | TokenKind::FillLeft
            | TokenKind::FillRight
            | TokenKind::And
            | TokenKind::Or
            | TokenKind::Unless => {
                self.advance();
                self.parse_vector_selector(Some(token))
            }
            _ => Err(self.unexpected(token, "", "")),
        }
    }

    /// `name`, `name{matchers}` or `{matchers}`; `name_token` has been consumed.
    fn parse_vector_selector(&mut self, name_token: Option<Token>) -> Result<Parsed, ParseError> {
        let name = name_token.map(|t| self.text(t).to_string());
        let mut span = name_token.map(|t| t.span);
        let mut matchers = Vec::new();
        if self.peek().kind == TokenKind::LeftBrace {
            let (list, braces) = self.parse_label_matchers()?;
            matchers = list;
            span = Some(span.map_or(braces, |s| s.to(braces)));
        }
        if let Some(name) = &name {
            matchers.push(Matcher::equal(model::labels::METRIC_NAME, name.clone()));
        }
        let span = span.unwrap_or_else(|| self.peek().span);
        Ok(Parsed {
            expr: Expr::VectorSelector(Box::new(VectorSelector {
                name,
                matchers,
                offset: None,
                at: None,
                anchored: false,
                smoothed: false,
                span,
            })),
            depth: 1,
        })
    }

    /// `{ matcher, ... }` with an optional trailing comma.
    fn parse_label_matchers(&mut self) -> Result<(Vec<Matcher>, Span), ParseError> {
        let open = self.expect(TokenKind::LeftBrace, "", "")?;
        let mut matchers = Vec::new();
        loop {
            let token = self.peek();
            match token.kind {
                TokenKind::RightBrace => {
                    self.advance();
                    return Ok((matchers, open.span.to(token.span)));
                }
                TokenKind::Identifier => {
                    self.advance();
                    let name = self.text(token).to_string();
                    matchers.push(self.parse_matcher_rest(token, name)?);
                }
                TokenKind::String => {
                    self.advance();
                    let name = String::from_utf8_lossy(&self.unquote(token)?).into_owned();
                    if self.matcher_op(self.peek().kind).is_some() {
                        matchers.push(self.parse_matcher_rest(token, name)?);
                    } else {
                        // `{"metric.name"}`: a quoted metric name.
                        matchers.push(Matcher::equal(model::labels::METRIC_NAME, name));
                    }
                }
                _ => {
                    return Err(self.unexpected(token, "label matching", "identifier or \"}\""));
                }
            }
            let token = self.peek();
            match token.kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RightBrace => {
                    self.advance();
                    return Ok((matchers, open.span.to(token.span)));
                }
                _ => {
                    return Err(self.unexpected(token, "label matching", "\",\" or \"}\""));
                }
            }
        }
    }

    fn matcher_op(&self, kind: TokenKind) -> Option<MatchOp> {
        Some(match kind {
            TokenKind::Assign => MatchOp::Equal,
            TokenKind::Neq => MatchOp::NotEqual,
            TokenKind::EqlRegex => MatchOp::RegexMatch,
            TokenKind::NeqRegex => MatchOp::RegexNoMatch,
            _ => return None,
        })
    }

    /// The operator and value of a matcher whose label name has been read.
    fn parse_matcher_rest(&mut self, label: Token, name: String) -> Result<Matcher, ParseError> {
        let op_token = self.peek();
        let Some(op) = self.matcher_op(op_token.kind) else {
            return Err(self.unexpected(op_token, "label matching", "label matching operator"));
        };
        self.advance();
        let value_token = self.peek();
        if value_token.kind != TokenKind::String {
            return Err(self.unexpected(value_token, "label matching", "string"));
        }
        self.advance();
        let value = String::from_utf8_lossy(&self.unquote(value_token)?).into_owned();
        Matcher::new(op, name, value).map_err(|e| {
            self.error(
                label.span.to(value_token.span),
                format!("error parsing regexp: {e}"),
            )
        })
    }

    /// `( label, ... )` with an optional trailing comma; labels may be keywords or quoted.
    fn parse_grouping_labels(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(TokenKind::LeftParen, "grouping opts", "\"(\"")?;
        let mut labels = Vec::new();
        loop {
            let token = self.peek();
            match token.kind {
                TokenKind::RightParen => {
                    self.advance();
                    return Ok(labels);
                }
                TokenKind::String => {
                    self.advance();
                    let bytes = self.unquote(token)?;
                    match String::from_utf8(bytes) {
                        Ok(label) if !label.is_empty() => labels.push(label),
                        Ok(label) => {
                            return Err(self.error(
                                token.span,
                                format!("invalid label name for grouping: {}", go_quote(&label)),
                            ));
                        }
                        Err(e) => {
                            return Err(self.error(
                                token.span,
                                format!(
                                    "invalid label name for grouping: {}",
                                    crate::strings::quote(e.as_bytes())
                                ),
                            ));
                        }
                    }
                }
                kind if kind.is_word() => {
                    self.advance();
                    labels.push(self.text(token).to_string());
                }
                _ => return Err(self.unexpected(token, "grouping opts", "label")),
            }
            let token = self.peek();
            match token.kind {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::RightParen => {
                    self.advance();
                    return Ok(labels);
                }
                _ => return Err(self.unexpected(token, "grouping opts", "\",\" or \")\"")),
            }
        }
    }

    /// `( expr, ... )` of a call or aggregation; returns the arguments and the end of `)`.
    fn parse_call_args(&mut self, context: &str) -> Result<(Vec<Parsed>, usize), ParseError> {
        self.expect(TokenKind::LeftParen, context, "")?;
        let mut args = Vec::new();
        if self.peek().kind == TokenKind::RightParen {
            return Ok((args, self.advance().span.end));
        }
        loop {
            let arg = self.parse_expr()?;
            args.push(arg);
            if let Some(end) = self.parse_call_args_separator()? {
                return Ok((args, end));
            }
        }
    }

    /// After an argument: `,` (returns `None`) or `)` (returns where it ends).
    fn parse_call_args_separator(&mut self) -> Result<Option<usize>, ParseError> {
        let token = self.peek();
        match token.kind {
            TokenKind::Comma => {
                self.advance();
                if self.peek().kind == TokenKind::RightParen {
                    return Err(self.error(
                        token.span,
                        "trailing commas not allowed in function call args",
                    ));
                }
                Ok(None)
            }
            TokenKind::RightParen => {
                self.advance();
                Ok(Some(token.span.end))
            }
            _ => Err(self.unexpected(token, "", "")),
        }
    }

    /// A function call at its name token.
    fn parse_call(&mut self, name_token: Token) -> Result<Parsed, ParseError> {
        self.advance();
        let args = self.parse_call_args("")?;
        self.finish_call(name_token, args)
    }

    fn finish_call(
        &self,
        name_token: Token,
        (args, end): (Vec<Parsed>, usize),
    ) -> Result<Parsed, ParseError> {
        // Keywords (`STEP()`) are case-insensitive; function names are not.
        let text = self.text(name_token);
        let name = if name_token.kind == TokenKind::Identifier {
            text.to_string()
        } else {
            text.to_ascii_lowercase()
        };
        let Some(func) = lookup_function(&name) else {
            return Err(self.error(
                name_token.span,
                format!("unknown function with name {}", go_quote(&name)),
            ));
        };
        if func.experimental && !self.options.enable_experimental_functions {
            return Err(self.error(
                name_token.span,
                format!("function {} is not enabled", go_quote(&name)),
            ));
        }
        let span = Span::new(name_token.span.start, end);
        let depth = args.iter().map(|a| a.depth).max().unwrap_or(0) + 1;
        self.check_depth(depth, span)?;
        Ok(Parsed {
            expr: Expr::Call(Box::new(Call {
                func,
                args: args.into_iter().map(|a| a.expr).collect(),
                span,
            })),
            depth,
        })
    }

    /// `by (..)` or `without (..)` if present; returns the labels and whether it was
    /// `without`.
    fn parse_aggregate_modifier(&mut self) -> Result<Option<(Vec<String>, bool)>, ParseError> {
        if !matches!(self.peek().kind, TokenKind::By | TokenKind::Without) {
            return Ok(None);
        }
        let without = self.advance().kind == TokenKind::Without;
        Ok(Some((self.parse_grouping_labels()?, without)))
    }

    /// `op [by|without (..)] ([param,] expr) [by|without (..)]`, at the operator token.
    fn parse_aggregate(&mut self, op_token: Token, op: AggregateOp) -> Result<Parsed, ParseError> {
        self.advance();
        let modifier = self.parse_aggregate_modifier()?;
        let args = self.parse_call_args("aggregation")?;
        self.finish_aggregate(op_token, op, modifier, args)
    }

    fn finish_aggregate(
        &mut self,
        op_token: Token,
        op: AggregateOp,
        mut modifier: Option<(Vec<String>, bool)>,
        (mut args, mut end): (Vec<Parsed>, usize),
    ) -> Result<Parsed, ParseError> {
        if modifier.is_none() {
            modifier = self.parse_aggregate_modifier()?;
            end = end.max(self.last_end());
        }
        let span = Span::new(op_token.span.start, end);
        if args.is_empty() {
            return Err(self.error(span, "no arguments for aggregate expression provided"));
        }
        if op.is_experimental() && !self.options.enable_experimental_functions {
            return Err(self.error(
                span,
                format!(
                    "{}() is experimental and must be enabled with --enable-feature=promql-experimental-functions",
                    op.as_str()
                ),
            ));
        }
        let wanted = if op.has_param() { 2 } else { 1 };
        if args.len() != wanted {
            return Err(self.error(
                span,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {wanted}, got {}",
                    args.len()
                ),
            ));
        }
        let depth = args.iter().map(|a| a.depth).max().unwrap_or(0) + 1;
        self.check_depth(depth, span)?;
        let expr = args.pop().ok_or_else(|| self.internal_error())?.expr;
        let param = args.pop().map(|p| p.expr);
        let (grouping, without) = modifier.unwrap_or_default();
        Ok(Parsed {
            expr: Expr::Aggregate(Box::new(Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
                span,
            })),
            depth,
        })
    }

    // ----- Postfix modifiers -----

    /// Applies `[range]`, `[range:step]`, `offset`, `@`, `anchored` and `smoothed`.
    fn parse_postfix(&mut self, mut current: Parsed) -> Result<Parsed, ParseError> {
        loop {
            match self.peek().kind {
                TokenKind::LeftBracket => current = self.parse_range_or_subquery(current)?,
                TokenKind::Offset => {
                    self.advance();
                    let offset = self.parse_offset()?;
                    self.apply_offset(&mut current, offset)?;
                }
                TokenKind::At => {
                    self.advance();
                    let at = self.parse_at(&current)?;
                    self.apply_at(&mut current, at)?;
                }
                kind @ (TokenKind::Anchored | TokenKind::Smoothed) => {
                    self.advance();
                    self.apply_range_modifier(&mut current, kind == TokenKind::Smoothed)?;
                }
                _ => return Ok(current),
            }
        }
    }

    fn parse_range_or_subquery(&mut self, current: Parsed) -> Result<Parsed, ParseError> {
        let open = self.advance();
        let range = self.parse_duration_expr(
            "subquery or range selector",
            "number, duration, step(), or range()",
        )?;
        let range = self.positive_duration(range)?;
        let token = self.peek();
        match token.kind {
            TokenKind::RightBracket => {
                self.advance();
                let brackets = open.span.to(token.span);
                let Expr::VectorSelector(selector) = current.expr else {
                    return Err(self.error(brackets, "ranges only allowed for vector selectors"));
                };
                if selector.offset.is_some() {
                    return Err(self.error(brackets, "no offset modifiers allowed before range"));
                }
                if selector.at.is_some() {
                    return Err(self.error(brackets, "no @ modifiers allowed before range"));
                }
                let span = selector.span.to(token.span);
                let depth = current.depth + 1;
                self.check_depth(depth, span)?;
                Ok(Parsed {
                    expr: Expr::MatrixSelector(Box::new(MatrixSelector {
                        selector: *selector,
                        range,
                        span,
                    })),
                    depth,
                })
            }
            TokenKind::Colon => {
                self.advance();
                let step = if self.peek().kind == TokenKind::RightBracket {
                    None
                } else {
                    let step = self.parse_duration_expr(
                        "subquery selector",
                        "number, duration, step(), range(), or \"]\"",
                    )?;
                    Some(self.positive_duration(step)?)
                };
                let close = self.expect(TokenKind::RightBracket, "subquery selector", "\"]\"")?;
                let span = current.expr.span().to(close.span);
                let depth = current.depth + 1;
                self.check_depth(depth, span)?;
                Ok(Parsed {
                    expr: Expr::Subquery(Box::new(Subquery {
                        expr: current.expr,
                        range,
                        step,
                        offset: None,
                        at: None,
                        span,
                    })),
                    depth,
                })
            }
            _ => Err(self.unexpected(token, "subquery or range", "\":\" or \"]\"")),
        }
    }

    /// A range or step: literals must be positive.
    fn positive_duration(&self, parsed: ParsedDuration) -> Result<Duration, ParseError> {
        match parsed.expr {
            DurationExpr::Number(n) => {
                if n.value.is_nan() || n.value <= 0.0 {
                    return Err(self.error(n.span, "duration must be greater than 0"));
                }
                Ok(Duration::Fixed(seconds_to_millis(n.value)))
            }
            expr => Ok(Duration::Expr(Box::new(expr))),
        }
    }

    /// The duration after `offset`; `None` for a zero offset (which changes nothing and prints
    /// as nothing, as in Prometheus).
    fn parse_offset(&mut self) -> Result<Option<Duration>, ParseError> {
        const CONTEXT: &str = "offset";
        const EXPECTED: &str = "number, duration, step(), or range()";
        let mut negate = None;
        if let kind @ (TokenKind::Add | TokenKind::Sub) = self.peek().kind {
            let sign = self.advance();
            if kind == TokenKind::Sub {
                negate = Some(sign.span.start);
            }
        }
        let token = self.peek();
        let base = match token.kind {
            TokenKind::Number
            | TokenKind::Duration
            | TokenKind::Step
            | TokenKind::Range
            | TokenKind::MinOf
            | TokenKind::MaxOf
            | TokenKind::LeftParen => self.parse_duration_primary(CONTEXT, EXPECTED)?,
            _ => return Err(self.unexpected(token, CONTEXT, EXPECTED)),
        };
        let parsed = match negate {
            Some(start) => self.negate_duration(base, start)?,
            None => base,
        };
        Ok(match parsed.expr {
            DurationExpr::Number(n) => match seconds_to_millis(n.value) {
                0 => None,
                ms => Some(Duration::Fixed(ms)),
            },
            expr => Some(Duration::Expr(Box::new(expr))),
        })
    }

    fn apply_offset(
        &self,
        current: &mut Parsed,
        offset: Option<Duration>,
    ) -> Result<(), ParseError> {
        let span = current.expr.span();
        let end = self.last_end();
        let slot = match &mut current.expr {
            Expr::VectorSelector(vs) => {
                vs.span.end = end;
                &mut vs.offset
            }
            Expr::MatrixSelector(ms) => {
                ms.span.end = end;
                &mut ms.selector.offset
            }
            Expr::Subquery(sq) => {
                sq.span.end = end;
                &mut sq.offset
            }
            _ => {
                return Err(self.error(
                    span,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(span, "offset may not be set multiple times"));
        }
        *slot = offset;
        Ok(())
    }

    /// The argument of `@`: a signed number of seconds, `start()` or `end()`.
    fn parse_at(&mut self, current: &Parsed) -> Result<AtModifier, ParseError> {
        let token = self.peek();
        match token.kind {
            kind @ (TokenKind::Start | TokenKind::End) => {
                self.advance();
                self.expect(TokenKind::LeftParen, "@", "\"(\"")?;
                self.expect(TokenKind::RightParen, "@", "\")\"")?;
                Ok(if kind == TokenKind::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                })
            }
            TokenKind::Add | TokenKind::Sub | TokenKind::Number | TokenKind::Duration => {
                let seconds = self.parse_signed_number("@", "timestamp")?;
                let millis = (seconds * 1000.0).round();
                // Go's bounds: seconds within an int64, and so must be the milliseconds.
                let in_bounds = seconds.is_finite()
                    && seconds < i64::MAX as f64
                    && seconds > i64::MIN as f64
                    && millis < i64::MAX as f64
                    && millis > i64::MIN as f64;
                if !in_bounds {
                    return Err(self.error(
                        current.expr.span(),
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            go_fixed(seconds)
                        ),
                    ));
                }
                Ok(AtModifier::Timestamp(millis as i64))
            }
            _ => Err(self.unexpected(token, "@", "timestamp")),
        }
    }

    fn apply_at(&self, current: &mut Parsed, at: AtModifier) -> Result<(), ParseError> {
        let span = current.expr.span();
        let end = self.last_end();
        let slot = match &mut current.expr {
            Expr::VectorSelector(vs) => {
                vs.span.end = end;
                &mut vs.at
            }
            Expr::MatrixSelector(ms) => {
                ms.span.end = end;
                &mut ms.selector.at
            }
            Expr::Subquery(sq) => {
                sq.span.end = end;
                &mut sq.at
            }
            _ => {
                return Err(self.error(
                    span,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(span, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        Ok(())
    }

    /// `anchored` or `smoothed` after a selector.
    fn apply_range_modifier(&self, current: &mut Parsed, smoothed: bool) -> Result<(), ParseError> {
        let name = if smoothed { "smoothed" } else { "anchored" };
        let span = current.expr.span();
        if !self.options.enable_extended_range_selectors {
            return Err(self.error(
                span,
                format!("{name} modifier is experimental and not enabled"),
            ));
        }
        let end = self.last_end();
        let selector = match &mut current.expr {
            Expr::VectorSelector(vs) => {
                vs.span.end = end;
                &mut **vs
            }
            Expr::MatrixSelector(ms) => {
                ms.span.end = end;
                &mut ms.selector
            }
            Expr::Subquery(_) => {
                return Err(self.error(
                    span,
                    format!("{name} modifier is not supported for subqueries"),
                ));
            }
            _ => return Err(self.error(span, format!("{name} modifier not implemented"))),
        };
        if smoothed {
            selector.smoothed = true;
        } else {
            selector.anchored = true;
        }
        if selector.smoothed && selector.anchored {
            return Err(self.error(
                span,
                "anchored and smoothed modifiers cannot be used together",
            ));
        }
        Ok(())
    }

    // ----- Duration expressions -----

    fn experimental_duration(&self, span: Span) -> Result<(), ParseError> {
        if !self.options.experimental_duration_expr {
            return Err(self.error(span, "experimental duration expression is not enabled"));
        }
        Ok(())
    }

    /// A duration literal, with Prometheus' range check.
    fn duration_literal(&self, token: Token) -> Result<ParsedDuration, ParseError> {
        let number = self.number_literal(token)?;
        self.duration_in_range(number.value, token.span)?;
        Ok(ParsedDuration {
            expr: DurationExpr::Number(number),
            depth: 1,
        })
    }

    fn duration_in_range(&self, seconds: f64, span: Span) -> Result<(), ParseError> {
        if seconds.is_nan() || seconds.abs() > MAX_DURATION_SECONDS {
            return Err(self.error(span, "duration out of range"));
        }
        Ok(())
    }

    /// `-e`: folds into a literal, wraps anything else.
    fn negate_duration(
        &self,
        operand: ParsedDuration,
        start: usize,
    ) -> Result<ParsedDuration, ParseError> {
        let span = Span::new(start, operand.expr.span().end);
        Ok(match operand.expr {
            DurationExpr::Number(mut n) => {
                n.value = -n.value;
                n.span = span;
                self.duration_in_range(n.value, span)?;
                ParsedDuration {
                    expr: DurationExpr::Number(n),
                    depth: operand.depth,
                }
            }
            expr => {
                self.experimental_duration(span)?;
                let depth = operand.depth + 1;
                self.check_depth(depth, span)?;
                ParsedDuration {
                    expr: DurationExpr::Negate(Box::new(expr), span),
                    depth,
                }
            }
        })
    }

    /// A full duration expression (inside brackets, parentheses and `min_of`/`max_of`).
    /// Like `parse_expr`, it stays small because it is on a recursion path.
    fn parse_duration_expr(
        &mut self,
        context: &str,
        expected: &str,
    ) -> Result<ParsedDuration, ParseError> {
        self.enter()?;
        let mut stacks = DurationStacks {
            operands: Vec::new(),
            operators: Vec::new(),
        };
        loop {
            self.parse_duration_prefixes(&mut stacks)?;
            let operand = self.parse_duration_primary(context, expected)?;
            stacks.operands.push(operand);
            if !self.parse_duration_operator(&mut stacks)? {
                break;
            }
        }
        let result = self.finish_duration_expr(stacks)?;
        self.leave();
        Ok(result)
    }

    fn parse_duration_prefixes(&mut self, stacks: &mut DurationStacks) -> Result<(), ParseError> {
        while let kind @ (TokenKind::Add | TokenKind::Sub) = self.peek().kind {
            let token = self.advance();
            stacks.operators.push(if kind == TokenKind::Sub {
                DurationPending::Negate {
                    start: token.span.start,
                }
            } else {
                DurationPending::Plus
            });
            self.check_depth(stacks.operators.len(), token.span)?;
        }
        Ok(())
    }

    /// Reads an operator after an operand (reducing what binds tighter); false at the end.
    fn parse_duration_operator(&mut self, stacks: &mut DurationStacks) -> Result<bool, ParseError> {
        let token = self.peek();
        let op = match token.kind {
            TokenKind::Add => DurationOp::Add,
            TokenKind::Sub => DurationOp::Sub,
            TokenKind::Mul => DurationOp::Mul,
            TokenKind::Div => DurationOp::Div,
            TokenKind::Mod => DurationOp::Mod,
            TokenKind::Pow => DurationOp::Pow,
            _ => return Ok(false),
        };
        self.advance();
        while let Some(top) = stacks.operators.last() {
            let top_precedence = match top {
                DurationPending::Negate { .. } | DurationPending::Plus => UNARY_PRECEDENCE,
                DurationPending::Binary { op, .. } => duration_precedence(*op),
            };
            let precedence = duration_precedence(op);
            let reduce = top_precedence > precedence
                || (top_precedence == precedence && op != DurationOp::Pow);
            if !reduce {
                break;
            }
            let Some(top) = stacks.operators.pop() else {
                break;
            };
            self.reduce_duration(&mut stacks.operands, top)?;
        }
        stacks.operators.push(DurationPending::Binary {
            op,
            op_span: token.span,
        });
        Ok(true)
    }

    fn finish_duration_expr(
        &self,
        mut stacks: DurationStacks,
    ) -> Result<ParsedDuration, ParseError> {
        while let Some(top) = stacks.operators.pop() {
            self.reduce_duration(&mut stacks.operands, top)?;
        }
        stacks.operands.pop().ok_or_else(|| self.internal_error())
    }

    fn reduce_duration(
        &self,
        operands: &mut Vec<ParsedDuration>,
        op: DurationPending,
    ) -> Result<(), ParseError> {
        let parsed = match op {
            DurationPending::Plus => return Ok(()),
            DurationPending::Negate { start } => {
                let operand = operands.pop().ok_or_else(|| self.internal_error())?;
                self.negate_duration(operand, start)?
            }
            DurationPending::Binary { op, op_span } => {
                let rhs = operands.pop().ok_or_else(|| self.internal_error())?;
                let lhs = operands.pop().ok_or_else(|| self.internal_error())?;
                let span = lhs.expr.span().to(rhs.expr.span());
                self.experimental_duration(span)?;
                if let DurationExpr::Number(n) = &rhs.expr
                    && n.value == 0.0
                {
                    match op {
                        DurationOp::Div => return Err(self.error(op_span, "division by zero")),
                        DurationOp::Mod => return Err(self.error(op_span, "modulo by zero")),
                        _ => {}
                    }
                }
                let depth = lhs.depth.max(rhs.depth) + 1;
                self.check_depth(depth, op_span)?;
                ParsedDuration {
                    expr: DurationExpr::Binary {
                        op,
                        lhs: Box::new(lhs.expr),
                        rhs: Box::new(rhs.expr),
                        span,
                    },
                    depth,
                }
            }
        };
        operands.push(parsed);
        Ok(())
    }

    /// A literal, `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` or `( expr )`.
    fn parse_duration_primary(
        &mut self,
        context: &str,
        expected: &str,
    ) -> Result<ParsedDuration, ParseError> {
        let token = self.peek();
        match token.kind {
            TokenKind::Number | TokenKind::Duration => {
                self.advance();
                self.duration_literal(token)
            }
            TokenKind::Step | TokenKind::Range => self.parse_step_or_range(token),
            TokenKind::MinOf | TokenKind::MaxOf => self.parse_min_or_max(token),
            TokenKind::LeftParen => self.parse_duration_paren(token),
            _ => Err(self.unexpected(token, context, expected)),
        }
    }

    fn parse_step_or_range(&mut self, token: Token) -> Result<ParsedDuration, ParseError> {
        self.advance();
        self.expect(TokenKind::LeftParen, "", "")?;
        let close = self.expect(TokenKind::RightParen, "", "")?;
        let span = token.span.to(close.span);
        self.experimental_duration(span)?;
        Ok(ParsedDuration {
            expr: if token.kind == TokenKind::Step {
                DurationExpr::Step(span)
            } else {
                DurationExpr::Range(span)
            },
            depth: 1,
        })
    }

    fn parse_min_or_max(&mut self, token: Token) -> Result<ParsedDuration, ParseError> {
        self.advance();
        self.expect(TokenKind::LeftParen, "", "")?;
        let a = self.parse_duration_expr("", "")?;
        self.expect(TokenKind::Comma, "", "")?;
        let b = self.parse_duration_expr("", "")?;
        self.finish_min_or_max(token, a, b)
    }

    fn finish_min_or_max(
        &mut self,
        token: Token,
        a: ParsedDuration,
        b: ParsedDuration,
    ) -> Result<ParsedDuration, ParseError> {
        let close = self.expect(TokenKind::RightParen, "", "")?;
        let span = token.span.to(close.span);
        self.experimental_duration(span)?;
        let depth = a.depth.max(b.depth) + 1;
        self.check_depth(depth, span)?;
        let (a, b) = (Box::new(a.expr), Box::new(b.expr));
        Ok(ParsedDuration {
            expr: if token.kind == TokenKind::MinOf {
                DurationExpr::MinOf(a, b, span)
            } else {
                DurationExpr::MaxOf(a, b, span)
            },
            depth,
        })
    }

    fn parse_duration_paren(&mut self, open: Token) -> Result<ParsedDuration, ParseError> {
        self.advance();
        let inner = self.parse_duration_expr("", "")?;
        self.finish_duration_paren(open, inner)
    }

    fn finish_duration_paren(
        &mut self,
        open: Token,
        inner: ParsedDuration,
    ) -> Result<ParsedDuration, ParseError> {
        let close = self.expect(TokenKind::RightParen, "", "")?;
        let span = open.span.to(close.span);
        match inner.expr {
            // `(5m)` is just `5m`, and `((e))` prints as `(e)`: Prometheus keeps one "wrapped"
            // flag, not a node per parenthesis.
            expr @ (DurationExpr::Number(_) | DurationExpr::Paren(..)) => Ok(ParsedDuration {
                expr,
                depth: inner.depth,
            }),
            expr => {
                self.experimental_duration(span)?;
                let depth = inner.depth + 1;
                self.check_depth(depth, span)?;
                Ok(ParsedDuration {
                    expr: DurationExpr::Paren(Box::new(expr), span),
                    depth,
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
