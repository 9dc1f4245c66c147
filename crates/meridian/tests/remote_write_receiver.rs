//! Meridian's own remote-write receiver as the third receiver: every sample written to the
//! sender's TSDB arrives exactly once (`count_over_time` per series on the receiving
//! Meridian), across a receiver outage.
//!
//! The sender is the `remote` crate's queue manager reading a real TSDB's WAL.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use model::labels::Labels;
use storage::Appendable;

fn meridian_bin() -> String {
    env!("CARGO_BIN_EXE_meridian").to_owned()
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

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
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
        let mut out = Vec::new();
        let mut b = &body[..];
        while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
            if size == 0 || b.len() < nl + 2 + size {
                break;
            }
            out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
            b = &b[(nl + 4 + size).min(b.len())..];
        }
        body = out;
    }
    Some((status, String::from_utf8_lossy(&body).to_string()))
}

fn start_meridian(dir: &std::path::Path, addr: SocketAddr) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("meridian.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let child = Command::new(meridian_bin())
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some((200, _)) = get(addr, "/-/ready") {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("meridian did not become ready");
}

fn counts(addr: SocketAddr, metric: &str) -> BTreeMap<String, u64> {
    let t = now_ms() as f64 / 1000.0 + 1.0;
    let q = format!("count_over_time({metric}%5B1h%5D)");
    let (status, body) = get(addr, &format!("/api/v1/query?query={q}&time={t}")).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let key = r["metric"]["series"].as_str().unwrap_or("").to_owned();
        let n: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        out.insert(key, n as u64);
    }
    out
}

fn scrape(db: &tsdb::Db, series: usize, t: i64, v: f64) {
    let mut app = db.appender();
    for i in 0..series {
        let labels = Labels::from_pairs([
            ("__name__", "rw_meridian".to_owned()),
            ("series", i.to_string()),
        ])
        .unwrap();
        app.append(None, &labels, t, v).unwrap();
    }
    app.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meridian_receives_every_sample_exactly_once_across_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let sender_dir = dir.path().join("sender");
    let mut opts = tsdb::DbOptions::default();
    opts.head.wal_segment_size = 128 * 1024;
    let db = tsdb::Db::open(&sender_dir, opts).unwrap();
    let yaml = format!(
        "remote_write:\n  - url: http://{addr}/api/v1/write\n    queue_config:\n      max_shards: 4\n      max_samples_per_send: 500\n      batch_send_deadline: 100ms\n      min_backoff: 20ms\n      max_backoff: 300ms\n"
    );
    let cfg = config::Config::from_str(&yaml, "prometheus.yml").unwrap();
    let mut o = remote::RemoteWriteOptions::new(&sender_dir, "Meridian/test");
    o.poll_interval = Duration::from_millis(10);
    o.flush_deadline = Duration::from_millis(500);
    let rs = remote::RemoteStorage::new(o);
    rs.apply_config(
        &cfg.remote_write,
        &BTreeMap::new(),
        config::NameValidationScheme::Utf8,
    )
    .await
    .unwrap();
    let start = now_ms() - 600_000;
    // Half while the receiver is down, half after it is up.
    for i in 0..150 {
        scrape(&db, 100, start + i * 1000, i as f64);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _meridian = start_meridian(&dir.path().join("receiver"), addr);
    for i in 150..300 {
        scrape(&db, 100, start + i * 1000, i as f64);
    }
    let m = rs.queue_metrics()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while m.samples_sent.load(std::sync::atomic::Ordering::Relaxed) < 100 * 300 {
        assert!(Instant::now() < deadline, "not all samples were sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = counts(addr, "rw_meridian");
    assert_eq!(c.len(), 100, "{c:?}");
    assert!(c.values().all(|n| *n == 300), "{c:?}");
    rs.stop().await;
}
