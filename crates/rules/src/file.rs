//! The rule file format: YAML `groups` of recording and alerting rules, decoded strictly
//! (unknown fields and duplicate keys are errors) and validated as Prometheus does. Errors
//! name the file, the line and column, and the field path (`groups[0].rules[2].expr`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use model::duration::Duration;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line: u64,
    pub column: u64,
    /// Field path such as `groups[0].rules[1].expr`; empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleFileError {}

/// One parsed and validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    pub path: PathBuf,
    pub groups: Vec<GroupSpec>,
}

/// One group as written in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// `None`: the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// `None`: the global `rule_query_offset`.
    pub query_offset: Option<Duration>,
    /// 0: no limit on the series a rule may produce.
    pub limit: u64,
    /// Labels added to every rule of the group (the rule's own labels win).
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<RuleSpec>,
}

/// What a rule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `record: name`.
    Recording(String),
    /// `alert: name`.
    Alerting(String),
}

/// One rule as written in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl RuleSpec {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording(n) | RuleKind::Alerting(n) => n,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Option<Vec<Spanned<RawGroup>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    query_offset: Option<Spanned<String>>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rules: Option<Vec<Spanned<RawRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<ScalarText>>,
    #[serde(default, rename = "for")]
    for_: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    annotations: Option<Spanned<BTreeMap<String, String>>>,
}

/// A scalar read as text: `expr: 1` is the expression `1`, as in Prometheus.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads and validates the rule file at `path`.
pub fn load_file(path: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleFileError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read the rule file: {e}"),
        }]
    })?;
    parse_rule_file(&text, path)
}

/// Parses and validates rule file `text` as if read from `path`. Returns every validation
/// error found (a syntax error stops at the first).
pub fn parse_rule_file(text: &str, path: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    let raw: RawFile = if blank {
        RawFile::default()
    } else {
        let options = serde_saphyr::options! {
            with_snippet: false,
            strict_booleans: true,
        };
        serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| vec![syntax_error(path, &e)])?
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (gi, g) in raw.groups.unwrap_or_default().into_iter().enumerate() {
        let at = |field: String, line: u64, column: u64, message: String| RuleFileError {
            file: path.to_owned(),
            line,
            column,
            field,
            message,
        };
        let gpos = (g.referenced.line(), g.referenced.column());
        let gpath = format!("groups[{gi}]");
        let rg = g.value;
        let name = rg.name.unwrap_or_default();
        if name.is_empty() {
            errors.push(at(
                format!("{gpath}.name"),
                gpos.0,
                gpos.1,
                "Groupname must not be empty".into(),
            ));
        } else if !seen.insert(name.clone()) {
            errors.push(at(
                format!("{gpath}.name"),
                gpos.0,
                gpos.1,
                format!("groupname: {name:?} is repeated in the same file"),
            ));
        }
        let mut duration = |d: Option<Spanned<String>>, field: &str| -> Option<Duration> {
            let d = d?;
            match Duration::parse(&d.value) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.push(at(
                        format!("{gpath}.{field}"),
                        d.referenced.line(),
                        d.referenced.column(),
                        e.to_string(),
                    ));
                    None
                }
            }
        };
        let interval = duration(rg.interval, "interval");
        let query_offset = duration(rg.query_offset, "query_offset");
        let labels = rg.labels.unwrap_or_default();
        for (k, v) in &labels {
            check_label(k, v, &mut |m| {
                errors.push(at(format!("{gpath}.labels"), gpos.0, gpos.1, m))
            });
        }
        let mut rules = Vec::new();
        for (ri, r) in rg.rules.unwrap_or_default().into_iter().enumerate() {
            let rpath = format!("{gpath}.rules[{ri}]");
            let rpos = (r.referenced.line(), r.referenced.column());
            match validate_rule(r.value, &rpath, rpos) {
                Ok(rule) => rules.push(rule),
                Err(errs) => errors.extend(errs.into_iter().map(|(field, line, col, msg)| {
                    at(
                        field,
                        line,
                        col,
                        format!("group {name:?}, rule {}: {msg}", ri + 1),
                    )
                })),
            }
        }
        groups.push(GroupSpec {
            name,
            interval,
            query_offset,
            limit: rg.limit.unwrap_or(0),
            labels,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile {
            path: path.to_owned(),
            groups,
        })
    } else {
        Err(errors)
    }
}

type RawError = (String, u64, u64, String);

fn validate_rule(r: RawRule, rpath: &str, rpos: (u64, u64)) -> Result<RuleSpec, Vec<RawError>> {
    let mut errors: Vec<RawError> = Vec::new();
    let mut err = |field: &str, pos: (u64, u64), msg: String| {
        errors.push((format!("{rpath}{field}"), pos.0, pos.1, msg));
    };
    let pos_of = |l: &serde_saphyr::Location| (l.line(), l.column());
    let kind = match (&r.record, &r.alert) {
        (Some(rec), Some(_)) if !rec.value.is_empty() => {
            err(
                "",
                rpos,
                "only one of 'record' and 'alert' must be set".into(),
            );
            None
        }
        (Some(rec), _) if !rec.value.is_empty() => {
            if !model::names::is_valid_legacy_metric_name(&rec.value) {
                err(
                    ".record",
                    pos_of(&rec.referenced),
                    format!("invalid recording rule name: {}", rec.value),
                );
            }
            Some(RuleKind::Recording(rec.value.clone()))
        }
        (_, Some(alert)) if !alert.value.is_empty() => {
            Some(RuleKind::Alerting(alert.value.clone()))
        }
        _ => {
            err("", rpos, "one of 'record' or 'alert' must be set".into());
            None
        }
    };
    let expr = r
        .expr
        .as_ref()
        .map(|e| e.value.0.clone())
        .unwrap_or_default();
    match &r.expr {
        Some(e) if !e.value.0.is_empty() => {
            if let Err(pe) = promql::parse(&e.value.0) {
                err(
                    ".expr",
                    pos_of(&e.referenced),
                    format!(
                        "could not parse expression: {}:{}: parse error: {}",
                        pe.line, pe.column, pe.message
                    ),
                );
            }
        }
        _ => err("", rpos, "field 'expr' must be set in rule".into()),
    }
    let mut duration = |d: &Option<Spanned<String>>, field: &str| -> Duration {
        let Some(d) = d else { return Duration::ZERO };
        match Duration::parse(&d.value) {
            Ok(v) => v,
            Err(e) => {
                errors.push((
                    format!("{rpath}.{field}"),
                    d.referenced.line(),
                    d.referenced.column(),
                    e.to_string(),
                ));
                Duration::ZERO
            }
        }
    };
    let for_ = duration(&r.for_, "for");
    let keep_firing_for = duration(&r.keep_firing_for, "keep_firing_for");
    let mut err = |field: &str, pos: (u64, u64), msg: String| {
        errors.push((format!("{rpath}{field}"), pos.0, pos.1, msg));
    };
    if matches!(kind, Some(RuleKind::Recording(_))) {
        if let Some(a) = &r.annotations
            && !a.value.is_empty()
        {
            err(
                ".annotations",
                pos_of(&a.referenced),
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if let Some(f) = &r.for_ {
            err(
                ".for",
                pos_of(&f.referenced),
                "invalid field 'for' in recording rule".into(),
            );
        }
        if let Some(f) = &r.keep_firing_for {
            err(
                ".keep_firing_for",
                pos_of(&f.referenced),
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
    }
    let labels = r
        .labels
        .as_ref()
        .map(|l| l.value.clone())
        .unwrap_or_default();
    let lpos = r.labels.as_ref().map_or(rpos, |l| pos_of(&l.referenced));
    for (k, v) in &labels {
        check_label(k, v, &mut |m| err(".labels", lpos, m));
    }
    let annotations = r
        .annotations
        .as_ref()
        .map(|l| l.value.clone())
        .unwrap_or_default();
    let apos = r
        .annotations
        .as_ref()
        .map_or(rpos, |l| pos_of(&l.referenced));
    for k in annotations.keys() {
        if !model::names::is_valid_legacy_label_name(k) {
            err(
                ".annotations",
                apos,
                format!("invalid annotation name: {k}"),
            );
        }
    }
    // Templates must parse (Prometheus expands them with test data at load).
    if let Some(RuleKind::Alerting(name)) = &kind {
        for (field, map, pos) in [
            (".labels", &labels, lpos),
            (".annotations", &annotations, apos),
        ] {
            for (k, v) in map {
                if let Err(e) = crate::template::Template::parse(v) {
                    err(field, pos, format!("template: __alert_{name}:{k}: {e}"));
                }
            }
        }
    }
    match kind {
        Some(kind) if errors.is_empty() => Ok(RuleSpec {
            kind,
            expr,
            for_,
            keep_firing_for,
            labels,
            annotations,
        }),
        _ => Err(errors),
    }
}

fn check_label(name: &str, value: &str, err: &mut dyn FnMut(String)) {
    if !model::names::is_valid_legacy_label_name(name) || name == "__name__" {
        err(format!("invalid label name: {name}"));
    }
    let _ = value;
}

fn syntax_error(path: &Path, error: &serde_saphyr::Error) -> RuleFileError {
    use serde_saphyr::MessageFormatter;
    let error = error.without_snippet();
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = match error {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("mapping key {key:?} already defined")
        }
        _ => serde_saphyr::DefaultMessageFormatter
            .format_message(error)
            .into_owned(),
    };
    RuleFileError {
        file: path.to_owned(),
        line,
        column,
        field: String::new(),
        message,
    }
}

/// Expands the `rule_files` glob patterns into file paths, sorted and deduplicated.
pub fn expand_patterns(patterns: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let text = p.to_string_lossy();
        let paths =
            glob::glob(&text).map_err(|e| format!("invalid rule file pattern {text:?}: {e}"))?;
        for entry in paths {
            match entry {
                Ok(path) => out.push(path),
                Err(e) => return Err(format!("reading rule files matching {text:?}: {e}")),
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile, Vec<RuleFileError>> {
        parse_rule_file(text, Path::new("r.yml"))
    }

    #[test]
    fn good_file_parses() {
        let f = parse(
            "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} down'\n",
        );
        let f = f
            .map_err(|e| e[0].to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.groups[0].rules.len(), 2);
        assert_eq!(f.groups[0].interval, Some(Duration::from_secs(30)));
        assert_eq!(f.groups[0].rules[1].for_, Duration::from_mins(5));
    }

    #[test]
    fn errors_have_positions_and_fields() {
        let e = parse("groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n").err();
        let e = e.map(|e| e[0].clone());
        let e = e.unwrap_or_else(|| panic!("expected error"));
        assert_eq!(e.line, 5);
        assert_eq!(e.field, "groups[0].rules[0].expr");
        assert!(e.message.contains("could not parse expression"), "{e}");
        let e = parse("groups:\n- name: g\n  bogus: 1\n").err();
        assert!(e.is_some_and(|e| e[0].message.contains("bogus")));
        let e = parse("groups:\n- name: g\n  name: h\n").err();
        assert!(e.is_some_and(|e| e[0].message.contains("already defined")));
    }
}
