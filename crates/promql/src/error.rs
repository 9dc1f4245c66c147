//! Parse errors in Prometheus' form: `line:column: parse error: message`, with 1-based line and
//! byte column of where the problem starts.

use crate::ast::Span;

/// A query that does not parse or does not type-check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: parse error: {message}")]
pub struct ParseError {
    /// What is wrong, without the position (`unexpected end of input`).
    pub message: String,
    /// The part of the query the error is about.
    pub span: Span,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based byte column of `span.start` within its line.
    pub column: usize,
}

impl ParseError {
    /// An error about `span` of `input`.
    pub fn new(input: &str, span: Span, message: impl Into<String>) -> Self {
        let start = span.start.min(input.len());
        let before = &input.as_bytes()[..start];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        ParseError {
            message: message.into(),
            span,
            line,
            column: start - line_start + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let e = ParseError::new("foo bar", Span::new(4, 7), "unexpected identifier \"bar\"");
        assert_eq!(
            e.to_string(),
            "1:5: parse error: unexpected identifier \"bar\""
        );
        let e = ParseError::new("foo +\n  bar baz", Span::new(12, 15), "x");
        assert_eq!((e.line, e.column), (2, 7));
    }
}
