//! `kubeconfig_file`: the API server, credentials and namespace of a kubeconfig's current
//! context, turned into a [`Connection`]. Supported: `server`, `certificate-authority(-data)`,
//! `insecure-skip-tls-verify`, `tls-server-name`, `token`/`tokenFile`,
//! `client-certificate(-data)`/`client-key(-data)`, `username`/`password`. Relative paths are
//! resolved against the kubeconfig's directory. `exec` and `auth-provider` plugins are not
//! supported (an error says so).

use std::path::{Path, PathBuf};

use base64::Engine;
use config::{Authorization, BasicAuth, HttpClientConfig, Secret};
use httpclient::reqwest::Url;
use serde::Deserialize;

use super::Connection;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct KubeConfig {
    current_context: String,
    clusters: Vec<Named<Cluster>>,
    contexts: Vec<Named<Context>>,
    users: Vec<Named<User>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    value: T,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    tls_server_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Context {
    cluster: String,
    user: String,
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_json::Value>,
    auth_provider: Option<serde_json::Value>,
}

fn decode_data(field: &str, data: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| format!("kubeconfig {field}: not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("kubeconfig {field}: not PEM text"))
}

/// Reads the kubeconfig at `path` and returns how to reach its current context's cluster.
pub fn load(path: &Path) -> Result<Connection, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
}

/// Parses kubeconfig text; relative file names are resolved against `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Connection, String> {
    let file: KubeConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let context = file
        .contexts
        .iter()
        .find(|c| c.name == file.current_context)
        .map(|c| &c.value)
        .ok_or_else(|| format!("context {:?} not found", file.current_context))?;
    let cluster = file
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .map(|c| &c.value)
        .ok_or_else(|| format!("cluster {:?} not found", context.cluster))?;
    let user = file
        .users
        .iter()
        .find(|u| u.name == context.user)
        .map(|u| &u.value);
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.join(p)
        }
    };

    let base = Url::parse(&cluster.server)
        .map_err(|e| format!("cluster server {:?}: {e}", cluster.server))?;
    let mut http = HttpClientConfig::default();
    let tls = &mut http.tls_config;
    tls.ca_file = cluster.certificate_authority.as_ref().map(resolve);
    if let Some(data) = &cluster.certificate_authority_data {
        tls.ca = Some(decode_data("certificate-authority-data", data)?);
    }
    tls.insecure_skip_verify = cluster.insecure_skip_tls_verify;
    tls.server_name = cluster.tls_server_name.clone();
    if let Some(user) = user {
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err("exec and auth-provider credentials are not supported".to_owned());
        }
        tls.cert_file = user.client_certificate.as_ref().map(resolve);
        tls.key_file = user.client_key.as_ref().map(resolve);
        if let Some(data) = &user.client_certificate_data {
            tls.cert = Some(decode_data("client-certificate-data", data)?);
        }
        if let Some(data) = &user.client_key_data {
            tls.key = Some(Secret::new(decode_data("client-key-data", data)?));
        }
        if user.token.is_some() || user.token_file.is_some() {
            http.authorization = Some(Authorization {
                kind: "Bearer".to_owned(),
                credentials: user.token.clone().map(Secret::new),
                credentials_file: user.token_file.as_ref().map(resolve),
            });
        } else if let Some(username) = &user.username {
            http.basic_auth = Some(BasicAuth {
                username: username.clone(),
                username_file: None,
                password: user.password.clone().map(Secret::new),
                password_file: None,
            });
        }
    }
    let namespace = if context.namespace.is_empty() {
        "default".to_owned()
    } else {
        context.namespace.clone()
    };
    Ok(Connection {
        base,
        http,
        own_namespace: Some(namespace),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_context_with_token_and_ca_data() {
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: b\n\
            clusters:\n- name: c1\n  cluster:\n    server: https://k8s.example:6443\n    \
            certificate-authority-data: UEVN\n\
            - name: c2\n  cluster:\n    server: https://other:443\n    certificate-authority: ca.pem\n\
            contexts:\n- name: a\n  context:\n    cluster: c1\n    user: u1\n\
            - name: b\n  context:\n    cluster: c2\n    user: u2\n    namespace: team\n\
            users:\n- name: u1\n  user:\n    token: abc\n- name: u2\n  user:\n    tokenFile: tok\n";
        let connection = parse(text, Path::new("/etc/k")).expect("kubeconfig parses");
        assert_eq!(connection.base.as_str(), "https://other/");
        assert_eq!(
            connection.http.tls_config.ca_file,
            Some(PathBuf::from("/etc/k/ca.pem"))
        );
        let auth = connection.http.authorization.expect("token auth");
        assert_eq!(auth.credentials_file, Some(PathBuf::from("/etc/k/tok")));
        assert_eq!(connection.own_namespace.as_deref(), Some("team"));
    }

    #[test]
    fn missing_context_is_an_error() {
        let err = parse("current-context: x\n", Path::new("/")).err();
        assert!(err.is_some_and(|e| e.contains("context \"x\" not found")));
    }

    #[test]
    fn exec_plugins_are_rejected() {
        let text = "current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://h\n\
            contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n\
            users:\n- name: u\n  user:\n    exec:\n      command: aws\n";
        let err = parse(text, Path::new("/")).err();
        assert!(err.is_some_and(|e| e.contains("not supported")));
    }
}
