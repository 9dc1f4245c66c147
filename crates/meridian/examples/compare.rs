//! Side-by-side comparison of Meridian and the real Prometheus on the same workload.
//!
//! First both servers scrape the same synthetic targets (served by this tool) for a minute;
//! then fresh instances of both receive exactly the same remote-write requests, answer the same queries and serve the same `/federate` request. The
//! tool reads each server's CPU time and resident memory from `/proc` and prints, per measure,
//! both figures and the ratio Meridian / Prometheus (below 1 means Meridian is cheaper/faster).
//!
//! Absolute numbers on a shared machine are noise; the ratios from one run are what to quote.
//!
//! ```text
//! scripts/compare [--series 100000] [--samples 40] [--runs 5]
//!                 [--targets 50] [--series-per-target 1000] [--scrape-seconds 60]
//! ```
//! (which runs `cargo run --release -p meridian --example compare -- ...`). Needs the
//! `prometheus` command (Debian package `prometheus`).

#![allow(clippy::unwrap_used)] // A measuring tool: a failed unwrap is a failed run.

use remote::proto::{Label, Sample, TimeSeries, WriteRequest};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    series: usize,
    samples: usize,
    runs: usize,
    meridian: PathBuf,
    targets: usize,
    series_per_target: usize,
    scrape_seconds: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        series: 100_000,
        samples: 40,
        runs: 5,
        meridian: default_meridian(),
        targets: 50,
        series_per_target: 1000,
        scrape_seconds: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--series" => a.series = value().parse().expect("--series: a number"),
            "--samples" => a.samples = value().parse().expect("--samples: a number"),
            "--runs" => a.runs = value().parse().expect("--runs: a number"),
            "--meridian" => a.meridian = PathBuf::from(value()),
            "--targets" => a.targets = value().parse().expect("--targets: a number"),
            "--series-per-target" => {
                a.series_per_target = value().parse().expect("--series-per-target: a number")
            }
            "--scrape-seconds" => {
                a.scrape_seconds = value().parse().expect("--scrape-seconds: a number")
            }
            other => panic!(
                "unknown flag {other} (known: --series --samples --runs --meridian --targets \
                 --series-per-target --scrape-seconds)"
            ),
        }
    }
    a
}

/// The `meridian` binary built beside this example (target/<profile>/meridian).
fn default_meridian() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("meridian")
}

struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(name: &'static str, program: &Path, dir: &Path, config: &str) -> Server {
        let cfg = dir.join(format!("{name}.yml"));
        std::fs::write(&cfg, config).unwrap();
        let data = dir.join(format!("{name}-data"));
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(program)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let s = Server {
            name,
            child,
            addr,
            data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(addr, "GET", "/-/ready", &[], b"").0 != 200 {
            assert!(Instant::now() < deadline, "{name} did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// User + system CPU seconds the process has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / clock_ticks_per_second()
    }

    /// Resident memory in bytes.
    fn rss_bytes(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024.0
    }

    fn disk_bytes(&self) -> u64 {
        dir_size(&self.data)
    }
}

/// Resident memory of process `pid` in bytes (0 when it cannot be read).
fn rss_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Disk space a data directory takes: allocated blocks, not file lengths. Meridian's
/// head-chunk files are created at their full 128 MiB length and filled as chunks are
/// written (sparse until then), so their length says nothing about the space used.
fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Minimal HTTP/1.1 request (one connection per request): status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, Vec::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = b.get(nl + 4 + size..).unwrap_or(&[]);
    }
    out
}

fn percent_encode(s: &str) -> String {
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

/// The label sets of the workload: a node_exporter-and-application-like mix of counters,
/// gauges and histogram buckets spread over jobs and instances.
fn workload_series(n: usize) -> Vec<Vec<Label>> {
    let label = |name: &str, value: String| Label {
        name: name.into(),
        value,
    };
    let kinds: [(&str, &[&str]); 4] = [
        ("http_requests_total", &["GET", "POST", "PUT", "DELETE"]),
        (
            "http_request_duration_seconds_bucket",
            &["0.05", "0.1", "0.5", "1", "+Inf"],
        ),
        ("process_resident_memory_bytes", &[""]),
        (
            "node_cpu_seconds_total",
            &["idle", "user", "system", "iowait"],
        ),
    ];
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    'outer: for instance in 0.. {
        for (name, variants) in kinds {
            for v in variants {
                if out.len() == n {
                    break 'outer;
                }
                let mut l = vec![
                    label("__name__", name.to_string()),
                    label(
                        "instance",
                        format!(
                            "10.{}.{}.{}:9100",
                            instance / 65536 % 256,
                            instance / 256 % 256,
                            instance % 256
                        ),
                    ),
                    label("job", format!("job-{}", instance % 20)),
                ];
                match name {
                    "http_requests_total" => l.push(label("method", v.to_string())),
                    "http_request_duration_seconds_bucket" => l.push(label("le", v.to_string())),
                    "node_cpu_seconds_total" => l.push(label("mode", v.to_string())),
                    _ => {}
                }
                l.sort_by(|a, b| a.name.cmp(&b.name));
                out.push(l);
                i += 1;
            }
        }
    }
    debug_assert_eq!(i, n);
    out
}

/// Remote-write request bodies carrying `samples` samples of every series, oldest first, in
/// requests of at most `per_request` samples (the way a remote-write sender batches).
fn workload_requests(series: &[Vec<Label>], samples: usize, end_ms: i64) -> Vec<Vec<u8>> {
    const STEP_MS: i64 = 15_000;
    const PER_REQUEST: usize = 2000;
    let start = end_ms - (samples as i64 - 1) * STEP_MS;
    let mut out = Vec::new();
    for k in 0..samples {
        let t = start + k as i64 * STEP_MS;
        for chunk in series.chunks(PER_REQUEST) {
            let timeseries = chunk
                .iter()
                .enumerate()
                .map(|(j, labels)| {
                    let value = if labels[0].value.ends_with("_bytes") {
                        1e8 + ((j * 7 + k * 13) % 1000) as f64 * 4096.0
                    } else {
                        (k * (j % 17 + 1)) as f64
                    };
                    TimeSeries {
                        labels: labels.clone(),
                        samples: vec![Sample {
                            value,
                            timestamp: t,
                        }],
                        ..Default::default()
                    }
                })
                .collect();
            out.push(remote::encode_write_request(&WriteRequest {
                timeseries,
                metadata: vec![],
            }));
        }
    }
    out
}

fn send_all(server: &Server, requests: &[Vec<u8>]) {
    for body in requests {
        let (code, resp) = http(
            server.addr,
            "POST",
            "/api/v1/write",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            body,
        );
        assert!(
            code == 204 || code == 200,
            "{} rejected a write: {code} {}",
            server.name,
            String::from_utf8_lossy(&resp)
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Serves a synthetic exporter on `listener`: `series` lines of counters and gauges whose
/// values move at every request, over HTTP/1.1 keep-alive connections (as scrapers use them).
fn serve_exporter(listener: TcpListener, target: usize, series: usize) {
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let requests = requests.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 4096];
            loop {
                // Read one request head (scrapes have no body).
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.clear();
                let k = requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut body = String::with_capacity(series * 80);
                let mut family = "";
                for i in 0..series {
                    let (name, kind) = match i % 4 {
                        0 | 1 => ("app_requests_total", "counter"),
                        2 => ("app_latency_seconds_bucket", "counter"),
                        _ => ("app_memory_bytes", "gauge"),
                    };
                    if name != family && i < 4 {
                        body.push_str(&format!("# TYPE {name} {kind}\n"));
                    }
                    family = name;
                    let value = match kind {
                        "gauge" => {
                            (1e6 + ((i as u64 * 31 + k * 7) % 5000) as f64 * 512.0).to_string()
                        }
                        _ => (k * (i as u64 % 13 + 1)).to_string(),
                    };
                    body.push_str(&format!(
                        "{name}{{pod=\"pod-{target}\",series=\"s{i}\",path=\"/api/v1/items\"}} {value}\n"
                    ));
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if conn.write_all(head.as_bytes()).is_err()
                    || conn.write_all(body.as_bytes()).is_err()
                {
                    return;
                }
            }
        });
    }
}

/// Both servers scrape the same synthetic targets every 5 s for `scrape_seconds`; compares
/// CPU per scraped sample, memory per series and WAL bytes per sample.
fn scrape_phase(args: &Args, add: &mut dyn FnMut(&str, f64, f64, &'static str)) {
    let tmp = tempfile::tempdir().unwrap();
    let mut targets = Vec::new();
    for t in 0..args.targets {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        targets.push(format!("'{}'", l.local_addr().unwrap()));
        let n = args.series_per_target;
        std::thread::spawn(move || serve_exporter(l, t, n));
    }
    let config = format!(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let meridian = Server::start("meridian-scrape", &args.meridian, tmp.path(), &config);
    let prometheus = Server::start(
        "prometheus-scrape",
        Path::new("prometheus"),
        tmp.path(),
        &config,
    );
    let servers = [&meridian, &prometheus];
    // Baselines after the first round of scrapes (start-up and first-scrape costs excluded).
    std::thread::sleep(Duration::from_secs(7));
    let scraped = |s: &Server| -> f64 {
        let (_, body) = http(
            s.addr,
            "GET",
            &format!(
                "/api/v1/query?query={}",
                percent_encode("sum(sum_over_time(scrape_samples_scraped[1h]))")
            ),
            &[],
            b"",
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0)
    };
    let before: Vec<(f64, f64)> = servers
        .iter()
        .map(|s| (s.cpu_seconds(), scraped(s)))
        .collect();
    eprintln!(
        "scrape phase: {} targets x {} series, {} s",
        args.targets, args.series_per_target, args.scrape_seconds
    );
    std::thread::sleep(Duration::from_secs(args.scrape_seconds));
    let after: Vec<(f64, f64)> = servers
        .iter()
        .map(|s| (s.cpu_seconds(), scraped(s)))
        .collect();
    let per_sample: Vec<f64> = (0..2)
        .map(|i| {
            let samples = after[i].1 - before[i].1;
            eprintln!(
                "{}: {samples} samples scraped, {:.2} s CPU",
                servers[i].name,
                after[i].0 - before[i].0
            );
            (after[i].0 - before[i].0) / samples.max(1.0) * 1e6
        })
        .collect();
    add("scrape CPU per sample", per_sample[0], per_sample[1], "µs");
    let total_series = (args.targets * (args.series_per_target + 5)) as f64;
    add(
        "scrape: RSS per series",
        meridian.rss_bytes() / total_series,
        prometheus.rss_bytes() / total_series,
        "bytes",
    );
    add(
        "scrape: data directory bytes per sample (WAL)",
        meridian.disk_bytes() as f64 / scraped(&meridian).max(1.0),
        prometheus.disk_bytes() as f64 / scraped(&prometheus).max(1.0),
        "bytes",
    );
}

struct Row {
    what: String,
    meridian: f64,
    prometheus: f64,
    unit: &'static str,
}

fn main() {
    let args = parse_args();
    assert!(
        args.meridian.exists(),
        "{} not found (build it: cargo build --release -p meridian)",
        args.meridian.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let series = workload_series(args.series);
    let now = model::sample::now_ms() / 15_000 * 15_000;
    let requests = workload_requests(&series, args.samples, now);
    let total_samples = (args.series * args.samples) as f64;
    eprintln!(
        "workload: {} series x {} samples = {} samples in {} requests ({} MiB snappy)",
        args.series,
        args.samples,
        total_samples,
        requests.len(),
        requests.iter().map(Vec::len).sum::<usize>() >> 20
    );

    let mut rows: Vec<Row> = Vec::new();
    let mut add = |what: &str, m: f64, p: f64, unit: &'static str| {
        rows.push(Row {
            what: what.to_string(),
            meridian: m,
            prometheus: p,
            unit,
        })
    };

    if args.scrape_seconds > 0 {
        scrape_phase(&args, &mut add);
    }
    let idle = "global:\n  scrape_interval: 1h\n";
    let meridian = Server::start("meridian", &args.meridian, tmp.path(), idle);
    let prometheus = Server::start("prometheus", Path::new("prometheus"), tmp.path(), idle);
    // Let start-up settle before taking the baselines.
    std::thread::sleep(Duration::from_secs(2));
    let servers = [&meridian, &prometheus];
    let mut ingest = Vec::new();
    for s in servers {
        let (cpu0, rss0) = (s.cpu_seconds(), s.rss_bytes());
        let t0 = Instant::now();
        send_all(s, &requests);
        let wall = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(1));
        let cpu = s.cpu_seconds() - cpu0;
        let rss = s.rss_bytes();
        eprintln!(
            "{}: ingest {wall:.1} s wall, {cpu:.1} s CPU, RSS {:.0} MiB (baseline {:.0} MiB)",
            s.name,
            rss / 1048576.0,
            rss0 / 1048576.0
        );
        ingest.push((cpu, rss, rss - rss0, wall));
    }
    add(
        "remote-write ingest CPU per sample",
        ingest[0].0 / total_samples * 1e6,
        ingest[1].0 / total_samples * 1e6,
        "µs",
    );
    add(
        "ingest wall time per sample",
        ingest[0].3 / total_samples * 1e6,
        ingest[1].3 / total_samples * 1e6,
        "µs",
    );
    add(
        "RSS per series (total RSS / series)",
        ingest[0].1 / args.series as f64,
        ingest[1].1 / args.series as f64,
        "bytes",
    );
    add(
        "RSS growth per series (during ingest)",
        ingest[0].2 / args.series as f64,
        ingest[1].2 / args.series as f64,
        "bytes",
    );
    add(
        "data directory bytes per sample (WAL, head)",
        meridian.disk_bytes() as f64 / total_samples,
        prometheus.disk_bytes() as f64 / total_samples,
        "bytes",
    );

    let t_eval = format!("{:.3}", now as f64 / 1000.0);
    let queries: [(&str, &str); 8] = [
        (
            "one series",
            r#"http_requests_total{instance="10.0.0.7:9100",method="GET"}"#,
        ),
        (
            "sum by job (rate)",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        (
            "rate of everything",
            r#"count(rate({__name__=~"http_requests_total|node_cpu_seconds_total"}[5m]))"#,
        ),
        ("topk", "topk(5, rate(node_cpu_seconds_total[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        (
            "regex selector",
            r#"count(process_resident_memory_bytes{job=~"job-1.*"})"#,
        ),
        (
            "binary join",
            "process_resident_memory_bytes / on (instance) group_left sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        ),
        (
            "count by instance",
            "count by (job) (count by (instance, job) (node_cpu_seconds_total))",
        ),
    ];
    for (what, q) in queries {
        let path = format!("/api/v1/query?query={}&time={t_eval}", percent_encode(q));
        let mut lat = [0.0, 0.0];
        for (i, s) in servers.iter().enumerate() {
            let (code, body) = http(s.addr, "GET", &path, &[], b"");
            assert_eq!(
                code,
                200,
                "{} {q}: {}",
                s.name,
                String::from_utf8_lossy(&body)
            );
            let times = (0..args.runs)
                .map(|_| {
                    let t0 = Instant::now();
                    http(s.addr, "GET", &path, &[], b"");
                    t0.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            lat[i] = median(times);
        }
        add(&format!("query: {what}"), lat[0], lat[1], "ms");
    }
    let range = format!(
        "/api/v1/query_range?query={}&start={:.3}&end={t_eval}&step=15",
        percent_encode("sum by (job) (rate(http_requests_total[1m]))"),
        (now - (args.samples as i64 - 1) * 15_000) as f64 / 1000.0
    );
    let mut lat = [0.0, 0.0];
    for (i, s) in servers.iter().enumerate() {
        lat[i] = median(
            (0..args.runs)
                .map(|_| {
                    let t0 = Instant::now();
                    let (code, _) = http(s.addr, "GET", &range, &[], b"");
                    assert_eq!(code, 200);
                    t0.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        );
    }
    add(
        "query_range: sum by job (rate), 15 s step",
        lat[0],
        lat[1],
        "ms",
    );

    let federate = format!(
        "/federate?match[]={}",
        percent_encode(r#"{__name__=~".+"}"#)
    );
    let mut fed = [(0.0, 0.0, 0usize); 2];
    let mut fed_peak = [0.0f64; 2];
    for (i, s) in servers.iter().enumerate() {
        // Peak resident memory while federating, sampled every 10 ms, above the level before.
        let pid = s.child.id();
        let before = s.rss_bytes();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peak = 0.0f64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(rss_of(pid));
                    std::thread::sleep(Duration::from_millis(10));
                }
                peak
            })
        };
        let cpu0 = s.cpu_seconds();
        let times = (0..args.runs.min(3))
            .map(|_| {
                let t0 = Instant::now();
                let (code, body) = http(
                    s.addr,
                    "GET",
                    &federate,
                    &[("Accept-Encoding", "gzip")],
                    b"",
                );
                assert_eq!(code, 200);
                fed[i].2 = body.len();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        fed[i].0 = median(times);
        fed[i].1 = (s.cpu_seconds() - cpu0) / args.runs.min(3) as f64;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        fed_peak[i] = (sampler.join().unwrap_or(0.0) - before).max(0.0);
    }
    add(
        "federate all series: peak RSS growth per series",
        fed_peak[0] / args.series as f64,
        fed_peak[1] / args.series as f64,
        "bytes",
    );
    add(
        "federate all series (gzip): latency",
        fed[0].0,
        fed[1].0,
        "ms",
    );
    add(
        "federate all series: CPU per series",
        fed[0].1 / args.series as f64 * 1e6,
        fed[1].1 / args.series as f64 * 1e6,
        "µs",
    );
    add(
        "federate all series: gzip bytes per series",
        fed[0].2 as f64 / args.series as f64,
        fed[1].2 as f64 / args.series as f64,
        "bytes",
    );

    let version = Command::new("prometheus")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "Meridian vs {version}: {} series x {} samples, median of {} runs",
        args.series, args.samples, args.runs
    );
    println!(
        "{:<46} {:>16} {:>16} {:>7}",
        "measure", "meridian", "prometheus", "ratio"
    );
    for r in rows {
        println!(
            "{:<46} {:>10.3} {:<5} {:>10.3} {:<5} {:>7.2}",
            r.what,
            r.meridian,
            r.unit,
            r.prometheus,
            r.unit,
            r.meridian / r.prometheus
        );
    }
}
