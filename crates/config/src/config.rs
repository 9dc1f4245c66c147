//! The whole configuration file: [`Config::load`] and [`Config::from_str`],
//! the checks across sections (unique job and remote names, rule file
//! patterns), relative paths, and merging `scrape_config_files` in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::alerting::AlertingConfig;
use crate::error::{ConfigError, DecodeResult, FieldError, Position};
use crate::global::{GlobalConfig, RuntimeConfig};
use crate::otlp::OtlpConfig;
use crate::remote::{
    RemoteReadConfig, RemoteWriteConfig, resolve_remote_read_paths, resolve_remote_write_paths,
};
use crate::scrape::ScrapeConfig;
use crate::storage::StorageConfig;
use crate::tracing_config::TracingConfig;
use crate::values::resolve;
use crate::yaml::{self, Decode, Fields, Node, Value, join_index};

/// A loaded and validated Prometheus configuration.
///
/// Defaults are filled in, scrape configs carry what they inherit from
/// `global`, relative file paths are joined to the config file's directory,
/// and `scrape_configs` includes the jobs of `scrape_config_files`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub global: GlobalConfig,
    pub runtime: RuntimeConfig,
    /// Glob patterns of rule files (not expanded: the rule manager does that
    /// on every reload).
    pub rule_files: Vec<PathBuf>,
    /// Glob patterns whose files were merged into `scrape_configs`.
    pub scrape_config_files: Vec<PathBuf>,
    /// The jobs of this file, then those of `scrape_config_files`.
    pub scrape_configs: Vec<ScrapeConfig>,
    pub alerting: AlertingConfig,
    pub remote_write: Vec<RemoteWriteConfig>,
    pub remote_read: Vec<RemoteReadConfig>,
    pub storage: StorageConfig,
    pub otlp: OtlpConfig,
    /// `None` when tracing is not configured.
    pub tracing: Option<TracingConfig>,
}

impl Default for Config {
    /// What an empty configuration file loads as.
    fn default() -> Self {
        Config {
            global: GlobalConfig::default(),
            runtime: RuntimeConfig::default(),
            rule_files: Vec::new(),
            scrape_config_files: Vec::new(),
            scrape_configs: Vec::new(),
            alerting: AlertingConfig::default(),
            remote_write: Vec::new(),
            remote_read: Vec::new(),
            storage: StorageConfig::default(),
            otlp: OtlpConfig::default(),
            tracing: None,
        }
    }
}

impl Config {
    /// Reads, parses and validates the configuration file at `path`, and the
    /// files its `scrape_config_files` patterns match.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(path, format!("cannot read the configuration: {e}")))?;
        Config::from_str(&text, path)
    }

    /// Parses and validates configuration `text` as if it were the file at
    /// `path`: errors name `path`, and relative paths in the config (and
    /// `scrape_config_files`, which are read from disk) are taken relative
    /// to its directory.
    pub fn from_str(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new(""));
        let root = yaml::parse(text).map_err(|e| e.in_file(path))?;
        let mut config = decode_config(&root).map_err(|e| e.in_file(path))?;
        config.resolve_paths(dir);
        config.load_scrape_config_files()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        self.global.resolve_paths(dir);
        for pattern in self
            .rule_files
            .iter_mut()
            .chain(self.scrape_config_files.iter_mut())
        {
            resolve(dir, pattern);
        }
        for scrape_config in &mut self.scrape_configs {
            scrape_config.resolve_paths(dir);
        }
        self.alerting.resolve_paths(dir);
        resolve_remote_write_paths(&mut self.remote_write, dir);
        resolve_remote_read_paths(&mut self.remote_read, dir);
        if let Some(tracing) = &mut self.tracing {
            tracing.resolve_paths(dir);
        }
    }

    /// Appends the jobs of every file `scrape_config_files` matches, as
    /// Prometheus does: files in name order, job names unique across all.
    fn load_scrape_config_files(&mut self) -> Result<(), ConfigError> {
        // Where each job name was first seen, for the duplicate message.
        let mut first_seen: HashMap<String, String> = self
            .scrape_configs
            .iter()
            .map(|job| (job.job_name.clone(), "main config file".to_owned()))
            .collect();
        let options = glob::MatchOptions {
            case_sensitive: true,
            // `*` stops at `/`, like Go's filepath.Glob.
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        for pattern in self.scrape_config_files.clone() {
            let pattern_text = pattern.to_string_lossy();
            let matches = glob::glob_with(&pattern_text, options).map_err(|e| {
                ConfigError::file(
                    &pattern,
                    format!("error retrieving scrape config files for {pattern_text:?}: {e}"),
                )
            })?;
            // Unreadable directories are skipped, as Go's Glob does.
            let mut files: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    ConfigError::file(&file, format!("cannot read the scrape config file: {e}"))
                })?;
                let node = yaml::parse(&text).map_err(|e| e.in_file(&file))?;
                let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
                let jobs =
                    decode_scrape_config_file(&node, &self.global).map_err(|e| e.in_file(&file))?;
                let file_label = format!("{:?}", file.display().to_string());
                for (mut job, job_name_position) in jobs {
                    if let Some(first) = first_seen.get(&job.job_name) {
                        return Err(FieldError::new(
                            job_name_position.0,
                            &job_name_position.1,
                            format!(
                                "found multiple scrape configs with job name {:?}, first found in {first}",
                                job.job_name
                            ),
                        )
                        .in_file(&file));
                    }
                    first_seen.insert(job.job_name.clone(), file_label.clone());
                    job.resolve_paths(&dir);
                    self.scrape_configs.push(job);
                }
            }
        }
        Ok(())
    }
}

/// Prometheus' pattern for rule and scrape config file globs: `*` only in
/// the last path element (`^[^*]*(\*[^/]*)?$`).
fn is_valid_file_pattern(pattern: &str) -> bool {
    match pattern.find('*') {
        None => true,
        // Further stars may follow; only a path separator may not.
        Some(star) => !pattern[star..].contains('/'),
    }
}

fn decode_patterns(fields: &mut Fields, key: &str, what: &str) -> DecodeResult<Vec<PathBuf>> {
    let Some(node) = fields.node(key) else {
        return Ok(Vec::new());
    };
    let path = fields.path_of(key);
    let mut patterns = Vec::new();
    for (index, item) in node.items(&path)?.iter().enumerate() {
        let item_path = join_index(&path, index);
        let pattern = String::decode(item, &item_path)?;
        if !is_valid_file_pattern(&pattern) {
            return Err(item.error(&item_path, format!("invalid {what} path {pattern:?}")));
        }
        patterns.push(PathBuf::from(pattern));
    }
    Ok(patterns)
}

/// Where a scrape config's `job_name` is, for errors about duplicates.
fn job_name_location(item: &Node, item_path: &str) -> (Position, String) {
    let position = match &item.value {
        Value::Map(entries) => entries
            .iter()
            .find(|entry| entry.key == "job_name")
            .map_or(item.position, |entry| entry.key_position),
        _ => item.position,
    };
    (position, yaml::join_key(item_path, "job_name"))
}

/// Reads a `scrape_configs` list, remembering where each job name is.
fn decode_scrape_configs(
    node: Option<&Node>,
    path: &str,
    global: &GlobalConfig,
) -> DecodeResult<Vec<(ScrapeConfig, (Position, String))>> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    node.items(path)?
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item_path = join_index(path, index);
            let job = ScrapeConfig::decode(item, &item_path, global)?;
            Ok((job, job_name_location(item, &item_path)))
        })
        .collect()
}

fn decode_config(root: &Node) -> DecodeResult<Config> {
    let mut fields = Fields::new(root, "")?;
    let global = GlobalConfig::decode(fields.node("global"), "global")?;
    let scheme = global.metric_name_validation_scheme;
    let runtime = RuntimeConfig::decode(fields.node("runtime"), "runtime")?;
    let rule_files = decode_patterns(&mut fields, "rule_files", "rule file")?;
    let scrape_config_files =
        decode_patterns(&mut fields, "scrape_config_files", "scrape config file")?;

    let jobs = decode_scrape_configs(fields.node("scrape_configs"), "scrape_configs", &global)?;
    let mut job_names = HashMap::new();
    for (job, (position, path)) in &jobs {
        if job_names.insert(job.job_name.as_str(), ()).is_some() {
            return Err(FieldError::new(
                *position,
                path,
                format!(
                    "found multiple scrape configs with job name {:?}",
                    job.job_name
                ),
            ));
        }
    }
    let scrape_configs = jobs.into_iter().map(|(job, _)| job).collect();

    let alerting = AlertingConfig::decode(fields.node("alerting"), "alerting", scheme)?;
    let remote_write = decode_named_list(
        &mut fields,
        "remote_write",
        |node, path| RemoteWriteConfig::decode(node, path, scheme),
        |config| &config.name,
        "found multiple remote write configs with job name",
    )?;
    let remote_read = decode_named_list(
        &mut fields,
        "remote_read",
        |node, path| RemoteReadConfig::decode(node, path, scheme),
        |config| &config.name,
        "found multiple remote read configs with job name",
    )?;
    let storage = StorageConfig::decode(fields.node("storage"), "storage")?;
    let otlp = OtlpConfig::decode(fields.node("otlp"), "otlp", scheme)?;
    let tracing = TracingConfig::decode(fields.node("tracing"), "tracing")?;
    fields.finish("the configuration file")?;

    Ok(Config {
        global,
        runtime,
        rule_files,
        scrape_config_files,
        scrape_configs,
        alerting,
        remote_write,
        remote_read,
        storage,
        otlp,
        tracing,
    })
}

/// Reads a list whose items' non-empty names must be unique. The duplicate
/// message is Prometheus' (which says "job name" for remote configs too).
fn decode_named_list<T>(
    fields: &mut Fields,
    key: &str,
    decode_item: impl Fn(&Node, &str) -> DecodeResult<T>,
    name_of: impl Fn(&T) -> &String,
    duplicate_message: &str,
) -> DecodeResult<Vec<T>> {
    let Some(node) = fields.node(key) else {
        return Ok(Vec::new());
    };
    let path = fields.path_of(key);
    let mut items: Vec<T> = Vec::new();
    for (index, item_node) in node.items(&path)?.iter().enumerate() {
        let item_path = join_index(&path, index);
        let item = decode_item(item_node, &item_path)?;
        let name = name_of(&item);
        if !name.is_empty() && items.iter().any(|earlier| name_of(earlier) == name) {
            let name_path = yaml::join_key(&item_path, "name");
            let position = match &item_node.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|entry| entry.key == "name")
                    .map_or(item_node.position, |entry| entry.key_position),
                _ => item_node.position,
            };
            return Err(FieldError::new(
                position,
                &name_path,
                format!("{duplicate_message} {name:?}"),
            ));
        }
        items.push(item);
    }
    Ok(items)
}

/// A file of `scrape_config_files`: only a `scrape_configs` list.
fn decode_scrape_config_file(
    root: &Node,
    global: &GlobalConfig,
) -> DecodeResult<Vec<(ScrapeConfig, (Position, String))>> {
    let mut fields = Fields::new(root, "")?;
    let jobs = decode_scrape_configs(fields.node("scrape_configs"), "scrape_configs", global)?;
    fields.finish("a scrape config file")?;
    let mut seen = HashMap::new();
    for (job, (position, path)) in &jobs {
        if seen.insert(job.job_name.as_str(), ()).is_some() {
            return Err(FieldError::new(
                *position,
                path,
                format!(
                    "found multiple scrape configs with job name {:?}",
                    job.job_name
                ),
            ));
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_patterns() {
        assert!(is_valid_file_pattern("rules/*.yml"));
        assert!(is_valid_file_pattern("/etc/prometheus/rules.yml"));
        assert!(is_valid_file_pattern("rules/[ab].yml"));
        assert!(!is_valid_file_pattern("rules/*/x.yml"));
        assert!(is_valid_file_pattern("rules/**.yml"));
    }
}
