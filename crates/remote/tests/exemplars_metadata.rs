//! Exemplars and metadata from the sender: exemplars read from the WAL's exemplar records
//! reach the receiver in their series' entry (1.0 and 2.0), only with `send_exemplars`;
//! remote write 1.0 queues send metadata requests on `metadata_config`'s interval and size;
//! remote write 2.0 puts metadata on series.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use model::exposition::{MetricMetadata, MetricType};
use model::labels::Labels;
use remote::metadata::{MetadataFuture, MetadataSource, TargetMetadata};
use storage::{Appendable, Exemplar};

/// A request body and whether it was 2.0.
type Body = (bool, Vec<u8>);

/// Bodies received.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Body>>>);

impl Capture {
    async fn start(status: Arc<Mutex<u16>>) -> (Capture, String, tokio::task::JoinHandle<()>) {
        let capture = Capture::default();
        let c = capture.clone();
        let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (c, status) = (c.clone(), status.clone());
            async move {
                let v2 = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("io.prometheus.write.v2.Request"));
                c.0.lock().unwrap().push((v2, body.to_vec()));
                let code = *status.lock().unwrap();
                axum::http::StatusCode::from_u16(code).unwrap()
            }
        };
        let app = axum::Router::new().route("/api/v1/write", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (capture, format!("http://{addr}/api/v1/write"), task)
    }

    /// 1.0 requests received so far.
    fn v1(&self) -> Vec<remote::proto::WriteRequest> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(v2, _)| !v2)
            .map(|(_, b)| remote::decode_write_request(b, 1 << 24).unwrap())
            .collect()
    }

    fn v2(&self) -> Vec<remote::SeriesV2> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(v2, _)| *v2)
            .flat_map(|(_, b)| remote::decode_write_request_v2(b, 1 << 24).unwrap())
            .collect()
    }
}

/// One target per entry.
struct Fixed(Vec<MetricMetadata>);

impl MetadataSource for Fixed {
    fn metadata(&self) -> MetadataFuture<'_> {
        Box::pin(async move {
            self.0
                .iter()
                .enumerate()
                .map(|(i, m)| TargetMetadata {
                    target: Labels::from_pairs([
                        ("job", "x".to_string()),
                        ("instance", i.to_string()),
                    ])
                    .unwrap(),
                    metadata: vec![m.clone()],
                })
                .collect()
        })
    }
}

fn meta(family: &str, kind: MetricType, help: &str) -> MetricMetadata {
    MetricMetadata {
        family: family.into(),
        kind,
        help: help.into(),
        unit: "seconds".into(),
    }
}

fn open_db(dir: &std::path::Path) -> tsdb::Db {
    let mut opts = tsdb::DbOptions::default();
    opts.head.max_exemplars = 1000;
    tsdb::Db::open(dir, opts).unwrap()
}

/// One scrape of two series, the first with an exemplar.
fn scrape(db: &tsdb::Db, t: i64) {
    let mut app = db.appender();
    for (name, v) in [("req_total", 1.0), ("temp", 2.0)] {
        let l = Labels::from_pairs([("__name__", name), ("job", "x")]).unwrap();
        let r = app.append(None, &l, t, v).unwrap();
        if name == "req_total" {
            let e = Exemplar {
                labels: Labels::from_pairs([("trace_id", format!("t{t}"))]).unwrap(),
                value: 0.5,
                ts: t - 1,
            };
            app.append_exemplar(Some(r), &l, &e).unwrap();
        }
    }
    app.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_1_sends_exemplars_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let status = Arc::new(Mutex::new(204u16));
    let (capture, url, task) = Capture::start(status.clone()).await;
    let (_, configs) = remote_write_config(
        &url,
        "    send_exemplars: true\n    queue_config:\n      batch_send_deadline: 50ms\n      min_backoff: 10ms\n      max_backoff: 20ms\n    metadata_config:\n      send_interval: 200ms\n      max_samples_per_send: 2\n",
    );
    let rs = remote_storage(dir.path());
    rs.set_metadata_source(Arc::new(Fixed(vec![
        meta("req", MetricType::Counter, "Requests."),
        meta("temp", MetricType::Gauge, "Temperature."),
        meta("req", MetricType::Counter, "Requests."), // a second target: sent once
        meta("lat", MetricType::Histogram, ""),
    ])));
    rs.apply_config(
        &configs,
        &[("cluster".to_string(), "c1".to_string())].into(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    let t0 = now_ms();
    for k in 0..3 {
        scrape(&db, t0 + k * 1000);
    }
    let m = rs.queue_metrics()[0].clone();
    wait_until(
        Duration::from_secs(10),
        "exemplars and metadata sent",
        || load(&m.exemplars_sent) == 3 && load(&m.metadata_sent) >= 3,
    )
    .await;
    let reqs = capture.v1();
    let exemplars: Vec<_> = reqs
        .iter()
        .flat_map(|r| &r.timeseries)
        .flat_map(|ts| ts.exemplars.iter().map(move |e| (ts, e)))
        .collect();
    assert_eq!(exemplars.len(), 3);
    for (k, (ts, e)) in exemplars.iter().enumerate() {
        let names: Vec<(&str, &str)> = ts
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [("__name__", "req_total"), ("cluster", "c1"), ("job", "x")],
            "external labels apply to the series, not the exemplar"
        );
        let t = t0 + k as i64 * 1000;
        assert_eq!(e.timestamp, t - 1);
        assert_eq!(e.value, 0.5);
        assert_eq!(e.labels.len(), 1);
        assert_eq!(e.labels[0].value, format!("t{t}"));
        assert!(ts.samples.iter().all(|s| s.value == 1.0));
    }
    // Metadata: its own requests, at most 2 entries each, duplicates removed.
    let meta_reqs: Vec<_> = reqs.iter().filter(|r| !r.metadata.is_empty()).collect();
    assert!(meta_reqs.iter().all(|r| r.timeseries.is_empty()));
    assert!(meta_reqs.iter().all(|r| r.metadata.len() <= 2));
    let first_round: Vec<(&str, i32, &str)> = meta_reqs
        .iter()
        .take(2)
        .flat_map(|r| &r.metadata)
        .map(|m| (m.metric_family_name.as_str(), m.r#type, m.unit.as_str()))
        .collect();
    assert_eq!(
        first_round,
        [
            ("req", 1, "seconds"),
            ("temp", 2, "seconds"),
            ("lat", 3, "seconds")
        ]
    );
    assert!(load(&m.metadata_bytes) > 0);
    assert_eq!(load(&m.exemplars_in), 3);
    assert_eq!(
        m.samples_pending.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        m.exemplars_pending
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let mut raw = Vec::new();
    {
        let mut e = model::exposition::TextEncoder::new(&mut raw);
        rs.write_metrics(&mut e);
    }
    let text = String::from_utf8(raw).unwrap();
    for name in [
        "prometheus_remote_storage_exemplars_total{",
        "prometheus_remote_storage_metadata_total{",
        "prometheus_remote_storage_exemplars_dropped_total{reason=\"dropped_series\"",
        "prometheus_wal_watcher_records_read_total{consumer=",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // A receiver refusing metadata: counted as failed, not retried.
    *status.lock().unwrap() = 400;
    let before = load(&m.metadata_failed);
    wait_until(Duration::from_secs(10), "metadata failures counted", || {
        load(&m.metadata_failed) >= before + 3
    })
    .await;
    rs.stop_with_deadline(Duration::ZERO).await;
    task.abort();
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_stay_home_without_send_exemplars() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let (capture, url, task) = Capture::start(Arc::new(Mutex::new(204))).await;
    let (_, configs) = remote_write_config(
        &url,
        "    queue_config:\n      batch_send_deadline: 50ms\n    metadata_config:\n      send: false\n      send_interval: 50ms\n",
    );
    let rs = remote_storage(dir.path());
    rs.set_metadata_source(Arc::new(Fixed(vec![meta("x", MetricType::Gauge, "")])));
    rs.apply_config(
        &configs,
        &Default::default(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    scrape(&db, now_ms());
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(10), "samples sent", || {
        load(&m.samples_sent) == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reqs = capture.v1();
    assert!(
        reqs.iter()
            .all(|r| r.metadata.is_empty() && r.timeseries.iter().all(|t| t.exemplars.is_empty()))
    );
    assert_eq!(load(&m.exemplars_in), 0);
    assert!(
        load(&m.records_other) >= 1,
        "the exemplar record was skipped"
    );
    rs.stop_with_deadline(Duration::ZERO).await;
    task.abort();
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_2_puts_exemplars_and_metadata_on_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let (capture, url, task) = Capture::start(Arc::new(Mutex::new(204))).await;
    let (_, configs) = remote_write_config(
        &url,
        "    protobuf_message: io.prometheus.write.v2.Request\n    send_exemplars: true\n    queue_config:\n      batch_send_deadline: 50ms\n    metadata_config:\n      send_interval: 50ms\n",
    );
    let rs = remote_storage(dir.path());
    rs.set_metadata_source(Arc::new(Fixed(vec![
        meta("req", MetricType::Counter, "Requests."),
        meta("temp", MetricType::Gauge, "Temperature."),
    ])));
    rs.apply_config(
        &configs,
        &Default::default(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    // Let the queue's metadata index fill before the data.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = now_ms();
    scrape(&db, t);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(10), "sent", || {
        load(&m.samples_sent) == 2 && load(&m.exemplars_sent) == 1
    })
    .await;
    let series = capture.v2();
    assert_eq!(series.len(), 2);
    let by_name = |n: &str| {
        series
            .iter()
            .find(|s| s.labels.iter().any(|(k, v)| k == "__name__" && v == n))
            .unwrap()
    };
    let req = by_name("req_total");
    assert_eq!(req.exemplars.len(), 1);
    assert_eq!(
        req.exemplars[0].labels,
        [("trace_id".into(), format!("t{t}"))]
    );
    assert_eq!(req.exemplars[0].timestamp, t - 1);
    let md = req.metadata.as_ref().unwrap();
    assert_eq!(
        (md.kind, md.help.as_str()),
        (MetricType::Counter, "Requests.")
    );
    let temp = by_name("temp");
    assert!(temp.exemplars.is_empty());
    assert_eq!(
        temp.metadata.as_ref().map(|m| m.kind),
        Some(MetricType::Gauge)
    );
    // No separate metadata requests in 2.0.
    assert!(capture.v1().is_empty());
    rs.stop_with_deadline(Duration::ZERO).await;
    task.abort();
    db.close().unwrap();
}
