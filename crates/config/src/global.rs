//! The `global` section (defaults for every scrape config and rule
//! evaluation, external labels) and the `runtime` section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::duration::Duration;
use crate::error::DecodeResult;
use crate::labels::{
    ESCAPING_SCHEMES_LIST, NameEscapingScheme, NameValidationScheme, decode_label_set,
};
use crate::scrape::{ScrapeProtocol, decode_scrape_protocols};
use crate::size::parse_size;
use crate::values::resolve_opt;
use crate::yaml::{Decode, Fields, Node};

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    /// `None`: each scrape config picks its default from
    /// `scrape_native_histograms`.
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub evaluation_interval: Duration,
    pub rule_query_offset: Duration,
    /// After `${VAR}` / `$VAR` expansion from the environment, as Prometheus does.
    pub external_labels: BTreeMap<String, String>,
    pub query_log_file: Option<PathBuf>,
    pub scrape_failure_log_file: Option<PathBuf>,
    /// Bytes; 0 means no limit.
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
    pub keep_dropped_targets: u64,
    pub metric_name_validation_scheme: NameValidationScheme,
    pub metric_name_escaping_scheme: NameEscapingScheme,
    pub scrape_native_histograms: bool,
    pub convert_classic_histograms_to_nhcb: bool,
    pub always_scrape_classic_histograms: bool,
    pub extra_scrape_metrics: bool,
    /// Whether `metric_name_escaping_scheme` was written: if not, scrape
    /// configs derive theirs from their own validation scheme.
    pub(crate) escaping_scheme_is_explicit: bool,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            scrape_protocols: None,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            rule_query_offset: Duration::ZERO,
            external_labels: BTreeMap::new(),
            query_log_file: None,
            scrape_failure_log_file: None,
            body_size_limit: 0,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: NameValidationScheme::Utf8,
            metric_name_escaping_scheme: NameEscapingScheme::AllowUtf8,
            scrape_native_histograms: false,
            convert_classic_histograms_to_nhcb: false,
            always_scrape_classic_histograms: false,
            extra_scrape_metrics: false,
            escaping_scheme_is_explicit: false,
        }
    }
}

const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_mins(1);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_mins(1);

/// Reads a `<size>` field such as `body_size_limit`.
pub(crate) fn decode_size(fields: &mut Fields, key: &str) -> DecodeResult<u64> {
    match fields.node(key) {
        None => Ok(0),
        Some(node) => {
            let path = fields.path_of(key);
            let text = String::decode(node, &path)?;
            parse_size(&text).map_err(|message| node.error(&path, message))
        }
    }
}

/// Reads `metric_name_validation_scheme`; `None` when unset or empty.
pub(crate) fn decode_validation_scheme(
    fields: &mut Fields,
    section: &str,
) -> DecodeResult<Option<NameValidationScheme>> {
    let key = "metric_name_validation_scheme";
    let text = fields.get_or_default::<String>(key)?;
    NameValidationScheme::parse(&text).ok_or_else(|| {
        fields.error(
            key,
            format!(
                "unknown {section} name validation method specified, must be either '', 'legacy' or 'utf8', got {text}"
            ),
        )
    })
}

/// Reads `metric_name_escaping_scheme`; `None` when unset or empty.
pub(crate) fn decode_escaping_scheme(
    fields: &mut Fields,
    section: &str,
) -> DecodeResult<Option<NameEscapingScheme>> {
    let key = "metric_name_escaping_scheme";
    let text = fields.get_or_default::<String>(key)?;
    NameEscapingScheme::parse(&text).ok_or_else(|| {
        fields.error(
            key,
            format!(
                "unknown {section} name escaping method specified, must be one of {ESCAPING_SCHEMES_LIST}, got {text:?}"
            ),
        )
    })
}

pub(crate) const UTF8_ESCAPING_NEEDS_UTF8_VALIDATION: &str =
    "utf8 metric names requested but validation scheme is not set to UTF8";

impl GlobalConfig {
    pub(crate) fn decode(node: Option<&Node>, path: &str) -> DecodeResult<GlobalConfig> {
        let Some(node) = node else {
            return Ok(GlobalConfig::default());
        };
        let mut fields = Fields::new(node, path)?;
        let validation = decode_validation_scheme(&mut fields, "global")?.unwrap_or_default();
        let escaping = decode_escaping_scheme(&mut fields, "global")?;
        let external_labels = match fields.node("external_labels") {
            None => BTreeMap::new(),
            Some(labels) => {
                let mut labels =
                    decode_label_set(labels, &fields.path_of("external_labels"), validation)?;
                for value in labels.values_mut() {
                    *value = expand_env(value);
                }
                labels
            }
        };
        let scrape_protocols = match fields.node("scrape_protocols") {
            None => None,
            Some(node) => Some(decode_scrape_protocols(
                node,
                &fields.path_of("scrape_protocols"),
                "for global config",
            )?),
        };
        let scrape_interval = fields
            .get::<Duration>("scrape_interval")?
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        let explicit_timeout = fields
            .get::<Duration>("scrape_timeout")?
            .filter(|d| !d.is_zero());
        let evaluation_interval = fields
            .get::<Duration>("evaluation_interval")?
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL);
        let global = GlobalConfig {
            scrape_interval,
            // The default timeout never exceeds the interval.
            scrape_timeout: explicit_timeout
                .unwrap_or_else(|| DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval)),
            scrape_protocols,
            evaluation_interval,
            rule_query_offset: fields.get_or_default("rule_query_offset")?,
            external_labels,
            query_log_file: non_empty_path(&mut fields, "query_log_file")?,
            scrape_failure_log_file: non_empty_path(&mut fields, "scrape_failure_log_file")?,
            body_size_limit: decode_size(&mut fields, "body_size_limit")?,
            sample_limit: fields.get_or_default("sample_limit")?,
            label_limit: fields.get_or_default("label_limit")?,
            label_name_length_limit: fields.get_or_default("label_name_length_limit")?,
            label_value_length_limit: fields.get_or_default("label_value_length_limit")?,
            target_limit: fields.get_or_default("target_limit")?,
            keep_dropped_targets: fields.get_or_default("keep_dropped_targets")?,
            metric_name_validation_scheme: validation,
            metric_name_escaping_scheme: escaping
                .unwrap_or_else(|| NameEscapingScheme::default_for(validation)),
            scrape_native_histograms: fields.get_or_default("scrape_native_histograms")?,
            convert_classic_histograms_to_nhcb: fields
                .get_or_default("convert_classic_histograms_to_nhcb")?,
            always_scrape_classic_histograms: fields
                .get_or_default("always_scrape_classic_histograms")?,
            extra_scrape_metrics: fields.get_or_default("extra_scrape_metrics")?,
            escaping_scheme_is_explicit: escaping.is_some(),
        };
        fields.finish("global config")?;

        if explicit_timeout.is_some_and(|timeout| timeout > scrape_interval) {
            return Err(fields.error(
                "scrape_timeout",
                "global scrape timeout greater than scrape interval",
            ));
        }
        if global.metric_name_escaping_scheme == NameEscapingScheme::AllowUtf8
            && validation == NameValidationScheme::Legacy
        {
            return Err(fields.error(
                "metric_name_escaping_scheme",
                UTF8_ESCAPING_NEEDS_UTF8_VALIDATION,
            ));
        }
        Ok(global)
    }

    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        resolve_opt(dir, &mut self.query_log_file);
        resolve_opt(dir, &mut self.scrape_failure_log_file);
    }
}

pub(crate) fn non_empty_path(fields: &mut Fields, key: &str) -> DecodeResult<Option<PathBuf>> {
    Ok(fields
        .get::<PathBuf>(key)?
        .filter(|p| !p.as_os_str().is_empty()))
}

/// Expands `$VAR` and `${VAR}` from the environment like Go's `os.Expand`
/// as Prometheus uses it for external labels: `$$` is a literal `$`, unset
/// variables expand to nothing, and a `$` that starts no name is kept.
fn expand_env(value: &str) -> String {
    expand_with(value, |name| std::env::var(name).unwrap_or_default())
}

fn expand_with(value: &str, lookup: impl Fn(&str) -> String) -> String {
    let is_name_char = |c: char| c == '_' || c.is_ascii_alphanumeric();
    // Shell-special one-character names: `$$`, `$1`, `$@`, ...
    let is_special = |c: char| "*#$@!?-".contains(c) || c.is_ascii_digit();
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let mut chars = after.chars();
        let (name, consumed): (Option<&str>, usize) = match chars.next() {
            // A `$` at the very end stays.
            None => (None, 0),
            Some('{') => match after.find('}') {
                // `${}` and an unclosed `${` are eaten, as in Go.
                Some(1) => (Some(""), 2),
                Some(close) => (Some(&after[1..close]), close + 1),
                None => (Some(""), 1),
            },
            Some(c) if is_special(c) => (Some(&after[..c.len_utf8()]), c.len_utf8()),
            Some(_) => {
                let len = after
                    .find(|c: char| !is_name_char(c))
                    .unwrap_or(after.len());
                if len == 0 {
                    (None, 0)
                } else {
                    (Some(&after[..len]), len)
                }
            }
        };
        match name {
            None => out.push('$'),
            Some("") => {}
            Some("$") => out.push('$'),
            Some(name) => out.push_str(&lookup(name)),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// The `runtime` section; only meaningful for Go, kept for compatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub gogc: i64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { gogc: 75 }
    }
}

impl RuntimeConfig {
    pub(crate) fn decode(node: Option<&Node>, path: &str) -> DecodeResult<RuntimeConfig> {
        let Some(node) = node else {
            return Ok(RuntimeConfig::default());
        };
        let mut fields = Fields::new(node, path)?;
        let runtime = RuntimeConfig {
            gogc: fields.get_or("gogc", RuntimeConfig::default().gogc)?,
        };
        fields.finish("runtime config")?;
        Ok(runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(value: &str) -> String {
        expand_with(value, |name| match name {
            "TEST" => "TestValue".to_owned(),
            _ => String::new(),
        })
    }

    #[test]
    fn env_expansion_follows_go() {
        assert_eq!(expand("foo"), "foo");
        assert_eq!(expand("foo${TEST}bar"), "fooTestValuebar");
        assert_eq!(expand("$TEST"), "TestValue");
        assert_eq!(expand("foo$${TEST}"), "foo${TEST}");
        assert_eq!(expand("foo$$bar"), "foo$bar");
        assert_eq!(expand("${UNSET}x"), "x");
        assert_eq!(expand("cost: 5$"), "cost: 5$");
        assert_eq!(expand("a$ b"), "a$ b");
        assert_eq!(expand("a${}b"), "ab");
        assert_eq!(expand("a${b"), "ab");
    }
}
