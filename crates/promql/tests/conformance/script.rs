//! The PromQL test-script language (`shared/conformance/promql/FORMAT.md`, sections 1–4):
//! turns the text of a `*.test` file into [`Command`]s — `load`/`load_with_nhcb` blocks with
//! their expanded value sequences, `clear`, and `eval` commands with every expectation — and
//! reports malformed lines as [`ScriptError`]s instead of panicking.
//!
//! Nothing here evaluates anything; `conformance.rs` runs the commands.

use model::histogram::{CounterResetHint, FloatHistogram, Span};
use model::labels::Labels;
use regex::Regex;

/// A malformed line (1-based line number).
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// A parsed script: its commands in file order, and the lines that could not be parsed.
#[derive(Debug, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    pub errors: Vec<ScriptError>,
}

#[derive(Debug)]
pub enum Command {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

/// A `load` or `load_with_nhcb` block.
#[derive(Debug)]
pub struct Load {
    /// Milliseconds between consecutive values.
    pub interval: i64,
    /// `load_with_nhcb`: classic histograms are also stored as NHCB series.
    pub nhcb: bool,
    /// One entry per series; a series given twice keeps the later line.
    pub series: Vec<(Labels, Vec<SeqValue>)>,
    /// The block had `…@st` start-timestamp lines (which the runner ignores).
    pub has_start_timestamps: bool,
}

/// One position of a value sequence.
#[derive(Debug, Clone)]
pub enum SeqValue {
    /// `_`: no sample at this step.
    Omitted,
    /// A float, including the staleness marker for `stale`.
    Float(f64),
    Histogram(HistogramLiteral),
}

/// A `{{…}}` literal (or the result of `{{A}}+{{B}}xN` arithmetic).
#[derive(Debug, Clone)]
pub struct HistogramLiteral {
    pub h: FloatHistogram,
    /// `counter_reset_hint:` was written out (so an expectation compares the hint).
    pub hint_given: bool,
}

/// What an `eval` evaluates.
#[derive(Debug, Clone, Copy)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// `msg:` / `regex:` (or nothing) after `expect fail|warn|info`.
#[derive(Debug, Clone)]
pub enum TextMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl TextMatch {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(s) => s == text,
            TextMatch::Regex(r) => r.is_match(text),
        }
    }
}

impl std::fmt::Display for TextMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextMatch::Any => f.write_str("(any)"),
            TextMatch::Exact(s) => write!(f, "msg: {s}"),
            TextMatch::Regex(r) => write!(f, "regex: {}", r.as_str()),
        }
    }
}

/// The expectations about one annotation type (warnings or infos).
#[derive(Debug, Clone, Default)]
pub enum AnnotationExpect {
    /// No `expect` line of this type: annotations of the type are not checked.
    #[default]
    Unchecked,
    /// `expect no_warn` / `expect no_info`.
    Forbidden,
    /// `expect warn …` lines: at least one annotation, each line matches one, each annotation
    /// is matched by one.
    Expected(Vec<TextMatch>),
}

/// One expected series of an `eval`.
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// 1-based position among the eval's series lines (for `expect ordered`).
    pub pos: usize,
}

/// An `eval` command with everything its body says.
#[derive(Debug)]
pub struct Eval {
    /// 1-based line of the header.
    pub line: usize,
    pub expr: String,
    pub kind: EvalKind,
    pub fail: Option<TextMatch>,
    pub warn: AnnotationExpect,
    pub info: AnnotationExpect,
    pub ordered: bool,
    /// `expect range vector from s to e step d` (ms).
    pub range_vector: Option<(i64, i64, i64)>,
    /// `expect string "…"`.
    pub string: Option<String>,
    /// A bare-number line.
    pub scalar: Option<f64>,
    /// Expected series, unique by label set (a later line replaces an earlier one).
    pub series: Vec<ExpectedSeries>,
    /// The body mentions a native histogram literal.
    pub mentions_histograms: bool,
    /// Malformed body lines: the eval cannot be checked and counts as failed.
    pub errors: Vec<String>,
}

impl Eval {
    pub fn is_instant(&self) -> bool {
        matches!(self.kind, EvalKind::Instant { .. })
    }
}

/// Splits a file into commands. Never panics; bad lines end up in `errors`.
pub fn parse_script(text: &str) -> Script {
    let lines: Vec<&str> = text.split('\n').map(str::trim).collect();
    let blank = |l: &str| l.is_empty() || l.starts_with('#');
    let mut script = Script::default();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if blank(line) {
            i += 1;
            continue;
        }
        let word = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut body_end = i + 1;
        while body_end < lines.len() && !blank(lines[body_end]) {
            body_end += 1;
        }
        if word == "clear" {
            if line.split_whitespace().count() > 1 {
                script.errors.push(ScriptError {
                    line: i + 1,
                    message: format!("clear takes no arguments: {line:?}"),
                });
            }
            script.commands.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            if let Some(load) = parse_load(&lines, i, body_end, &mut script.errors) {
                script.commands.push(Command::Load(load));
            }
            i = body_end;
        } else if word.starts_with("eval") {
            let (eval, next) = parse_eval(&lines, i, body_end);
            match eval {
                Ok(eval) => script.commands.push(Command::Eval(Box::new(eval))),
                Err(message) => script.errors.push(ScriptError {
                    line: i + 1,
                    message,
                }),
            }
            i = next;
        } else {
            script.errors.push(ScriptError {
                line: i + 1,
                message: format!("unknown command {word:?}"),
            });
            // Skip the whole paragraph: whatever follows belongs to the bad command.
            i = body_end;
        }
    }
    script
}

/// Parses a `load` block (header at `lines[start]`, body up to `end`). Bad series lines are
/// reported and left out; a bad header drops the whole block.
fn parse_load(
    lines: &[&str],
    start: usize,
    end: usize,
    errors: &mut Vec<ScriptError>,
) -> Option<Load> {
    let header = lines[start];
    let mut err = |line: usize, message: String| errors.push(ScriptError { line, message });
    let (words, rest) = split_words(header, 1);
    let nhcb = match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("load") => false,
        Some("load_with_nhcb") => true,
        _ => {
            err(start + 1, format!("invalid load command: {header:?}"));
            return None;
        }
    };
    let interval = match parse_duration(rest) {
        Ok(d) if d > 0 => d,
        Ok(_) => {
            err(
                start + 1,
                format!("load interval must be positive: {header:?}"),
            );
            return None;
        }
        Err(e) => {
            err(start + 1, format!("invalid load interval: {e}"));
            return None;
        }
    };
    let mut load = Load {
        interval,
        nhcb,
        series: Vec::new(),
        has_start_timestamps: false,
    };
    // A start-timestamp line waiting for its series line: (line number, labels, positions).
    let mut pending_st: Option<(usize, Labels, usize)> = None;
    for (i, &line) in lines.iter().enumerate().take(end).skip(start + 1) {
        let parsed = parse_series_descriptor(line);
        let (labels, is_st, rest) = match parsed {
            Ok(p) => p,
            Err(e) => {
                err(i + 1, e);
                pending_st = None;
                continue;
            }
        };
        if is_st {
            load.has_start_timestamps = true;
            if let Some((l, _, _)) = pending_st {
                err(l, "start-timestamp line not followed by its series".into());
            }
            match count_start_timestamp_positions(rest) {
                Ok(n) => pending_st = Some((i + 1, labels, n)),
                Err(e) => err(i + 1, e),
            }
            continue;
        }
        let values = match parse_values(rest) {
            Ok(v) => v,
            Err(e) => {
                err(i + 1, e);
                pending_st = None;
                continue;
            }
        };
        if let Some((l, st_labels, n)) = pending_st.take() {
            if st_labels != labels {
                err(
                    l,
                    "start-timestamp line is not followed by the same series".into(),
                );
            } else if n != values.len() {
                err(
                    l,
                    format!(
                        "start-timestamp line has {n} positions, its series {}",
                        values.len()
                    ),
                );
            }
        }
        match load.series.iter_mut().find(|(l, _)| *l == labels) {
            Some(existing) => existing.1 = values,
            None => load.series.push((labels, values)),
        }
    }
    if let Some((l, _, _)) = pending_st {
        err(l, "start-timestamp line not followed by its series".into());
    }
    Some(load)
}

/// Parses an `eval` command. Returns the eval (possibly with body errors) and the index of the
/// line where the next command starts. `Err` only for a header that cannot be understood.
fn parse_eval(lines: &[&str], start: usize, body_end: usize) -> (Result<Eval, String>, usize) {
    let header = lines[start];
    let mut eval = match parse_eval_header(header, start + 1) {
        Ok(e) => e,
        Err(e) => return (Err(e), body_end),
    };
    let deprecated_fail = eval.fail.is_some();
    let mut fail_lines = usize::from(deprecated_fail);
    let mut pos = 0;
    let mut i = start + 1;
    while i < body_end {
        let line = lines[i];
        i += 1;
        let first = line.split_whitespace().next().unwrap_or_default();
        if deprecated_fail && first == "expected_fail_message" {
            let text = line["expected_fail_message".len()..].trim();
            eval.fail = Some(TextMatch::Exact(text.to_string()));
            break;
        }
        if deprecated_fail && first == "expected_fail_regexp" {
            let text = line["expected_fail_regexp".len()..].trim();
            match Regex::new(text) {
                Ok(r) => eval.fail = Some(TextMatch::Regex(r)),
                Err(e) => eval.errors.push(format!("line {}: invalid regex: {e}", i)),
            }
            break;
        }
        if first == "expect" {
            if let Err(e) = parse_expect_line(line, &mut eval, &mut fail_lines) {
                eval.errors.push(format!("line {i}: {e}"));
            }
            continue;
        }
        if let Some(v) = parse_go_number(line) {
            if eval.scalar.is_some() {
                eval.errors.push(format!("line {i}: second scalar line"));
            }
            eval.scalar = Some(v);
            break;
        }
        if line.contains("{{") {
            eval.mentions_histograms = true;
        }
        let parsed = parse_series_descriptor(line).and_then(|(labels, is_st, rest)| {
            if is_st {
                return Err("start timestamps are not allowed in expectations".into());
            }
            let values = parse_values(rest)?;
            if values.is_empty() {
                return Err("expected series without values".into());
            }
            Ok((labels, values))
        });
        match parsed {
            Ok((labels, values)) => {
                pos += 1;
                match eval.series.iter_mut().find(|s| s.labels == labels) {
                    Some(s) => {
                        s.values = values;
                        s.pos = pos;
                    }
                    None => eval.series.push(ExpectedSeries {
                        labels,
                        values,
                        pos,
                    }),
                }
            }
            Err(e) => eval.errors.push(format!("line {i}: {e}")),
        }
    }
    validate_eval(&mut eval, fail_lines);
    (Ok(eval), i)
}

/// Checks the combinations FORMAT.md 4.2 forbids.
fn validate_eval(eval: &mut Eval, fail_lines: usize) {
    if fail_lines > 1 {
        eval.errors.push("more than one expect fail".into());
    }
    if !eval.is_instant() {
        if eval.ordered {
            eval.errors
                .push("expect ordered is only valid for instant evals".into());
        }
        if eval.range_vector.is_some() {
            eval.errors
                .push("expect range vector is only valid for instant evals".into());
        }
        if eval.string.is_some() {
            eval.errors
                .push("expect string is only valid for instant evals".into());
        }
    }
    let multiple = eval.series.iter().find(|s| s.values.len() > 1);
    if let Some(s) = multiple.filter(|_| eval.is_instant() && eval.range_vector.is_none()) {
        let msg = format!(
            "expecting multiple values in instant evaluation not allowed ({})",
            s.labels
        );
        eval.errors.push(msg);
    }
    if eval.range_vector.is_some() && eval.ordered {
        eval.errors
            .push("expect ordered is not valid with expect range vector".into());
    }
}

fn parse_eval_header(header: &str, line: usize) -> Result<Eval, String> {
    let (words, _) = split_words(header, 2);
    let command = words
        .first()
        .map(|w| w.to_ascii_lowercase())
        .unwrap_or_default();
    let mode = words
        .get(1)
        .map(|w| w.to_ascii_lowercase())
        .unwrap_or_default();
    let mut eval = Eval {
        line,
        expr: String::new(),
        kind: EvalKind::Instant { at: 0 },
        fail: None,
        warn: AnnotationExpect::Unchecked,
        info: AnnotationExpect::Unchecked,
        ordered: false,
        range_vector: None,
        string: None,
        scalar: None,
        series: Vec::new(),
        mentions_histograms: false,
        errors: Vec::new(),
    };
    match command.as_str() {
        "eval" => {}
        "eval_fail" => eval.fail = Some(TextMatch::Any),
        "eval_warn" => eval.warn = AnnotationExpect::Expected(vec![TextMatch::Any]),
        "eval_info" => eval.info = AnnotationExpect::Expected(vec![TextMatch::Any]),
        "eval_ordered" => eval.ordered = true,
        _ => return Err(format!("invalid eval command {command:?}")),
    }
    match mode.as_str() {
        "instant" => {
            let (w, _) = split_words(header, 3);
            if w.get(2).is_some_and(|w| w.eq_ignore_ascii_case("at")) {
                let (w, rest) = split_words(header, 4);
                let at = w.get(3).ok_or("missing eval time")?;
                eval.kind = EvalKind::Instant {
                    at: parse_duration(at).map_err(|e| format!("invalid eval time: {e}"))?,
                };
                eval.expr = rest.to_string();
            } else {
                // `eval instant <expr>`: upstream's `at` clause is optional (time 0).
                eval.expr = split_words(header, 2).1.to_string();
            }
        }
        "range" => {
            if eval.ordered {
                return Err("eval_ordered is only valid for instant evals".into());
            }
            let (w, rest) = split_words(header, 8);
            let keyword = |i: usize, k: &str| w.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
            if w.len() < 8 || !keyword(2, "from") || !keyword(4, "to") || !keyword(6, "step") {
                return Err(format!("invalid range eval header: {header:?}"));
            }
            let start = parse_duration(w[3]).map_err(|e| format!("invalid start: {e}"))?;
            let end = parse_duration(w[5]).map_err(|e| format!("invalid end: {e}"))?;
            let step = parse_duration(w[7]).map_err(|e| format!("invalid step: {e}"))?;
            if end < start {
                return Err("invalid test definition, end timestamp is before start".into());
            }
            eval.kind = EvalKind::Range { start, end, step };
            eval.expr = rest.to_string();
        }
        _ => return Err(format!("invalid eval header: {header:?}")),
    }
    if eval.expr.is_empty() {
        return Err("eval without expression".into());
    }
    Ok(eval)
}

/// One `expect …` line.
fn parse_expect_line(line: &str, eval: &mut Eval, fail_lines: &mut usize) -> Result<(), String> {
    let (words, rest) = split_words(line, 2);
    let kind = words.get(1).copied().unwrap_or_default();
    let text_match = |rest: &str| -> Result<TextMatch, String> {
        if rest.is_empty() {
            Ok(TextMatch::Any)
        } else if let Some(t) = rest.strip_prefix("msg:") {
            Ok(TextMatch::Exact(t.trim().to_string()))
        } else if let Some(t) = rest.strip_prefix("regex:") {
            Regex::new(t.trim())
                .map(TextMatch::Regex)
                .map_err(|e| format!("invalid regex: {e}"))
        } else {
            Err(format!("invalid expect line {line:?}"))
        }
    };
    let add = |slot: &mut AnnotationExpect, m: TextMatch| -> Result<(), String> {
        match slot {
            AnnotationExpect::Forbidden => {
                Err("expect warn/info together with no_warn/no_info".into())
            }
            AnnotationExpect::Expected(v) => {
                v.push(m);
                Ok(())
            }
            AnnotationExpect::Unchecked => {
                *slot = AnnotationExpect::Expected(vec![m]);
                Ok(())
            }
        }
    };
    let forbid = |slot: &mut AnnotationExpect| -> Result<(), String> {
        match slot {
            AnnotationExpect::Expected(_) => {
                Err("expect warn/info together with no_warn/no_info".into())
            }
            _ => {
                *slot = AnnotationExpect::Forbidden;
                Ok(())
            }
        }
    };
    match kind {
        "fail" => {
            *fail_lines += 1;
            eval.fail = Some(text_match(rest)?);
        }
        "warn" => add(&mut eval.warn, text_match(rest)?)?,
        "info" => add(&mut eval.info, text_match(rest)?)?,
        "no_warn" if rest.is_empty() => forbid(&mut eval.warn)?,
        "no_info" if rest.is_empty() => forbid(&mut eval.info)?,
        "ordered" if rest.is_empty() => eval.ordered = true,
        "range" => {
            let (w, tail) = split_words(rest, 7);
            let keyword = |i: usize, k: &str| w.get(i).is_some_and(|w| *w == k);
            if w.len() < 7
                || !tail.is_empty()
                || !keyword(0, "vector")
                || !keyword(1, "from")
                || !keyword(3, "to")
                || !keyword(5, "step")
            {
                return Err(format!("invalid expect range vector line {line:?}"));
            }
            let s = parse_duration(w[2])?;
            let e = parse_duration(w[4])?;
            let d = parse_duration(w[6])?;
            if e < s || d <= 0 {
                return Err(format!("invalid range in {line:?}"));
            }
            eval.range_vector = Some((s, e, d));
        }
        "string" => {
            let bytes = promql::strings::unquote(rest)
                .map_err(|e| format!("invalid string in {line:?}: {e}"))?;
            eval.string =
                Some(String::from_utf8(bytes).map_err(|_| "string is not UTF-8".to_string())?);
        }
        _ => return Err(format!("invalid expect line {line:?}")),
    }
    Ok(())
}

/// Takes up to `n` whitespace-separated words off the front of `line`; returns them and the
/// remainder (trimmed, inner spacing preserved).
pub fn split_words(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut words = Vec::with_capacity(n);
    let mut rest = line.trim();
    while words.len() < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        words.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    (words, rest)
}

/// A Prometheus duration (`model.ParseDuration` syntax) in milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let d = model::duration::Duration::parse(s.trim()).map_err(|e| e.to_string())?;
    i64::try_from(d.as_millis()).map_err(|_| format!("duration {s:?} out of range"))
}

/// A scalar-result line: Go's `ParseInt(s, 0, 64)` then `ParseFloat(s, 64)`.
pub fn parse_go_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let prefixed = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .iter()
    .find_map(|(p, radix)| body.strip_prefix(p).map(|d| (d, *radix)));
    let (digits, radix) = match prefixed {
        Some(p) => p,
        None if body.len() > 1 && body.starts_with('0') => (&body[1..], 8),
        None => ("", 10),
    };
    // `from_str_radix` accepts a sign; Go does not accept one after the prefix.
    let int = if digits.is_empty() || digits.starts_with(['+', '-']) {
        None
    } else {
        i64::from_str_radix(digits, radix).ok()
    };
    if let Some(v) = int {
        #[allow(clippy::cast_precision_loss)]
        let f = v as f64;
        return Some(if neg { -f } else { f });
    }
    if s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses `name`, `name{a="x"}`, `{…}` at the start of a series line. Returns the label set,
/// whether the descriptor ends in `@st`, and the rest of the line.
pub fn parse_series_descriptor(line: &str) -> Result<(Labels, bool, &str), String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let is_name_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
    let is_name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    if i < b.len() && is_name_start(b[i]) {
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
        pairs.push(("__name__".into(), line[..i].to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            i = skip_ws(b, i);
            match b.get(i) {
                None => return Err(format!("unterminated label set in {line:?}")),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            // A label name, or a quoted metric name (`{"name"}`) / label name.
            let (name, quoted) = if matches!(b[i], b'"' | b'\'' | b'`') {
                let (s, next) = read_string_literal(line, i)?;
                i = next;
                (s, true)
            } else {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if s == i {
                    return Err(format!("invalid label name in {line:?}"));
                }
                (line[s..i].to_string(), false)
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b'=') => {
                    i = skip_ws(b, i + 1);
                    if !matches!(b.get(i), Some(b'"' | b'\'' | b'`')) {
                        return Err(format!("expected a label value in {line:?}"));
                    }
                    let (value, next) = read_string_literal(line, i)?;
                    i = next;
                    pairs.push((name, value));
                }
                Some(b',' | b'}') if quoted => pairs.push(("__name__".into(), name)),
                _ => return Err(format!("expected '=' after label {name:?} in {line:?}")),
            }
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' in label set of {line:?}")),
            }
        }
    } else if pairs.is_empty() {
        return Err(format!("invalid series descriptor in {line:?}"));
    }
    let mut is_st = false;
    if line[i..].starts_with("@st") {
        is_st = true;
        i += 3;
    }
    if i < b.len() && !b[i].is_ascii_whitespace() {
        return Err(format!(
            "unexpected {:?} after series descriptor",
            &line[i..]
        ));
    }
    let labels = Labels::from_pairs(pairs).map_err(|e| format!("{e} in {line:?}"))?;
    Ok((labels, is_st, line[i..].trim()))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Reads the PromQL string literal starting at `start`; returns its value and the index after
/// it.
fn read_string_literal(line: &str, start: usize) -> Result<(String, usize), String> {
    let b = line.as_bytes();
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    if i >= b.len() {
        return Err(format!("unterminated string in {line:?}"));
    }
    let literal = &line[start..=i];
    let bytes = promql::strings::unquote(literal).map_err(|e| format!("{e} in {literal}"))?;
    let s = String::from_utf8(bytes).map_err(|_| format!("{literal} is not valid UTF-8"))?;
    Ok((s, i + 1))
}

/// Splits a value sequence into items, keeping `{{…}}` literals (with their `+{{…}}xN`
/// tails) whole.
fn sequence_items(s: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        let start = i;
        if s[i..].starts_with("{{") {
            let close = s[i..]
                .find("}}")
                .ok_or_else(|| format!("unterminated histogram in {s:?}"))?;
            i += close + 2;
            if matches!(b.get(i), Some(b'+' | b'-')) && s[i + 1..].starts_with("{{") {
                let close = s[i..]
                    .find("}}")
                    .ok_or_else(|| format!("unterminated histogram in {s:?}"))?;
                i += close + 2;
            }
        }
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        items.push(&s[start..i]);
        i = skip_ws(b, i);
    }
    Ok(items)
}

/// Expands a value sequence (FORMAT.md 3.2).
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in sequence_items(s)? {
        expand_item(item, &mut out).map_err(|e| format!("{e} (in {item:?})"))?;
    }
    Ok(out)
}

fn parse_times(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid repetition count {s:?}"));
    }
    let n: usize = s
        .parse()
        .map_err(|_| format!("invalid repetition count {s:?}"))?;
    if n > 1_000_000 {
        return Err(format!("repetition count {n} too large"));
    }
    Ok(n)
}

fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_times(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if item.eq_ignore_ascii_case("stale") {
        out.push(SeqValue::Float(model::sample::stale_nan()));
        return Ok(());
    }
    if item.starts_with("{{") {
        return expand_histogram_item(item, out);
    }
    let (a, rest) = scan_number(item, true).ok_or("invalid number")?;
    if rest.is_empty() {
        out.push(SeqValue::Float(a));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = parse_times(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Float(a), n + 1));
        return Ok(());
    }
    let negative = match rest.as_bytes()[0] {
        b'+' => false,
        b'-' => true,
        _ => return Err("invalid value".into()),
    };
    let (step, rest) = scan_number(&rest[1..], false).ok_or("invalid increment")?;
    let n = parse_times(
        rest.strip_prefix('x')
            .ok_or("expected xN after increment")?,
    )?;
    let step = if negative { -step } else { step };
    let mut v = a;
    out.push(SeqValue::Float(v));
    for _ in 0..n {
        v += step;
        out.push(SeqValue::Float(v));
    }
    Ok(())
}

/// Scans a float at the start of `s` (decimal with optional fraction and exponent, or
/// Inf/NaN; a sign only when `signed`). Returns the value and the rest.
fn scan_number(s: &str, signed: bool) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if signed && matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let word = |w: &str| {
        s.get(i..i + w.len())
            .is_some_and(|x| x.eq_ignore_ascii_case(w))
    };
    if word("inf") || word("nan") {
        let end = i + 3;
        return Some((s[..end].parse().ok()?, &s[end..]));
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - digits_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac;
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp {
            i = j;
        }
    }
    Some((s[..i].parse().ok()?, &s[i..]))
}

fn expand_histogram_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let close = item.find("}}").ok_or("unterminated histogram")?;
    let base = parse_histogram_literal(&item[2..close])?;
    let rest = &item[close + 2..];
    if rest.is_empty() {
        out.push(SeqValue::Histogram(base));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = parse_times(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Histogram(base), n + 1));
        return Ok(());
    }
    let negative = match rest.as_bytes()[0] {
        b'+' => false,
        b'-' => true,
        _ => return Err("invalid text after histogram".into()),
    };
    let rest = rest[1..]
        .strip_prefix("{{")
        .ok_or("expected {{ after +/-")?;
    let close = rest.find("}}").ok_or("unterminated histogram")?;
    let inc = parse_histogram_literal(&rest[..close])?;
    let n = parse_times(
        rest[close + 2..]
            .strip_prefix('x')
            .ok_or("expected xN after histogram increment")?,
    )?;
    let hint_given = base.hint_given || inc.hint_given;
    let mut cur = base.h.clone();
    out.push(SeqValue::Histogram(base));
    for _ in 0..n {
        if cur.schema > inc.h.schema {
            return Err(format!(
                "error combining histograms: cannot merge from schema {} to {}",
                inc.h.schema, cur.schema
            ));
        }
        cur = super::histogram::add(&cur, &inc.h, negative)?;
        out.push(SeqValue::Histogram(HistogramLiteral {
            h: cur.clone(),
            hint_given,
        }));
    }
    Ok(())
}

/// The inside of `{{ … }}` (FORMAT.md 3.3).
pub fn parse_histogram_literal(s: &str) -> Result<HistogramLiteral, String> {
    let b = s.as_bytes();
    let mut h = FloatHistogram::default();
    let mut hint_given = false;
    let (mut buckets, mut offset, mut n_buckets, mut n_offset) = (None, 0i32, None, 0i32);
    let mut seen: Vec<String> = Vec::new();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        let key_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let key = s[key_start..i].to_ascii_lowercase();
        i = skip_ws(b, i);
        if key.is_empty() || b.get(i) != Some(&b':') {
            return Err(format!("invalid histogram field at {:?}", &s[key_start..]));
        }
        i = skip_ws(b, i + 1);
        let value = if b.get(i) == Some(&b'[') {
            let close = s[i..].find(']').ok_or("unterminated [")? + i;
            let v = &s[i..=close];
            i = close + 1;
            v
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            &s[start..i]
        };
        i = skip_ws(b, i);
        if seen.contains(&key) {
            return Err(format!("duplicate histogram field {key}"));
        }
        seen.push(key.clone());
        let float = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .map_err(|_| format!("invalid number {v:?} for {key}"))
        };
        let int = |v: &str| -> Result<i32, String> {
            v.parse::<i32>()
                .map_err(|_| format!("invalid integer {v:?} for {key}"))
        };
        let list = |v: &str| -> Result<Vec<f64>, String> {
            let inner = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| format!("expected a [list] for {key}"))?;
            inner
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<f64>()
                        .map_err(|_| format!("invalid number {t:?} in {key}"))
                })
                .collect()
        };
        match key.as_str() {
            "schema" => h.schema = int(value)?,
            "sum" => h.sum = float(value)?,
            "count" => h.count = float(value)?,
            "z_bucket" => h.zero_count = float(value)?,
            "z_bucket_w" => h.zero_threshold = float(value)?,
            "buckets" => buckets = Some(list(value)?),
            "offset" => offset = int(value)?,
            "n_buckets" => n_buckets = Some(list(value)?),
            "n_offset" => n_offset = int(value)?,
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                hint_given = true;
                h.counter_reset_hint = match value.to_ascii_lowercase().as_str() {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(format!("invalid counter_reset_hint {value:?}")),
                };
            }
            _ => return Err(format!("unknown histogram field {key:?}")),
        }
    }
    let span = |counts: &Vec<f64>, offset: i32| {
        if counts.is_empty() {
            Vec::new()
        } else {
            vec![Span {
                offset,
                length: u32::try_from(counts.len()).unwrap_or(u32::MAX),
            }]
        }
    };
    if let Some(c) = buckets {
        h.positive_spans = span(&c, offset);
        h.positive_buckets = c;
    }
    if let Some(c) = n_buckets {
        h.negative_spans = span(&c, n_offset);
        h.negative_buckets = c;
    }
    Ok(HistogramLiteral { h, hint_given })
}

/// Counts the positions of an `@st` sequence (FORMAT.md 3.4) and checks its syntax; the
/// offsets themselves are not used.
fn count_start_timestamp_positions(s: &str) -> Result<usize, String> {
    let mut n = 0;
    for item in s.split_whitespace() {
        if item == "_" {
            n += 1;
            continue;
        }
        if let Some(t) = item.strip_prefix("_x") {
            n += parse_times(t)?;
            continue;
        }
        let (_, rest) = scan_signed_duration(item)?;
        if rest.is_empty() {
            n += 1;
        } else if let Some(t) = rest.strip_prefix('x') {
            n += parse_times(t)? + 1;
        } else if let Some(r) = rest.strip_prefix(['+', '-']) {
            let (_, rest) = scan_signed_duration(r)?;
            let t = rest
                .strip_prefix('x')
                .ok_or_else(|| format!("expected xN in {item:?}"))?;
            n += parse_times(t)? + 1;
        } else {
            return Err(format!("invalid start-timestamp item {item:?}"));
        }
    }
    Ok(n)
}

/// An optionally negative duration at the start of `s`, and the rest.
fn scan_signed_duration(s: &str) -> Result<(i64, &str), String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || "ywdhms".contains(c)))
        .unwrap_or(body.len());
    let d = parse_duration(&body[..end])?;
    Ok((if neg { -d } else { d }, &body[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(s: &str) -> Vec<Option<f64>> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Float(f) => Some(f),
                SeqValue::Omitted => None,
                SeqValue::Histogram(_) => panic!("histogram"),
            })
            .collect()
    }

    #[test]
    fn value_sequences_expand() {
        assert_eq!(
            floats("2+3x2 _ 7 1-1x2 4x1 _x2 .5 2. -1e3 +Inf"),
            vec![
                Some(2.0),
                Some(5.0),
                Some(8.0),
                None,
                Some(7.0),
                Some(1.0),
                Some(0.0),
                Some(-1.0),
                Some(4.0),
                Some(4.0),
                None,
                None,
                Some(0.5),
                Some(2.0),
                Some(-1000.0),
                Some(f64::INFINITY)
            ]
        );
        let v = parse_values("stale").unwrap();
        assert!(matches!(v[0], SeqValue::Float(f) if model::sample::is_stale_nan(f)));
        assert!(parse_values("1+").is_err());
        assert_eq!(floats("1e-3+1e-3x1"), vec![Some(0.001), Some(0.002)]);
    }

    #[test]
    fn histogram_sequences_expand() {
        let v = parse_values("{{schema:0 sum:1 count:2 buckets:[1 1] offset:1 counter_reset_hint:gauge}}+{{sum:1 count:1 buckets:[1]}}x2")
            .unwrap();
        assert_eq!(v.len(), 3);
        let SeqValue::Histogram(h) = &v[2] else {
            panic!("not a histogram")
        };
        assert_eq!((h.h.count, h.h.sum), (4.0, 3.0));
        assert!(h.hint_given);
    }

    #[test]
    fn descriptors_parse() {
        let (l, st, rest) = parse_series_descriptor(r#"m{a="x y}", b='q'}@st 1 2"#).unwrap();
        assert_eq!(l.get("a"), Some("x y}"));
        assert_eq!(l.get("__name__"), Some("m"));
        assert!(st);
        assert_eq!(rest, "1 2");
        let (l, _, _) = parse_series_descriptor("{} 1").unwrap();
        assert!(l.is_empty());
        assert!(parse_series_descriptor("m{a=}").is_err());
    }

    #[test]
    fn scalar_lines_parse_like_go() {
        assert_eq!(parse_go_number("0x1f"), Some(31.0));
        assert_eq!(parse_go_number("-0.2"), Some(-0.2));
        assert_eq!(parse_go_number("010"), Some(8.0));
        assert_eq!(parse_go_number("08"), Some(8.0));
        assert!(parse_go_number("+Inf").is_some_and(|v| v == f64::INFINITY));
        assert!(parse_go_number("foo 1").is_none());
    }

    #[test]
    fn script_blocks_end_at_scalars_and_comments() {
        let s = parse_script(
            "load 1m\n  a 1 2\n# c\neval instant at 1m a\n  1\n  a 2\n\neval_fail instant at 0 a\n  expected_fail_message boom\neval range from 0 to 1m step 1m a\n  expect no_warn\n  a 1 2\n",
        );
        // The line after the scalar is read as a command, and `a` is not one.
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert_eq!(s.errors[0].line, 6);
        assert_eq!(s.commands.len(), 4);
    }
}
