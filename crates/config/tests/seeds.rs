//! Loads the Prometheus configurations found in the project's seed documents
//! (`shared/seeds/`, beside the repository): every YAML block of every file
//! is extracted, its `{{PLACEHOLDERS}}` are filled with sample values, and
//! each block that is a Prometheus config (or a fragment of one, or one
//! embedded in a Kubernetes ConfigMap) is loaded. Blocks that are something
//! else are skipped by content, each kind with its reason (the extraction
//! and classification live in `support/seed_blocks.rs`, shared with the
//! binary's differential test against promtool).
//!
//! The seeds are read at test time and never copied into this repository.
//! Without a seeds directory (e.g. a checkout on its own) the test passes
//! with a note; with one, it fails if no config was found in it.

use std::fs;

use config::Config;

#[path = "support/seed_blocks.rs"]
mod seed_blocks;

use seed_blocks::{
    Block, BlockKind, classify, fill_placeholders, seed_blocks, seed_files, seeds_dir,
};

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

#[test]
fn seed_documents_configs_load() {
    let dir = seeds_dir(env!("CARGO_MANIFEST_DIR"));
    let Some(files) = seed_files(&dir) else {
        eprintln!("no seeds directory at {}: nothing to check", dir.display());
        return;
    };

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
        let mut config_index = 0;
        for seed in seed_blocks(&file_name, &text) {
            let where_ = seed.location();
            let block = &seed.block;
            let yaml = match seed.kind {
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
