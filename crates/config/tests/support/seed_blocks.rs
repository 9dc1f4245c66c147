//! Finds the Prometheus configurations in the project's seed documents
//! (`shared/seeds/`): extracts the YAML blocks of a document (Hugo and
//! Markdown fences, or YAML written straight into plain text), fills their
//! `{{PLACEHOLDERS}}` with sample values, and classifies each block: a
//! Prometheus config (line-aligned with the seed file, so error positions
//! match it), or something else with the reason it is not one.
//!
//! Shared by the config crate's `tests/seeds.rs` and the binary's
//! `tests/check_config_promtool.rs` through `#[path]`; each uses only part of
//! it, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The seeds directory beside the repository, found from a crate's manifest
/// directory (`crates/<name>`).
pub fn seeds_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../../../shared/seeds")
}

/// One YAML block of a seed file, placeholders filled, with what it is.
#[derive(Debug)]
pub struct SeedBlock {
    pub file_name: String,
    pub block: Block,
    pub kind: BlockKind,
}

impl SeedBlock {
    /// `file:line` of the block's first line, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file_name, self.block.first_line)
    }
}

/// The seed files in `dir`, sorted by name; `None` when there is no such
/// directory.
pub fn seed_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Every YAML block of seed document `text` (fenced blocks, or unfenced
/// YAML when the document has no fences), placeholders filled, classified.
pub fn seed_blocks(file_name: &str, text: &str) -> Vec<SeedBlock> {
    let mut blocks = fenced_blocks(text);
    if blocks.is_empty() {
        blocks = unfenced_blocks(text);
    }
    blocks
        .into_iter()
        .map(|block| {
            let block = Block {
                first_line: block.first_line,
                lines: block.lines.iter().map(|l| fill_placeholders(l)).collect(),
            };
            let kind = classify(&block);
            SeedBlock {
                file_name: file_name.to_owned(),
                block,
                kind,
            }
        })
        .collect()
}

/// Top-level keys of prometheus.yml: a block whose first key is one of these
/// is (part of) a Prometheus config.
pub const PROMETHEUS_TOP_LEVEL_KEYS: [&str; 11] = [
    "global",
    "runtime",
    "rule_files",
    "scrape_config_files",
    "scrape_configs",
    "alerting",
    "remote_write",
    "remote_read",
    "storage",
    "otlp",
    "tracing",
];

/// A YAML block of a seed file. `lines[i]` is line `first_line + i` of the
/// file, so that error positions can be made to match the seed file.
#[derive(Debug, Clone)]
pub struct Block {
    pub first_line: usize,
    pub lines: Vec<String>,
}

/// What a block is, decided from its content.
#[derive(Debug)]
pub enum BlockKind {
    /// A Prometheus config, ready to load (line-aligned with the seed file).
    Config(String),
    /// A Kubernetes object (StatefulSet, Service, Ingress, a Prometheus
    /// Operator ServiceMonitor, ...): input for kubectl or the operator,
    /// not for Prometheus, so not loadable as prometheus.yml.
    KubernetesManifest,
    /// A Helm chart template or values file with Go templating (`{{ .Values }}`):
    /// it only becomes YAML for Prometheus after Helm renders it.
    HelmTemplate,
    /// Anything else: exposition-format samples, shell sessions, other tools'
    /// YAML. Their first key (if any) says which.
    NotPrometheus(String),
}

impl BlockKind {
    pub fn skip_reason(&self) -> String {
        match self {
            BlockKind::Config(_) => "not skipped".to_owned(),
            BlockKind::KubernetesManifest => "a Kubernetes manifest".to_owned(),
            BlockKind::HelmTemplate => "a Helm template".to_owned(),
            BlockKind::NotPrometheus(why) => format!("not a Prometheus config ({why})"),
        }
    }
}

/// The blocks of a Hugo (`{{< text yaml >}}`) or Markdown (```yaml) fence.
/// Untagged fences are included; classification sorts them out.
pub fn fenced_blocks(text: &str) -> Vec<Block> {
    struct Fence {
        hugo: bool,
        /// Other languages (bash, json, ...) are tracked only to find their end.
        yaml_like: bool,
        block: Block,
    }
    let mut blocks = Vec::new();
    let mut open: Option<Fence> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        match &mut open {
            None => {
                let language = if let Some(rest) = trimmed.strip_prefix("{{< text ") {
                    Some((true, rest.split_whitespace().next().unwrap_or("")))
                } else {
                    trimmed.strip_prefix("```").map(|rest| (false, rest.trim()))
                };
                if let Some((hugo, language)) = language {
                    open = Some(Fence {
                        hugo,
                        yaml_like: matches!(language, "yaml" | "yml" | ""),
                        block: Block {
                            first_line: index + 2,
                            lines: Vec::new(),
                        },
                    });
                }
            }
            Some(fence) => {
                let closes = if fence.hugo {
                    trimmed.starts_with("{{< /text")
                } else {
                    trimmed.starts_with("```")
                };
                if !closes {
                    fence.block.lines.push(line.to_owned());
                } else if let Some(fence) = open.take()
                    && fence.yaml_like
                {
                    blocks.push(fence.block);
                }
            }
        }
    }
    blocks
}

pub fn is_top_level_key_line(line: &str) -> bool {
    let Some((key, _)) = line.split_once(':') else {
        return false;
    };
    !key.is_empty()
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// YAML written straight into plain text, as in a blog post without Markdown:
/// a run of lines that starts with a top-level `key:` line and goes on with
/// indented lines, list items or further `key:` lines; prose ends it.
pub fn unfenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let continues = !line.trim().is_empty()
            && (line.starts_with(' ')
                || line.starts_with('\t')
                || line.starts_with('-')
                || line.starts_with('#')
                || is_top_level_key_line(line));
        match &mut current {
            Some(block) if continues => block.lines.push(line.to_owned()),
            _ => {
                if let Some(block) = current.take() {
                    blocks.push(block);
                }
                if is_top_level_key_line(line) {
                    current = Some(Block {
                        first_line: index + 1,
                        lines: vec![line.to_owned()],
                    });
                }
            }
        }
    }
    blocks.extend(current);
    blocks
}

/// Replaces `{{NAME}}` placeholders with a sample value (`cluster-name` for
/// `{{CLUSTER_NAME}}`); Hugo shortcodes and Go templates are left alone.
pub fn fill_placeholders(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if !name.is_empty() && after[name_len..].starts_with("}}") {
            out.push_str(&name.to_ascii_lowercase().replace('_', "-"));
            rest = &after[name_len + 2..];
        } else {
            out.push_str("{{");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Lines that carry content (not blank, not comments, not `---`).
pub fn content_lines(block: &Block) -> impl Iterator<Item = &str> {
    block.lines.iter().map(String::as_str).filter(|line| {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#') && trimmed != "---"
    })
}

/// Text with `offset` empty lines in front, so that line N of the YAML is
/// line N of the seed file.
pub fn aligned(offset: usize, lines: &[String]) -> String {
    let mut text = "\n".repeat(offset);
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A `prometheus.yml:` key inside a ConfigMap (`prometheus.yml: |`) or Helm
/// values (`serverFiles: prometheus.yml:`): returns the embedded config,
/// dedented and line-aligned, if there is one.
pub fn embedded_config(block: &Block) -> Option<String> {
    let key_index = block.lines.iter().position(|line| {
        let trimmed = line.trim_start();
        trimmed.starts_with("prometheus.yml:") || trimmed.starts_with("prometheus.yaml:")
    })?;
    let key_indent = indent_of(&block.lines[key_index]);
    let body: Vec<&String> = block.lines[key_index + 1..]
        .iter()
        .take_while(|line| line.trim().is_empty() || indent_of(line) > key_indent)
        .collect();
    let body_indent = body
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| indent_of(line))
        .min()?;
    let dedented: Vec<String> = body
        .iter()
        .map(|line| line.get(body_indent..).unwrap_or("").to_owned())
        .collect();
    Some(aligned(block.first_line + key_index, &dedented))
}

pub fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

pub fn classify(block: &Block) -> BlockKind {
    if let Some(config) = embedded_config(block) {
        return BlockKind::Config(config);
    }
    let top_level_keys: Vec<&str> = content_lines(block)
        .filter(|line| is_top_level_key_line(line))
        .filter_map(|line| line.split_once(':').map(|(key, _)| key))
        .collect();
    if top_level_keys.contains(&"apiVersion") && top_level_keys.contains(&"kind") {
        return BlockKind::KubernetesManifest;
    }
    if block.lines.iter().any(|line| line.contains("{{")) {
        return BlockKind::HelmTemplate;
    }
    let Some(first) = content_lines(block).next() else {
        return BlockKind::NotPrometheus("empty block".to_owned());
    };
    // A bare list of jobs is the body of `scrape_configs`: the fence line
    // before the block becomes the key, keeping lines aligned.
    if first.starts_with("- job_name:") {
        let mut text = "\n".repeat(block.first_line.saturating_sub(2));
        text.push_str("scrape_configs:\n");
        text.push_str(&aligned(0, &block.lines));
        return BlockKind::Config(text);
    }
    match top_level_keys.first() {
        Some(key) if PROMETHEUS_TOP_LEVEL_KEYS.contains(key) => {
            BlockKind::Config(aligned(block.first_line - 1, &block.lines))
        }
        Some(key) => BlockKind::NotPrometheus(format!("first key is {key:?}")),
        None => BlockKind::NotPrometheus(format!("not YAML: {first:?}")),
    }
}
