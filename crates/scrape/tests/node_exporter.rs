//! Scraping a real `prometheus-node-exporter` (Debian package) started on a loopback port this
//! test picks and killed at the end. The test fails, never skips, when the binary is missing:
//! the test script must install it.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use scrape::TargetHealth;
use storage::memory::MemStorage;

const CANDIDATES: [&str; 3] = [
    "/usr/bin/prometheus-node-exporter",
    "/usr/local/bin/node_exporter",
    "/usr/bin/node_exporter",
];

/// Kills the exporter when the test ends, however it ends.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
}

async fn start_exporter() -> Exporter {
    let Some(binary) = CANDIDATES
        .iter()
        .find(|path| std::path::Path::new(path).exists())
    else {
        panic!(
            "prometheus-node-exporter is not installed (apt-get install -y prometheus-node-exporter); looked for {CANDIDATES:?}"
        );
    };
    let addr = free_loopback_port();
    let child = Command::new(binary)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let exporter = Exporter { child, addr };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            panic!("node exporter did not listen on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    exporter
}

/// Metric names of a body fetched directly.
async fn exposed_names(addr: SocketAddr) -> BTreeSet<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A plain HTTP/1.0 exchange keeps this check independent of the code under test.
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_a_real_node_exporter() {
    let mut exporter = start_exporter().await;
    let addr = exporter.addr;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config(&job_config("node", addr, "1s", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "node", &[]);
    wait_until("two successful scrapes", || {
        values(&storage, &up).iter().filter(|v| **v == 1.0).count() >= 2
    })
    .await;
    let report = manager.targets().await;
    assert_eq!(
        report.active[0].health,
        TargetHealth::Up,
        "{:?}",
        report.active[0].last_error
    );

    let stored = dump(&storage);
    let stored_names: BTreeSet<String> = stored
        .keys()
        .filter_map(|k| {
            k.strip_prefix("{__name__=\"")
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        })
        .collect();
    let exposed = exposed_names(addr).await;
    let missing: Vec<&String> = exposed.difference(&stored_names).collect();
    assert!(missing.is_empty(), "exposed but not stored: {missing:?}");
    for name in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "node_exporter_build_info",
    ] {
        assert!(stored_names.contains(name), "{name}");
    }
    // Every stored series carries the target labels.
    let instance = format!("instance=\"{addr}\"");
    assert!(
        stored
            .keys()
            .all(|k| k.contains(&instance) && k.contains("job=\"node\""))
    );
    let scraped = values(
        &storage,
        &series("scrape_samples_scraped", addr, "node", &[]),
    );
    assert!(scraped.iter().all(|v| *v > 100.0), "{scraped:?}");
    let cpu_series = stored
        .keys()
        .filter(|k| k.starts_with("{__name__=\"node_cpu_seconds_total\""))
        .count();
    assert!(cpu_series > 0);

    // The exporter dies: the next scrape fails and every series gets a staleness marker.
    exporter.kill();
    wait_until("up 0", || values(&storage, &up).contains(&0.0)).await;
    let build_info = stored
        .keys()
        .find(|k| k.starts_with("{__name__=\"node_exporter_build_info\""))
        .cloned()
        .unwrap_or_default();
    assert!(
        points(&storage, &build_info)
            .last()
            .is_some_and(|p| p.stale)
    );
    let report = manager.targets().await;
    assert_eq!(report.active[0].health, TargetHealth::Down);
    assert!(
        report.active[0].last_error.contains("Get \""),
        "{}",
        report.active[0].last_error
    );
    manager.stop().await;
}
