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
//! in [`watch`], the objects in [`objects`], the labels in [`roles`], the HTTP in
//! [`transport`].
//!
//! Dependencies: the `kube` crate (kube-client and kube-core, default features off) speaks
//! the API — typed list and watch requests, `WatchEvent`s, `Status` errors — over a tower
//! service of ours ([`transport`]) that sends the bytes through [`httpclient`], and
//! `k8s-openapi` provides the object types. kube thus brings no TLS stack, no second rustls
//! crypto provider (no `ring`) and no configuration loading of its own: TLS, proxy, and
//! credentials files re-read at every request behave exactly as for scrapes. Both crates sit
//! behind the default `kubernetes` cargo feature (they cost minutes of release build).
//!
//! Metrics (in the manager's [`SdMetrics`]): `prometheus_sd_kubernetes_events_total{role,event}`
//! counts the add, update and delete events of the watched kinds (a relist counts as the
//! events it amounts to; the namespaces and nodes watched only for `attach_metadata` are not
//! counted, as Prometheus does not count them), `prometheus_sd_kubernetes_failures_total` the
//! failed list and watch requests; a config whose API connection cannot be set up is reported
//! as failed to the manager (`prometheus_sd_failed_configs`).

pub mod kubeconfig;
pub mod objects;
pub mod roles;
pub mod store;
pub mod transport;
pub mod watch;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use config::{Authorization, HttpClientConfig, KubernetesRole, KubernetesSdConfig, TlsConfig};
use httpclient::HttpClient;
use httpclient::reqwest::Url;
use kube::Api;
use tokio::sync::mpsc;

use crate::metrics::KubernetesEvent;
use crate::{
    Discoverer, DiscovererFuture, DiscovererOptions, ProviderStatus, SdConfig, SdMetrics,
    TargetGroup, same_config,
};
use model::labels::LabelsBuilder;
use objects::{EndpointSlice, Endpoints, Ingress, KubeObject, Namespace, Node, Pod, Service};
use roles::RoleObject;
use store::{Key, Store};
use watch::{Change, WatchTarget, Watcher};

/// Where a pod's service account is mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What in-cluster configuration reads: the process environment and the service-account
/// files. Not a configuration setting: [`ClusterEnvironment::from_process`] is what a server
/// uses; tests point it at files of their own
/// ([`ClusterEnvironment::with_service_account_dir`]) or fill it in entirely.
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
        ClusterEnvironment::with_service_account_dir(Path::new(SERVICE_ACCOUNT_DIR))
    }

    /// `KUBERNETES_SERVICE_HOST`/`PORT` of this process, with the service account's `token`,
    /// `ca.crt` and `namespace` read from `dir` instead of the pod's mount.
    pub fn with_service_account_dir(dir: &Path) -> ClusterEnvironment {
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

    /// A kube client for this config's API server, and the namespace `own_namespace` means.
    /// Needs a tokio runtime. Errors say which setting or file is wrong.
    pub fn client(&self) -> Result<(kube::Client, Option<String>), String> {
        let connection = self.connection()?;
        let user_agent = format!("Meridian/{}", env!("CARGO_PKG_VERSION"));
        let http = HttpClient::new(&connection.http, &user_agent)?;
        let default_namespace = connection.own_namespace.as_deref().unwrap_or("default");
        let client = transport::kube_client(http, connection.base, default_namespace);
        Ok((client, connection.own_namespace))
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

    fn discoverer(&self, options: &DiscovererOptions) -> Box<dyn Discoverer> {
        Box::new(KubernetesDiscoverer {
            sd: self.clone(),
            metrics: Arc::clone(&options.metrics),
            status: options.status.clone(),
        })
    }
}

/// Runs the watchers of one `kubernetes_sd_configs` entry.
pub struct KubernetesDiscoverer {
    sd: KubernetesSd,
    metrics: Arc<SdMetrics>,
    status: ProviderStatus,
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

/// The label and field selectors of a watch.
type Selectors = (String, String);

/// The endpoint of a namespaced kind: in one namespace, or in all of them.
fn namespaced_api<T>(client: &kube::Client, namespace: Option<&str>) -> Api<T>
where
    T: KubeObject + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

impl KubernetesDiscoverer {
    /// A watch of one kind, in one namespace or all of them (`api` already points there).
    fn target<T: KubeObject>(
        &self,
        api: Api<T>,
        namespace: Option<String>,
        (label_selector, field_selector): Selectors,
    ) -> WatchTarget<T> {
        WatchTarget {
            api,
            namespace,
            label_selector,
            field_selector,
            min_backoff: self.sd.min_backoff,
            max_backoff: Duration::from_secs(30).max(self.sd.min_backoff),
            watch_timeout: watch_timeout(),
            metrics: Arc::clone(&self.metrics),
        }
    }

    async fn run_watchers(self, updates: mpsc::Sender<Vec<TargetGroup>>) {
        let sd = &self.sd;
        let role = sd.config.role;
        let (client, own_namespace) = match sd.client() {
            Ok(client) => client,
            Err(e) => {
                self.status.set_failed();
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
        if attach_namespace {
            let target = self.target(
                Api::<Namespace>::all(client.clone()),
                None,
                Selectors::default(),
            );
            tasks.spawn(Watcher::new(target, Message::Namespace).run(sender.clone()));
        }
        for kind in kinds {
            let namespaces = if kind == KubernetesRole::Node {
                vec![None]
            } else {
                sd.namespaces(own_namespace.clone())
            };
            for namespace in namespaces {
                let selectors = sd.selectors(kind);
                let ns = namespace.as_deref();
                let sender = sender.clone();
                match kind {
                    KubernetesRole::Pod => {
                        let api = namespaced_api::<Pod>(&client, ns);
                        let target = self.target(api, namespace, selectors);
                        tasks.spawn(Watcher::new(target, Message::Pod).run(sender))
                    }
                    KubernetesRole::Service => {
                        let api = namespaced_api::<Service>(&client, ns);
                        let target = self.target(api, namespace, selectors);
                        tasks.spawn(Watcher::new(target, Message::Service).run(sender))
                    }
                    KubernetesRole::Ingress => {
                        let api = namespaced_api::<Ingress>(&client, ns);
                        let target = self.target(api, namespace, selectors);
                        tasks.spawn(Watcher::new(target, Message::Ingress).run(sender))
                    }
                    KubernetesRole::EndpointSlice => {
                        let api = namespaced_api::<EndpointSlice>(&client, ns);
                        let target = self.target(api, namespace, selectors);
                        tasks.spawn(Watcher::new(target, Message::EndpointSlice).run(sender))
                    }
                    KubernetesRole::Endpoints => {
                        let api = namespaced_api::<Endpoints>(&client, ns);
                        let target = self.target(api, namespace, selectors);
                        tasks.spawn(Watcher::new(target, Message::Endpoints).run(sender))
                    }
                    KubernetesRole::Node => {
                        // Cluster-scoped: namespaces do not apply.
                        let target = self.target(Api::<Node>::all(client.clone()), None, selectors);
                        tasks.spawn(Watcher::new(target, Message::Node).run(sender))
                    }
                };
            }
        }
        drop(sender);
        // Dropping the set (when this future is dropped) aborts the watchers.
        let mut state = State {
            role: Some(role),
            attach_node,
            attach_namespace,
            metrics: Arc::clone(&self.metrics),
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
    metrics: Arc<SdMetrics>,
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
    /// Counts the events a change amounts to, under the role Prometheus counts its kind as.
    fn count_events(&self, message: &Message) {
        let role = self.role.unwrap_or(KubernetesRole::Pod);
        let (kind, events) = match message {
            Message::Pod(change) => ("pod", self.pods.events(change)),
            Message::Service(change) => ("service", self.services.events(change)),
            // Nodes watched for `attach_metadata` only are not counted.
            Message::Node(change) if role == KubernetesRole::Node => {
                ("node", self.nodes.events(change))
            }
            Message::Endpoints(change) => ("endpoints", self.endpoints.events(change)),
            Message::EndpointSlice(change) => ("endpointslice", self.slices.events(change)),
            Message::Ingress(change) => ("ingress", self.ingresses.events(change)),
            Message::Node(_) | Message::Namespace(_) => return,
        };
        for (event, n) in [
            (KubernetesEvent::Add, events.added),
            (KubernetesEvent::Update, events.updated),
            (KubernetesEvent::Delete, events.deleted),
        ] {
            if n > 0 {
                self.metrics.kubernetes_event(kind, event, n);
            }
        }
    }

    /// Applies a change and returns the groups to send.
    fn apply(&mut self, message: Message) -> Vec<TargetGroup> {
        self.count_events(&message);
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
                    objects::name(&node.metadata),
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
            // As Prometheus: an endpoint's node is its `nodeName`, or the node its target
            // reference names (the endpoints role tries the former first, the
            // endpointslice role the latter). Targets only inferred from a pod's other
            // ports get none.
            let node_ref = |kind: &str| {
                let prefix = format!("__meta_kubernetes_{kind}_address_target_");
                (target.get(&format!("{prefix}kind")) == Some("Node"))
                    .then(|| target.get(&format!("{prefix}name")))
                    .flatten()
            };
            let node = if self.role == Some(KubernetesRole::EndpointSlice) {
                node_ref("endpointslice")
                    .or_else(|| target.get("__meta_kubernetes_endpointslice_endpoint_node_name"))
            } else {
                target
                    .get("__meta_kubernetes_endpoint_node_name")
                    .or_else(|| node_ref("endpoint"))
            };
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
                        objects::items(&endpoints.subsets).iter().any(|subset| {
                            objects::items(&subset.addresses)
                                .iter()
                                .chain(objects::items(&subset.not_ready_addresses))
                                .filter_map(|a| a.target_ref.as_ref())
                                .any(|r| refers_to_any(r, &pods))
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
                        let service =
                            objects::labels(&slice.metadata).get(roles::SERVICE_NAME_LABEL);
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
                            .any(|r| refers_to_any(r, &pods))
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

/// Whether a target reference names one of `pods`.
fn refers_to_any(reference: &objects::ObjectReference, pods: &[Key]) -> bool {
    objects::text(&reference.kind) == "Pod"
        && pods.iter().any(|(ns, name)| {
            ns == objects::text(&reference.namespace) && name == objects::text(&reference.name)
        })
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
