//! Loads the Prometheus configurations found in the project's seed documents
//! (`shared/seeds/`, beside the repository): every YAML block of every file
//! is extracted, its `{{PLACEHOLDERS}}` are filled with sample values, and
//! each block that is a Prometheus config (or a fragment of one, or one
//! embedded in a Kubernetes ConfigMap) is loaded. Blocks that are something
//! else are skipped by content, each kind with its reason below.
//!
//! The seeds are read at test time and never copied into this repository.
//! Without a seeds directory (e.g. a checkout on its own) the test passes
//! with a note; with one, it fails if no config was found in it.

use std::fs;
use std::path::{Path, PathBuf};

use config::Config;

/// Top-level keys of prometheus.yml: a block whose first key is one of these
/// is (part of) a Prometheus config.
const PROMETHEUS_TOP_LEVEL_KEYS: [&str; 11] = [
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

/// Seed blocks that Prometheus itself rejects, so we must reject them too:
/// (seed file, index among that file's config blocks, expected message).
const REJECTED_BY_PROMETHEUS: [(&str, usize, &str); 3] = [
    // `global` sets `scrape_timeout` twice: Prometheus' strict YAML parsing
    // fails with "field scrape_timeout already set".
    (
        "002_0197ab1739f54dbf.txt",
        0,
        r#"mapping key "scrape_timeout" already defined"#,
    ),
    // `global` sets `evaluation_interval` twice.
    (
        "002_0197ab1739f54dbf.txt",
        1,
        r#"mapping key "evaluation_interval" already defined"#,
    ),
    // `labels:` is indented under a target string instead of beside
    // `targets:`, which is a YAML syntax error ("mapping values are not
    // allowed in this context" in Go).
    (
        "002_0197ab1739f54dbf.txt",
        2,
        "mapping values are not allowed in this context",
    ),
];

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds")
}

/// A YAML block of a seed file. `lines[i]` is line `first_line + i` of the
/// file, so that error positions can be made to match the seed file.
#[derive(Debug, Clone)]
struct Block {
    first_line: usize,
    lines: Vec<String>,
}

/// What a block is, decided from its content.
#[derive(Debug)]
enum BlockKind {
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
    fn skip_reason(&self) -> String {
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
fn fenced_blocks(text: &str) -> Vec<Block> {
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

fn is_top_level_key_line(line: &str) -> bool {
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
fn unfenced_blocks(text: &str) -> Vec<Block> {
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
fn fill_placeholders(line: &str) -> String {
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
fn content_lines(block: &Block) -> impl Iterator<Item = &str> {
    block.lines.iter().map(String::as_str).filter(|line| {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#') && trimmed != "---"
    })
}

/// Text with `offset` empty lines in front, so that line N of the YAML is
/// line N of the seed file.
fn aligned(offset: usize, lines: &[String]) -> String {
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
fn embedded_config(block: &Block) -> Option<String> {
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

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn classify(block: &Block) -> BlockKind {
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

#[test]
fn seed_documents_configs_load() {
    let dir = seeds_dir();
    let Ok(entries) = fs::read_dir(&dir) else {
        eprintln!("no seeds directory at {}: nothing to check", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();

    let mut loaded = 0;
    let mut rejected_as_expected = 0;
    let mut failures = Vec::new();
    for file in &files {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = fs::read_to_string(file) else {
            eprintln!("{file_name}: not text, skipped");
            continue;
        };
        let mut blocks = fenced_blocks(&text);
        if blocks.is_empty() {
            blocks = unfenced_blocks(&text);
        }
        let mut config_index = 0;
        for block in blocks {
            let block = Block {
                first_line: block.first_line,
                lines: block.lines.iter().map(|l| fill_placeholders(l)).collect(),
            };
            let where_ = format!("{file_name}:{}", block.first_line);
            let yaml = match classify(&block) {
                BlockKind::Config(yaml) => yaml,
                other => {
                    eprintln!("{where_}: skipped: {}", other.skip_reason());
                    continue;
                }
            };
            let expected_rejection = REJECTED_BY_PROMETHEUS
                .iter()
                .find(|(name, index, _)| *name == file_name && *index == config_index)
                .map(|(_, _, message)| *message);
            config_index += 1;
            match (Config::from_str(&yaml, file), expected_rejection) {
                (Ok(config), None) => {
                    eprintln!(
                        "{where_}: loaded, {} scrape config(s), {} remote write(s)",
                        config.scrape_configs.len(),
                        config.remote_write.len()
                    );
                    loaded += 1;
                }
                (Err(error), Some(expected)) => {
                    eprintln!("{where_}: rejected as Prometheus does: {error}");
                    let positioned = error
                        .position
                        .is_some_and(|p| p.line as usize >= block.first_line);
                    if error.message.contains(expected) && positioned {
                        rejected_as_expected += 1;
                    } else {
                        failures.push(format!("{where_}: expected {expected:?}, got: {error}"));
                    }
                }
                (Err(error), None) => failures.push(format!("{where_}: {error}")),
                (Ok(_), Some(expected)) => failures.push(format!(
                    "{where_}: loaded, but Prometheus rejects it ({expected:?})"
                )),
            }
        }
    }
    eprintln!("{loaded} seed config(s) loaded, {rejected_as_expected} rejected as by Prometheus");
    assert!(
        failures.is_empty(),
        "seed configs failed:\n{}",
        failures.join("\n")
    );
    assert!(
        loaded > 0,
        "the seeds directory {} exists but no Prometheus config was found in it",
        dir.display()
    );
}

#[test]
fn placeholders_are_filled_but_templates_kept() {
    assert_eq!(
        fill_placeholders("job_name: 'federate-{{CLUSTER_NAME}}'"),
        "job_name: 'federate-cluster-name'"
    );
    assert_eq!(fill_placeholders("{{< text yaml >}}"), "{{< text yaml >}}");
    assert_eq!(fill_placeholders("{{ .Values.x }}"), "{{ .Values.x }}");
}

#[test]
fn configmaps_yield_their_embedded_config() {
    let block = Block {
        first_line: 10,
        lines: [
            "apiVersion: v1",
            "kind: ConfigMap",
            "data:",
            "  prometheus.yml: |",
            "    global:",
            "      scrape_interval: 15s",
            "    scrape_configs:",
            "      - job_name: x",
            "  other.yml: |",
            "    foo: bar",
        ]
        .map(String::from)
        .to_vec(),
    };
    let BlockKind::Config(yaml) = classify(&block) else {
        panic!("should find the embedded config");
    };
    let config = match Config::from_str(&yaml, "configmap.yml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(config.scrape_configs[0].job_name, "x");
    // Line 14 of the seed holds `global:`.
    assert_eq!(yaml.lines().position(|l| l == "global:"), Some(13));
}

#[test]
fn other_yaml_is_classified() {
    let block = |lines: &[&str]| Block {
        first_line: 2,
        lines: lines.iter().map(|l| (*l).to_owned()).collect(),
    };
    assert!(matches!(
        classify(&block(&["---", "apiVersion: apps/v1", "kind: StatefulSet"])),
        BlockKind::KubernetesManifest
    ));
    assert!(matches!(
        classify(&block(&["server:", "  image: {{ .Values.image }}"])),
        BlockKind::HelmTemplate
    ));
    assert!(matches!(
        classify(&block(&["http_requests_total{code=\"200\"} 3"])),
        BlockKind::NotPrometheus(_)
    ));
    assert!(matches!(
        classify(&block(&["- job_name: a"])),
        BlockKind::Config(_)
    ));
}
