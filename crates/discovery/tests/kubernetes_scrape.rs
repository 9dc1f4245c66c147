//! End to end: the two seed jobs that use `kubernetes_sd_configs` (Istio's `federate-local`,
//! the blog's `example-api-pods`) run in a scrape manager against the fake API server; the
//! fixture pods' ports are metrics servers of the test (127.0.0.1), and the stored series
//! carry the labels relabeling gives them.

#![cfg(feature = "kubernetes")]

#[path = "k8s/fake.rs"]
mod fake;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use fake::FakeApiServer;
use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use scrape::{ScrapeManager, ScrapeOptions};
use serde_json::{Value, json};
use storage::Queryable;
use storage::memory::MemStorage;

/// A metrics endpoint on 127.0.0.1 answering every path with `body`; returns its port.
async fn metrics_server(body: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let app = Router::new().fallback(get(move || async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, server)
}

fn pod(namespace: &str, name: &str, labels: Value, ports: &[u16]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
        .collect();
    json!({
        "metadata": {"name": name, "namespace": namespace, "uid": name, "labels": labels},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": "main", "image": "img:1", "ports": ports}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

/// The label sets of every stored series except the `scrape_*` and `up` ones.
fn series(storage: &MemStorage) -> Vec<Labels> {
    let querier = storage.querier(i64::MIN, i64::MAX).expect("querier");
    let matcher =
        Matcher::new(MatchOp::RegexMatch, "__name__", "(example|istio)_.+").expect("matcher");
    let mut out: Vec<Labels> = querier
        .select(true, None, &[matcher])
        .expect("select")
        .map(|s| s.expect("series").labels)
        .collect();
    out.sort_by_key(|l| l.to_string());
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).expect("labels")
}

#[tokio::test]
async fn seed_jobs_discover_and_scrape_pods() {
    let api = FakeApiServer::start().await;
    let (api_0, _s0) = metrics_server("example_requests_total 5\n").await;
    let (api_1, _s1) = metrics_server("example_requests_total 7\n").await;
    let (istiod, _s2) = metrics_server("istio_requests_total{source_workload=\"web\"} 3\n").await;
    let app = json!({"application": "example-api", "environment": "prod"});
    api.apply(
        "pods",
        pod(
            "example-api-prod",
            "example-api-0",
            app.clone(),
            &[api_0, 9443],
        ),
    );
    api.apply(
        "pods",
        pod("example-api-prod", "example-api-1", app, &[api_1, 9443]),
    );
    api.apply(
        "pods",
        pod(
            "example-api-prod",
            "redis-0",
            json!({"application": "redis"}),
            &[api_0],
        ),
    );
    api.apply(
        "pods",
        pod(
            "istio-system",
            "istiod-1",
            json!({"app": "istiod"}),
            &[istiod],
        ),
    );

    let yaml = format!(
        r#"global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
- job_name: 'federate-local'
  honor_labels: true
  metrics_path: '/federate'
  metric_relabel_configs:
  - replacement: 'cluster-1'
    target_label: cluster
  kubernetes_sd_configs:
  - role: pod
    api_server: {url}
    namespaces:
      names: ['istio-system']
  params:
    'match[]':
    - '{{__name__=~"istio_(.*)"}}'
- job_name: 'example-api-pods'
  kubernetes_sd_configs:
  - role: pod
    api_server: {url}
    namespaces:
      names:
      - example-api-prod
    selectors:
      - label: "application=example-api"
        role: pod
  metrics_path: /metrics
  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_container_port_number]
    regex: '9443'
    action: drop
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
  - source_labels: [__meta_kubernetes_namespace]
    action: replace
    target_label: kubernetes_namespace
  - source_labels: [__meta_kubernetes_pod_name]
    action: replace
    target_label: kubernetes_pod_name
"#,
        url = api.url()
    );
    let config = config::Config::from_str(&yaml, "/tmp/prometheus.yml").expect("config loads");
    let storage = MemStorage::new();
    let manager = ScrapeManager::new(
        Arc::new(storage.clone()),
        ScrapeOptions {
            skip_offsetting: true,
            ..ScrapeOptions::default()
        },
    );
    manager.apply_config(&config).await.expect("config applies");

    let example = |port: u16, pod: &str| {
        labels(&[
            ("__name__", "example_requests_total"),
            ("application", "example-api"),
            ("environment", "prod"),
            ("instance", &format!("127.0.0.1:{port}")),
            ("job", "example-api-pods"),
            ("kubernetes_namespace", "example-api-prod"),
            ("kubernetes_pod_name", pod),
        ])
    };
    let mut expected = vec![
        example(api_0, "example-api-0"),
        example(api_1, "example-api-1"),
        labels(&[
            ("__name__", "istio_requests_total"),
            ("cluster", "cluster-1"),
            ("instance", &format!("127.0.0.1:{istiod}")),
            ("job", "federate-local"),
            ("source_workload", "web"),
        ]),
    ];
    expected.sort_by_key(|l| l.to_string());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = series(&storage);
        if found == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "series: {found:#?}\nexpected: {expected:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    manager.stop().await;
}
