//! The scrape and discovery self-metrics of the `meridian` binary (`prometheus_target_*`,
//! `prometheus_sd_*`): they move when their events happen (a target over `sample_limit`,
//! duplicate and out-of-order timestamps, a reload), the whole `/metrics` passes the real
//! `promtool check metrics`, and their families match those of a real Prometheus 2.42
//! (Debian's, installed by `scripts/test`) scraping the same target through file discovery.
//!
//! Intended differences from Prometheus 2.42 (families it has that Meridian does not):
//! `prometheus_sd_azure_failures_total`, `prometheus_sd_dns_lookups_total`,
//! `prometheus_sd_dns_lookup_failures_total` and `prometheus_sd_http_failures_total` belong to
//! discovery mechanisms Meridian does not implement (Azure, DNS, HTTP). Meridian has more
//! families than 2.42 (Prometheus 3's `prometheus_target_scrape_pool_target_limit`,
//! `prometheus_sd_updates_delayed_total` at 0 from the start, Kubernetes discovery's
//! families), which is allowed. `prometheus_sd_failed_configs` has no `name="notify"` series
//! in Meridian (its Alertmanagers are static, without a discovery manager); the family and its
//! label names are the same.
//!
//! Every server listens on 127.0.0.1 on a port picked here and is stopped when the test ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MERIDIAN: &str = env!("CARGO_BIN_EXE_meridian");

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Minimal HTTP/1.1 client: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// A scrape target on 127.0.0.1: every answer has a new value for `d` at the same explicit
/// timestamp, a minute old (a duplicate from the second scrape on), and an older timestamp
/// for `o` (out of order), plus three plain samples.
struct Target {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        // A minute ago: inside the head's bounds.
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
            - 60_000;
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut buf = [0u8; 4096];
                            let _ = s.read(&mut buf);
                            let body = format!(
                                "# TYPE d gauge\nd {n} {base_ms}\no {n} {}\nx 1\ny 1\nz 1\n",
                                base_ms - u128::from(n)
                            );
                            let _ = write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Target {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(program: &str, config: &Path, data: &Path, extra: &[&str]) -> Server {
        let addr = free_addr();
        let child = Command::new(program)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {program} (scripts/test installs Debian's prometheus): {e}")
            });
        let s = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(addr, "GET", "/-/ready") {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{program} did not become ready on {addr}");
    }

    fn metrics(&self) -> String {
        http(self.addr, "GET", "/metrics").expect("metrics").1
    }

    /// Waits (up to 30 s) until `/metrics` has `series` with a value satisfying `check`.
    fn wait_for(&self, series: &str, check: impl Fn(f64) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.metrics();
            if value(&text, series).is_some_and(&check) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {series}\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the series written exactly as `series` (`name` or `name{labels}`).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Family name → (type, label names over all its samples), for families starting with one
/// of `prefixes`.
fn families(text: &str, prefixes: &[&str]) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            out.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let sample = &line[..end];
        let family = [
            sample,
            sample.trim_end_matches("_sum"),
            sample.trim_end_matches("_count"),
        ]
        .into_iter()
        .find(|f| out.contains_key(*f))
        .map(str::to_owned);
        let Some(family) = family else { continue };
        let names = label_names(&line[end..]);
        if let Some((_, labels)) = out.get_mut(&family) {
            labels.extend(names);
        }
    }
    out.retain(|name, _| prefixes.iter().any(|p| name.starts_with(p)));
    out
}

/// The label names of `{a="x",b="y"} v` (quoted values may hold any escaped character).
fn label_names(rest: &str) -> Vec<String> {
    let Some(inner) = rest.strip_prefix('{') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut chars = inner.chars();
    let mut name = String::new();
    while let Some(c) = chars.next() {
        match c {
            '=' => {
                names.push(std::mem::take(&mut name));
                // The quoted value.
                chars.next();
                while let Some(v) = chars.next() {
                    match v {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ',' => {}
            '}' => break,
            c => name.push(c),
        }
    }
    names
}

fn promtool_check(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}\n{metrics}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(dir: &Path, target: SocketAddr, limited_interval: &str) -> String {
    let targets = dir.join("targets.json");
    std::fs::write(&targets, format!("[{{\"targets\": [\"{target}\"]}}]")).expect("targets");
    format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n\
         - job_name: ts\n  file_sd_configs:\n  - files: ['{}']\n\
         - job_name: limited\n  scrape_interval: {limited_interval}\n  scrape_timeout: 200ms\n  sample_limit: 2\n  static_configs:\n  - targets: ['{target}']\n",
        targets.display()
    )
}

#[test]
fn scrape_and_discovery_metrics_move_and_pass_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target::start();
    let cfg = dir.path().join("meridian.yml");
    std::fs::write(&cfg, config(dir.path(), target.addr, "200ms")).expect("config");
    let server = Server::start(
        MERIDIAN,
        &cfg,
        &dir.path().join("data"),
        &["--web.enable-lifecycle"],
    );

    server.wait_for(
        "prometheus_target_scrapes_exceeded_sample_limit_total",
        |v| v >= 1.0,
    );
    server.wait_for(
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        |v| v >= 1.0,
    );
    server.wait_for("prometheus_target_scrapes_sample_out_of_order_total", |v| {
        v >= 1.0
    });
    let text = server.wait_for(
        "prometheus_target_interval_length_seconds_count{interval=\"200ms\"}",
        |v| v >= 2.0,
    );
    for (series, expected) in [
        ("prometheus_target_scrape_pools_total", 2.0),
        (
            "prometheus_target_scrape_pool_targets{scrape_job=\"ts\"}",
            1.0,
        ),
        (
            "prometheus_target_scrape_pool_targets{scrape_job=\"limited\"}",
            1.0,
        ),
        (
            "prometheus_sd_discovered_targets{config=\"ts\",name=\"scrape\"}",
            1.0,
        ),
        (
            "prometheus_sd_discovered_targets{config=\"limited\",name=\"scrape\"}",
            1.0,
        ),
        ("prometheus_sd_failed_configs{name=\"scrape\"}", 0.0),
        ("prometheus_target_scrape_pool_reloads_total", 0.0),
        // The target's one `# TYPE` line: type "gauge", no help or unit.
        (
            "prometheus_target_metadata_cache_entries{scrape_job=\"ts\"}",
            1.0,
        ),
        (
            "prometheus_target_metadata_cache_bytes{scrape_job=\"ts\"}",
            5.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series}\n{text}");
    }
    assert!(
        value(&text, "prometheus_sd_file_scan_duration_seconds_count").is_some_and(|v| v >= 1.0)
    );
    promtool_check(&text);

    // A reload changing one job: one pool reload, timed under its new interval.
    std::fs::write(&cfg, config(dir.path(), target.addr, "300ms")).expect("config");
    let (code, body) = http(server.addr, "POST", "/-/reload").expect("reload");
    assert_eq!(code, 200, "{body}");
    let text = server.wait_for("prometheus_target_scrape_pool_reloads_total", |v| v == 1.0);
    assert_eq!(
        value(
            &text,
            "prometheus_target_reload_length_seconds_count{interval=\"300ms\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pool_reloads_failed_total"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "prometheus_target_scrape_pools_total"),
        Some(2.0)
    );
    promtool_check(&text);
}

#[test]
fn families_match_prometheus_2_42() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target::start();
    let targets = dir.path().join("targets.json");
    std::fs::write(
        &targets,
        format!("[{{\"targets\": [\"{}\"]}}]", target.addr),
    )
    .expect("targets");
    let yaml = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\nscrape_configs:\n\
         - job_name: file\n  file_sd_configs:\n  - files: ['{}']\n",
        targets.display()
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, &yaml).expect("config");
    let prometheus = Server::start("prometheus", &cfg, &dir.path().join("prom-data"), &[]);
    let meridian = Server::start(MERIDIAN, &cfg, &dir.path().join("meridian-data"), &[]);
    // Both have scraped the target a few times (Prometheus reports intervals from the second
    // scrape on).
    let series = "prometheus_target_interval_length_seconds_count{interval=\"500ms\"}";
    let theirs = prometheus.wait_for(series, |v| v >= 2.0);
    let ours = meridian.wait_for(series, |v| v >= 2.0);
    let prefixes = ["prometheus_target_", "prometheus_sd_"];
    let theirs = families(&theirs, &prefixes);
    let ours = families(&ours, &prefixes);
    let not_implemented = [
        "prometheus_sd_azure_failures_total",
        "prometheus_sd_dns_lookup_failures_total",
        "prometheus_sd_dns_lookups_total",
        "prometheus_sd_http_failures_total",
    ];
    let mut problems = Vec::new();
    for (family, (kind, labels)) in &theirs {
        if not_implemented.contains(&family.as_str()) {
            continue;
        }
        match ours.get(family) {
            None => problems.push(format!("{family}: missing")),
            Some((our_kind, our_labels)) => {
                if our_kind != kind {
                    problems.push(format!("{family}: type {our_kind}, Prometheus {kind}"));
                }
                if our_labels != labels {
                    problems.push(format!(
                        "{family}: labels {our_labels:?}, Prometheus {labels:?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\nPrometheus: {theirs:#?}\nMeridian: {ours:#?}"
    );
    // The comparison saw what it is about.
    assert!(theirs.len() >= 30, "{theirs:#?}");
    for family in [
        "prometheus_target_interval_length_seconds",
        "prometheus_target_sync_length_seconds",
        "prometheus_sd_discovered_targets",
        "prometheus_sd_file_mtime_seconds",
    ] {
        assert!(theirs.contains_key(family), "{family}: {theirs:#?}");
    }
}
