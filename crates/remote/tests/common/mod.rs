//! Test helpers: a TSDB producing a real WAL in a temporary directory, a scriptable
//! remote-write receiver (checks headers and per-series order like Prometheus, can answer
//! 503/429/400), the real Prometheus and VictoriaMetrics as receivers (started on 127.0.0.1
//! ports picked here, stopped by PID), and queries counting samples per series.

#![allow(dead_code, clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use model::labels::Labels;
use remote::metrics::{DropReason, QueueMetrics};
use remote::{RemoteStorage, RemoteWriteOptions};
use storage::Appendable;

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A child process stopped (SIGKILL by PID, then reaped) when dropped.
pub struct Proc(pub Child, pub &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM by PID and wait (graceful stop).
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Minimal HTTP/1.1 GET (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Some((status, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 4 + size).min(b.len())..];
    }
}

fn wait_ready(addr: SocketAddr, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(addr, path) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready at {addr}");
}

/// The real Prometheus (Debian's 2.42) as a remote-write receiver. Fails the test when the
/// binary is missing.
pub fn start_prometheus(dir: &Path, addr: SocketAddr) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start prometheus (apt-get install prometheus): {e}"));
    let p = Proc(child, "prometheus");
    wait_ready(addr, "/-/ready", "prometheus");
    p
}

/// VictoriaMetrics (Debian package `victoria-metrics`). Fails the test when missing.
pub fn start_victoria_metrics(dir: &Path, addr: SocketAddr) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.join("data").display()))
        .arg(format!("-httpListenAddr={addr}"))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("vm.log")).unwrap(),
        ))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start victoria-metrics (apt-get install -y victoria-metrics): {e}")
        });
    let p = Proc(child, "victoria-metrics");
    wait_ready(addr, "/health", "victoria-metrics");
    p
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `count_over_time(<metric>[range])` at now, per series (labels without `__name__`, as a
/// sorted `k=v,...` string) → count.
pub fn counts_per_series(addr: SocketAddr, metric: &str, range: &str) -> BTreeMap<String, u64> {
    let q = urlencode(&format!("count_over_time({metric}[{range}])"));
    let t = now_ms() as f64 / 1000.0 + 1.0;
    let (status, body) = http_get(addr, &format!("/api/v1/query?query={q}&time={t}"))
        .unwrap_or_else(|| panic!("query to {addr} failed"));
    assert_eq!(status, 200, "query failed: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let mut labels: Vec<String> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        labels.sort();
        let n: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        out.insert(labels.join(","), n as u64);
    }
    out
}

/// A TSDB in a directory, written like a scraper: one commit per "scrape" of all series.
pub struct Tsdb {
    pub dir: PathBuf,
    pub db: Option<tsdb::Db>,
}

impl Tsdb {
    pub fn open(dir: &Path, segment_size: usize) -> Tsdb {
        let mut opts = tsdb::DbOptions::default();
        opts.head.wal_segment_size = segment_size;
        let db = tsdb::Db::open(dir, opts).unwrap();
        Tsdb {
            dir: dir.to_path_buf(),
            db: Some(db),
        }
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }

    /// Closes the database (as a restart does).
    pub fn close(&mut self) {
        if let Some(db) = self.db.take() {
            db.close().unwrap();
        }
    }

    /// Appends one sample per series at `t` for `metric{series="0".."n-1"}`, in one commit.
    pub fn scrape(&self, metric: &str, series: usize, t: i64, value: f64) {
        let db = self.db.as_ref().unwrap();
        let mut app = db.appender();
        for i in 0..series {
            let labels = Labels::from_pairs([
                ("__name__", metric.to_string()),
                ("series", i.to_string()),
                ("job", "remote_test".to_string()),
            ])
            .unwrap();
            app.append(None, &labels, t, value).unwrap();
        }
        app.commit().unwrap();
    }
}

/// A remote-write config section from YAML fragments.
pub fn remote_write_config(
    url: &str,
    extra: &str,
) -> (config::Config, Vec<config::RemoteWriteConfig>) {
    let yaml = format!("remote_write:\n  - url: {url}\n{extra}");
    let cfg = config::Config::from_str(&yaml, "prometheus.yml")
        .unwrap_or_else(|e| panic!("config: {e}\n{yaml}"));
    let rw = cfg.remote_write.clone();
    (cfg, rw)
}

/// Remote storage with test periods.
pub fn remote_storage(tsdb_dir: &Path) -> RemoteStorage {
    let mut o = RemoteWriteOptions::new(tsdb_dir, "Meridian/test");
    o.reshard_interval = Duration::from_millis(500);
    o.poll_interval = Duration::from_millis(10);
    o.persist_interval = Duration::from_millis(500);
    o.flush_deadline = Duration::from_millis(500);
    RemoteStorage::new(o)
}

pub async fn start_remote(
    tsdb_dir: &Path,
    configs: &[config::RemoteWriteConfig],
    external: &[(&str, &str)],
) -> RemoteStorage {
    let rs = remote_storage(tsdb_dir);
    let ext: BTreeMap<String, String> = external
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rs.apply_config(configs, &ext, config::NameValidationScheme::Utf8)
        .await
        .unwrap();
    rs
}

pub fn load(m: &AtomicU64) -> u64 {
    m.load(Ordering::Relaxed)
}

/// sent + failed + dropped (all reasons).
pub fn accounted(m: &QueueMetrics) -> u64 {
    load(&m.samples_sent) + load(&m.samples_failed) + m.dropped_all()
}

/// Waits until `cond` holds, failing with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn dropped(m: &QueueMetrics, r: DropReason) -> u64 {
    m.dropped_total(r)
}

// ---------------------------------------------------------------------------------------
// A scriptable receiver.

/// How the receiver answers.
pub const OK: u32 = 0;
pub const UNAVAILABLE: u32 = 1;
pub const TOO_MANY: u32 = 2;
pub const BAD_REQUEST: u32 = 3;

#[derive(Default)]
pub struct Received {
    /// Series (labels string) → samples in arrival order.
    pub series: HashMap<String, Vec<(i64, f64)>>,
    /// Requests answered per status.
    pub statuses: BTreeMap<u16, u64>,
    /// Samples in requests refused with 400.
    pub refused_samples: u64,
    /// Arrival times of requests answered 429.
    pub throttled_at: Vec<Instant>,
    pub header_errors: Vec<String>,
    /// Samples not newer than the series' last stored one (a Prometheus receiver would
    /// refuse the whole request).
    pub out_of_order: u64,
    pub user_agents: Vec<String>,
    pub custom_header: Option<String>,
    pub v2_requests: u64,
}

/// Series key and its samples.
type SeriesSamples = (String, Vec<(i64, f64)>);

/// A 1.0 or 2.0 body as (series key, samples) pairs.
fn decode_any(body: &[u8], v2: bool) -> Option<Vec<SeriesSamples>> {
    use prost::Message;
    if !v2 {
        let req = remote::decode_write_request(body, 64 << 20).ok()?;
        return Some(
            req.timeseries
                .iter()
                .map(|ts| {
                    (
                        labels_key(&ts.labels),
                        ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                    )
                })
                .collect(),
        );
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).ok()?;
    let req = remote::proto_v2::Request::decode(raw.as_slice()).ok()?;
    let mut out = Vec::new();
    for ts in &req.timeseries {
        let mut labels = Vec::new();
        for pair in ts.labels_refs.chunks(2) {
            let name = req.symbols.get(*pair.first()? as usize)?.clone();
            let value = req.symbols.get(*pair.get(1)? as usize)?.clone();
            labels.push(remote::proto::Label { name, value });
        }
        out.push((
            labels_key(&labels),
            ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
        ));
    }
    Some(out)
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub mode: Arc<AtomicU32>,
    pub state: Arc<Mutex<Received>>,
    /// Delay per request, in ms (a slow receiver).
    pub delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn labels_key(labels: &[remote::proto::Label]) -> String {
    let mut v: Vec<String> = labels
        .iter()
        .filter(|l| l.name != "__name__")
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    v.sort();
    v.join(",")
}

impl Receiver {
    pub async fn start(addr: SocketAddr) -> Receiver {
        use axum::http::{HeaderMap, StatusCode};
        let mode = Arc::new(AtomicU32::new(OK));
        let state = Arc::new(Mutex::new(Received::default()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (m, s, d) = (mode.clone(), state.clone(), delay_ms.clone());
        let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
            let (m, s, d) = (m.clone(), s.clone(), d.clone());
            async move {
                let delay = d.load(Ordering::Relaxed);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let v2 = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("io.prometheus.write.v2.Request"));
                let req = decode_any(&body, v2);
                let mut st = s.lock().unwrap();
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let (content_type, version) = if v2 {
                    (remote::proto_v2::CONTENT_TYPE, remote::proto_v2::VERSION)
                } else {
                    ("application/x-protobuf", "0.1.0")
                };
                for (name, want) in [
                    ("content-encoding", "snappy"),
                    ("content-type", content_type),
                    ("x-prometheus-remote-write-version", version),
                ] {
                    if h(name) != want {
                        st.header_errors.push(format!("{name}: {:?}", h(name)));
                    }
                }
                st.user_agents.push(h("user-agent"));
                if !h("x-test").is_empty() {
                    st.custom_header = Some(h("x-test"));
                }
                if v2 {
                    st.v2_requests += 1;
                }
                let Some(req) = req else {
                    *st.statuses.entry(400).or_default() += 1;
                    return (
                        StatusCode::BAD_REQUEST,
                        HeaderMap::new(),
                        "undecodable".to_string(),
                    );
                };
                let n: u64 = req.iter().map(|t| t.1.len() as u64).sum();
                let status = match m.load(Ordering::Relaxed) {
                    UNAVAILABLE => 503,
                    TOO_MANY => 429,
                    BAD_REQUEST => 400,
                    _ => 204,
                };
                *st.statuses.entry(status).or_default() += 1;
                let mut out = HeaderMap::new();
                match status {
                    429 => {
                        st.throttled_at.push(Instant::now());
                        out.insert("retry-after", "1".parse().unwrap());
                    }
                    400 => st.refused_samples += n,
                    204 => {
                        for (key, samples) in req {
                            let entry = st.series.entry(key).or_default();
                            let mut ooo = 0;
                            for (t, v) in samples {
                                if entry.last().is_some_and(|(last, _)| *last >= t) {
                                    ooo += 1;
                                }
                                entry.push((t, v));
                            }
                            st.out_of_order += ooo;
                        }
                        if v2 {
                            out.insert(
                                "x-prometheus-remote-write-samples-written",
                                n.to_string().parse().unwrap(),
                            );
                        }
                    }
                    _ => {}
                }
                (StatusCode::from_u16(status).unwrap(), out, String::new())
            }
        };
        let app = axum::Router::new().route("/api/v1/write", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            mode,
            state,
            delay_ms,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    pub fn set_mode(&self, m: u32) {
        self.mode.store(m, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.state
            .lock()
            .unwrap()
            .series
            .values()
            .map(|v| v.len() as u64)
            .sum()
    }

    /// Every series got exactly `want` distinct samples, no duplicates, in order.
    pub fn assert_exactly(&self, series: usize, want: usize) {
        let st = self.state.lock().unwrap();
        assert_eq!(st.out_of_order, 0, "samples arrived out of order or twice");
        assert_eq!(st.series.len(), series, "series count");
        for (k, v) in &st.series {
            assert_eq!(v.len(), want, "samples of {k}");
        }
        assert!(st.header_errors.is_empty(), "{:?}", st.header_errors);
    }
}
