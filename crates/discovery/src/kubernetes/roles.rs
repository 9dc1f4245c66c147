//! What each Kubernetes role makes of its objects: the target group of one pod, service,
//! node, endpoints, endpoint slice or ingress, with Prometheus' sources (`pod/<ns>/<name>`,
//! `svc/<ns>/<name>`, `node/<name>`, `endpoints/<ns>/<name>`, `endpointslice/<ns>/<name>`,
//! `ingress/<ns>/<name>`), addresses and `__meta_kubernetes_*` labels.

use std::collections::BTreeMap;

use model::labels::{Labels, LabelsBuilder};

use super::objects::{
    Container, ContainerPort, EndpointAddress, EndpointPort, EndpointSlice, Endpoints, Ingress,
    KubeObject, Node, ObjectMeta, ObjectReference, Pod, Service,
};
use super::store::Store;
use crate::{ADDRESS_LABEL, TargetGroup};

pub const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
const META: &str = "__meta_kubernetes_";

/// A role's view of its objects.
pub trait RoleObject: KubeObject {
    /// The group source of the object with this namespace and name.
    fn source(namespace: &str, name: &str) -> String;
    /// The object's group (no targets when it cannot be scraped, e.g. a pod without IP).
    fn group(&self) -> TargetGroup;
}

/// Prometheus' `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `host:port`, with brackets around an IPv6 host (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `<kind>_label_*`, `<kind>_labelpresent_*`, `<kind>_annotation_*` and
/// `<kind>_annotationpresent_*` labels of an object.
pub fn add_object_meta(builder: &mut LabelsBuilder, kind: &str, meta: &ObjectMeta) {
    for (name, value) in &meta.labels {
        let name = sanitize(name);
        builder.set(format!("{META}{kind}_label_{name}"), value.as_str());
        builder.set(format!("{META}{kind}_labelpresent_{name}"), "true");
    }
    for (name, value) in &meta.annotations {
        let name = sanitize(name);
        builder.set(format!("{META}{kind}_annotation_{name}"), value.as_str());
        builder.set(format!("{META}{kind}_annotationpresent_{name}"), "true");
    }
}

pub fn meta_name(kind: &str, suffix: &str) -> String {
    format!("{META}{kind}_{suffix}")
}

fn labels_of(pairs: &[(String, String)]) -> Labels {
    let mut builder = LabelsBuilder::new();
    for (name, value) in pairs {
        builder.set(name.as_str(), value.as_str());
    }
    builder.build()
}

impl Pod {
    /// Prometheus' `podLabels`: the pod's own labels, without the namespace.
    fn labels(&self) -> LabelsBuilder {
        let meta = &self.metadata;
        let mut labels = LabelsBuilder::new();
        labels.set(meta_name("pod", "name"), meta.name.as_str());
        labels.set(meta_name("pod", "ip"), self.status.pod_ip.as_str());
        let ready = self
            .status
            .conditions
            .iter()
            .find(|c| c.kind == "Ready")
            .map(|c| c.status.to_lowercase())
            .unwrap_or_else(|| "unknown".to_owned());
        labels.set(meta_name("pod", "ready"), ready);
        labels.set(meta_name("pod", "phase"), self.status.phase.as_str());
        labels.set(meta_name("pod", "node_name"), self.spec.node_name.as_str());
        labels.set(meta_name("pod", "host_ip"), self.status.host_ip.as_str());
        labels.set(meta_name("pod", "uid"), meta.uid.as_str());
        if let Some(owner) = meta
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true))
        {
            labels.set(meta_name("pod", "controller_kind"), owner.kind.as_str());
            labels.set(meta_name("pod", "controller_name"), owner.name.as_str());
        }
        add_object_meta(&mut labels, "pod", meta);
        labels
    }

    /// Regular containers, then init containers (flagged true).
    fn all_containers(&self) -> impl Iterator<Item = (&Container, bool)> {
        let regular = self.spec.containers.iter().map(|c| (c, false));
        let init = self.spec.init_containers.iter().map(|c| (c, true));
        regular.chain(init)
    }
}

impl RoleObject for Pod {
    fn source(namespace: &str, name: &str) -> String {
        format!("pod/{namespace}/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let mut group = TargetGroup {
            source: Pod::source(&meta.namespace, &meta.name),
            ..TargetGroup::default()
        };
        let ip = self.status.pod_ip.as_str();
        // Prometheus: a pod without an IP yet has an empty group.
        if ip.is_empty() {
            return group;
        }

        let mut labels = self.labels();
        labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
        group.labels = labels.build();

        for (container, is_init) in self.all_containers() {
            let statuses = if is_init {
                &self.status.init_container_statuses
            } else {
                &self.status.container_statuses
            };
            let id = statuses
                .iter()
                .find(|s| s.name == container.name)
                .map(|s| s.container_id.as_str())
                .unwrap_or_default();
            let common = [
                (meta_name("pod", "container_name"), container.name.clone()),
                (meta_name("pod", "container_id"), id.to_owned()),
                (meta_name("pod", "container_image"), container.image.clone()),
                (meta_name("pod", "container_init"), is_init.to_string()),
            ];
            if container.ports.is_empty() {
                // No port: the target is the pod IP; relabeling has to add one.
                let mut pairs = common.to_vec();
                pairs.push((ADDRESS_LABEL.to_owned(), ip.to_owned()));
                group.targets.push(labels_of(&pairs));
                continue;
            }
            for port in &container.ports {
                let number = port.container_port.to_string();
                let mut pairs = common.to_vec();
                pairs.push((ADDRESS_LABEL.to_owned(), join_host_port(ip, &number)));
                pairs.push((meta_name("pod", "container_port_name"), port.name.clone()));
                pairs.push((meta_name("pod", "container_port_number"), number));
                pairs.push((
                    meta_name("pod", "container_port_protocol"),
                    port.protocol.clone(),
                ));
                group.targets.push(labels_of(&pairs));
            }
        }
        group
    }
}

impl RoleObject for Service {
    fn source(namespace: &str, name: &str) -> String {
        format!("svc/{namespace}/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let mut labels = LabelsBuilder::new();
        labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
        labels.set(meta_name("service", "name"), meta.name.as_str());
        labels.set(meta_name("service", "type"), self.spec.kind.as_str());
        add_object_meta(&mut labels, "service", meta);
        let host = format!("{}.{}.svc", meta.name, meta.namespace);
        let targets = self
            .spec
            .ports
            .iter()
            .map(|port| {
                let number = port.port.to_string();
                let mut pairs = vec![
                    (ADDRESS_LABEL.to_owned(), join_host_port(&host, &number)),
                    (meta_name("service", "port_name"), port.name.clone()),
                    (meta_name("service", "port_number"), number),
                    (meta_name("service", "port_protocol"), port.protocol.clone()),
                ];
                if let Some(app) = &port.app_protocol {
                    pairs.push((meta_name("service", "port_app_protocol"), app.clone()));
                }
                if self.spec.kind == "ExternalName" {
                    pairs.push((
                        meta_name("service", "external_name"),
                        self.spec.external_name.clone(),
                    ));
                } else {
                    pairs.push((
                        meta_name("service", "cluster_ip"),
                        self.spec.cluster_ip.clone(),
                    ));
                }
                labels_of(&pairs)
            })
            .collect();
        TargetGroup {
            source: Service::source(&meta.namespace, &meta.name),
            targets,
            labels: labels.build(),
        }
    }
}

/// Whether `host` matches a TLS host, which may start with a `*.` wildcard for one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

impl RoleObject for Ingress {
    fn source(namespace: &str, name: &str) -> String {
        format!("ingress/{namespace}/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let mut labels = LabelsBuilder::new();
        labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
        labels.set(meta_name("ingress", "name"), meta.name.as_str());
        let class = self
            .spec
            .ingress_class_name
            .as_deref()
            .or_else(|| {
                meta.annotations
                    .get("kubernetes.io/ingress.class")
                    .map(String::as_str)
            })
            .unwrap_or_default();
        labels.set(meta_name("ingress", "class_name"), class);
        add_object_meta(&mut labels, "ingress", meta);

        let mut targets = Vec::new();
        for rule in &self.spec.rules {
            let tls = self
                .spec
                .tls
                .iter()
                .flat_map(|t| &t.hosts)
                .any(|pattern| host_matches(pattern, &rule.host));
            let scheme = if tls { "https" } else { "http" };
            let paths: Vec<&str> = match &rule.http {
                Some(http) if !http.paths.is_empty() => http
                    .paths
                    .iter()
                    .map(|p| {
                        if p.path.is_empty() {
                            "/"
                        } else {
                            p.path.as_str()
                        }
                    })
                    .collect(),
                _ => vec!["/"],
            };
            for path in paths {
                targets.push(labels_of(&[
                    (ADDRESS_LABEL.to_owned(), rule.host.clone()),
                    (meta_name("ingress", "scheme"), scheme.to_owned()),
                    (meta_name("ingress", "host"), rule.host.clone()),
                    (meta_name("ingress", "path"), path.to_owned()),
                ]));
            }
        }
        TargetGroup {
            source: Ingress::source(&meta.namespace, &meta.name),
            targets,
            labels: labels.build(),
        }
    }
}

/// The address types a node target uses, in order of preference.
const NODE_ADDRESS_PREFERENCE: [&str; 4] = ["InternalIP", "ExternalIP", "LegacyHostIP", "Hostname"];

impl RoleObject for Node {
    fn source(_namespace: &str, name: &str) -> String {
        format!("node/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let mut group = TargetGroup {
            source: Node::source("", &meta.name),
            ..TargetGroup::default()
        };
        let addresses = &self.status.addresses;
        let Some(address) = NODE_ADDRESS_PREFERENCE
            .iter()
            .find_map(|kind| addresses.iter().find(|a| a.kind == *kind))
        else {
            tracing::warn!(node = %meta.name, "Kubernetes node has no usable address; skipped");
            return group;
        };
        let mut labels = LabelsBuilder::new();
        labels.set(meta_name("node", "name"), meta.name.as_str());
        labels.set(
            meta_name("node", "provider_id"),
            self.spec.provider_id.as_str(),
        );
        add_object_meta(&mut labels, "node", meta);
        group.labels = labels.build();

        let port = self
            .status
            .daemon_endpoints
            .kubelet_endpoint
            .port
            .to_string();
        let mut target = LabelsBuilder::new();
        target.set(ADDRESS_LABEL, join_host_port(&address.address, &port));
        target.set("instance", meta.name.as_str());
        // The first address of each type.
        for a in addresses.iter().rev() {
            target.set(
                format!("{META}node_address_{}", sanitize(&a.kind)),
                a.address.as_str(),
            );
        }
        group.targets.push(target.build());
        group
    }
}

/// Prometheus' `serviceLabels`: what an endpoints group learns from its service.
fn service_labels(builder: &mut LabelsBuilder, service: &Service) {
    builder.set(NAMESPACE_LABEL, service.metadata.namespace.as_str());
    builder.set(meta_name("service", "name"), service.metadata.name.as_str());
    add_object_meta(builder, "service", &service.metadata);
}

/// Sets the labels of a pod container port on a target.
fn set_container_port(
    target: &mut LabelsBuilder,
    container: &Container,
    port: &ContainerPort,
    protocol: &str,
    is_init: bool,
) {
    target.set(meta_name("pod", "container_name"), container.name.as_str());
    target.set(
        meta_name("pod", "container_image"),
        container.image.as_str(),
    );
    target.set(meta_name("pod", "container_port_name"), port.name.as_str());
    target.set(
        meta_name("pod", "container_port_number"),
        port.container_port.to_string(),
    );
    target.set(meta_name("pod", "container_port_protocol"), protocol);
    target.set(meta_name("pod", "container_init"), is_init.to_string());
}

/// Adds `pod`'s labels to `target` (the target's own labels win).
fn merge_pod_labels(target: &mut LabelsBuilder, pod: &Pod) {
    for label in pod.labels().labels() {
        if target.get(label.name.as_str()).is_none() {
            target.set(label.name.clone(), label.value.clone());
        }
    }
}

/// The pod a target reference names, when it names a known pod.
fn referenced_pod<'a>(
    reference: Option<&ObjectReference>,
    pods: &'a Store<Pod>,
) -> Option<&'a Pod> {
    reference
        .filter(|r| r.kind == "Pod")
        .and_then(|r| pods.get(&r.namespace, &r.name))
}

/// Adds a pod's labels to an endpoint target, and the labels of the container port with the
/// endpoint's port number, if any.
fn attach_pod(target: &mut LabelsBuilder, pod: &Pod, port: i64, protocol: &str) {
    merge_pod_labels(target, pod);
    let matching = pod.all_containers().find_map(|(container, is_init)| {
        container
            .ports
            .iter()
            .find(|p| p.container_port == port)
            .map(|p| (container, p, is_init))
    });
    if let Some((container, container_port, is_init)) = matching {
        set_container_port(target, container, container_port, protocol, is_init);
    }
}

/// Pods seen through endpoint addresses, by namespace and name, with the port numbers the
/// endpoints cover.
type SeenPods<'a> = BTreeMap<(String, String), (&'a Pod, Vec<i64>)>;

/// One target for every container port of the seen pods that no endpoint covers.
fn uncovered_pod_ports(seen: &SeenPods<'_>, targets: &mut Vec<Labels>) {
    for (pod, covered) in seen.values() {
        let ip = pod.status.pod_ip.as_str();
        // A starting or evicted pod has no IP.
        if ip.is_empty() {
            continue;
        }
        for (container, is_init) in pod.all_containers() {
            for port in &container.ports {
                if covered.contains(&port.container_port) {
                    continue;
                }
                let mut target = LabelsBuilder::new();
                target.set(
                    ADDRESS_LABEL,
                    join_host_port(ip, &port.container_port.to_string()),
                );
                set_container_port(&mut target, container, port, &port.protocol, is_init);
                merge_pod_labels(&mut target, pod);
                targets.push(target.build());
            }
        }
    }
}

pub fn endpoints_source(namespace: &str, name: &str) -> String {
    format!("endpoints/{namespace}/{name}")
}

/// The group of an endpoints object: one target per address and port, with the labels of the
/// pod an address points to and of the service of the same name; then one target for every
/// container port of those pods that no endpoint port covers.
pub fn endpoints_group(
    endpoints: &Endpoints,
    pods: &Store<Pod>,
    services: &Store<Service>,
) -> TargetGroup {
    let meta = &endpoints.metadata;
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    labels.set(meta_name("endpoints", "name"), meta.name.as_str());
    add_object_meta(&mut labels, "endpoints", meta);
    if let Some(service) = services.get(&meta.namespace, &meta.name) {
        service_labels(&mut labels, service);
    }

    // Pods seen through addresses, with the ports endpoints already cover.
    let mut seen = SeenPods::new();
    let mut targets = Vec::new();
    let mut add = |address: &EndpointAddress, port: &EndpointPort, ready: bool| {
        let mut target = LabelsBuilder::new();
        target.set(
            ADDRESS_LABEL,
            join_host_port(&address.ip, &port.port.to_string()),
        );
        target.set(meta_name("endpoint", "port_name"), port.name.as_str());
        target.set(
            meta_name("endpoint", "port_protocol"),
            port.protocol.as_str(),
        );
        target.set(meta_name("endpoint", "ready"), ready.to_string());
        if let Some(app) = &port.app_protocol {
            target.set(meta_name("endpoint", "port_app_protocol"), app.as_str());
        }
        if let Some(reference) = &address.target_ref {
            target.set(
                meta_name("endpoint", "address_target_kind"),
                reference.kind.as_str(),
            );
            target.set(
                meta_name("endpoint", "address_target_name"),
                reference.name.as_str(),
            );
        }
        if let Some(node) = &address.node_name {
            target.set(meta_name("endpoint", "node_name"), node.as_str());
        }
        target.set(meta_name("endpoint", "hostname"), address.hostname.as_str());

        if let Some(pod) = referenced_pod(address.target_ref.as_ref(), pods) {
            let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
            seen.entry(key)
                .or_insert((pod, Vec::new()))
                .1
                .push(port.port);
            attach_pod(&mut target, pod, port.port, &port.protocol);
        }
        targets.push(target.build());
    };
    for subset in &endpoints.subsets {
        for port in &subset.ports {
            for address in &subset.addresses {
                add(address, port, true);
            }
            for address in &subset.not_ready_addresses {
                add(address, port, false);
            }
        }
    }
    uncovered_pod_ports(&seen, &mut targets);
    TargetGroup {
        source: endpoints_source(&meta.namespace, &meta.name),
        targets,
        labels: labels.build(),
    }
}

pub fn endpoint_slice_source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

/// The label naming the service an endpoint slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The group of an endpoint slice: one target per endpoint (its first address) and port,
/// with the labels of the pod an endpoint points to and of the slice's service; then one
/// target for every container port of those pods that no slice port covers.
pub fn endpoint_slice_group(
    slice: &EndpointSlice,
    pods: &Store<Pod>,
    services: &Store<Service>,
) -> TargetGroup {
    let meta = &slice.metadata;
    let kind = "endpointslice";
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, meta.namespace.as_str());
    labels.set(meta_name(kind, "name"), meta.name.as_str());
    labels.set(meta_name(kind, "address_type"), slice.address_type.as_str());
    add_object_meta(&mut labels, kind, meta);
    if let Some(service) = meta
        .labels
        .get(SERVICE_NAME_LABEL)
        .and_then(|name| services.get(&meta.namespace, name))
    {
        service_labels(&mut labels, service);
    }

    let mut seen = SeenPods::new();
    let mut targets = Vec::new();
    for port in &slice.ports {
        let Some(number) = port.port else {
            continue;
        };
        let protocol = port.protocol.as_deref().unwrap_or_default();
        for endpoint in &slice.endpoints {
            let Some(address) = endpoint.addresses.first() else {
                continue;
            };
            let mut target = LabelsBuilder::new();
            target.set(ADDRESS_LABEL, join_host_port(address, &number.to_string()));
            target.set(meta_name(kind, "port"), number.to_string());
            target.set(
                meta_name(kind, "port_name"),
                port.name.as_deref().unwrap_or_default(),
            );
            target.set(meta_name(kind, "port_protocol"), protocol);
            if let Some(app) = &port.app_protocol {
                target.set(meta_name(kind, "port_app_protocol"), app.as_str());
            }
            let conditions = [
                ("endpoint_conditions_ready", endpoint.conditions.ready),
                ("endpoint_conditions_serving", endpoint.conditions.serving),
                (
                    "endpoint_conditions_terminating",
                    endpoint.conditions.terminating,
                ),
            ];
            for (name, value) in conditions {
                if let Some(value) = value {
                    target.set(meta_name(kind, name), value.to_string());
                }
            }
            let optional = [
                ("endpoint_hostname", &endpoint.hostname),
                ("endpoint_node_name", &endpoint.node_name),
                ("endpoint_zone", &endpoint.zone),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    target.set(meta_name(kind, name), value.as_str());
                }
            }
            if let Some(reference) = &endpoint.target_ref {
                target.set(
                    meta_name(kind, "address_target_kind"),
                    reference.kind.as_str(),
                );
                target.set(
                    meta_name(kind, "address_target_name"),
                    reference.name.as_str(),
                );
            }
            for (name, value) in &endpoint.deprecated_topology {
                let name = sanitize(name);
                target.set(
                    meta_name(kind, &format!("endpoint_topology_{name}")),
                    value.as_str(),
                );
                target.set(
                    meta_name(kind, &format!("endpoint_topology_present_{name}")),
                    "true",
                );
            }
            if let Some(pod) = referenced_pod(endpoint.target_ref.as_ref(), pods) {
                let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
                seen.entry(key).or_insert((pod, Vec::new())).1.push(number);
                attach_pod(&mut target, pod, number, protocol);
            }
            targets.push(target.build());
        }
    }
    uncovered_pod_ports(&seen, &mut targets);
    TargetGroup {
        source: endpoint_slice_source(&meta.namespace, &meta.name),
        targets,
        labels: labels.build(),
    }
}
