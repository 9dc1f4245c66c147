//! Regular expressions with Prometheus (Go RE2) semantics, and fast paths for common shapes.
//!
//! Label matchers and relabel rules are written for Go's `regexp`. Rust's `regex` crate accepts
//! nearly the same syntax but differs in ways that change results, so [`translate_go_regex`]
//! rewrites a pattern before compiling it:
//! - `\d \w \s \b` (and negations) are ASCII-only in Go, Unicode in Rust: rewritten to explicit
//!   ASCII classes (`\s` is `[\t\n\f\r ]` in Go, without `\v`).
//! - `\Q...\E` quotes a literal in Go; Rust has no such syntax: the text is escaped.
//! - Octal escapes (`\012`, `\0`) are accepted by Go; Rust needs a flag: rewritten to `\x{..}`.
//! - Inside a class Go treats `[` (outside `[:name:]`), `&&`, `~~` literally; Rust reads them as
//!   nested classes and set operations: escaped.
//! - Go rejects repetition counts above 1000; so do we.
//! - A `{` that does not open a repetition (`a{,5}`, `{x}`) is a literal in Go; Rust rejects
//!   it: escaped.
//!
//! Prometheus anchors every matcher regex and lets `.` match a newline: the pattern `p` is
//! matched as `^(?s:p)$`. One deliberate difference: Prometheus builds that string by
//! concatenation, so an unbalanced pattern such as `a)|(b` closes the wrapping group early,
//! compiles, and matches unanchored. Here a pattern must be a valid regex on its own first;
//! such patterns are rejected with an error instead of silently matching almost anything. [`AnchoredRegex`] does that and picks a cheaper strategy when the
//! pattern is a literal, a prefix/suffix/substring, an alternation of literals (a set lookup,
//! which also sidesteps compiled-size limits on huge alternations), `.*` or `.+`.

use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::collections::HashSet;
use std::fmt;

/// Go's limit on `{n,m}` counts.
const MAX_REPEAT: u32 = 1000;

/// Compiled-program size limit; generous because user regexes can be large, but bounded.
const SIZE_LIMIT: usize = 64 << 20;

/// Most strings a finite-language regex may expand to before it is compiled as a regex instead.
const MAX_SET_SIZE: usize = 1 << 20;

/// A regex that does not compile, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegexError(pub String);

/// Rewrites a Go RE2 pattern into an equivalent pattern for Rust's `regex` crate.
pub fn translate_go_regex(pattern: &str) -> Result<String, RegexError> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // Depth of character-class nesting as Go sees it: 0 outside, 1 inside `[...]`.
    let mut in_class = false;
    // Position right after the class opener (and optional `^`), where `]` is literal.
    let mut class_start = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return Err(RegexError("trailing backslash at end of expression".into()));
            };
            match e {
                'Q' if !in_class => {
                    // Literal text up to `\E` or the end of the pattern.
                    let rest: String = chars[i + 2..].iter().collect();
                    let (lit, consumed) = match rest.find("\\E") {
                        Some(p) => (&rest[..p], p + 2),
                        None => (rest.as_str(), rest.len()),
                    };
                    out.push_str(&regex_syntax::escape(lit));
                    i += 2 + rest[..consumed].chars().count();
                    continue;
                }
                'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                    let (pos, neg) = match e {
                        'd' | 'D' => ("0-9", e == 'D'),
                        'w' | 'W' => ("0-9A-Za-z_", e == 'W'),
                        _ => ("\\t\\n\\x0C\\r ", e == 'S'),
                    };
                    match (in_class, neg) {
                        (true, false) => out.push_str(pos),
                        (_, true) => {
                            out.push_str("[^");
                            out.push_str(pos);
                            out.push(']');
                        }
                        (false, false) => {
                            out.push('[');
                            out.push_str(pos);
                            out.push(']');
                        }
                    }
                    i += 2;
                    continue;
                }
                'b' | 'B' if !in_class => {
                    out.push_str(if e == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                    i += 2;
                    continue;
                }
                '0'..='7' => {
                    // Go: `\0` starts an octal escape; `\1`-`\7` only when followed by another
                    // octal digit (a lone `\1` would be a backreference, which RE2 rejects).
                    let next_is_octal = matches!(chars.get(i + 2), Some('0'..='7'));
                    if e != '0' && !next_is_octal {
                        return Err(RegexError(format!(
                            "invalid escape sequence: `\\{e}` (backreferences are not supported)"
                        )));
                    }
                    let mut j = i + 1;
                    let mut code: u32 = 0;
                    while j < chars.len() && j < i + 4 && matches!(chars[j], '0'..='7') {
                        code = code * 8 + (chars[j] as u32 - '0' as u32);
                        j += 1;
                    }
                    out.push_str(&format!("\\x{{{code:X}}}"));
                    i = j;
                    continue;
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                    i += 2;
                    continue;
                }
            }
        }
        if in_class {
            match c {
                ']' if i != class_start => {
                    in_class = false;
                    out.push(']');
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // POSIX class `[:alpha:]`, same syntax in both engines.
                    let rest: String = chars[i..].iter().collect();
                    match rest.find(":]") {
                        Some(p) => {
                            out.push_str(&rest[..p + 2]);
                            i += rest[..p + 2].chars().count();
                            continue;
                        }
                        None => out.push_str("\\["),
                    }
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => out.push_str("\\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        if c == '{' && !is_go_repeat(&chars[i..]) {
            // Go reads a `{` that does not open `{n}`, `{n,}` or `{n,m}` as a literal
            // (`a{,5}`, `x{y}`); Rust would reject the pattern.
            out.push_str("\\{");
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            class_start = i;
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// Whether `rest` (starting at a `{`) is a repetition as Go's parser reads one: `{n}`,
/// `{n,}` or `{n,m}` with decimal counts.
fn is_go_repeat(rest: &[char]) -> bool {
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let n = digits(1);
    if n == 0 {
        return false;
    }
    match rest.get(1 + n) {
        Some('}') => true,
        Some(',') => {
            let m = digits(2 + n);
            rest.get(2 + n + m) == Some(&'}')
        }
        _ => false,
    }
}

/// Parses a Go pattern (already anchored and wrapped) into Rust's HIR, enforcing Go's limits.
fn parse_hir(translated: &str) -> Result<Hir, RegexError> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(translated)
        .map_err(|e| RegexError(clean_error(&e.to_string())))?;
    check_repeats(&hir)?;
    Ok(hir)
}

/// Keeps the last line of regex-syntax's multi-line error (the reason) for one-line messages.
fn clean_error(msg: &str) -> String {
    msg.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| msg.replace('\n', " "))
}

fn check_repeats(hir: &Hir) -> Result<(), RegexError> {
    // Iterative walk: a hostile pattern can nest deeply.
    let mut stack = vec![hir];
    while let Some(h) = stack.pop() {
        match h.kind() {
            HirKind::Repetition(r) => {
                if r.min > MAX_REPEAT || r.max.is_some_and(|m| m > MAX_REPEAT) {
                    return Err(RegexError(format!(
                        "invalid repeat count: counts above {MAX_REPEAT} are not allowed"
                    )));
                }
                stack.push(&r.sub);
            }
            HirKind::Capture(c) => stack.push(&c.sub),
            HirKind::Concat(v) | HirKind::Alternation(v) => stack.extend(v.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// How an [`AnchoredRegex`] decides a match.
#[derive(Clone)]
enum Strategy {
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    /// A fixed string.
    Literal(String),
    /// One of several fixed strings.
    Set(HashSet<String>),
    /// `lit.*`
    Prefix(String),
    /// `.*lit`
    Suffix(String),
    /// `.*lit.*`
    Contains(String),
    /// The general case, with a literal prefix every match must start with (possibly empty).
    Regex { prefix: String, re: regex::Regex },
}

/// A fully anchored regex with Prometheus semantics (`^(?s:pattern)$`).
#[derive(Clone)]
pub struct AnchoredRegex {
    source: String,
    strategy: Strategy,
}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnchoredRegex({:?})", self.source)
    }
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl AnchoredRegex {
    /// Compiles `pattern` (Go syntax) anchored at both ends, with `.` matching newlines.
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let translated = translate_go_regex(pattern)?;
        // Valid on its own, so that wrapping cannot change its structure.
        parse_hir(&translated)?;
        let wrapped = format!("(?s:{translated})");
        let hir = parse_hir(&wrapped)?;
        let strategy = match analyze(&hir) {
            Some(s) => s,
            None => {
                let re = regex::RegexBuilder::new(&format!("^(?:{wrapped})$"))
                    .size_limit(SIZE_LIMIT)
                    .dfa_size_limit(SIZE_LIMIT)
                    .build()
                    .map_err(|e| RegexError(clean_error(&e.to_string())))?;
                Strategy::Regex {
                    prefix: literal_prefix(&hir),
                    re,
                }
            }
        };
        Ok(AnchoredRegex {
            source: pattern.to_string(),
            strategy,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        match &self.strategy {
            Strategy::Any => true,
            Strategy::NonEmpty => !s.is_empty(),
            Strategy::Literal(l) => s == l,
            Strategy::Set(set) => set.contains(s),
            Strategy::Prefix(p) => s.starts_with(p.as_str()),
            Strategy::Suffix(p) => s.ends_with(p.as_str()),
            Strategy::Contains(p) => s.contains(p.as_str()),
            Strategy::Regex { prefix, re } => s.starts_with(prefix.as_str()) && re.is_match(s),
        }
    }

    /// The finite set of strings this regex matches, when it is a literal or an alternation of
    /// literals (lets an index look values up instead of scanning them).
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match &self.strategy {
            Strategy::Literal(l) => Some(vec![l.as_str()]),
            Strategy::Set(s) => Some(s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// A prefix every matching string starts with (may be empty).
    pub fn required_prefix(&self) -> &str {
        match &self.strategy {
            Strategy::Literal(l) | Strategy::Prefix(l) => l,
            Strategy::Regex { prefix, .. } => prefix,
            _ => "",
        }
    }
}

/// A regex usable for replacement (relabeling): anchored like a matcher, with capture groups.
#[derive(Clone, Debug)]
pub struct CapturingRegex {
    source: String,
    re: regex::Regex,
}

impl CapturingRegex {
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let translated = translate_go_regex(pattern)?;
        parse_hir(&translated)?;
        let wrapped = format!("^(?s:{translated})$");
        parse_hir(&wrapped)?;
        let re = regex::RegexBuilder::new(&wrapped)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| RegexError(clean_error(&e.to_string())))?;
        Ok(CapturingRegex {
            source: pattern.to_string(),
            re,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &regex::Regex {
        &self.re
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

/// Recognises the shapes with a cheaper strategy than a compiled regex.
fn analyze(hir: &Hir) -> Option<Strategy> {
    let hir = strip_captures(hir);
    if is_dot_star(hir) {
        return Some(Strategy::Any);
    }
    if is_dot_plus(hir) {
        return Some(Strategy::NonEmpty);
    }
    if let Some(mut set) = finite_strings(hir, MAX_SET_SIZE) {
        return Some(if set.len() == 1 {
            Strategy::Literal(set.pop().unwrap_or_default())
        } else {
            Strategy::Set(set.into_iter().collect())
        });
    }
    if let HirKind::Concat(parts) = hir.kind() {
        let parts: Vec<&Hir> = parts.iter().map(strip_captures).collect();
        match parts.as_slice() {
            [a, b] if is_dot_star(b) => return as_literal(a).map(Strategy::Prefix),
            [a, b] if is_dot_star(a) => return as_literal(b).map(Strategy::Suffix),
            [a, b, c] if is_dot_star(a) && is_dot_star(c) => {
                return as_literal(b).map(Strategy::Contains);
            }
            _ => {}
        }
    }
    None
}

fn strip_captures(h: &Hir) -> &Hir {
    let mut h = h;
    while let HirKind::Capture(c) = h.kind() {
        h = &c.sub;
    }
    h
}

/// A single literal string (the regex matches exactly one string).
fn as_literal(h: &Hir) -> Option<String> {
    let mut v = finite_strings(h, 1)?;
    v.pop()
}

/// Every string the regex can match, when that is a finite set of at most `limit` strings
/// (literals, small classes, and alternations and concatenations of those).
fn finite_strings(h: &Hir, limit: usize) -> Option<Vec<String>> {
    match strip_captures(h).kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(l) => Some(vec![String::from_utf8(l.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(c)) => {
            let mut n = 0usize;
            for r in c.ranges() {
                n += (r.end() as usize).saturating_sub(r.start() as usize) + 1;
                if n > limit.min(64) {
                    return None;
                }
            }
            Some(
                c.ranges()
                    .iter()
                    .flat_map(|r| (r.start()..=r.end()).map(String::from))
                    .collect(),
            )
        }
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(finite_strings(a, limit.saturating_sub(out.len()))?);
                if out.len() > limit {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Concat(parts) => {
            let mut acc = vec![String::new()];
            for p in parts {
                let next = finite_strings(p, limit)?;
                if acc.len().saturating_mul(next.len()) > limit {
                    return None;
                }
                acc = acc
                    .iter()
                    .flat_map(|a| next.iter().map(move |b| format!("{a}{b}")))
                    .collect();
            }
            Some(acc)
        }
        _ => None,
    }
}

/// `.` with the `s` flag: any character at all.
fn is_any_char(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Class(Class::Unicode(c)) => {
            let r = c.ranges();
            r.len() == 1 && r[0].start() == '\0' && r[0].end() == char::MAX
        }
        _ => false,
    }
}

fn is_dot_star(h: &Hir) -> bool {
    match strip_captures(h).kind() {
        HirKind::Repetition(r) => r.min == 0 && r.max.is_none() && is_any_char(&r.sub),
        _ => false,
    }
}

fn is_dot_plus(h: &Hir) -> bool {
    match strip_captures(h).kind() {
        HirKind::Repetition(r) => r.min == 1 && r.max.is_none() && is_any_char(&r.sub),
        _ => false,
    }
}

/// The literal text a match must begin with (from a leading run of literals in a concat).
fn literal_prefix(h: &Hir) -> String {
    let h = strip_captures(h);
    match h.kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).unwrap_or_default(),
        HirKind::Concat(parts) => {
            let mut s = String::new();
            for p in parts {
                let p = strip_captures(p);
                match p.kind() {
                    HirKind::Literal(l) => match std::str::from_utf8(&l.0) {
                        Ok(t) => s.push_str(t),
                        Err(_) => break,
                    },
                    HirKind::Look(Look::Start) => {}
                    _ => break,
                }
            }
            s
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        AnchoredRegex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn a_brace_that_opens_no_repetition_is_a_literal_as_in_go() {
        assert!(m("a{,5}", "a{,5}"));
        assert!(!m("a{,5}", "aaa"));
        assert!(m("x{y}", "x{y}"));
        assert!(m("a{", "a{"));
        assert!(m("a{1,x}", "a{1,x}"));
        assert!(m("a{2}", "aa"));
        assert!(m("a{2,}", "aaaa"));
        assert!(m("a{2,3}", "aaa") && !m("a{2,3}", "aaaa"));
        assert!(m("[{]", "{"));
        assert!(m(r"\{", "{"));
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foobar"));
        assert!(!m("foo", "xfoo"));
        assert!(m("a.c", "a\nc"));
        assert!(m(".*", "x\ny"));
        assert!(m("foo|bar", "bar"));
        assert!(!m("foo|bar", "foobar"));
        assert!(m("(foo|bar)baz", "barbaz"));
    }

    #[test]
    fn fast_paths_agree_with_regex() {
        let cases = [
            ("", &["", "a"][..]),
            (".*", &["", "abc", "\n"]),
            (".+", &["", "a"]),
            ("abc", &["abc", "ab", "abcd"]),
            ("a|b|cc", &["a", "b", "cc", "c", ""]),
            ("foo.*", &["foo", "foobar", "fo", "xfoo"]),
            (".*foo", &["foo", "barfoo", "foox"]),
            (".*foo.*", &["foo", "xfoox", "fo"]),
            ("fo+.*x", &["fooox", "fx", "fox"]),
            ("(?i)foo", &["FOO", "foo", "fo"]),
        ];
        for (p, inputs) in cases {
            let ours = AnchoredRegex::new(p).unwrap();
            let reference = regex::Regex::new(&format!("^(?s:{p})$")).unwrap();
            for s in inputs {
                assert_eq!(ours.is_match(s), reference.is_match(s), "{p:?} on {s:?}");
            }
        }
        assert_eq!(
            AnchoredRegex::new("a|b")
                .unwrap()
                .set_matches()
                .map(|mut v| {
                    v.sort();
                    v
                }),
            Some(vec!["a", "b"])
        );
        assert_eq!(
            AnchoredRegex::new("foo.+").unwrap().required_prefix(),
            "foo"
        );
    }

    #[test]
    fn go_classes_are_ascii() {
        // Rust's \d would match the Arabic-Indic digit; Go's does not.
        assert!(!m(r"\d", "٣"));
        assert!(m(r"\d+", "0123"));
        assert!(m(r"\D", "٣"));
        assert!(!m(r"\w", "é"));
        assert!(m(r"\W", "é"));
        assert!(m(r"[\w.]+", "a.b_c"));
        assert!(m(r"[^\d]", "x"));
        assert!(!m(r"[^\d]", "5"));
        // Go's \s has no vertical tab.
        assert!(!m(r"\s", "\u{0B}"));
        assert!(m(r"\s", "\t"));
        assert!(!m(r"\s", "\u{00A0}"));
        // ASCII word boundary: é is not a word character for Go.
        assert!(m(r".*\bx", "éx"));
    }

    #[test]
    fn go_quoting_octal_and_class_literals() {
        assert!(m(r"\Qa.b*\E", "a.b*"));
        assert!(!m(r"\Qa.b*\E", "axb"));
        assert!(m(r"x\Q(y", "x(y"));
        assert!(m(r"\101", "A"));
        assert!(m(r"\0", "\0"));
        assert!(AnchoredRegex::new(r"\1").is_err());
        assert!(m(r"[a&&b]", "&"));
        assert!(m(r"[a~~b]", "~"));
        assert!(m(r"[[]", "["));
        assert!(m(r"[[:digit:]x]", "7"));
        assert!(m(r"[]a]", "]"));
    }

    #[test]
    fn unbalanced_patterns_cannot_escape_the_anchors() {
        // Found by the regex fuzz target: `)` would close the wrapping group.
        for p in ["a)|(b", "f.obb|)||-|a(", ")(", "a)"] {
            assert!(AnchoredRegex::new(p).is_err(), "{p}");
            assert!(CapturingRegex::new(p).is_err(), "{p}");
        }
    }

    #[test]
    fn go_limits() {
        assert!(AnchoredRegex::new("a{1000}").is_ok());
        assert!(AnchoredRegex::new("a{1001}").is_err());
        assert!(AnchoredRegex::new("(").is_err());
        assert!(AnchoredRegex::new("\\").is_err());
    }

    #[test]
    fn huge_alternation_is_a_set() {
        let alts: Vec<String> = (0..200_000).map(|i| format!("value-{i}")).collect();
        let p = alts.join("|");
        let r = AnchoredRegex::new(&p).unwrap();
        assert!(r.is_match("value-199999"));
        assert!(!r.is_match("value-200000"));
    }

    #[test]
    fn capturing_regex_is_anchored() {
        let r = CapturingRegex::new("(.*):(\\d+)").unwrap();
        let caps = r.regex().captures("host:9090").unwrap();
        assert_eq!(&caps[1], "host");
        assert!(!r.is_match("host:90x"));
    }
}
