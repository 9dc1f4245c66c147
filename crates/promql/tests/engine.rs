//! Direct engine checks on a small in-memory data set: selectors with lookback and
//! staleness, rate, aggregation, vector matching, subqueries, `@`, errors, and limits. The
//! broad semantics are checked by the conformance runner; these pin behaviour that is easy to
//! reason about by hand.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use promql::engine::{Engine, EngineOptions, QueryError, Value};
use storage::Value as V;
use storage::memory::MemStorage;

fn store() -> MemStorage {
    let s = MemStorage::new();
    // http_requests_total{job, instance}: counters growing by 10 every 15 s from t=0 to 10m.
    for (job, inst, mult) in [("api", "a", 1.0), ("api", "b", 2.0), ("db", "a", 3.0)] {
        let l = Labels::from_static(&[
            ("__name__", "http_requests_total"),
            ("job", job),
            ("instance", inst),
        ]);
        s.insert_samples(
            &l,
            (0..=40).map(|i| (i * 15_000, V::Float(i as f64 * 10.0 * mult))),
        );
    }
    // A gauge that goes stale at 5m.
    let g = Labels::from_static(&[("__name__", "temp"), ("room", "x")]);
    s.insert_samples(
        &g,
        (0..=20).map(|i| (i * 15_000, V::Float(20.0 + i as f64))),
    );
    s.insert_samples(&g, [(300_000 + 1, V::Float(model::sample::stale_nan()))]);
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

fn vector(v: &Value) -> Vec<(String, f64)> {
    let Value::Vector(v) = v else {
        panic!("not a vector: {v:?}")
    };
    let mut out: Vec<(String, f64)> = v
        .iter()
        .map(|s| match s.value {
            V::Float(f) => (s.labels.to_string(), f),
            V::Histogram(_) => panic!("histogram"),
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn selectors_lookback_and_staleness() {
    let s = store();
    let e = engine();
    let r = e.instant_query(&s, "temp", 60_000).unwrap();
    assert_eq!(
        vector(&r.value),
        vec![(r#"{__name__="temp", room="x"}"#.into(), 24.0)]
    );
    // After the stale marker the series is gone, although the lookback would still reach it.
    let r = e.instant_query(&s, "temp", 310_000).unwrap();
    assert!(vector(&r.value).is_empty());
    // Before the marker the last sample is found within the 5m lookback.
    let r = e.instant_query(&s, "temp", 300_000).unwrap();
    assert_eq!(vector(&r.value)[0].1, 40.0);
}

#[test]
fn rate_sum_and_matching() {
    let s = store();
    let e = engine();
    let r = e
        .instant_query(&s, "sum by (job) (rate(http_requests_total[5m]))", 600_000)
        .unwrap();
    let v = vector(&r.value);
    assert_eq!(v.len(), 2);
    assert!((v[0].1 - 2.0).abs() < 1e-9, "{v:?}"); // api: (10 + 20) / 15 per second
    assert!((v[1].1 - 2.0).abs() < 1e-9, "{v:?}"); // db: 30 / 15
    // One-to-one with ignoring, and a many-to-one join.
    let r = e
        .instant_query(&s, "http_requests_total / ignoring(instance) group_left sum by (job) (http_requests_total)", 600_000)
        .unwrap();
    let v = vector(&r.value);
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|(l, _)| !l.contains("__name__")));
    let total: f64 = v
        .iter()
        .filter(|(l, _)| l.contains("api"))
        .map(|(_, x)| x)
        .sum();
    assert!((total - 1.0).abs() < 1e-9);
    // Comparison filters and keeps the name; bool turns into 0/1 and drops it.
    let r = e
        .instant_query(&s, "http_requests_total > 500", 600_000)
        .unwrap();
    assert_eq!(vector(&r.value).len(), 2);
    let r = e
        .instant_query(&s, "http_requests_total > bool 500", 600_000)
        .unwrap();
    assert_eq!(vector(&r.value).iter().map(|x| x.1).sum::<f64>(), 2.0);
}

#[test]
fn range_query_and_subquery_and_at() {
    let s = store();
    let e = engine();
    let r = e.range_query(&s, "temp * 2", 0, 120_000, 60_000).unwrap();
    let Value::Matrix(m) = &r.value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].floats,
        vec![(0, 40.0), (60_000, 48.0), (120_000, 56.0)]
    );
    assert_eq!(m[0].labels, Labels::from_static(&[("room", "x")]));
    let r = e
        .instant_query(&s, "max_over_time(temp[2m:30s])", 120_000)
        .unwrap();
    assert_eq!(vector(&r.value)[0].1, 28.0);
    let r = e.range_query(&s, "temp @ 60", 0, 120_000, 60_000).unwrap();
    let Value::Matrix(m) = &r.value else { panic!() };
    assert_eq!(
        m[0].floats.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![24.0, 24.0, 24.0]
    );
    let r = e.instant_query(&s, "scalar(sum(temp)) + 1", 0).unwrap();
    assert_eq!(r.value, Value::Scalar { t: 0, v: 21.0 });
}

#[test]
fn errors_are_typed() {
    let s = store();
    let e = engine();
    let err = e.instant_query(&s, "sum(", 0).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e
        .instant_query(
            &s,
            "http_requests_total + on(job) http_requests_total",
            600_000,
        )
        .unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("duplicate series"), "{err}");
    let e2 = Engine::new(EngineOptions {
        max_samples: 10,
        ..Default::default()
    });
    let err = e2
        .instant_query(&s, "http_requests_total[10m]", 600_000)
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples(_)), "{err:?}");
    let err = e
        .range_query(&s, "http_requests_total[5m]", 0, 10, 1)
        .unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}
