//! The HTTP side of a scrape: the client of a scrape job built from its `HttpClientConfig`
//! (TLS with our own rustls config, proxy, redirects, HTTP/2), and one scrape request as
//! Prometheus sends it (`Accept` from `scrape_protocols`, `Accept-Encoding`, `User-Agent`,
//! `X-Prometheus-Scrape-Timeout-Seconds`, auth and extra headers), with the body read under
//! `body_size_limit` (after gzip decompression) and the format picked from `Content-Type`
//! with Prometheus 3's rules for missing or unknown types.
//!
//! Not supported yet: `oauth2` (a config using it is rejected), the TLS `server_name`
//! override and `proxy_connect_header` (ignored).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use config::{HttpClientConfig, ScrapeConfig, ScrapeProtocol, TlsConfig, TlsVersion};
use model::exposition::Format;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The client of one scrape job and what every request of the job carries.
pub struct HttpScraper {
    client: reqwest::Client,
    http: HttpClientConfig,
    accept: String,
    compression: bool,
    user_agent: String,
    body_size_limit: u64,
    fallback: Option<ScrapeProtocol>,
}

/// Reusable buffers of one scrape loop.
#[derive(Default)]
pub struct Buffers {
    /// The body as received (compressed when gzip).
    raw: Vec<u8>,
    /// The decompressed body (only used for gzip).
    inflated: Vec<u8>,
    /// True when the last body is in `inflated`.
    gzip: bool,
}

impl Buffers {
    /// The last body read.
    pub fn body(&self) -> &[u8] {
        if self.gzip { &self.inflated } else { &self.raw }
    }
}

/// The content type a protocol asks for in `Accept`.
fn protocol_media_type(protocol: ScrapeProtocol) -> &'static str {
    match protocol {
        ScrapeProtocol::PrometheusProto => {
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
        }
        ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
        ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
        ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
    }
}

/// Prometheus' `acceptHeader`: protocols in order with falling `q` weights, then `*/*`. The
/// protobuf format is left out: Meridian cannot parse it yet, so it must not ask for it.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: config::NameEscapingScheme) -> String {
    // Prometheus starts from (number of known protocols + 1).
    let mut weight = 6;
    let mut parts = Vec::new();
    for &protocol in protocols {
        if protocol == ScrapeProtocol::PrometheusProto {
            continue;
        }
        let mut part = protocol_media_type(protocol).to_owned();
        if matches!(
            protocol,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            part.push_str(";escaping=");
            part.push_str(escaping.as_str());
        }
        part.push_str(&format!(";q=0.{weight}"));
        parts.push(part);
        weight -= 1;
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

fn protocol_format(protocol: ScrapeProtocol) -> Option<Format> {
    match protocol {
        ScrapeProtocol::PrometheusProto => None,
        ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
            Some(Format::Text)
        }
        ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
            Some(Format::OpenMetrics)
        }
    }
}

/// Prometheus 3's choice of parser from `Content-Type` (`textparse.New`): a missing,
/// unparsable or unknown type is an error unless `fallback_scrape_protocol` is set.
pub fn format_for(content_type: &str, fallback: Option<ScrapeProtocol>) -> Result<Format, String> {
    let fallback_format = || {
        fallback.map(|p| {
            protocol_format(p).ok_or_else(|| {
                "fallback_scrape_protocol PrometheusProto is not supported by Meridian yet"
                    .to_owned()
            })
        })
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    if content_type.trim().is_empty() {
        return fallback_format().unwrap_or_else(|| {
            Err("non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target".to_owned())
        });
    }
    match media.to_ascii_lowercase().as_str() {
        "application/openmetrics-text" => Ok(Format::OpenMetrics),
        "text/plain" => Ok(Format::Text),
        "application/vnd.google.protobuf" => {
            Err("the protobuf exposition format is not supported by Meridian yet".to_owned())
        }
        _ => fallback_format().unwrap_or_else(|| {
            Err(format!(
                "received unsupported Content-Type {content_type:?} and no fallback_scrape_protocol specified for target"
            ))
        }),
    }
}

impl HttpScraper {
    /// Builds the client of a scrape job. Errors name what in the config cannot be used.
    pub fn new(config: &ScrapeConfig, user_agent: &str) -> Result<HttpScraper, String> {
        let http = &config.http_client;
        if http.oauth2.is_some() {
            return Err("oauth2 is not supported by Meridian yet".to_owned());
        }
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(rustls_config(&http.tls_config)?)
            .redirect(if http.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .pool_idle_timeout(Duration::from_secs(90));
        if !http.enable_http2 {
            builder = builder.http1_only();
        }
        match &http.proxy.proxy_url {
            Some(url) => {
                let proxy = reqwest::Proxy::all(url.expose().as_str())
                    .map_err(|e| format!("proxy_url: {e}"))?
                    .no_proxy(reqwest::NoProxy::from_string(&http.proxy.no_proxy));
                builder = builder.proxy(proxy);
            }
            // reqwest reads HTTP_PROXY and friends by default; Prometheus only with
            // proxy_from_environment.
            None if !http.proxy.proxy_from_environment => builder = builder.no_proxy(),
            None => {}
        }
        let client = builder
            .build()
            .map_err(|e| format!("error creating HTTP client: {e}"))?;
        Ok(HttpScraper {
            client,
            http: http.clone(),
            accept: accept_header(&config.scrape_protocols, config.metric_name_escaping_scheme),
            compression: config.enable_compression,
            user_agent: user_agent.to_owned(),
            body_size_limit: config.body_size_limit,
            fallback: config.fallback_scrape_protocol,
        })
    }

    /// Scrapes `url` into `buffers`; the body's format on success. The whole exchange,
    /// body included, is bounded by `timeout`.
    pub async fn scrape(
        &self,
        url: &str,
        timeout: Duration,
        buffers: &mut Buffers,
    ) -> Result<Format, String> {
        match tokio::time::timeout(timeout, self.fetch(url, timeout, buffers)).await {
            Ok(result) => result,
            Err(_) => Err(format!("Get {url:?}: context deadline exceeded")),
        }
    }

    async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        buffers: &mut Buffers,
    ) -> Result<Format, String> {
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, &self.accept)
            .header(
                reqwest::header::ACCEPT_ENCODING,
                if self.compression { "gzip" } else { "identity" },
            )
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header("X-Prometheus-Scrape-Timeout-Seconds", seconds_text(timeout));
        request = self.with_auth_and_headers(request)?;
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {}", response.status()));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let gzip = header(reqwest::header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let limit = if self.body_size_limit == 0 {
            u64::MAX
        } else {
            self.body_size_limit
        };
        buffers.raw.clear();
        buffers.gzip = gzip;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("Get {url:?}: {}", error_chain(&e)))?
        {
            buffers.raw.extend_from_slice(&chunk);
            if buffers.raw.len() as u64 >= limit {
                return Err("body size limit exceeded".to_owned());
            }
        }
        if gzip {
            buffers.inflated.clear();
            let decoder = flate2::read::MultiGzDecoder::new(buffers.raw.as_slice());
            let read = decoder
                .take(limit)
                .read_to_end(&mut buffers.inflated)
                .map_err(|e| format!("error decompressing the body: {e}"))?;
            if read as u64 >= limit {
                return Err("body size limit exceeded".to_owned());
            }
        }
        format_for(&content_type, self.fallback)
    }

    fn with_auth_and_headers(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, String> {
        let http = &self.http;
        if let Some(basic) = &http.basic_auth {
            let username = match &basic.username_file {
                Some(path) => read_secret_file(path)?,
                None => basic.username.clone(),
            };
            let password = match (&basic.password_file, &basic.password) {
                (Some(path), _) => Some(read_secret_file(path)?),
                (None, Some(secret)) => Some(secret.expose().to_owned()),
                (None, None) => None,
            };
            request = request.basic_auth(username, password);
        }
        if let Some(auth) = &http.authorization {
            let credentials = match (&auth.credentials_file, &auth.credentials) {
                (Some(path), _) => read_secret_file(path)?,
                (None, Some(secret)) => secret.expose().to_owned(),
                (None, None) => String::new(),
            };
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("{} {credentials}", auth.kind),
            );
        }
        for (name, header) in &http.http_headers {
            for value in &header.values {
                request = request.header(name.as_str(), value.as_str());
            }
            for secret in &header.secrets {
                request = request.header(name.as_str(), secret.expose());
            }
            for path in &header.files {
                request = request.header(name.as_str(), read_secret_file(path)?);
            }
        }
        Ok(request)
    }
}

/// Credentials files are read at every request, so rotated secrets apply without a reload.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("unable to read {}: {e}", path.display()))
}

/// Go's `strconv.FormatFloat(seconds, 'f', -1, 64)`.
fn seconds_text(timeout: Duration) -> String {
    let seconds = timeout.as_secs_f64();
    let mut text = format!("{seconds}");
    if text.ends_with(".0") {
        text.truncate(text.len() - 2);
    }
    text
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Our rustls client config from a `tls_config` section (aws-lc-rs provider).
fn rustls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    let mut versions = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(format!(
            "tls_config: TLS versions below TLS12 are not supported (max_version {max})"
        ));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_config: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let ca_pem = match (&tls.ca, &tls.ca_file) {
            (Some(text), _) => Some(text.clone().into_bytes()),
            (None, Some(path)) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("unable to read CA cert {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        };
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| format!("unable to parse CA cert: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("unable to use CA cert: {e}"))?;
                }
            }
            None => {
                // Best effort, as Go's system pool: unreadable system certificates leave the
                // store empty and HTTPS scrapes fail with a clear TLS error.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let cert_pem = match (&tls.cert, &tls.cert_file) {
        (Some(text), _) => Some(text.clone().into_bytes()),
        (None, Some(path)) => Some(
            std::fs::read(path)
                .map_err(|e| format!("unable to read client cert {}: {e}", path.display()))?,
        ),
        (None, None) => None,
    };
    let mut config = match cert_pem {
        None => builder.with_no_client_auth(),
        Some(cert_pem) => {
            let certs = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("unable to parse client cert: {e}"))?;
            let key_pem = match (&tls.key, &tls.key_file) {
                (Some(secret), _) => secret.expose().as_bytes().to_vec(),
                (None, Some(path)) => std::fs::read(path)
                    .map_err(|e| format!("unable to read client key {}: {e}", path.display()))?,
                (None, None) => return Err("tls_config: client cert without key".to_owned()),
            };
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("unable to parse client key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("unable to use client cert: {e}"))?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecure_skip_verify`: any server certificate is accepted (signatures are still checked
/// so the handshake itself is sound).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_matches_prometheus() {
        assert_eq!(
            accept_header(
                &ScrapeProtocol::DEFAULT,
                config::NameEscapingScheme::AllowUtf8
            ),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            format_for("text/plain; version=0.0.4; charset=utf-8", None),
            Ok(Format::Text)
        );
        assert_eq!(
            format_for("application/openmetrics-text; version=1.0.0", None),
            Ok(Format::OpenMetrics)
        );
        assert!(format_for("", None).is_err());
        assert!(format_for("application/json", None).is_err());
        assert_eq!(
            format_for("", Some(ScrapeProtocol::PrometheusText0_0_4)),
            Ok(Format::Text)
        );
        assert_eq!(
            format_for(
                "application/json",
                Some(ScrapeProtocol::OpenMetricsText1_0_0)
            ),
            Ok(Format::OpenMetrics)
        );
    }

    #[test]
    fn timeout_header_is_go_formatted() {
        assert_eq!(seconds_text(Duration::from_secs(10)), "10");
        assert_eq!(seconds_text(Duration::from_millis(1500)), "1.5");
    }
}
