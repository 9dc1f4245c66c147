//! What each Kubernetes role makes of its objects: the target group of one pod, service,
//! node, endpoints, endpoint slice or ingress, with Prometheus' sources (`pod/<ns>/<name>`,
//! `svc/<ns>/<name>`, `node/<name>`, `endpoints/<ns>/<name>`, `endpointslice/<ns>/<name>`,
//! `ingress/<ns>/<name>`), addresses and `__meta_kubernetes_*` labels — the same label sets
//! Prometheus builds from the same objects (empty values are absent, as after Prometheus'
//! own target processing).

use std::collections::BTreeMap;

use model::labels::{Labels, LabelsBuilder};

use super::objects::{
    self, Container, ContainerPort, EndpointAddress, EndpointPort, EndpointSlice, Endpoints,
    Ingress, KubeObject, Node, ObjectMeta, ObjectReference, Pod, Service, items, text,
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
    for (name, value) in objects::labels(meta) {
        let name = sanitize(name);
        builder.set(format!("{META}{kind}_label_{name}"), value.as_str());
        builder.set(format!("{META}{kind}_labelpresent_{name}"), "true");
    }
    for (name, value) in objects::annotations(meta) {
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

/// A pod's containers: the regular ones, then the init containers (flagged true).
fn all_containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init = spec.map(|s| items(&s.init_containers)).unwrap_or_default();
    regular
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)))
}

fn pod_ip(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .map(|s| text(&s.pod_ip))
        .unwrap_or_default()
}

/// Prometheus' `podLabels`: the pod's own labels, without the namespace.
fn pod_labels(pod: &Pod) -> LabelsBuilder {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let status_text = |read: fn(&k8s_openapi::api::core::v1::PodStatus) -> &Option<String>| {
        status.map(|s| text(read(s))).unwrap_or_default()
    };
    let mut labels = LabelsBuilder::new();
    labels.set(meta_name("pod", "name"), objects::name(meta));
    labels.set(meta_name("pod", "ip"), pod_ip(pod));
    let ready = status
        .map(|s| items(&s.conditions))
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".to_owned());
    labels.set(meta_name("pod", "ready"), ready);
    labels.set(meta_name("pod", "phase"), status_text(|s| &s.phase));
    labels.set(
        meta_name("pod", "node_name"),
        pod.spec
            .as_ref()
            .map(|s| text(&s.node_name))
            .unwrap_or_default(),
    );
    labels.set(meta_name("pod", "host_ip"), status_text(|s| &s.host_ip));
    labels.set(meta_name("pod", "uid"), text(&meta.uid));
    if let Some(owner) = items(&meta.owner_references)
        .iter()
        .find(|o| o.controller == Some(true))
    {
        labels.set(meta_name("pod", "controller_kind"), owner.kind.as_str());
        labels.set(meta_name("pod", "controller_name"), owner.name.as_str());
    }
    add_object_meta(&mut labels, "pod", meta);
    labels
}

/// The ID (`<runtime>://<id>`) of a pod's container, from its status.
fn container_id<'a>(pod: &'a Pod, container: &str, is_init: bool) -> &'a str {
    let statuses = pod.status.as_ref().map(|s| {
        if is_init {
            items(&s.init_container_statuses)
        } else {
            items(&s.container_statuses)
        }
    });
    statuses
        .unwrap_or_default()
        .iter()
        .find(|s| s.name == container)
        .map(|s| text(&s.container_id))
        .unwrap_or_default()
}

impl RoleObject for Pod {
    fn source(namespace: &str, name: &str) -> String {
        format!("pod/{namespace}/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let namespace = objects::namespace(meta);
        let mut group = TargetGroup {
            source: Pod::source(namespace, objects::name(meta)),
            ..TargetGroup::default()
        };
        let ip = pod_ip(self);
        // Prometheus: a pod without an IP yet has an empty group.
        if ip.is_empty() {
            return group;
        }

        let mut labels = pod_labels(self);
        labels.set(NAMESPACE_LABEL, namespace);
        group.labels = labels.build();

        for (container, is_init) in all_containers(self) {
            let common = [
                (meta_name("pod", "container_name"), container.name.clone()),
                (
                    meta_name("pod", "container_id"),
                    container_id(self, &container.name, is_init).to_owned(),
                ),
                (
                    meta_name("pod", "container_image"),
                    text(&container.image).to_owned(),
                ),
                (meta_name("pod", "container_init"), is_init.to_string()),
            ];
            let ports = items(&container.ports);
            if ports.is_empty() {
                // No port: the target is the pod IP; relabeling has to add one.
                let mut pairs = common.to_vec();
                pairs.push((ADDRESS_LABEL.to_owned(), ip.to_owned()));
                group.targets.push(labels_of(&pairs));
                continue;
            }
            for port in ports {
                let number = port.container_port.to_string();
                let mut pairs = common.to_vec();
                pairs.push((ADDRESS_LABEL.to_owned(), join_host_port(ip, &number)));
                pairs.push((
                    meta_name("pod", "container_port_name"),
                    text(&port.name).to_owned(),
                ));
                pairs.push((meta_name("pod", "container_port_number"), number));
                pairs.push((
                    meta_name("pod", "container_port_protocol"),
                    text(&port.protocol).to_owned(),
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
        let (name, namespace) = (objects::name(meta), objects::namespace(meta));
        let spec = self.spec.clone().unwrap_or_default();
        let kind = text(&spec.type_);
        let mut labels = LabelsBuilder::new();
        labels.set(NAMESPACE_LABEL, namespace);
        labels.set(meta_name("service", "name"), name);
        labels.set(meta_name("service", "type"), kind);
        add_object_meta(&mut labels, "service", meta);
        let host = format!("{name}.{namespace}.svc");
        let targets = items(&spec.ports)
            .iter()
            .map(|port| {
                let number = port.port.to_string();
                let mut pairs = vec![
                    (ADDRESS_LABEL.to_owned(), join_host_port(&host, &number)),
                    (
                        meta_name("service", "port_name"),
                        text(&port.name).to_owned(),
                    ),
                    (meta_name("service", "port_number"), number),
                    (
                        meta_name("service", "port_protocol"),
                        text(&port.protocol).to_owned(),
                    ),
                ];
                if kind == "ExternalName" {
                    pairs.push((
                        meta_name("service", "external_name"),
                        text(&spec.external_name).to_owned(),
                    ));
                } else {
                    pairs.push((
                        meta_name("service", "cluster_ip"),
                        text(&spec.cluster_ip).to_owned(),
                    ));
                }
                if kind == "LoadBalancer" {
                    pairs.push((
                        meta_name("service", "loadbalancer_ip"),
                        text(&spec.load_balancer_ip).to_owned(),
                    ));
                }
                labels_of(&pairs)
            })
            .collect();
        TargetGroup {
            source: Service::source(namespace, name),
            targets,
            labels: labels.build(),
        }
    }
}

/// Whether `host` matches a TLS host of an ingress: equal, or a pattern whose first label is
/// `*` and whose other labels equal the host's (so `*` covers exactly one label).
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let host: Vec<&str> = host.split('.').collect();
    pattern.first() == Some(&"*")
        && pattern.len() == host.len()
        && pattern.iter().zip(&host).skip(1).all(|(p, h)| p == h)
}

impl RoleObject for Ingress {
    fn source(namespace: &str, name: &str) -> String {
        format!("ingress/{namespace}/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let (name, namespace) = (objects::name(meta), objects::namespace(meta));
        let spec = self.spec.clone().unwrap_or_default();
        let mut labels = LabelsBuilder::new();
        labels.set(NAMESPACE_LABEL, namespace);
        labels.set(meta_name("ingress", "name"), name);
        labels.set(
            meta_name("ingress", "class_name"),
            text(&spec.ingress_class_name),
        );
        add_object_meta(&mut labels, "ingress", meta);

        let tls_hosts: Vec<&str> = items(&spec.tls)
            .iter()
            .flat_map(|t| items(&t.hosts))
            .map(String::as_str)
            .collect();
        let mut targets = Vec::new();
        for rule in items(&spec.rules) {
            let host = text(&rule.host);
            let tls = tls_hosts.iter().any(|pattern| host_matches(pattern, host));
            let scheme = if tls { "https" } else { "http" };
            // No `http` section: the root path; one with no paths: no targets.
            let paths: Vec<&str> = match &rule.http {
                None => vec!["/"],
                Some(http) => http
                    .paths
                    .iter()
                    .map(|p| match text(&p.path) {
                        "" => "/",
                        path => path,
                    })
                    .collect(),
            };
            for path in paths {
                targets.push(labels_of(&[
                    (ADDRESS_LABEL.to_owned(), host.to_owned()),
                    (meta_name("ingress", "scheme"), scheme.to_owned()),
                    (meta_name("ingress", "host"), host.to_owned()),
                    (meta_name("ingress", "path"), path.to_owned()),
                ]));
            }
        }
        TargetGroup {
            source: Ingress::source(namespace, name),
            targets,
            labels: labels.build(),
        }
    }
}

/// The address types a node target uses, in Prometheus' order of preference.
const NODE_ADDRESS_PREFERENCE: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

impl RoleObject for Node {
    fn source(_namespace: &str, name: &str) -> String {
        format!("node/{name}")
    }

    fn group(&self) -> TargetGroup {
        let meta = &self.metadata;
        let name = objects::name(meta);
        let mut group = TargetGroup {
            source: Node::source("", name),
            ..TargetGroup::default()
        };
        let status = self.status.clone().unwrap_or_default();
        let addresses = items(&status.addresses);
        let Some(address) = NODE_ADDRESS_PREFERENCE
            .iter()
            .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind))
        else {
            tracing::warn!(node = %name, "Kubernetes node has no usable address; skipped");
            return group;
        };
        let mut labels = LabelsBuilder::new();
        labels.set(meta_name("node", "name"), name);
        labels.set(
            meta_name("node", "provider_id"),
            self.spec
                .as_ref()
                .map(|s| text(&s.provider_id))
                .unwrap_or_default(),
        );
        add_object_meta(&mut labels, "node", meta);
        group.labels = labels.build();

        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|k| k.port)
            .unwrap_or_default()
            .to_string();
        let mut target = LabelsBuilder::new();
        target.set(ADDRESS_LABEL, join_host_port(&address.address, &port));
        target.set("instance", name);
        // The first address of each type.
        for a in addresses.iter().rev() {
            target.set(
                format!("{META}node_address_{}", sanitize(&a.type_)),
                a.address.as_str(),
            );
        }
        group.targets.push(target.build());
        group
    }
}

/// Prometheus' `serviceLabels`: what an endpoints group learns from its service.
fn service_labels(builder: &mut LabelsBuilder, service: &Service) {
    let meta = &service.metadata;
    builder.set(NAMESPACE_LABEL, objects::namespace(meta));
    builder.set(meta_name("service", "name"), objects::name(meta));
    add_object_meta(builder, "service", meta);
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
    target.set(meta_name("pod", "container_image"), text(&container.image));
    target.set(meta_name("pod", "container_port_name"), text(&port.name));
    target.set(
        meta_name("pod", "container_port_number"),
        port.container_port.to_string(),
    );
    target.set(meta_name("pod", "container_port_protocol"), protocol);
    target.set(meta_name("pod", "container_init"), is_init.to_string());
}

/// Adds `pod`'s labels to `target` (the target's own labels win).
fn merge_pod_labels(target: &mut LabelsBuilder, pod: &Pod) {
    for label in pod_labels(pod).labels() {
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
        .filter(|r| text(&r.kind) == "Pod")
        .and_then(|r| pods.get(text(&r.namespace), text(&r.name)))
}

/// Whose protocol a covered container port reports: the endpoints role takes the endpoint
/// port's, the endpointslice role the container port's (as Prometheus does).
#[derive(Clone, Copy)]
enum PortProtocol<'a> {
    Endpoint(&'a str),
    Container,
}

/// Adds a pod's labels to an endpoint target, and the labels of the container port with the
/// endpoint's port number, if any.
fn attach_pod(target: &mut LabelsBuilder, pod: &Pod, port: Option<i32>, protocol: PortProtocol) {
    merge_pod_labels(target, pod);
    let Some(port) = port else {
        return;
    };
    let matching = all_containers(pod).find_map(|(container, is_init)| {
        items(&container.ports)
            .iter()
            .find(|p| p.container_port == port)
            .map(|p| (container, p, is_init))
    });
    if let Some((container, container_port, is_init)) = matching {
        let protocol = match protocol {
            PortProtocol::Endpoint(protocol) => protocol,
            PortProtocol::Container => text(&container_port.protocol),
        };
        set_container_port(target, container, container_port, protocol, is_init);
    }
}

/// Pods seen through endpoint addresses, by namespace and name, with the port numbers the
/// endpoints cover.
type SeenPods<'a> = BTreeMap<(String, String), (&'a Pod, Vec<i32>)>;

fn see_pod<'a>(seen: &mut SeenPods<'a>, pod: &'a Pod, port: Option<i32>) {
    let meta = &pod.metadata;
    let key = (
        objects::namespace(meta).to_owned(),
        objects::name(meta).to_owned(),
    );
    let entry = seen.entry(key).or_insert((pod, Vec::new()));
    entry.1.extend(port);
}

/// One target for every container port of the seen pods that no endpoint covers.
fn uncovered_pod_ports(seen: &SeenPods<'_>, targets: &mut Vec<Labels>) {
    for (pod, covered) in seen.values() {
        let ip = pod_ip(pod);
        // A starting or evicted pod has no IP.
        if ip.is_empty() {
            continue;
        }
        for (container, is_init) in all_containers(pod) {
            for port in items(&container.ports) {
                if covered.contains(&port.container_port) {
                    continue;
                }
                let mut target = LabelsBuilder::new();
                target.set(
                    ADDRESS_LABEL,
                    join_host_port(ip, &port.container_port.to_string()),
                );
                set_container_port(&mut target, container, port, text(&port.protocol), is_init);
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
    let (name, namespace) = (objects::name(meta), objects::namespace(meta));
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, namespace);
    labels.set(meta_name("endpoints", "name"), name);
    add_object_meta(&mut labels, "endpoints", meta);
    if let Some(service) = services.get(namespace, name) {
        service_labels(&mut labels, service);
    }

    // Pods seen through addresses, with the ports endpoints already cover.
    let mut seen = SeenPods::new();
    let mut targets = Vec::new();
    let mut add = |address: &EndpointAddress, port: &EndpointPort, ready: bool| {
        let protocol = text(&port.protocol);
        let mut target = LabelsBuilder::new();
        target.set(
            ADDRESS_LABEL,
            join_host_port(&address.ip, &port.port.to_string()),
        );
        target.set(meta_name("endpoint", "port_name"), text(&port.name));
        target.set(meta_name("endpoint", "port_protocol"), protocol);
        target.set(meta_name("endpoint", "ready"), ready.to_string());
        if let Some(reference) = &address.target_ref {
            target.set(
                meta_name("endpoint", "address_target_kind"),
                text(&reference.kind),
            );
            target.set(
                meta_name("endpoint", "address_target_name"),
                text(&reference.name),
            );
        }
        if let Some(node) = &address.node_name {
            target.set(meta_name("endpoint", "node_name"), node.as_str());
        }
        target.set(meta_name("endpoint", "hostname"), text(&address.hostname));

        if let Some(pod) = referenced_pod(address.target_ref.as_ref(), pods) {
            see_pod(&mut seen, pod, Some(port.port));
            attach_pod(
                &mut target,
                pod,
                Some(port.port),
                PortProtocol::Endpoint(protocol),
            );
        }
        targets.push(target.build());
    };
    for subset in items(&endpoints.subsets) {
        for port in items(&subset.ports) {
            for address in items(&subset.addresses) {
                add(address, port, true);
            }
            for address in items(&subset.not_ready_addresses) {
                add(address, port, false);
            }
        }
    }
    uncovered_pod_ports(&seen, &mut targets);
    TargetGroup {
        source: endpoints_source(namespace, name),
        targets,
        labels: labels.build(),
    }
}

pub fn endpoint_slice_source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

/// The label naming the service an endpoint slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The group of an endpoint slice: one target per endpoint, port and address, with the labels
/// of the pod an endpoint points to and of the slice's service; then one target for every
/// container port of those pods that no slice port covers.
pub fn endpoint_slice_group(
    slice: &EndpointSlice,
    pods: &Store<Pod>,
    services: &Store<Service>,
) -> TargetGroup {
    let meta = &slice.metadata;
    let (name, namespace) = (objects::name(meta), objects::namespace(meta));
    let kind = "endpointslice";
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, namespace);
    labels.set(meta_name(kind, "name"), name);
    labels.set(meta_name(kind, "address_type"), slice.address_type.as_str());
    add_object_meta(&mut labels, kind, meta);
    if let Some(service) = objects::labels(meta)
        .get(SERVICE_NAME_LABEL)
        .and_then(|service| services.get(namespace, service))
    {
        service_labels(&mut labels, service);
    }

    let mut seen = SeenPods::new();
    let mut targets = Vec::new();
    for endpoint in &slice.endpoints {
        for port in items(&slice.ports) {
            for address in &endpoint.addresses {
                let mut target = LabelsBuilder::new();
                match port.port {
                    Some(number) => {
                        let number = number.to_string();
                        target.set(ADDRESS_LABEL, join_host_port(address, &number));
                        target.set(meta_name(kind, "port"), number);
                    }
                    None => {
                        target.set(ADDRESS_LABEL, address.as_str());
                    }
                }
                if let Some(port_name) = &port.name {
                    target.set(meta_name(kind, "port_name"), port_name.as_str());
                }
                if let Some(protocol) = &port.protocol {
                    target.set(meta_name(kind, "port_protocol"), protocol.as_str());
                }
                if let Some(app) = &port.app_protocol {
                    target.set(meta_name(kind, "port_app_protocol"), app.as_str());
                }
                let conditions = endpoint.conditions.clone().unwrap_or_default();
                let conditions = [
                    ("endpoint_conditions_ready", conditions.ready),
                    ("endpoint_conditions_serving", conditions.serving),
                    ("endpoint_conditions_terminating", conditions.terminating),
                ];
                for (label, value) in conditions {
                    if let Some(value) = value {
                        target.set(meta_name(kind, label), value.to_string());
                    }
                }
                let optional = [
                    ("endpoint_hostname", &endpoint.hostname),
                    ("endpoint_node_name", &endpoint.node_name),
                    ("endpoint_zone", &endpoint.zone),
                ];
                for (label, value) in optional {
                    if let Some(value) = value {
                        target.set(meta_name(kind, label), value.as_str());
                    }
                }
                if let Some(reference) = &endpoint.target_ref {
                    target.set(
                        meta_name(kind, "address_target_kind"),
                        text(&reference.kind),
                    );
                    target.set(
                        meta_name(kind, "address_target_name"),
                        text(&reference.name),
                    );
                }
                for (key, value) in endpoint.deprecated_topology.iter().flatten() {
                    let key = sanitize(key);
                    target.set(
                        meta_name(kind, &format!("endpoint_topology_{key}")),
                        value.as_str(),
                    );
                    target.set(
                        meta_name(kind, &format!("endpoint_topology_present_{key}")),
                        "true",
                    );
                }
                if let Some(pod) = referenced_pod(endpoint.target_ref.as_ref(), pods) {
                    see_pod(&mut seen, pod, port.port);
                    attach_pod(&mut target, pod, port.port, PortProtocol::Container);
                }
                targets.push(target.build());
            }
        }
    }
    uncovered_pod_ports(&seen, &mut targets);
    TargetGroup {
        source: endpoint_slice_source(namespace, name),
        targets,
        labels: labels.build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_tls_hosts_cover_one_label() {
        assert!(host_matches("*.example.com", "shop.example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("shop.example.com", "shop.example.com"));
        assert!(!host_matches("shop.*.com", "shop.example.com"));
    }
}
