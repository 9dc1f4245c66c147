//! Label names as Prometheus 3 validates them in the configuration: any
//! non-empty UTF-8 string by default, or `[a-zA-Z_][a-zA-Z0-9_]*` when
//! `metric_name_validation_scheme: legacy`; plus the schemes themselves and
//! label sets (`labels:`, `external_labels:`).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::DecodeResult;
use crate::yaml::{Decode, Node, join_key};

/// Which metric and label names are valid (`metric_name_validation_scheme`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NameValidationScheme {
    /// Any non-empty UTF-8 name (Prometheus 3's default).
    #[default]
    Utf8,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, `[a-zA-Z_][a-zA-Z0-9_]*` for labels.
    Legacy,
}

impl NameValidationScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            NameValidationScheme::Utf8 => "utf8",
            NameValidationScheme::Legacy => "legacy",
        }
    }

    /// `""` means "not set": the caller picks the inherited scheme.
    pub(crate) fn parse(text: &str) -> Option<Option<NameValidationScheme>> {
        match text {
            "" => Some(None),
            "utf8" => Some(Some(NameValidationScheme::Utf8)),
            "legacy" => Some(Some(NameValidationScheme::Legacy)),
            _ => None,
        }
    }
}

impl fmt::Display for NameValidationScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How names that are not legacy-valid are escaped when scraping
/// (`metric_name_escaping_scheme`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NameEscapingScheme {
    /// `allow-utf-8`: no escaping.
    #[default]
    AllowUtf8,
    /// `underscores`
    Underscores,
    /// `dots`
    Dots,
    /// `values`
    Values,
}

impl NameEscapingScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            NameEscapingScheme::AllowUtf8 => "allow-utf-8",
            NameEscapingScheme::Underscores => "underscores",
            NameEscapingScheme::Dots => "dots",
            NameEscapingScheme::Values => "values",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Option<NameEscapingScheme>> {
        match text {
            "" => Some(None),
            "allow-utf-8" => Some(Some(NameEscapingScheme::AllowUtf8)),
            "underscores" => Some(Some(NameEscapingScheme::Underscores)),
            "dots" => Some(Some(NameEscapingScheme::Dots)),
            "values" => Some(Some(NameEscapingScheme::Values)),
            _ => None,
        }
    }

    /// The default when a config leaves the escaping scheme blank.
    pub(crate) fn default_for(validation: NameValidationScheme) -> NameEscapingScheme {
        match validation {
            NameValidationScheme::Utf8 => NameEscapingScheme::AllowUtf8,
            NameValidationScheme::Legacy => NameEscapingScheme::Underscores,
        }
    }
}

impl fmt::Display for NameEscapingScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) const ESCAPING_SCHEMES_LIST: &str = "'allow-utf-8', 'underscores', 'dots', or 'values'";

pub(crate) fn is_legacy_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn is_valid_label_name(name: &str, scheme: NameValidationScheme) -> bool {
    match scheme {
        NameValidationScheme::Utf8 => !name.is_empty(),
        NameValidationScheme::Legacy => is_legacy_label_name(name),
    }
}

/// Reads one label name, e.g. an item of `source_labels`.
pub(crate) fn decode_label_name(
    node: &Node,
    path: &str,
    scheme: NameValidationScheme,
) -> DecodeResult<String> {
    let name = String::decode(node, path)?;
    if !is_valid_label_name(&name, scheme) {
        return Err(node.error(path, format!("{name:?} is not a valid label name")));
    }
    Ok(name)
}

/// Reads a `labelname: labelvalue` mapping.
pub(crate) fn decode_label_set(
    node: &Node,
    path: &str,
    scheme: NameValidationScheme,
) -> DecodeResult<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for entry in node.entries(path)? {
        let label_path = join_key(path, &entry.key);
        if !is_valid_label_name(&entry.key, scheme) {
            return Err(crate::error::FieldError::new(
                entry.key_position,
                &label_path,
                format!("{:?} is not a valid label name", entry.key),
            ));
        }
        let value = String::decode(&entry.value, &label_path)?;
        labels.insert(entry.key.clone(), value);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        assert!(is_legacy_label_name("job"));
        assert!(is_legacy_label_name("_a1"));
        assert!(!is_legacy_label_name("1a"));
        assert!(!is_legacy_label_name("a.b"));
        assert!(!is_legacy_label_name("a:b"));
        assert!(!is_legacy_label_name(""));
    }

    #[test]
    fn utf8_names_only_need_to_be_non_empty() {
        assert!(is_valid_label_name(
            "app.kubernetes.io/name",
            NameValidationScheme::Utf8
        ));
        assert!(!is_valid_label_name(
            "app.kubernetes.io/name",
            NameValidationScheme::Legacy
        ));
        assert!(!is_valid_label_name("", NameValidationScheme::Utf8));
    }
}
