//! Target discovery settings shared by scrape configs and Alertmanager
//! configs: `static_configs`, `file_sd_configs` and `kubernetes_sd_configs`,
//! and a clear error for Prometheus' other discovery mechanisms, which
//! Meridian does not implement.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::duration::Duration;
use crate::error::DecodeResult;
use crate::http_client::HttpClientConfig;
use crate::labels::{NameValidationScheme, decode_label_set};
use crate::values::{Url, resolve, resolve_opt};
use crate::yaml::{Decode, Fields, Node, join_index};

/// Targets listed in the config, with labels for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Targets read from JSON or YAML files, re-read on change and every
/// `refresh_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSdConfig {
    /// File paths; the last path element may contain one `*`.
    pub files: Vec<PathBuf>,
    pub refresh_interval: Duration,
}

const DEFAULT_FILE_SD_REFRESH_INTERVAL: Duration = Duration::from_mins(5);

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesSdConfig {
    /// `None`: Prometheus runs in the cluster and uses its service account.
    pub api_server: Option<Url>,
    pub role: KubernetesRole,
    pub kubeconfig_file: Option<PathBuf>,
    pub namespaces: KubernetesNamespaces,
    pub selectors: Vec<KubernetesSelector>,
    pub attach_metadata: KubernetesAttachMetadata,
    pub http_client: HttpClientConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubernetesRole {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Ingress,
}

impl KubernetesRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KubernetesRole::Pod => "pod",
            KubernetesRole::Service => "service",
            KubernetesRole::Endpoints => "endpoints",
            KubernetesRole::EndpointSlice => "endpointslice",
            KubernetesRole::Node => "node",
            KubernetesRole::Ingress => "ingress",
        }
    }

    fn parse(text: &str) -> Option<KubernetesRole> {
        [
            KubernetesRole::Pod,
            KubernetesRole::Service,
            KubernetesRole::Endpoints,
            KubernetesRole::EndpointSlice,
            KubernetesRole::Node,
            KubernetesRole::Ingress,
        ]
        .into_iter()
        .find(|role| role.as_str() == text)
    }

    /// Which selector roles a discovery role accepts.
    fn allowed_selectors(self, attach_node_metadata: bool) -> Vec<KubernetesRole> {
        use KubernetesRole::*;
        match self {
            Pod if attach_node_metadata => vec![Pod, Node],
            Pod => vec![Pod],
            Service => vec![Service],
            Endpoints => vec![Pod, Service, Endpoints],
            EndpointSlice => vec![Pod, Service, EndpointSlice],
            Node => vec![Node],
            Ingress => vec![Ingress],
        }
    }
}

impl fmt::Display for KubernetesRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Decode for KubernetesRole {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        KubernetesRole::parse(&text)
            .ok_or_else(|| node.error(path, format!("unknown Kubernetes SD role {text:?}")))
    }
}

/// Which namespaces to watch; all of them when both fields are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesNamespaces {
    pub own_namespace: bool,
    pub names: Vec<String>,
}

/// A label and/or field selector for objects of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSelector {
    pub role: KubernetesRole,
    pub label: String,
    pub field: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesAttachMetadata {
    pub node: bool,
    pub namespace: bool,
}

/// The discovery sections of one scrape or Alertmanager config.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Discovery {
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
}

/// Prometheus' discovery mechanisms that Meridian does not have (yet).
const UNSUPPORTED_DISCOVERY: [&str; 28] = [
    "aws_sd_configs",
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// Reads the discovery fields of a scrape or Alertmanager config.
/// `reject_urls_in_targets` is Prometheus' check for `http://` in static
/// targets, which it skips when relabeling could still fix the address.
pub(crate) fn decode_discovery(
    fields: &mut Fields,
    scheme: NameValidationScheme,
    reject_urls_in_targets: bool,
) -> DecodeResult<Discovery> {
    for key in UNSUPPORTED_DISCOVERY {
        if fields.has(key) {
            return Err(fields.error(
                key,
                format!(
                    "{key} is not supported by Meridian (supported: static_configs, file_sd_configs, kubernetes_sd_configs)"
                ),
            ));
        }
    }
    let static_configs = match fields.node("static_configs") {
        None => Vec::new(),
        Some(node) => {
            let path = fields.path_of("static_configs");
            node.items(&path)?
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    decode_static_config(
                        item,
                        &join_index(&path, index),
                        scheme,
                        reject_urls_in_targets,
                    )
                })
                .collect::<DecodeResult<_>>()?
        }
    };
    let file_sd_configs = decode_list(fields, "file_sd_configs", decode_file_sd_config)?;
    let kubernetes_sd_configs =
        decode_list(fields, "kubernetes_sd_configs", decode_kubernetes_sd_config)?;
    Ok(Discovery {
        static_configs,
        file_sd_configs,
        kubernetes_sd_configs,
    })
}

fn decode_list<T>(
    fields: &mut Fields,
    key: &str,
    decode_item: fn(&Node, &str) -> DecodeResult<T>,
) -> DecodeResult<Vec<T>> {
    let Some(node) = fields.node(key) else {
        return Ok(Vec::new());
    };
    let path = fields.path_of(key);
    node.items(&path)?
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item_path = join_index(&path, index);
            if item.is_null() {
                return Err(item.error(&item_path, format!("empty or null section in {key}")));
            }
            decode_item(item, &item_path)
        })
        .collect()
}

fn decode_static_config(
    node: &Node,
    path: &str,
    scheme: NameValidationScheme,
    reject_urls_in_targets: bool,
) -> DecodeResult<StaticConfig> {
    if node.is_null() {
        return Err(node.error(path, "empty or null section in static_configs"));
    }
    let mut fields = Fields::new(node, path)?;
    let mut targets = Vec::new();
    if let Some(targets_node) = fields.node("targets") {
        let targets_path = fields.path_of("targets");
        for (index, target) in targets_node.items(&targets_path)?.iter().enumerate() {
            let target_path = join_index(&targets_path, index);
            let address = String::decode(target, &target_path)?;
            // Prometheus' CheckTargetAddress: a URL here is a common mistake.
            if reject_urls_in_targets && address.contains('/') {
                return Err(
                    target.error(&target_path, format!("{address:?} is not a valid hostname"))
                );
            }
            targets.push(address);
        }
    }
    let labels = match fields.node("labels") {
        Some(labels) => decode_label_set(labels, &fields.path_of("labels"), scheme)?,
        None => BTreeMap::new(),
    };
    fields.finish("static_config")?;
    Ok(StaticConfig { targets, labels })
}

/// Prometheus' pattern for file SD paths: one `*` at most, in the last path
/// element, and a JSON or YAML extension.
fn is_valid_file_sd_path(path: &str) -> bool {
    let Some((_, extension)) = path.rsplit_once('.') else {
        return false;
    };
    let valid_extension = matches!(extension, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML");
    // After the first `*`, anything but a path separator (more stars too).
    let star_ok = path
        .find('*')
        .is_none_or(|star| !path[star..].contains('/'));
    valid_extension && star_ok
}

fn decode_file_sd_config(node: &Node, path: &str) -> DecodeResult<FileSdConfig> {
    let mut fields = Fields::new(node, path)?;
    let files_path = fields.path_of("files");
    let mut files = Vec::new();
    if let Some(files_node) = fields.node("files") {
        for (index, item) in files_node.items(&files_path)?.iter().enumerate() {
            let item_path = join_index(&files_path, index);
            let file = String::decode(item, &item_path)?;
            if !is_valid_file_sd_path(&file) {
                return Err(item.error(
                    &item_path,
                    format!("path name {file:?} is not valid for file discovery"),
                ));
            }
            files.push(PathBuf::from(file));
        }
    }
    let refresh_interval = fields.get_or("refresh_interval", DEFAULT_FILE_SD_REFRESH_INTERVAL)?;
    fields.finish("file_sd_config")?;
    if files.is_empty() {
        return Err(fields.error(
            "files",
            "file service discovery config must contain at least one path name",
        ));
    }
    Ok(FileSdConfig {
        files,
        refresh_interval,
    })
}

fn decode_kubernetes_sd_config(node: &Node, path: &str) -> DecodeResult<KubernetesSdConfig> {
    let mut fields = Fields::new(node, path)?;
    let api_server = match fields.node("api_server") {
        Some(node) if node.scalar_text().is_some_and(|t| t.is_empty()) => None,
        Some(node) => Some(Url::decode(node, &fields.path_of("api_server"))?),
        None => None,
    };
    let role = fields.get::<KubernetesRole>("role")?;
    let kubeconfig_file = fields
        .get::<PathBuf>("kubeconfig_file")?
        .filter(|p| !p.as_os_str().is_empty());
    let namespaces = match fields.node("namespaces") {
        None => KubernetesNamespaces::default(),
        Some(node) => {
            let mut namespace_fields = Fields::new(node, &fields.path_of("namespaces"))?;
            let namespaces = KubernetesNamespaces {
                own_namespace: namespace_fields.get_or_default("own_namespace")?,
                names: namespace_fields.get_or_default("names")?,
            };
            namespace_fields.finish("namespaces")?;
            namespaces
        }
    };
    let attach_metadata = match fields.node("attach_metadata") {
        None => KubernetesAttachMetadata::default(),
        Some(node) => {
            let mut metadata_fields = Fields::new(node, &fields.path_of("attach_metadata"))?;
            let metadata = KubernetesAttachMetadata {
                node: metadata_fields.get_or_default("node")?,
                namespace: metadata_fields.get_or_default("namespace")?,
            };
            metadata_fields.finish("attach_metadata")?;
            metadata
        }
    };
    let selectors_path = fields.path_of("selectors");
    let selector_nodes: Vec<Node> = match fields.node("selectors") {
        Some(node) => node.items(&selectors_path)?.to_vec(),
        None => Vec::new(),
    };
    let http_client = HttpClientConfig::decode_inline(&mut fields, HttpClientConfig::default())?;
    fields.finish("kubernetes_sd_config")?;

    let Some(role) = role else {
        return Err(fields.error(
            "role",
            "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
        ));
    };
    if api_server.is_some() && kubeconfig_file.is_some() {
        return Err(fields.error(
            "kubeconfig_file",
            "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
        ));
    }
    let custom_http_client = http_client != HttpClientConfig::default();
    if kubeconfig_file.is_some() && custom_http_client {
        return Err(fields.error(
            "kubeconfig_file",
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
        ));
    }
    if api_server.is_none() && custom_http_client {
        return Err(fields.error(
            "api_server",
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
        ));
    }
    if api_server.is_some() && namespaces.own_namespace {
        return Err(fields.error(
            "namespaces",
            "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
        ));
    }
    if kubeconfig_file.is_some() && namespaces.own_namespace {
        return Err(fields.error(
            "namespaces",
            "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
        ));
    }

    let allowed = role.allowed_selectors(attach_metadata.node);
    let mut selectors: Vec<KubernetesSelector> = Vec::new();
    for (index, selector_node) in selector_nodes.iter().enumerate() {
        let selector_path = join_index(&selectors_path, index);
        let mut selector_fields = Fields::new(selector_node, &selector_path)?;
        let selector_role = selector_fields.get::<KubernetesRole>("role")?;
        let label = selector_fields.get_or_default::<String>("label")?;
        let field = selector_fields.get_or_default::<String>("field")?;
        selector_fields.finish("selector")?;
        let allowed_names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        let Some(selector_role) = selector_role.filter(|r| allowed.contains(r)) else {
            return Err(selector_fields.error(
                "role",
                format!(
                    "{role} role supports only {} selectors",
                    allowed_names.join(", ")
                ),
            ));
        };
        if selectors.iter().any(|s| s.role == selector_role) {
            return Err(
                selector_fields.error("role", format!("duplicated selector role: {selector_role}"))
            );
        }
        selectors.push(KubernetesSelector {
            role: selector_role,
            label,
            field,
        });
    }

    Ok(KubernetesSdConfig {
        api_server,
        role,
        kubeconfig_file,
        namespaces,
        selectors,
        attach_metadata,
        http_client,
    })
}

/// Makes the file paths of discovery configs relative to `dir`.
pub(crate) fn resolve_discovery_paths(
    file_sd_configs: &mut [FileSdConfig],
    kubernetes_sd_configs: &mut [KubernetesSdConfig],
    dir: &Path,
) {
    for file_sd in file_sd_configs {
        for file in &mut file_sd.files {
            resolve(dir, file);
        }
    }
    for kubernetes in kubernetes_sd_configs {
        resolve_opt(dir, &mut kubernetes.kubeconfig_file);
        kubernetes.http_client.resolve_paths(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sd_path_pattern() {
        assert!(is_valid_file_sd_path("targets.json"));
        assert!(is_valid_file_sd_path("dir/*.yml"));
        assert!(is_valid_file_sd_path("dir/nodes-*.YAML"));
        assert!(!is_valid_file_sd_path("*/nodes.yml"));
        assert!(is_valid_file_sd_path("dir/**.yml"));
        assert!(!is_valid_file_sd_path("dir*/x.yml"));
        assert!(!is_valid_file_sd_path("targets.txt"));
        assert!(!is_valid_file_sd_path("targets"));
    }

    #[test]
    fn selector_roles() {
        assert_eq!(
            KubernetesRole::Endpoints.allowed_selectors(false),
            [
                KubernetesRole::Pod,
                KubernetesRole::Service,
                KubernetesRole::Endpoints
            ]
        );
        assert!(
            KubernetesRole::Pod
                .allowed_selectors(true)
                .contains(&KubernetesRole::Node)
        );
    }
}
