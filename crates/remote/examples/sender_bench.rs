//! Remote-write sender benchmark: CPU seconds per million samples sent, and memory per
//! pending sample; side by side with the real Prometheus (2.42) sending the same WAL to the
//! same receiver (VictoriaMetrics, a separate process on 127.0.0.1).
//!
//! `cargo run --release -p remote --example sender_bench -- [series] [scrapes]`
//! (defaults 10000 × 200 = 2 M samples). Needs `victoria-metrics` and `prometheus` on PATH.
//!
//! Method: a TSDB in a temporary directory gets the samples first (not measured). Meridian:
//! the process' utime+stime (from /proc/self/stat) from starting the queue until every
//! sample is acknowledged. Prometheus only sends what it ingests while running (its WAL
//! watcher skips samples records of segments that existed at start), so the same samples
//! are pushed into a Prometheus with the remote-write receiver on and remote_write to a
//! VictoriaMetrics: its CPU until `prometheus_remote_storage_samples_total` reaches the
//! total, minus the CPU of a second Prometheus receiving the same push without remote_write,
//! over the same wall time. Timestamps are in the near future (Prometheus' watcher skips
//! samples older than its start).
//! Memory: the receiver is unreachable, one shard with a large capacity fills up; RSS growth
//! divided by the samples pending.

#![allow(clippy::unwrap_used)] // A benchmark: a failed unwrap is a failed run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use model::labels::Labels;
use storage::Appendable;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn clk_tck() -> f64 {
    // Linux reports times in USER_HZ, 100 on every mainstream configuration.
    100.0
}

/// utime+stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (ut + st) / clk_tck()
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(String::from_utf8_lossy(&raw[split + 4..]).to_string())
}

fn wait_http(addr: SocketAddr, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if get(addr, path).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr}{path} not ready");
}

fn start_vm(dir: &Path) -> (Proc, SocketAddr) {
    let addr = free_addr();
    let child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr={addr}"))
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("victoria-metrics");
    let p = Proc(child);
    wait_http(addr, "/health");
    (p, addr)
}

fn write_wal(dir: &Path, series: usize, scrapes: usize, start: i64) {
    let mut opts = tsdb::DbOptions::default();
    opts.head.wal_segment_size = 32 << 20;
    let db = tsdb::Db::open(dir, opts).unwrap();
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "bench_metric".to_owned()),
                ("instance", format!("host-{}", i % 100)),
                ("series", i.to_string()),
            ])
            .unwrap()
        })
        .collect();
    for s in 0..scrapes {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            app.append(None, l, start + s as i64 * 1000, (i * s) as f64 * 0.25)
                .unwrap();
        }
        app.commit().unwrap();
    }
    db.close().unwrap();
}

fn prometheus_metric(addr: SocketAddr, name: &str) -> f64 {
    get(addr, "/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Prometheus with the remote-write receiver on, optionally itself remote-writing to
/// `forward`. Returns the process, its address and PID.
fn start_prometheus(dir: &Path, forward: Option<SocketAddr>) -> (Proc, SocketAddr, String) {
    std::fs::create_dir_all(dir).unwrap();
    let mut cfg = String::from("global:\n  scrape_interval: 1h\n");
    if let Some(vm) = forward {
        cfg.push_str(&format!(
            "remote_write:\n  - url: http://{vm}/api/v1/write\n"
        ));
    }
    std::fs::write(dir.join("p.yml"), cfg).unwrap();
    let addr = free_addr();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("p.yml").display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus");
    let pid = child.id().to_string();
    let p = Proc(child);
    wait_http(addr, "/-/ready");
    (p, addr, pid)
}

/// Pushes the whole WAL of `tsdb_dir` to `url` with a queue of its own (a fresh position at
/// the WAL's start), returning when everything is acknowledged.
async fn push_all(tsdb_dir: &Path, url: &str, total: u64) {
    let yaml = format!("remote_write:\n  - url: {url}\n    name: push\n");
    let cfg = config::Config::from_str(&yaml, "p.yml").unwrap();
    let qdir = tsdb_dir.join("remote").join(remote::queue_id("push", url));
    let _ = std::fs::remove_dir_all(&qdir);
    remote::position::PositionStore::open(&qdir)
        .unwrap()
        .save(&remote::position::Position::default())
        .unwrap();
    let rs =
        remote::RemoteStorage::new(remote::RemoteWriteOptions::new(tsdb_dir, "Meridian/bench"));
    rs.apply_config(
        &cfg.remote_write,
        &BTreeMap::new(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    let m = rs.queue_metrics()[0].clone();
    while m.samples_sent.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rs.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(10_000);
    let scrapes = args.get(1).copied().unwrap_or(200);
    let total = (series * scrapes) as u64;
    let tmp = tempfile::tempdir().unwrap();
    // Timestamps in the near future so that Prometheus' watcher (which skips samples older
    // than its start) sends them too.
    let start = now_ms() + 120_000;
    let tsdb_dir = tmp.path().join("meridian");
    write_wal(&tsdb_dir, series, scrapes, start);
    println!("samples: {total} ({series} series × {scrapes} scrapes)");

    // --- Meridian
    let (vm, vm_addr) = start_vm(&tmp.path().join("vm1"));
    let yaml = format!("remote_write:\n  - url: http://{vm_addr}/api/v1/write\n");
    let cfg = config::Config::from_str(&yaml, "p.yml").unwrap();
    let rs =
        remote::RemoteStorage::new(remote::RemoteWriteOptions::new(&tsdb_dir, "Meridian/bench"));
    // A fresh queue starts at the WAL's end: give it a saved position at the start.
    let qdir = tsdb_dir.join("remote").join(remote::queue_id(
        "",
        cfg.remote_write[0].url.expose().as_ref(),
    ));
    remote::position::PositionStore::open(&qdir)
        .unwrap()
        .save(&remote::position::Position::default())
        .unwrap();
    let cpu0 = cpu_seconds("self");
    let t0 = Instant::now();
    rs.apply_config(
        &cfg.remote_write,
        &BTreeMap::new(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    let m = rs.queue_metrics()[0].clone();
    while m.samples_sent.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = t0.elapsed();
    let cpu = cpu_seconds("self") - cpu0;
    let shards = m.shards.load(Ordering::Relaxed);
    rs.stop().await;
    drop(vm);
    let per_million_meridian = cpu / (total as f64 / 1e6);
    println!(
        "meridian:   {cpu:.2} CPU s, {:.2} s wall, {:.0} samples/s, {per_million_meridian:.3} CPU s per million samples ({shards} shards at the end)",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64()
    );

    // --- Prometheus as the sender of the same samples to the same kind of receiver. It can
    // only send what it ingests live, so the samples are pushed into it by remote write;
    // its sending cost is its CPU with remote_write configured minus its CPU without, for
    // the same push, over the same wall time.
    if std::env::var("SKIP_PROMETHEUS").is_err() {
        let (vm, vm_addr) = start_vm(&tmp.path().join("vm2"));
        let (p1, p1_addr, p1_pid) = start_prometheus(&tmp.path().join("p1"), Some(vm_addr));
        let t1 = Instant::now();
        push_all(&tsdb_dir, &format!("http://{p1_addr}/api/v1/write"), total).await;
        let deadline = Instant::now() + Duration::from_secs(600);
        while prometheus_metric(p1_addr, "prometheus_remote_storage_samples_total{") < total as f64
        {
            assert!(
                Instant::now() < deadline,
                "prometheus did not send everything"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall_rw = t1.elapsed();
        let cpu_rw = cpu_seconds(&p1_pid);
        drop(p1);
        drop(vm);
        let (p2, p2_addr, p2_pid) = start_prometheus(&tmp.path().join("p2"), None);
        let t2 = Instant::now();
        push_all(&tsdb_dir, &format!("http://{p2_addr}/api/v1/write"), total).await;
        while t2.elapsed() < wall_rw {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cpu_base = cpu_seconds(&p2_pid);
        drop(p2);
        let sending = (cpu_rw - cpu_base).max(0.0);
        let per_million_prom = sending / (total as f64 / 1e6);
        println!(
            "prometheus: {cpu_rw:.2} CPU s receiving and remote-writing, {cpu_base:.2} receiving only; {:.2} s wall; {per_million_prom:.3} CPU s per million samples sent",
            wall_rw.as_secs_f64()
        );
        if per_million_prom > 0.0 {
            println!(
                "ratio meridian/prometheus: {:.2}",
                per_million_meridian / per_million_prom
            );
        }
    }

    // --- Memory per pending sample: unreachable receiver, one big shard.
    let dead = free_addr();
    let yaml = format!(
        "remote_write:\n  - url: http://{dead}/api/v1/write\n    queue_config:\n      capacity: {total}\n      max_shards: 1\n      min_backoff: 1s\n      max_backoff: 1s\n"
    );
    let cfg = config::Config::from_str(&yaml, "p.yml").unwrap();
    let qdir = tsdb_dir.join("remote").join(remote::queue_id(
        "",
        cfg.remote_write[0].url.expose().as_ref(),
    ));
    remote::position::PositionStore::open(&qdir)
        .unwrap()
        .save(&remote::position::Position::default())
        .unwrap();
    let rs =
        remote::RemoteStorage::new(remote::RemoteWriteOptions::new(&tsdb_dir, "Meridian/bench"));
    let rss0 = rss_bytes();
    rs.apply_config(
        &cfg.remote_write,
        &BTreeMap::new(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    let m = rs.queue_metrics()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (m.samples_pending.load(Ordering::Relaxed) as u64) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = m.samples_pending.load(Ordering::Relaxed).max(1) as f64;
    let rss1 = rss_bytes();
    println!(
        "memory: {:.1} bytes per pending sample ({pending} pending, RSS +{} KiB; includes the series table of {series} series)",
        (rss1.saturating_sub(rss0)) as f64 / pending,
        (rss1.saturating_sub(rss0)) / 1024
    );
    rs.stop_with_deadline(Duration::ZERO).await;
}
