//! The complete label set of one target of every Kubernetes role, against the fake API server
//! (`k8s/fake.rs`): objects that fill in every field a role reads, and the full list of
//! labels Prometheus' documentation (and code) gives such a target — group and target labels
//! merged as the scrape manager merges them. A label missing, extra or misnamed fails.

#![cfg(feature = "kubernetes")]

#[path = "k8s/fake.rs"]
mod fake;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use config::Config;
use discovery::kubernetes::{ClusterEnvironment, KubernetesSd};
use discovery::{DiscovererOptions, SdConfig, TargetGroup};
use fake::FakeApiServer;
use model::labels::Labels;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn sd(server: &FakeApiServer, role: &str, extra: &str) -> KubernetesSd {
    let yaml = format!(
        "scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n  - role: {role}\n    \
         api_server: {}\n{extra}",
        server.url()
    );
    let config = Config::from_str(&yaml, "test.yml").expect("config loads");
    let job = config.scrape_configs.into_iter().next().expect("a job");
    let config = job.kubernetes_sd_configs.into_iter().next().expect("an sd");
    let environment = ClusterEnvironment {
        service_host: None,
        service_port: None,
        scheme: "https".into(),
        token_file: PathBuf::from("/nonexistent/token"),
        ca_file: PathBuf::from("/nonexistent/ca.crt"),
        namespace_file: PathBuf::from("/nonexistent/namespace"),
    };
    KubernetesSd::with_environment(config, environment).with_min_backoff(Duration::from_millis(20))
}

/// Runs the discoverer until `done` holds for the groups with targets; returns them.
async fn discover(
    sd: KubernetesSd,
    done: impl Fn(&BTreeMap<String, TargetGroup>) -> bool,
) -> BTreeMap<String, TargetGroup> {
    let (sender, mut updates) = mpsc::channel(64);
    let task = tokio::spawn(sd.discoverer(&DiscovererOptions::default()).run(sender));
    let mut groups = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&groups) {
        match tokio::time::timeout_at(deadline, updates.recv()).await {
            Ok(Some(update)) => {
                for group in update {
                    if group.targets.is_empty() {
                        groups.remove(&group.source);
                    } else {
                        groups.insert(group.source.clone(), group);
                    }
                }
            }
            Ok(None) => panic!("discoverer stopped"),
            Err(_) => panic!("timed out; groups: {groups:#?}"),
        }
    }
    task.abort();
    groups
}

/// A target's labels merged with its group's (the target's win), as scraping sees them.
fn merged(group: &TargetGroup, target: usize) -> Labels {
    let mut builder = group.labels.builder();
    for label in group.targets[target].iter() {
        builder.set(label.name.clone(), label.value.clone());
    }
    builder.build()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).expect("valid labels")
}

/// Compares label sets name by name, so a failure shows what is missing or extra.
fn assert_labels(actual: &Labels, expected: &[(&str, &str)]) {
    let expected = labels(expected);
    let missing: Vec<String> = expected
        .iter()
        .filter(|l| actual.get(l.name.as_str()) != Some(l.value.as_str()))
        .map(|l| format!("{}={:?}", l.name, l.value.as_str()))
        .collect();
    let extra: Vec<String> = actual
        .iter()
        .filter(|l| !expected.has(l.name.as_str()))
        .map(|l| format!("{}={:?}", l.name, l.value.as_str()))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing or different: {missing:#?}\nextra: {extra:#?}"
    );
}

fn namespace_object() -> Value {
    json!({"metadata": {"name": "prod", "labels": {"team": "a"},
                        "annotations": {"owner": "x"}}})
}

const NAMESPACE_LABELS: [(&str, &str); 5] = [
    ("__meta_kubernetes_namespace", "prod"),
    ("__meta_kubernetes_namespace_label_team", "a"),
    ("__meta_kubernetes_namespace_labelpresent_team", "true"),
    ("__meta_kubernetes_namespace_annotation_owner", "x"),
    (
        "__meta_kubernetes_namespace_annotationpresent_owner",
        "true",
    ),
];

fn node_object() -> Value {
    json!({
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "z1"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"providerID": "aws:///eu-west-1a/i-0abc"},
        "status": {
            "addresses": [{"type": "Hostname", "address": "node-1.internal"},
                          {"type": "ExternalIP", "address": "203.0.113.9"},
                          {"type": "InternalDNS", "address": "ip-10-0-0-5.internal"},
                          {"type": "ExternalIP", "address": "203.0.113.10"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    })
}

/// The labels `attach_metadata: {node: true}` adds for `node_object`.
const NODE_META_LABELS: [(&str, &str); 5] = [
    ("__meta_kubernetes_node_name", "node-1"),
    (
        "__meta_kubernetes_node_label_topology_kubernetes_io_zone",
        "z1",
    ),
    (
        "__meta_kubernetes_node_labelpresent_topology_kubernetes_io_zone",
        "true",
    ),
    (
        "__meta_kubernetes_node_annotation_node_alpha_kubernetes_io_ttl",
        "0",
    ),
    (
        "__meta_kubernetes_node_annotationpresent_node_alpha_kubernetes_io_ttl",
        "true",
    ),
];

/// A pod with labels, an annotation, a controller, a container with a port and an init
/// container with one.
fn pod_object() -> Value {
    json!({
        "metadata": {
            "name": "web-1", "namespace": "prod", "uid": "uid-web-1",
            "labels": {"app.kubernetes.io/name": "web"},
            "annotations": {"prometheus.io/scrape": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                 "name": "web", "uid": "s1", "controller": true}],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "web:1",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}],
            "initContainers": [{"name": "init", "image": "init:1",
                                "ports": [{"name": "dbg", "containerPort": 9000, "protocol": "TCP"}]}],
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.4",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "containerID": "containerd://aaa"}],
            "initContainerStatuses": [{"name": "init", "containerID": "containerd://iii"}],
        },
    })
}

/// Prometheus' `podLabels` of `pod_object` (what every pod-backed target carries).
const POD_LABELS: [(&str, &str); 13] = [
    ("__meta_kubernetes_pod_name", "web-1"),
    ("__meta_kubernetes_pod_ip", "10.0.0.1"),
    ("__meta_kubernetes_pod_ready", "true"),
    ("__meta_kubernetes_pod_phase", "Running"),
    ("__meta_kubernetes_pod_node_name", "node-1"),
    ("__meta_kubernetes_pod_host_ip", "192.168.0.4"),
    ("__meta_kubernetes_pod_uid", "uid-web-1"),
    ("__meta_kubernetes_pod_controller_kind", "StatefulSet"),
    ("__meta_kubernetes_pod_controller_name", "web"),
    ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"),
    (
        "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
        "true",
    ),
    (
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
        "true",
    ),
    (
        "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
        "true",
    ),
];

fn service_object() -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"},
                     "annotations": {"team": "a"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
    })
}

/// What the endpoints roles take from `service_object`.
const SERVICE_LABELS: [(&str, &str); 5] = [
    ("__meta_kubernetes_service_name", "web"),
    ("__meta_kubernetes_service_label_app", "web"),
    ("__meta_kubernetes_service_labelpresent_app", "true"),
    ("__meta_kubernetes_service_annotation_team", "a"),
    ("__meta_kubernetes_service_annotationpresent_team", "true"),
];

fn with(parts: &[&[(&'static str, &'static str)]]) -> Vec<(&'static str, &'static str)> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

#[tokio::test]
async fn pod_role_full_label_set() {
    let server = FakeApiServer::start().await;
    server.apply("namespaces", namespace_object());
    server.apply("nodes", node_object());
    server.apply("pods", pod_object());
    let sd = sd(
        &server,
        "pod",
        "    attach_metadata:\n      node: true\n      namespace: true\n",
    );
    let groups = discover(sd, |g| {
        g.get("pod/prod/web-1").is_some_and(|g| {
            g.labels.has("__meta_kubernetes_node_name")
                && g.labels.has("__meta_kubernetes_namespace_label_team")
        })
    })
    .await;
    let group = &groups["pod/prod/web-1"];
    assert_eq!(group.targets.len(), 2);
    let common = with(&[&NAMESPACE_LABELS, &NODE_META_LABELS, &POD_LABELS]);
    let app: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:8080"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_id", "containerd://aaa"),
        ("__meta_kubernetes_pod_container_image", "web:1"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(&merged(group, 0), &with(&[&common, app]));
    let init: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:9000"),
        ("__meta_kubernetes_pod_container_name", "init"),
        ("__meta_kubernetes_pod_container_id", "containerd://iii"),
        ("__meta_kubernetes_pod_container_image", "init:1"),
        ("__meta_kubernetes_pod_container_init", "true"),
        ("__meta_kubernetes_pod_container_port_name", "dbg"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(&merged(group, 1), &with(&[&common, init]));
}

#[tokio::test]
async fn service_role_full_label_sets() {
    let server = FakeApiServer::start().await;
    server.apply("namespaces", namespace_object());
    server.apply("services", service_object());
    server.apply(
        "services",
        json!({
            "metadata": {"name": "lb", "namespace": "prod"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20",
                     "loadBalancerIP": "203.0.113.7",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "nodePort": 31443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}},
        }),
    );
    server.apply(
        "services",
        json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com",
                     "ports": [{"port": 5432, "protocol": "TCP"}]},
        }),
    );
    let sd = sd(
        &server,
        "service",
        "    attach_metadata:\n      namespace: true\n",
    );
    let groups = discover(sd, |g| {
        g.len() == 3
            && g.values()
                .all(|g| g.labels.has("__meta_kubernetes_namespace_label_team"))
    })
    .await;
    let web: &[(&str, &str)] = &[
        ("__address__", "web.prod.svc:80"),
        ("__meta_kubernetes_service_type", "ClusterIP"),
        ("__meta_kubernetes_service_cluster_ip", "10.96.0.7"),
        ("__meta_kubernetes_service_port_name", "http"),
        ("__meta_kubernetes_service_port_number", "80"),
        ("__meta_kubernetes_service_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(&groups["svc/prod/web"], 0),
        &with(&[&NAMESPACE_LABELS, &SERVICE_LABELS, web]),
    );
    let lb: &[(&str, &str)] = &[
        ("__address__", "lb.prod.svc:443"),
        ("__meta_kubernetes_service_name", "lb"),
        ("__meta_kubernetes_service_type", "LoadBalancer"),
        ("__meta_kubernetes_service_cluster_ip", "10.96.0.20"),
        ("__meta_kubernetes_service_loadbalancer_ip", "203.0.113.7"),
        ("__meta_kubernetes_service_port_name", "https"),
        ("__meta_kubernetes_service_port_number", "443"),
        ("__meta_kubernetes_service_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(&groups["svc/prod/lb"], 0),
        &with(&[&NAMESPACE_LABELS, lb]),
    );
    let db: &[(&str, &str)] = &[
        ("__address__", "db.prod.svc:5432"),
        ("__meta_kubernetes_service_name", "db"),
        ("__meta_kubernetes_service_type", "ExternalName"),
        ("__meta_kubernetes_service_external_name", "db.example.com"),
        ("__meta_kubernetes_service_port_number", "5432"),
        ("__meta_kubernetes_service_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(&groups["svc/prod/db"], 0),
        &with(&[&NAMESPACE_LABELS, db]),
    );
}

#[tokio::test]
async fn endpoints_role_full_label_sets() {
    let server = FakeApiServer::start().await;
    server.apply("namespaces", namespace_object());
    server.apply("nodes", node_object());
    server.apply("services", service_object());
    server.apply("pods", pod_object());
    server.apply(
        "endpoints",
        json!({
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "t"}},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1", "hostname": "web-1", "nodeName": "node-1",
                               "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-1"}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }],
        }),
    );
    let sd = sd(
        &server,
        "endpoints",
        "    attach_metadata:\n      node: true\n      namespace: true\n",
    );
    let groups = discover(sd, |g| {
        g.get("endpoints/prod/web").is_some_and(|g| {
            g.labels.has("__meta_kubernetes_service_name")
                && g.labels.has("__meta_kubernetes_namespace_label_team")
                && g.targets.len() == 2
                && g.targets[0].has("__meta_kubernetes_pod_name")
                && g.targets[0].has("__meta_kubernetes_node_name")
        })
    })
    .await;
    let group = &groups["endpoints/prod/web"];
    let endpoints: &[(&str, &str)] = &[
        ("__meta_kubernetes_endpoints_name", "web"),
        ("__meta_kubernetes_endpoints_label_app", "web"),
        ("__meta_kubernetes_endpoints_labelpresent_app", "true"),
        (
            "__meta_kubernetes_endpoints_annotation_endpoints_kubernetes_io_last_change_trigger_time",
            "t",
        ),
        (
            "__meta_kubernetes_endpoints_annotationpresent_endpoints_kubernetes_io_last_change_trigger_time",
            "true",
        ),
    ];
    // The endpoint's own target: endpoint, service, pod and matching container labels (no
    // container ID: Prometheus sets that one only in the pod role).
    let address: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:8080"),
        ("__meta_kubernetes_endpoint_hostname", "web-1"),
        ("__meta_kubernetes_endpoint_node_name", "node-1"),
        ("__meta_kubernetes_endpoint_ready", "true"),
        ("__meta_kubernetes_endpoint_port_name", "http"),
        ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
        ("__meta_kubernetes_endpoint_address_target_name", "web-1"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_image", "web:1"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(group, 0),
        &with(&[
            &NAMESPACE_LABELS,
            endpoints,
            &SERVICE_LABELS,
            &NODE_META_LABELS,
            &POD_LABELS,
            address,
        ]),
    );
    // The pod's init container port, which no endpoint covers: pod and container labels, no
    // endpoint or node labels.
    let init: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:9000"),
        ("__meta_kubernetes_pod_container_name", "init"),
        ("__meta_kubernetes_pod_container_image", "init:1"),
        ("__meta_kubernetes_pod_container_init", "true"),
        ("__meta_kubernetes_pod_container_port_name", "dbg"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(group, 1),
        &with(&[
            &NAMESPACE_LABELS,
            endpoints,
            &SERVICE_LABELS,
            &POD_LABELS,
            init,
        ]),
    );
}

#[tokio::test]
async fn endpointslice_role_full_label_sets() {
    let server = FakeApiServer::start().await;
    server.apply("namespaces", namespace_object());
    server.apply("nodes", node_object());
    server.apply("services", service_object());
    server.apply("pods", pod_object());
    server.apply(
        "endpointslices",
        json!({
            "metadata": {"name": "web-abc", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "web"},
                         "annotations": {"note": "n"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"],
                 "conditions": {"ready": true, "serving": true, "terminating": false},
                 "hostname": "web-1", "nodeName": "node-1", "zone": "z1",
                 "deprecatedTopology": {"kubernetes.io/hostname": "node-1"},
                 "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-1"}},
                {"addresses": ["10.0.0.8", "10.0.0.9"], "conditions": {"ready": false}}
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
        }),
    );
    let sd = sd(
        &server,
        "endpointslice",
        "    attach_metadata:\n      node: true\n      namespace: true\n",
    );
    let groups = discover(sd, |g| {
        g.get("endpointslice/prod/web-abc").is_some_and(|g| {
            g.labels.has("__meta_kubernetes_service_name")
                && g.labels.has("__meta_kubernetes_namespace_label_team")
                && g.targets.len() == 4
                && g.targets[0].has("__meta_kubernetes_pod_name")
                && g.targets[0].has("__meta_kubernetes_node_name")
        })
    })
    .await;
    let group = &groups["endpointslice/prod/web-abc"];
    let slice: &[(&str, &str)] = &[
        ("__meta_kubernetes_endpointslice_name", "web-abc"),
        ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
        (
            "__meta_kubernetes_endpointslice_label_kubernetes_io_service_name",
            "web",
        ),
        (
            "__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name",
            "true",
        ),
        ("__meta_kubernetes_endpointslice_annotation_note", "n"),
        (
            "__meta_kubernetes_endpointslice_annotationpresent_note",
            "true",
        ),
    ];
    let port: &[(&str, &str)] = &[
        ("__meta_kubernetes_endpointslice_port", "8080"),
        ("__meta_kubernetes_endpointslice_port_name", "http"),
        ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
        ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
    ];
    let first: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:8080"),
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
        ("__meta_kubernetes_endpointslice_endpoint_hostname", "web-1"),
        (
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            "node-1",
        ),
        ("__meta_kubernetes_endpointslice_endpoint_zone", "z1"),
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_kubernetes_io_hostname",
            "node-1",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_present_kubernetes_io_hostname",
            "true",
        ),
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        (
            "__meta_kubernetes_endpointslice_address_target_name",
            "web-1",
        ),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_image", "web:1"),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(group, 0),
        &with(&[
            &NAMESPACE_LABELS,
            slice,
            &SERVICE_LABELS,
            &NODE_META_LABELS,
            &POD_LABELS,
            port,
            first,
        ]),
    );
    // Every address of an endpoint is a target.
    for (index, address) in [(1, "10.0.0.8:8080"), (2, "10.0.0.9:8080")] {
        let other: &[(&str, &str)] = &[
            ("__address__", address),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                "false",
            ),
        ];
        assert_labels(
            &merged(group, index),
            &with(&[&NAMESPACE_LABELS, slice, &SERVICE_LABELS, port, other]),
        );
    }
    // The pod's init container port, which no slice port covers.
    let init: &[(&str, &str)] = &[
        ("__address__", "10.0.0.1:9000"),
        ("__meta_kubernetes_pod_container_name", "init"),
        ("__meta_kubernetes_pod_container_image", "init:1"),
        ("__meta_kubernetes_pod_container_init", "true"),
        ("__meta_kubernetes_pod_container_port_name", "dbg"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ];
    assert_labels(
        &merged(group, 3),
        &with(&[&NAMESPACE_LABELS, slice, &SERVICE_LABELS, &POD_LABELS, init]),
    );
}

#[tokio::test]
async fn node_role_full_label_set() {
    let server = FakeApiServer::start().await;
    server.apply("nodes", node_object());
    let groups = discover(sd(&server, "node", ""), |g| g.contains_key("node/node-1")).await;
    // No InternalIP: the InternalDNS address comes next in Prometheus' order.
    assert_labels(
        &merged(&groups["node/node-1"], 0),
        &with(&[
            &NODE_META_LABELS,
            &[
                ("__address__", "ip-10-0-0-5.internal:10250"),
                ("instance", "node-1"),
                (
                    "__meta_kubernetes_node_provider_id",
                    "aws:///eu-west-1a/i-0abc",
                ),
                ("__meta_kubernetes_node_address_Hostname", "node-1.internal"),
                ("__meta_kubernetes_node_address_ExternalIP", "203.0.113.9"),
                (
                    "__meta_kubernetes_node_address_InternalDNS",
                    "ip-10-0-0-5.internal",
                ),
            ],
        ]),
    );
}

#[tokio::test]
async fn ingress_role_full_label_set() {
    let server = FakeApiServer::start().await;
    server.apply("namespaces", namespace_object());
    server.apply(
        "ingresses",
        json!({
            "metadata": {"name": "site", "namespace": "prod", "labels": {"app": "site"},
                         "annotations": {"kubernetes.io/ingress.class": "old"}},
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["shop.example.com"]}],
                "rules": [
                    {"host": "shop.example.com", "http": {"paths": [
                        {"path": "/metrics", "pathType": "Exact",
                         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                    // An http section without paths routes nothing: no target.
                    {"host": "empty.example.com", "http": {"paths": []}},
                ],
            },
        }),
    );
    let sd = sd(
        &server,
        "ingress",
        "    attach_metadata:\n      namespace: true\n",
    );
    let groups = discover(sd, |g| {
        g.get("ingress/prod/site")
            .is_some_and(|g| g.labels.has("__meta_kubernetes_namespace_label_team"))
    })
    .await;
    let group = &groups["ingress/prod/site"];
    assert_eq!(group.targets.len(), 1);
    assert_labels(
        &merged(group, 0),
        &with(&[
            &NAMESPACE_LABELS,
            &[
                ("__address__", "shop.example.com"),
                ("__meta_kubernetes_ingress_name", "site"),
                ("__meta_kubernetes_ingress_class_name", "nginx"),
                ("__meta_kubernetes_ingress_label_app", "site"),
                ("__meta_kubernetes_ingress_labelpresent_app", "true"),
                (
                    "__meta_kubernetes_ingress_annotation_kubernetes_io_ingress_class",
                    "old",
                ),
                (
                    "__meta_kubernetes_ingress_annotationpresent_kubernetes_io_ingress_class",
                    "true",
                ),
                ("__meta_kubernetes_ingress_scheme", "https"),
                ("__meta_kubernetes_ingress_host", "shop.example.com"),
                ("__meta_kubernetes_ingress_path", "/metrics"),
            ],
        ]),
    );
}
