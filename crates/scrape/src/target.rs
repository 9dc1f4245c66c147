//! Scrape targets: turning discovered target groups into targets with Prometheus' label rules
//! (`scrape/target.go`: `PopulateDiscoveredLabels`, `PopulateLabels`), the scrape URL, the
//! target's identity hash, and its stable offset inside the scrape interval.

use std::collections::BTreeMap;
use std::time::Duration;

use config::ScrapeConfig;
use discovery::TargetGroup;
use model::labels::{Labels, LabelsBuilder};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const INSTANCE_LABEL: &str = "instance";
pub const JOB_LABEL: &str = "job";

/// One target of a scrape job, after relabeling.
#[derive(Debug, Clone)]
pub struct Target {
    pub job: String,
    /// The labels before relabeling (discovered labels, group labels, job defaults).
    pub discovered_labels: Labels,
    /// The labels after relabeling, `__meta_*` removed; still holds the other `__` labels.
    pub labels: Labels,
    /// `labels` without the `__` ones: what every scraped series gets.
    pub public_labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    hash: u64,
}

/// Why a discovered target could not become a target (it is left out, as in Prometheus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    #[error("error parsing scrape interval: {0}")]
    BadInterval(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("error parsing scrape timeout: {0}")]
    BadTimeout(String),
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutAboveInterval { timeout: String, interval: String },
}

/// What became of one discovered target.
#[derive(Debug, Clone)]
pub enum Populated {
    Target(Box<Target>),
    /// Relabeling dropped it; the labels are its discovered labels.
    Dropped(Labels),
}

/// The labels a target has before relabeling: its own, its group's, then the job's defaults
/// and the first value of each `params` entry as `__param_<name>`.
pub fn discovered_labels(config: &ScrapeConfig, target: &Labels, group: &Labels) -> LabelsBuilder {
    let mut builder = target.builder();
    for label in group {
        if builder.get(&label.name).is_none() {
            builder.set(label.name.clone(), label.value.clone());
        }
    }
    let defaults = [
        (JOB_LABEL, config.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, config.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, config.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, config.metrics_path.clone()),
        (SCHEME_LABEL, config.scheme.clone()),
    ];
    for (name, value) in defaults {
        if builder.get(name).is_none() {
            builder.set(name, value);
        }
    }
    for (name, values) in &config.params {
        let label = format!("{PARAM_LABEL_PREFIX}{name}");
        if let Some(first) = values.first()
            && builder.get(&label).is_none()
        {
            builder.set(label, first.as_str());
        }
    }
    builder
}

/// Builds one target: discovered labels, relabeling, then Prometheus' checks and defaults.
pub fn populate(
    config: &ScrapeConfig,
    rules: &[relabel::Rule],
    target: &Labels,
    group: &Labels,
) -> Result<Populated, TargetError> {
    let mut builder = discovered_labels(config, target, group);
    let discovered = builder.build();
    if !relabel::process_builder(&mut builder, rules) {
        return Ok(Populated::Dropped(discovered));
    }
    let address = builder
        .get(ADDRESS_LABEL)
        .ok_or(TargetError::NoAddress)?
        .to_owned();
    if address.contains('/') {
        return Err(TargetError::InvalidAddress(address));
    }
    let interval_text = builder.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_owned();
    let interval = model::duration::Duration::parse(&interval_text)
        .map_err(|e| TargetError::BadInterval(e.to_string()))?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = builder.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_owned();
    let timeout = model::duration::Duration::parse(&timeout_text)
        .map_err(|e| TargetError::BadTimeout(e.to_string()))?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval {
            timeout: timeout_text,
            interval: interval_text,
        });
    }
    builder.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    if builder.get(INSTANCE_LABEL).is_none() {
        builder.set(INSTANCE_LABEL, address.as_str());
    }
    let labels = builder.build();
    let public_labels = Labels::from_vec(
        labels
            .iter()
            .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
            .cloned()
            .collect(),
    )
    .unwrap_or_default();
    let url = target_url(&labels, &config.params);
    let hash = target_hash(&labels, &url);
    Ok(Populated::Target(Box::new(Target {
        job: config.job_name.clone(),
        discovered_labels: discovered,
        labels,
        public_labels,
        url,
        interval: interval.as_std(),
        timeout: timeout.as_std(),
        hash,
    })))
}

/// The targets of a job from its groups: targets, dropped targets' discovered labels, and
/// errors (one per target that could not be built). Duplicate targets (same labels and URL)
/// are merged into one.
pub fn targets_from_groups(
    config: &ScrapeConfig,
    rules: &[relabel::Rule],
    groups: &[TargetGroup],
) -> (Vec<Target>, Vec<Labels>, Vec<TargetError>) {
    let mut targets: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut dropped = Vec::new();
    let mut errors = Vec::new();
    for group in groups {
        for target in &group.targets {
            match populate(config, rules, target, &group.labels) {
                Ok(Populated::Target(t)) => {
                    if seen.insert(t.hash) {
                        targets.push(*t);
                    }
                }
                Ok(Populated::Dropped(labels)) => dropped.push(labels),
                Err(e) => errors.push(e),
            }
        }
    }
    (targets, dropped, errors)
}

impl Target {
    /// Identity of the target: its labels and URL (Prometheus' `Target.hash`).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How long to wait from `now_nanos` (Unix time) before the first scrape, so that the
    /// target is scraped at the same point of every interval, across restarts too
    /// (Prometheus' `Target.offset`). `seed` spreads the targets of different servers.
    pub fn offset(&self, now_nanos: u128, seed: u64) -> Duration {
        let interval = self.interval.as_nanos().max(1);
        let base = interval - now_nanos % interval;
        let offset = u128::from(self.hash ^ seed) % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }
}

fn target_hash(labels: &Labels, url: &str) -> u64 {
    let mut hash = Fnv64a::new();
    hash.write(format!("{:016}", labels.hash64()).as_bytes());
    hash.write(url.as_bytes());
    hash.finish()
}

/// The scrape URL from `__scheme__`, `__address__`, `__metrics_path__`, and the query from the
/// config's `params` with `__param_*` labels replacing their first values.
pub fn target_url(labels: &Labels, config_params: &BTreeMap<String, Vec<String>>) -> String {
    let mut params = config_params.clone();
    for label in labels {
        if let Some(name) = label.name.strip_prefix(PARAM_LABEL_PREFIX) {
            let values = params.entry(name.to_owned()).or_default();
            match values.first_mut() {
                Some(first) => *first = label.value.to_string(),
                None => values.push(label.value.to_string()),
            }
        }
    }
    let scheme = labels.get_or_empty(SCHEME_LABEL);
    let address = labels.get_or_empty(ADDRESS_LABEL);
    let path = labels.get_or_empty(METRICS_PATH_LABEL);
    let mut url = format!("{scheme}://{address}");
    if !path.is_empty() && !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(path);
    let mut first = true;
    for (name, values) in &params {
        for value in values {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(name, &mut url);
            url.push('=');
            query_escape(value, &mut url);
        }
    }
    url
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str, out: &mut String) {
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
    }
}

/// FNV-1a, 64 bits (Go's `hash/fnv`), used for target identity as Prometheus does.
pub(crate) struct Fnv64a(u64);

impl Fnv64a {
    pub(crate) fn new() -> Fnv64a {
        Fnv64a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape_config(yaml: &str) -> ScrapeConfig {
        match config::Config::from_str(yaml, "t.yml") {
            Ok(mut c) => c.scrape_configs.remove(0),
            Err(e) => panic!("{e}"),
        }
    }

    fn populate_one(config: &ScrapeConfig, target: &[(&str, &str)]) -> Populated {
        let rules = relabel::compile(
            &config.relabel_configs,
            config.metric_name_validation_scheme,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        populate(
            config,
            &rules,
            &Labels::from_static(target),
            &Labels::from_static(&[("__meta_x", "m"), ("env", "prod")]),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_and_meta_labels() {
        let config = scrape_config(
            "scrape_configs:\n- job_name: node\n  scrape_interval: 30s\n  params:\n    module: [a, b]\n",
        );
        let Populated::Target(t) = populate_one(&config, &[("__address__", "h:9100")]) else {
            panic!("kept");
        };
        assert_eq!(
            t.discovered_labels,
            Labels::from_static(&[
                ("__address__", "h:9100"),
                ("__meta_x", "m"),
                ("__metrics_path__", "/metrics"),
                ("__param_module", "a"),
                ("__scheme__", "http"),
                ("__scrape_interval__", "30s"),
                ("__scrape_timeout__", "10s"),
                ("env", "prod"),
                ("job", "node"),
            ])
        );
        assert_eq!(
            t.public_labels,
            Labels::from_static(&[("env", "prod"), ("instance", "h:9100"), ("job", "node")])
        );
        assert!(!t.labels.has("__meta_x"));
        assert_eq!(t.url, "http://h:9100/metrics?module=a&module=b");
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.timeout, Duration::from_secs(10));
    }

    #[test]
    fn relabeling_can_change_everything_or_drop() {
        let config = scrape_config(
            "scrape_configs:\n- job_name: node\n  relabel_configs:\n  - source_labels: [__meta_x]\n    target_label: instance\n  - target_label: __param_q\n    replacement: 'a b&c'\n  - target_label: __scrape_interval__\n    replacement: 1m\n  - source_labels: [__address__]\n    regex: drop.*\n    action: drop\n",
        );
        let Populated::Target(t) = populate_one(&config, &[("__address__", "h:1")]) else {
            panic!("kept");
        };
        assert_eq!(t.public_labels.get("instance"), Some("m"));
        assert_eq!(t.url, "http://h:1/metrics?q=a+b%26c");
        assert_eq!(t.interval, Duration::from_secs(60));
        assert!(matches!(
            populate_one(&config, &[("__address__", "drop:1")]),
            Populated::Dropped(_)
        ));
    }

    #[test]
    fn invalid_targets_are_errors() {
        let rules = [];
        let config = scrape_config("scrape_configs:\n- job_name: node\n");
        let err = |target: &[(&str, &str)]| {
            populate(
                &config,
                &rules,
                &Labels::from_static(target),
                &Labels::empty(),
            )
            .err()
        };
        assert_eq!(err(&[]), Some(TargetError::NoAddress));
        assert_eq!(
            err(&[("__address__", "http://h:1")]),
            Some(TargetError::InvalidAddress("http://h:1".into()))
        );
        // A timeout equal to the interval is fine.
        assert_eq!(
            err(&[("__address__", "h:1"), ("__scrape_timeout__", "1m")]),
            None
        );
        assert!(matches!(
            err(&[("__address__", "h:1"), ("__scrape_timeout__", "2m")]),
            Some(TargetError::TimeoutAboveInterval { .. })
        ));
        assert!(matches!(
            err(&[("__address__", "h:1"), ("__scrape_interval__", "x")]),
            Some(TargetError::BadInterval(_))
        ));
    }

    #[test]
    fn duplicates_merge_and_offsets_are_stable() {
        let config = scrape_config("scrape_configs:\n- job_name: node\n");
        let group = TargetGroup {
            source: "0".into(),
            targets: vec![
                Labels::from_static(&[("__address__", "a:1")]),
                Labels::from_static(&[("__address__", "a:1")]),
                Labels::from_static(&[("__address__", "b:1")]),
            ],
            labels: Labels::empty(),
        };
        let (targets, dropped, errors) = targets_from_groups(&config, &[], &[group]);
        assert_eq!(targets.len(), 2);
        assert!(dropped.is_empty() && errors.is_empty());
        let t = &targets[0];
        let interval = t.interval.as_nanos();
        // The scrape falls on the same phase of the interval whatever "now" is.
        let phase = |now: u128| (now + t.offset(now, 7).as_nanos()) % interval;
        assert_eq!(phase(1_000_000_000_000), phase(1_000_123_456_789));
        assert!(t.offset(5, 7) <= t.interval);
    }
}
