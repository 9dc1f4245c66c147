//! The scrape manager's self-metrics end to end: the `prometheus_target_*` and
//! `prometheus_sd_*` families appear with Prometheus' types and labels, and move when their
//! events happen (sample and body size limits, label limits, duplicate and out-of-order
//! timestamps, target limit, syncs, file discovery reads and errors, reloads, pool
//! creations, failed pool creations).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestTarget, job_config, load_config, load_config_in, manager, wait_until};
use scrape::ScrapeManager;
use storage::memory::MemStorage;

fn render(manager: &ScrapeManager) -> String {
    let mut out = Vec::new();
    manager.write_metrics(&mut model::exposition::TextEncoder::new(&mut out));
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the series written exactly as `series` (`name` or `name{labels}`).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.parse().ok()
    })
}

/// Family name → type, from the `# TYPE` lines.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

async fn wait_for_value(manager: &ScrapeManager, series: &str, check: impl Fn(f64) -> bool) {
    wait_until(series, || {
        value(&render(manager), series).is_some_and(&check)
    })
    .await;
}

async fn apply(manager: &ScrapeManager, yaml: &str) {
    manager
        .apply_config(&load_config(yaml))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_types_and_labels() {
    let target = TestTarget::start("# HELP a An a.\n# TYPE a gauge\na 1\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    apply(&manager, &job_config("j", target.addr, "50ms", "")).await;
    wait_for_value(
        &manager,
        "prometheus_target_interval_length_seconds_count{interval=\"50ms\"}",
        |v| v >= 2.0,
    )
    .await;
    let text = render(&manager);
    let types = types(&text);
    let expected = [
        ("prometheus_target_interval_length_seconds", "summary"),
        ("prometheus_target_metadata_cache_bytes", "gauge"),
        ("prometheus_target_metadata_cache_entries", "gauge"),
        (
            "prometheus_target_scrape_pool_exceeded_label_limits_total",
            "counter",
        ),
        (
            "prometheus_target_scrape_pool_exceeded_target_limit_total",
            "counter",
        ),
        (
            "prometheus_target_scrape_pool_reloads_failed_total",
            "counter",
        ),
        ("prometheus_target_scrape_pool_reloads_total", "counter"),
        ("prometheus_target_scrape_pool_sync_total", "counter"),
        ("prometheus_target_scrape_pool_target_limit", "gauge"),
        ("prometheus_target_scrape_pool_targets", "gauge"),
        ("prometheus_target_scrape_pools_failed_total", "counter"),
        ("prometheus_target_scrape_pools_total", "counter"),
        (
            "prometheus_target_scrapes_cache_flush_forced_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_exceeded_body_size_limit_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_exceeded_sample_limit_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_exemplar_out_of_order_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            "counter",
        ),
        (
            "prometheus_target_scrapes_sample_out_of_order_total",
            "counter",
        ),
        ("prometheus_target_sync_failed_total", "counter"),
        ("prometheus_target_sync_length_seconds", "summary"),
        ("prometheus_sd_discovered_targets", "gauge"),
        ("prometheus_sd_failed_configs", "gauge"),
        ("prometheus_sd_received_updates_total", "counter"),
        ("prometheus_sd_updates_delayed_total", "counter"),
        ("prometheus_sd_updates_total", "counter"),
        ("prometheus_sd_file_read_errors_total", "counter"),
        ("prometheus_sd_file_scan_duration_seconds", "summary"),
        ("prometheus_sd_file_watcher_errors_total", "counter"),
    ];
    for (family, kind) in expected {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}\n{text}"
        );
    }
    // Labels as Prometheus has them.
    for series in [
        "prometheus_target_interval_length_seconds{interval=\"50ms\",quantile=\"0.99\"}",
        "prometheus_target_interval_length_seconds_sum{interval=\"50ms\"}",
        "prometheus_target_metadata_cache_entries{scrape_job=\"j\"}",
        "prometheus_target_metadata_cache_bytes{scrape_job=\"j\"}",
        "prometheus_target_scrape_pool_sync_total{scrape_job=\"j\"}",
        "prometheus_target_scrape_pool_targets{scrape_job=\"j\"}",
        "prometheus_target_scrape_pool_target_limit{scrape_job=\"j\"}",
        "prometheus_target_sync_failed_total{scrape_job=\"j\"}",
        "prometheus_target_sync_length_seconds{scrape_job=\"j\",quantile=\"0.5\"}",
        "prometheus_target_sync_length_seconds_count{scrape_job=\"j\"}",
        "prometheus_sd_discovered_targets{config=\"j\",name=\"scrape\"}",
        "prometheus_sd_failed_configs{name=\"scrape\"}",
        "prometheus_sd_received_updates_total{name=\"scrape\"}",
        "prometheus_sd_updates_delayed_total{name=\"scrape\"}",
        "prometheus_sd_updates_total{name=\"scrape\"}",
    ] {
        assert!(
            value(&text, series).is_some(),
            "{series} missing in\n{text}"
        );
    }
    // The intervals observed are about the configured one.
    let median = value(
        &text,
        "prometheus_target_interval_length_seconds{interval=\"50ms\",quantile=\"0.5\"}",
    );
    assert!(
        median.is_some_and(|m| (0.04..0.2).contains(&m)),
        "{median:?}"
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_scrape_pool_targets{scrape_job=\"j\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_sd_discovered_targets{config=\"j\",name=\"scrape\"}"
        ),
        Some(1.0)
    );
    // One family `a`: type "gauge" (5) and help "An a." (5).
    assert_eq!(
        value(
            &text,
            "prometheus_target_metadata_cache_entries{scrape_job=\"j\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_metadata_cache_bytes{scrape_job=\"j\"}"
        ),
        Some(10.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pools_total"),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "prometheus_sd_received_updates_total{name=\"scrape\"}"
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(value(&text, "prometheus_sd_updates_total{name=\"scrape\"}").is_some_and(|v| v >= 1.0));
    // What the manager writes passes the strict parser (families, types, summaries).
    let mut parser =
        model::exposition::Parser::new(text.as_bytes(), model::exposition::Format::Text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .strict();
    while let Some(entry) = parser.next_entry() {
        if let Err(e) = entry {
            panic!("{e:?}\n{text}");
        }
    }
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_refused_samples_are_counted() {
    let target = TestTarget::start("a 1\nb{x=\"1\"} 2\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;

    apply(
        &manager,
        &job_config("j", addr, "50ms", "  sample_limit: 1\n"),
    )
    .await;
    wait_for_value(
        &manager,
        "prometheus_target_scrapes_exceeded_sample_limit_total",
        |v| v >= 2.0,
    )
    .await;

    apply(
        &manager,
        &job_config("j", addr, "50ms", "  label_limit: 3\n"),
    )
    .await;
    wait_for_value(
        &manager,
        "prometheus_target_scrape_pool_exceeded_label_limits_total",
        |v| v >= 1.0,
    )
    .await;

    apply(
        &manager,
        &job_config("j", addr, "50ms", "  body_size_limit: 4B\n"),
    )
    .await;
    wait_for_value(
        &manager,
        "prometheus_target_scrapes_exceeded_body_size_limit_total",
        |v| v >= 1.0,
    )
    .await;

    // Explicit timestamps: the same timestamp with another value is a duplicate; an older
    // one is out of order. Each scrape refuses one of each.
    apply(&manager, &job_config("j", addr, "50ms", "")).await;
    target.set_body("d 1 1000\no 1 5000\n");
    wait_until("the first samples", || {
        !common::values(&storage, &common::series("o", addr, "j", &[])).is_empty()
    })
    .await;
    target.set_body("d 2 1000\no 2 4000\n");
    wait_for_value(
        &manager,
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        |v| v >= 2.0,
    )
    .await;
    wait_for_value(
        &manager,
        "prometheus_target_scrapes_sample_out_of_order_total",
        |v| v >= 2.0,
    )
    .await;
    let text = render(&manager);
    // Three changed configs: three reloads, none failed, the reload time by interval.
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_total"),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_failed_total"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_reload_length_seconds_count{interval=\"50ms\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pools_total"),
        Some(1.0)
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_reloads_syncs_and_file_discovery() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = TestTarget::start("m 1\n").await;
    let b = TestTarget::start("m 1\n").await;
    let file = dir.path().join("targets.json");
    let write_targets = |addrs: &[std::net::SocketAddr]| {
        let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        std::fs::write(&file, format!("[{{\"targets\": [{}]}}]", list.join(",")))
            .unwrap_or_else(|e| panic!("{e}"));
    };
    write_targets(&[a.addr]);
    let yaml = |interval: &str, limit: u32| {
        format!(
            "scrape_configs:\n- job_name: f\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  target_limit: {limit}\n  file_sd_configs:\n  - files: ['{}']\n",
            dir.path().join("*.json").display()
        )
    };
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config_in(&yaml("1m", 1), dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for_value(
        &manager,
        "prometheus_target_scrape_pool_targets{scrape_job=\"f\"}",
        |v| v == 1.0,
    )
    .await;
    let text = render(&manager);
    let file_name = file.display().to_string();
    assert!(
        value(
            &text,
            &format!("prometheus_sd_file_mtime_seconds{{filename=\"{file_name}\"}}")
        )
        .is_some_and(|t| t > 1.0e9),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_scrape_pool_target_limit{scrape_job=\"f\"}"
        ),
        Some(1.0)
    );
    assert!(
        value(&text, "prometheus_sd_file_scan_duration_seconds_count").is_some_and(|v| v >= 1.0)
    );
    let syncs = value(
        &text,
        "prometheus_target_scrape_pool_sync_total{scrape_job=\"f\"}",
    )
    .unwrap_or_default();

    // A second target: over the target limit of 1.
    write_targets(&[a.addr, b.addr]);
    wait_for_value(
        &manager,
        "prometheus_target_scrape_pool_exceeded_target_limit_total",
        |v| v >= 1.0,
    )
    .await;
    let text = render(&manager);
    assert_eq!(
        value(
            &text,
            "prometheus_target_scrape_pool_targets{scrape_job=\"f\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_sd_discovered_targets{config=\"f\",name=\"scrape\"}"
        ),
        Some(2.0)
    );
    assert!(
        value(
            &text,
            "prometheus_target_scrape_pool_sync_total{scrape_job=\"f\"}"
        )
        .is_some_and(|v| v > syncs)
    );

    // A file that does not parse is a read error (the previous targets stay).
    std::fs::write(&file, "not json").unwrap_or_else(|e| panic!("{e}"));
    wait_for_value(&manager, "prometheus_sd_file_read_errors_total", |v| {
        v >= 1.0
    })
    .await;

    // A reload with another interval: a reload timed under the new interval, in Go's
    // spelling.
    manager
        .apply_config(&load_config_in(&yaml("2m", 5), dir.path()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = render(&manager);
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_total"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_reload_length_seconds_count{interval=\"2m0s\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "prometheus_target_scrape_pool_target_limit{scrape_job=\"f\"}"
        ),
        Some(5.0)
    );

    // A job whose client cannot be built: the configuration is refused and the pool
    // creation counted as failed; for the running job, as a failed reload.
    let bad_ca = "  tls_config:\n    ca_file: /nonexistent/ca.pem\n";
    let new_job = format!(
        "{}- job_name: g\n  static_configs:\n  - targets: ['{}']\n{bad_ca}",
        yaml("2m", 5),
        a.addr
    );
    assert!(
        manager
            .apply_config(&load_config_in(&new_job, dir.path()))
            .await
            .is_err()
    );
    let changed_job = format!("{}{bad_ca}", yaml("2m", 5));
    assert!(
        manager
            .apply_config(&load_config_in(&changed_job, dir.path()))
            .await
            .is_err()
    );
    let text = render(&manager);
    assert_eq!(
        value(&text, "prometheus_target_scrape_pools_total"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pools_failed_total"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_total"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_failed_total"),
        Some(1.0)
    );

    // Removing the job removes its labelled series.
    apply(&manager, "scrape_configs: []\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let text = render(&manager);
    assert!(!text.contains("scrape_job=\"f\""), "{text}");
    manager.stop().await;
}
