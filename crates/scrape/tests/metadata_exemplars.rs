//! Metric metadata and exemplars from scrapes: `# TYPE`/`# HELP`/`# UNIT` of both formats kept
//! per target (current across scrapes, dropped 10 successful scrapes after a family
//! vanished), and OpenMetrics exemplars stored with their series (the scrape timestamp when
//! they carry none; out-of-order ones counted, never failing the scrape).

mod common;

use common::*;
use model::exposition::{MetricMetadata, MetricType};
use model::matcher::Matcher;
use storage::ExemplarQueryable;
use storage::memory::MemStorage;

const OM_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn om_body(n: u32, with_extra: bool) -> String {
    let mut body = format!(
        "# TYPE http_requests counter\n# HELP http_requests Requests \\\"served\\\".\n# UNIT http_requests requests\nhttp_requests_total{{path=\"/a\"}} {n} # {{trace_id=\"abc{n}\"}} 0.5 1700000000.{n:03}\n# TYPE latency_seconds histogram\nlatency_seconds_bucket{{le=\"1\"}} {n} # {{trace_id=\"t{n}\"}} 0.25\nlatency_seconds_bucket{{le=\"+Inf\"}} {n}\nlatency_seconds_count {n}\nlatency_seconds_sum 1\n"
    );
    if with_extra {
        body.push_str("# TYPE extra gauge\n# HELP extra Goes away.\nextra 1\n");
    }
    body.push_str("# EOF\n");
    body
}

fn meta(family: &str, kind: MetricType, help: &str, unit: &str) -> MetricMetadata {
    MetricMetadata {
        family: family.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_metadata_and_exemplars() {
    let target = TestTarget::start("").await;
    target.set_reply(Reply {
        body: om_body(1, true),
        content_type: OM_CONTENT_TYPE.into(),
        ..Reply::default()
    });
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    manager
        .apply_config(&load_config(&job_config("om", addr, "50ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "om", &[]);
    wait_until("two scrapes", || values(&storage, &up).len() >= 2).await;

    let all = manager.targets_metadata(None).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].scrape_pool, "om");
    assert_eq!(all[0].labels.get("job"), Some("om"));
    assert_eq!(
        all[0].metadata,
        vec![
            meta("extra", MetricType::Gauge, "Goes away.", ""),
            meta(
                "http_requests",
                MetricType::Counter,
                "Requests \"served\".",
                "requests"
            ),
            meta("latency_seconds", MetricType::Histogram, "", ""),
        ]
    );
    let one = manager.targets_metadata(Some("latency_seconds")).await;
    assert_eq!(one[0].metadata.len(), 1);
    assert!(manager.targets_metadata(Some("nope")).await.is_empty());
    // The series name is not the family name.
    assert!(
        manager
            .targets_metadata(Some("http_requests_total"))
            .await
            .is_empty()
    );

    // Exemplars: the counter's carries its own timestamp, the bucket's gets the scrape's.
    let sel = [vec![Matcher::equal("job", "om")]];
    let exemplars = storage.select_exemplars(i64::MIN, i64::MAX, &sel).unwrap();
    assert_eq!(exemplars.len(), 2, "{exemplars:?}");
    let counter = &exemplars[0];
    assert_eq!(
        counter.series_labels.to_string(),
        series("http_requests_total", addr, "om", &[("path", "/a")])
    );
    assert_eq!(counter.exemplars[0].ts, 1_700_000_000_001);
    assert_eq!(counter.exemplars[0].value, 0.5);
    assert_eq!(counter.exemplars[0].labels.get("trace_id"), Some("abc1"));
    let bucket = &exemplars[1];
    let up_times: Vec<i64> = points(&storage, &up).iter().map(|p| p.t).collect();
    assert!(
        bucket.exemplars.iter().all(|e| up_times.contains(&e.ts)),
        "exemplars without a timestamp get the scrape's"
    );
    assert!(bucket.exemplars.len() >= 2, "a new one per scrape");

    // The same exemplar again is a duplicate; an older timestamp is out of order and
    // counted. Neither fails the scrape.
    let body = om_body(1, false).replace("1700000000.001", "1600000000");
    target.set_reply(Reply {
        body,
        content_type: OM_CONTENT_TYPE.into(),
        ..Reply::default()
    });
    wait_until("an out-of-order exemplar", || {
        manager.exemplar_out_of_order_total() > 0
    })
    .await;
    let report = manager.targets().await;
    assert_eq!(report.active[0].last_error, "");

    // `extra` is gone from the payload: its metadata stays for 10 more successful scrapes.
    let has_extra = |m: &[scrape::TargetMetadata]| {
        m.first()
            .is_some_and(|t| t.metadata.iter().any(|m| m.family == "extra"))
    };
    assert!(has_extra(&manager.targets_metadata(None).await));
    let before = values(&storage, &up).len();
    wait_metadata(&manager, "extra dropped", |m| {
        !m.iter().any(|m| m.family == "extra")
    })
    .await;
    let scrapes = values(&storage, &up).len() - before;
    assert!(scrapes >= 10, "dropped after {scrapes} scrapes");
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_metadata_and_changes() {
    let target = TestTarget::start(
        "# HELP a_total First \\\\ help\\nline.\n# TYPE a_total counter\na_total 1\n# TYPE b untyped\nb 2\n# HELP c Only help.\nc 3\n",
    )
    .await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    manager
        .apply_config(&load_config(&job_config("text", addr, "50ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "text", &[]);
    wait_until("a scrape", || !values(&storage, &up).is_empty()).await;
    let got = manager.targets_metadata(None).await;
    assert_eq!(
        got[0].metadata,
        vec![
            meta("a_total", MetricType::Counter, "First \\ help\nline.", ""),
            meta("b", MetricType::Unknown, "", ""),
            meta("c", MetricType::Unknown, "Only help.", ""),
        ]
    );
    // A changed HELP replaces the old one at the next scrape.
    target.set_body("# HELP a_total Second.\n# TYPE a_total gauge\na_total 1\n");
    wait_metadata(&manager, "new help", |m| {
        m.iter()
            .any(|m| m.family == "a_total" && m.help == "Second.")
    })
    .await;
    let got = manager.targets_metadata(Some("a_total")).await;
    assert_eq!(got[0].metadata[0].kind, MetricType::Gauge);
    // A target that stops answering keeps its metadata (only successful scrapes age it).
    target.set_reply(Reply {
        status: 500,
        ..Reply::default()
    });
    wait_for_error(&manager, "server returned HTTP status").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(manager.targets_metadata(None).await[0].metadata.len(), 3);
    manager.stop().await;
}

/// Waits (up to 10 s) until the first target's metadata satisfies `ok`.
async fn wait_metadata(
    manager: &scrape::ScrapeManager,
    what: &str,
    ok: impl Fn(&[MetricMetadata]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = manager.targets_metadata(None).await;
        if ok(all.first().map(|t| t.metadata.as_slice()).unwrap_or(&[])) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
