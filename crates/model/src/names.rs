//! Metric and label name validation, per Prometheus 3.
//!
//! Prometheus 3 accepts any non-empty UTF-8 string as a metric or label name ("UTF-8 validation");
//! the legacy scheme allows only `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names and
//! `[a-zA-Z_][a-zA-Z0-9_]*` for label names. Names outside the legacy set must be quoted in the
//! exposition formats and in PromQL.

/// Which names a component accepts (`metric_name_validation_scheme` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationScheme {
    /// Any non-empty UTF-8 string (Prometheus 3's default).
    #[default]
    Utf8,
    /// The classic character sets.
    Legacy,
}

impl ValidationScheme {
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            ValidationScheme::Utf8 => !name.is_empty(),
            ValidationScheme::Legacy => is_valid_legacy_metric_name(name),
        }
    }

    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            ValidationScheme::Utf8 => !name.is_empty(),
            ValidationScheme::Legacy => is_valid_legacy_label_name(name),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_legacy_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        assert!(is_valid_legacy_metric_name("node_cpu:rate5m"));
        assert!(is_valid_legacy_metric_name("_x"));
        assert!(!is_valid_legacy_metric_name("0a"));
        assert!(!is_valid_legacy_metric_name("a.b"));
        assert!(!is_valid_legacy_metric_name(""));
        assert!(is_valid_legacy_label_name("le"));
        assert!(!is_valid_legacy_label_name("a:b"));
        assert!(!is_valid_legacy_label_name("1"));
    }

    #[test]
    fn utf8_scheme() {
        let s = ValidationScheme::Utf8;
        assert!(s.is_valid_label_name("service.name"));
        assert!(s.is_valid_metric_name("☃"));
        assert!(!s.is_valid_label_name(""));
        assert!(!ValidationScheme::Legacy.is_valid_label_name("service.name"));
    }
}
