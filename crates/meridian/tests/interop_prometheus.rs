//! Differential test against the real Prometheus (Debian's 2.42, installed by `scripts/test`):
//! both servers receive the same data by remote write, then answer the same API requests;
//! the `data` of every answer must be equal.
//!
//! Prometheus 2.42 selects closed windows `[t-r, t]` where 3.x (and Meridian) select
//! `(t-r, t]`; all sample timestamps here sit 3 s after a 15 s grid and all evaluation times
//! 10 s after it, so no sample ever falls on a window edge and both semantics agree. Result
//! order of instant vectors is unspecified in Prometheus, so vectors are compared as sets.
//! Sample values are compared with a relative tolerance of 1e-9: Prometheus 3 (which Meridian
//! follows) sums with Kahan compensation and averages directly where 2.42 did neither, and
//! Go's `math.Exp` and friends differ from the system libm in the last bit.
//! Intended differences, not compared: `warnings`/`infos` (2.42 has no infos), build info.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MERIDIAN: &str = env!("CARGO_BIN_EXE_meridian");

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Minimal HTTP/1.1 client (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.write_all(
                format!("GET /-/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let mut raw = String::new();
            let _ = s.read_to_string(&mut raw);
            if raw.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr} did not become ready");
}

const IDLE_CONFIG: &str = "global:\n  scrape_interval: 1h\n";

fn start_prometheus(dir: &std::path::Path, config: &str) -> Proc {
    start_prometheus_with(dir, config, &[])
}

fn start_prometheus_with(dir: &std::path::Path, config: &str, extra: &[&str]) -> Proc {
    start_prometheus_at(dir, config, free_addr(), extra)
}

fn start_prometheus_at(
    dir: &std::path::Path,
    config: &str,
    addr: SocketAddr,
    extra: &[&str],
) -> Proc {
    start_server(Peer::Prometheus, dir, config, addr, extra)
}

fn start_meridian(dir: &std::path::Path, config: &str) -> Proc {
    start_meridian_with(dir, config, &[])
}

fn start_meridian_with(dir: &std::path::Path, config: &str, extra: &[&str]) -> Proc {
    start_meridian_at(dir, config, free_addr(), extra)
}

fn start_meridian_at(
    dir: &std::path::Path,
    config: &str,
    addr: SocketAddr,
    extra: &[&str],
) -> Proc {
    start_server(Peer::Meridian, dir, config, addr, extra)
}

/// Which server a test starts; both take the same flags.
#[derive(Clone, Copy)]
enum Peer {
    Prometheus,
    Meridian,
}

/// Starts `peer` on `addr` with `config` and its data in `dir`, remote-write receiver on, and
/// waits until it is ready.
fn start_server(
    peer: Peer,
    dir: &std::path::Path,
    config: &str,
    addr: SocketAddr,
    extra: &[&str],
) -> Proc {
    let (program, name) = match peer {
        Peer::Prometheus => ("prometheus", "prom"),
        Peer::Meridian => (MERIDIAN, "meridian"),
    };
    let cfg = dir.join(match peer {
        Peer::Prometheus => "prometheus.yml",
        Peer::Meridian => "meridian.yml",
    });
    std::fs::write(&cfg, config).unwrap();
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!(
            "--storage.tsdb.path={}",
            dir.join(format!("{name}-data")).display()
        ),
        "--web.enable-remote-write-receiver".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    launch(program, &args, addr)
}

/// Runs `program` with `args` listening on `addr`, and waits until it is ready.
fn launch(program: &str, args: &[String], addr: SocketAddr) -> Proc {
    let child = Command::new(program)
        .args(args)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting {program} (scripts/test installs Debian's prometheus package): {e}")
        });
    let p = Proc { child, addr };
    wait_ready(addr);
    p
}

/// Counters, gauges and classic histogram buckets over 30 minutes, samples at grid + 3 s.
fn dataset(base: i64) -> Vec<u8> {
    use remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    let mut ts = Vec::new();
    let mut series = |labels: &[(&str, String)], f: &dyn Fn(i64) -> f64| {
        ts.push(TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.clone(),
                })
                .collect(),
            samples: (0..120)
                .map(|k| Sample {
                    value: f(k),
                    timestamp: base + k * 15_000 + 3_000,
                })
                .collect(),
            ..Default::default()
        });
    };
    for job in ["api", "db"] {
        for inst in 0..3 {
            let i = inst as i64;
            let mult = if job == "api" { 1 } else { 3 };
            let reset_at = 60 + 7 * i;
            series(
                &[
                    ("__name__", "http_requests_total".into()),
                    ("job", job.into()),
                    ("instance", format!("h{inst}")),
                ],
                &|k| {
                    let k = if k >= reset_at { k - reset_at } else { k };
                    (k * (i + 1) * mult) as f64 * 1.5
                },
            );
            series(
                &[
                    ("__name__", "temperature".into()),
                    ("job", job.into()),
                    ("instance", format!("h{inst}")),
                ],
                &|k| 20.0 + ((k * 7 + i * 13) % 11) as f64 * 0.25 - i as f64,
            );
            for le in ["0.1", "0.5", "1", "+Inf"] {
                let w = match le {
                    "0.1" => 1,
                    "0.5" => 3,
                    "1" => 4,
                    _ => 5,
                };
                series(
                    &[
                        ("__name__", "latency_seconds_bucket".into()),
                        ("job", job.into()),
                        ("instance", format!("h{inst}")),
                        ("le", le.into()),
                    ],
                    &|k| (k * w * (i + 1)) as f64,
                );
            }
        }
    }
    series(
        &[
            ("__name__", "info_meta".into()),
            ("instance", "h0".into()),
            ("version", "1.2".into()),
        ],
        &|_| 1.0,
    );
    series(
        &[
            ("__name__", "info_meta".into()),
            ("instance", "h1".into()),
            ("version", "1.3".into()),
        ],
        &|_| 1.0,
    );
    remote::encode_write_request(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

fn write(addr: SocketAddr, body: &[u8]) {
    let (code, resp) = http(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        body,
    );
    assert_eq!(code, 204, "{addr}: {}", String::from_utf8_lossy(&resp));
}

fn encode(q: &str) -> String {
    form_encode(q)
}

fn form_encode(s: &str) -> String {
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

/// The `data` of an API answer with vector results sorted, for comparison.
fn normalized(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let mut data = v.get("data").cloned().unwrap_or(Value::Null);
    if v.get("status").and_then(Value::as_str) == Some("error") {
        return serde_json::json!({"error": v.get("errorType")});
    }
    if let Some(result) = data.get_mut("result").and_then(Value::as_array_mut) {
        result.sort_by_key(|r| r.get("metric").map(|m| m.to_string()).unwrap_or_default());
    }
    if let Some(list) = data.as_array_mut() {
        list.sort_by_key(|x| x.to_string());
    }
    data
}

/// Structural equality where numeric strings compare with a relative tolerance.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if x == y {
                return true;
            }
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) if p.is_finite() && q.is_finite() => {
                    (p - q).abs() <= 1e-9 * p.abs().max(q.abs())
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn api_answers_match_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let prom = start_prometheus(dir.path(), IDLE_CONFIG);
    let meridian = start_meridian(dir.path(), IDLE_CONFIG);
    let now = model::sample::now_ms();
    // 30 minutes of data ending a little before now, aligned to a 15 s grid.
    let base = (now - 31 * 60 * 1000) / 15_000 * 15_000;
    let body = dataset(base);
    write(prom.addr, &body);
    write(meridian.addr, &body);

    let t = |k: i64| (base + k * 15_000 + 10_000) as f64 / 1000.0;
    let instant = [
        "http_requests_total",
        "temperature{job=\"db\"}",
        "rate(http_requests_total[5m])",
        "irate(http_requests_total[5m])",
        "increase(http_requests_total[10m])",
        "sum by (job) (rate(http_requests_total[5m]))",
        "avg by (job) (temperature)",
        "max without (instance) (temperature)",
        "min(temperature)",
        "count by (job) (temperature > 19.5)",
        "stddev(temperature)",
        "stdvar by (job) (temperature)",
        "topk(2, temperature)",
        "bottomk(1, temperature) by (job)",
        "quantile(0.9, temperature)",
        "count_values(\"value\", round(temperature))",
        "histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))",
        "histogram_quantile(0.5, rate(latency_seconds_bucket[10m]))",
        "delta(temperature[10m])",
        "idelta(temperature[5m])",
        "deriv(temperature[10m])",
        "predict_linear(temperature[10m], 600)",
        "resets(http_requests_total[30m])",
        "changes(temperature[10m])",
        "avg_over_time(temperature[10m])",
        "max_over_time(temperature[10m])",
        "min_over_time(temperature[10m])",
        "sum_over_time(temperature[5m])",
        "count_over_time(temperature[5m])",
        "quantile_over_time(0.5, temperature[10m])",
        "stddev_over_time(temperature[10m])",
        "last_over_time(temperature[10m])",
        "present_over_time(temperature[10m])",
        "max_over_time(rate(http_requests_total[5m])[10m:1m])",
        "temperature offset 5m",
        "temperature - temperature offset 10m",
        "temperature / on(job, instance) group_left(version) info_meta",
        "temperature * on(instance) group_left(version) info_meta",
        "http_requests_total > bool 100",
        "temperature > 20",
        "temperature unless on(instance) info_meta",
        "temperature and on(instance) info_meta",
        "temperature{job=\"api\"} or temperature{job=\"db\"}",
        "abs(temperature - 21)",
        "clamp(temperature, 19, 21)",
        "clamp_min(temperature, 20)",
        "round(temperature, 0.5)",
        "sqrt(temperature)",
        "ln(temperature)",
        "exp(temperature / 10)",
        "label_replace(temperature, \"host\", \"$1\", \"instance\", \"h(.*)\")",
        "label_join(temperature, \"id\", \"-\", \"job\", \"instance\")",
        "absent(nonexistent{job=\"x\"})",
        "absent(temperature)",
        "scalar(sum(temperature)) * 2",
        "vector(1) + 1",
        "time()",
        "sort_desc(temperature)",
        "timestamp(temperature)",
        "-temperature",
        "temperature % 3",
        "temperature ^ 2",
        "sum(http_requests_total) by (job) / on(job) group_left sum(temperature) by (job)",
    ];
    let mut compared = 0;
    let mut diffs = Vec::new();
    for q in instant {
        for k in [40, 90, 119] {
            let path = format!("/api/v1/query?query={}&time={}", encode(q), t(k));
            let (_, a) = http(prom.addr, "GET", &path, &[], b"");
            let (_, b) = http(meridian.addr, "GET", &path, &[], b"");
            compared += 1;
            if !same(&normalized(&a), &normalized(&b)) {
                diffs.push(format!(
                    "{q} @ {}:\n  prometheus: {}\n  meridian:   {}",
                    t(k),
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                ));
            }
        }
    }
    let ranges = [
        "rate(http_requests_total[5m])",
        "sum by (job) (rate(http_requests_total[5m]))",
        "avg_over_time(temperature[2m])",
        "temperature > 20.5",
        "histogram_quantile(0.9, sum by (le, job) (rate(latency_seconds_bucket[5m])))",
    ];
    for q in ranges {
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=30",
            encode(q),
            t(30),
            t(110)
        );
        let (_, a) = http(prom.addr, "GET", &path, &[], b"");
        let (_, b) = http(meridian.addr, "GET", &path, &[], b"");
        compared += 1;
        if !same(&normalized(&a), &normalized(&b)) {
            diffs.push(format!(
                "range {q}:\n  prometheus: {}\n  meridian:   {}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            ));
        }
    }
    let start = t(0);
    let end = t(119);
    for path in [
        format!("/api/v1/series?match[]=temperature&start={start}&end={end}"),
        format!(
            "/api/v1/series?match[]={}&match[]=info_meta&start={start}&end={end}",
            encode("http_requests_total{job=\"api\"}")
        ),
        format!("/api/v1/labels?start={start}&end={end}"),
        format!("/api/v1/labels?match[]=info_meta&start={start}&end={end}"),
        format!("/api/v1/label/job/values?start={start}&end={end}"),
        format!("/api/v1/label/__name__/values?start={start}&end={end}"),
        format!("/api/v1/label/instance/values?match[]=temperature&start={start}&end={end}"),
        "/api/v1/query?query=sum(".to_string(),
        "/api/v1/query_range?query=up&start=10&end=0&step=1".to_string(),
    ] {
        let (_, a) = http(prom.addr, "GET", &path, &[], b"");
        let (_, b) = http(meridian.addr, "GET", &path, &[], b"");
        compared += 1;
        if !same(&normalized(&a), &normalized(&b)) {
            diffs.push(format!(
                "{path}:\n  prometheus: {}\n  meridian:   {}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            ));
        }
    }
    for d in &diffs {
        eprintln!("DIFF {d}");
    }
    println!(
        "prometheus differential: {} passed, {} failed",
        compared - diffs.len(),
        diffs.len()
    );
    assert!(diffs.is_empty());
}

/// The instant-query result of `q` as a map from labels (JSON text, without `drop`) to value.
fn vector(addr: SocketAddr, q: &str, drop: &str) -> std::collections::BTreeMap<String, String> {
    let (code, body) = http(
        addr,
        "GET",
        &format!("/api/v1/query?query={}", encode(q)),
        &[],
        b"",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let mut metric = r["metric"].clone();
        if let Some(m) = metric.as_object_mut() {
            m.remove(drop);
        }
        out.insert(
            metric.to_string(),
            r["value"][1].as_str().unwrap().to_string(),
        );
    }
    out
}

/// The real Prometheus federates from Meridian as it would from another Prometheus: it scrapes
/// `/federate` (gzip, `match[]` params, honor_labels) and ends up with Meridian's latest samples,
/// carrying Meridian's external `cluster` label.
#[test]
fn the_real_prometheus_federates_from_meridian() {
    let dir = tempfile::tempdir().unwrap();
    let meridian = start_meridian(
        dir.path(),
        "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: east\n",
    );
    let now = model::sample::now_ms();
    let base = (now - 30 * 60 * 1000) / 15_000 * 15_000;
    write(meridian.addr, &dataset(base));
    let selector = r#"{__name__=~"http_requests_total|temperature|latency_seconds_bucket"}"#;
    let prom = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{selector}']\n    static_configs:\n      - targets: ['{}']\n",
            meridian.addr
        ),
    );
    let want = vector(
        meridian.addr,
        &format!("last_over_time({selector}[10m])"),
        "",
    );
    assert!(want.len() > 20, "dataset too small: {}", want.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = vector(
            prom.addr,
            "last_over_time({cluster=\"east\"}[10m])",
            "cluster",
        );
        if got.len() >= want.len() || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let everything = vector(
        prom.addr,
        "count by (cluster) ({__name__=~\".+\", job!=\"federate\"})",
        "",
    );
    assert_eq!(
        everything.len(),
        1,
        "every federated series carries cluster=east: {everything:?}"
    );
    assert_eq!(
        got, want,
        "Prometheus' federated copy differs from Meridian's data"
    );
    let up = vector(prom.addr, "up{job=\"federate\"}", "");
    assert_eq!(up.values().collect::<Vec<_>>(), vec!["1"]);
    println!("prometheus federated {} series from meridian", got.len());
}

/// The sorted `data` list of a metadata endpoint.
fn list(addr: SocketAddr, path: &str) -> Vec<String> {
    let (code, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut out: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    out.sort();
    out
}

/// Meridian and the real Prometheus scrape the same real node exporter with the same
/// configuration: they store the same series (names and label sets), the same values for
/// series that do not change, and Meridian reports the target in `/api/v1/targets`.
#[test]
fn scrapes_a_node_exporter_into_the_same_series_as_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let exporter_addr = free_addr();
    let exporter = Proc {
        child: Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address={exporter_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter must be installed (scripts/test installs it)"),
        addr: exporter_addr,
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['{}']\n        labels:\n          cluster: test\n",
        exporter.addr
    );
    let prom = start_prometheus(dir.path(), &config);
    let meridian = start_meridian(dir.path(), &config);
    let scraped = |addr| {
        vector(addr, "count_over_time(up{job=\"node\"}[1m])", "")
            .values()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while scraped(meridian.addr) < 4.0 || scraped(prom.addr) < 4.0 {
        assert!(Instant::now() < deadline, "no scrapes within a minute");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        vector(meridian.addr, "up", ""),
        vector(prom.addr, "up", ""),
        "up"
    );
    let names = format!(
        "/api/v1/label/__name__/values?match[]={}",
        encode("{job=\"node\"}")
    );
    let (m_names, p_names) = (list(meridian.addr, &names), list(prom.addr, &names));
    assert!(m_names.len() > 50, "too few metric names: {m_names:?}");
    assert_eq!(m_names, p_names, "metric names");
    // Label sets of series that exist at the latest scrape on both sides.
    let latest = r#"{job="node", __name__!~"node_scrape_collector_duration_seconds|scrape_duration_seconds|node_time_seconds|node_timex_.*|node_schedstat_.*|node_cpu_seconds_total|node_softnet_.*|node_intr_total|node_context_switches_total|node_procs_.*|process_.*|go_.*|node_load.*|node_netstat_.*|node_network_.*|node_disk_.*|node_vmstat_.*|node_memory_.*|node_pressure_.*|node_sockstat_.*|node_filefd_.*|node_forks_total|node_entropy_.*|node_filesystem_.*|node_nf_conntrack_.*|node_cpu_.*|promhttp_.*|scrape_.*"}"#;
    let m = vector(meridian.addr, latest, "");
    let p = vector(prom.addr, latest, "");
    assert!(m.len() > 10, "too few stable series: {m:?}");
    assert_eq!(
        m, p,
        "series and values of series that do not change between scrapes"
    );
    let (_, body) = http(meridian.addr, "GET", "/api/v1/targets", &[], b"");
    let targets: Value = serde_json::from_slice(&body).unwrap();
    let active = &targets["data"]["activeTargets"];
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{targets}");
    assert_eq!(active[0]["health"], "up", "{targets}");
    assert_eq!(active[0]["scrapePool"], "node");
    assert_eq!(
        active[0]["labels"],
        serde_json::json!({"cluster": "test", "instance": exporter.addr.to_string(), "job": "node"})
    );
    assert_eq!(
        active[0]["scrapeUrl"],
        format!("http://{}/metrics", exporter.addr)
    );
    println!(
        "node exporter: {} metric names and {} stable series identical in Meridian and Prometheus",
        m_names.len(),
        m.len()
    );
}

/// The other direction of the seeds' topology: a central Meridian federates from a real
/// Prometheus (honor_labels, `match[]`, a `cluster` label added by the target's labels) and
/// ends up with Prometheus' latest samples.
#[test]
fn meridian_federates_from_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let prom = start_prometheus(dir.path(), IDLE_CONFIG);
    let now = model::sample::now_ms();
    let base = (now - 30 * 60 * 1000) / 15_000 * 15_000;
    write(prom.addr, &dataset(base));
    let selector = r#"{__name__=~"http_requests_total|temperature|latency_seconds_bucket"}"#;
    let meridian = start_meridian(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{selector}']\n    static_configs:\n      - targets: ['{}']\n        labels:\n          cluster: west\n",
            prom.addr
        ),
    );
    let want = vector(prom.addr, &format!("last_over_time({selector}[10m])"), "");
    assert!(want.len() > 20, "dataset too small: {}", want.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = vector(
            meridian.addr,
            "last_over_time({cluster=\"west\", job!=\"federate\"}[10m])",
            "cluster",
        );
        if got.len() >= want.len() || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        got, want,
        "Meridian's federated copy differs from Prometheus' data"
    );
    let up = vector(meridian.addr, "up{job=\"federate\"}", "");
    assert_eq!(up.values().collect::<Vec<_>>(), vec!["1"]);
    println!("meridian federated {} series from prometheus", got.len());
}

/// The admin API answers as Prometheus': refused (503, "admin APIs disabled") without
/// `--web.enable-admin-api`; with it, delete_series removes the same samples from both, and
/// snapshots and clean_tombstones succeed.
#[test]
fn admin_api_matches_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (pdir, mdir) = (dir.path().join("p"), dir.path().join("m"));
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::create_dir_all(&mdir).unwrap();
    let prom = start_prometheus_with(&pdir, IDLE_CONFIG, &["--web.enable-admin-api"]);
    let meridian = start_meridian_with(&mdir, IDLE_CONFIG, &["--web.enable-admin-api"]);
    let plain = start_meridian(dir.path(), IDLE_CONFIG);
    let (code, body) = http(plain.addr, "POST", "/api/v1/admin/tsdb/snapshot", &[], b"");
    assert_eq!(code, 503);
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#
    );
    let now = model::sample::now_ms();
    let base = (now - 30 * 60 * 1000) / 15_000 * 15_000;
    let body = dataset(base);
    write(prom.addr, &body);
    write(meridian.addr, &body);
    let cut = (base + 60 * 15_000) as f64 / 1000.0;
    let requests = [
        format!(
            "/api/v1/admin/tsdb/delete_series?match[]={}&start={cut}",
            encode("temperature{job=\"api\"}")
        ),
        format!(
            "/api/v1/admin/tsdb/delete_series?match[]={}",
            encode("info_meta")
        ),
        "/api/v1/admin/tsdb/delete_series".to_string(),
        "/api/v1/admin/tsdb/clean_tombstones".to_string(),
        "/api/v1/admin/tsdb/snapshot?skip_head=maybe".to_string(),
    ];
    for path in &requests {
        let (pc, pb) = http(prom.addr, "POST", path, &[], b"");
        let (mc, mb) = http(meridian.addr, "POST", path, &[], b"");
        assert_eq!(
            mc,
            pc,
            "{path}: prometheus {} / meridian {}",
            String::from_utf8_lossy(&pb),
            String::from_utf8_lossy(&mb)
        );
        if pc >= 400 {
            assert_eq!(normalized(&mb), normalized(&pb), "{path}");
        }
    }
    for q in [
        "count_over_time(temperature[1h])",
        "count_over_time(info_meta[1h])",
        "count(http_requests_total)",
    ] {
        let path = format!(
            "/api/v1/query?query={}&time={}",
            encode(q),
            now as f64 / 1000.0
        );
        let (_, a) = http(prom.addr, "GET", &path, &[], b"");
        let (_, b) = http(meridian.addr, "GET", &path, &[], b"");
        assert!(
            same(&normalized(&a), &normalized(&b)),
            "{q}: {} vs {}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
    let (code, body) = http(
        meridian.addr,
        "POST",
        "/api/v1/admin/tsdb/snapshot",
        &[],
        b"",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let name = v["data"]["name"].as_str().unwrap();
    let snap = mdir.join("meridian-data").join("snapshots").join(name);
    assert!(snap.is_dir(), "{} missing", snap.display());
    assert!(
        std::fs::read_dir(&snap).unwrap().count() >= 1,
        "empty snapshot"
    );
}

/// A real Prometheus with `remote_read` pointed at Meridian answers queries over Meridian's
/// data exactly as Meridian does (Prometheus 2.42 asks for the SAMPLES response type; the
/// streamed chunk type is checked by Meridian's own tests). Meridian's external label is
/// added to what it serves.
#[test]
fn the_real_prometheus_remote_reads_from_meridian() {
    let dir = tempfile::tempdir().unwrap();
    let meridian = start_meridian(
        dir.path(),
        "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: east\n",
    );
    let now = model::sample::now_ms();
    let base = (now - 30 * 60 * 1000) / 15_000 * 15_000;
    write(meridian.addr, &dataset(base));
    let prom = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1h\nremote_read:\n  - url: http://{}/api/v1/read\n    read_recent: true\n",
            meridian.addr
        ),
    );
    let at = (base + 100 * 15_000 + 7_000) as f64 / 1000.0;
    let mut compared = 0;
    for q in [
        "http_requests_total",
        "rate(http_requests_total[5m])",
        "sum by (job) (rate(http_requests_total{job=~\"api|db\"}[10m]))",
        "temperature{instance!=\"h1\"}",
        "histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))",
        "count_over_time(info_meta[30m])",
    ] {
        let path = format!("/api/v1/query?query={}&time={at}", encode(q));
        let (_, m) = http(meridian.addr, "GET", &path, &[], b"");
        let (_, p) = http(prom.addr, "GET", &path, &[], b"");
        let mut p = normalized(&p);
        if let Some(result) = p.get_mut("result").and_then(Value::as_array_mut) {
            for r in result.iter_mut() {
                if let Some(metric) = r.get_mut("metric").and_then(Value::as_object_mut) {
                    if metric.contains_key("__name__") {
                        assert_eq!(metric.remove("cluster"), Some(Value::from("east")), "{q}");
                    } else {
                        metric.remove("cluster");
                    }
                }
            }
            result.sort_by_key(|r| r.get("metric").map(|m| m.to_string()).unwrap_or_default());
        }
        let m = normalized(&m);
        assert!(
            m["result"].as_array().is_some_and(|r| !r.is_empty()),
            "{q}: empty"
        );
        assert!(same(&p, &m), "{q}:\n  prometheus: {p}\n  meridian:   {m}");
        compared += 1;
    }
    println!("remote read: {compared} queries answered identically");
}

/// A tiny exporter: one counter that grows by one per request, on a thread.
fn start_exporter() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut n = 0u64;
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            n += 1;
            let body = format!(
                "# TYPE app_requests_total counter\napp_requests_total{{path=\"/a\"}} {n}\napp_requests_total{{path=\"/b\"}} {}\n",
                n * 2
            );
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

/// The per-series sample counts of the last ten minutes (labels without `drop`), from a
/// range selector (raw samples, metric names kept).
fn counts(
    addr: SocketAddr,
    selector: &str,
    drop: &str,
) -> std::collections::BTreeMap<String, String> {
    let path = format!(
        "/api/v1/query?query={}",
        encode(&format!("{selector}[10m]"))
    );
    let (code, body) = http(addr, "GET", &path, &[], b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let mut metric = r["metric"].clone();
        if let Some(m) = metric.as_object_mut() {
            m.remove(drop);
        }
        let n = r["values"].as_array().map_or(0, Vec::len);
        out.insert(metric.to_string(), n.to_string());
    }
    out
}

/// A cluster-local Meridian scrapes and remote-writes to a central receiver that goes down
/// and comes back (and, for Meridian as receiver, restarts on the same data): afterwards the
/// receiver holds every sample the sender scraped, once, with the sender's external labels.
fn remote_write_across_an_outage(receiver_is_prometheus: bool, v2: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (rdir, sdir) = (dir.path().join("receiver"), dir.path().join("sender"));
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::create_dir_all(&sdir).unwrap();
    let raddr = free_addr();
    let start_receiver = || {
        if receiver_is_prometheus {
            start_prometheus_at(&rdir, IDLE_CONFIG, raddr, &[])
        } else {
            start_meridian_at(&rdir, IDLE_CONFIG, raddr, &[])
        }
    };
    let receiver = start_receiver();
    let exporter = start_exporter();
    let sender = start_meridian(
        &sdir,
        &format!(
            "global:\n  scrape_interval: 1s\n  external_labels:\n    cluster: local-1\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{exporter}']\nremote_write:\n  - url: http://{raddr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 100ms\n      max_backoff: 500ms\n{}",
            if v2 {
                "    protobuf_message: io.prometheus.write.v2.Request\n"
            } else {
                ""
            }
        ),
    );
    let arrived = |addr| !counts(addr, r#"app_requests_total{cluster="local-1"}"#, "").is_empty();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !arrived(receiver.addr) {
        assert!(Instant::now() < deadline, "nothing arrived at the receiver");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(receiver);
    std::thread::sleep(Duration::from_secs(4));
    let receiver = start_receiver();
    std::thread::sleep(Duration::from_secs(2));
    // Scraping goes on, so the receiver may trail by the last scrape or two; the outage's
    // samples (four or more per series) must all be there.
    let selector = r#"{job="app"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = counts(sender.addr, selector, "");
        let got = counts(receiver.addr, selector, "cluster");
        let lagging = want.iter().any(|(k, v)| {
            got.get(k).and_then(|g| g.parse::<f64>().ok()) < v.parse::<f64>().ok().map(|x| x - 2.0)
        });
        if !lagging && got.keys().eq(want.keys()) {
            // Everything up to the last couple of scrapes has arrived; nothing arrived twice
            // (a resent sample would be refused by Prometheus, or double a count in Meridian
            // only if it had a new timestamp, which resends do not have).
            for (k, v) in &want {
                let (w, g): (f64, f64) = (v.parse().unwrap(), got[k].parse().unwrap());
                assert!(g <= w, "{k}: receiver has {g} samples, sender {w}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "receiver behind:\n  sender:   {want:?}\n  receiver: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, m) = http(sender.addr, "GET", "/metrics", &[], b"");
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.lines().any(|l| l.starts_with("prometheus_remote_storage_samples_total") && !l.ends_with(" 0")),
        "no remote-write metrics:\n{m}"
    );
}

#[test]
fn meridian_remote_writes_to_meridian_across_an_outage() {
    remote_write_across_an_outage(false, false);
}

#[test]
fn meridian_remote_writes_2_0_to_meridian_across_an_outage() {
    remote_write_across_an_outage(false, true);
}

#[test]
fn meridian_remote_writes_to_the_real_prometheus_across_an_outage() {
    remote_write_across_an_outage(true, false);
}

/// Starts `peer` in agent mode (`--enable-feature=agent`, which both accept) with its WAL in
/// `dir` and waits until it is ready.
fn start_agent(peer: Peer, dir: &std::path::Path, config: &str, addr: SocketAddr) -> Proc {
    let program = match peer {
        Peer::Prometheus => "prometheus",
        Peer::Meridian => MERIDIAN,
    };
    let cfg = dir.join("agent.yml");
    std::fs::write(&cfg, config).unwrap();
    let args = [
        "--enable-feature=agent".to_string(),
        format!("--config.file={}", cfg.display()),
        format!("--storage.agent.path={}", dir.join("agent-data").display()),
    ];
    launch(program, &args, addr)
}

fn agent_config(exporter: SocketAddr, receiver: SocketAddr, name: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    agent: {name}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{exporter}']\nremote_write:\n  - url: http://{receiver}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 100ms\n      max_backoff: 500ms\n"
    )
}

/// The values of `app_requests_total{path="/a", agent=...}` the receiver holds, oldest first.
fn received_values(receiver: SocketAddr, agent: &str) -> Vec<f64> {
    let q = format!(r#"app_requests_total{{path="/a",agent="{agent}"}}[10m]"#);
    let (code, body) = http(
        receiver,
        "GET",
        &format!("/api/v1/query?query={}", encode(&q)),
        &[],
        b"",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|s| s["values"].as_array())
        .map(|vals| {
            vals.iter()
                .filter_map(|p| p[1].as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Prometheus 2.42 and Meridian, both in agent mode, scrape their own exporter and
/// remote-write to one receiver: both deliver every scrape; both refuse the same reads with
/// the same status and body, and serve targets, flags and their own metrics.
#[test]
fn agent_mode_matches_the_real_prometheus_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (rdir, pdir, mdir) = (
        dir.path().join("receiver"),
        dir.path().join("prom-agent"),
        dir.path().join("meridian-agent"),
    );
    for d in [&rdir, &pdir, &mdir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let receiver = start_meridian(&rdir, IDLE_CONFIG);
    let (pexp, mexp) = (start_exporter(), start_exporter());
    let prom = start_agent(
        Peer::Prometheus,
        &pdir,
        &agent_config(pexp, receiver.addr, "prom"),
        free_addr(),
    );
    let meridian = start_agent(
        Peer::Meridian,
        &mdir,
        &agent_config(mexp, receiver.addr, "meridian"),
        free_addr(),
    );
    // Both deliver: each exporter counts its scrapes, so the receiver must hold 1, 2, 3, ...
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (p, m) = (
            received_values(receiver.addr, "prom"),
            received_values(receiver.addr, "meridian"),
        );
        if p.len() >= 5 && m.len() >= 5 {
            for (name, vals) in [("prom", &p), ("meridian", &m)] {
                let want: Vec<f64> = (1..=vals.len()).map(|i| i as f64).collect();
                assert_eq!(vals, &want, "{name}: a scrape is missing or doubled");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agents did not deliver: prom {p:?}, meridian {m:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Reads of local data: same status, same body.
    let refused = [
        ("GET", "/api/v1/query?query=up"),
        ("POST", "/api/v1/query?query=up"),
        ("GET", "/api/v1/query_range?query=up&start=0&end=10&step=1"),
        ("GET", "/api/v1/query?query=%28"),
        ("GET", "/api/v1/series?match[]=up"),
        ("GET", "/api/v1/labels"),
        ("GET", "/api/v1/label/job/values"),
        ("GET", "/api/v1/query_exemplars?query=up"),
        ("GET", "/api/v1/rules"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alertmanagers"),
        ("GET", "/api/v1/status/tsdb"),
        ("POST", "/api/v1/admin/tsdb/snapshot"),
    ];
    for (method, path) in refused {
        let (pc, pb) = http(prom.addr, method, path, &[], b"");
        let (mc, mb) = http(meridian.addr, method, path, &[], b"");
        let (pb, mb) = (String::from_utf8_lossy(&pb), String::from_utf8_lossy(&mb));
        assert_eq!((pc, pb.trim()), (mc, mb.trim()), "{method} {path}");
        assert_eq!(mc, 422, "{method} {path}: {mb}");
    }
    // What still works: targets, status pages, self-metrics.
    for addr in [prom.addr, meridian.addr] {
        let (code, body) = http(addr, "GET", "/api/v1/targets", &[], b"");
        assert_eq!(code, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["activeTargets"][0]["health"], "up", "{addr}");
        for path in [
            "/api/v1/status/flags",
            "/api/v1/status/config",
            "/api/v1/status/buildinfo",
            "/-/healthy",
        ] {
            assert_eq!(http(addr, "GET", path, &[], b"").0, 200, "{addr} {path}");
        }
    }
    let (_, m) = http(meridian.addr, "GET", "/metrics", &[], b"");
    let m = String::from_utf8_lossy(&m);
    for metric in [
        "prometheus_agent_active_series",
        "prometheus_agent_samples_appended_total",
        "prometheus_remote_storage_samples_total",
    ] {
        assert!(
            m.lines()
                .any(|l| l.starts_with(metric) && !l.ends_with(" 0")),
            "{metric} missing or zero"
        );
    }
    // Only a WAL on disk.
    let data = mdir.join("agent-data");
    assert!(data.join("wal").is_dir());
    for e in std::fs::read_dir(&data).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            ["wal", "lock", "remote"].contains(&name.as_str()),
            "unexpected {name} in the agent's directory"
        );
    }
}

/// An agent whose receiver is down, restarted during the outage, delivers every scrape once
/// the receiver is back.
#[test]
fn meridian_agent_loses_nothing_across_an_outage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (rdir, adir) = (dir.path().join("receiver"), dir.path().join("agent"));
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::create_dir_all(&adir).unwrap();
    let raddr = free_addr();
    let receiver = start_meridian_at(&rdir, IDLE_CONFIG, raddr, &[]);
    let exporter = start_exporter();
    let config = agent_config(exporter, raddr, "meridian");
    let aaddr = free_addr();
    let agent = start_agent(Peer::Meridian, &adir, &config, aaddr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while received_values(raddr, "meridian").len() < 2 {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(receiver);
    std::thread::sleep(Duration::from_secs(3));
    drop(agent);
    let agent = start_agent(Peer::Meridian, &adir, &config, aaddr);
    std::thread::sleep(Duration::from_secs(3));
    let receiver = start_meridian_at(&rdir, IDLE_CONFIG, raddr, &[]);
    // Every scrape, before, during and after the outage, arrives once and in order.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let vals = received_values(receiver.addr, "meridian");
        let want: Vec<f64> = (1..=vals.len()).map(|i| i as f64).collect();
        assert_eq!(vals, want, "a scrape is missing or doubled");
        if vals.len() >= 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} samples arrived",
            vals.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(agent);
}

/// Agent mode refuses what needs local queries, as Prometheus' agent does.
#[test]
fn meridian_agent_refuses_rules_and_a_config_without_remote_write() {
    let dir = tempfile::tempdir().unwrap();
    for (config, want) in [
        (
            "rule_files: [r.yml]\nremote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n",
            "field rule_files is not allowed in agent mode",
        ),
        (
            "scrape_configs: []\n",
            "at least one remote_write target must be specified in agent mode",
        ),
    ] {
        let cfg = dir.path().join("agent.yml");
        std::fs::write(&cfg, config).unwrap();
        let out = Command::new(MERIDIAN)
            .arg("--agent")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.agent.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={}", free_addr()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
}

/// An OpenMetrics exporter on a thread answering with the current `body`.
fn start_om_exporter(body: std::sync::Arc<std::sync::Mutex<String>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = body.lock().unwrap().clone();
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

/// Exemplar timestamps of the exporters (seconds): fixed, so that two servers scraping at
/// different moments store the same exemplars.
const EXEMPLAR_T0: f64 = 1_700_000_000.0;

/// The payload of exporter `which` ("a" or "b") in `phase` 1 or 2 (phase 2 adds newer
/// exemplars, and an older one that both servers must refuse).
fn om_payload(which: &str, phase: u32) -> String {
    let help = if which == "a" {
        r#"Requests \"served\" \\ with \n escapes."#
    } else {
        "Requests (B)."
    };
    let unit = if which == "a" {
        "# UNIT http_requests requests\n"
    } else {
        ""
    };
    let t = EXEMPLAR_T0;
    let (trace, extra_t) = if phase == 1 {
        (format!("{which}1"), t)
    } else {
        (format!("{which}2"), t + 10.0)
    };
    // Phase 2: the 0.1 bucket's exemplar is older than the one stored in phase 1.
    let bucket = if phase == 1 {
        format!("{{trace_id=\"l1\",span_id=\"s\"}} 0.05 {}", t + 0.5)
    } else {
        format!("{{trace_id=\"old\"}} 9 {}", t - 100.0)
    };
    let only_b = if which == "b" {
        "# TYPE only_b gauge\n# HELP only_b Only in B.\nonly_b 1\n"
    } else {
        ""
    };
    format!(
        "# TYPE http_requests counter\n# HELP http_requests {help}\n{unit}http_requests_total{{path=\"/a\"}} 1 # {{trace_id=\"{trace}\"}} 0.5 {extra_t}\nhttp_requests_total{{path=\"/b\"}} 2\n# TYPE latency_seconds histogram\n# HELP latency_seconds Latency.\n# UNIT latency_seconds seconds\nlatency_seconds_bucket{{le=\"0.1\"}} 1 # {bucket}\nlatency_seconds_bucket{{le=\"+Inf\"}} 2 # {{trace_id=\"l2\"}} 0.7 {}\nlatency_seconds_count 2\nlatency_seconds_sum 0.75\n# TYPE temp gauge\ntemp 3\n# TYPE build info\nbuild_info{{version=\"1\"}} 1\n{only_b}# EOF\n",
        t + 0.75
    )
}

/// Scrapes of `job` so far, by `up`'s samples in the last minute.
fn scrapes(addr: SocketAddr, job: &str) -> f64 {
    vector(
        addr,
        &format!("count_over_time(up{{job=\"{job}\"}}[1m])"),
        "",
    )
    .values()
    .next()
    .and_then(|v| v.parse::<f64>().ok())
    .unwrap_or(0.0)
}

/// Waits until every server scraped every job `more` more times than `since`.
fn wait_scrapes(servers: &[SocketAddr], jobs: &[&str], more: f64) {
    let base: Vec<Vec<f64>> = servers
        .iter()
        .map(|a| jobs.iter().map(|j| scrapes(*a, j)).collect())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = servers.iter().zip(&base).all(|(a, b)| {
            jobs.iter()
                .zip(b)
                .all(|(j, before)| scrapes(*a, j) >= before + more)
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "scrapes did not happen in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A metadata or exemplars answer in a comparable form: errors whole (type and message),
/// data with list order removed where Prometheus' follows Go map iteration.
fn comparable(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    if v.get("status").and_then(Value::as_str) == Some("error") {
        return v;
    }
    let mut data = v.get("data").cloned().unwrap_or(Value::Null);
    if let Some(families) = data.as_object_mut() {
        for list in families.values_mut() {
            if let Some(l) = list.as_array_mut() {
                l.sort_by_key(|x| x.to_string());
            }
        }
    }
    if let Some(list) = data.as_array_mut() {
        list.sort_by_key(|x| x.to_string());
    }
    data
}

/// Both servers scrape the same two OpenMetrics targets (HELP with escapes, UNIT, five types,
/// exemplars with fixed timestamps) with exemplar storage on; `/api/v1/metadata`,
/// `/api/v1/targets/metadata` and `/api/v1/query_exemplars` answer the same for a set of
/// parameters, errors included (status and message).
///
/// Intended differences, not compared: `limit_per_metric` (Prometheus 2.42 ignores it; 3.x and
/// Meridian apply it: checked against Meridian alone), which families a `limit` keeps and
/// which target `targets/metadata?limit=` starts with (Go map order in Prometheus, sorted in
/// Meridian: only counts are compared), the order of entries (compared as sets), and the
/// error text for a `match_target` that parses but is not a selector.
#[test]
fn metadata_and_exemplar_endpoints_match_the_real_prometheus() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let (pdir, mdir) = (dir.path().join("p"), dir.path().join("m"));
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::create_dir_all(&mdir).unwrap();
    let body_a = Arc::new(Mutex::new(om_payload("a", 1)));
    let body_b = Arc::new(Mutex::new(om_payload("b", 1)));
    let (ea, eb) = (
        start_om_exporter(body_a.clone()),
        start_om_exporter(body_b.clone()),
    );
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['{ea}']\n  - job_name: b\n    static_configs:\n      - targets: ['{eb}']\n        labels:\n          team: x\n"
    );
    let flags = ["--enable-feature=exemplar-storage"];
    let prom = start_prometheus_with(&pdir, &config, &flags);
    let meridian = start_meridian_with(&mdir, &config, &flags);
    let both = [prom.addr, meridian.addr];
    wait_scrapes(&both, &["a", "b"], 2.0);
    *body_a.lock().unwrap() = om_payload("a", 2);
    *body_b.lock().unwrap() = om_payload("b", 2);
    wait_scrapes(&both, &["a", "b"], 2.0);

    let exact = [
        "/api/v1/metadata".to_string(),
        "/api/v1/metadata?metric=http_requests".into(),
        "/api/v1/metadata?metric=nope".into(),
        "/api/v1/metadata?limit=0".into(),
        "/api/v1/metadata?limit=-1".into(),
        "/api/v1/metadata?limit=x".into(),
        "/api/v1/metadata?limit=%201".into(),
        "/api/v1/targets/metadata".into(),
        "/api/v1/targets/metadata?metric=latency_seconds".into(),
        format!(
            "/api/v1/targets/metadata?match_target={}",
            encode("{job=\"a\"}")
        ),
        format!(
            "/api/v1/targets/metadata?match_target={}&metric=http_requests",
            encode("{team=~\"x|y\"}")
        ),
        format!("/api/v1/targets/metadata?match_target={}", encode("up")),
        "/api/v1/targets/metadata?limit=0".into(),
        "/api/v1/targets/metadata?limit=abc".into(),
        format!("/api/v1/targets/metadata?match_target={}", encode("{")),
        format!(
            "/api/v1/query_exemplars?query={}",
            encode("http_requests_total")
        ),
        format!(
            "/api/v1/query_exemplars?query={}&start={}",
            encode("latency_seconds_bucket"),
            EXEMPLAR_T0 + 0.2
        ),
        format!(
            "/api/v1/query_exemplars?query={}&end={}",
            encode("sum(rate(http_requests_total[5m])) or latency_seconds_bucket{job=\"b\"}"),
            EXEMPLAR_T0 + 5.0
        ),
        format!(
            "/api/v1/query_exemplars?query={}&start=0&end=1",
            encode("http_requests_total")
        ),
        format!("/api/v1/query_exemplars?query={}", encode("temp")),
        format!("/api/v1/query_exemplars?query={}", encode("{")),
        "/api/v1/query_exemplars?query=".into(),
        format!(
            "/api/v1/query_exemplars?query={}&start=5&end=2",
            encode("temp")
        ),
        format!(
            "/api/v1/query_exemplars?query={}&start=soon",
            encode("temp")
        ),
    ];
    for path in &exact {
        let (pc, pb) = http(prom.addr, "GET", path, &[], b"");
        let (mc, mb) = http(meridian.addr, "GET", path, &[], b"");
        assert_eq!(
            mc,
            pc,
            "{path}: prometheus {} / meridian {}",
            String::from_utf8_lossy(&pb),
            String::from_utf8_lossy(&mb)
        );
        assert_eq!(comparable(&mb), comparable(&pb), "{path}");
    }
    // The exemplars both hold: phase 1 and phase 2 of each target, not the older one.
    let (_, body) = http(
        meridian.addr,
        "GET",
        &format!(
            "/api/v1/query_exemplars?query={}",
            encode("http_requests_total")
        ),
        &[],
        b"",
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut traces: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exemplars"].as_array().unwrap().clone())
        .map(|e| e["labels"]["trace_id"].as_str().unwrap().to_string())
        .collect();
    traces.sort();
    assert_eq!(traces, ["a1", "a2", "b1", "b2"]);
    let (_, body) = http(
        meridian.addr,
        "GET",
        &format!(
            "/api/v1/query_exemplars?query={}",
            encode("latency_seconds_bucket")
        ),
        &[],
        b"",
    );
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("old") && text.contains("l1"), "{text}");
    let m = http(meridian.addr, "GET", "/metrics", &[], b"").1;
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.lines().any(
            |l| l.starts_with("prometheus_target_scrapes_exemplar_out_of_order_total ")
                && !l.ends_with(" 0")
        ),
        "out-of-order exemplars counted"
    );
    // No selector: both answer 204.
    let path = format!("/api/v1/query_exemplars?query={}", encode("1 + 1"));
    assert_eq!(http(prom.addr, "GET", &path, &[], b"").0, 204);
    assert_eq!(http(meridian.addr, "GET", &path, &[], b"").0, 204);
    // Random picks in Prometheus: compare sizes only.
    for (path, size) in [
        ("/api/v1/metadata?limit=2", 2),
        ("/api/v1/metadata?limit=1", 1),
    ] {
        for addr in both {
            let (_, b) = http(addr, "GET", path, &[], b"");
            let v: Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["data"].as_object().map(|o| o.len()), Some(size), "{path}");
        }
    }
    // Meridian follows 3.x: limit_per_metric keeps one entry of http_requests.
    let (_, b) = http(
        meridian.addr,
        "GET",
        "/api/v1/metadata?limit_per_metric=1",
        &[],
        b"",
    );
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["data"]["http_requests"].as_array().map(Vec::len), Some(1));
    println!(
        "metadata and exemplars: {} requests answered identically by Prometheus and Meridian",
        exact.len()
    );
}

/// `query_exemplars` of `query` over everything, comparable.
fn exemplars_of(addr: SocketAddr, query: &str) -> Value {
    let path = format!("/api/v1/query_exemplars?query={}", encode(query));
    let (code, body) = http(addr, "GET", &path, &[], b"");
    assert_eq!(code, 200, "{addr}: {}", String::from_utf8_lossy(&body));
    comparable(&body)
}

/// A cluster Meridian scrapes OpenMetrics targets with exemplars and remote-writes them with
/// `send_exemplars` and metadata to the real Prometheus (1.0), to a Meridian (1.0) and to a
/// Meridian (2.0): every receiver ends up with the sender's exemplars (`query_exemplars`
/// answers equal); the Meridian receivers also show the sender's metric metadata in
/// `/api/v1/metadata` (Prometheus 2.42 ignores remote-written metadata: its answer stays
/// empty). Then sender and receivers are killed and restarted on their data: WAL replay brings
/// every exemplar back.
#[test]
fn exemplars_and_metadata_are_remote_written_to_prometheus_and_meridian() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let sub = |n: &str| {
        let d = dir.path().join(n);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (pdir, m1dir, m2dir, sdir) = (sub("prom"), sub("m1"), sub("m2"), sub("sender"));
    let flags = ["--enable-feature=exemplar-storage"];
    let (paddr, m1addr, m2addr, saddr) = (free_addr(), free_addr(), free_addr(), free_addr());
    let prom = start_prometheus_at(&pdir, IDLE_CONFIG, paddr, &flags);
    let start_m1 = || start_meridian_at(&m1dir, IDLE_CONFIG, m1addr, &flags);
    let start_m2 = || start_meridian_at(&m2dir, IDLE_CONFIG, m2addr, &flags);
    let (m1, m2) = (start_m1(), start_m2());
    let body_a = Arc::new(Mutex::new(om_payload("a", 1)));
    let body_b = Arc::new(Mutex::new(om_payload("b", 1)));
    let (ea, eb) = (
        start_om_exporter(body_a.clone()),
        start_om_exporter(body_b.clone()),
    );
    let queue = "    send_exemplars: true\n    queue_config:\n      batch_send_deadline: 100ms\n      min_backoff: 50ms\n      max_backoff: 200ms\n    metadata_config:\n      send_interval: 500ms\n";
    let sender_config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['{ea}']\n  - job_name: b\n    static_configs:\n      - targets: ['{eb}']\nremote_write:\n  - url: http://{paddr}/api/v1/write\n{queue}  - url: http://{m1addr}/api/v1/write\n{queue}  - url: http://{m2addr}/api/v1/write\n    protobuf_message: io.prometheus.write.v2.Request\n{queue}"
    );
    let start_sender = || start_meridian_at(&sdir, &sender_config, saddr, &flags);
    let sender = start_sender();
    wait_scrapes(&[sender.addr], &["a", "b"], 2.0);
    *body_a.lock().unwrap() = om_payload("a", 2);
    *body_b.lock().unwrap() = om_payload("b", 2);
    wait_scrapes(&[sender.addr], &["a", "b"], 2.0);

    let query = r#"{__name__=~"http_requests_total|latency_seconds_bucket"}"#;
    let want = exemplars_of(sender.addr, query);
    assert_eq!(
        want.as_array().map(Vec::len),
        Some(6),
        "six series with exemplars at the sender: {want}"
    );
    let receivers = [prom.addr, m1.addr, m2.addr];
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in receivers {
        while exemplars_of(r, query) != want {
            assert!(
                Instant::now() < deadline,
                "{r} never got the exemplars:\n  sender:   {want}\n  receiver: {}",
                exemplars_of(r, query)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Metadata: the Meridian receivers show the sender's families (1.0 by metadata requests,
    // 2.0 from series metadata); Prometheus 2.42 keeps none.
    let metadata = |addr| comparable(&http(addr, "GET", "/api/v1/metadata", &[], b"").1);
    let want_meta = metadata(sender.addr);
    assert_eq!(
        want_meta.as_object().map(|o| o.len()),
        Some(5),
        "{want_meta}"
    );
    for r in [m1.addr, m2.addr] {
        while metadata(r) != want_meta {
            assert!(
                Instant::now() < deadline,
                "{r} never got the metadata:\n  sender:   {want_meta}\n  receiver: {}",
                metadata(r)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(metadata(prom.addr), serde_json::json!({}));
    let (_, m) = http(sender.addr, "GET", "/metrics", &[], b"");
    let m = String::from_utf8_lossy(&m);
    for name in [
        "prometheus_remote_storage_exemplars_total",
        "prometheus_remote_storage_metadata_total",
        "prometheus_tsdb_exemplar_exemplars_appended_total",
    ] {
        assert!(
            m.lines().any(|l| l.starts_with(name) && !l.ends_with(" 0")),
            "{name} not counted:\n{m}"
        );
    }

    // Killed (SIGKILL) and restarted: WAL replay restores the exemplars on both sides.
    drop(sender);
    drop(m1);
    drop(m2);
    let (sender, m1, m2) = (start_sender(), start_m1(), start_m2());
    for r in [sender.addr, m1.addr, m2.addr] {
        assert_eq!(exemplars_of(r, query), want, "{r} after a restart");
    }
    println!(
        "exemplars of {} series and metadata of {} families arrived at Prometheus and two Meridians, and survived restarts",
        want.as_array().map_or(0, Vec::len),
        want_meta.as_object().map_or(0, |o| o.len())
    );
}

/// Exemplar storage is on with `--enable-feature=exemplar-storage` or with `storage.exemplars`
/// in the configuration (Meridian's rule; Prometheus needs the flag), off otherwise; a reload
/// resizes it.
#[test]
fn meridian_exemplar_storage_follows_the_flag_or_the_config() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let body = Arc::new(Mutex::new(om_payload("a", 1)));
    let exporter = start_om_exporter(body.clone());
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['{exporter}']\n"
    );
    let count = |addr| {
        exemplars_of(addr, r#"{job="a"}"#)
            .as_array()
            .map_or(0, |s| {
                s.iter()
                    .map(|x| x["exemplars"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
    };
    let sub = |n: &str| {
        let d = dir.path().join(n);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let off = start_meridian(&sub("off"), &scrape);
    let configured = start_meridian_with(
        &sub("configured"),
        &format!("{scrape}storage:\n  exemplars:\n    max_exemplars: 2\n"),
        &["--web.enable-lifecycle"],
    );
    wait_scrapes(&[off.addr, configured.addr], &["a"], 2.0);
    assert_eq!(count(off.addr), 0, "no flag, no config: nothing stored");
    assert_eq!(
        count(configured.addr),
        2,
        "configured: capped at max_exemplars"
    );
    let (_, m) = http(configured.addr, "GET", "/metrics", &[], b"");
    assert!(
        String::from_utf8_lossy(&m)
            .lines()
            .any(|l| l == "prometheus_tsdb_exemplar_max_exemplars 2"),
        "max_exemplars gauge"
    );
    // A reload to a larger size keeps what is stored and stores more.
    std::fs::write(
        dir.path().join("configured").join("meridian.yml"),
        format!("{scrape}storage:\n  exemplars:\n    max_exemplars: 100\n"),
    )
    .unwrap();
    let (code, _) = http(configured.addr, "POST", "/-/reload", &[], b"");
    assert_eq!(code, 200);
    *body.lock().unwrap() = om_payload("a", 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(configured.addr) < 3 {
        assert!(
            Instant::now() < deadline,
            "no more exemplars after the resize"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
