//! The HTTP client of every outgoing link Meridian makes (scrapes, federation, remote write
//! and read), built from Prometheus' `http_client` settings ([`config::HttpClientConfig`]).
//!
//! Owns: building the `reqwest` client with our own rustls configuration ([`tls`]: CAs,
//! client certificates re-read when their files change, `server_name`,
//! `insecure_skip_verify`, version bounds), proxy, redirects and HTTP/2; and what each request
//! carries: `basic_auth`, `authorization` (which also holds `bearer_token` and
//! `bearer_token_file`) and `http_headers`. Credential files are read at every request, so a
//! rotated token applies to the next request without a reload.
//!
//! Secrets never appear in errors or `Debug` output: errors name files, never their content.
//!
//! Not supported: `oauth2` (a config using it is rejected); `proxy_connect_header` is sent
//! with `proxy_url` but not with `proxy_from_environment`.
//! `server_name` changes which name the server's certificate is verified against; the TLS SNI
//! extension still carries the URL's host.

pub mod tls;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use config::HttpClientConfig;

pub use reqwest;

/// A client for one configured link. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: HttpClientConfig,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `HttpClientConfig`'s own Debug redacts secrets (`Secret`, `Url`).
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client. Errors name the setting or file that cannot be used; CA and client
    /// certificate files are read here once, so a broken one fails the configuration load.
    pub fn new(cfg: &HttpClientConfig, user_agent: &str) -> Result<HttpClient, String> {
        if cfg.oauth2.is_some() {
            return Err("oauth2 is not supported by Meridian yet".to_owned());
        }
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls::client_config(&cfg.tls_config)?)
            .user_agent(user_agent)
            .redirect(if cfg.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .pool_idle_timeout(Duration::from_secs(90));
        if !cfg.enable_http2 {
            builder = builder.http1_only();
        }
        match &cfg.proxy.proxy_url {
            Some(url) => {
                // The URL may hold a password: the error must not repeat it.
                let mut proxy = reqwest::Proxy::all(url.expose().as_str())
                    .map_err(|_| format!("proxy_url {url}: invalid proxy URL"))?
                    .no_proxy(reqwest::NoProxy::from_string(&cfg.proxy.no_proxy));
                if !cfg.proxy.proxy_connect_header.is_empty() {
                    proxy = proxy.headers(proxy_headers(cfg)?);
                }
                builder = builder.proxy(proxy);
            }
            // reqwest reads HTTP_PROXY and friends by default; Prometheus only with
            // proxy_from_environment.
            None if !cfg.proxy.proxy_from_environment => builder = builder.no_proxy(),
            None => {}
        }
        let client = builder
            .build()
            .map_err(|e| format!("error creating HTTP client: {e}"))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                config: cfg.clone(),
            }),
        })
    }

    /// A request to `url` carrying the configured authentication and extra headers. Files
    /// (`password_file`, `credentials_file`, `bearer_token_file`, header files) are read now.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        let cfg = &self.inner.config;
        let mut request = self.inner.client.request(method, url);
        if let Some(basic) = &cfg.basic_auth {
            let username = match &basic.username_file {
                Some(path) => read_secret_file(path, "username_file")?,
                None => basic.username.clone(),
            };
            let password = match (&basic.password_file, &basic.password) {
                (Some(path), _) => Some(read_secret_file(path, "password_file")?),
                (None, Some(secret)) => Some(secret.expose().to_owned()),
                (None, None) => None,
            };
            request = request.basic_auth(username, password);
        }
        if let Some(auth) = &cfg.authorization {
            let credentials = match (&auth.credentials_file, &auth.credentials) {
                (Some(path), _) => read_secret_file(path, "credentials_file")?,
                (None, Some(secret)) => secret.expose().to_owned(),
                (None, None) => String::new(),
            };
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("{} {credentials}", auth.kind))
                    .map_err(|_| {
                        "authorization: the credentials are not a valid header value".to_owned()
                    })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        for (name, header) in &cfg.http_headers {
            for value in &header.values {
                request = request.header(name.as_str(), value.as_str());
            }
            for secret in &header.secrets {
                request = request.header(name.as_str(), sensitive(secret.expose(), name)?);
            }
            for path in &header.files {
                let text = read_secret_file(path, "http_headers file")?;
                request = request.header(name.as_str(), sensitive(&text, name)?);
            }
        }
        Ok(request)
    }

    /// The underlying client, for requests that need no configured authentication.
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }
}

/// `proxy_connect_header`, sent to the proxy (with `CONNECT` for HTTPS targets).
fn proxy_headers(cfg: &HttpClientConfig) -> Result<reqwest::header::HeaderMap, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, values) in &cfg.proxy.proxy_connect_header {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("proxy_connect_header: invalid header name {name:?}"))?;
        for value in values {
            let value = sensitive(value.expose(), name)
                .map_err(|_| format!("proxy_connect_header {name}: invalid header value"))?;
            headers.append(header.clone(), value);
        }
    }
    Ok(headers)
}

/// A header value marked sensitive (kept out of reqwest's and hyper's debug output).
fn sensitive(text: &str, name: &str) -> Result<reqwest::header::HeaderValue, String> {
    let mut value = reqwest::header::HeaderValue::from_str(text)
        .map_err(|_| format!("http_headers {name}: the value is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Reads a credentials file (trimmed of surrounding whitespace). The error names the file,
/// never its content.
fn read_secret_file(path: &Path, field: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{field}: unable to read {}: {e}", path.display()))
}

/// An error and its causes on one line, as Go prints wrapped errors.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
