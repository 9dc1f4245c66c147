//! The one place that turns a configuration regex into a compiled regex.
//!
//! Prometheus anchors every relabel regex as `^(?s:<regex>)$` and compiles it with Go's RE2;
//! `model::regex` reproduces those semantics (ASCII classes, `\Q..\E`, Go's limits), so a
//! pattern is accepted here exactly when Prometheus would accept it.

use model::regex::CapturingRegex;

/// Compiles `regex` the way Prometheus does for relabeling. The error is the compiler's
/// reason on one line (`unclosed group`), for `file:line: field: message` output.
pub(crate) fn compile_regex(regex: &str) -> Result<CapturingRegex, String> {
    CapturingRegex::new(regex).map_err(|e| format!("{e} in {regex:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored_and_dot_matches_newline() {
        let Ok(re) = compile_regex("a.c") else {
            panic!("should compile");
        };
        assert!(re.is_match("a\nc"));
        assert!(!re.is_match("xa.c"));
        assert!(!re.is_match("a.cx"));
        assert!(compile_regex("(.*)").is_ok());
        assert_eq!(
            compile_regex("(unclosed").err().as_deref(),
            Some("unclosed group in \"(unclosed\"")
        );
        // Go semantics: repetition counts above 1000 are rejected.
        assert!(compile_regex("a{1001}").is_err());
    }
}
