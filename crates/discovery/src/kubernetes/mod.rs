//! `kubernetes_sd_configs`: targets found by watching the Kubernetes API, as Prometheus'
//! Kubernetes discovery: every role (`pod`, `service`, `node`, `endpoints`, `endpointslice`,
//! `ingress`) and `attach_metadata` (`node` for pod and endpoints roles, `namespace`).
//!
//! Owns: turning a [`KubernetesSdConfig`] into API connections — `api_server` with the
//! job's HTTP client settings, a `kubeconfig_file` ([`kubeconfig`]), or the in-cluster
//! service account (`KUBERNETES_SERVICE_HOST`/`PORT`, token and CA files; the token is read
//! at every request, so a rotated one is picked up) — the namespaces to watch (`names`,
//! `own_namespace`) and the `selectors` of each watched kind, running one [`watch::Watcher`]
//! per kind and namespace (the endpoints roles also watch pods and services), keeping what
//! they report in [`store`]s and rendering the groups each change touches. The protocol lives
//! in [`watch`], the objects in [`objects`], the labels in [`roles`].
//!
//! The API is spoken as plain JSON over [`httpclient`] rather than through the `kube` crate:
//! discovery needs a handful of fields of three object kinds, and this keeps one TLS stack,
//! one client configuration path, and minutes of build time out of the workspace.

pub mod kubeconfig;
pub mod objects;
pub mod roles;
pub mod store;
pub mod watch;

use std::any::Any;
use std::path::PathBuf;
use std::time::Duration;

use config::{Authorization, HttpClientConfig, KubernetesRole, KubernetesSdConfig, TlsConfig};
use httpclient::HttpClient;
use httpclient::reqwest::Url;
use tokio::sync::mpsc;

use crate::{Discoverer, DiscovererFuture, DiscovererOptions, SdConfig, TargetGroup, same_config};
use model::labels::LabelsBuilder;
use objects::{EndpointSlice, Endpoints, Ingress, Namespace, Node, Pod, Service};
use roles::RoleObject;
use store::{Key, Store};
use watch::{Change, WatchTarget, Watcher};

/// Where a pod's service account is mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What in-cluster configuration reads: the process environment and the service-account
/// files. Tests build their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEnvironment {
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// `https` in a cluster; tests may use `http`.
    pub scheme: String,
    pub token_file: PathBuf,
    pub ca_file: PathBuf,
    /// The pod's own namespace (`own_namespace`).
    pub namespace_file: PathBuf,
}

impl ClusterEnvironment {
    /// The environment of this process.
    pub fn from_process() -> ClusterEnvironment {
        let dir = PathBuf::from(SERVICE_ACCOUNT_DIR);
        ClusterEnvironment {
            service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            scheme: "https".to_owned(),
            token_file: dir.join("token"),
            ca_file: dir.join("ca.crt"),
            namespace_file: dir.join("namespace"),
        }
    }
}

/// One `kubernetes_sd_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesSd {
    config: KubernetesSdConfig,
    environment: ClusterEnvironment,
    /// First retry delay after a failed request (doubles up to 30 s).
    min_backoff: Duration,
}

/// How to reach the API server.
#[derive(Debug, Clone)]
pub struct Connection {
    pub base: Url,
    pub http: HttpClientConfig,
    /// The namespace `own_namespace` means.
    pub own_namespace: Option<String>,
}

impl KubernetesSd {
    pub fn new(config: KubernetesSdConfig) -> KubernetesSd {
        KubernetesSd::with_environment(config, ClusterEnvironment::from_process())
    }

    pub fn with_environment(
        config: KubernetesSdConfig,
        environment: ClusterEnvironment,
    ) -> KubernetesSd {
        KubernetesSd {
            config,
            environment,
            min_backoff: Duration::from_millis(250),
        }
    }

    /// Sets the first retry delay (tests make it short).
    pub fn with_min_backoff(mut self, backoff: Duration) -> KubernetesSd {
        self.min_backoff = backoff;
        self
    }

    /// The API server, client settings and own namespace this config uses.
    pub fn connection(&self) -> Result<Connection, String> {
        let env = &self.environment;
        let read_own_namespace = || {
            std::fs::read_to_string(&env.namespace_file)
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    format!(
                        "could not determine the pod's namespace from {}: {e}",
                        env.namespace_file.display()
                    )
                })
        };
        let wants_own = self.config.namespaces.own_namespace;
        if let Some(api_server) = &self.config.api_server {
            return Ok(Connection {
                base: api_server.expose().clone(),
                http: self.config.http_client.clone(),
                own_namespace: if wants_own {
                    Some(read_own_namespace()?)
                } else {
                    None
                },
            });
        }
        if let Some(path) = &self.config.kubeconfig_file {
            return kubeconfig::load(path);
        }
        let (Some(host), Some(port)) = (&env.service_host, &env.service_port) else {
            return Err(
                "unable to load in-cluster configuration: KUBERNETES_SERVICE_HOST and \
                        KUBERNETES_SERVICE_PORT must be defined"
                    .to_owned(),
            );
        };
        let address = roles::join_host_port(host, port);
        let base = Url::parse(&format!("{}://{address}", env.scheme))
            .map_err(|e| format!("in-cluster API server address {address:?}: {e}"))?;
        let mut http = self.config.http_client.clone();
        if http.authorization.is_none() && http.basic_auth.is_none() {
            http.authorization = Some(Authorization {
                kind: "Bearer".to_owned(),
                credentials: None,
                credentials_file: Some(env.token_file.clone()),
            });
        }
        if http.tls_config == TlsConfig::default() && env.scheme == "https" {
            http.tls_config.ca_file = Some(env.ca_file.clone());
        }
        Ok(Connection {
            base,
            http,
            own_namespace: if wants_own {
                Some(read_own_namespace()?)
            } else {
                None
            },
        })
    }

    /// The namespaces to watch; `[None]` means all of them.
    fn namespaces(&self, own: Option<String>) -> Vec<Option<String>> {
        let mut names: Vec<String> = self.config.namespaces.names.clone();
        names.extend(own);
        names.sort();
        names.dedup();
        if names.is_empty() || self.config.role == KubernetesRole::Node {
            vec![None]
        } else {
            names.into_iter().map(Some).collect()
        }
    }

    /// The label and field selectors configured for `role`.
    fn selectors(&self, role: KubernetesRole) -> (String, String) {
        self.config
            .selectors
            .iter()
            .find(|s| s.role == role)
            .map(|s| (s.label.clone(), s.field.clone()))
            .unwrap_or_default()
    }
}

impl SdConfig for KubernetesSd {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn SdConfig) -> bool {
        same_config(self, other)
    }

    fn discoverer(&self, _options: &DiscovererOptions) -> Box<dyn Discoverer> {
        Box::new(KubernetesDiscoverer { sd: self.clone() })
    }
}

/// Runs the watchers of one `kubernetes_sd_configs` entry.
pub struct KubernetesDiscoverer {
    sd: KubernetesSd,
}

/// A server-side watch timeout in [5, 10) minutes, spread so watchers do not reconnect in step
/// (client-go does the same).
fn watch_timeout() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    Duration::from_secs(300 + u64::from(nanos % 300))
}

impl KubernetesDiscoverer {
    async fn run_watchers(self, updates: mpsc::Sender<Vec<TargetGroup>>) {
        let sd = &self.sd;
        let role = sd.config.role;
        let connection = match sd.connection() {
            Ok(connection) => connection,
            Err(e) => {
                tracing::error!(err = e, role = %role, "Kubernetes discovery cannot start");
                return;
            }
        };
        let user_agent = format!("Meridian/{}", env!("CARGO_PKG_VERSION"));
        let client = match HttpClient::new(&connection.http, &user_agent) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(err = e, role = %role, "Kubernetes discovery cannot start");
                return;
            }
        };
        let kinds: &[KubernetesRole] = match role {
            KubernetesRole::Pod
            | KubernetesRole::Service
            | KubernetesRole::Node
            | KubernetesRole::Ingress => &[role],
            KubernetesRole::Endpoints => &[
                KubernetesRole::Endpoints,
                KubernetesRole::Pod,
                KubernetesRole::Service,
            ],
            KubernetesRole::EndpointSlice => &[
                KubernetesRole::EndpointSlice,
                KubernetesRole::Pod,
                KubernetesRole::Service,
            ],
        };
        let attach = &sd.config.attach_metadata;
        let attach_node = attach.node
            && matches!(
                role,
                KubernetesRole::Pod | KubernetesRole::Endpoints | KubernetesRole::EndpointSlice
            );
        let attach_namespace = attach.namespace && role != KubernetesRole::Node;
        let mut kinds = kinds.to_vec();
        if attach_node {
            kinds.push(KubernetesRole::Node);
        }
        let (sender, mut changes) = mpsc::channel::<Message>(64);
        let mut tasks = tokio::task::JoinSet::new();
        let watch_target =
            |namespace: Option<String>, (label, field): (String, String)| WatchTarget {
                client: client.clone(),
                base: connection.base.clone(),
                api_prefix: "/api/v1",
                plural: "",
                namespace,
                label_selector: label,
                field_selector: field,
                min_backoff: sd.min_backoff,
                max_backoff: Duration::from_secs(30).max(sd.min_backoff),
                watch_timeout: watch_timeout(),
            };
        if attach_namespace {
            let target = WatchTarget {
                plural: "namespaces",
                ..watch_target(None, Default::default())
            };
            tasks.spawn(Watcher::new(target, Message::Namespace).run(sender.clone()));
        }
        for kind in kinds {
            let namespaces = if kind == KubernetesRole::Node {
                vec![None]
            } else {
                sd.namespaces(connection.own_namespace.clone())
            };
            for namespace in namespaces {
                let target = watch_target(namespace, sd.selectors(kind));
                let sender = sender.clone();
                match kind {
                    KubernetesRole::Pod => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                plural: "pods",
                                ..target
                            },
                            Message::Pod,
                        )
                        .run(sender),
                    ),
                    KubernetesRole::Service => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                plural: "services",
                                ..target
                            },
                            Message::Service,
                        )
                        .run(sender),
                    ),
                    KubernetesRole::Ingress => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                api_prefix: "/apis/networking.k8s.io/v1",
                                plural: "ingresses",
                                ..target
                            },
                            Message::Ingress,
                        )
                        .run(sender),
                    ),
                    KubernetesRole::EndpointSlice => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                api_prefix: "/apis/discovery.k8s.io/v1",
                                plural: "endpointslices",
                                ..target
                            },
                            Message::EndpointSlice,
                        )
                        .run(sender),
                    ),
                    KubernetesRole::Endpoints => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                plural: "endpoints",
                                ..target
                            },
                            Message::Endpoints,
                        )
                        .run(sender),
                    ),
                    _ => tasks.spawn(
                        Watcher::new(
                            WatchTarget {
                                plural: "nodes",
                                ..target
                            },
                            Message::Node,
                        )
                        .run(sender),
                    ),
                };
            }
        }
        drop(sender);
        // Dropping the set (when this future is dropped) aborts the watchers.
        let mut state = State {
            role: Some(role),
            attach_node,
            attach_namespace,
            ..State::default()
        };
        while let Some(message) = changes.recv().await {
            let groups = state.apply(message);
            if !groups.is_empty() && updates.send(groups).await.is_err() {
                return;
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// A change seen by one of the discoverer's watchers.
#[derive(Debug)]
enum Message {
    Pod(Change<Pod>),
    Service(Change<Service>),
    Node(Change<Node>),
    Endpoints(Change<Endpoints>),
    EndpointSlice(Change<EndpointSlice>),
    Ingress(Change<Ingress>),
    Namespace(Change<Namespace>),
}

/// The objects a discoverer knows, and its role.
#[derive(Default)]
struct State {
    role: Option<KubernetesRole>,
    pods: Store<Pod>,
    services: Store<Service>,
    nodes: Store<Node>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
    ingresses: Store<Ingress>,
    attach_node: bool,
    attach_namespace: bool,
    namespaces: Store<Namespace>,
}

/// The groups of the touched objects of a role that renders each object on its own.
fn own_groups<T: RoleObject>(store: &Store<T>, touched: Vec<Key>) -> Vec<TargetGroup> {
    touched
        .into_iter()
        .map(|(namespace, name)| match store.get(&namespace, &name) {
            Some(object) => object.group(),
            None => TargetGroup {
                source: T::source(&namespace, &name),
                ..TargetGroup::default()
            },
        })
        .collect()
}

impl State {
    /// Applies a change and returns the groups to send.
    fn apply(&mut self, message: Message) -> Vec<TargetGroup> {
        let role = self.role.unwrap_or(KubernetesRole::Pod);
        // Metadata other groups carry: every group is rendered again.
        let message = match message {
            Message::Namespace(change) => {
                self.namespaces.apply(change);
                return self.render_all();
            }
            Message::Node(change) if role != KubernetesRole::Node => {
                self.nodes.apply(change);
                return self.render_all();
            }
            other => other,
        };
        let mut groups = self.render(role, message);
        for group in &mut groups {
            self.attach_metadata(group);
        }
        groups
    }

    /// Every group of the role, with metadata attached.
    fn render_all(&self) -> Vec<TargetGroup> {
        let keys = |keys: Vec<&Key>| keys.into_iter().cloned().collect::<Vec<Key>>();
        let mut groups = match self.role.unwrap_or(KubernetesRole::Pod) {
            KubernetesRole::Pod => {
                own_groups(&self.pods, keys(self.pods.iter().map(|(k, _)| k).collect()))
            }
            KubernetesRole::Service => own_groups(
                &self.services,
                keys(self.services.iter().map(|(k, _)| k).collect()),
            ),
            KubernetesRole::Node => own_groups(
                &self.nodes,
                keys(self.nodes.iter().map(|(k, _)| k).collect()),
            ),
            KubernetesRole::Ingress => own_groups(
                &self.ingresses,
                keys(self.ingresses.iter().map(|(k, _)| k).collect()),
            ),
            KubernetesRole::Endpoints => {
                self.endpoints_groups(keys(self.endpoints.iter().map(|(k, _)| k).collect()))
            }
            KubernetesRole::EndpointSlice => {
                self.slice_groups(keys(self.slices.iter().map(|(k, _)| k).collect()))
            }
        };
        for group in &mut groups {
            self.attach_metadata(group);
        }
        groups
    }

    /// `attach_metadata`: the namespace's labels and annotations on the group; the node's on
    /// the group (pod role) or on each target (endpoints roles, by the endpoint's node, else
    /// its pod's).
    fn attach_metadata(&self, group: &mut TargetGroup) {
        if group.targets.is_empty() {
            return;
        }
        if self.attach_namespace
            && let Some(namespace) = group
                .labels
                .get(roles::NAMESPACE_LABEL)
                .and_then(|ns| self.namespaces.get("", ns))
        {
            let mut labels = group.labels.builder();
            roles::add_object_meta(&mut labels, "namespace", &namespace.metadata);
            group.labels = labels.build();
        }
        if !self.attach_node {
            return;
        }
        let node_labels = |node_name: &str| {
            self.nodes.get("", node_name).map(|node| {
                let mut labels = LabelsBuilder::new();
                labels.set(
                    roles::meta_name("node", "name"),
                    node.metadata.name.as_str(),
                );
                roles::add_object_meta(&mut labels, "node", &node.metadata);
                labels
            })
        };
        let merge = |labels: &model::labels::Labels, extra: LabelsBuilder| {
            let mut builder = labels.builder();
            for label in extra.labels() {
                if builder.get(label.name.as_str()).is_none() {
                    builder.set(label.name.clone(), label.value.clone());
                }
            }
            builder.build()
        };
        if self.role == Some(KubernetesRole::Pod) {
            if let Some(extra) = group
                .labels
                .get("__meta_kubernetes_pod_node_name")
                .and_then(node_labels)
            {
                group.labels = merge(&group.labels, extra);
            }
            return;
        }
        for target in &mut group.targets {
            let node = [
                "__meta_kubernetes_endpoint_node_name",
                "__meta_kubernetes_endpointslice_endpoint_node_name",
                "__meta_kubernetes_pod_node_name",
            ]
            .iter()
            .find_map(|name| target.get(name));
            if let Some(extra) = node.and_then(node_labels) {
                *target = merge(target, extra);
            }
        }
    }

    /// The groups a change of the role's own objects (or of the pods and services the
    /// endpoints roles read) touches.
    fn render(&mut self, role: KubernetesRole, message: Message) -> Vec<TargetGroup> {
        match (role, message) {
            (KubernetesRole::Endpoints, message) => {
                let touched = self.endpoints_touched(message);
                self.endpoints_groups(touched)
            }
            (KubernetesRole::EndpointSlice, message) => {
                let touched = self.slices_touched(message);
                self.slice_groups(touched)
            }
            (_, Message::Pod(change)) => {
                let touched = self.pods.apply(change);
                own_groups(&self.pods, touched)
            }
            (_, Message::Service(change)) => {
                let touched = self.services.apply(change);
                own_groups(&self.services, touched)
            }
            (_, Message::Node(change)) => {
                let touched = self.nodes.apply(change);
                own_groups(&self.nodes, touched)
            }
            (_, Message::Ingress(change)) => {
                let touched = self.ingresses.apply(change);
                own_groups(&self.ingresses, touched)
            }
            (_, Message::Endpoints(change)) => {
                self.endpoints.apply(change);
                Vec::new()
            }
            (_, Message::EndpointSlice(change)) => {
                self.slices.apply(change);
                Vec::new()
            }
            (_, Message::Namespace(change)) => {
                self.namespaces.apply(change);
                Vec::new()
            }
        }
    }

    /// For the endpoints role: the endpoints objects whose group a change affects.
    fn endpoints_touched(&mut self, message: Message) -> Vec<Key> {
        match message {
            Message::Endpoints(change) => self.endpoints.apply(change),
            // The endpoints of the same name take the service's labels.
            Message::Service(change) => {
                let mut services = self.services.apply(change);
                services.retain(|(ns, name)| self.endpoints.get(ns, name).is_some());
                services
            }
            Message::Pod(change) => {
                let pods = self.pods.apply(change);
                self.endpoints
                    .iter()
                    .filter(|(_, endpoints)| {
                        endpoints.subsets.iter().any(|subset| {
                            subset
                                .addresses
                                .iter()
                                .chain(&subset.not_ready_addresses)
                                .filter_map(|a| a.target_ref.as_ref())
                                .any(|r| {
                                    r.kind == "Pod"
                                        && pods
                                            .iter()
                                            .any(|(ns, name)| *ns == r.namespace && *name == r.name)
                                })
                        })
                    })
                    .map(|(key, _)| key.clone())
                    .collect()
            }
            Message::Node(_)
            | Message::EndpointSlice(_)
            | Message::Ingress(_)
            | Message::Namespace(_) => Vec::new(),
        }
    }

    /// For the endpointslice role: the slices whose group a change affects.
    fn slices_touched(&mut self, message: Message) -> Vec<Key> {
        match message {
            Message::EndpointSlice(change) => self.slices.apply(change),
            Message::Service(change) => {
                let services = self.services.apply(change);
                self.slices
                    .iter()
                    .filter(|((ns, _), slice)| {
                        let service = slice.metadata.labels.get(roles::SERVICE_NAME_LABEL);
                        services
                            .iter()
                            .any(|(sns, sname)| sns == ns && Some(sname) == service)
                    })
                    .map(|(key, _)| key.clone())
                    .collect()
            }
            Message::Pod(change) => {
                let pods = self.pods.apply(change);
                self.slices
                    .iter()
                    .filter(|(_, slice)| {
                        slice
                            .endpoints
                            .iter()
                            .filter_map(|e| e.target_ref.as_ref())
                            .any(|r| {
                                r.kind == "Pod"
                                    && pods
                                        .iter()
                                        .any(|(ns, name)| *ns == r.namespace && *name == r.name)
                            })
                    })
                    .map(|(key, _)| key.clone())
                    .collect()
            }
            Message::Node(_)
            | Message::Endpoints(_)
            | Message::Ingress(_)
            | Message::Namespace(_) => Vec::new(),
        }
    }

    fn slice_groups(&self, touched: Vec<Key>) -> Vec<TargetGroup> {
        touched
            .into_iter()
            .map(
                |(namespace, name)| match self.slices.get(&namespace, &name) {
                    Some(slice) => roles::endpoint_slice_group(slice, &self.pods, &self.services),
                    None => TargetGroup {
                        source: roles::endpoint_slice_source(&namespace, &name),
                        ..TargetGroup::default()
                    },
                },
            )
            .collect()
    }

    fn endpoints_groups(&self, touched: Vec<Key>) -> Vec<TargetGroup> {
        touched
            .into_iter()
            .map(
                |(namespace, name)| match self.endpoints.get(&namespace, &name) {
                    Some(endpoints) => {
                        roles::endpoints_group(endpoints, &self.pods, &self.services)
                    }
                    None => TargetGroup {
                        source: roles::endpoints_source(&namespace, &name),
                        ..TargetGroup::default()
                    },
                },
            )
            .collect()
    }
}

impl Discoverer for KubernetesDiscoverer {
    fn run(self: Box<Self>, updates: mpsc::Sender<Vec<TargetGroup>>) -> DiscovererFuture {
        Box::pin(self.run_watchers(updates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(yaml: &str, environment: ClusterEnvironment) -> KubernetesSd {
        let text = format!("scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n{yaml}");
        let config = config::Config::from_str(&text, "t.yml").expect("config loads");
        let job = config.scrape_configs.into_iter().next().expect("a job");
        let sd = job
            .kubernetes_sd_configs
            .into_iter()
            .next()
            .expect("an sd config");
        KubernetesSd::with_environment(sd, environment)
    }

    #[test]
    fn in_cluster_uses_service_account_token_and_ca() {
        let environment = ClusterEnvironment {
            service_host: Some("fd00::1".into()),
            service_port: Some("443".into()),
            ..ClusterEnvironment::from_process()
        };
        let connection = sd("  - role: pod\n", environment)
            .connection()
            .expect("in-cluster connection");
        assert_eq!(connection.base.as_str(), "https://[fd00::1]/");
        assert_eq!(
            connection.http.tls_config.ca_file,
            Some(PathBuf::from(SERVICE_ACCOUNT_DIR).join("ca.crt"))
        );
        let auth = connection.http.authorization.expect("bearer token");
        assert_eq!(auth.kind, "Bearer");
        assert_eq!(
            auth.credentials_file,
            Some(PathBuf::from(SERVICE_ACCOUNT_DIR).join("token"))
        );
        assert_eq!(connection.own_namespace, None);
    }

    #[test]
    fn api_server_keeps_the_job_client_settings() {
        let yaml = "  - role: node\n    api_server: https://k8s.example:6443/prefix\n    \
                    bearer_token: secret\n    namespaces:\n      names: [a]\n";
        let sd = sd(yaml, ClusterEnvironment::from_process());
        let connection = sd.connection().expect("connection");
        assert_eq!(connection.base.as_str(), "https://k8s.example:6443/prefix");
        assert!(connection.http.authorization.is_some());
        assert_eq!(connection.http.tls_config.ca_file, None);
        // Nodes are cluster-scoped: namespaces do not apply.
        assert_eq!(sd.namespaces(None), vec![None]);
    }
}
