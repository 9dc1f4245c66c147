//! The web configuration file (`--web.config.file`), in the format of Prometheus' exporter
//! toolkit: `tls_server_config`, `http_server_config` and `basic_auth_users`. Owns its schema,
//! defaults and the checks that need nothing but the file; errors name the file, line and
//! field like those of the main configuration.
//!
//! What rustls cannot honour is refused here with a message naming the field: TLS versions
//! below 1.2, cipher suites other than the ECDHE AEAD suites, and curves other than X25519,
//! P-256, P-384 and X25519MLKEM768. Turning the settings into a running server is the `web`
//! crate's business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, DecodeResult};
use crate::http_client::TlsVersion;
use crate::values::{Secret, resolve_opt};
use crate::yaml::{self, Decode, Fields, Node, join_key};

/// A loaded web configuration. An empty file serves plain HTTP without authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebConfig {
    /// `None` when no certificate is configured: the server speaks plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    pub http_server_config: HttpServerConfig,
    /// User name → bcrypt hash. Empty: no basic authentication.
    pub basic_auth_users: BTreeMap<String, Secret>,
}

/// How the server treats client certificates (Go's `tls.ClientAuthType` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthType {
    #[default]
    NoClientCert,
    /// Asks for a certificate, accepts a connection without one, and does not verify one.
    RequestClientCert,
    /// Requires a certificate but does not verify it against a CA.
    RequireAnyClientCert,
    /// Accepts a connection without a certificate; one that is sent must verify.
    VerifyClientCertIfGiven,
    /// Requires a certificate that verifies against `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthType::NoClientCert => "NoClientCert",
            ClientAuthType::RequestClientCert => "RequestClientCert",
            ClientAuthType::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuthType::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuthType::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }

    /// Whether client certificates are checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

impl Decode for ClientAuthType {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        Ok(match text.as_str() {
            "" | "NoClientCert" => ClientAuthType::NoClientCert,
            "RequestClientCert" => ClientAuthType::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuthType::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
            _ => return Err(node.error(path, format!("invalid ClientAuth: {text}"))),
        })
    }
}

/// A TLS 1.2 cipher suite rustls offers (TLS 1.3 suites are always on, as in Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    EcdheEcdsaAes128GcmSha256,
    EcdheEcdsaAes256GcmSha384,
    EcdheEcdsaChacha20Poly1305,
    EcdheRsaAes128GcmSha256,
    EcdheRsaAes256GcmSha384,
    EcdheRsaChacha20Poly1305,
}

/// Go's names of the suites rustls has; the others Go knows are refused by name.
const CIPHER_SUITES: [(&str, CipherSuite); 8] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheEcdsaAes128GcmSha256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheEcdsaAes256GcmSha384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheEcdsaChacha20Poly1305,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::EcdheEcdsaChacha20Poly1305,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheRsaAes128GcmSha256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheRsaAes256GcmSha384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheRsaChacha20Poly1305,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::EcdheRsaChacha20Poly1305,
    ),
];

impl Decode for CipherSuite {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        CIPHER_SUITES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, suite)| *suite)
            .ok_or_else(|| {
                node.error(
                    path,
                    format!(
                        "cipher suite {text} is not supported by Meridian (rustls offers only ECDHE suites with AES-GCM or ChaCha20-Poly1305 for TLS 1.2: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305)"
                    ),
                )
            })
    }
}

/// An ECDHE group rustls offers, by Go's `tls.CurveID` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    X25519,
    P256,
    P384,
    X25519Mlkem768,
}

impl Decode for Curve {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        Ok(match text.as_str() {
            "X25519" => Curve::X25519,
            "CurveP256" => Curve::P256,
            "CurveP384" => Curve::P384,
            "X25519MLKEM768" => Curve::X25519Mlkem768,
            "CurveP521" => {
                return Err(node.error(
                    path,
                    "curve CurveP521 is not supported by Meridian (rustls offers X25519, CurveP256, CurveP384 and X25519MLKEM768)",
                ));
            }
            _ => return Err(node.error(path, format!("unknown curve: {text}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerConfig {
    /// PEM text of the server certificate chain, when given inline.
    pub cert: Option<String>,
    pub cert_file: Option<PathBuf>,
    /// PEM text of the server key, when given inline.
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub client_auth_type: ClientAuthType,
    /// PEM text of the client CAs, when given inline.
    pub client_ca: Option<String>,
    pub client_ca_file: Option<PathBuf>,
    /// DNS names and IP addresses one of which a client certificate must carry.
    pub client_allowed_sans: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// Empty: rustls' defaults.
    pub cipher_suites: Vec<CipherSuite>,
    pub prefer_server_cipher_suites: bool,
    /// Empty: rustls' defaults.
    pub curve_preferences: Vec<Curve>,
}

/// Response headers `http_server_config.headers` may set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpServerConfig {
    pub http2: bool,
    /// Extra response headers, by their canonical name; blank values are left out.
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

impl WebConfig {
    /// Reads and checks the web configuration file at `path`. Relative file names in it are
    /// taken relative to its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<WebConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::file(path, format!("cannot read the web configuration: {e}"))
        })?;
        WebConfig::from_str(&text, path)
    }

    /// Parses web configuration `text` as if it were the file at `path`.
    pub fn from_str(text: &str, path: impl AsRef<Path>) -> Result<WebConfig, ConfigError> {
        let path = path.as_ref();
        let root = yaml::parse(text).map_err(|e| e.in_file(path))?;
        let mut config = decode_web_config(&root).map_err(|e| e.in_file(path))?;
        if let Some(tls) = &mut config.tls_server_config {
            let dir = path.parent().unwrap_or(Path::new(""));
            resolve_opt(dir, &mut tls.cert_file);
            resolve_opt(dir, &mut tls.key_file);
            resolve_opt(dir, &mut tls.client_ca_file);
        }
        Ok(config)
    }

    /// The files the configuration refers to (certificates, keys, CAs), to watch for changes.
    pub fn referenced_files(&self) -> Vec<&Path> {
        let Some(tls) = &self.tls_server_config else {
            return Vec::new();
        };
        [&tls.cert_file, &tls.key_file, &tls.client_ca_file]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect()
    }
}

fn decode_web_config(root: &Node) -> DecodeResult<WebConfig> {
    let mut fields = Fields::new(root, "")?;
    let tls_server_config = match fields.node("tls_server_config") {
        Some(node) => decode_tls_server(node, &fields.path_of("tls_server_config"))?,
        None => None,
    };
    let http_server_config = match fields.node("http_server_config") {
        Some(node) => decode_http_server(node, &fields.path_of("http_server_config"))?,
        None => HttpServerConfig::default(),
    };
    let basic_auth_users: BTreeMap<String, Secret> = fields.get_or_default("basic_auth_users")?;
    if let Some(entry) = fields.take("basic_auth_users") {
        for user in entry.value.entries("basic_auth_users")? {
            let hash = basic_auth_users
                .get(&user.key)
                .map(Secret::expose)
                .unwrap_or("");
            if !looks_like_bcrypt(hash) {
                return Err(crate::error::FieldError::new(
                    user.key_position,
                    &join_key("basic_auth_users", &user.key),
                    "the password must be a bcrypt hash ($2a$, $2b$ or $2y$ followed by the cost and 53 characters)",
                ));
            }
        }
    }
    if fields.has("rate_limit") {
        return Err(fields.error("rate_limit", "rate_limit is not supported by Meridian yet"));
    }
    fields.finish("web config")?;
    Ok(WebConfig {
        tls_server_config,
        http_server_config,
        basic_auth_users,
    })
}

/// The shape of a bcrypt hash (`$2y$10$` and 53 characters of bcrypt's base64).
fn looks_like_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'y' | b'x')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

fn non_empty<T: Decode + IsEmpty>(fields: &mut Fields, key: &str) -> DecodeResult<Option<T>> {
    Ok(fields.get::<T>(key)?.filter(|v| !v.is_empty_value()))
}

trait IsEmpty {
    fn is_empty_value(&self) -> bool;
}

impl IsEmpty for String {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

impl IsEmpty for Secret {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

impl IsEmpty for PathBuf {
    fn is_empty_value(&self) -> bool {
        self.as_os_str().is_empty()
    }
}

fn decode_tls_server(node: &Node, path: &str) -> DecodeResult<Option<TlsServerConfig>> {
    let mut fields = Fields::new(node, path)?;
    let tls = TlsServerConfig {
        cert: non_empty(&mut fields, "cert")?,
        cert_file: non_empty(&mut fields, "cert_file")?,
        key: non_empty(&mut fields, "key")?,
        key_file: non_empty(&mut fields, "key_file")?,
        client_auth_type: fields.get_or_default("client_auth_type")?,
        client_ca: non_empty(&mut fields, "client_ca")?,
        client_ca_file: non_empty(&mut fields, "client_ca_file")?,
        client_allowed_sans: fields.get_or_default("client_allowed_sans")?,
        min_version: fields.get_or("min_version", TlsVersion::Tls12)?,
        max_version: fields.get_or("max_version", TlsVersion::Tls13)?,
        cipher_suites: fields.get_or_default("cipher_suites")?,
        prefer_server_cipher_suites: fields.get_or("prefer_server_cipher_suites", true)?,
        curve_preferences: fields.get_or_default("curve_preferences")?,
    };
    fields.finish("tls_server_config")?;
    let has_cert = tls.cert.is_some() || tls.cert_file.is_some();
    let has_key = tls.key.is_some() || tls.key_file.is_some();
    if !has_cert && !has_key {
        // As in the exporter toolkit, a TLS section without a certificate serves plain HTTP;
        // settings that only make sense with TLS must not be silently dropped.
        if tls.client_auth_type != ClientAuthType::NoClientCert
            || tls.client_ca.is_some()
            || tls.client_ca_file.is_some()
        {
            return Err(fields.error(
                "cert_file",
                "client certificate settings need a server certificate (cert_file and key_file)",
            ));
        }
        return Ok(None);
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
    if tls.client_ca.is_some() && tls.client_ca_file.is_some() {
        return Err(fields.error(
            "client_ca_file",
            "at most one of client_ca and client_ca_file must be configured",
        ));
    }
    if !has_cert {
        return Err(fields.error("cert_file", "missing cert_file"));
    }
    if !has_key {
        return Err(fields.error("key_file", "missing key_file"));
    }
    for (key, version) in [
        ("min_version", tls.min_version),
        ("max_version", tls.max_version),
    ] {
        if version < TlsVersion::Tls12 {
            return Err(fields.error(
                key,
                format!("{version} is not supported by Meridian (rustls offers TLS12 and TLS13)"),
            ));
        }
    }
    if tls.min_version > tls.max_version {
        return Err(fields.error(
            "min_version",
            format!(
                "min_version {} is greater than max_version {}",
                tls.min_version, tls.max_version
            ),
        ));
    }
    let has_ca = tls.client_ca.is_some() || tls.client_ca_file.is_some();
    if has_ca && !tls.client_auth_type.verifies() {
        return Err(fields.error(
            "client_ca_file",
            "client CAs have been configured without a client auth policy that verifies them (VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
        ));
    }
    if tls.client_auth_type.verifies() && !has_ca {
        return Err(fields.error(
            "client_ca_file",
            format!(
                "client_auth_type {} requires client_ca_file",
                tls.client_auth_type.as_str()
            ),
        ));
    }
    if !tls.client_allowed_sans.is_empty() {
        if !matches!(
            tls.client_auth_type,
            ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
        ) {
            return Err(fields.error(
                "client_allowed_sans",
                "client_allowed_sans requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
            ));
        }
        if let Some(san) = tls
            .client_allowed_sans
            .iter()
            .find(|s| s.contains('@') || s.contains(':') && s.contains("//"))
        {
            return Err(fields.error(
                "client_allowed_sans",
                format!(
                    "{san:?}: only DNS names and IP addresses are supported by Meridian in client_allowed_sans"
                ),
            ));
        }
    }
    Ok(Some(tls))
}

fn decode_http_server(node: &Node, path: &str) -> DecodeResult<HttpServerConfig> {
    let mut fields = Fields::new(node, path)?;
    let http2 = fields.get_or("http2", true)?;
    let mut headers = BTreeMap::new();
    if let Some(node) = fields.node("headers") {
        let headers_path = fields.path_of("headers");
        for entry in node.entries(&headers_path)? {
            let header_path = join_key(&headers_path, &entry.key);
            let canonical = crate::http_client::canonical_header_key(&entry.key);
            let Some(name) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&canonical))
            else {
                return Err(crate::error::FieldError::new(
                    entry.key_position,
                    &header_path,
                    format!(
                        "header {} is not allowed (allowed: {})",
                        entry.key,
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            let value = String::decode(&entry.value, &header_path)?;
            let bad = |message: &str| {
                crate::error::FieldError::new(entry.value.position, &header_path, message)
            };
            if value.is_empty() {
                continue;
            }
            if value.bytes().any(|b| b.is_ascii_control()) {
                return Err(bad("a header value may not contain control characters"));
            }
            match *name {
                "X-Frame-Options"
                    if !value.eq_ignore_ascii_case("deny")
                        && !value.eq_ignore_ascii_case("sameorigin") =>
                {
                    return Err(bad(
                        "invalid value for X-Frame-Options, expected one of deny, sameorigin",
                    ));
                }
                "X-Content-Type-Options" if !value.eq_ignore_ascii_case("nosniff") => {
                    return Err(bad(
                        "invalid value for X-Content-Type-Options, expected nosniff",
                    ));
                }
                _ => {}
            }
            headers.insert((*name).to_owned(), value);
        }
    }
    fields.finish("http_server_config")?;
    Ok(HttpServerConfig { http2, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match WebConfig::from_str(text, "/etc/web.yml") {
            Ok(c) => panic!("{text:?} should fail, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const HASH: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";

    #[test]
    fn empty_file_is_plain_http() {
        let Ok(c) = WebConfig::from_str("", "web.yml") else {
            panic!("valid");
        };
        assert_eq!(c, WebConfig::default());
        assert!(c.http_server_config.http2);
    }

    #[test]
    fn full_file() {
        let text = format!(
            "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /ca.crt\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\nhttp_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\nbasic_auth_users:\n  alice: '{HASH}'\n"
        );
        let c = match WebConfig::from_str(&text, "/etc/prom/web.yml") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let Some(tls) = c.tls_server_config else {
            panic!("tls");
        };
        assert_eq!(tls.cert_file, Some(PathBuf::from("/etc/prom/s.crt")));
        assert_eq!(tls.client_ca_file, Some(PathBuf::from("/ca.crt")));
        assert_eq!(
            tls.client_auth_type,
            ClientAuthType::RequireAndVerifyClientCert
        );
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.curve_preferences, vec![Curve::X25519, Curve::P256]);
        assert!(!c.http_server_config.http2);
        assert_eq!(
            c.http_server_config.headers.get("X-Frame-Options"),
            Some(&"deny".to_owned())
        );
        assert_eq!(c.basic_auth_users.len(), 1);
        // Secrets stay out of Debug output.
        assert!(!format!("{:?}", c.basic_auth_users).contains("$2y$"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        assert_eq!(
            error(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_RSA_WITH_AES_128_CBC_SHA\n"
            ),
            "/etc/web.yml:5:7: tls_server_config.cipher_suites[0]: cipher suite TLS_RSA_WITH_AES_128_CBC_SHA is not supported by Meridian (rustls offers only ECDHE suites with AES-GCM or ChaCha20-Poly1305 for TLS 1.2: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305)"
        );
        let curve = error(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [CurveP521]\n",
        );
        assert!(
            curve.starts_with("/etc/web.yml:4:23: tls_server_config.curve_preferences[0]: curve CurveP521 is not supported"),
            "{curve}"
        );
        assert_eq!(
            error("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n"),
            "/etc/web.yml:4:3: tls_server_config.min_version: TLS10 is not supported by Meridian (rustls offers TLS12 and TLS13)"
        );
        assert_eq!(
            error(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n"
            ),
            "/etc/web.yml:2:3: tls_server_config.client_ca_file: client_auth_type RequireAndVerifyClientCert requires client_ca_file"
        );
        assert_eq!(
            error(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n"
            ),
            "/etc/web.yml:4:21: tls_server_config.client_auth_type: invalid ClientAuth: Sometimes"
        );
        assert_eq!(
            error("tls_server_config:\n  cert_file: a\n"),
            "/etc/web.yml:2:3: tls_server_config.key_file: missing key_file"
        );
        assert_eq!(
            error("basic_auth_users:\n  bob: plaintext\n"),
            "/etc/web.yml:2:3: basic_auth_users.bob: the password must be a bcrypt hash ($2a$, $2b$ or $2y$ followed by the cost and 53 characters)"
        );
        assert_eq!(
            error("http_server_config:\n  headers:\n    Server: x\n"),
            "/etc/web.yml:3:5: http_server_config.headers.Server: header Server is not allowed (allowed: Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, Strict-Transport-Security)"
        );
        assert_eq!(
            error("tls_server_config:\n  cert_fil: a\n"),
            "/etc/web.yml:2:3: tls_server_config.cert_fil: field cert_fil not found in tls_server_config (did you mean cert_file?)"
        );
    }
}
