//! `prometheus_http_requests_total{code,handler}` and
//! `prometheus_http_request_duration_seconds{handler}`: per-route request counts and latency
//! histograms under Prometheus' names and buckets, so dashboards built for Prometheus' HTTP
//! panels work unchanged. The handler label is the route as registered (`/api/v1/query`,
//! `/api/v1/label/{name}/values`), never the raw path, so label cardinality stays bounded.

use crate::MetricsSource;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use model::exposition::{MetricType, TextEncoder};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Prometheus' buckets for request durations, in seconds.
const BUCKETS: [f64; 9] = [0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0];

#[derive(Default)]
struct Durations {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and duration histograms by route.
#[derive(Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Durations>>,
}

impl HttpMetrics {
    fn observe(&self, handler: &str, code: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((handler.to_string(), code))
            .or_insert(0) += 1;
        let mut d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let h = d.entry(handler.to_string()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }
}

/// The middleware: times the request and records it under its matched route.
pub async fn record(
    axum::extract::State(m): axum::extract::State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    m.observe(
        &handler,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

impl MetricsSource for HttpMetrics {
    fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let name = "prometheus_http_requests_total";
        e.help(name, "Counter of HTTP requests.");
        e.metric_type(name, MetricType::Counter);
        for ((handler, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let code = code.to_string();
            e.sample_parts(
                name,
                [("code", code.as_str()), ("handler", handler.as_str())],
                *n as f64,
                None,
            );
        }
        let name = "prometheus_http_request_duration_seconds";
        e.help(name, "Histogram of latencies for HTTP requests.");
        e.metric_type(name, MetricType::Histogram);
        let bucket = format!("{name}_bucket");
        for (handler, d) in self
            .durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, le) in BUCKETS.iter().enumerate() {
                let le = model::exposition::float_to_string(*le);
                e.sample_parts(
                    &bucket,
                    [("handler", handler.as_str()), ("le", le.as_str())],
                    d.counts[i] as f64,
                    None,
                );
            }
            e.sample_parts(
                &bucket,
                [("handler", handler.as_str()), ("le", "+Inf")],
                d.count as f64,
                None,
            );
            e.sample_parts(
                &format!("{name}_sum"),
                [("handler", handler.as_str())],
                d.sum,
                None,
            );
            e.sample_parts(
                &format!("{name}_count"),
                [("handler", handler.as_str())],
                d.count as f64,
                None,
            );
        }
    }
}
