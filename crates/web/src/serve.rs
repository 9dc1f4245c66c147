//! The HTTP(S) server: the accept loop that serves the router over plain TCP or TLS
//! (tokio-rustls, hyper-util), with the web configuration's authentication in front of every
//! request and the connection hygiene a server on an open network needs:
//!
//! - at most `max_connections` connections at once (further ones wait in the listen backlog,
//!   as with Go's `LimitListener` behind Prometheus' `--web.max-connections`);
//! - the TLS handshake and each request head must arrive within `header_read_timeout`
//!   (slowloris), and a connection on which no byte moves for `idle_timeout` is closed
//!   (a silent client, one that stops sending its body or stops reading the answer);
//! - request heads are bounded by `max_header_bytes` (431 beyond), bodies by
//!   `max_body_bytes` (413 beyond; the routes have tighter limits of their own).
//!
//! hyper starts the request-head timer as soon as it waits for a head, so an idle HTTP/1.1
//! keep-alive connection is closed after `header_read_timeout` (30 s) rather than after
//! `idle_timeout`; a client scraping less often than that reconnects.
//!
//! Authentication applies to the whole service, before routing: no route, present or future,
//! and no unknown path, is reachable without it. Client certificates are checked in the TLS
//! handshake (a refused client gets no HTTP answer at all), basic auth per request (401 with
//! `WWW-Authenticate: Basic`).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use model::exposition::{MetricType, TextEncoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::auth::BasicAuthenticator;
use crate::self_metrics::{MetricsSource, write_single};
use crate::web_config::{Snapshot, WebConfigWatcher};

/// Limits and the web configuration file of the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `--web.config.file`: TLS and authentication; `None` serves plain HTTP to everyone.
    pub web_config_file: Option<PathBuf>,
    /// `--web.max-connections`.
    pub max_connections: usize,
    /// Bound on the TLS handshake, and on each request head once its first byte arrived.
    pub header_read_timeout: Duration,
    /// `--web.read-timeout`: a connection on which nothing is read or written for this long
    /// is closed. Must exceed the longest request handling (queries: `--query.timeout`).
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Largest request body any route may read.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            web_config_file: None,
            max_connections: 512,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5 * 60),
            max_header_bytes: 64 << 10,
            max_body_bytes: 64 << 20,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Counters of the server, for `/metrics`.
#[derive(Default)]
struct Stats {
    open: AtomicI64,
    accepted: AtomicU64,
    tls_handshake_failures: AtomicU64,
    client_san_refusals: AtomicU64,
}

struct Shared {
    options: ServeOptions,
    config: WebConfigWatcher,
    auth: BasicAuthenticator,
    stats: Stats,
}

/// The server: create it (which loads the web configuration), hand its metrics to
/// `/metrics`, then [`HttpServer::serve`].
#[derive(Clone)]
pub struct HttpServer {
    shared: Arc<Shared>,
}

impl HttpServer {
    /// Loads the web configuration file, if any. Errors name the file, line and field, or
    /// the certificate file that cannot be used.
    pub fn new(options: ServeOptions) -> Result<HttpServer, String> {
        let config = WebConfigWatcher::new(options.web_config_file.as_deref())?;
        Ok(HttpServer {
            shared: Arc::new(Shared {
                options,
                config,
                auth: BasicAuthenticator::default(),
                stats: Stats::default(),
            }),
        })
    }

    /// Whether new connections are served over TLS (per the current web configuration).
    pub fn is_tls(&self) -> bool {
        self.shared.config.current(false).tls.is_some()
    }

    /// The server's counters, to add to `/metrics`.
    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        Arc::new(self.clone())
    }

    /// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests
    /// finish (at most `shutdown_grace`).
    pub async fn serve(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.shared.options.max_connections.max(1),
        ));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(err = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let shared = self.shared.clone();
            let app = app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
                shared.stats.open.fetch_add(1, Ordering::Relaxed);
                connection(&shared, tcp, peer, app, watcher).await;
                shared.stats.open.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(self.shared.options.shutdown_grace) => {
                tracing::warn!("requests still running at the end of the shutdown grace period");
            }
        }
        Ok(())
    }
}

impl MetricsSource for HttpServer {
    fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let s = &self.shared.stats;
        let counter = |e: &mut TextEncoder<'_>, name: &str, help: &str, v: u64| {
            write_single(e, name, help, MetricType::Counter, v as f64);
        };
        write_single(
            e,
            "meridian_http_connections_open",
            "HTTP connections currently open.",
            MetricType::Gauge,
            s.open.load(Ordering::Relaxed) as f64,
        );
        write_single(
            e,
            "meridian_http_connections_limit",
            "The most HTTP connections served at once (--web.max-connections).",
            MetricType::Gauge,
            self.shared.options.max_connections as f64,
        );
        counter(
            e,
            "meridian_http_connections_total",
            "HTTP connections accepted.",
            s.accepted.load(Ordering::Relaxed),
        );
        counter(
            e,
            "meridian_http_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out (including refused client certificates).",
            s.tls_handshake_failures.load(Ordering::Relaxed),
        );
        counter(
            e,
            "meridian_http_client_san_refusals_total",
            "TLS connections closed because the client certificate has none of client_allowed_sans.",
            s.client_san_refusals.load(Ordering::Relaxed),
        );
        counter(
            e,
            "meridian_http_basic_auth_failures_total",
            "Requests refused for missing or wrong basic auth credentials.",
            self.shared.auth.failures(),
        );
        counter(
            e,
            "meridian_http_basic_auth_cache_hits_total",
            "Requests authenticated from the cache of verified credentials.",
            self.shared.auth.cache_hits(),
        );
        counter(
            e,
            "meridian_http_basic_auth_bcrypt_checks_total",
            "bcrypt password checks run.",
            self.shared.auth.bcrypt_checks(),
        );
        counter(
            e,
            "meridian_web_config_reload_failures_total",
            "Changes of the web configuration or its certificates that failed to load.",
            self.shared.config.reload_failures(),
        );
    }
}

/// One connection: TLS handshake if configured, then HTTP/1.1 or HTTP/2.
async fn connection(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let options = &shared.options;
    let snapshot = shared.config.current(true);
    let io = IdleTimeout::new(tcp, options.idle_timeout);
    match snapshot.tls.clone() {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let stream = match tokio::time::timeout(
                options.header_read_timeout,
                acceptor.accept(io),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    shared
                        .stats
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, err = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    shared
                        .stats
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let session = stream.get_ref().1;
            if !snapshot.peer_allowed(session.peer_certificates()) {
                shared
                    .stats
                    .client_san_refusals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "client certificate has none of client_allowed_sans");
                return;
            }
            let http2 = snapshot.config.http_server_config.http2;
            http(shared, stream, app, watcher, http2).await;
        }
        // HTTP/2 needs TLS (as in Prometheus, no cleartext HTTP/2).
        None => http(shared, io, app, watcher, false).await,
    }
}

async fn http<I>(
    shared: &Arc<Shared>,
    io: I,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    http2: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = &shared.options;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(250);
    if !http2 {
        builder = builder.http1_only();
    }
    let shared = shared.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&shared, app, request).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(err = %e, "HTTP connection ended with an error");
    }
}

/// One request: authentication, then the router, then the configured response headers.
async fn handle(shared: &Shared, app: Router, request: Request<Incoming>) -> Response<Body> {
    let snapshot = shared.config.current(false);
    let users = &snapshot.config.basic_auth_users;
    let allowed = shared
        .auth
        .check(users, request.headers().get(header::AUTHORIZATION))
        .await;
    let mut response = if allowed {
        let limit = shared.options.max_body_bytes;
        let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        match app.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    } else {
        let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        response
    };
    add_headers(&snapshot, &mut response);
    response
}

fn add_headers(snapshot: &Snapshot, response: &mut Response<Body>) {
    for (name, value) in &snapshot.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
}

/// A stream that fails with `TimedOut` when a read or a write stays pending for `timeout`.
struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    read: Option<Pin<Box<Sleep>>>,
    write: Option<Pin<Box<Sleep>>>,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            read: None,
            write: None,
        }
    }
}

/// Polls `deadline` (arming it on first use): the error to return when it has passed.
fn expired(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Option<io::Error> {
    let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Some(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle for too long",
        )),
        Poll::Pending => None,
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read = None;
                Poll::Ready(result)
            }
            Poll::Pending => match expired(&mut this.read, this.timeout, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.write = None;
                Poll::Ready(result)
            }
            Poll::Pending => match expired(&mut this.write, this.timeout, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                this.write = None;
                Poll::Ready(result)
            }
            Poll::Pending => match expired(&mut this.write, this.timeout, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.write = None;
                Poll::Ready(result)
            }
            Poll::Pending => match expired(&mut this.write, this.timeout, cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
