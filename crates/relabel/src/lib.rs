//! Prometheus relabeling: compiling `relabel_configs` (and `metric_relabel_configs`, later
//! `write_relabel_configs` and `alert_relabel_configs`) into [`Rule`]s and applying them to a
//! label set with Prometheus' semantics, action by action (`model/relabel/relabel.go`).
//!
//! - The source value is the values of `source_labels` (missing ones count as `""`) joined
//!   with `separator`.
//! - Regexes are anchored (`^(?s:…)$`) and follow Go RE2 (see `model::regex`).
//! - A label set to an empty value is deleted; a rule that drops the set ends processing.
//! - `labelmap`, `labeldrop` and `labelkeep` iterate over a snapshot of the labels taken when
//!   the rule starts, as Prometheus' `labels.Builder.Range` does.

use config::{NameValidationScheme, RelabelAction, RelabelConfig};
use model::labels::{Labels, LabelsBuilder};
use model::names::ValidationScheme;
use model::regex::CapturingRegex;

/// A rule that cannot be compiled (only a regex that fails to compile; `config` has already
/// checked each action's required fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid relabel regex {regex:?}: {reason}")]
pub struct RelabelError {
    pub regex: String,
    pub reason: String,
}

/// One compiled relabeling step.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    target_label: String,
    regex: CapturingRegex,
    /// The default `(.*)` regex, which allows the fast path of `replace`.
    regex_is_default: bool,
    modulus: u64,
    replacement: String,
    action: RelabelAction,
    /// Which label names `replace` and `labelmap` may produce.
    names: ValidationScheme,
}

const DEFAULT_REGEX: &str = "(.*)";

impl Rule {
    /// Compiles one config with Prometheus 3's default (UTF-8) name validation.
    pub fn compile(config: &RelabelConfig) -> Result<Rule, RelabelError> {
        Rule::compile_with(config, NameValidationScheme::Utf8)
    }

    /// Compiles one config; `scheme` decides which target label names are valid (the scrape
    /// config's `metric_name_validation_scheme`).
    pub fn compile_with(
        config: &RelabelConfig,
        scheme: NameValidationScheme,
    ) -> Result<Rule, RelabelError> {
        let regex = CapturingRegex::new(&config.regex).map_err(|e| RelabelError {
            regex: config.regex.clone(),
            reason: e.0,
        })?;
        Ok(Rule {
            source_labels: config.source_labels.clone(),
            separator: config.separator.clone(),
            target_label: config.target_label.clone(),
            regex_is_default: config.regex == DEFAULT_REGEX,
            regex,
            modulus: config.modulus,
            replacement: config.replacement.clone(),
            action: config.action,
            names: match scheme {
                NameValidationScheme::Utf8 => ValidationScheme::Utf8,
                NameValidationScheme::Legacy => ValidationScheme::Legacy,
            },
        })
    }

    pub fn action(&self) -> RelabelAction {
        self.action
    }

    /// Applies this rule to `builder`; false when the label set is to be dropped.
    pub fn apply(&self, builder: &mut LabelsBuilder) -> bool {
        use RelabelAction::*;
        match self.action {
            Drop => !self.regex.is_match(&self.source_value(builder)),
            Keep => self.regex.is_match(&self.source_value(builder)),
            DropEqual => {
                builder.get(&self.target_label).unwrap_or("") != self.source_value(builder)
            }
            KeepEqual => {
                builder.get(&self.target_label).unwrap_or("") == self.source_value(builder)
            }
            Replace => {
                self.replace(builder);
                true
            }
            Lowercase => {
                let value: String = self
                    .source_value(builder)
                    .chars()
                    .flat_map(char::to_lowercase)
                    .collect();
                builder.set(self.target_label.as_str(), value);
                true
            }
            Uppercase => {
                let value: String = self
                    .source_value(builder)
                    .chars()
                    .flat_map(char::to_uppercase)
                    .collect();
                builder.set(self.target_label.as_str(), value);
                true
            }
            HashMod => {
                let digest = md5::compute(self.source_value(builder).as_bytes());
                // Prometheus uses the last 8 bytes, big-endian, to stay compatible with its
                // earlier versions.
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest.0[8..]);
                // `config` rejects a zero modulus for hashmod; max(1) keeps this total anyway.
                let bucket = u64::from_be_bytes(tail) % self.modulus.max(1);
                builder.set(self.target_label.as_str(), bucket.to_string());
                true
            }
            LabelMap => {
                for label in builder.labels().to_vec() {
                    if let Some(caps) = self.regex.regex().captures(&label.name) {
                        let mut name = String::new();
                        caps.expand(&self.replacement, &mut name);
                        if !name.is_empty() {
                            builder.set(name, label.value.clone());
                        }
                    }
                }
                true
            }
            LabelDrop => {
                builder.retain(|l| !self.regex.is_match(&l.name));
                true
            }
            LabelKeep => {
                builder.retain(|l| self.regex.is_match(&l.name));
                true
            }
        }
    }

    fn source_value(&self, builder: &LabelsBuilder) -> String {
        let mut value = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                value.push_str(&self.separator);
            }
            value.push_str(builder.get(name).unwrap_or(""));
        }
        value
    }

    fn replace(&self, builder: &mut LabelsBuilder) {
        let value = self.source_value(builder);
        // Prometheus' fast path: an empty source with the default regex and no `$`
        // references sets the target to the replacement verbatim.
        if value.is_empty()
            && self.regex_is_default
            && !self.target_label.contains('$')
            && !self.replacement.contains('$')
        {
            builder.set(self.target_label.as_str(), self.replacement.as_str());
            return;
        }
        let Some(caps) = self.regex.regex().captures(&value) else {
            return;
        };
        let mut target = String::new();
        caps.expand(&self.target_label, &mut target);
        if !self.names.is_valid_label_name(&target) {
            return;
        }
        let mut replaced = String::new();
        caps.expand(&self.replacement, &mut replaced);
        if replaced.is_empty() {
            builder.del(&target);
        } else {
            builder.set(target, replaced);
        }
    }
}

/// Compiles a list of configs (see [`Rule::compile_with`]).
pub fn compile(
    configs: &[RelabelConfig],
    scheme: NameValidationScheme,
) -> Result<Vec<Rule>, RelabelError> {
    configs
        .iter()
        .map(|c| Rule::compile_with(c, scheme))
        .collect()
}

/// Applies `rules` in order to `builder`; false as soon as one drops the set.
pub fn process_builder(builder: &mut LabelsBuilder, rules: &[Rule]) -> bool {
    rules.iter().all(|rule| rule.apply(builder))
}

/// Applies `rules` in order: the resulting labels, or `None` when a rule dropped them.
/// Without rules the input comes back unchanged (no copy).
pub fn process(labels: &Labels, rules: &[Rule]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut builder = labels.builder();
    process_builder(&mut builder, rules).then(|| builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(config: RelabelConfig) -> Rule {
        match Rule::compile(&config) {
            Ok(rule) => rule,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn no_rules_return_the_same_set() {
        let labels = Labels::from_static(&[("a", "1")]);
        assert_eq!(process(&labels, &[]), Some(labels));
    }

    #[test]
    fn a_dropping_rule_stops_processing() {
        let rules = [
            rule(RelabelConfig {
                source_labels: vec!["a".into()],
                regex: "1".into(),
                action: RelabelAction::Drop,
                ..RelabelConfig::default()
            }),
            rule(RelabelConfig {
                target_label: "b".into(),
                replacement: "x".into(),
                ..RelabelConfig::default()
            }),
        ];
        assert_eq!(process(&Labels::from_static(&[("a", "1")]), &rules), None);
        assert_eq!(
            process(&Labels::from_static(&[("a", "2")]), &rules),
            Some(Labels::from_static(&[("a", "2"), ("b", "x")]))
        );
    }

    #[test]
    fn legacy_scheme_rejects_dotted_targets() {
        let config = RelabelConfig {
            source_labels: vec!["a".into()],
            regex: "(.*)".into(),
            target_label: "${1}".into(),
            ..RelabelConfig::default()
        };
        let labels = Labels::from_static(&[("a", "x.y")]);
        let Ok(legacy) = Rule::compile_with(&config, NameValidationScheme::Legacy) else {
            panic!("compiles");
        };
        assert_eq!(process(&labels, &[legacy]), Some(labels.clone()));
        let utf8 = rule(config);
        assert_eq!(
            process(&labels, &[utf8]),
            Some(Labels::from_static(&[("a", "x.y"), ("x.y", "x.y")]))
        );
    }
}
