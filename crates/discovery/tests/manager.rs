//! The discovery manager end to end: static and file providers merged per job, file changes
//! picked up by polling (new, changed, removed files), and reloads that keep unchanged
//! providers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use discovery::{
    DiscovererOptions, DiscoveryManager, DiscoveryOptions, SdConfig, TargetSets,
    sd_configs_for_scrape,
};
use tokio::sync::watch;

fn options() -> DiscoveryOptions {
    DiscoveryOptions {
        update_interval: Duration::from_millis(20),
        discoverer: DiscovererOptions {
            file_poll_interval: Duration::from_millis(20),
            ..DiscovererOptions::default()
        },
    }
}

fn jobs_from_yaml(yaml: &str, dir: &Path) -> BTreeMap<String, Vec<Arc<dyn SdConfig>>> {
    let config = match config::Config::from_str(yaml, dir.join("prometheus.yml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    config
        .scrape_configs
        .iter()
        .map(|s| (s.job_name.clone(), sd_configs_for_scrape(s)))
        .collect()
}

/// Addresses per job, sorted.
fn addresses(sets: &TargetSets) -> BTreeMap<String, Vec<String>> {
    sets.iter()
        .map(|(job, groups)| {
            let mut addresses: Vec<String> = groups
                .iter()
                .flat_map(|g| g.targets.iter())
                .filter_map(|t| t.get("__address__").map(str::to_owned))
                .collect();
            addresses.sort();
            (job.clone(), addresses)
        })
        .collect()
}

/// Waits (bounded) until the published sets satisfy `check`.
async fn wait_for(
    receiver: &mut watch::Receiver<Arc<TargetSets>>,
    what: &str,
    check: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) -> Arc<TargetSets> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let current = receiver.borrow_and_update().clone();
        if check(&addresses(&current)) {
            return current;
        }
        if tokio::time::timeout_at(deadline, receiver.changed())
            .await
            .is_err()
        {
            panic!(
                "timed out waiting for {what}; last: {:?}",
                addresses(&current)
            );
        }
    }
}

fn targets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn static_and_file_providers_merge_per_job() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("a.json"),
        r#"[{"targets": ["file:1"], "labels": {"team": "x"}}]"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let yaml = "scrape_configs:\n- job_name: node\n  static_configs:\n  - targets: ['static:1']\n  file_sd_configs:\n  - files: ['*.json', '*.yml']\n- job_name: empty\n";
    let (manager, mut receiver) = DiscoveryManager::new(options());
    manager.apply_config(&jobs_from_yaml(yaml, dir.path()));
    let sets = wait_for(&mut receiver, "both providers", |a| {
        a.get("node") == Some(&targets(&["file:1", "static:1"]))
    })
    .await;
    assert_eq!(sets.get("empty").map(Vec::len), Some(0));
    let file_group = sets["node"]
        .iter()
        .find(|g| g.labels.get("team").is_some())
        .unwrap_or_else(|| panic!("file group"));
    let path = dir.path().join("a.json").display().to_string();
    assert_eq!(file_group.source, format!("{path}:0"));
    assert_eq!(
        file_group.labels.get("__meta_filepath"),
        Some(path.as_str())
    );

    // A new YAML file matching a pattern is picked up.
    std::fs::write(
        dir.path().join("b.yml"),
        "- targets: ['yaml:1', 'yaml:2']\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&mut receiver, "the new yaml file", |a| {
        a.get("node") == Some(&targets(&["file:1", "static:1", "yaml:1", "yaml:2"]))
    })
    .await;

    // A changed file replaces its groups; fewer groups clear the missing sources.
    std::fs::write(dir.path().join("b.yml"), "- targets: ['yaml:3']\n")
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&mut receiver, "the changed yaml file", |a| {
        a.get("node") == Some(&targets(&["file:1", "static:1", "yaml:3"]))
    })
    .await;

    // A broken file keeps its previous targets.
    std::fs::write(dir.path().join("a.json"), "[{").unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        addresses(&manager.current()).get("node"),
        Some(&targets(&["file:1", "static:1", "yaml:3"]))
    );

    // A removed file drops its targets.
    std::fs::remove_file(dir.path().join("b.yml")).unwrap_or_else(|e| panic!("{e}"));
    wait_for(&mut receiver, "the removed file", |a| {
        a.get("node") == Some(&targets(&["file:1", "static:1"]))
    })
    .await;
    manager.stop();
}

#[tokio::test]
async fn reload_keeps_unchanged_providers_and_replaces_changed_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("t.json"), r#"[{"targets": ["f:1"]}]"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let first = "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['t.json']\n- job_name: b\n  static_configs:\n  - targets: ['s:1']\n";
    let (manager, mut receiver) = DiscoveryManager::new(options());
    manager.apply_config(&jobs_from_yaml(first, dir.path()));
    wait_for(&mut receiver, "first config", |a| {
        a.get("a") == Some(&targets(&["f:1"])) && a.get("b") == Some(&targets(&["s:1"]))
    })
    .await;

    // Same file config, changed static targets, a job removed and one added.
    let second = "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['t.json']\n- job_name: c\n  static_configs:\n  - targets: ['s:2']\n";
    manager.apply_config(&jobs_from_yaml(second, dir.path()));
    // The kept file provider still has its groups right away (a new one would start empty).
    assert_eq!(
        addresses(&manager.current()).get("a"),
        Some(&targets(&["f:1"]))
    );
    wait_for(&mut receiver, "second config", |a| {
        a.get("a") == Some(&targets(&["f:1"]))
            && a.get("c") == Some(&targets(&["s:2"]))
            && !a.contains_key("b")
    })
    .await;
    manager.stop();
}
