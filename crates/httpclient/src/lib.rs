//! The HTTP client of every outgoing link Meridian makes (scrapes, federation, remote write
//! and read, Alertmanager, Kubernetes SD), built from Prometheus' `http_client` settings
//! ([`config::HttpClientConfig`]).
//!
//! Owns: building the `reqwest` client with our own rustls configuration ([`tls`]: CAs,
//! client certificates re-read when their files change, `server_name`,
//! `insecure_skip_verify`, version bounds), proxy, redirects and HTTP/2; and what each request
//! carries: `basic_auth`, `authorization` (which also holds `bearer_token` and
//! `bearer_token_file`), `oauth2` ([`oauth2`]: client credentials grant, token kept until it
//! is about to expire), `http_headers`, and, for clients built with
//! [`HttpClientBuilder::sigv4`] (remote write, Alertmanager), an AWS SigV4 signature
//! ([`sigv4`], credentials from [`aws`]). Credential files are read at every request, so a
//! rotated token or secret applies to the next request without a reload.
//!
//! Requests are made with [`HttpClient::request`], which returns our [`RequestBuilder`]: the
//! same builder calls as `reqwest`'s, and a `send` that first adds what needs I/O (the OAuth
//! token, the signature over the final headers and body). A failure there (token endpoint
//! down, no credentials) is the request's error, like a connection failure.
//!
//! Secrets never appear in errors or `Debug` output: errors name files, never their content.
//!
//! Not supported: the `oauth2` JWT bearer grant (refused with an error);
//! `proxy_connect_header` is sent with `proxy_url` but not with `proxy_from_environment`.
//! `server_name` changes which name the server's certificate is verified against; the TLS SNI
//! extension still carries the URL's host.

pub mod aws;
pub mod oauth2;
pub mod sigv4;
pub mod tls;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{HttpClientConfig, ProxyConfig, SigV4Config, TlsConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use reqwest;

/// How long the authentication step of a request without a timeout may take (an OAuth token
/// request, an STS call).
const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// `sigv4` sets the Authorization header: no other authentication can go with it.
const SIGV4_EXCLUSIVE: &str =
    "at most one of basic_auth, authorization, oauth2 & sigv4 must be configured";

/// A client for one configured link. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: HttpClientConfig,
    oauth2: Option<oauth2::TokenSource>,
    sigv4: Option<aws::Signer>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `HttpClientConfig`'s own Debug redacts secrets (`Secret`, `Url`); the token source
        // and the signer print no secrets either.
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .field("oauth2", &self.inner.oauth2)
            .field("sigv4", &self.inner.sigv4)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpClient`] with what the `http_client` settings do not hold.
pub struct HttpClientBuilder<'a> {
    config: &'a HttpClientConfig,
    user_agent: &'a str,
    sigv4: Option<(&'a SigV4Config, aws::AwsEnv)>,
}

impl<'a> HttpClientBuilder<'a> {
    /// Signs every request with AWS SigV4 (service `aps`), credentials and region as
    /// [`aws`] finds them in this process's environment. `None` changes nothing.
    pub fn sigv4(self, sigv4: Option<&'a SigV4Config>) -> HttpClientBuilder<'a> {
        match sigv4 {
            Some(cfg) => self.sigv4_with_env(cfg, aws::AwsEnv::from_process()),
            None => self,
        }
    }

    /// As [`HttpClientBuilder::sigv4`], reading the AWS variables from `env`.
    pub fn sigv4_with_env(self, sigv4: &'a SigV4Config, env: aws::AwsEnv) -> HttpClientBuilder<'a> {
        HttpClientBuilder {
            sigv4: Some((sigv4, env)),
            ..self
        }
    }

    /// Builds the client. Errors name the setting or file that cannot be used; CA and client
    /// certificate files (and AWS shared credential files) are read here once, so a broken
    /// one fails the configuration load.
    pub fn build(self) -> Result<HttpClient, String> {
        let cfg = self.config;
        let client = build_client(
            &cfg.tls_config,
            &cfg.proxy,
            if cfg.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            },
            cfg.enable_http2,
            self.user_agent,
        )?;
        let oauth2 = match &cfg.oauth2 {
            Some(o) => {
                // Go's token client: the block's TLS and proxy, HTTP/1.1, redirects followed.
                let token_client = build_client(
                    &o.tls_config,
                    &o.proxy,
                    reqwest::redirect::Policy::limited(10),
                    false,
                    self.user_agent,
                )
                .map_err(|e| format!("oauth2: {e}"))?;
                Some(oauth2::TokenSource::new(o, token_client)?)
            }
            None => None,
        };
        let sigv4 = match self.sigv4 {
            Some((sig, env)) => {
                let other =
                    cfg.basic_auth.is_some() || cfg.authorization.is_some() || cfg.oauth2.is_some();
                if other {
                    return Err(SIGV4_EXCLUSIVE.to_owned());
                }
                Some(aws::Signer::new(sig, &env, self.user_agent)?)
            }
            None => None,
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                config: cfg.clone(),
                oauth2,
                sigv4,
            }),
        })
    }
}

/// A `reqwest` client with our TLS, the proxy settings, a redirect policy and HTTP/2 or not.
fn build_client(
    tls_config: &TlsConfig,
    proxy_config: &ProxyConfig,
    redirect: reqwest::redirect::Policy,
    http2: bool,
    user_agent: &str,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls::client_config(tls_config)?)
        .user_agent(user_agent)
        .redirect(redirect)
        .pool_idle_timeout(Duration::from_secs(90));
    if !http2 {
        builder = builder.http1_only();
    }
    match &proxy_config.proxy_url {
        Some(url) => {
            // The URL may hold a password: the error must not repeat it.
            let mut proxy = reqwest::Proxy::all(url.expose().as_str())
                .map_err(|_| format!("proxy_url {url}: invalid proxy URL"))?
                .no_proxy(reqwest::NoProxy::from_string(&proxy_config.no_proxy));
            if !proxy_config.proxy_connect_header.is_empty() {
                proxy = proxy.headers(proxy_headers(proxy_config)?);
            }
            builder = builder.proxy(proxy);
        }
        // reqwest reads HTTP_PROXY and friends by default; Prometheus only with
        // proxy_from_environment.
        None if !proxy_config.proxy_from_environment => builder = builder.no_proxy(),
        None => {}
    }
    builder
        .build()
        .map_err(|e| format!("error creating HTTP client: {e}"))
}

impl HttpClient {
    /// Builds the client of `cfg`. Errors name the setting or file that cannot be used; CA
    /// and client certificate files are read here once, so a broken one fails the
    /// configuration load.
    pub fn new(cfg: &HttpClientConfig, user_agent: &str) -> Result<HttpClient, String> {
        HttpClient::builder(cfg, user_agent).build()
    }

    /// A builder for a client that needs more than `cfg` (a `sigv4` section).
    pub fn builder<'a>(cfg: &'a HttpClientConfig, user_agent: &'a str) -> HttpClientBuilder<'a> {
        HttpClientBuilder {
            config: cfg,
            user_agent,
            sigv4: None,
        }
    }

    /// A request to `url` carrying the configured authentication and extra headers. Files
    /// (`password_file`, `credentials_file`, `bearer_token_file`, header files) are read now;
    /// the OAuth token and the SigV4 signature are added by [`RequestBuilder::send`].
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<RequestBuilder, String> {
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
        Ok(RequestBuilder {
            client: self.clone(),
            inner: request,
        })
    }

    /// The underlying client, for requests that need no configured authentication.
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }
}

/// A request being built: `reqwest`'s builder calls, and [`RequestBuilder::send`].
pub struct RequestBuilder {
    client: HttpClient,
    inner: reqwest::RequestBuilder,
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // reqwest's Debug hides sensitive header values.
        f.debug_tuple("RequestBuilder").field(&self.inner).finish()
    }
}

impl RequestBuilder {
    /// Adds a header (a name may have several values).
    pub fn header<K, V>(self, key: K, value: V) -> RequestBuilder
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        RequestBuilder {
            inner: self.inner.header(key, value),
            ..self
        }
    }

    /// Adds these headers, replacing values of the same names.
    pub fn headers(self, headers: HeaderMap) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.headers(headers),
            ..self
        }
    }

    /// The request body.
    pub fn body<T: Into<reqwest::Body>>(self, body: T) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.body(body),
            ..self
        }
    }

    /// Bounds the whole request, from its authentication (OAuth token, STS) to the end of
    /// the response body.
    pub fn timeout(self, timeout: Duration) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.timeout(timeout),
            ..self
        }
    }

    /// Authenticates (OAuth token, SigV4 signature) and sends the request.
    pub async fn send(self) -> Result<reqwest::Response, Error> {
        let started = Instant::now();
        let inner = &self.client.inner;
        let mut request = self.inner.build().map_err(Error::Http)?;
        let timeout = request.timeout().copied();
        if inner.oauth2.is_some() || inner.sigv4.is_some() {
            let budget = timeout.unwrap_or(DEFAULT_AUTH_TIMEOUT);
            let authenticate = async {
                if let Some(source) = &inner.oauth2 {
                    let value = source.authorization().await?;
                    request
                        .headers_mut()
                        .insert(reqwest::header::AUTHORIZATION, value);
                }
                // Last: the signature covers the final headers and body.
                if let Some(signer) = &inner.sigv4 {
                    signer.sign(&mut request).await?;
                }
                Ok::<(), String>(())
            };
            match tokio::time::timeout(budget, authenticate).await {
                Ok(result) => result.map_err(Error::Auth)?,
                Err(_) => {
                    return Err(Error::Auth(if inner.oauth2.is_some() {
                        format!("oauth2: cannot fetch token: timed out after {budget:?}")
                    } else {
                        format!("sigv4: timed out getting AWS credentials after {budget:?}")
                    }));
                }
            }
            if let Some(timeout) = timeout {
                // What is left of the request's time.
                *request.timeout_mut() = Some(
                    timeout
                        .saturating_sub(started.elapsed())
                        .max(Duration::from_millis(1)),
                );
            }
        }
        inner.client.execute(request).await.map_err(Error::Http)
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum Error {
    /// Building, sending or receiving it (`reqwest`'s error).
    Http(reqwest::Error),
    /// Authenticating it: the OAuth token endpoint, SigV4 credentials. The text holds no
    /// secret.
    Auth(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Http(e) => std::fmt::Display::fmt(e, f),
            Error::Auth(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // `Http` stands for reqwest's error itself: its causes follow it directly.
        match self {
            Error::Http(e) => std::error::Error::source(e),
            Error::Auth(_) => None,
        }
    }
}

impl Error {
    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Http(e) if e.is_timeout())
    }
}

/// `proxy_connect_header`, sent to the proxy (with `CONNECT` for HTTPS targets).
fn proxy_headers(proxy: &ProxyConfig) -> Result<reqwest::header::HeaderMap, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, values) in &proxy.proxy_connect_header {
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
pub(crate) fn read_secret_file(path: &Path, field: &str) -> Result<String, String> {
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
