//! Test helpers: synthetic scrape targets served on 127.0.0.1 (random ports, stopped when
//! dropped), a manager with fast timings over `MemStorage`, and storage inspection.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use discovery::{DiscovererOptions, DiscoveryOptions};
use model::matcher::{MatchOp, Matcher};
use scrape::{ScrapeManager, ScrapeOptions};
use storage::memory::MemStorage;
use storage::{Queryable, ValueKind};

/// What a synthetic target answers.
#[derive(Clone)]
pub struct Reply {
    pub body: String,
    pub content_type: String,
    pub status: u16,
    /// Gzip the body when the request accepts it.
    pub gzip: bool,
    pub delay: Duration,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            body: String::new(),
            content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
            status: 200,
            gzip: false,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct TargetState {
    reply: Reply,
    /// Headers of every request received.
    requests: Vec<HeaderMap>,
}

/// An HTTP target on 127.0.0.1 with a port picked by the OS.
pub struct TestTarget {
    pub addr: SocketAddr,
    state: Arc<Mutex<TargetState>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestTarget {
    pub async fn start(body: &str) -> TestTarget {
        let state = Arc::new(Mutex::new(TargetState {
            reply: Reply {
                body: body.to_owned(),
                ..Reply::default()
            },
            requests: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestTarget {
            addr,
            state,
            server,
        }
    }

    pub fn set_body(&self, body: &str) {
        self.lock().reply.body = body.to_owned();
    }

    pub fn set_reply(&self, reply: Reply) {
        self.lock().reply = reply;
    }

    pub fn requests(&self) -> Vec<HeaderMap> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TargetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestTarget {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(State(state): State<Arc<Mutex<TargetState>>>, headers: HeaderMap) -> Response {
    let reply = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(headers.clone());
        state.reply.clone()
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut response = if reply.gzip && accepts_gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(reply.body.as_bytes());
        let compressed = encoder.finish().unwrap_or_default();
        let mut r = (status, compressed).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (status, reply.body).into_response()
    };
    response.headers_mut().remove(header::CONTENT_TYPE);
    if !reply.content_type.is_empty()
        && let Ok(value) = HeaderValue::from_str(&reply.content_type)
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A manager scraping into `storage` with test timings: no offsets, fast discovery.
pub fn manager(storage: &MemStorage) -> ScrapeManager {
    ScrapeManager::new(
        Arc::new(storage.clone()),
        ScrapeOptions {
            skip_offsetting: true,
            discovery: DiscoveryOptions {
                update_interval: Duration::from_millis(10),
                discoverer: DiscovererOptions {
                    file_poll_interval: Duration::from_millis(20),
                    ..DiscovererOptions::default()
                },
            },
            ..ScrapeOptions::default()
        },
    )
}

pub fn load_config(yaml: &str) -> config::Config {
    load_config_in(yaml, std::path::Path::new("/tmp"))
}

pub fn load_config_in(yaml: &str, dir: &std::path::Path) -> config::Config {
    match config::Config::from_str(yaml, dir.join("prometheus.yml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{yaml}"),
    }
}

/// A sample as stored; `stale` for the staleness marker.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub t: i64,
    pub v: f64,
    pub stale: bool,
}

/// Bitwise on the value, so that NaNs (and the staleness marker) compare equal to themselves.
impl PartialEq for Point {
    fn eq(&self, other: &Point) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// Every series in the storage (by label set printed Prometheus-style) with its samples.
pub fn dump(storage: &dyn Queryable) -> BTreeMap<String, Vec<Point>> {
    let querier = storage
        .querier(i64::MIN, i64::MAX)
        .unwrap_or_else(|e| panic!("querier: {e}"));
    let matcher =
        Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap_or_else(|e| panic!("{e:?}"));
    let set = querier
        .select(true, None, &[matcher])
        .unwrap_or_else(|e| panic!("select: {e}"));
    let mut out = BTreeMap::new();
    for series in set {
        let mut series = series.unwrap_or_else(|e| panic!("series: {e}"));
        let mut points = Vec::new();
        while let Some(kind) = series.samples.next() {
            if kind == ValueKind::Float {
                let (t, v) = series.samples.at();
                points.push(Point {
                    t,
                    v,
                    stale: model::sample::is_stale_nan(v),
                });
            }
        }
        out.insert(series.labels.to_string(), points);
    }
    out
}

/// The samples of one series (by its printed label set), empty when absent.
pub fn points(storage: &dyn Queryable, labels: &str) -> Vec<Point> {
    dump(storage).remove(labels).unwrap_or_default()
}

/// Non-stale values of a series.
pub fn values(storage: &dyn Queryable, labels: &str) -> Vec<f64> {
    points(storage, labels)
        .into_iter()
        .filter(|p| !p.stale)
        .map(|p| p.v)
        .collect()
}

/// Polls `check` every 10 ms for up to 10 s; panics with `what` on timeout.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A one-job config scraping `addr` every `interval`, with extra job fields (YAML lines
/// indented by two spaces).
pub fn job_config(job: &str, addr: SocketAddr, interval: &str, extra: &str) -> String {
    format!(
        "scrape_configs:\n- job_name: {job}\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n{extra}  static_configs:\n  - targets: ['{addr}']\n"
    )
}

/// `{__name__="name", instance="addr", job="job"}` with extra labels.
pub fn series(name: &str, addr: SocketAddr, job: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        ("__name__".into(), name.into()),
        ("instance".into(), addr.to_string()),
        ("job".into(), job.into()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let labels = model::labels::Labels::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"));
    labels.to_string()
}

/// Waits (up to 10 s) until the first target's last error starts with `prefix`; returns it.
pub async fn wait_for_error(manager: &ScrapeManager, prefix: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = manager.targets().await;
        let error = report
            .active
            .first()
            .map(|t| t.last_error.clone())
            .unwrap_or_default();
        if !error.is_empty() && error.starts_with(prefix) {
            return error;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for error {prefix:?}; last: {error:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
