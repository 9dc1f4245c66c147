//! Scraping synthetic targets end to end into `MemStorage`: stored series and labels, the
//! synthetic series, staleness, limits, honor_labels and honor_timestamps, metric relabeling,
//! HTTP details (headers, gzip, body limit, timeouts, content types) and OpenMetrics.

mod common;

use std::time::Duration;

use common::*;
use scrape::TargetHealth;
use storage::memory::MemStorage;

const BODY: &str =
    "# HELP a_total A counter.\n# TYPE a_total counter\na_total{path=\"/x\"} 3\nb 1.5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_series_with_target_labels_and_synthetic_series() {
    let target = TestTarget::start(BODY).await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    let config = load_config(&job_config("app", addr, "100ms", ""));
    manager
        .apply_config(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "app", &[]);
    wait_until("three scrapes", || values(&storage, &up).len() >= 3).await;

    let a = series("a_total", addr, "app", &[("path", "/x")]);
    let b = series("b", addr, "app", &[]);
    assert!(values(&storage, &a).iter().all(|v| *v == 3.0));
    assert!(values(&storage, &b).iter().all(|v| *v == 1.5));
    assert!(values(&storage, &up).iter().all(|v| *v == 1.0));
    let scraped = values(
        &storage,
        &series("scrape_samples_scraped", addr, "app", &[]),
    );
    assert!(scraped.iter().all(|v| *v == 2.0), "{scraped:?}");
    let post = values(
        &storage,
        &series("scrape_samples_post_metric_relabeling", addr, "app", &[]),
    );
    assert!(post.iter().all(|v| *v == 2.0));
    let added = values(&storage, &series("scrape_series_added", addr, "app", &[]));
    assert_eq!(added[0], 2.0);
    assert!(
        added[1..].iter().all(|v| *v == 0.0),
        "cache hits add no series: {added:?}"
    );
    assert!(
        !values(
            &storage,
            &series("scrape_duration_seconds", addr, "app", &[])
        )
        .is_empty()
    );
    // Samples of one scrape share the timestamp of `up`.
    let up_points = points(&storage, &up);
    let a_points = points(&storage, &a);
    assert_eq!(up_points[0].t, a_points[0].t);

    let report = manager.targets().await;
    assert_eq!(report.active.len(), 1);
    let info = &report.active[0];
    assert_eq!(info.health, TargetHealth::Up);
    assert_eq!(info.last_error, "");
    assert_eq!(info.scrape_url, format!("http://{addr}/metrics"));
    assert_eq!(info.labels.get("instance"), Some(addr.to_string().as_str()));
    assert_eq!(
        info.discovered_labels.get("__scrape_interval__"),
        Some("100ms")
    );
    assert!(info.last_scrape.is_some());

    // Prometheus' request headers.
    let request = &target.requests()[0];
    let header = |name: &str| {
        request
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(header("accept").starts_with("application/openmetrics-text;version=1.0.0"));
    assert_eq!(header("accept-encoding"), "gzip");
    assert_eq!(header("x-prometheus-scrape-timeout-seconds"), "0.1");
    assert!(header("user-agent").starts_with("Meridian/"));
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_series_get_staleness_markers() {
    let target = TestTarget::start("a 1\nb 2\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = series("b", addr, "j", &[]);
    wait_until("b scraped twice", || values(&storage, &b).len() >= 2).await;
    target.set_body("a 1\n");
    wait_until("b stale", || points(&storage, &b).iter().any(|p| p.stale)).await;
    let b_points = points(&storage, &b);
    assert!(b_points.last().is_some_and(|p| p.stale));
    assert_eq!(b_points.iter().filter(|p| p.stale).count(), 1);
    // The marker has the timestamp of the scrape that missed the series.
    let stale_t = b_points.iter().find(|p| p.stale).map(|p| p.t);
    let up = points(&storage, &series("up", addr, "j", &[]));
    assert!(up.iter().any(|p| Some(p.t) == stale_t));
    // The series comes back: a new sample after the marker.
    target.set_body("a 1\nb 3\n");
    wait_until("b back", || values(&storage, &b).contains(&3.0)).await;
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_scrape_sets_up_zero_and_marks_everything_stale() {
    let target = TestTarget::start("a 1\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = series("a", addr, "j", &[]);
    let up = series("up", addr, "j", &[]);
    wait_until("a scraped", || !values(&storage, &a).is_empty()).await;
    target.set_reply(Reply {
        body: "oops".into(),
        status: 500,
        ..Reply::default()
    });
    wait_until("up 0", || values(&storage, &up).contains(&0.0)).await;
    wait_until("a stale", || points(&storage, &a).iter().any(|p| p.stale)).await;
    // Only one marker however many scrapes fail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(points(&storage, &a).iter().filter(|p| p.stale).count(), 1);
    let report = manager.targets().await;
    assert_eq!(report.active[0].health, TargetHealth::Down);
    assert_eq!(
        report.active[0].last_error,
        "server returned HTTP status 500 Internal Server Error"
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fail_the_whole_scrape() {
    let target = TestTarget::start("a 1\nb{x=\"1\",y=\"2\"} 2\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    let cases = [
        ("  sample_limit: 1\n", "sample limit exceeded"),
        (
            "  label_limit: 4\n",
            "label_limit exceeded (metric: b, number of labels: 5, limit: 4)",
        ),
        (
            "  label_value_length_limit: 3\n",
            // The instance label is the longest value.
            "label_value_length_limit exceeded (metric: a, label name: instance",
        ),
    ];
    for (extra, error) in cases {
        storage.clear();
        manager
            .apply_config(&load_config(&job_config("j", addr, "100ms", extra)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for_error(&manager, error).await;
        // Nothing of the scraped series was stored.
        assert!(
            values(&storage, &series("a", addr, "j", &[])).is_empty(),
            "{extra}"
        );
        if extra.contains("sample_limit") {
            let scraped = values(&storage, &series("scrape_samples_scraped", addr, "j", &[]));
            assert_eq!(scraped.last(), Some(&2.0));
        }
    }
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_and_exported_renaming() {
    let target = TestTarget::start("m{job=\"other\",instance=\"x\",exported_job=\"e\"} 1\n").await;
    let addr = target.addr;
    for honor in [false, true] {
        let storage = MemStorage::new();
        let manager = manager(&storage);
        let extra = format!("  honor_labels: {honor}\n");
        manager
            .apply_config(&load_config(&job_config("j", addr, "100ms", &extra)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let up = series("up", addr, "j", &[]);
        wait_until("a scrape", || !values(&storage, &up).is_empty()).await;
        let names: Vec<String> = dump(&storage)
            .into_keys()
            .filter(|k| k.starts_with("{__name__=\"m\""))
            .collect();
        let expected = if honor {
            r#"{__name__="m", exported_job="e", instance="x", job="other"}"#.to_owned()
        } else {
            format!(
                r#"{{__name__="m", exported_exported_job="other", exported_instance="x", exported_job="e", instance="{addr}", job="j"}}"#
            )
        };
        assert_eq!(names, vec![expected], "honor_labels: {honor}");
        manager.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_timestamps_and_metric_relabeling() {
    let target = TestTarget::start("t 1 1000\ndropme 1\nkeep{a=\"B\"} 2\n").await;
    let addr = target.addr;
    let relabel = "  metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: dropme\n    action: drop\n  - source_labels: [a]\n    target_label: a\n    action: lowercase\n";
    for honor in [true, false] {
        let storage = MemStorage::new();
        let manager = manager(&storage);
        let extra = format!("  honor_timestamps: {honor}\n{relabel}");
        manager
            .apply_config(&load_config(&job_config("j", addr, "100ms", &extra)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let up = series("up", addr, "j", &[]);
        wait_until("two scrapes", || values(&storage, &up).len() >= 2).await;
        let t = points(&storage, &series("t", addr, "j", &[]));
        if honor {
            // One sample at the exposed timestamp; the repeat is a no-op.
            assert_eq!(t.len(), 1);
            assert_eq!(t[0].t, 1000);
        } else {
            assert!(t.len() >= 2 && t[0].t > 1000);
        }
        assert!(values(&storage, &series("dropme", addr, "j", &[])).is_empty());
        assert!(!values(&storage, &series("keep", addr, "j", &[("a", "b")])).is_empty());
        let scraped = values(&storage, &series("scrape_samples_scraped", addr, "j", &[]));
        let post = values(
            &storage,
            &series("scrape_samples_post_metric_relabeling", addr, "j", &[]),
        );
        assert_eq!((scraped[0], post[0]), (3.0, 2.0));
        manager.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_limit_timeout_and_content_types() {
    let target = TestTarget::start("").await;
    let addr = target.addr;
    let long_body = "a 1\n".repeat(100);
    let cases: Vec<(Reply, &str, Option<&str>)> = vec![
        (
            Reply {
                body: long_body.clone(),
                gzip: true,
                ..Reply::default()
            },
            "",
            None,
        ),
        (
            Reply {
                body: long_body.clone(),
                gzip: true,
                ..Reply::default()
            },
            "  body_size_limit: 200B\n",
            Some("body size limit exceeded"),
        ),
        (
            Reply {
                body: "a 1\n".into(),
                delay: Duration::from_millis(400),
                ..Reply::default()
            },
            "",
            Some("context deadline exceeded"),
        ),
        (
            Reply {
                body: "a 1\n".into(),
                content_type: String::new(),
                ..Reply::default()
            },
            "",
            Some("non-compliant scrape target sending blank Content-Type"),
        ),
        (
            Reply {
                body: "a 1\n".into(),
                content_type: String::new(),
                ..Reply::default()
            },
            "  fallback_scrape_protocol: PrometheusText0.0.4\n",
            None,
        ),
        (
            Reply {
                body: "a 1\n# EOF\n".into(),
                content_type: "application/openmetrics-text; version=1.0.0".into(),
                ..Reply::default()
            },
            "",
            None,
        ),
        (
            Reply {
                body: "a 1\n".into(),
                content_type: "application/openmetrics-text; version=1.0.0".into(),
                ..Reply::default()
            },
            "",
            Some("expected \"# EOF\""),
        ),
        (
            Reply {
                body: "a 1\nb{ 2\n".into(),
                ..Reply::default()
            },
            "",
            Some("2:"),
        ),
    ];
    for (reply, extra, error) in cases {
        let storage = MemStorage::new();
        let manager = manager(&storage);
        target.set_reply(reply);
        manager
            .apply_config(&load_config(&job_config("j", addr, "200ms", extra)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let up = series("up", addr, "j", &[]);
        wait_until("a scrape", || !values(&storage, &up).is_empty()).await;
        let report = manager.targets().await;
        let last_error = &report.active[0].last_error;
        match error {
            None => {
                assert_eq!(last_error, "", "{extra}");
                assert_eq!(values(&storage, &up)[0], 1.0);
                assert!(!values(&storage, &series("a", addr, "j", &[])).is_empty());
            }
            Some(error) => {
                assert!(last_error.contains(error), "{extra}: {last_error}");
                assert_eq!(values(&storage, &up)[0], 0.0);
                assert!(values(&storage, &series("a", addr, "j", &[])).is_empty());
            }
        }
        manager.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_writes_no_staleness_markers() {
    let target = TestTarget::start("a 1\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = series("a", addr, "j", &[]);
    wait_until("a scraped", || !values(&storage, &a).is_empty()).await;
    manager.stop().await;
    let count = points(&storage, &a).len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = points(&storage, &a);
    assert_eq!(after.len(), count, "nothing is written after stop");
    assert!(after.iter().all(|p| !p.stale));
    // A stopped manager refuses new configurations.
    assert!(
        manager
            .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_params_and_extra_headers_are_sent() {
    let target = TestTarget::start("a 1\n").await;
    let addr = target.addr;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let cases = [
        (
            "  basic_auth:\n    username: user\n    password: pass\n",
            "authorization",
            "Basic dXNlcjpwYXNz",
        ),
        (
            "  authorization:\n    credentials_file: token\n",
            "authorization",
            "Bearer s3cret",
        ),
        (
            "  http_headers:\n    X-Custom:\n      values: [v1]\n",
            "x-custom",
            "v1",
        ),
    ];
    for (extra, header, expected) in cases {
        storage.clear();
        let yaml = job_config("j", addr, "100ms", extra);
        manager
            .apply_config(&load_config_in(&yaml, dir.path()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let last_header = || {
            target
                .requests()
                .last()
                .and_then(|r| r.get(header))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        wait_until("the header", || last_header() == expected).await;
        let sent = last_header();
        assert_eq!(sent, expected, "{extra}");
    }
    manager.stop().await;
}
