//! `file_sd_configs`: targets read from JSON or YAML files, as Prometheus' file discovery.
//!
//! Each file holds a list of `{targets: [...], labels: {...}}` groups; group `i` of file `f`
//! has source `f:i` and gets the label `__meta_filepath`. Files are found by expanding the
//! configured patterns (a `*` in the last element), watched by polling their modification
//! time and size every `file_poll_interval`, and re-read every `refresh_interval` regardless.
//! A file that cannot be read or parsed keeps its previous groups (as in Prometheus); a file
//! that disappears, or has fewer groups than before, gets empty groups for the sources it no
//! longer has, which removes their targets.
//!
//! Metrics (in the manager's [`SdMetrics`]): `prometheus_sd_file_read_errors_total` counts
//! files that could not be read or parsed, `prometheus_sd_file_scan_duration_seconds` times
//! each refresh (all files of the config), and `prometheus_sd_file_mtime_seconds{filename}`
//! holds the modification time of every file read, until the file vanishes or the
//! discoverer stops.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use config::FileSdConfig;
use model::labels::Labels;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::metrics::FileMtimes;
use crate::{
    Discoverer, DiscovererFuture, DiscovererOptions, SdConfig, SdMetrics, TargetGroup,
    address_labels, same_config,
};

/// The label naming the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSd {
    config: FileSdConfig,
}

impl FileSd {
    pub fn new(config: FileSdConfig) -> FileSd {
        FileSd { config }
    }
}

impl SdConfig for FileSd {
    fn name(&self) -> &'static str {
        "file"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn SdConfig) -> bool {
        same_config(self, other)
    }

    fn discoverer(&self, options: &DiscovererOptions) -> Box<dyn Discoverer> {
        Box::new(
            FileDiscoverer::new(
                self.config.files.clone(),
                self.config.refresh_interval.as_std(),
                options.file_poll_interval,
            )
            .with_metrics(&options.metrics),
        )
    }
}

/// A file's identity for change detection: modification time and size.
type FileStamp = (Option<SystemTime>, u64);

/// Watches the files of one `file_sd_configs` entry.
pub struct FileDiscoverer {
    patterns: Vec<PathBuf>,
    refresh_interval: Duration,
    poll_interval: Duration,
    /// Number of groups each file had at the last refresh.
    group_counts: HashMap<PathBuf, usize>,
    /// The files and their stamps at the last refresh.
    stamps: BTreeMap<PathBuf, FileStamp>,
    metrics: Arc<SdMetrics>,
    mtimes: FileMtimes,
}

/// Why a file's groups could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileSdError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
}

/// A group as written in a file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

impl FileDiscoverer {
    pub fn new(
        patterns: Vec<PathBuf>,
        refresh_interval: Duration,
        poll_interval: Duration,
    ) -> FileDiscoverer {
        let metrics = Arc::new(SdMetrics::default());
        FileDiscoverer {
            patterns,
            refresh_interval,
            poll_interval: poll_interval.max(Duration::from_millis(10)),
            group_counts: HashMap::new(),
            stamps: BTreeMap::new(),
            mtimes: metrics.file_mtimes(),
            metrics,
        }
    }

    /// Counts into `metrics` (a manager's) instead of counters of its own.
    pub fn with_metrics(mut self, metrics: &Arc<SdMetrics>) -> FileDiscoverer {
        self.mtimes = metrics.file_mtimes();
        self.metrics = Arc::clone(metrics);
        self
    }

    /// The files the patterns match now, sorted.
    fn list_files(&self) -> Vec<PathBuf> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            // `*` stops at `/`, like Go's filepath.Glob.
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut files = Vec::new();
        for pattern in &self.patterns {
            let Some(text) = pattern.to_str() else {
                tracing::error!(pattern = %pattern.display(), "file_sd pattern is not UTF-8");
                continue;
            };
            match glob::glob_with(text, options) {
                Ok(paths) => files.extend(paths.filter_map(Result::ok)),
                Err(e) => tracing::error!(glob = text, err = %e, "Error expanding glob"),
            }
        }
        files.sort();
        files.dedup();
        files
    }

    fn stamps_of(files: &[PathBuf]) -> BTreeMap<PathBuf, FileStamp> {
        files
            .iter()
            .map(|path| {
                let stamp = std::fs::metadata(path)
                    .map(|m| (m.modified().ok(), m.len()))
                    .unwrap_or((None, 0));
                (path.clone(), stamp)
            })
            .collect()
    }

    /// Reads every file and sends its groups, then empty groups for sources that vanished.
    /// False when the receiver is gone.
    async fn refresh(
        &mut self,
        files: &[PathBuf],
        updates: &mpsc::Sender<Vec<TargetGroup>>,
    ) -> bool {
        let started = Instant::now();
        let mut counts = HashMap::new();
        let mut read = Vec::with_capacity(files.len());
        for path in files {
            match read_file(path) {
                Ok(groups) => {
                    counts.insert(path.clone(), groups.len());
                    let name = path.display().to_string();
                    if let Ok(Ok(since_epoch)) = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .map(|t| t.duration_since(SystemTime::UNIX_EPOCH))
                    {
                        self.mtimes.set(&name, since_epoch.as_secs() as f64);
                    }
                    read.push(name);
                    if updates.send(groups).await.is_err() {
                        return false;
                    }
                }
                Err(e) => {
                    self.metrics.file_read_error();
                    read.push(path.display().to_string());
                    tracing::error!(path = %path.display(), err = %e, "Error reading file");
                    // Keep the previous groups of this file.
                    counts.insert(
                        path.clone(),
                        self.group_counts.get(path).copied().unwrap_or(0),
                    );
                }
            }
        }
        let mut cleared = Vec::new();
        for (path, &before) in &self.group_counts {
            let now = counts.get(path).copied().unwrap_or(0);
            for index in now..before {
                cleared.push(TargetGroup {
                    source: file_source(path, index),
                    ..TargetGroup::default()
                });
            }
        }
        if !cleared.is_empty() && updates.send(cleared).await.is_err() {
            return false;
        }
        self.mtimes.retain(&read);
        self.group_counts = counts;
        self.metrics.file_scanned(started.elapsed());
        true
    }
}

impl Discoverer for FileDiscoverer {
    fn run(mut self: Box<Self>, updates: mpsc::Sender<Vec<TargetGroup>>) -> DiscovererFuture {
        Box::pin(async move {
            let mut last_refresh: Option<Instant> = None;
            loop {
                let files = self.list_files();
                let stamps = Self::stamps_of(&files);
                let due = last_refresh.is_none_or(|at| at.elapsed() >= self.refresh_interval);
                if due || stamps != self.stamps {
                    if !self.refresh(&files, &updates).await {
                        return;
                    }
                    self.stamps = stamps;
                    last_refresh = Some(Instant::now());
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.poll_interval) => {}
                    _ = updates.closed() => return,
                }
            }
        })
    }
}

/// The source of group `index` of file `path`, as Prometheus names it.
fn file_source(path: &Path, index: usize) -> String {
    format!("{}:{index}", path.display())
}

/// Reads the groups of one file; the format follows the extension (`.json`, `.yml`, `.yaml`).
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileSdError::Read {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    parse_groups(&text, path)
}

/// Parses a file's content; `path` picks the format and fills `__meta_filepath` and sources.
pub fn parse_groups(text: &str, path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let display = path.display().to_string();
    let parse_error = |reason: String| FileSdError::Parse {
        path: display.clone(),
        reason,
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let groups: Vec<Option<FileGroup>> = match extension.as_str() {
        "json" => serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?,
        "yml" | "yaml" => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_saphyr::from_str(text).map_err(|e| parse_error(e.to_string()))?
            }
        }
        _ => {
            return Err(parse_error(format!(
                "retrieval target file {display} must have extension .json, .yml or .yaml"
            )));
        }
    };
    groups
        .into_iter()
        .enumerate()
        .map(|(index, group)| {
            let group = group.ok_or_else(|| parse_error("nil target group item found".into()))?;
            let mut labels = group.labels.unwrap_or_default();
            if let Some(empty) = labels.keys().find(|name| name.is_empty()) {
                return Err(parse_error(format!("{empty:?} is not a valid label name")));
            }
            labels.insert(FILEPATH_LABEL.to_owned(), display.clone());
            let labels = Labels::from_pairs(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .map_err(|e| parse_error(e.to_string()))?;
            Ok(TargetGroup {
                source: file_source(path, index),
                targets: group.targets.iter().map(|t| address_labels(t)).collect(),
                labels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_give_the_same_groups() {
        let json =
            r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#;
        let yaml = "- targets: [a:1, b:2]\n  labels:\n    env: prod\n- targets: [c:3]\n";
        let from_json = parse_groups(json, Path::new("/sd/t.json"));
        let from_yaml = parse_groups(yaml, Path::new("/sd/t.json.yml"));
        let (Ok(from_json), Ok(from_yaml)) = (from_json, from_yaml) else {
            panic!("both parse");
        };
        assert_eq!(from_json.len(), 2);
        assert_eq!(from_json[0].source, "/sd/t.json:0");
        assert_eq!(from_json[0].labels.get(FILEPATH_LABEL), Some("/sd/t.json"));
        assert_eq!(from_json[0].labels.get("env"), Some("prod"));
        assert_eq!(from_json[1].targets[0].get("__address__"), Some("c:3"));
        assert_eq!(from_yaml[0].targets, from_json[0].targets);
        assert_eq!(
            from_yaml[1].labels.get(FILEPATH_LABEL),
            Some("/sd/t.json.yml")
        );
    }

    #[test]
    fn bad_files_are_errors() {
        for (text, path) in [
            (r#"[{"targets": ["a:1"], "extra": 1}]"#, "/x.json"),
            ("[null]", "/x.json"),
            ("not json", "/x.json"),
            ("- targets: [a]\n  lables: {}\n", "/x.yaml"),
            (r#"[{"targets": ["a:1"], "labels": {"": "v"}}]"#, "/x.json"),
            ("[]", "/x.txt"),
        ] {
            assert!(
                parse_groups(text, Path::new(path)).is_err(),
                "{text:?} in {path} should fail"
            );
        }
        assert_eq!(parse_groups("", Path::new("/x.yml")), Ok(Vec::new()));
    }
}
