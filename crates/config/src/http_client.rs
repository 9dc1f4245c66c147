//! The HTTP client settings Prometheus inlines into scrape configs,
//! Alertmanager configs, remote write/read and Kubernetes SD
//! (`basic_auth`, `authorization`, `oauth2`, `tls_config`, proxy fields,
//! `http_headers`, ...), with Prometheus' rules about which may be combined.
//!
//! `bearer_token` and `bearer_token_file` are deprecated but accepted; like
//! Prometheus we fold them into `authorization` (type `Bearer`), so users of
//! this crate only look at [`HttpClientConfig::authorization`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::DecodeResult;
use crate::values::{Secret, Url, resolve, resolve_opt};
use crate::yaml::{Decode, Fields, Node, join_key};

#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    /// Also holds a `bearer_token` / `bearer_token_file`, as type `Bearer`.
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub tls_config: TlsConfig,
    pub proxy: ProxyConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    /// Extra request headers by name.
    pub http_headers: BTreeMap<String, HttpHeader>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            proxy: ProxyConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            http_headers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: Option<PathBuf>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The scheme (`type` in YAML); `Bearer` unless set.
    pub kind: String,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuth2 {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    /// `client_credentials` (empty) or `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    pub grant_type: String,
    pub client_certificate_key: Option<Secret>,
    pub client_certificate_key_file: Option<PathBuf>,
    pub client_certificate_key_id: String,
    pub signature_algorithm: String,
    pub iss: String,
    pub audience: String,
    pub claims: BTreeMap<String, String>,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub endpoint_params: BTreeMap<String, String>,
    pub tls_config: TlsConfig,
    pub proxy: ProxyConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM text of the CA certificate(s).
    pub ca: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Decode for TlsVersion {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        match text.as_str() {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(node.error(path, format!("unknown TLS version: {text}"))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    pub proxy_url: Option<Url>,
    /// Comma-separated hosts, domains and CIDRs that bypass the proxy.
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

/// The values of one extra request header, from `http_headers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpHeader {
    pub values: Vec<String>,
    pub secrets: Vec<Secret>,
    /// Files whose content is sent as a header value.
    pub files: Vec<PathBuf>,
}

/// Headers Prometheus sets itself, which `http_headers` may not override
/// (in canonical form).
const RESERVED_HTTP_HEADERS: [&str; 18] = [
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// Go's `http.CanonicalHeaderKey`: `content-type` → `Content-Type`.
pub(crate) fn canonical_header_key(name: &str) -> String {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl HttpClientConfig {
    /// The defaults for remote write, which Prometheus runs without HTTP/2.
    pub(crate) fn remote_write_default() -> HttpClientConfig {
        HttpClientConfig {
            enable_http2: false,
            ..HttpClientConfig::default()
        }
    }

    /// Reads the HTTP client fields from the mapping they are inlined into,
    /// and validates them.
    pub(crate) fn decode_inline(
        fields: &mut Fields,
        defaults: HttpClientConfig,
    ) -> DecodeResult<HttpClientConfig> {
        let basic_auth = match fields.node("basic_auth") {
            Some(node) => Some(decode_basic_auth(node, &fields.path_of("basic_auth"))?),
            None => None,
        };
        let authorization = match fields.node("authorization") {
            Some(node) => Some(decode_authorization(
                node,
                &fields.path_of("authorization"),
            )?),
            None => None,
        };
        let oauth2 = match fields.node("oauth2") {
            Some(node) => Some(decode_oauth2(node, &fields.path_of("oauth2"))?),
            None => None,
        };
        let bearer_token = fields
            .get::<Secret>("bearer_token")?
            .filter(|s| !s.is_empty());
        let bearer_token_file = fields
            .get::<PathBuf>("bearer_token_file")?
            .filter(|p| !p.as_os_str().is_empty());
        let tls_config = match fields.node("tls_config") {
            Some(node) => decode_tls_config(node, &fields.path_of("tls_config"))?,
            None => defaults.tls_config.clone(),
        };
        let proxy = decode_proxy_inline(fields)?;
        let follow_redirects = fields.get_or("follow_redirects", defaults.follow_redirects)?;
        let enable_http2 = fields.get_or("enable_http2", defaults.enable_http2)?;
        let http_headers = match fields.node("http_headers") {
            Some(node) => decode_http_headers(node, &fields.path_of("http_headers"))?,
            None => BTreeMap::new(),
        };

        let mut config = HttpClientConfig {
            basic_auth,
            authorization,
            oauth2,
            tls_config,
            proxy,
            follow_redirects,
            enable_http2,
            http_headers,
        };
        config.validate(fields, bearer_token, bearer_token_file)?;
        Ok(config)
    }

    /// Prometheus' `HTTPClientConfig.Validate`, in its order.
    fn validate(
        &mut self,
        fields: &Fields,
        bearer_token: Option<Secret>,
        bearer_token_file: Option<PathBuf>,
    ) -> DecodeResult<()> {
        let has_bearer = bearer_token.is_some() || bearer_token_file.is_some();
        let bearer_key = if bearer_token.is_some() {
            "bearer_token"
        } else {
            "bearer_token_file"
        };
        if bearer_token.is_some() && bearer_token_file.is_some() {
            return Err(fields.error(
                "bearer_token_file",
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && has_bearer {
            return Err(fields.error(
                bearer_key,
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ));
        }
        if self.authorization.is_some() {
            if has_bearer {
                return Err(fields.error(
                    "authorization",
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(fields.error(
                    "authorization",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
        } else if let Some(credentials) = bearer_token {
            self.authorization = Some(Authorization {
                kind: "Bearer".to_owned(),
                credentials: Some(credentials),
                credentials_file: None,
            });
        } else if let Some(file) = bearer_token_file {
            self.authorization = Some(Authorization {
                kind: "Bearer".to_owned(),
                credentials: None,
                credentials_file: Some(file),
            });
        }
        if self.oauth2.is_some() && self.basic_auth.is_some() {
            return Err(fields.error(
                "oauth2",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ));
        }
        validate_proxy(&self.proxy, fields)
    }

    /// Makes the file paths in these settings relative to `dir`.
    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        if let Some(basic_auth) = &mut self.basic_auth {
            resolve_opt(dir, &mut basic_auth.username_file);
            resolve_opt(dir, &mut basic_auth.password_file);
        }
        if let Some(authorization) = &mut self.authorization {
            resolve_opt(dir, &mut authorization.credentials_file);
        }
        if let Some(oauth2) = &mut self.oauth2 {
            resolve_opt(dir, &mut oauth2.client_secret_file);
            resolve_opt(dir, &mut oauth2.client_certificate_key_file);
            oauth2.tls_config.resolve_paths(dir);
        }
        self.tls_config.resolve_paths(dir);
        for header in self.http_headers.values_mut() {
            for file in &mut header.files {
                resolve(dir, file);
            }
        }
    }
}

impl TlsConfig {
    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        resolve_opt(dir, &mut self.ca_file);
        resolve_opt(dir, &mut self.cert_file);
        resolve_opt(dir, &mut self.key_file);
    }
}

/// An empty string counts as unset, as in Prometheus.
fn non_empty_secret(fields: &mut Fields, key: &str) -> DecodeResult<Option<Secret>> {
    Ok(fields.get::<Secret>(key)?.filter(|s| !s.is_empty()))
}

fn non_empty_path(fields: &mut Fields, key: &str) -> DecodeResult<Option<PathBuf>> {
    Ok(fields
        .get::<PathBuf>(key)?
        .filter(|p| !p.as_os_str().is_empty()))
}

fn non_empty_string(fields: &mut Fields, key: &str) -> DecodeResult<Option<String>> {
    Ok(fields.get::<String>(key)?.filter(|s| !s.is_empty()))
}

fn decode_basic_auth(node: &Node, path: &str) -> DecodeResult<BasicAuth> {
    let mut fields = Fields::new(node, path)?;
    let basic_auth = BasicAuth {
        username: fields.get_or_default("username")?,
        username_file: non_empty_path(&mut fields, "username_file")?,
        password: non_empty_secret(&mut fields, "password")?,
        password_file: non_empty_path(&mut fields, "password_file")?,
    };
    fields.finish("basic_auth")?;
    if !basic_auth.username.is_empty() && basic_auth.username_file.is_some() {
        return Err(fields.error(
            "username_file",
            "at most one of basic_auth username, username_file & username_ref must be configured",
        ));
    }
    if basic_auth.password.is_some() && basic_auth.password_file.is_some() {
        return Err(fields.error(
            "password_file",
            "at most one of basic_auth password, password_file & password_ref must be configured",
        ));
    }
    Ok(basic_auth)
}

fn decode_authorization(node: &Node, path: &str) -> DecodeResult<Authorization> {
    let mut fields = Fields::new(node, path)?;
    let kind = fields.get_or_default::<String>("type")?.trim().to_owned();
    let authorization = Authorization {
        kind: if kind.is_empty() {
            "Bearer".to_owned()
        } else {
            kind
        },
        credentials: non_empty_secret(&mut fields, "credentials")?,
        credentials_file: non_empty_path(&mut fields, "credentials_file")?,
    };
    fields.finish("authorization")?;
    if authorization.credentials.is_some() && authorization.credentials_file.is_some() {
        return Err(fields.error(
            "credentials_file",
            "at most one of authorization credentials & credentials_file must be configured",
        ));
    }
    if authorization.kind.eq_ignore_ascii_case("basic") {
        return Err(fields.error(
            "type",
            r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
        ));
    }
    Ok(authorization)
}

fn decode_oauth2(node: &Node, path: &str) -> DecodeResult<OAuth2> {
    let mut fields = Fields::new(node, path)?;
    let oauth2 = OAuth2 {
        client_id: fields.get_or_default("client_id")?,
        client_secret: non_empty_secret(&mut fields, "client_secret")?,
        client_secret_file: non_empty_path(&mut fields, "client_secret_file")?,
        grant_type: fields.get_or_default("grant_type")?,
        client_certificate_key: non_empty_secret(&mut fields, "client_certificate_key")?,
        client_certificate_key_file: non_empty_path(&mut fields, "client_certificate_key_file")?,
        client_certificate_key_id: fields.get_or_default("client_certificate_key_id")?,
        signature_algorithm: fields.get_or_default("signature_algorithm")?,
        iss: fields.get_or_default("iss")?,
        audience: fields.get_or_default("audience")?,
        claims: fields.get_or_default("claims")?,
        scopes: fields.get_or_default("scopes")?,
        token_url: fields.get_or_default("token_url")?,
        endpoint_params: fields.get_or_default("endpoint_params")?,
        tls_config: match fields.node("tls_config") {
            Some(node) => decode_tls_config(node, &fields.path_of("tls_config"))?,
            None => TlsConfig::default(),
        },
        proxy: decode_proxy_inline(&mut fields)?,
    };
    fields.finish("oauth2")?;
    if oauth2.client_id.is_empty() {
        return Err(fields.error("client_id", "oauth2 client_id must be configured"));
    }
    if oauth2.token_url.is_empty() {
        return Err(fields.error("token_url", "oauth2 token_url must be configured"));
    }
    if oauth2.client_secret.is_some() && oauth2.client_secret_file.is_some() {
        return Err(fields.error(
            "client_secret_file",
            "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured",
        ));
    }
    if oauth2.client_certificate_key.is_some() && oauth2.client_certificate_key_file.is_some() {
        return Err(fields.error(
            "client_certificate_key_file",
            "at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured",
        ));
    }
    validate_proxy(&oauth2.proxy, &fields)?;
    Ok(oauth2)
}

pub(crate) fn decode_tls_config(node: &Node, path: &str) -> DecodeResult<TlsConfig> {
    let mut fields = Fields::new(node, path)?;
    let tls = TlsConfig {
        ca: non_empty_string(&mut fields, "ca")?,
        ca_file: non_empty_path(&mut fields, "ca_file")?,
        cert: non_empty_string(&mut fields, "cert")?,
        cert_file: non_empty_path(&mut fields, "cert_file")?,
        key: non_empty_secret(&mut fields, "key")?,
        key_file: non_empty_path(&mut fields, "key_file")?,
        server_name: fields.get_or_default("server_name")?,
        insecure_skip_verify: fields.get_or_default("insecure_skip_verify")?,
        min_version: fields.get("min_version")?,
        max_version: fields.get("max_version")?,
    };
    fields.finish("tls_config")?;
    if tls.ca.is_some() && tls.ca_file.is_some() {
        return Err(fields.error(
            "ca_file",
            "at most one of ca, ca_file & ca_ref must be configured",
        ));
    }
    if tls.cert.is_some() && tls.cert_file.is_some() {
        return Err(fields.error(
            "cert_file",
            "at most one of cert and cert_file must be configured",
        ));
    }
    if tls.key.is_some() && tls.key_file.is_some() {
        return Err(fields.error(
            "key_file",
            "at most one of key and key_file must be configured",
        ));
    }
    let has_cert = tls.cert.is_some() || tls.cert_file.is_some();
    let has_key = tls.key.is_some() || tls.key_file.is_some();
    if has_cert && !has_key {
        return Err(fields.error(
            "key_file",
            "exactly one of key or key_file must be configured when a client certificate is configured",
        ));
    }
    if has_key && !has_cert {
        return Err(fields.error(
            "cert_file",
            "exactly one of cert or cert_file must be configured when a client key is configured",
        ));
    }
    Ok(tls)
}

/// The proxy fields, which are inlined like the rest.
fn decode_proxy_inline(fields: &mut Fields) -> DecodeResult<ProxyConfig> {
    let proxy_url = match fields.node("proxy_url") {
        // An empty string means "no proxy", as in Prometheus.
        Some(node) if node.scalar_text().is_some_and(|t| t.is_empty()) => None,
        Some(node) => Some(Url::decode(node, &fields.path_of("proxy_url"))?),
        None => None,
    };
    Ok(ProxyConfig {
        proxy_url,
        no_proxy: fields.get_or_default("no_proxy")?,
        proxy_from_environment: fields.get_or_default("proxy_from_environment")?,
        proxy_connect_header: fields.get_or_default("proxy_connect_header")?,
    })
}

fn validate_proxy(proxy: &ProxyConfig, fields: &Fields) -> DecodeResult<()> {
    if !proxy.proxy_connect_header.is_empty()
        && !proxy.proxy_from_environment
        && proxy.proxy_url.is_none()
    {
        return Err(fields.error(
            "proxy_connect_header",
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
        ));
    }
    if proxy.proxy_from_environment && proxy.proxy_url.is_some() {
        return Err(fields.error(
            "proxy_url",
            "if proxy_from_environment is configured, proxy_url must not be configured",
        ));
    }
    if proxy.proxy_from_environment && !proxy.no_proxy.is_empty() {
        return Err(fields.error(
            "no_proxy",
            "if proxy_from_environment is configured, no_proxy must not be configured",
        ));
    }
    if proxy.proxy_url.is_none() && !proxy.no_proxy.is_empty() {
        return Err(fields.error(
            "no_proxy",
            "if no_proxy is configured, proxy_url must also be configured",
        ));
    }
    Ok(())
}

fn decode_http_headers(node: &Node, path: &str) -> DecodeResult<BTreeMap<String, HttpHeader>> {
    let mut headers = BTreeMap::new();
    for entry in node.entries(path)? {
        let header_path = join_key(path, &entry.key);
        let canonical = canonical_header_key(&entry.key);
        if RESERVED_HTTP_HEADERS.contains(&canonical.as_str()) {
            return Err(crate::error::FieldError::new(
                entry.key_position,
                &header_path,
                format!("setting header {canonical:?} is not allowed"),
            ));
        }
        let mut fields = Fields::new(&entry.value, &header_path)?;
        let header = HttpHeader {
            values: fields.get_or_default("values")?,
            secrets: fields.get_or_default("secrets")?,
            files: fields.get_or_default("files")?,
        };
        fields.finish("http_headers")?;
        headers.insert(entry.key.clone(), header);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn decode(yaml: &str) -> DecodeResult<HttpClientConfig> {
        let node = parse(yaml)?;
        let mut fields = Fields::new(&node, "job")?;
        let config = HttpClientConfig::decode_inline(&mut fields, HttpClientConfig::default())?;
        fields.finish("test")?;
        Ok(config)
    }

    fn message(yaml: &str) -> String {
        match decode(yaml) {
            Ok(config) => panic!("{yaml:?} should fail, got {config:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn bearer_tokens_become_authorization() {
        let Ok(config) = decode("bearer_token_file: token\n") else {
            panic!("valid");
        };
        assert_eq!(
            config.authorization,
            Some(Authorization {
                kind: "Bearer".to_owned(),
                credentials: None,
                credentials_file: Some(PathBuf::from("token")),
            })
        );
    }

    #[test]
    fn defaults() {
        let Ok(config) = decode("{}") else {
            panic!("valid");
        };
        assert_eq!(config, HttpClientConfig::default());
        assert!(config.follow_redirects && config.enable_http2);
    }

    #[test]
    fn exclusive_settings() {
        assert_eq!(
            message("bearer_token: a\nbearer_token_file: b\n"),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
        assert_eq!(
            message("basic_auth: {username: u}\nbearer_token: a\n"),
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
        );
        assert_eq!(
            message("basic_auth: {username: u}\nauthorization: {credentials: c}\n"),
            "at most one of basic_auth, oauth2 & authorization must be configured"
        );
        assert_eq!(
            message("authorization: {type: Basic}\n"),
            r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
        );
        assert_eq!(
            message("basic_auth: {password: p, password_file: f}\n"),
            "at most one of basic_auth password, password_file & password_ref must be configured"
        );
        assert_eq!(
            message("oauth2: {client_id: x}\n"),
            "oauth2 token_url must be configured"
        );
        assert_eq!(
            message("tls_config: {cert_file: c}\n"),
            "exactly one of key or key_file must be configured when a client certificate is configured"
        );
        assert_eq!(
            message("tls_config: {min_version: TLS99}\n"),
            "unknown TLS version: TLS99"
        );
        assert_eq!(
            message("no_proxy: localhost\n"),
            "if no_proxy is configured, proxy_url must also be configured"
        );
        assert_eq!(
            message("http_headers: {user-agent: {values: [x]}}\n"),
            "setting header \"User-Agent\" is not allowed"
        );
    }

    #[test]
    fn canonical_header_keys() {
        assert_eq!(canonical_header_key("x-scope-orgid"), "X-Scope-Orgid");
        assert_eq!(canonical_header_key("WWW-authenticate"), "Www-Authenticate");
        assert_eq!(canonical_header_key("bad header"), "bad header");
    }
}
