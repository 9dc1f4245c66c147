//! Kubernetes discovery against a fake API server (`k8s/fake.rs`, 127.0.0.1): the labels of
//! each role, objects added, updated and deleted becoming target changes, namespaces,
//! selectors, paging, watch reconnects, relists after 410 Gone, failures retried, in-cluster
//! configuration with a rotated token, the two seed jobs end to end through relabeling, and
//! the metrics (events by role, failed requests, configs that cannot connect).

#![cfg(feature = "kubernetes")]

#[path = "k8s/fake.rs"]
mod fake;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, KubernetesSdConfig, ScrapeConfig};
use discovery::kubernetes::{ClusterEnvironment, KubernetesSd};
use discovery::{DiscovererOptions, SdConfig, TargetGroup};
use fake::FakeApiServer;
use model::labels::Labels;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn scrape_config(yaml: &str) -> ScrapeConfig {
    let config = Config::from_str(yaml, "test.yml").expect("config parses");
    config
        .scrape_configs
        .into_iter()
        .next()
        .expect("one scrape config")
}

/// The first `kubernetes_sd_configs` entry of a job whose discovery section is `sd`.
fn sd_config(sd: &str) -> KubernetesSdConfig {
    let yaml = format!("scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n{sd}");
    scrape_config(&yaml)
        .kubernetes_sd_configs
        .into_iter()
        .next()
        .expect("one kubernetes_sd_config")
}

fn no_cluster() -> ClusterEnvironment {
    ClusterEnvironment {
        service_host: None,
        service_port: None,
        scheme: "https".into(),
        token_file: PathBuf::from("/nonexistent/token"),
        ca_file: PathBuf::from("/nonexistent/ca.crt"),
        namespace_file: PathBuf::from("/nonexistent/namespace"),
    }
}

/// A running discoverer and the groups it reported, by source.
struct Run {
    updates: mpsc::Receiver<Vec<TargetGroup>>,
    groups: BTreeMap<String, TargetGroup>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Run {
    fn start(sd: KubernetesSd) -> Run {
        Run::start_with(sd, &DiscovererOptions::default())
    }

    fn start_with(sd: KubernetesSd, options: &DiscovererOptions) -> Run {
        let (sender, updates) = mpsc::channel(64);
        let discoverer = sd
            .with_min_backoff(Duration::from_millis(20))
            .discoverer(options);
        let task = tokio::spawn(discoverer.run(sender));
        Run {
            updates,
            groups: BTreeMap::new(),
            task,
        }
    }

    /// Applies updates until `done` holds for the groups with targets.
    async fn until(&mut self, what: &str, done: impl Fn(&BTreeMap<String, TargetGroup>) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.groups) {
            let update = tokio::time::timeout_at(deadline, self.updates.recv()).await;
            match update {
                Ok(Some(groups)) => {
                    for group in groups {
                        if group.targets.is_empty() {
                            self.groups.remove(&group.source);
                        } else {
                            self.groups.insert(group.source.clone(), group);
                        }
                    }
                }
                Ok(None) => panic!("discoverer stopped while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; groups: {:#?}", self.groups),
            }
        }
    }

    fn sources(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }
}

fn pod(namespace: &str, name: &str, ip: &str, labels: Value, containers: Value) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "labels": labels,
            "creationTimestamp": "2026-11-20T10:00:00Z",
        },
        "spec": {"nodeName": "node-1", "containers": containers, "restartPolicy": "Always"},
        "status": {
            "phase": "Running", "podIP": ip, "hostIP": "192.168.0.10",
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn web_container(port: u16) -> Value {
    json!([{"name": "web", "image": "nginx:1.27",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}]}])
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).expect("valid labels")
}

fn api_server_sd(server: &FakeApiServer, role: &str, extra: &str) -> KubernetesSd {
    let sd = format!(
        "  - role: {role}\n    api_server: {}\n{extra}",
        server.url()
    );
    KubernetesSd::with_environment(sd_config(&sd), no_cluster())
}

#[tokio::test]
async fn pod_labels_are_prometheus_labels() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        json!({
            "metadata": {
                "name": "api-7d9f", "namespace": "prod", "uid": "0b1c-22",
                "labels": {"app.kubernetes.io/name": "api", "tier": ""},
                "annotations": {"prometheus.io/scrape": "true"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "1"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d",
                     "uid": "2", "controller": true, "blockOwnerDeletion": true}
                ],
            },
            "spec": {
                "nodeName": "node-a",
                "containers": [
                    {"name": "app", "image": "api:2",
                     "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                               {"containerPort": 53, "protocol": "UDP"}]},
                    {"name": "sidecar", "image": "proxy:1"}
                ],
                "initContainers": [
                    {"name": "init", "image": "init:1",
                     "ports": [{"name": "dbg", "containerPort": 7000, "protocol": "TCP"}]}
                ],
            },
            "status": {
                "phase": "Running", "podIP": "10.1.2.3", "hostIP": "192.168.1.7",
                "conditions": [{"type": "Initialized", "status": "True"},
                               {"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "app", "containerID": "containerd://aaa", "ready": false},
                    {"name": "sidecar", "containerID": "containerd://bbb", "ready": true}
                ],
                "initContainerStatuses": [{"name": "init", "containerID": "containerd://iii"}],
            },
        }),
    );
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("the pod", |g| g.contains_key("pod/prod/api-7d9f"))
        .await;
    let group = &run.groups["pod/prod/api-7d9f"];
    assert_eq!(
        group.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "prod"),
            ("__meta_kubernetes_pod_name", "api-7d9f"),
            ("__meta_kubernetes_pod_ip", "10.1.2.3"),
            ("__meta_kubernetes_pod_ready", "false"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_node_name", "node-a"),
            ("__meta_kubernetes_pod_host_ip", "192.168.1.7"),
            ("__meta_kubernetes_pod_uid", "0b1c-22"),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            ("__meta_kubernetes_pod_controller_name", "api-7d"),
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "api"),
            (
                "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
                "true"
            ),
            ("__meta_kubernetes_pod_labelpresent_tier", "true"),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true"
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
                "true"
            ),
        ])
    );
    let app = |port: &str, name: &str, proto: &str| {
        labels(&[
            ("__address__", &format!("10.1.2.3:{port}")),
            ("__meta_kubernetes_pod_container_name", "app"),
            ("__meta_kubernetes_pod_container_id", "containerd://aaa"),
            ("__meta_kubernetes_pod_container_image", "api:2"),
            ("__meta_kubernetes_pod_container_init", "false"),
            ("__meta_kubernetes_pod_container_port_name", name),
            ("__meta_kubernetes_pod_container_port_number", port),
            ("__meta_kubernetes_pod_container_port_protocol", proto),
        ])
    };
    assert_eq!(
        group.targets,
        vec![
            app("9090", "metrics", "TCP"),
            app("53", "", "UDP"),
            labels(&[
                ("__address__", "10.1.2.3"),
                ("__meta_kubernetes_pod_container_name", "sidecar"),
                ("__meta_kubernetes_pod_container_id", "containerd://bbb"),
                ("__meta_kubernetes_pod_container_image", "proxy:1"),
                ("__meta_kubernetes_pod_container_init", "false"),
            ]),
            labels(&[
                ("__address__", "10.1.2.3:7000"),
                ("__meta_kubernetes_pod_container_name", "init"),
                ("__meta_kubernetes_pod_container_id", "containerd://iii"),
                ("__meta_kubernetes_pod_container_image", "init:1"),
                ("__meta_kubernetes_pod_container_init", "true"),
                ("__meta_kubernetes_pod_container_port_name", "dbg"),
                ("__meta_kubernetes_pod_container_port_number", "7000"),
                ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ]),
        ]
    );
    // The first request lists all namespaces, paged.
    let first = &server.requests()[0];
    assert_eq!(first.path, "/api/v1/pods");
    assert!(!first.is_watch());
    assert_eq!(first.query.get("limit").map(String::as_str), Some("500"));
}

#[tokio::test]
async fn added_updated_deleted_pods_become_target_changes() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("a", |g| g.contains_key("pod/ns/a")).await;

    // Added while watching; a pod without IP yet has no targets until it gets one.
    server.apply("pods", pod("ns", "b", "", json!({}), web_container(80)));
    server.apply(
        "pods",
        pod("ns", "c", "10.0.0.3", json!({}), web_container(81)),
    );
    run.until("c", |g| g.contains_key("pod/ns/c")).await;
    assert!(!run.groups.contains_key("pod/ns/b"));
    server.apply(
        "pods",
        pod("ns", "b", "10.0.0.2", json!({}), web_container(80)),
    );
    run.until("b with its IP", |g| g.contains_key("pod/ns/b"))
        .await;

    // Modified: the new port replaces the old target.
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(8080)),
    );
    run.until("a on 8080", |g| {
        g["pod/ns/a"].targets[0].get("__address__") == Some("10.0.0.1:8080")
    })
    .await;
    assert_eq!(run.groups["pod/ns/a"].targets.len(), 1);

    // Deleted.
    server.delete("pods", "ns", "c");
    run.until("c gone", |g| !g.contains_key("pod/ns/c")).await;
    assert_eq!(run.sources(), ["pod/ns/a", "pod/ns/b"]);

    // The watch started from the list's version with bookmarks.
    let watch = server
        .requests()
        .into_iter()
        .find(|r| r.is_watch())
        .expect("a watch request");
    assert_eq!(
        watch.query.get("resourceVersion").map(String::as_str),
        Some("101")
    );
    assert_eq!(
        watch.query.get("allowWatchBookmarks").map(String::as_str),
        Some("true")
    );
    assert!(watch.query.contains_key("timeoutSeconds"));
}

#[tokio::test]
async fn namespaces_are_watched_separately() {
    let server = FakeApiServer::start().await;
    for ns in ["a", "b", "c"] {
        server.apply(
            "pods",
            pod(ns, "p", "10.0.0.1", json!({}), web_container(80)),
        );
    }
    let mut run = Run::start(api_server_sd(
        &server,
        "pod",
        "    namespaces:\n      names: [b, a]\n",
    ));
    run.until("a and b", |g| g.len() == 2).await;
    server.apply(
        "pods",
        pod("c", "q", "10.0.0.2", json!({}), web_container(80)),
    );
    server.apply(
        "pods",
        pod("b", "q", "10.0.0.3", json!({}), web_container(80)),
    );
    run.until("b/q", |g| g.contains_key("pod/b/q")).await;
    assert_eq!(run.sources(), ["pod/a/p", "pod/b/p", "pod/b/q"]);
    let mut paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths,
        ["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]
    );
}

#[tokio::test]
async fn own_namespace_from_the_service_account() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        pod("mine", "p", "10.0.0.1", json!({}), web_container(80)),
    );
    server.apply(
        "pods",
        pod("other", "p", "10.0.0.2", json!({}), web_container(80)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let namespace_file = dir.path().join("namespace");
    std::fs::write(&namespace_file, "mine\n").expect("write namespace");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t").expect("write token");
    // own_namespace is for in-cluster (or kubeconfig) configurations.
    let sd = "  - role: pod\n    namespaces:\n      own_namespace: true\n";
    let environment = ClusterEnvironment {
        service_host: Some("127.0.0.1".into()),
        service_port: Some(server.addr.port().to_string()),
        scheme: "http".into(),
        namespace_file,
        token_file,
        ..no_cluster()
    };
    let sd = KubernetesSd::with_environment(sd_config(sd), environment);
    let connection = sd.connection().expect("in-cluster connection");
    assert_eq!(connection.own_namespace.as_deref(), Some("mine"));
    let mut run = Run::start(sd);
    run.until("mine/p", |g| g.contains_key("pod/mine/p")).await;
    assert_eq!(run.sources(), ["pod/mine/p"]);
}

#[tokio::test]
async fn label_and_field_selectors_are_sent_and_honoured() {
    let server = FakeApiServer::start().await;
    let app = json!({"application": "example-api"});
    server.apply(
        "pods",
        pod("ns", "yes", "10.0.0.1", app.clone(), web_container(80)),
    );
    server.apply(
        "pods",
        pod(
            "ns",
            "other",
            "10.0.0.2",
            json!({"application": "x"}),
            web_container(80),
        ),
    );
    let mut pending = pod("ns", "pending", "10.0.0.3", app.clone(), web_container(80));
    pending["status"]["phase"] = json!("Pending");
    server.apply("pods", pending);
    let mut run = Run::start(api_server_sd(
        &server,
        "pod",
        "    selectors:\n    - role: pod\n      label: application=example-api\n      field: status.phase=Running\n",
    ));
    run.until("yes", |g| g.contains_key("pod/ns/yes")).await;
    assert_eq!(run.sources(), ["pod/ns/yes"]);
    let first = &server.requests()[0];
    assert_eq!(
        first.query.get("labelSelector").map(String::as_str),
        Some("application=example-api")
    );
    assert_eq!(
        first.query.get("fieldSelector").map(String::as_str),
        Some("status.phase=Running")
    );

    // A pod that stops matching leaves (the server sends DELETED), one that starts, joins.
    server.apply(
        "pods",
        pod("ns", "other", "10.0.0.2", app.clone(), web_container(80)),
    );
    server.apply(
        "pods",
        pod(
            "ns",
            "yes",
            "10.0.0.1",
            json!({"application": "x"}),
            web_container(80),
        ),
    );
    run.until("swap", |g| g.keys().eq(["pod/ns/other"])).await;
}

#[tokio::test]
async fn lists_are_paged() {
    let server = FakeApiServer::start().await;
    for i in 0..1203 {
        server.apply(
            "pods",
            pod(
                "ns",
                &format!("p{i:04}"),
                "10.0.0.1",
                json!({}),
                web_container(80),
            ),
        );
    }
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("all pods", |g| g.len() == 1203).await;
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    assert_eq!(lists.len(), 3);
    assert_eq!(
        lists[2].query.get("continue").map(String::as_str),
        Some("1000")
    );
}

#[tokio::test]
async fn watch_reconnects_from_the_last_version() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("a", |g| g.contains_key("pod/ns/a")).await;
    server.apply(
        "pods",
        pod("ns", "b", "10.0.0.2", json!({}), web_container(80)),
    );
    run.until("b", |g| g.contains_key("pod/ns/b")).await;
    // A change the pod watch does not see moves the version on; the bookmark tells the
    // client, which resumes from there.
    let version = server.apply(
        "services",
        json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {}}),
    );
    server.bookmark();
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The stream ends (server timeout); changes made meanwhile are replayed from history.
    server.fail_next_requests(2);
    server.close_watches();
    server.apply(
        "pods",
        pod("ns", "c", "10.0.0.3", json!({}), web_container(80)),
    );
    run.until("c", |g| g.contains_key("pod/ns/c")).await;
    let requests = server.requests();
    let watches: Vec<_> = requests.iter().filter(|r| r.is_watch()).collect();
    assert!(watches.len() >= 2, "{watches:?}");
    // Resumed after the bookmark's version (no relist).
    let resumed = watches.last().expect("a resumed watch");
    assert_eq!(
        resumed.query.get("resourceVersion").cloned(),
        Some(version.to_string())
    );
    assert_eq!(requests.iter().filter(|r| !r.is_watch()).count(), 1);
}

async fn relist_after_gone(gone_as_status: bool) {
    let server = FakeApiServer::start().await;
    server.set_gone_as_status(gone_as_status);
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    server.apply(
        "pods",
        pod("ns", "b", "10.0.0.2", json!({}), web_container(80)),
    );
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("a and b", |g| g.len() == 2).await;
    while server.open_watches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // While the client cannot reach the server, b goes, c comes, and history is compacted:
    // the watch from the old version gets 410 and the client lists again.
    server.fail_next_requests(usize::MAX);
    server.close_watches();
    server.delete("pods", "ns", "b");
    server.apply(
        "pods",
        pod("ns", "c", "10.0.0.3", json!({}), web_container(80)),
    );
    server.compact();
    server.fail_next_requests(0);
    run.until("relisted", |g| g.keys().eq(["pod/ns/a", "pod/ns/c"]))
        .await;
    let lists = server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .count();
    assert!(lists >= 2);
}

#[tokio::test]
async fn relist_after_gone_event() {
    relist_after_gone(false).await;
}

#[tokio::test]
async fn relist_after_gone_status() {
    relist_after_gone(true).await;
}

#[tokio::test]
async fn failing_server_is_retried() {
    let server = FakeApiServer::start().await;
    server.fail_next_requests(3);
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let mut run = Run::start(api_server_sd(&server, "pod", ""));
    run.until("a", |g| g.contains_key("pod/ns/a")).await;
    assert!(server.requests().len() >= 4);
}

#[tokio::test]
async fn events_and_failed_requests_are_counted() {
    use discovery::metrics::KubernetesEvent::{Add, Delete, Update};
    let server = FakeApiServer::start().await;
    server.fail_next_requests(2);
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let options = DiscovererOptions::default();
    let metrics = options.metrics.clone();
    let mut run = Run::start_with(api_server_sd(&server, "pod", ""), &options);
    run.until("a", |g| g.contains_key("pod/ns/a")).await;
    assert_eq!(metrics.kubernetes_failures(), 2);
    // The list's pod is an add.
    assert_eq!(metrics.kubernetes_events("pod", Add), 1);
    while server.open_watches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.apply(
        "pods",
        pod("ns", "b", "10.0.0.2", json!({}), web_container(80)),
    );
    run.until("b", |g| g.contains_key("pod/ns/b")).await;
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(8080)),
    );
    run.until("a on 8080", |g| {
        g["pod/ns/a"].targets[0].get("__address__") == Some("10.0.0.1:8080")
    })
    .await;
    server.delete("pods", "ns", "b");
    run.until("b gone", |g| !g.contains_key("pod/ns/b")).await;
    assert_eq!(metrics.kubernetes_events("pod", Add), 2);
    assert_eq!(metrics.kubernetes_events("pod", Update), 1);
    assert_eq!(metrics.kubernetes_events("pod", Delete), 1);
    assert_eq!(metrics.kubernetes_events("service", Add), 0);
    assert_eq!(metrics.kubernetes_failures(), 2);
}

#[tokio::test]
async fn a_config_that_cannot_connect_is_a_failed_config() {
    let (manager, _updates) = discovery::DiscoveryManager::new(discovery::DiscoveryOptions {
        update_interval: Duration::from_millis(10),
        ..discovery::DiscoveryOptions::default()
    });
    let sd = KubernetesSd::with_environment(sd_config("  - role: pod\n"), no_cluster());
    let jobs: BTreeMap<String, Vec<std::sync::Arc<dyn SdConfig>>> =
        BTreeMap::from([("k".to_owned(), vec![std::sync::Arc::new(sd) as _])]);
    manager.apply_config(&jobs);
    let render = || {
        let mut out = Vec::new();
        manager.write_metrics(&mut model::exposition::TextEncoder::new(&mut out), "scrape");
        String::from_utf8_lossy(&out).into_owned()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !render().contains("prometheus_sd_failed_configs{name=\"scrape\"} 1\n") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed config: {}",
            render()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        render().contains("prometheus_sd_discovered_targets{config=\"k\",name=\"scrape\"} 0\n")
    );
}

#[tokio::test]
async fn in_cluster_config_uses_the_rotated_service_account_token() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token\n").expect("write token");
    let environment = ClusterEnvironment {
        service_host: Some("127.0.0.1".into()),
        service_port: Some(server.addr.port().to_string()),
        scheme: "http".into(),
        token_file: token_file.clone(),
        ..no_cluster()
    };
    let mut run = Run::start(KubernetesSd::with_environment(
        sd_config("  - role: pod\n"),
        environment,
    ));
    run.until("a", |g| g.contains_key("pod/ns/a")).await;
    while server.open_watches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer first-token")
    );
    std::fs::write(&token_file, "second-token\n").expect("rotate token");
    server.close_watches();
    server.apply(
        "pods",
        pod("ns", "b", "10.0.0.2", json!({}), web_container(80)),
    );
    run.until("b", |g| g.contains_key("pod/ns/b")).await;
    let requests = server.requests();
    let last = requests.last().expect("requests");
    assert_eq!(
        last.authorization.as_deref(),
        Some("Bearer second-token"),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn in_cluster_config_needs_the_environment() {
    let sd = KubernetesSd::with_environment(sd_config("  - role: pod\n"), no_cluster());
    let err = sd.connection().expect_err("no in-cluster environment");
    assert!(err.contains("KUBERNETES_SERVICE_HOST"), "{err}");
}

#[tokio::test]
async fn service_labels() {
    let server = FakeApiServer::start().await;
    server.apply(
        "services",
        json!({
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"},
                         "annotations": {"team": "a"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
        }),
    );
    server.apply(
        "services",
        json!({
            "metadata": {"name": "ext", "namespace": "prod"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com",
                     "ports": [{"port": 5432, "protocol": "TCP"}]},
        }),
    );
    let mut run = Run::start(api_server_sd(&server, "service", ""));
    run.until("services", |g| g.len() == 2).await;
    let web = &run.groups["svc/prod/web"];
    assert_eq!(
        web.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "prod"),
            ("__meta_kubernetes_service_name", "web"),
            ("__meta_kubernetes_service_type", "ClusterIP"),
            ("__meta_kubernetes_service_label_app", "web"),
            ("__meta_kubernetes_service_labelpresent_app", "true"),
            ("__meta_kubernetes_service_annotation_team", "a"),
            ("__meta_kubernetes_service_annotationpresent_team", "true"),
        ])
    );
    assert_eq!(
        web.targets,
        vec![labels(&[
            ("__address__", "web.prod.svc:80"),
            ("__meta_kubernetes_service_port_name", "http"),
            ("__meta_kubernetes_service_port_number", "80"),
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__meta_kubernetes_service_cluster_ip", "10.96.0.10"),
        ])]
    );
    let ext = &run.groups["svc/prod/ext"];
    assert_eq!(
        ext.targets[0].get("__meta_kubernetes_service_external_name"),
        Some("db.example.com")
    );
    assert_eq!(
        ext.targets[0].get("__meta_kubernetes_service_cluster_ip"),
        None
    );
}

#[tokio::test]
async fn node_labels() {
    let server = FakeApiServer::start().await;
    server.apply(
        "nodes",
        json!({
            "metadata": {"name": "node-1", "labels": {"kubernetes.io/os": "linux"}},
            "spec": {"providerID": "aws:///eu-west-1a/i-0abc"},
            "status": {
                "addresses": [{"type": "Hostname", "address": "node-1"},
                              {"type": "InternalIP", "address": "10.0.0.5"},
                              {"type": "InternalIP", "address": "10.0.0.6"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        }),
    );
    // Namespaces do not apply to nodes.
    let mut run = Run::start(api_server_sd(
        &server,
        "node",
        "    namespaces:\n      names: [x]\n",
    ));
    run.until("node", |g| g.contains_key("node/node-1")).await;
    let node = &run.groups["node/node-1"];
    assert_eq!(
        node.labels,
        labels(&[
            ("__meta_kubernetes_node_name", "node-1"),
            (
                "__meta_kubernetes_node_provider_id",
                "aws:///eu-west-1a/i-0abc"
            ),
            ("__meta_kubernetes_node_label_kubernetes_io_os", "linux"),
            (
                "__meta_kubernetes_node_labelpresent_kubernetes_io_os",
                "true"
            ),
        ])
    );
    assert_eq!(
        node.targets,
        vec![labels(&[
            ("__address__", "10.0.0.5:10250"),
            ("instance", "node-1"),
            ("__meta_kubernetes_node_address_Hostname", "node-1"),
            ("__meta_kubernetes_node_address_InternalIP", "10.0.0.5"),
        ])]
    );
    assert_eq!(server.requests()[0].path, "/api/v1/nodes");
}

/// The groups of a job's discovery once `expected` sources are known.
async fn discover(scrape: &ScrapeConfig, expected: usize) -> Vec<TargetGroup> {
    let configs = discovery::sd_configs_for_scrape(scrape);
    assert_eq!(configs.len(), 1);
    let sd = configs[0]
        .as_any()
        .downcast_ref::<KubernetesSd>()
        .expect("a Kubernetes SD config")
        .clone();
    let mut run = Run::start(sd);
    run.until("the fixture pods", |g| g.len() == expected).await;
    run.groups.values().cloned().collect()
}

/// Final labels (after relabeling, without `__` labels) of the job's targets, sorted.
fn final_labels(scrape: &ScrapeConfig, groups: &[TargetGroup]) -> Vec<Labels> {
    let rules = relabel::compile(
        &scrape.relabel_configs,
        scrape.metric_name_validation_scheme,
    )
    .expect("relabel rules compile");
    let (targets, _dropped, errors) = scrape::target::targets_from_groups(scrape, &rules, groups);
    assert!(errors.is_empty(), "{errors:?}");
    let mut labels: Vec<Labels> = targets.into_iter().map(|t| t.public_labels).collect();
    labels.sort_by_key(|l| l.get("instance").unwrap_or("").to_owned());
    labels
}

fn fixture_cluster(server: &FakeApiServer) {
    // Istio's control plane and a gateway in istio-system; something elsewhere.
    server.apply(
        "pods",
        pod(
            "istio-system",
            "istiod-5f4c",
            "10.8.0.4",
            json!({"app": "istiod"}),
            json!([
            {"name": "discovery", "image": "istio/pilot:1.24",
             "ports": [{"containerPort": 8080, "protocol": "TCP"},
                       {"containerPort": 15010, "protocol": "TCP"}]}]),
        ),
    );
    server.apply(
        "pods",
        pod(
            "istio-system",
            "prometheus-0",
            "10.8.0.9",
            json!({"app": "prometheus"}),
            json!([
            {"name": "prometheus", "image": "prom/prometheus:v3",
             "ports": [{"name": "web", "containerPort": 9090, "protocol": "TCP"}]}]),
        ),
    );
    server.apply(
        "pods",
        pod("default", "other", "10.8.1.1", json!({}), web_container(80)),
    );
    // The blog's example API: two replicas with two ports each, and an unrelated pod.
    for (name, ip) in [
        ("example-api-0", "10.9.0.10"),
        ("example-api-1", "10.9.0.11"),
    ] {
        server.apply(
            "pods",
            pod(
                "example-api-prod",
                name,
                ip,
                json!({"application": "example-api", "environment": "prod"}),
                json!([{"name": "api", "image": "example/api:3",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "https", "containerPort": 9443, "protocol": "TCP"}]}]),
            ),
        );
    }
    server.apply(
        "pods",
        pod(
            "example-api-prod",
            "redis-0",
            "10.9.0.20",
            json!({"application": "redis"}),
            web_container(6379),
        ),
    );
}

#[tokio::test]
async fn seed_federate_local_job() {
    let server = FakeApiServer::start().await;
    fixture_cluster(&server);
    let scrape = scrape_config(&format!(
        r#"scrape_configs:
- job_name: 'federate-local'
  honor_labels: true
  metrics_path: '/federate'
  metric_relabel_configs:
  - replacement: 'cluster-1'
    target_label: cluster
  kubernetes_sd_configs:
  - role: pod
    api_server: {}
    namespaces:
      names: ['istio-system']
  params:
    'match[]':
    - '{{__name__=~"istio_(.*)"}}'
    - '{{__name__=~"pilot(.*)"}}'
"#,
        server.url()
    ));
    let groups = discover(&scrape, 2).await;
    let job = |instance: &str| labels(&[("instance", instance), ("job", "federate-local")]);
    assert_eq!(
        final_labels(&scrape, &groups),
        [
            job("10.8.0.4:15010"),
            job("10.8.0.4:8080"),
            job("10.8.0.9:9090")
        ]
    );
}

#[tokio::test]
async fn seed_example_api_pods_job() {
    let server = FakeApiServer::start().await;
    fixture_cluster(&server);
    let scrape = scrape_config(&format!(
        r#"scrape_configs:
  - job_name: 'example-api-pods'
    kubernetes_sd_configs:
    - role: pod
      api_server: {}
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
        server.url()
    ));
    let groups = discover(&scrape, 2).await;
    let target = |instance: &str, pod: &str| {
        labels(&[
            ("application", "example-api"),
            ("environment", "prod"),
            ("instance", instance),
            ("job", "example-api-pods"),
            ("kubernetes_namespace", "example-api-prod"),
            ("kubernetes_pod_name", pod),
        ])
    };
    assert_eq!(
        final_labels(&scrape, &groups),
        [
            target("10.9.0.10:8080", "example-api-0"),
            target("10.9.0.11:8080", "example-api-1"),
        ]
    );
    let first = &server.requests()[0];
    assert_eq!(first.path, "/api/v1/namespaces/example-api-prod/pods");
}

#[tokio::test]
async fn endpoints_labels_with_pods_and_services() {
    let server = FakeApiServer::start().await;
    server.apply(
        "services",
        json!({
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        }),
    );
    server.apply(
        "pods",
        pod(
            "prod",
            "web-1",
            "10.0.0.1",
            json!({"app": "web"}),
            json!([
            {"name": "app", "image": "web:1",
             "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                       {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]}]),
        ),
    );
    server.apply(
        "endpoints",
        json!({
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1", "nodeName": "node-1",
                               "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-1",
                                             "uid": "uid-web-1"}}],
                "notReadyAddresses": [{"ip": "10.0.0.2",
                               "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-2"}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }],
        }),
    );
    let mut run = Run::start(api_server_sd(&server, "endpoints", ""));
    run.until("endpoints", |g| {
        g.get("endpoints/prod/web")
            .is_some_and(|g| g.labels.has("__meta_kubernetes_service_name") && g.targets.len() == 3)
    })
    .await;
    let group = &run.groups["endpoints/prod/web"];
    assert_eq!(
        group.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "prod"),
            ("__meta_kubernetes_endpoints_name", "web"),
            ("__meta_kubernetes_endpoints_label_app", "web"),
            ("__meta_kubernetes_endpoints_labelpresent_app", "true"),
            ("__meta_kubernetes_service_name", "web"),
            ("__meta_kubernetes_service_label_app", "web"),
            ("__meta_kubernetes_service_labelpresent_app", "true"),
        ])
    );
    let pod_labels = [
        ("__meta_kubernetes_pod_name", "web-1"),
        ("__meta_kubernetes_pod_ip", "10.0.0.1"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_node_name", "node-1"),
        ("__meta_kubernetes_pod_host_ip", "192.168.0.10"),
        ("__meta_kubernetes_pod_uid", "uid-web-1"),
        ("__meta_kubernetes_pod_label_app", "web"),
        ("__meta_kubernetes_pod_labelpresent_app", "true"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_image", "web:1"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    let with_pod = |extra: &[(&str, &str)]| {
        let mut all: Vec<(&str, &str)> = pod_labels.to_vec();
        all.extend_from_slice(extra);
        labels(&all)
    };
    assert_eq!(
        group.targets,
        vec![
            with_pod(&[
                ("__address__", "10.0.0.1:8080"),
                ("__meta_kubernetes_endpoint_port_name", "http"),
                ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                ("__meta_kubernetes_endpoint_ready", "true"),
                ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                ("__meta_kubernetes_endpoint_address_target_name", "web-1"),
                ("__meta_kubernetes_endpoint_node_name", "node-1"),
                ("__meta_kubernetes_pod_container_port_name", "http"),
                ("__meta_kubernetes_pod_container_port_number", "8080"),
            ]),
            labels(&[
                ("__address__", "10.0.0.2:8080"),
                ("__meta_kubernetes_endpoint_port_name", "http"),
                ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                ("__meta_kubernetes_endpoint_ready", "false"),
                ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                ("__meta_kubernetes_endpoint_address_target_name", "web-2"),
            ]),
            with_pod(&[
                ("__address__", "10.0.0.1:9100"),
                ("__meta_kubernetes_pod_container_port_name", "metrics"),
                ("__meta_kubernetes_pod_container_port_number", "9100"),
            ]),
        ]
    );

    // A pod change re-renders the endpoints that point to it; the pod web-2 appearing adds
    // its labels.
    server.apply(
        "pods",
        pod(
            "prod",
            "web-2",
            "10.0.0.2",
            json!({"app": "web"}),
            json!([
            {"name": "app", "image": "web:1",
             "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]),
        ),
    );
    run.until("web-2's labels", |g| {
        g["endpoints/prod/web"].targets[1].get("__meta_kubernetes_pod_name") == Some("web-2")
    })
    .await;
    // The service going away takes its labels away.
    server.delete("services", "prod", "web");
    run.until("no service labels", |g| {
        !g["endpoints/prod/web"]
            .labels
            .has("__meta_kubernetes_service_name")
    })
    .await;
    server.delete("endpoints", "prod", "web");
    run.until("endpoints gone", |g| g.is_empty()).await;
    let mut paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths,
        ["/api/v1/endpoints", "/api/v1/pods", "/api/v1/services"]
    );
}

#[tokio::test]
async fn endpoint_slice_labels() {
    let server = FakeApiServer::start().await;
    server.apply(
        "services",
        json!({
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7",
                     "ports": [{"port": 80, "protocol": "TCP"}]},
        }),
    );
    server.apply(
        "pods",
        pod(
            "prod",
            "web-1",
            "10.0.0.1",
            json!({}),
            json!([
            {"name": "app", "image": "web:1",
             "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]),
        ),
    );
    server.apply(
        "endpointslices",
        json!({
            "metadata": {"name": "web-abcde", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"],
                 "conditions": {"ready": true, "serving": true, "terminating": false},
                 "nodeName": "node-1", "zone": "z1",
                 "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-1"}},
                {"addresses": ["10.0.0.9"], "conditions": {"ready": false},
                 "hostname": "h9"}
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
        }),
    );
    let mut run = Run::start(api_server_sd(&server, "endpointslice", ""));
    run.until("slice", |g| {
        g.get("endpointslice/prod/web-abcde").is_some_and(|g| {
            g.labels.has("__meta_kubernetes_service_name")
                && g.targets
                    .first()
                    .is_some_and(|t| t.has("__meta_kubernetes_pod_name"))
        })
    })
    .await;
    let group = &run.groups["endpointslice/prod/web-abcde"];
    assert_eq!(
        group.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "prod"),
            ("__meta_kubernetes_endpointslice_name", "web-abcde"),
            ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
            (
                "__meta_kubernetes_endpointslice_label_kubernetes_io_service_name",
                "web"
            ),
            (
                "__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name",
                "true"
            ),
            ("__meta_kubernetes_service_name", "web"),
        ])
    );
    let first = &group.targets[0];
    for (name, value) in [
        ("__address__", "10.0.0.1:8080"),
        ("__meta_kubernetes_endpointslice_port", "8080"),
        ("__meta_kubernetes_endpointslice_port_name", "http"),
        ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
        ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
            "false",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            "node-1",
        ),
        ("__meta_kubernetes_endpointslice_endpoint_zone", "z1"),
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        (
            "__meta_kubernetes_endpointslice_address_target_name",
            "web-1",
        ),
        ("__meta_kubernetes_pod_name", "web-1"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
    ] {
        assert_eq!(first.get(name), Some(value), "{name} in {first:?}");
    }
    let second = &group.targets[1];
    assert_eq!(second.get("__address__"), Some("10.0.0.9:8080"));
    assert_eq!(
        second.get("__meta_kubernetes_endpointslice_endpoint_conditions_ready"),
        Some("false")
    );
    assert_eq!(
        second.get("__meta_kubernetes_endpointslice_endpoint_hostname"),
        Some("h9")
    );
    assert_eq!(
        second.get("__meta_kubernetes_endpointslice_endpoint_conditions_serving"),
        None
    );
    assert_eq!(group.targets.len(), 2);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path == "/apis/discovery.k8s.io/v1/endpointslices")
    );
}

#[tokio::test]
async fn ingress_labels() {
    let server = FakeApiServer::start().await;
    server.apply(
        "ingresses",
        json!({
            "metadata": {"name": "site", "namespace": "web",
                         "annotations": {"kubernetes.io/ingress.class": "old"}},
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["*.example.com"], "secretName": "tls"}],
                "rules": [
                    {"host": "shop.example.com", "http": {"paths": [
                        {"path": "/api", "pathType": "Prefix",
                         "backend": {"service": {"name": "api", "port": {"number": 80}}}},
                        {"pathType": "ImplementationSpecific",
                         "backend": {"service": {"name": "ui", "port": {"number": 80}}}}]}},
                    {"host": "a.b.example.com"},
                ],
            },
        }),
    );
    let mut run = Run::start(api_server_sd(
        &server,
        "ingress",
        "    namespaces:\n      names: [web]\n",
    ));
    run.until("ingress", |g| g.contains_key("ingress/web/site"))
        .await;
    let group = &run.groups["ingress/web/site"];
    assert_eq!(
        group.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "web"),
            ("__meta_kubernetes_ingress_name", "site"),
            ("__meta_kubernetes_ingress_class_name", "nginx"),
            (
                "__meta_kubernetes_ingress_annotation_kubernetes_io_ingress_class",
                "old"
            ),
            (
                "__meta_kubernetes_ingress_annotationpresent_kubernetes_io_ingress_class",
                "true"
            ),
        ])
    );
    let target = |host: &str, scheme: &str, path: &str| {
        labels(&[
            ("__address__", host),
            ("__meta_kubernetes_ingress_host", host),
            ("__meta_kubernetes_ingress_scheme", scheme),
            ("__meta_kubernetes_ingress_path", path),
        ])
    };
    assert_eq!(
        group.targets,
        vec![
            target("shop.example.com", "https", "/api"),
            target("shop.example.com", "https", "/"),
            // The wildcard covers one label only.
            target("a.b.example.com", "http", "/"),
        ]
    );
    assert_eq!(
        server.requests()[0].path,
        "/apis/networking.k8s.io/v1/namespaces/web/ingresses"
    );
}

#[tokio::test]
async fn attach_metadata_node_and_namespace() {
    let server = FakeApiServer::start().await;
    server.apply(
        "namespaces",
        json!({"metadata": {"name": "prod", "labels": {"team": "a"},
                            "annotations": {"owner": "x"}}}),
    );
    server.apply(
        "nodes",
        json!({"metadata": {"name": "node-1", "labels": {"zone": "z1"}},
               "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}]}}),
    );
    server.apply(
        "pods",
        pod("prod", "p", "10.0.0.1", json!({}), web_container(80)),
    );
    let mut run = Run::start(api_server_sd(
        &server,
        "pod",
        "    attach_metadata:\n      node: true\n      namespace: true\n",
    ));
    run.until("metadata", |g| {
        g.get("pod/prod/p").is_some_and(|g| {
            g.labels.has("__meta_kubernetes_node_label_zone")
                && g.labels.has("__meta_kubernetes_namespace_label_team")
        })
    })
    .await;
    let group = &run.groups["pod/prod/p"];
    for (name, value) in [
        ("__meta_kubernetes_node_name", "node-1"),
        ("__meta_kubernetes_node_labelpresent_zone", "true"),
        ("__meta_kubernetes_namespace_annotation_owner", "x"),
        ("__meta_kubernetes_namespace_labelpresent_team", "true"),
    ] {
        assert_eq!(group.labels.get(name), Some(value), "{name}");
    }
    // A node change reaches the pods on it.
    server.apply(
        "nodes",
        json!({"metadata": {"name": "node-1", "labels": {"zone": "z2"}},
               "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}]}}),
    );
    run.until("new zone", |g| {
        g["pod/prod/p"]
            .labels
            .get("__meta_kubernetes_node_label_zone")
            == Some("z2")
    })
    .await;
}

/// The configuration files in deploy/kubernetes's ConfigMaps load in Meridian.
#[test]
fn deploy_manifest_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    let mut checked = 0;
    for name in ["meridian.yaml", "federation.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("manifest readable");
        let mut lines = text.lines();
        while lines.by_ref().any(|l| l.trim_end() == "  meridian.yml: |") {
            let config: Vec<&str> = lines
                .clone()
                .take_while(|l| l.is_empty() || l.starts_with("    "))
                .map(|l| l.get(4..).unwrap_or(""))
                .collect();
            let config = Config::from_str(&config.join("\n"), name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                config
                    .scrape_configs
                    .iter()
                    .any(|s| !s.kubernetes_sd_configs.is_empty())
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
}

/// Jobs with identical Kubernetes SD configs share one provider, hence one set of watches.
#[tokio::test]
async fn identical_configs_share_watches() {
    let server = FakeApiServer::start().await;
    server.apply(
        "pods",
        pod("ns", "a", "10.0.0.1", json!({}), web_container(80)),
    );
    let yaml = format!(
        "scrape_configs:\n\
         - job_name: one\n  kubernetes_sd_configs:\n  - role: pod\n    api_server: {url}\n\
         - job_name: two\n  kubernetes_sd_configs:\n  - role: pod\n    api_server: {url}\n\
         - job_name: three\n  kubernetes_sd_configs:\n  - role: pod\n    api_server: {url}\n    \
         selectors:\n    - role: pod\n      label: app=x\n",
        url = server.url()
    );
    let config = Config::from_str(&yaml, "test.yml").expect("config loads");
    let jobs: BTreeMap<String, Vec<std::sync::Arc<dyn SdConfig>>> = config
        .scrape_configs
        .iter()
        .map(|s| (s.job_name.clone(), discovery::sd_configs_for_scrape(s)))
        .collect();
    let (manager, mut updates) = discovery::DiscoveryManager::new(discovery::DiscoveryOptions {
        update_interval: Duration::from_millis(10),
        ..Default::default()
    });
    manager.apply_config(&jobs);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sets = updates.borrow_and_update().clone();
        if sets.get("one").is_some_and(|g| g.len() == 1)
            && sets.get("two").is_some_and(|g| g.len() == 1)
        {
            assert_eq!(sets.get("three").map(Vec::len), Some(0));
            break;
        }
        let _ = tokio::time::timeout_at(deadline, updates.changed())
            .await
            .expect("both jobs get the pod");
    }
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    // One list for jobs one and two together, one for job three's selector.
    assert_eq!(lists.len(), 2, "{lists:#?}");
    manager.stop();
}
