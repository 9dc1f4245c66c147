//! Configuration reloads and target changes: unchanged jobs keep their loops and caches,
//! changed jobs pick up new settings, removed targets and jobs get end-of-run staleness
//! markers, a bad configuration is rejected with the old one still running; target
//! relabeling (dropped targets) and `target_limit` through file-based discovery.

mod common;

use std::time::Duration;

use common::*;
use scrape::TargetHealth;
use storage::memory::MemStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_jobs_keep_loops_and_caches_changed_jobs_restart() {
    let first_target = TestTarget::start("a 1\n").await;
    let second_target = TestTarget::start("b 1\n").await;
    let (one, two) = (first_target.addr, second_target.addr);
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let yaml = |relabel: &str| {
        format!(
            "scrape_configs:\n- job_name: one\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n  static_configs:\n  - targets: ['{one}']\n- job_name: two\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n{relabel}  static_configs:\n  - targets: ['{two}']\n"
        )
    };
    manager
        .apply_config(&load_config(&yaml("")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up_one = series("up", one, "one", &[]);
    let up_two = series("up", two, "two", &[]);
    wait_until("both scraped", || {
        values(&storage, &up_one).len() >= 2 && values(&storage, &up_two).len() >= 2
    })
    .await;

    // Reload: job one unchanged, job two gets a metric relabeling rule that adds a label.
    let relabel = "  metric_relabel_configs:\n  - target_label: v\n    replacement: '2'\n";
    manager
        .apply_config(&load_config(&yaml(relabel)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = values(&storage, &up_one).len();
    let b_v2 = series("b", two, "two", &[("v", "2")]);
    wait_until("new rule applied", || !values(&storage, &b_v2).is_empty()).await;
    wait_until("one keeps scraping", || {
        values(&storage, &up_one).len() >= before + 2
    })
    .await;

    // Job one's cache survived: it never reported a new series again.
    let added_one = values(&storage, &series("scrape_series_added", one, "one", &[]));
    assert_eq!(added_one[0], 1.0);
    assert!(added_one[1..].iter().all(|v| *v == 0.0), "{added_one:?}");
    // Job two's old series is stale (its label set is no longer produced).
    let b_old = series("b", two, "two", &[]);
    wait_until("old b stale", || {
        points(&storage, &b_old).iter().any(|p| p.stale)
    })
    .await;
    // Job one's series never got a staleness marker.
    assert!(
        points(&storage, &series("a", one, "one", &[]))
            .iter()
            .all(|p| !p.stale)
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_rejected_and_the_old_one_keeps_running() {
    let target = TestTarget::start("a 1\n").await;
    let addr = target.addr;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "j", &[]);
    wait_until("scraping", || !values(&storage, &up).is_empty()).await;

    let bad = job_config(
        "other",
        addr,
        "100ms",
        "  tls_config:\n    ca_file: /nonexistent/ca.pem\n",
    );
    let error = manager.apply_config(&load_config(&bad)).await;
    assert!(
        error
            .as_ref()
            .is_err_and(|e| e.to_string().contains("unable to read CA cert")),
        "{error:?}"
    );
    let before = values(&storage, &up).len();
    wait_until("old config still scraping", || {
        values(&storage, &up).len() >= before + 2
    })
    .await;
    let report = manager.targets().await;
    assert_eq!(report.active.len(), 1);
    assert_eq!(report.active[0].scrape_pool, "j");
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_jobs_get_end_of_run_staleness_markers() {
    let target = TestTarget::start("a 1\n").await;
    let addr = target.addr;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = series("a", addr, "j", &[]);
    let up = series("up", addr, "j", &[]);
    wait_until("scraping", || !values(&storage, &a).is_empty()).await;
    manager
        .apply_config(&load_config("scrape_configs: []\n"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Markers come about two intervals later, for the scraped and the synthetic series.
    wait_until("a stale", || points(&storage, &a).iter().any(|p| p.stale)).await;
    wait_until("up stale", || points(&storage, &up).iter().any(|p| p.stale)).await;
    let last_real = points(&storage, &a)
        .iter()
        .filter(|p| !p.stale)
        .map(|p| p.t)
        .max();
    let marker = points(&storage, &a).iter().find(|p| p.stale).map(|p| p.t);
    assert!(marker > last_real);
    assert!(manager.targets().await.active.is_empty());
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_discovery_relabeling_dropped_targets_and_target_limit() {
    let first = TestTarget::start("a 1\n").await;
    let second = TestTarget::start("a 2\n").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("targets.json");
    let write = |addrs: &[std::net::SocketAddr]| {
        let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        let text = format!(
            "[{{\"targets\": [{}, \"skip.invalid:1\"], \"labels\": {{\"team\": \"x\"}}}}]",
            list.join(", ")
        );
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    };
    write(&[first.addr]);
    let yaml = |limit: u32| {
        format!(
            "scrape_configs:\n- job_name: f\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n  target_limit: {limit}\n  file_sd_configs:\n  - files: ['*.json']\n  relabel_configs:\n  - source_labels: [__address__]\n    regex: skip.*\n    action: drop\n  - source_labels: [__meta_filepath]\n    regex: .*/(.*)\n    target_label: file\n"
        )
    };
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config_in(&yaml(0), dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a1 = series(
        "a",
        first.addr,
        "f",
        &[("file", "targets.json"), ("team", "x")],
    );
    wait_until("first target scraped", || !values(&storage, &a1).is_empty()).await;
    let report = manager.targets().await;
    assert_eq!(report.active.len(), 1);
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(
        report.dropped[0].discovered_labels.get("__address__"),
        Some("skip.invalid:1")
    );
    assert!(
        report.active[0]
            .discovered_labels
            .get("__meta_filepath")
            .is_some_and(|p| p.ends_with("targets.json"))
    );

    // A second target appears in the file.
    write(&[first.addr, second.addr]);
    let a2 = series(
        "a",
        second.addr,
        "f",
        &[("file", "targets.json"), ("team", "x")],
    );
    wait_until("second target scraped", || {
        !values(&storage, &a2).is_empty()
    })
    .await;

    // The first one goes away: its series get markers, the second keeps going.
    write(&[second.addr]);
    wait_until("first target stale", || {
        points(&storage, &a1).iter().any(|p| p.stale)
    })
    .await;
    assert_eq!(manager.targets().await.active.len(), 1);

    // target_limit below the number of targets fails every scrape of the job.
    write(&[first.addr, second.addr]);
    manager
        .apply_config(&load_config_in(&yaml(1), dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up2 = series(
        "up",
        second.addr,
        "f",
        &[("file", "targets.json"), ("team", "x")],
    );
    wait_until("target limit", || values(&storage, &up2).contains(&0.0)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let report = manager.targets().await;
    assert_eq!(report.active.len(), 2);
    for target in &report.active {
        assert_eq!(target.health, TargetHealth::Down);
        assert_eq!(
            target.last_error,
            "target_limit exceeded (number of targets: 2, limit: 1)"
        );
    }
    manager.stop().await;
}
