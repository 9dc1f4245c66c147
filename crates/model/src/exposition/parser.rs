//! The streaming parser for the text 0.0.4 and OpenMetrics 1.0 formats.
//!
//! Work is per line: find the next newline (memchr), parse the line into fields that borrow
//! from the input, and hand out an [`Entry`] that refers to the parser's reusable label
//! buffers. Nothing is allocated per sample unless a name or value contains escapes. Memory is
//! bounded by the longest line (label buffers) and, in strict mode, by the validator's
//! bookkeeping, which is linear in the number of families and series of the payload.
//!
//! The two formats share the tokenizer; they differ in whitespace (OpenMetrics allows exactly
//! one space between fields and none inside braces), comments (free-form in 0.0.4, only
//! `HELP`/`TYPE`/`UNIT`/`EOF` in OpenMetrics), numbers (see `float.rs`), timestamps
//! (integer milliseconds versus float seconds), exemplars and the `# EOF` terminator.

use super::float::{parse_openmetrics_number, parse_text_timestamp, parse_text_value};
use super::validate::Validator;
use super::{Entry, ExemplarRef, Format, LabelRef, MetricType, ParseError, SampleRef};
use std::borrow::Cow;

/// Where the parser is in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// `# EOF` was read (OpenMetrics).
    Eof,
    /// The end was reached or an error returned; `next_entry` yields nothing more.
    Done,
}

/// What a line turned out to be, before it becomes an [`Entry`].
enum LineKind<'a> {
    Skip,
    Help(Cow<'a, str>, Cow<'a, str>),
    Type(Cow<'a, str>, MetricType),
    Unit(Cow<'a, str>, Cow<'a, str>),
    Sample(SampleFields<'a>),
    Eof,
}

struct SampleFields<'a> {
    name: Cow<'a, str>,
    value: f64,
    timestamp: Option<i64>,
    /// OpenMetrics timestamp in seconds, kept for exact ordering checks.
    timestamp_secs: Option<f64>,
    exemplar: Option<(f64, Option<i64>)>,
}

/// Streaming parser over one payload. Use [`Parser::next_entry`] in a loop.
pub struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line_no: u32,
    format: Format,
    state: State,
    labels: Vec<LabelRef<'a>>,
    exemplar_labels: Vec<LabelRef<'a>>,
    validator: Option<Box<Validator>>,
}

impl<'a> Parser<'a> {
    /// A lenient parser (the scrape path): syntax is checked, OpenMetrics' semantic rules are not.
    /// Fails when the payload is not UTF-8.
    pub fn new(input: &'a [u8], format: Format) -> Result<Self, ParseError> {
        let src = std::str::from_utf8(input).map_err(|e| {
            let (line, column) = position_of(input, e.valid_up_to());
            ParseError {
                line,
                column,
                message: "invalid UTF-8".into(),
            }
        })?;
        Ok(Parser {
            src,
            pos: 0,
            line_no: 0,
            format,
            state: State::Running,
            labels: Vec::with_capacity(16),
            exemplar_labels: Vec::new(),
            validator: None,
        })
    }

    /// Turns on the format's semantic validation (OpenMetrics' rules; for 0.0.4, the
    /// metadata-ordering rules Prometheus' strict text parser applies).
    pub fn strict(mut self) -> Self {
        self.validator = Some(Box::new(Validator::new(self.format)));
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The 1-based number of the line the last entry came from.
    pub fn line(&self) -> u32 {
        self.line_no
    }

    /// The next entry, `None` at the end, or the first error (after which it yields `None`).
    #[allow(clippy::should_implement_trait)]
    pub fn next_entry(&mut self) -> Option<Result<Entry<'a, '_>, ParseError>> {
        loop {
            if self.state == State::Done {
                return None;
            }
            if self.pos >= self.src.len() {
                return self.at_end_of_input().map(Err);
            }
            if self.state == State::Eof {
                self.state = State::Done;
                self.line_no += 1;
                return Some(Err(self.error_at(1, "unexpected text after # EOF")));
            }
            let rest = &self.src[self.pos..];
            let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
                Some(p) => (&rest[..p], self.pos + p + 1),
                None => (rest, self.src.len()),
            };
            self.pos = next;
            self.line_no += 1;
            let kind = match self.parse_line(line) {
                Ok(k) => k,
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(e));
                }
            };
            if let Some(v) = self.validator.as_deref_mut() {
                let checked = match &kind {
                    LineKind::Help(n, _) => v.on_help(n),
                    LineKind::Type(n, t) => v.on_type(n, *t),
                    LineKind::Unit(n, u) => v.on_unit(n, u),
                    LineKind::Sample(s) => v.on_sample(
                        &s.name,
                        &self.labels,
                        s.value,
                        s.timestamp_secs.or(s.timestamp.map(|t| t as f64 / 1000.0)),
                        s.exemplar
                            .is_some()
                            .then_some(self.exemplar_labels.as_slice()),
                    ),
                    LineKind::Eof => v.finish(),
                    LineKind::Skip => Ok(()),
                };
                if let Err(msg) = checked {
                    self.state = State::Done;
                    return Some(Err(self.error_at(1, msg)));
                }
            }
            return Some(Ok(match kind {
                LineKind::Skip => continue,
                LineKind::Eof => {
                    self.state = State::Eof;
                    continue;
                }
                LineKind::Help(name, text) => Entry::Help { name, text },
                LineKind::Type(name, kind) => Entry::Type { name, kind },
                LineKind::Unit(name, unit) => Entry::Unit { name, unit },
                LineKind::Sample(s) => Entry::Sample(SampleRef {
                    name: s.name,
                    labels: &self.labels,
                    value: s.value,
                    timestamp: s.timestamp,
                    exemplar: s.exemplar.map(|(value, timestamp)| ExemplarRef {
                        labels: &self.exemplar_labels,
                        value,
                        timestamp,
                    }),
                }),
            }));
        }
    }

    /// End of input: fine for 0.0.4 (after the validator's last checks) and after OpenMetrics'
    /// `# EOF`; an error for OpenMetrics without it.
    fn at_end_of_input(&mut self) -> Option<ParseError> {
        let was = self.state;
        self.state = State::Done;
        match (was, self.format) {
            (State::Running, Format::OpenMetrics) => {
                self.line_no += 1;
                Some(self.error_at(1, "expected \"# EOF\" at the end of the input"))
            }
            (State::Running, Format::Text) => {
                let v = self.validator.as_deref_mut()?;
                v.finish().err().map(|msg| self.error_at(1, msg))
            }
            _ => None,
        }
    }

    fn error_at(&self, column: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line_no.max(1),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message: msg.into(),
        }
    }

    fn parse_line(&mut self, line: &'a str) -> Result<LineKind<'a>, ParseError> {
        let line = match self.format {
            // Be forgiving about CRLF line ends in the classic format.
            Format::Text => line.strip_suffix('\r').unwrap_or(line),
            Format::OpenMetrics => line,
        };
        let mut c = Cursor {
            s: line,
            i: 0,
            line: self.line_no,
        };
        match (line.as_bytes().first(), self.format) {
            (None, Format::Text) => Ok(LineKind::Skip),
            (None, Format::OpenMetrics) => Err(c.err("unexpected blank line")),
            (Some(b'#'), Format::Text) => parse_text_comment(&mut c),
            (Some(b'#'), Format::OpenMetrics) => parse_om_comment(&mut c),
            _ => {
                let fields = self.parse_sample(&mut c)?;
                Ok(LineKind::Sample(fields))
            }
        }
    }

    fn parse_sample(&mut self, c: &mut Cursor<'a>) -> Result<SampleFields<'a>, ParseError> {
        let om = self.format == Format::OpenMetrics;
        self.labels.clear();
        let mut name = if c.peek() == Some(b'{') {
            None
        } else {
            let n = c.take_metric_name();
            if n.is_empty() {
                return Err(c.err_expected("metric name"));
            }
            Some(Cow::Borrowed(n))
        };
        if c.peek() == Some(b'{') {
            let quoted_name = parse_label_set(c, &mut self.labels, self.format, name.is_none())?;
            if let Some(q) = quoted_name {
                name = Some(q);
            }
        }
        let Some(name) = name else {
            return Err(c.err("metric name missing"));
        };
        check_duplicate_labels(&self.labels)
            .map_err(|n| c.err(format!("duplicate label name {n:?}")))?;

        // Value.
        if om {
            c.expect_byte(b' ', "space before the value")?;
        } else if !c.skip_blanks() {
            return Err(c.err_expected("whitespace before the value"));
        }
        let value_start = c.i;
        let token = c.take_token(om);
        if token.is_empty() {
            return Err(c.err_expected("value"));
        }
        let value = if om {
            parse_openmetrics_number(token)
        } else {
            parse_text_value(token)
        }
        .ok_or_else(|| c.err_at(value_start, format!("invalid value {token:?}")))?;

        let mut fields = SampleFields {
            name,
            value,
            timestamp: None,
            timestamp_secs: None,
            exemplar: None,
        };
        if om {
            self.parse_om_sample_tail(c, &mut fields)?;
        } else {
            c.skip_blanks();
            if !c.at_end() {
                let ts_start = c.i;
                let token = c.take_token(false);
                fields.timestamp =
                    Some(parse_text_timestamp(token).ok_or_else(|| {
                        c.err_at(ts_start, format!("invalid timestamp {token:?}"))
                    })?);
                c.skip_blanks();
                if !c.at_end() {
                    return Err(c.err_expected("end of line after the timestamp"));
                }
            }
        }
        Ok(fields)
    }

    /// OpenMetrics after the value: `[" " timestamp] [" # " exemplar]`, single spaces only.
    fn parse_om_sample_tail(
        &mut self,
        c: &mut Cursor<'a>,
        fields: &mut SampleFields<'a>,
    ) -> Result<(), ParseError> {
        if c.at_end() {
            return Ok(());
        }
        c.expect_byte(b' ', "space or end of line after the value")?;
        if c.peek() != Some(b'#') {
            let ts_start = c.i;
            let token = c.take_token(true);
            let secs = parse_om_timestamp(token)
                .ok_or_else(|| c.err_at(ts_start, format!("invalid timestamp {token:?}")))?;
            fields.timestamp_secs = Some(secs);
            fields.timestamp = Some(secs_to_ms(secs));
            if c.at_end() {
                return Ok(());
            }
            c.expect_byte(b' ', "space or end of line after the timestamp")?;
        }
        // Exemplar: "# " "{" labels "}" " " value [" " timestamp]
        c.expect_byte(b'#', "\"#\" starting an exemplar")?;
        c.expect_byte(b' ', "space after \"#\"")?;
        if c.peek() != Some(b'{') {
            return Err(c.err_expected("\"{\" starting the exemplar's labels"));
        }
        self.exemplar_labels.clear();
        parse_label_set(c, &mut self.exemplar_labels, Format::OpenMetrics, false)?;
        check_duplicate_labels(&self.exemplar_labels)
            .map_err(|n| c.err(format!("duplicate exemplar label name {n:?}")))?;
        c.expect_byte(b' ', "space before the exemplar value")?;
        let v_start = c.i;
        let token = c.take_token(true);
        let value = parse_openmetrics_number(token)
            .ok_or_else(|| c.err_at(v_start, format!("invalid exemplar value {token:?}")))?;
        let mut ts = None;
        if !c.at_end() {
            c.expect_byte(b' ', "space or end of line after the exemplar value")?;
            let ts_start = c.i;
            let token = c.take_token(true);
            let secs = parse_om_timestamp(token).ok_or_else(|| {
                c.err_at(ts_start, format!("invalid exemplar timestamp {token:?}"))
            })?;
            ts = Some(secs_to_ms(secs));
            if !c.at_end() {
                return Err(c.err_expected("end of line after the exemplar"));
            }
        }
        fields.exemplar = Some((value, ts));
        Ok(())
    }
}

/// OpenMetrics timestamps are finite realnumbers (seconds).
fn parse_om_timestamp(s: &str) -> Option<f64> {
    parse_openmetrics_number(s).filter(|v| v.is_finite())
}

fn secs_to_ms(secs: f64) -> i64 {
    // `as` saturates; timestamps beyond ±292 million years are clamped, not wrapped.
    (secs * 1000.0).round() as i64
}

/// A 0.0.4 comment line: `# HELP name text`, `# TYPE name type`, or anything else (ignored).
fn parse_text_comment<'a>(c: &mut Cursor<'a>) -> Result<LineKind<'a>, ParseError> {
    c.i = 1;
    c.skip_blanks();
    let word = c.take_while(|b| b.is_ascii_alphabetic());
    let is_help = word == "HELP";
    if !(is_help || word == "TYPE") || !c.skip_blanks() {
        return Ok(LineKind::Skip);
    }
    let name = take_name(c, true)?.ok_or_else(|| c.err_expected("metric name"))?;
    if is_help {
        let text = if c.skip_blanks() {
            unescape_help(&c.s[c.i..], false)
        } else if c.at_end() {
            Cow::Borrowed("")
        } else {
            return Err(c.err_expected("whitespace after the metric name"));
        };
        return Ok(LineKind::Help(name, text));
    }
    if !c.skip_blanks() {
        return Err(c.err_expected("metric type"));
    }
    let start = c.i;
    let word = c.take_while(|b| !b.is_ascii_whitespace());
    let kind = MetricType::parse(word, Format::Text)
        .ok_or_else(|| c.err_at(start, format!("invalid metric type {word:?}")))?;
    c.skip_blanks();
    if !c.at_end() {
        return Err(c.err_expected("end of line after the metric type"));
    }
    Ok(LineKind::Type(name, kind))
}

/// An OpenMetrics `#` line: exactly `# EOF`, `# HELP`, `# TYPE` or `# UNIT`.
fn parse_om_comment<'a>(c: &mut Cursor<'a>) -> Result<LineKind<'a>, ParseError> {
    if c.s == "# EOF" {
        return Ok(LineKind::Eof);
    }
    let rest = c.s.strip_prefix("# ").unwrap_or("");
    let keyword = rest.get(..4).unwrap_or("");
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Err(c.err("expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\""));
    }
    c.i = 6;
    c.expect_byte(b' ', "space after the keyword")?;
    let name = take_name(c, false)?.ok_or_else(|| c.err_expected("metric name"))?;
    c.expect_byte(b' ', "space after the metric name")?;
    let rest = &c.s[c.i..];
    match keyword {
        "HELP" => Ok(LineKind::Help(name, unescape_help(rest, true))),
        "TYPE" => {
            let kind = MetricType::parse(rest, Format::OpenMetrics)
                .ok_or_else(|| c.err(format!("invalid metric type {rest:?}")))?;
            Ok(LineKind::Type(name, kind))
        }
        _ => {
            if !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            {
                return Err(c.err(format!("invalid unit {rest:?}")));
            }
            Ok(LineKind::Unit(name, Cow::Borrowed(rest)))
        }
    }
}

/// A metric name in a `#` line: legacy characters, or a quoted string (Prometheus 3).
fn take_name<'a>(
    c: &mut Cursor<'a>,
    text_format: bool,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    if c.peek() == Some(b'"') {
        let n = c.take_quoted(text_format)?;
        if n.is_empty() {
            return Err(c.err("empty metric name"));
        }
        return Ok(Some(n));
    }
    let n = c.take_metric_name();
    Ok((!n.is_empty()).then_some(Cow::Borrowed(n)))
}

/// Parses `{...}` into `out`. When `allow_metric_name`, a first quoted item without `=` is the
/// metric name (Prometheus 3 syntax `{"my.metric", a="b"}`), returned.
fn parse_label_set<'a>(
    c: &mut Cursor<'a>,
    out: &mut Vec<LabelRef<'a>>,
    format: Format,
    allow_metric_name: bool,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    let text = format == Format::Text;
    c.i += 1; // '{'
    let mut metric_name = None;
    let mut first = true;
    loop {
        if text {
            c.skip_blanks();
        }
        if c.peek() == Some(b'}') {
            // A trailing comma is tolerated in 0.0.4 only; "{}" is fine in both.
            if !first && !text {
                return Err(c.err_expected("label name after \",\""));
            }
            c.i += 1;
            return Ok(metric_name);
        }
        let name_start = c.i;
        let name: Cow<'a, str> = if c.peek() == Some(b'"') {
            let q = c.take_quoted(text)?;
            if text {
                c.skip_blanks();
            }
            if allow_metric_name && first && matches!(c.peek(), Some(b',' | b'}')) {
                if q.is_empty() {
                    return Err(c.err_at(name_start, "empty metric name"));
                }
                metric_name = Some(q);
                first = false;
                if c.peek() == Some(b',') {
                    c.i += 1;
                }
                continue;
            }
            if q.is_empty() {
                return Err(c.err_at(name_start, "empty label name"));
            }
            q
        } else {
            let n = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if n.is_empty() || n.as_bytes()[0].is_ascii_digit() {
                c.i = name_start;
                return Err(c.err_expected("label name"));
            }
            Cow::Borrowed(n)
        };
        if text {
            c.skip_blanks();
        }
        c.expect_byte(b'=', "\"=\" after the label name")?;
        if text {
            c.skip_blanks();
        }
        if c.peek() != Some(b'"') {
            return Err(c.err_expected("quoted label value"));
        }
        let value = c.take_quoted(text)?;
        out.push(LabelRef { name, value });
        first = false;
        if text {
            c.skip_blanks();
        }
        match c.peek() {
            Some(b',') => {
                c.i += 1;
            }
            Some(b'}') => {
                c.i += 1;
                return Ok(metric_name);
            }
            _ => return Err(c.err_expected("\",\" or \"}\" after the label value")),
        }
    }
}

/// Returns the first repeated label name, if any.
fn check_duplicate_labels<'b>(labels: &'b [LabelRef<'_>]) -> Result<(), &'b str> {
    if labels.len() <= 16 {
        for (i, a) in labels.iter().enumerate() {
            if labels[i + 1..].iter().any(|b| b.name == a.name) {
                return Err(&a.name);
            }
        }
        return Ok(());
    }
    let mut names: Vec<&str> = labels.iter().map(|l| &*l.name).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(w[0]),
        None => Ok(()),
    }
}

/// Resolves `\\` and `\n` in a HELP text, and with `quotes` (OpenMetrics, which escapes HELP
/// like label values) `\"`; other escapes stay as written.
fn unescape_help(s: &str, quotes: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A position within one line.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
    line: u32,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn err_at(&self, i: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: u32::try_from(i + 1).unwrap_or(u32::MAX),
            message: msg.into(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        self.err_at(self.i, msg)
    }

    fn err_expected(&self, what: &str) -> ParseError {
        let found = match self.s[self.i..].chars().next() {
            None => "end of line".to_string(),
            Some(ch) => format!("{ch:?}"),
        };
        self.err(format!("expected {what}, found {found}"))
    }

    fn expect_byte(&mut self, b: u8, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err_expected(what))
        }
    }

    /// Skips spaces and tabs; true when at least one was skipped.
    fn skip_blanks(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        let b = self.s.as_bytes();
        while self.i < b.len() && f(b[self.i]) {
            self.i += 1;
        }
        // Only ASCII bytes are accepted by every caller's predicate, so this is a char boundary.
        &self.s[start..self.i]
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or empty when the next byte cannot start a name.
    fn take_metric_name(&mut self) -> &'a str {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            }
            _ => "",
        }
    }

    /// A field up to the next space (OpenMetrics) or space/tab (0.0.4), or the end of line.
    fn take_token(&mut self, om: bool) -> &'a str {
        let start = self.i;
        let rest = &self.s.as_bytes()[start..];
        let len = if om {
            memchr::memchr(b' ', rest)
        } else {
            memchr::memchr2(b' ', b'\t', rest)
        }
        .unwrap_or(rest.len());
        self.i += len;
        &self.s[start..self.i]
    }

    /// A double-quoted string with `\\`, `\"` and `\n` resolved (other escapes are kept as
    /// written, as Prometheus does).
    fn take_quoted(&mut self, _text: bool) -> Result<Cow<'a, str>, ParseError> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        let b = self.s.as_bytes();
        let mut owned: Option<String> = None;
        let mut seg = start;
        loop {
            let Some(off) = memchr::memchr2(b'"', b'\\', &b[self.i..]) else {
                return Err(self.err_at(open, "unterminated quoted string"));
            };
            self.i += off;
            if b[self.i] == b'"' {
                let out = match owned {
                    None => Cow::Borrowed(&self.s[start..self.i]),
                    Some(mut o) => {
                        o.push_str(&self.s[seg..self.i]);
                        Cow::Owned(o)
                    }
                };
                self.i += 1;
                return Ok(out);
            }
            // Backslash.
            let o = owned.get_or_insert_with(String::new);
            o.push_str(&self.s[seg..self.i]);
            match b.get(self.i + 1) {
                Some(b'\\') => o.push('\\'),
                Some(b'"') => o.push('"'),
                Some(b'n') => o.push('\n'),
                Some(_) => {
                    // Keep the backslash; the next character is copied with the next segment.
                    o.push('\\');
                    self.i += 1;
                    seg = self.i;
                    continue;
                }
                None => return Err(self.err_at(open, "unterminated quoted string")),
            }
            self.i += 2;
            seg = self.i;
        }
    }
}

/// 1-based line and column of a byte offset.
fn position_of(input: &[u8], offset: usize) -> (u32, u32) {
    let before = &input[..offset.min(input.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(offset - line_start + 1).unwrap_or(u32::MAX),
    )
}
