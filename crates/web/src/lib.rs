//! Meridian's HTTP surface.
//!
//! The management endpoints Prometheus serves and that orchestrators probe (`/-/healthy`,
//! `/-/ready`, `/-/reload`, `/-/quit`), the server's own metrics at `/metrics`, the HTTP API v1
//! ([`api`]), `/federate`, and the remote-write receiver (`/api/v1/write`).
//!
//! Serving: [`serve::HttpServer`] runs the accept loop (plain HTTP or TLS per the web
//! configuration file, [`web_config`]), with basic authentication ([`auth`]) in front of every
//! route; [`routes::ROUTES`] lists every route for the test that checks it.
//!
//! The lifecycle endpoints do not act themselves: they send a [`LifecycleRequest`] to the
//! binary's control loop (which also serves SIGHUP/SIGTERM) and wait for its answer, so that a
//! reload through HTTP and through a signal take the same path.

pub mod api;
pub mod auth;
mod federate;
mod http_metrics;
pub mod received_metadata;
mod remote_read;
mod remote_write;
pub mod routes;
mod self_metrics;
pub mod serve;
pub mod web_config;

pub use self_metrics::{MetricsSource, SelfMetrics, write_single};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// What the lifecycle endpoints ask of the control loop.
#[derive(Debug)]
pub enum LifecycleRequest {
    /// Reload the configuration; the answer is `Err(reason)` when the new one is invalid.
    Reload(oneshot::Sender<Result<(), String>>),
    /// Shut down gracefully.
    Quit,
}

/// Options of the HTTP surface (from the command line).
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `--web.enable-lifecycle`: allow `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
}

/// State shared by the handlers.
pub struct WebState {
    options: WebOptions,
    ready: AtomicBool,
    lifecycle: mpsc::Sender<LifecycleRequest>,
    metrics: Arc<SelfMetrics>,
    api: Arc<api::ApiState>,
}

impl WebState {
    pub fn new(
        options: WebOptions,
        lifecycle: mpsc::Sender<LifecycleRequest>,
        metrics: Arc<SelfMetrics>,
        api: Arc<api::ApiState>,
    ) -> Arc<Self> {
        Arc::new(WebState {
            options,
            ready: AtomicBool::new(false),
            lifecycle,
            metrics,
            api,
        })
    }

    /// The API's state (to hand it the storage once replayed, or new external labels).
    pub fn api(&self) -> &Arc<api::ApiState> {
        &self.api
    }

    /// Marks the server ready (start-up finished) or not (shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// The router with every endpoint this crate serves.
pub fn router(state: Arc<WebState>) -> Router {
    let api = api::router(state.api.clone()).layer(axum::extract::DefaultBodyLimit::max(
        remote_write::MAX_BODY + 1,
    ));
    let http_metrics = Arc::new(http_metrics::HttpMetrics::default());
    state.metrics.add_source(http_metrics.clone());
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", any(reload))
        .route("/-/quit", any(quit))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            http_metrics::record,
        ))
}

async fn healthy() -> &'static str {
    "Meridian Server is Healthy.\n"
}

async fn ready(State(s): State<Arc<WebState>>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Meridian Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// The rejection of a lifecycle request, if any: Prometheus accepts only POST and PUT, and
/// only with `--web.enable-lifecycle`.
fn lifecycle_rejection(s: &WebState, method: &Method) -> Option<Response> {
    if method != Method::POST && method != Method::PUT {
        let msg = "Only POST or PUT requests allowed\n";
        return Some((StatusCode::METHOD_NOT_ALLOWED, msg).into_response());
    }
    if !s.options.enable_lifecycle {
        let msg = "Lifecycle API is not enabled.\n";
        return Some((StatusCode::FORBIDDEN, msg).into_response());
    }
    None
}

async fn reload(State(s): State<Arc<WebState>>, method: Method) -> Response {
    if let Some(r) = lifecycle_rejection(&s, &method) {
        return r;
    }
    let (tx, rx) = oneshot::channel();
    if s.lifecycle
        .send(LifecycleRequest::Reload(tx))
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn quit(State(s): State<Arc<WebState>>, method: Method) -> Response {
    if let Some(r) = lifecycle_rejection(&s, &method) {
        return r;
    }
    // A full channel means a quit or reload is already queued; either way we are on it.
    let _ = s.lifecycle.try_send(LifecycleRequest::Quit);
    (StatusCode::OK, "Requesting termination... Goodbye!\n").into_response()
}

async fn metrics(State(s): State<Arc<WebState>>) -> Response {
    let body = s.metrics.render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app(lifecycle: bool) -> (Arc<WebState>, Router, mpsc::Receiver<LifecycleRequest>) {
        let (tx, rx) = mpsc::channel(4);
        let state = WebState::new(
            WebOptions {
                enable_lifecycle: lifecycle,
            },
            tx,
            Arc::new(SelfMetrics::new()),
            api::ApiState::new(
                promql::engine::Engine::default(),
                api::ApiOptions::default(),
            ),
        );
        (state.clone(), router(state), rx)
    }

    async fn call(r: &Router, method: &str, uri: &str) -> (StatusCode, String) {
        let resp = r
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }

    #[tokio::test]
    async fn health_and_readiness() {
        let (state, r, _rx) = app(false);
        assert_eq!(call(&r, "GET", "/-/healthy").await.0, StatusCode::OK);
        assert_eq!(
            call(&r, "GET", "/-/ready").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.set_ready(true);
        assert_eq!(call(&r, "GET", "/-/ready").await.0, StatusCode::OK);
        assert_eq!(call(&r, "HEAD", "/-/ready").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn lifecycle_is_off_by_default_and_post_only() {
        let (_s, r, _rx) = app(false);
        assert_eq!(call(&r, "POST", "/-/reload").await.0, StatusCode::FORBIDDEN);
        let (_s, r, _rx) = app(true);
        assert_eq!(
            call(&r, "GET", "/-/reload").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn reload_reports_the_control_loops_answer() {
        let (_s, r, mut rx) = app(true);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                if let LifecycleRequest::Reload(tx) = req {
                    let _ = tx.send(Err("bad config".into()));
                }
            }
        });
        let (status, body) = call(&r, "POST", "/-/reload").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("bad config"));
    }

    #[tokio::test]
    async fn metrics_are_valid_exposition() {
        let (_s, r, _rx) = app(false);
        let (status, body) = call(&r, "GET", "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        let mut p =
            model::exposition::Parser::new(body.as_bytes(), model::exposition::Format::Text)
                .unwrap()
                .strict();
        let mut n = 0;
        while let Some(e) = p.next_entry() {
            e.unwrap();
            n += 1;
        }
        assert!(n > 5, "{body}");
    }
}
