//! TLS material for both ends: PEM parsing and file stamps (shared with the server in
//! `web`), and the rustls client configuration built from a `tls_config` section: the trusted CAs (from
//! `ca`/`ca_file`, else the system's), the client certificate (`cert`/`cert_file` with
//! `key`/`key_file`), `server_name`, `insecure_skip_verify` and the version bounds.
//!
//! Files are watched by a cheap metadata check at each handshake: a CA file or a client
//! certificate/key that changed on disk is read again, so rotated certificates apply without
//! rebuilding the client. A file that fails to load after a change keeps the previous
//! material in use (and logs why), as a half-written file must not break every connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use config::{TlsConfig, TlsVersion};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// What identifies one version of a file: its modification time, length, inode and change
/// time. Modification times are coarse (a replacement within the same clock tick, with the
/// same length — two certificates of the same key type — would look unchanged); a file
/// replaced by rename has a new inode, and any write moves the change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    changed_ns: i64,
}

/// The stamp of `path`, or `None` when it cannot be read (then nothing is reloaded).
pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
        changed_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
    })
}

/// The aws-lc-rs provider: the only one Meridian links.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The protocol versions between `min` and `max` (TLS 1.2 and 1.3 are all rustls offers).
pub fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
    section: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(format!(
            "{section}: min_version {min} is greater than max_version {max}"
        ));
    }
    let mut out = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if out.is_empty() {
        return Err(format!(
            "{section}: max_version {max}: TLS versions below TLS12 are not supported"
        ));
    }
    Ok(out)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("unable to read {what} {}: {e}", path.display()))
}

/// Parses the PEM certificates of `pem`; at least one is required.
pub fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unable to parse {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("unable to parse {what}: no PEM certificate found"));
    }
    Ok(certs)
}

/// Parses a PEM private key. The error never includes the key material.
pub fn parse_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("unable to parse {what}: {e}"))
}

/// A certificate chain and key, checked to belong together.
pub fn certified_key(
    provider: &CryptoProvider,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, String> {
    let key = CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
    Ok(Arc::new(key))
}

/// A PEM source: inline text from the config, or a file that may change.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Inline(Vec<u8>),
    File(PathBuf),
}

impl Source {
    fn from_config(text: Option<&str>, file: Option<&PathBuf>) -> Option<Source> {
        match (text, file) {
            (Some(text), _) => Some(Source::Inline(text.as_bytes().to_vec())),
            (None, Some(path)) => Some(Source::File(path.clone())),
            (None, None) => None,
        }
    }

    fn read(&self, what: &str) -> Result<Vec<u8>, String> {
        match self {
            Source::Inline(bytes) => Ok(bytes.clone()),
            Source::File(path) => read_file(path, what),
        }
    }

    fn stamp(&self) -> Option<Stamp> {
        match self {
            Source::Inline(_) => None,
            Source::File(path) => stamp(path),
        }
    }
}

/// Our rustls client config from a `tls_config` section.
pub(crate) fn client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let versions = versions(tls.min_version, tls.max_version, "tls_config")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_config: {e}"))?;
    let server_name = if tls.server_name.is_empty() {
        None
    } else {
        Some(
            ServerName::try_from(tls.server_name.clone())
                .map_err(|e| format!("tls_config: server_name {:?}: {e}", tls.server_name))?,
        )
    };
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(provider.clone()))
    } else {
        let ca = Source::from_config(tls.ca.as_deref(), tls.ca_file.as_ref());
        Arc::new(ReloadingVerifier::new(provider.clone(), ca, server_name)?)
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert = Source::from_config(tls.cert.as_deref(), tls.cert_file.as_ref());
    let key = match (&tls.key, &tls.key_file) {
        (Some(secret), _) => Some(Source::Inline(secret.expose().as_bytes().to_vec())),
        (None, Some(path)) => Some(Source::File(path.clone())),
        (None, None) => None,
    };
    let mut config = match (cert, key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => builder.with_client_cert_resolver(Arc::new(
            ReloadingClientCert::new(provider.clone(), cert, key)?,
        )),
        (Some(_), None) => return Err("tls_config: client cert without key".to_owned()),
        (None, Some(_)) => return Err("tls_config: client key without cert".to_owned()),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // No session resumption, as Go's clients (no session cache): a resumed session would carry
    // on with the client certificate of the first handshake after the files were rotated.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The trusted roots of `ca`, or the system's when there is no CA configured.
fn root_store(ca: Option<&Source>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(source) => {
            let pem = source.read("CA cert")?;
            for cert in parse_certs(&pem, "CA cert")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("unable to use CA cert: {e}"))?;
            }
        }
        None => {
            // Best effort, as Go's system pool: unreadable system certificates leave the
            // store empty and HTTPS requests fail with a clear TLS error.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(roots)
}

/// Verifies server certificates against the configured CAs (re-read when the CA file
/// changes), checking the configured `server_name` instead of the URL's host when set.
struct ReloadingVerifier {
    provider: Arc<CryptoProvider>,
    ca: Option<Source>,
    server_name: Option<ServerName<'static>>,
    /// `None` when no CA is configured and the system has none: every certificate is then
    /// refused as of an unknown issuer.
    current: Mutex<(Option<Stamp>, Option<Arc<WebPkiServerVerifier>>)>,
}

impl std::fmt::Debug for ReloadingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingVerifier")
            .field("ca", &self.ca)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ReloadingVerifier {
    fn new(
        provider: Arc<CryptoProvider>,
        ca: Option<Source>,
        server_name: Option<ServerName<'static>>,
    ) -> Result<ReloadingVerifier, String> {
        let stamp = ca.as_ref().and_then(Source::stamp);
        let verifier = Self::build(&provider, ca.as_ref())?;
        Ok(ReloadingVerifier {
            provider,
            ca,
            server_name,
            current: Mutex::new((stamp, verifier)),
        })
    }

    fn build(
        provider: &Arc<CryptoProvider>,
        ca: Option<&Source>,
    ) -> Result<Option<Arc<WebPkiServerVerifier>>, String> {
        let roots = root_store(ca)?;
        if roots.is_empty() {
            return Ok(None);
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map(Some)
            .map_err(|e| format!("tls_config: {e}"))
    }

    /// The verifier for the CA file as it is now.
    fn verifier(&self) -> Option<Arc<WebPkiServerVerifier>> {
        let mut current = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(Source::File(path)) = &self.ca {
            let now = stamp(path);
            if now.is_some() && now != current.0 {
                match Self::build(&self.provider, self.ca.as_ref()) {
                    Ok(verifier) => *current = (now, verifier),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), err = %e, "keeping the previous CA certificates");
                        current.0 = now;
                    }
                }
            }
        }
        current.1.clone()
    }
}

impl ServerCertVerifier for ReloadingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.server_name.as_ref().unwrap_or(server_name);
        match self.verifier() {
            Some(verifier) => {
                verifier.verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

/// The stamps of a certificate file and its key file.
type PairStamp = (Option<Stamp>, Option<Stamp>);

/// The client certificate, re-read when its certificate or key file changes.
struct ReloadingClientCert {
    provider: Arc<CryptoProvider>,
    cert: Source,
    key: Source,
    current: Mutex<(PairStamp, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for ReloadingClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key source may be inline key material: never printed.
        f.debug_struct("ReloadingClientCert")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ReloadingClientCert {
    fn new(
        provider: Arc<CryptoProvider>,
        cert: Source,
        key: Source,
    ) -> Result<ReloadingClientCert, String> {
        let stamps = (cert.stamp(), key.stamp());
        let loaded = Self::load(&provider, &cert, &key)?;
        Ok(ReloadingClientCert {
            provider,
            cert,
            key,
            current: Mutex::new((stamps, loaded)),
        })
    }

    fn load(
        provider: &CryptoProvider,
        cert: &Source,
        key: &Source,
    ) -> Result<Arc<CertifiedKey>, String> {
        let certs = parse_certs(&cert.read("client cert")?, "client cert")?;
        let key = parse_key(&key.read("client key")?, "client key")?;
        certified_key(provider, certs, key)
    }
}

impl rustls::client::ResolvesClientCert for ReloadingClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut current = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = (self.cert.stamp(), self.key.stamp());
        if now != current.0 {
            match Self::load(&self.provider, &self.cert, &self.key) {
                Ok(key) => *current = (now, key),
                Err(e) => {
                    // Often a rotation caught between writing the certificate and the key:
                    // the next handshake tries again.
                    tracing::warn!(err = %e, "keeping the previous client certificate");
                }
            }
        }
        Some(current.1.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `insecure_skip_verify`: any server certificate is accepted (signatures are still checked
/// so the handshake itself is sound).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
