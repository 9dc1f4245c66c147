//! The Kubernetes objects discovery watches, as the `k8s-openapi` types the API server's JSON
//! decodes into (`Pod`, `Service`, `Endpoints`, `EndpointSlice`, `Node`, `Ingress`,
//! `Namespace`), and the little the rest of the module needs on top of them: the
//! [`KubeObject`] bound of a watched kind, and readers that turn the types' optional fields
//! into the empty strings Prometheus' Go structs would hold.
//!
//! k8s-openapi decodes leniently (unknown fields are ignored, missing required ones default),
//! so an object the API server sends always decodes, as it does for client-go.

use std::collections::BTreeMap;
use std::fmt::Debug;

pub use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerStatus, EndpointAddress, EndpointPort, Endpoints, Namespace,
    Node, ObjectReference, Pod, Service,
};
pub use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointSlice};
pub use k8s_openapi::api::networking::v1::Ingress;
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

/// A kind a discoverer watches: a k8s-openapi resource type kube can list and watch.
pub trait KubeObject:
    kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> KubeObject for T where
    T: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

/// An optional string as Go sees it: absent is empty.
pub fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// An object's name.
pub fn name(meta: &ObjectMeta) -> &str {
    text(&meta.name)
}

/// An object's namespace (empty for cluster-scoped objects).
pub fn namespace(meta: &ObjectMeta) -> &str {
    text(&meta.namespace)
}

/// An object's labels (none when absent).
pub fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

/// An object's annotations (none when absent).
pub fn annotations(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.annotations.as_ref().unwrap_or(&EMPTY)
}

/// The items of an optional list (none when absent).
pub fn items<T>(list: &Option<Vec<T>>) -> &[T] {
    list.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_as_the_api_server_returns_it() {
        let json = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns",
            "uid":"u1","resourceVersion":"7","labels":{"app":"x"},
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"r","controller":true}]},
            "spec":{"nodeName":"n1","containers":[{"name":"c","image":"img",
            "ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}]}]},
            "status":{"phase":"Running","podIP":"10.0.0.1","hostIP":"192.168.1.1",
            "conditions":[{"type":"Ready","status":"True"}],
            "containerStatuses":[{"name":"c","containerID":"containerd://abc","ready":true}]}}"#;
        let pod: Pod = serde_json::from_str(json).expect("pod parses");
        let owners = items(&pod.metadata.owner_references);
        assert_eq!(owners[0].controller, Some(true));
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(
            spec.containers[0].ports.as_ref().expect("ports")[0].container_port,
            8080
        );
        let status = pod.status.as_ref().expect("status");
        assert_eq!(text(&status.pod_ip), "10.0.0.1");
        assert_eq!(
            text(&items(&status.container_statuses)[0].container_id),
            "containerd://abc"
        );
    }

    #[test]
    fn objects_with_missing_fields_still_decode() {
        // List items come without kind and apiVersion; required fields may be absent.
        let pod: Pod = serde_json::from_str(r#"{"metadata":{"name":"p"},"spec":{}}"#)
            .expect("pod without containers parses");
        assert!(pod.spec.expect("spec").containers.is_empty());
        let node: Node = serde_json::from_str(
            r#"{"metadata":{"name":"n"},"status":{"addresses":[{"type":"InternalIP","address":"10.1.1.1"}],
            "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}"#,
        )
        .expect("node parses");
        let endpoints = node.status.and_then(|s| s.daemon_endpoints);
        let port = endpoints.and_then(|d| d.kubelet_endpoint).map(|k| k.port);
        assert_eq!(port, Some(10250));
    }
}
