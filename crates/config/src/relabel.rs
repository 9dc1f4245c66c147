//! Relabel configs (`relabel_configs`, `metric_relabel_configs`,
//! `alert_relabel_configs`, `write_relabel_configs`): their defaults and
//! Prometheus' validation rules for each action.

use std::fmt;

use crate::error::DecodeResult;
use crate::labels::{NameValidationScheme, decode_label_name, is_valid_label_name};
use crate::regex_compat::compile_regex;
use crate::yaml::{Decode, Fields, Node, join_index};

pub(crate) const DEFAULT_SEPARATOR: &str = ";";
pub(crate) const DEFAULT_REGEX: &str = "(.*)";
pub(crate) const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub target_label: String,
    /// The regex as written; it is matched anchored, as `^(?s:<regex>)$`.
    pub regex: String,
    pub modulus: u64,
    pub replacement: String,
    pub action: RelabelAction,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            target_label: String::new(),
            regex: DEFAULT_REGEX.to_owned(),
            modulus: 0,
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: RelabelAction::Replace,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RelabelAction {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl RelabelAction {
    const ALL: [RelabelAction; 11] = [
        RelabelAction::Replace,
        RelabelAction::Keep,
        RelabelAction::Drop,
        RelabelAction::KeepEqual,
        RelabelAction::DropEqual,
        RelabelAction::HashMod,
        RelabelAction::LabelMap,
        RelabelAction::LabelDrop,
        RelabelAction::LabelKeep,
        RelabelAction::Lowercase,
        RelabelAction::Uppercase,
    ];

    /// The name as Prometheus writes it (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }

    /// Case-insensitive, as in Prometheus (`Replace`, `LABELDROP`).
    fn parse(text: &str) -> Option<RelabelAction> {
        let lower = text.to_lowercase();
        RelabelAction::ALL
            .into_iter()
            .find(|action| action.as_str() == lower)
    }
}

impl fmt::Display for RelabelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a list of relabel configs. `null_item_message` is what Prometheus
/// says about a `null` list item in this section.
pub(crate) fn decode_relabel_configs(
    node: Option<&Node>,
    path: &str,
    scheme: NameValidationScheme,
    null_item_message: &str,
) -> DecodeResult<Vec<RelabelConfig>> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    node.items(path)?
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item_path = join_index(path, index);
            if item.is_null() {
                return Err(item.error(&item_path, null_item_message));
            }
            decode_relabel_config(item, &item_path, scheme)
        })
        .collect()
}

/// A string field where an explicit `null` means the empty string (as in
/// Prometheus) rather than the default: `replacement:` clears a label.
fn string_or_empty(fields: &mut Fields, key: &str, default: &str) -> DecodeResult<String> {
    match fields.take(key) {
        None => Ok(default.to_owned()),
        Some(entry) => String::decode(&entry.value, &fields.path_of(key)),
    }
}

fn decode_relabel_config(
    node: &Node,
    path: &str,
    scheme: NameValidationScheme,
) -> DecodeResult<RelabelConfig> {
    let mut fields = Fields::new(node, path)?;
    let source_labels = match fields.node("source_labels") {
        None => Vec::new(),
        Some(labels) => {
            let labels_path = fields.path_of("source_labels");
            labels
                .items(&labels_path)?
                .iter()
                .enumerate()
                .map(|(index, label)| {
                    decode_label_name(label, &join_index(&labels_path, index), scheme)
                })
                .collect::<DecodeResult<_>>()?
        }
    };
    let separator = string_or_empty(&mut fields, "separator", DEFAULT_SEPARATOR)?;
    let target_label = fields.get_or_default::<String>("target_label")?;
    let regex = string_or_empty(&mut fields, "regex", DEFAULT_REGEX)?;
    let modulus = fields.get_or_default::<u64>("modulus")?;
    let replacement = string_or_empty(&mut fields, "replacement", DEFAULT_REPLACEMENT)?;
    let action = match fields.take("action") {
        None => RelabelAction::Replace,
        Some(entry) => {
            let text = String::decode(&entry.value, &fields.path_of("action"))?;
            if text.is_empty() {
                return Err(fields.error("action", "relabel action cannot be empty"));
            }
            RelabelAction::parse(&text)
                .ok_or_else(|| fields.error("action", format!("unknown relabel action {text:?}")))?
        }
    };
    fields.finish("relabel_config")?;

    if let Err(message) = compile_regex(&regex) {
        return Err(fields.error("regex", format!("error parsing regexp: {message}")));
    }
    let config = RelabelConfig {
        source_labels,
        separator,
        target_label,
        regex,
        modulus,
        replacement,
        action,
    };
    validate(&config, &fields, scheme)?;
    Ok(config)
}

/// Prometheus' rules for which fields each action needs or forbids.
fn validate(
    config: &RelabelConfig,
    fields: &Fields,
    scheme: NameValidationScheme,
) -> DecodeResult<()> {
    use RelabelAction::*;
    let action = config.action;
    let target = config.target_label.as_str();
    let legacy = scheme == NameValidationScheme::Legacy;

    if action == HashMod && config.modulus == 0 {
        return Err(fields.error(
            "modulus",
            "relabel configuration for hashmod requires non-zero modulus",
        ));
    }
    let needs_target = matches!(
        action,
        Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
    );
    if needs_target && target.is_empty() {
        return Err(fields.error(
            "target_label",
            format!("relabel configuration for {action} action requires 'target_label' value"),
        ));
    }
    let invalid_target = || {
        fields.error(
            "target_label",
            format!("{target:?} is invalid 'target_label' for {action} action"),
        )
    };
    if action == Replace {
        // A target with `$1`-style references is only checked after expansion,
        // except under legacy names where the template itself must look right.
        let valid = if has_template_reference(target) {
            !legacy || is_legacy_template(target)
        } else {
            is_valid_label_name(target, scheme)
        };
        if !valid {
            return Err(invalid_target());
        }
    }
    let single_label_action = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
    if (single_label_action || action == HashMod) && !is_valid_label_name(target, scheme) {
        return Err(invalid_target());
    }
    if single_label_action && config.replacement != DEFAULT_REPLACEMENT {
        return Err(fields.error(
            "replacement",
            format!("'replacement' can not be set for {action} action"),
        ));
    }
    if action == LabelMap {
        let replacement = config.replacement.as_str();
        let valid = if has_template_reference(replacement) {
            !legacy || is_legacy_template(replacement)
        } else {
            is_valid_label_name(replacement, scheme)
        };
        if !valid {
            return Err(fields.error(
                "replacement",
                format!("{replacement:?} is invalid 'replacement' for {action} action"),
            ));
        }
    }
    if matches!(action, KeepEqual | DropEqual) {
        // Prometheus rejects an explicit `regex` even when it equals the default.
        let extra = [
            ("regex", fields.has("regex")),
            ("modulus", config.modulus != 0),
            ("separator", config.separator != DEFAULT_SEPARATOR),
            ("replacement", config.replacement != DEFAULT_REPLACEMENT),
        ];
        if let Some((key, _)) = extra.iter().find(|(_, set)| *set) {
            return Err(fields.error(
                key,
                format!(
                    "{action} action requires only 'source_labels' and `target_label`, and no other fields"
                ),
            ));
        }
    }
    if matches!(action, LabelDrop | LabelKeep) {
        let extra = [
            ("source_labels", fields.has("source_labels")),
            ("target_label", !target.is_empty()),
            ("modulus", config.modulus != 0),
            ("separator", config.separator != DEFAULT_SEPARATOR),
            ("replacement", config.replacement != DEFAULT_REPLACEMENT),
        ];
        if let Some((key, _)) = extra.iter().find(|(_, set)| *set) {
            return Err(fields.error(
                key,
                format!("{action} action requires only 'regex', and no other fields"),
            ));
        }
    }
    Ok(())
}

fn has_template_reference(template: &str) -> bool {
    template.contains('$')
}

/// Whether a template such as `${1}_total` or `__tmp_$1` can only expand to a
/// legacy label name: letters, digits, underscores and `$name`/`${name}`
/// references, not starting with a digit.
fn is_legacy_template(template: &str) -> bool {
    let bytes = template.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    // Length of a `$name` or `${name}` reference at `at`, if there is one.
    let reference_len = |at: usize| -> Option<usize> {
        if bytes.get(at) != Some(&b'$') {
            return None;
        }
        if bytes.get(at + 1) == Some(&b'{') {
            let name_len = bytes[at + 2..].iter().take_while(|b| is_word(**b)).count();
            (name_len > 0 && bytes.get(at + 2 + name_len) == Some(&b'}')).then_some(name_len + 3)
        } else {
            let name_len = bytes[at + 1..].iter().take_while(|b| is_word(**b)).count();
            (name_len > 0).then_some(name_len + 1)
        }
    };
    let mut at = 0;
    while at < bytes.len() {
        if let Some(len) = reference_len(at) {
            at += len;
        } else if is_word(bytes[at]) && (at > 0 || !bytes[at].is_ascii_digit()) {
            at += 1;
        } else {
            return false;
        }
    }
    !bytes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn decode(yaml: &str) -> DecodeResult<RelabelConfig> {
        let node = parse(yaml)?;
        decode_relabel_config(&node, "r", NameValidationScheme::Utf8)
    }

    fn message(yaml: &str) -> String {
        match decode(yaml) {
            Ok(config) => panic!("{yaml:?} should fail, got {config:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn defaults_match_prometheus() {
        let Ok(config) = decode("target_label: foo\n") else {
            panic!("valid");
        };
        assert_eq!(
            config,
            RelabelConfig {
                target_label: "foo".to_owned(),
                ..RelabelConfig::default()
            }
        );
    }

    #[test]
    fn actions_are_case_insensitive() {
        let Ok(config) = decode("action: LabelDrop\nregex: tmp_.*\n") else {
            panic!("valid");
        };
        assert_eq!(config.action, RelabelAction::LabelDrop);
        assert_eq!(
            message("action: explode\n"),
            "unknown relabel action \"explode\""
        );
        assert_eq!(message("action: ''\n"), "relabel action cannot be empty");
    }

    #[test]
    fn explicit_null_strings_are_empty() {
        let Ok(config) = decode("target_label: x\nreplacement:\n") else {
            panic!("valid");
        };
        assert_eq!(config.replacement, "");
    }

    #[test]
    fn per_action_rules() {
        assert_eq!(
            message("action: hashmod\ntarget_label: x\n"),
            "relabel configuration for hashmod requires non-zero modulus"
        );
        assert_eq!(
            message("source_labels: [a]\n"),
            "relabel configuration for replace action requires 'target_label' value"
        );
        assert_eq!(
            message("action: lowercase\ntarget_label: x\nreplacement: y\n"),
            "'replacement' can not be set for lowercase action"
        );
        assert_eq!(
            message("action: keepequal\ntarget_label: x\nregex: (.*)\n"),
            "keepequal action requires only 'source_labels' and `target_label`, and no other fields"
        );
        assert_eq!(
            message("action: labeldrop\nregex: x\nsource_labels: []\n"),
            "labeldrop action requires only 'regex', and no other fields"
        );
        assert_eq!(
            message("action: labelkeep\nregex: x\nseparator: ','\n"),
            "labelkeep action requires only 'regex', and no other fields"
        );
        assert!(
            message("regex: '(unclosed'\ntarget_label: x\n").starts_with("error parsing regexp")
        );
        assert_eq!(
            message("source_labels: ['']\ntarget_label: x\n"),
            "\"\" is not a valid label name"
        );
        assert!(decode("action: keep\nsource_labels: [a]\nregex: b\n").is_ok());
        assert!(decode("action: labelmap\nregex: __meta_(.+)\n").is_ok());
        assert!(decode("action: hashmod\nmodulus: 3\ntarget_label: __tmp\n").is_ok());
    }

    #[test]
    fn legacy_names_restrict_targets() {
        let node = |yaml: &str| parse(yaml).ok();
        let legacy = |yaml: &str| {
            node(yaml).map(|n| {
                decode_relabel_config(&n, "r", NameValidationScheme::Legacy).map_err(|e| e.message)
            })
        };
        assert!(matches!(legacy("target_label: a.b\n"), Some(Err(_))));
        assert!(matches!(legacy("target_label: ${1}_x\n"), Some(Ok(_))));
        assert!(matches!(legacy("target_label: a.$1\n"), Some(Err(_))));
        assert!(decode("target_label: a.b\n").is_ok());
    }

    #[test]
    fn legacy_templates() {
        assert!(is_legacy_template("${1}"));
        assert!(is_legacy_template("$1_total"));
        assert!(is_legacy_template("a$1"));
        assert!(is_legacy_template("__tmp_${name}"));
        assert!(!is_legacy_template("1$a"));
        assert!(!is_legacy_template("a-$1"));
        assert!(!is_legacy_template("${}"));
        assert!(!is_legacy_template("$"));
    }
}
