//! The `otlp` section: how metrics received over OTLP are translated
//! (resource attribute promotion, name translation strategy).

use std::fmt;

use crate::error::DecodeResult;
use crate::labels::NameValidationScheme;
use crate::yaml::{Fields, Node, join_index};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    pub promote_resource_attributes: Vec<String>,
    pub promote_all_resource_attributes: bool,
    /// Only with `promote_all_resource_attributes`.
    pub ignore_resource_attributes: Vec<String>,
    pub translation_strategy: OtlpTranslationStrategy,
    pub keep_identifying_resource_attributes: bool,
    pub convert_histograms_to_nhcb: bool,
    pub promote_scope_metadata: bool,
    pub label_name_underscore_sanitization: bool,
    pub label_name_preserve_multiple_underscores: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            translation_strategy: OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes,
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OtlpTranslationStrategy {
    #[default]
    UnderscoreEscapingWithSuffixes,
    UnderscoreEscapingWithoutSuffixes,
    NoUtf8EscapingWithSuffixes,
    NoTranslation,
}

impl OtlpTranslationStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes => {
                "UnderscoreEscapingWithSuffixes"
            }
            OtlpTranslationStrategy::UnderscoreEscapingWithoutSuffixes => {
                "UnderscoreEscapingWithoutSuffixes"
            }
            OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes => "NoUTF8EscapingWithSuffixes",
            OtlpTranslationStrategy::NoTranslation => "NoTranslation",
        }
    }

    fn parse(text: &str) -> Option<OtlpTranslationStrategy> {
        [
            OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes,
            OtlpTranslationStrategy::UnderscoreEscapingWithoutSuffixes,
            OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes,
            OtlpTranslationStrategy::NoTranslation,
        ]
        .into_iter()
        .find(|strategy| strategy.as_str() == text)
    }

    fn needs_utf8(self) -> bool {
        matches!(
            self,
            OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes
                | OtlpTranslationStrategy::NoTranslation
        )
    }
}

impl fmt::Display for OtlpTranslationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Trims attribute names and rejects empty and duplicated ones; `kind` is
/// `promoted` or `ignored`, as in Prometheus' messages.
fn decode_attributes(fields: &mut Fields, key: &str, kind: &str) -> DecodeResult<Vec<String>> {
    let Some(node) = fields.node(key) else {
        return Ok(Vec::new());
    };
    let path = fields.path_of(key);
    let mut attributes: Vec<String> = Vec::new();
    for (index, item) in node.items(&path)?.iter().enumerate() {
        let item_path = join_index(&path, index);
        let attribute = crate::yaml::Decode::decode(item, &item_path)
            .map(|text: String| text.trim().to_owned())?;
        if attribute.is_empty() {
            return Err(item.error(
                &item_path,
                format!("invalid '{key}': empty {kind} OTel resource attribute"),
            ));
        }
        if attributes.contains(&attribute) {
            return Err(item.error(
                &item_path,
                format!("invalid '{key}': duplicated {kind} OTel resource attribute {attribute:?}"),
            ));
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}

impl OtlpConfig {
    pub(crate) fn decode(
        node: Option<&Node>,
        path: &str,
        scheme: NameValidationScheme,
    ) -> DecodeResult<OtlpConfig> {
        let Some(node) = node else {
            return Ok(OtlpConfig::default());
        };
        let defaults = OtlpConfig::default();
        let mut fields = Fields::new(node, path)?;
        let promote_resource_attributes =
            decode_attributes(&mut fields, "promote_resource_attributes", "promoted")?;
        let ignore_resource_attributes =
            decode_attributes(&mut fields, "ignore_resource_attributes", "ignored")?;
        let translation_strategy = match fields.get::<String>("translation_strategy")? {
            None => defaults.translation_strategy,
            Some(text) => OtlpTranslationStrategy::parse(&text).ok_or_else(|| {
                fields.error(
                    "translation_strategy",
                    format!("unsupported OTLP translation strategy {text:?}"),
                )
            })?,
        };
        let config = OtlpConfig {
            promote_resource_attributes,
            promote_all_resource_attributes: fields
                .get_or_default("promote_all_resource_attributes")?,
            ignore_resource_attributes,
            translation_strategy,
            keep_identifying_resource_attributes: fields
                .get_or_default("keep_identifying_resource_attributes")?,
            convert_histograms_to_nhcb: fields.get_or_default("convert_histograms_to_nhcb")?,
            promote_scope_metadata: fields.get_or_default("promote_scope_metadata")?,
            label_name_underscore_sanitization: fields.get_or(
                "label_name_underscore_sanitization",
                defaults.label_name_underscore_sanitization,
            )?,
            label_name_preserve_multiple_underscores: fields.get_or(
                "label_name_preserve_multiple_underscores",
                defaults.label_name_preserve_multiple_underscores,
            )?,
        };
        fields.finish("otlp config")?;
        if config.promote_all_resource_attributes && !config.promote_resource_attributes.is_empty()
        {
            return Err(fields.error(
                "promote_resource_attributes",
                "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
            ));
        }
        if !config.ignore_resource_attributes.is_empty() && !config.promote_all_resource_attributes
        {
            return Err(fields.error(
                "ignore_resource_attributes",
                "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
            ));
        }
        if config.translation_strategy.needs_utf8() && scheme == NameValidationScheme::Legacy {
            return Err(fields.error(
                "translation_strategy",
                format!(
                    "OTLP translation strategy {:?} is not allowed when UTF8 is disabled",
                    config.translation_strategy.as_str()
                ),
            ));
        }
        Ok(config)
    }
}
