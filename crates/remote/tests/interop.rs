//! Remote write from a real WAL to the real receivers: Prometheus 2.42
//! (`--web.enable-remote-write-receiver`) and VictoriaMetrics, both from Debian packages and
//! required (a missing binary fails the test). Every sample written to the TSDB arrives
//! exactly once: `count_over_time` per series on the receiver equals what was written,
//! including across a receiver outage and a sender + TSDB restart during that outage.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::*;

const SEG: usize = 128 * 1024;

fn write_rounds(db: &Tsdb, metric: &str, series: usize, scrapes: usize, start: i64) {
    for i in 0..scrapes {
        db.scrape(metric, series, start + i as i64 * 1000, i as f64 * 0.5);
    }
}

fn assert_counts(addr: std::net::SocketAddr, metric: &str, series: usize, want: u64) {
    let counts = counts_per_series(addr, metric, "1h");
    assert_eq!(counts.len(), series, "series on the receiver: {counts:?}");
    for (k, n) in &counts {
        assert_eq!(*n, want, "count_over_time of {k}");
    }
}

const QUEUE: &str = "    queue_config:\n      min_shards: 2\n      max_shards: 4\n      max_samples_per_send: 500\n      batch_send_deadline: 100ms\n      min_backoff: 20ms\n      max_backoff: 500ms\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_receives_every_sample_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let _prom = start_prometheus(&dir.path().join("prom"), addr);
    let db = Tsdb::open(&dir.path().join("meridian"), SEG);
    let (_, rw) = remote_write_config(&format!("http://{addr}/api/v1/write"), QUEUE);
    let rs = start_remote(&dir.path().join("meridian"), &rw, &[("cluster", "c1")]).await;
    let start = now_ms() - 600_000;
    write_rounds(&db, "rw_interop", 200, 300, start);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(120), "all sent", || {
        load(&m.samples_sent) == 200 * 300
    })
    .await;
    assert_counts(addr, "rw_interop", 200, 300);
    assert_eq!(load(&m.samples_failed), 0);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_receives_every_sample_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let _vm = start_victoria_metrics(&dir.path().join("vm"), addr);
    let db = Tsdb::open(&dir.path().join("meridian"), SEG);
    let (_, rw) = remote_write_config(&format!("http://{addr}/api/v1/write"), QUEUE);
    let rs = start_remote(&dir.path().join("meridian"), &rw, &[("cluster", "c1")]).await;
    let start = now_ms() - 600_000;
    write_rounds(&db, "rw_interop", 200, 300, start);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(120), "all sent", || {
        load(&m.samples_sent) == 200 * 300
    })
    .await;
    let _ = http_get(addr, "/internal/force_flush");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // VictoriaMetrics stores duplicates, so a resent sample would show in the count.
    assert_counts(addr, "rw_interop", 200, 300);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_with_sender_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mdir = dir.path().join("meridian");
    let mut db = Tsdb::open(&mdir, SEG);
    let (_, rw) = remote_write_config(&format!("http://{addr}/api/v1/write"), QUEUE);
    // The receiver is down from the start.
    let rs = start_remote(&mdir, &rw, &[]).await;
    let start = now_ms() - 900_000;
    write_rounds(&db, "rw_outage", 100, 200, start);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = rs.queue_metrics()[0].clone();
    assert!(
        load(&m.samples_retried) > 0,
        "sends were attempted and failed"
    );
    // Meridian restarts during the outage (sender stopped, TSDB closed and reopened), and
    // keeps scraping on both sides of the restart.
    rs.stop().await;
    write_rounds(&db, "rw_outage", 100, 100, start + 200_000);
    db.close();
    let db = Tsdb::open(&mdir, SEG);
    let rs = start_remote(&mdir, &rw, &[]).await;
    write_rounds(&db, "rw_outage", 100, 100, start + 300_000);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The receiver comes back.
    let _prom = start_prometheus(&dir.path().join("prom"), addr);
    write_rounds(&db, "rw_outage", 100, 100, start + 400_000);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(120), "backlog sent", || {
        m.samples_pending.load(std::sync::atomic::Ordering::Relaxed) == 0
            && load(&m.samples_sent) > 0
            && m.highest_sent_ms.load(std::sync::atomic::Ordering::Relaxed) == start + 499_000
    })
    .await;
    assert_counts(addr, "rw_outage", 100, 500);
    assert_eq!(load(&m.samples_failed), 0);
    assert_eq!(m.dropped_all(), 0);
    rs.stop().await;
}
