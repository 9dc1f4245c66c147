//! Label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//!
//! Semantics follow Prometheus: regexes are fully anchored and use Go syntax (see
//! [`crate::regex`]); a label that is absent has the value `""`, so a matcher that matches the
//! empty string also selects series without the label.

use crate::labels::Labels;
use crate::regex::{AnchoredRegex, RegexError};
use std::fmt;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::RegexMatch | MatchOp::RegexNoMatch)
    }

    pub fn is_negative(self) -> bool {
        matches!(self, MatchOp::NotEqual | MatchOp::RegexNoMatch)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label matcher.
#[derive(Clone, Debug, PartialEq)]
pub struct Matcher {
    pub op: MatchOp,
    pub name: String,
    pub value: String,
    re: Option<AnchoredRegex>,
}

impl Matcher {
    /// Builds a matcher; a regex operator compiles `value` and fails on a bad pattern.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, RegexError> {
        let value = value.into();
        let re = if op.is_regex() {
            Some(AnchoredRegex::new(&value)?)
        } else {
            None
        };
        Ok(Matcher {
            op,
            name: name.into(),
            value,
            re,
        })
    }

    /// An equality matcher (cannot fail).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            op: MatchOp::Equal,
            name: name.into(),
            value: value.into(),
            re: None,
        }
    }

    /// True when a label with value `v` (`""` for absent) is selected.
    pub fn matches(&self, v: &str) -> bool {
        match (&self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            // Unreachable by construction: regex ops always carry a compiled regex.
            (_, None) => false,
        }
    }

    /// True when the matcher selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// True when the series with these labels passes this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get_or_empty(&self.name))
    }

    /// The compiled regex, for index lookups (set matches, required prefixes).
    pub fn regex(&self) -> Option<&AnchoredRegex> {
        self.re.as_ref()
    }
}

/// PromQL form: `name="value"`, quoting the name when it is not a legacy label name.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if crate::names::is_valid_legacy_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            crate::exposition::write_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        crate::exposition::write_quoted(f, &self.value)
    }
}

/// True when a series with `labels` passes all `matchers`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        let l = Labels::from_static(&[("job", "node"), ("env", "prod")]);
        let t = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap().matches_labels(&l);
        assert!(t(MatchOp::Equal, "job", "node"));
        assert!(!t(MatchOp::Equal, "job", "no"));
        assert!(t(MatchOp::NotEqual, "job", "x"));
        assert!(t(MatchOp::RegexMatch, "job", "n.*"));
        assert!(!t(MatchOp::RegexMatch, "job", "n"));
        assert!(t(MatchOp::RegexNoMatch, "job", "n"));
    }

    #[test]
    fn empty_matches_select_absent_labels() {
        let l = Labels::from_static(&[("job", "node")]);
        for (op, v, expect) in [
            (MatchOp::Equal, "", true),
            (MatchOp::NotEqual, "", false),
            (MatchOp::RegexMatch, ".*", true),
            (MatchOp::RegexMatch, ".+", false),
            (MatchOp::RegexNoMatch, ".+", true),
            (MatchOp::RegexMatch, "a|", true),
        ] {
            let m = Matcher::new(op, "missing", v).unwrap();
            assert_eq!(m.matches_labels(&l), expect, "{m}");
            assert_eq!(m.matches_empty(), expect, "{m}");
        }
    }

    #[test]
    fn bad_regex_is_an_error_and_display_round_trips() {
        assert!(Matcher::new(MatchOp::RegexMatch, "a", "(").is_err());
        let m = Matcher::new(MatchOp::RegexNoMatch, "service.name", r#"a"b\\"#).unwrap();
        assert_eq!(m.to_string(), r#""service.name"!~"a\"b\\\\""#);
    }
}
