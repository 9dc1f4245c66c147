//! Query latency over a fixed query set on synthetic data in the real TSDB head: 10,000
//! counter series (100 jobs × 100 instances) and 1,000 classic histograms of 10 buckets
//! (10,000 series), 2 hours at a 15 s interval. Each query is a 1 h range query at a 60 s step
//! (the shape of a Grafana panel). `MERIDIAN_BENCH_SERIES` scales the counter series.

#![allow(clippy::unwrap_used)] // A benchmark: failing loudly is the right outcome.

use criterion::{Criterion, criterion_group, criterion_main};
use model::labels::Labels;
use promql::engine::{Engine, EngineOptions};
use storage::Appendable;

const INTERVAL: i64 = 15_000;
const POINTS: i64 = 480;

fn load(db: &tsdb::Db, counters: usize) {
    let counter_labels: Vec<Labels> = (0..counters)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "http_requests_total".to_string()),
                ("job", format!("job-{}", i % 100)),
                ("instance", format!("host-{}:9100", i / 100)),
            ])
            .unwrap()
        })
        .collect();
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    let bucket_labels: Vec<(Labels, usize)> = (0..1000)
        .flat_map(|h| {
            bounds.iter().enumerate().map(move |(bi, le)| {
                (
                    Labels::from_pairs([
                        ("__name__", "request_duration_seconds_bucket".to_string()),
                        ("job", format!("job-{}", h % 10)),
                        ("instance", format!("host-{h}:9100")),
                        ("le", (*le).to_string()),
                    ])
                    .unwrap(),
                    bi,
                )
            })
        })
        .collect();
    let info_labels: Vec<Labels> = (0..counters / 100)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "node_info".to_string()),
                ("instance", format!("host-{i}:9100")),
                ("version", format!("1.{}", i % 7)),
            ])
            .unwrap()
        })
        .collect();
    let mut refs: Vec<Option<u64>> =
        vec![None; counter_labels.len() + bucket_labels.len() + info_labels.len()];
    for step in 0..POINTS {
        let t = step * INTERVAL;
        let mut app = db.appender();
        for (i, l) in counter_labels.iter().enumerate() {
            refs[i] = Some(
                app.append(refs[i], l, t, (step * (1 + i as i64 % 7)) as f64)
                    .unwrap(),
            );
        }
        let base = counter_labels.len();
        for (j, (l, bi)) in bucket_labels.iter().enumerate() {
            let v = (step * (*bi as i64 + 1)) as f64;
            refs[base + j] = Some(app.append(refs[base + j], l, t, v).unwrap());
        }
        let base = base + bucket_labels.len();
        for (j, l) in info_labels.iter().enumerate() {
            refs[base + j] = Some(app.append(refs[base + j], l, t, 1.0).unwrap());
        }
        app.commit().unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let counters: usize = std::env::var("MERIDIAN_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let db = tsdb::Db::open(dir.path(), tsdb::DbOptions::default()).unwrap();
    load(&db, counters);
    let engine = Engine::new(EngineOptions::default());
    let end = (POINTS - 1) * INTERVAL;
    let start = end - 3_600_000;
    let queries = [
        ("rate", "rate(http_requests_total[5m])"),
        (
            "sum_by_rate",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        ("topk", "topk(10, rate(http_requests_total[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))",
        ),
        (
            "subquery",
            "max_over_time(rate(http_requests_total{job=\"job-7\"}[5m])[30m:1m])",
        ),
        (
            "one_to_many_join",
            "sum by (instance) (rate(http_requests_total[5m])) * on (instance) group_left (version) node_info",
        ),
    ];
    let mut g = c.benchmark_group(format!("query_range_1h_step60s/{counters}_series"));
    g.sample_size(10);
    for (name, q) in queries {
        // Fail fast when a query does not evaluate.
        engine.range_query(&db, q, start, end, 60_000).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| engine.range_query(&db, q, start, end, 60_000).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
