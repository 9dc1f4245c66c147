//! The PromQL lexer: turns a query into tokens with byte spans.
//!
//! It follows the Prometheus lexer's modes and rules, because they decide what a query means:
//! - Inside `{...}` every word is a plain identifier (label names are never keywords), and
//!   `=~`, `!~` exist only there.
//! - Inside `[...]` a colon separates range and step; elsewhere it belongs to metric names
//!   (`job:rate5m`). A second `[` inside brackets is an error.
//! - Keywords are case-insensitive (`SUM`, `OFFSET`); `inf` and `nan` are numbers. `fill`,
//!   `fill_left` and `fill_right` are keywords only when a `(` follows, so they stay usable as
//!   metric names.
//! - A number directly followed by a unit letter is a duration (`5m`, `1h30m`, `10ms`).
//! - Parentheses are counted so that a stray `)` or a missing one is reported by the lexer.
//!
//! Comments (`# ...` to the end of the line) and whitespace produce no tokens. The first
//! lexical error ends the token list with an [`TokenKind::Error`] token; the parser reports it
//! when it gets there, so an earlier syntax error still wins.

use crate::ast::{AggregateOp, Span};

/// The kinds of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Eof,
    /// A lexical error; the message is in [`Lexed::error`].
    Error,
    /// A name without colons: metric, label or function name.
    Identifier,
    /// A name containing a colon (only valid as a metric name).
    MetricIdentifier,
    Number,
    Duration,
    String,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    Colon,
    /// `=` (a matcher operator inside braces; an error elsewhere).
    Assign,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    EqlRegex,
    NeqRegex,
    TrimUpper,
    TrimLower,
    At,
    And,
    Or,
    Unless,
    Atan2,
    Aggregator(AggregateOp),
    Bool,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Offset,
    Anchored,
    Smoothed,
    Fill,
    FillLeft,
    FillRight,
    Start,
    End,
    Step,
    Range,
    MinOf,
    MaxOf,
}

impl TokenKind {
    /// Words that are keywords, operators or aggregators: usable where a label name is
    /// expected, and most of them as metric names.
    pub(crate) fn is_word(self) -> bool {
        matches!(
            self,
            TokenKind::Identifier
                | TokenKind::MetricIdentifier
                | TokenKind::And
                | TokenKind::Or
                | TokenKind::Unless
                | TokenKind::Atan2
                | TokenKind::Aggregator(_)
                | TokenKind::Bool
                | TokenKind::By
                | TokenKind::Without
                | TokenKind::On
                | TokenKind::Ignoring
                | TokenKind::GroupLeft
                | TokenKind::GroupRight
                | TokenKind::Offset
                | TokenKind::Anchored
                | TokenKind::Smoothed
                | TokenKind::Fill
                | TokenKind::FillLeft
                | TokenKind::FillRight
                | TokenKind::Start
                | TokenKind::End
                | TokenKind::Step
                | TokenKind::Range
                | TokenKind::MinOf
                | TokenKind::MaxOf
        )
    }

    fn is_operator(self) -> bool {
        matches!(
            self,
            TokenKind::Add
                | TokenKind::Sub
                | TokenKind::Mul
                | TokenKind::Div
                | TokenKind::Mod
                | TokenKind::Pow
                | TokenKind::Eqlc
                | TokenKind::Neq
                | TokenKind::Lss
                | TokenKind::Lte
                | TokenKind::Gtr
                | TokenKind::Gte
                | TokenKind::EqlRegex
                | TokenKind::NeqRegex
                | TokenKind::TrimUpper
                | TokenKind::TrimLower
                | TokenKind::At
                | TokenKind::And
                | TokenKind::Or
                | TokenKind::Unless
                | TokenKind::Atan2
        )
    }

    fn is_keyword(self) -> bool {
        matches!(
            self,
            TokenKind::Bool
                | TokenKind::By
                | TokenKind::Without
                | TokenKind::On
                | TokenKind::Ignoring
                | TokenKind::GroupLeft
                | TokenKind::GroupRight
                | TokenKind::Offset
                | TokenKind::Anchored
                | TokenKind::Smoothed
                | TokenKind::Fill
                | TokenKind::FillLeft
                | TokenKind::FillRight
        )
    }
}

/// One token: its kind and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// The lexer's output: the tokens, ending with `Eof` or `Error`.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    /// The message of the final `Error` token, if any.
    pub error: Option<String>,
}

/// How a token is described in "unexpected ..." messages, following Prometheus' wording:
/// `identifier "foo"`, `number "1"`, `<op:+>`, `<aggr:sum>`, `<by>`, `"("`, `end of input`.
pub(crate) fn describe(token: &Token, input: &str) -> String {
    let text = input.get(token.span.start..token.span.end).unwrap_or("");
    let quoted = |s: &str| {
        if s.chars().count() > 10 {
            let head: String = s.chars().take(10).collect();
            format!("{}...", go_quote(&head))
        } else {
            go_quote(s)
        }
    };
    match token.kind {
        TokenKind::Eof => "end of input".to_string(),
        TokenKind::Error => "error".to_string(),
        TokenKind::Identifier => format!("identifier {}", go_quote(text)),
        TokenKind::MetricIdentifier => format!("metric identifier {}", go_quote(text)),
        TokenKind::Number => format!("number {}", quoted(text)),
        TokenKind::Duration => format!("duration {}", quoted(text)),
        TokenKind::String => format!("string {}", quoted(text)),
        TokenKind::Aggregator(_) => format!("<aggr:{text}>"),
        k if k.is_operator() => format!("<op:{text}>"),
        k if k.is_keyword() => format!("<{text}>"),
        _ => go_quote(text),
    }
}

/// Quotes like Go's `%q` for the plain texts that appear in messages.
pub(crate) fn go_quote(s: &str) -> String {
    crate::strings::quote(s.as_bytes())
}

/// Splits `input` into tokens.
pub(crate) fn lex(input: &str) -> Lexed {
    let mut lexer = Lexer {
        input,
        bytes: input.as_bytes(),
        pos: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        tokens: Vec::new(),
    };
    let error = lexer.run().err();
    Lexed {
        tokens: lexer.tokens,
        error,
    }
}

struct Lexer<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    paren_depth: usize,
    brace_open: bool,
    bracket_open: bool,
    tokens: Vec<Token>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_alpha(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_alphanumeric(b: u8) -> bool {
    is_alpha(b) || b.is_ascii_digit()
}

/// The keyword a (lower-cased) word stands for.
fn keyword(word: &str) -> Option<TokenKind> {
    if let Some(op) = AggregateOp::from_name(word) {
        return Some(TokenKind::Aggregator(op));
    }
    Some(match word {
        "and" => TokenKind::And,
        "or" => TokenKind::Or,
        "unless" => TokenKind::Unless,
        "atan2" => TokenKind::Atan2,
        "offset" => TokenKind::Offset,
        "by" => TokenKind::By,
        "without" => TokenKind::Without,
        "on" => TokenKind::On,
        "ignoring" => TokenKind::Ignoring,
        "group_left" => TokenKind::GroupLeft,
        "group_right" => TokenKind::GroupRight,
        "bool" => TokenKind::Bool,
        "anchored" => TokenKind::Anchored,
        "smoothed" => TokenKind::Smoothed,
        "fill" => TokenKind::Fill,
        "fill_left" => TokenKind::FillLeft,
        "fill_right" => TokenKind::FillRight,
        "start" => TokenKind::Start,
        "end" => TokenKind::End,
        "step" => TokenKind::Step,
        "range" => TokenKind::Range,
        "min_of" => TokenKind::MinOf,
        "max_of" => TokenKind::MaxOf,
        "inf" | "nan" => TokenKind::Number,
        _ => return None,
    })
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn emit(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
        });
    }

    /// Ends the token list with an error token at `start`.
    fn fail(&mut self, start: usize, message: String) -> Result<(), String> {
        self.tokens.push(Token {
            kind: TokenKind::Error,
            span: Span::new(start, self.input.len()),
        });
        Err(message)
    }

    /// The character at the current position, for error messages.
    fn char_at(&self, pos: usize) -> char {
        self.input
            .get(pos..)
            .and_then(|s| s.chars().next())
            .unwrap_or('\u{fffd}')
    }

    fn run(&mut self) -> Result<(), String> {
        loop {
            while self.peek().is_some_and(is_space) {
                self.pos += 1;
            }
            let start = self.pos;
            let Some(b) = self.peek() else {
                if self.brace_open {
                    return self.fail(start, "unexpected end of input inside braces".into());
                }
                if self.paren_depth != 0 {
                    return self.fail(start, "unclosed left parenthesis".into());
                }
                if self.bracket_open {
                    return self.fail(start, "unclosed left bracket".into());
                }
                self.emit(TokenKind::Eof, start);
                return Ok(());
            };
            if b == b'#' {
                while self.peek().is_some_and(|c| c != b'\n' && c != b'\r') {
                    self.pos += 1;
                }
                continue;
            }
            if self.brace_open {
                self.inside_braces(b, start)?;
            } else {
                self.statement(b, start)?;
            }
        }
    }

    fn statement(&mut self, b: u8, start: usize) -> Result<(), String> {
        let single = |kind| (kind, 1usize);
        let (kind, len) = match b {
            b',' => single(TokenKind::Comma),
            b'*' => single(TokenKind::Mul),
            b'/' => single(TokenKind::Div),
            b'%' => single(TokenKind::Mod),
            b'+' => single(TokenKind::Add),
            b'-' => single(TokenKind::Sub),
            b'^' => single(TokenKind::Pow),
            b'@' => single(TokenKind::At),
            b'=' => match self.peek_at(1) {
                Some(b'=') => (TokenKind::Eqlc, 2),
                Some(b'~') => {
                    return self.fail(start, "unexpected character after '=': '~'".into());
                }
                _ => single(TokenKind::Assign),
            },
            b'!' => match self.peek_at(1) {
                Some(b'=') => (TokenKind::Neq, 2),
                _ => {
                    let c = self.char_at(start + 1);
                    return self.fail(
                        start,
                        format!("unexpected character after '!': {}", quote_rune(c)),
                    );
                }
            },
            b'<' => match self.peek_at(1) {
                Some(b'=') => (TokenKind::Lte, 2),
                Some(b'/') => (TokenKind::TrimUpper, 2),
                _ => single(TokenKind::Lss),
            },
            b'>' => match self.peek_at(1) {
                Some(b'=') => (TokenKind::Gte, 2),
                Some(b'/') => (TokenKind::TrimLower, 2),
                _ => single(TokenKind::Gtr),
            },
            b'(' => {
                self.paren_depth += 1;
                single(TokenKind::LeftParen)
            }
            b')' => {
                if self.paren_depth == 0 {
                    return self.fail(start, "unexpected right parenthesis ')'".into());
                }
                self.paren_depth -= 1;
                single(TokenKind::RightParen)
            }
            b'{' => {
                self.brace_open = true;
                single(TokenKind::LeftBrace)
            }
            b'[' => {
                if self.bracket_open {
                    return self.fail(start, "unexpected left bracket '['".into());
                }
                self.bracket_open = true;
                single(TokenKind::LeftBracket)
            }
            b']' => {
                if !self.bracket_open {
                    return self.fail(start, "unexpected right bracket ']'".into());
                }
                self.bracket_open = false;
                single(TokenKind::RightBracket)
            }
            b':' if self.bracket_open => single(TokenKind::Colon),
            b'"' | b'\'' => return self.string(b, start),
            b'`' => return self.raw_string(start),
            b'.' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                return self.number_or_duration(start);
            }
            b if b.is_ascii_digit() => return self.number_or_duration(start),
            b if is_alpha(b) || b == b':' => return self.word(start),
            _ => {
                let c = self.char_at(start);
                return self.fail(start, format!("unexpected character: {}", quote_rune(c)));
            }
        };
        self.pos += len;
        self.emit(kind, start);
        Ok(())
    }

    fn inside_braces(&mut self, b: u8, start: usize) -> Result<(), String> {
        let (kind, len) = match b {
            b',' => (TokenKind::Comma, 1),
            b'}' => {
                self.brace_open = false;
                (TokenKind::RightBrace, 1)
            }
            b'=' => match self.peek_at(1) {
                Some(b'~') => (TokenKind::EqlRegex, 2),
                _ => (TokenKind::Assign, 1),
            },
            b'!' => match self.peek_at(1) {
                Some(b'~') => (TokenKind::NeqRegex, 2),
                Some(b'=') => (TokenKind::Neq, 2),
                _ => {
                    let c = self.char_at(start + 1);
                    return self.fail(
                        start,
                        format!(
                            "unexpected character after '!' inside braces: {}",
                            quote_rune(c)
                        ),
                    );
                }
            },
            b'{' => return self.fail(start, "unexpected left brace '{'".into()),
            b'"' | b'\'' => return self.string(b, start),
            b'`' => return self.raw_string(start),
            b if is_alpha(b) => {
                while self.peek().is_some_and(is_alphanumeric) {
                    self.pos += 1;
                }
                self.emit(TokenKind::Identifier, start);
                return Ok(());
            }
            _ => {
                let c = self.char_at(start);
                return self.fail(
                    start,
                    format!("unexpected character inside braces: {}", quote_rune(c)),
                );
            }
        };
        self.pos += len;
        self.emit(kind, start);
        Ok(())
    }

    /// A name, keyword, or `Inf`/`NaN`.
    fn word(&mut self, start: usize) -> Result<(), String> {
        // Inside brackets a colon is the range/step separator, not part of a name.
        let colons = !self.bracket_open;
        while self
            .peek()
            .is_some_and(|c| is_alphanumeric(c) || (colons && c == b':'))
        {
            self.pos += 1;
        }
        let word = &self.input[start..self.pos];
        let kind = match keyword(&word.to_ascii_lowercase()) {
            Some(TokenKind::Fill | TokenKind::FillLeft | TokenKind::FillRight)
                if !self.followed_by_left_paren() =>
            {
                TokenKind::Identifier
            }
            Some(kind) => kind,
            None if word.contains(':') => TokenKind::MetricIdentifier,
            None => TokenKind::Identifier,
        };
        self.emit(kind, start);
        Ok(())
    }

    fn followed_by_left_paren(&self) -> bool {
        self.bytes[self.pos..]
            .iter()
            .find(|b| !is_space(**b))
            .is_some_and(|b| *b == b'(')
    }

    fn string(&mut self, quote: u8, start: usize) -> Result<(), String> {
        self.pos += 1;
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return self.fail(start, "unterminated quoted string".into());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    if let Err(message) = self.escape(quote) {
                        return self.fail(start, message);
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    self.emit(TokenKind::String, start);
                    return Ok(());
                }
                Some(_) => self.pos += self.char_at(self.pos).len_utf8(),
            }
        }
    }

    /// Validates the escape sequence after a backslash (Go's rules).
    fn escape(&mut self, quote: u8) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err("escape sequence not terminated".into());
        };
        let (digits, base, max) = match c {
            b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'\\' => {
                self.pos += 1;
                return Ok(());
            }
            c if c == quote => {
                self.pos += 1;
                return Ok(());
            }
            b'0'..=b'7' => (3, 8, 255),
            b'x' => {
                self.pos += 1;
                (2, 16, 255)
            }
            b'u' => {
                self.pos += 1;
                (4, 16, 0x10ffff)
            }
            b'U' => {
                self.pos += 1;
                (8, 16, 0x10ffff)
            }
            _ => {
                let ch = self.char_at(self.pos);
                return Err(format!("unknown escape sequence {}", go_rune_u(ch)));
            }
        };
        let mut value: u32 = 0;
        for _ in 0..digits {
            let Some(d) = self.peek() else {
                return Err("escape sequence not terminated".into());
            };
            let digit = (d as char).to_digit(base);
            match digit {
                Some(digit) if d.is_ascii() => {
                    value = value * base + digit;
                    self.pos += 1;
                }
                _ => {
                    let ch = self.char_at(self.pos);
                    return Err(format!(
                        "illegal character {} in escape sequence",
                        go_rune_u(ch)
                    ));
                }
            }
        }
        if value > max || (0xd800..0xe000).contains(&value) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn raw_string(&mut self, start: usize) -> Result<(), String> {
        self.pos += 1;
        match self.bytes[self.pos..].iter().position(|b| *b == b'`') {
            Some(offset) => {
                self.pos += offset + 1;
                self.emit(TokenKind::String, start);
                Ok(())
            }
            None => self.fail(start, "unterminated raw string".into()),
        }
    }

    fn number_or_duration(&mut self, start: usize) -> Result<(), String> {
        if self.scan_number() {
            self.emit(TokenKind::Number, start);
            return Ok(());
        }
        if self.scan_remaining_duration() {
            self.emit(TokenKind::Duration, start);
            return Ok(());
        }
        let end = (self.pos + 1).min(self.input.len());
        let text = self.input.get(start..end).unwrap_or(&self.input[start..]);
        self.fail(
            start,
            format!("bad number or duration syntax: {}", go_quote(text)),
        )
    }

    fn accept(&mut self, valid: &[u8]) -> bool {
        match self.peek() {
            Some(c) if valid.contains(&c) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Scans a number: decimal or hex digits with `_` separators, a fraction and an exponent.
    /// Returns false (leaving the position after what it read) when a unit letter or another
    /// character that cannot end a number follows; the caller then tries a duration.
    fn scan_number(&mut self) -> bool {
        let initial = self.pos;
        const DECIMAL: &[u8] = b"0123456789";
        const HEX: &[u8] = b"0123456789abcdefABCDEF";
        let mut digits = DECIMAL;
        let is_hex = self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X'));
        if is_hex {
            self.pos += 2;
            self.accept(b"_");
            digits = HEX;
        }
        self.accept(b".");
        self.accept(digits);
        let mut seen_dot = false;
        let mut seen_exponent = false;
        while let Some(c) = self.peek() {
            let is_exponent = !is_hex && (c == b'e' || c == b'E');
            if !(digits.contains(&c) || c == b'.' || c == b'_' || is_exponent) {
                break;
            }
            if c == b'.' {
                self.pos += 1;
                if seen_dot || is_hex || self.accept(b"_.") {
                    return false;
                }
                seen_dot = true;
                continue;
            }
            if is_exponent {
                self.pos += 1;
                if seen_exponent {
                    return false;
                }
                seen_exponent = true;
                self.accept(b"+-");
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                digits = DECIMAL;
                continue;
            }
            if c == b'_' {
                self.pos += 1;
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            while self.peek().is_some_and(|c| digits.contains(&c)) {
                self.pos += 1;
            }
        }
        self.pos != initial && !self.peek().is_some_and(is_alphanumeric)
    }

    /// Continues a duration after its first number: a unit, then more number+unit pairs
    /// (`1h30m`). Bad unit orders are left to the duration parser.
    fn scan_remaining_duration(&mut self) -> bool {
        if !self.accept(b"smhdwy") {
            return false;
        }
        self.accept(b"s");
        while self.accept(b"0123456789") {
            while self.accept(b"0123456789") {}
            if !self.accept(b"smhdw") {
                return false;
            }
            self.accept(b"s");
        }
        !self.peek().is_some_and(is_alphanumeric)
    }
}

/// A rune in single quotes, like Go's `%q` of a rune.
fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\\' => "'\\\\'".to_string(),
        '\n' => "'\\n'".to_string(),
        '\t' => "'\\t'".to_string(),
        '\r' => "'\\r'".to_string(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

/// A rune as Go's `%#U`: `U+0071 'q'`.
fn go_rune_u(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{}'", c as u32, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        lex(input).tokens.iter().map(|t| t.kind).collect()
    }

    fn texts(input: &str) -> Vec<&str> {
        lex(input)
            .tokens
            .iter()
            .map(|t| &input[t.span.start..t.span.end])
            .collect()
    }

    #[test]
    fn numbers_and_durations() {
        use TokenKind::*;
        assert_eq!(
            kinds("1 0x1F 1e3 .5 5. 1_000 0x1_F"),
            [Number, Number, Number, Number, Number, Number, Number, Eof]
        );
        assert_eq!(
            kinds("5m 1h30m 10ms 1y2w3d4h5m6s7ms"),
            [Duration, Duration, Duration, Duration, Eof]
        );
        assert_eq!(kinds("Inf nan NaN"), [Number, Number, Number, Eof]);
        assert_eq!(
            lex("1abc").error.as_deref(),
            Some("bad number or duration syntax: \"1a\"")
        );
        assert!(lex("1__0").error.is_some());
        assert!(lex("5m5").error.is_some());
    }

    #[test]
    fn modes() {
        use TokenKind::*;
        // Keywords are plain identifiers inside braces.
        assert_eq!(
            kinds("sum{by=~\"x\"}"),
            [
                Aggregator(AggregateOp::Sum),
                LeftBrace,
                Identifier,
                EqlRegex,
                String,
                RightBrace,
                Eof
            ]
        );
        // A colon separates range and step only inside brackets.
        assert_eq!(
            kinds("a:b[5m:1m]"),
            [
                MetricIdentifier,
                LeftBracket,
                Duration,
                Colon,
                Duration,
                RightBracket,
                Eof
            ]
        );
        assert_eq!(texts("x[5m:]"), ["x", "[", "5m", ":", "]", ""]);
        assert_eq!(
            kinds("fill + fill(0)"),
            [Identifier, Add, Fill, LeftParen, Number, RightParen, Eof]
        );
        assert_eq!(
            kinds("a </ b >/ c"),
            [
                Identifier, TrimUpper, Identifier, TrimLower, Identifier, Eof
            ]
        );
        assert_eq!(
            kinds("STEP() OffSet"),
            [Step, LeftParen, RightParen, Offset, Eof]
        );
    }

    #[test]
    fn comments_and_errors() {
        use TokenKind::*;
        assert_eq!(
            kinds("foo # comment (\n+ 1"),
            [Identifier, Add, Number, Eof]
        );
        assert_eq!(
            lex("foo)").error.as_deref(),
            Some("unexpected right parenthesis ')'")
        );
        assert_eq!(
            lex("(foo").error.as_deref(),
            Some("unclosed left parenthesis")
        );
        assert_eq!(
            lex("foo[5m").error.as_deref(),
            Some("unclosed left bracket")
        );
        assert_eq!(
            lex("foo{a=\"b\"").error.as_deref(),
            Some("unexpected end of input inside braces")
        );
        assert_eq!(
            lex("\"\\q\"").error.as_deref(),
            Some("unknown escape sequence U+0071 'q'")
        );
        assert_eq!(
            lex("\"abc").error.as_deref(),
            Some("unterminated quoted string")
        );
        assert_eq!(
            lex("`abc").error.as_deref(),
            Some("unterminated raw string")
        );
        assert_eq!(
            lex("a $").error.as_deref(),
            Some("unexpected character: '$'")
        );
        assert_eq!(
            lex("x[1m[").error.as_deref(),
            Some("unexpected left bracket '['")
        );
    }
}
