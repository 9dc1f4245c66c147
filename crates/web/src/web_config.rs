//! The running web configuration (`--web.config.file`): turns a [`config::WebConfig`] into what
//! the serve loop needs (a rustls server config, the basic-auth users, response headers), and
//! keeps it current: at most once a second, and on each new connection, the file and every
//! certificate, key and CA file it names are checked (modification time and size), and a
//! changed set is loaded again. A change that fails to load is logged and counted, and the
//! previous configuration stays in force, so a half-written certificate never takes the
//! server down; the start-up load must succeed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use config::{ClientAuthType, Curve, TlsServerConfig, WebConfig};
use httpclient::tls::{Stamp, parse_certs, parse_key, stamp};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// How often, at most, files are checked for changes.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One loaded configuration, shared by the connections and requests that started under it.
pub struct Snapshot {
    pub config: WebConfig,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// DNS names / IP addresses one of which a client certificate must carry (empty: any).
    pub allowed_sans: Vec<ServerName<'static>>,
}

impl Snapshot {
    /// Builds what the server needs from `config`, reading the files it names.
    pub fn build(config: WebConfig) -> Result<Snapshot, String> {
        let tls = match &config.tls_server_config {
            Some(tls) => Some(Arc::new(server_config(
                tls,
                config.http_server_config.http2,
            )?)),
            None => None,
        };
        let headers = config
            .http_server_config
            .headers
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("http_server_config.headers: {name}: {e}"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|e| format!("http_server_config.headers.{name}: {e}"))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let allowed_sans = match &config.tls_server_config {
            Some(tls) => tls
                .client_allowed_sans
                .iter()
                .map(|san| {
                    ServerName::try_from(san.clone())
                        .map_err(|e| format!("tls_server_config.client_allowed_sans: {san:?}: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()?,
            None => Vec::new(),
        };
        Ok(Snapshot {
            config,
            tls,
            headers,
            allowed_sans,
        })
    }

    /// A snapshot for running without a web configuration file.
    pub fn plain() -> Snapshot {
        Snapshot {
            config: WebConfig::default(),
            tls: None,
            headers: Vec::new(),
            allowed_sans: Vec::new(),
        }
    }

    /// Whether a verified peer certificate carries one of `client_allowed_sans`.
    pub fn peer_allowed(&self, peer: Option<&[CertificateDer<'static>]>) -> bool {
        if self.allowed_sans.is_empty() {
            return true;
        }
        let Some(leaf) = peer.and_then(|chain| chain.first()) else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
            return false;
        };
        self.allowed_sans
            .iter()
            .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
    }
}

/// The web configuration file and its current snapshot.
pub struct WebConfigWatcher {
    path: Option<PathBuf>,
    state: Mutex<Watched>,
    reload_failures: AtomicU64,
}

struct Watched {
    checked_at: Instant,
    /// The stamps of the file and of the files it names, as last loaded.
    stamps: Vec<(PathBuf, Option<Stamp>)>,
    snapshot: Arc<Snapshot>,
}

fn stamps_of(path: &Path, config: Option<&WebConfig>) -> Vec<(PathBuf, Option<Stamp>)> {
    let mut out = vec![(path.to_path_buf(), stamp(path))];
    if let Some(config) = config {
        for file in config.referenced_files() {
            out.push((file.to_path_buf(), stamp(file)));
        }
    }
    out
}

impl WebConfigWatcher {
    /// Loads the file at `path` (none: plain HTTP without authentication). Errors name the
    /// file, and for the YAML the line and field.
    pub fn new(path: Option<&Path>) -> Result<WebConfigWatcher, String> {
        let (stamps, snapshot) = match path {
            Some(path) => {
                let before = stamp(path);
                let config = WebConfig::load(path).map_err(|e| e.to_string())?;
                let mut stamps = stamps_of(path, Some(&config));
                stamps[0].1 = before;
                let snapshot =
                    Snapshot::build(config).map_err(|e| format!("{}: {e}", path.display()))?;
                (stamps, snapshot)
            }
            None => (Vec::new(), Snapshot::plain()),
        };
        Ok(WebConfigWatcher {
            path: path.map(Path::to_path_buf),
            state: Mutex::new(Watched {
                checked_at: Instant::now(),
                stamps,
                snapshot: Arc::new(snapshot),
            }),
            reload_failures: AtomicU64::new(0),
        })
    }

    /// The current snapshot, after loading the files again if they changed (checked at most
    /// once per [`CHECK_INTERVAL`] unless `force`).
    pub fn current(&self, force: bool) -> Arc<Snapshot> {
        let Some(path) = &self.path else {
            return self.lock().snapshot.clone();
        };
        let mut state = self.lock();
        if !force && state.checked_at.elapsed() < CHECK_INTERVAL {
            return state.snapshot.clone();
        }
        state.checked_at = Instant::now();
        let now: Vec<_> = state
            .stamps
            .iter()
            .map(|(file, _)| (file.clone(), stamp(file)))
            .collect();
        if now == state.stamps {
            return state.snapshot.clone();
        }
        let loaded = WebConfig::load(path)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                let stamps = stamps_of(path, Some(&config));
                Snapshot::build(config)
                    .map(|s| (stamps, s))
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
        match loaded {
            Ok((stamps, snapshot)) => {
                tracing::info!(file = %path.display(), "Loaded the changed web configuration");
                state.stamps = stamps;
                state.snapshot = Arc::new(snapshot);
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(err = %e, "Error loading the changed web configuration; keeping the previous one");
                // Not tried again until something changes once more.
                state.stamps = now;
            }
        }
        state.snapshot.clone()
    }

    /// Failed reloads of a changed configuration or certificate.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The provider with the configured cipher suites and curves, in the configured order.
fn provider_for(tls: &TlsServerConfig) -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !tls.cipher_suites.is_empty() {
        // Go's list only governs TLS 1.2; TLS 1.3 suites stay as they are.
        let mut suites: Vec<_> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for suite in &tls.cipher_suites {
            let s = match suite {
                config::CipherSuite::EcdheEcdsaAes128GcmSha256 => {
                    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                }
                config::CipherSuite::EcdheEcdsaAes256GcmSha384 => {
                    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                }
                config::CipherSuite::EcdheEcdsaChacha20Poly1305 => {
                    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                }
                config::CipherSuite::EcdheRsaAes128GcmSha256 => {
                    cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                }
                config::CipherSuite::EcdheRsaAes256GcmSha384 => {
                    cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                }
                config::CipherSuite::EcdheRsaChacha20Poly1305 => {
                    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
                }
            };
            if !suites.contains(&s) {
                suites.push(s);
            }
        }
        provider.cipher_suites = suites;
    }
    if !tls.curve_preferences.is_empty() {
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for curve in &tls.curve_preferences {
            let g: &'static dyn rustls::crypto::SupportedKxGroup = match curve {
                Curve::X25519 => kx_group::X25519,
                Curve::P256 => kx_group::SECP256R1,
                Curve::P384 => kx_group::SECP384R1,
                Curve::X25519Mlkem768 => kx_group::X25519MLKEM768,
            };
            if !groups.iter().any(|x| x.name() == g.name()) {
                groups.push(g);
            }
        }
        provider.kx_groups = groups;
    }
    provider
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("unable to read {what} {}: {e}", path.display()))
}

/// The rustls server configuration of a `tls_server_config` section.
fn server_config(tls: &TlsServerConfig, http2: bool) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider_for(tls));
    let cert_pem = match (&tls.cert, &tls.cert_file) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(path)) => read(path, "cert_file")?,
        (None, None) => return Err("tls_server_config: missing cert_file".to_owned()),
    };
    let key_pem = match (&tls.key, &tls.key_file) {
        (Some(secret), _) => secret.expose().as_bytes().to_vec(),
        (None, Some(path)) => read(path, "key_file")?,
        (None, None) => return Err("tls_server_config: missing key_file".to_owned()),
    };
    let certs = parse_certs(&cert_pem, "tls_server_config cert_file")?;
    let key = parse_key(&key_pem, "tls_server_config key_file")?;
    let versions = httpclient::tls::versions(
        Some(tls.min_version),
        Some(tls.max_version),
        "tls_server_config",
    )?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let roots = || -> Result<Arc<rustls::RootCertStore>, String> {
        let pem = match (&tls.client_ca, &tls.client_ca_file) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(path)) => read(path, "client_ca_file")?,
            (None, None) => {
                return Err("tls_server_config: client_ca_file is required".to_owned());
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in parse_certs(&pem, "tls_server_config client_ca_file")? {
            roots
                .add(cert)
                .map_err(|e| format!("tls_server_config client_ca_file: {e}"))?;
        }
        Ok(Arc::new(roots))
    };
    let builder = match tls.client_auth_type {
        ClientAuthType::NoClientCert => builder.with_no_client_auth(),
        ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                provider: provider.clone(),
                mandatory: tls.client_auth_type == ClientAuthType::RequireAnyClientCert,
            })),
        ClientAuthType::VerifyClientCertIfGiven => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls_server_config client_ca_file: {e}"))?,
        ),
        ClientAuthType::RequireAndVerifyClientCert => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone())
                .build()
                .map_err(|e| format!("tls_server_config client_ca_file: {e}"))?,
        ),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: unusable certificate or key: {e}"))?;
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (required for
/// the latter) but not verified against any CA; only the handshake signature is checked.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
