//! Remote write from a real WAL to a scriptable receiver on 127.0.0.1: exactly-once delivery
//! with several shards, headers, external labels and write relabeling, receiver outages,
//! a restart during an outage, a 429 storm, 400s, and the retention bounds.

#![allow(clippy::unwrap_used)]
// Test code: a failed unwrap is a failed test.
// The receiver's state guards are dropped (explicitly) before every await; the lint does not
// follow `drop`.
#![allow(clippy::await_holding_lock)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use remote::metrics::DropReason;
use storage::Appendable;

const SEG: usize = 64 * 1024;

/// Writes `scrapes` rounds of `series` series, one per `step_ms`, ending near now.
fn write_rounds(db: &Tsdb, metric: &str, series: usize, scrapes: usize, start: i64, step_ms: i64) {
    for i in 0..scrapes {
        db.scrape(
            metric,
            series,
            start + i as i64 * step_ms,
            i as f64 * 1.000_1 + 0.123,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_arrives_once_in_order_with_headers_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    headers:\n      X-Test: hello\n    write_relabel_configs:\n      - source_labels: [series]\n        regex: '1.'\n        action: drop\n    queue_config:\n      min_shards: 3\n      max_shards: 3\n      max_samples_per_send: 100\n      batch_send_deadline: 100ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[("cluster", "a"), ("job", "overridden")]).await;
    // 50 series × 120 scrapes, written while the queue runs (many segments).
    let start = now_ms() - 120_000;
    write_rounds(&db, "m", 50, 120, start, 1000);
    let total = 50 * 120;
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(60), "all samples accounted", || {
        accounted(&m) == total
    })
    .await;
    // Series 10..=19 are dropped by write_relabel_configs.
    assert_eq!(dropped(&m, DropReason::DroppedSeries), 10 * 120);
    assert_eq!(load(&m.samples_sent), 40 * 120);
    rx.assert_exactly(40, 120);
    let st = rx.state.lock().unwrap();
    assert!(
        st.series
            .keys()
            .all(|k| k.contains("cluster=a") && k.contains("job=remote_test")),
        "external labels added, series labels win: {:?}",
        st.series.keys().next()
    );
    assert_eq!(st.custom_header.as_deref(), Some("hello"));
    assert!(st.user_agents.iter().all(|u| u == "Meridian/test"));
    drop(st);
    // Metrics exposition.
    let mut out = Vec::new();
    rs.write_metrics(&mut model::exposition::TextEncoder::new(&mut out));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("prometheus_remote_storage_samples_total{remote_name=\""),
        "{text}"
    );
    assert!(text.contains("prometheus_remote_storage_shards{"));
    assert!(text.contains("prometheus_remote_storage_queue_highest_sent_timestamp_seconds{"));
    assert!(text.contains("reason=\"dropped_series\""));
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(UNAVAILABLE);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 4\n      capacity: 200\n      max_samples_per_send: 100\n      batch_send_deadline: 50ms\n      min_backoff: 10ms\n      max_backoff: 200ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let start = now_ms() - 200_000;
    write_rounds(&db, "m", 30, 200, start, 1000);
    let m = rs.queue_metrics()[0].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.total(), 0);
    assert!(load(&m.samples_retried) > 0);
    // Memory holds at most the queue capacity; the rest waits in the WAL.
    assert!(m.samples_pending.load(std::sync::atomic::Ordering::Relaxed) <= 4 * 200 + 30);
    rx.set_mode(OK);
    wait_until(Duration::from_secs(60), "all sent", || {
        load(&m.samples_sent) == 30 * 200
    })
    .await;
    rx.assert_exactly(30, 200);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(UNAVAILABLE);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 2\n      capacity: 100\n      max_samples_per_send: 50\n      batch_send_deadline: 50ms\n      min_backoff: 10ms\n      max_backoff: 100ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let start = now_ms() - 300_000;
    write_rounds(&db, "m", 20, 100, start, 1000);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Restart everything while the receiver is down: the sender stops (its batches in
    // flight are abandoned), the TSDB closes and reopens (a new WAL segment).
    rs.stop().await;
    write_rounds(&db, "m", 20, 50, start + 100_000, 1000);
    db.close();
    let db = Tsdb::open(dir.path(), SEG);
    write_rounds(&db, "m", 20, 50, start + 150_000, 1000);
    let rs = start_remote(dir.path(), &rw, &[]).await;
    write_rounds(&db, "m", 20, 50, start + 200_000, 1000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    rx.set_mode(OK);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(60), "all sent", || {
        rx.total() == 20 * 250
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    rx.assert_exactly(20, 250);
    assert_eq!(m.dropped_all(), 0);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_sending_resends_nothing_twice() {
    // The sender is dropped without a stop (as a killed process leaves it) while the receiver
    // accepts: the acknowledgement journal makes the next start skip what was acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.delay_ms.store(20, std::sync::atomic::Ordering::Relaxed);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 2\n      min_shards: 2\n      max_samples_per_send: 50\n      batch_send_deadline: 20ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let start = now_ms() - 300_000;
    write_rounds(&db, "m", 20, 200, start, 1000);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(30), "some sent", || {
        load(&m.samples_sent) > 1000
    })
    .await;
    // "Crash": no stop, no final snapshot. (Requests in flight may still complete; the
    // receiver below has Prometheus' rule for what is not newer than what it has.)
    drop(rs);
    tokio::time::sleep(Duration::from_millis(300)).await;
    rx.delay_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    let rs = start_remote(dir.path(), &rw, &[]).await;
    wait_until(Duration::from_secs(60), "all arrived", || {
        rx.total() >= 20 * 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = rx.state.lock().unwrap();
    let dupes = st.out_of_order;
    let distinct: usize = st
        .series
        .values()
        .map(|v| {
            let mut t: Vec<i64> = v.iter().map(|x| x.0).collect();
            t.sort();
            t.dedup();
            t.len()
        })
        .sum();
    drop(st);
    assert_eq!(distinct, 20 * 200, "every sample arrived");
    // Only a batch that was in flight at the crash may arrive twice.
    assert!(dupes <= 2 * 50, "resent {dupes} samples");
    eprintln!("crash test: {dupes} samples resent (in flight at the crash)");
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_backs_off_honours_retry_after_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(TOO_MANY);
    // retry_on_http_429 is not set: Meridian's default retries.
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 1\n      max_samples_per_send: 500\n      batch_send_deadline: 50ms\n      min_backoff: 10ms\n      max_backoff: 50ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let start = now_ms() - 100_000;
    write_rounds(&db, "m", 25, 100, start, 1000);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let storm_requests = rx.state.lock().unwrap().throttled_at.clone();
    rx.set_mode(OK);
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(60), "all sent", || {
        load(&m.samples_sent) == 25 * 100
    })
    .await;
    rx.assert_exactly(25, 100);
    // Retry-After: 1 was honoured (the backoff alone would retry every 50 ms).
    assert!(
        (3..=6).contains(&storm_requests.len()),
        "{} requests in a 4 s storm",
        storm_requests.len()
    );
    for w in storm_requests.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(950));
    }
    assert!(load(&m.samples_retried) > 0);
    assert_eq!(load(&m.samples_failed), 0);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(BAD_REQUEST);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 1\n      max_samples_per_send: 100\n      batch_send_deadline: 20ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    let start = now_ms() - 100_000;
    write_rounds(&db, "m", 10, 30, start, 1000);
    wait_until(Duration::from_secs(30), "refused", || {
        load(&m.samples_failed) == 300
    })
    .await;
    rx.set_mode(OK);
    write_rounds(&db, "m", 10, 20, start + 30_000, 1000);
    wait_until(Duration::from_secs(30), "sent", || {
        load(&m.samples_sent) == 200
    })
    .await;
    let st = rx.state.lock().unwrap();
    assert_eq!(
        st.refused_samples, 300,
        "failed_total equals what was refused"
    );
    assert_eq!(st.series.values().map(Vec::len).sum::<usize>(), 200);
    drop(st);
    assert_eq!(load(&m.samples_failed), 300);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_bound_drops_the_oldest_and_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), 32 * 1024);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(UNAVAILABLE);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 1\n      capacity: 100\n      max_samples_per_send: 50\n      batch_send_deadline: 20ms\n      min_backoff: 10ms\n      max_backoff: 50ms\n      retention_max_size: 128KiB\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    let series = 100;
    let scrapes = 800;
    let start = now_ms() - 900_000;
    write_rounds(&db, "m", series, scrapes, start, 1000);
    let total = (series * scrapes) as u64;
    let segments = tsdb::wal::list_segments(&db.wal_dir()).unwrap().len();
    assert!(segments > 8, "test needs many segments, got {segments}");
    wait_until(Duration::from_secs(30), "bound enforced", || {
        dropped(&m, DropReason::RetentionSize) > 0
            && load(&m.retained_bytes) <= 128 * 1024 + 32 * 1024
    })
    .await;
    rx.set_mode(OK);
    wait_until(Duration::from_secs(60), "all accounted", || {
        accounted(&m) == total && m.samples_pending.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    let dropped_n = dropped(&m, DropReason::RetentionSize);
    let sent = load(&m.samples_sent);
    assert_eq!(sent + dropped_n, total);
    assert!(
        dropped_n > total / 2,
        "most was over the bound: {dropped_n}"
    );
    // What arrived is, per series, exactly the newest samples: the oldest were dropped.
    let st = rx.state.lock().unwrap();
    assert_eq!(st.out_of_order, 0);
    assert_eq!(
        st.series.values().map(|v| v.len() as u64).sum::<u64>(),
        sent
    );
    let newest = start + (scrapes as i64 - 1) * 1000;
    for (k, v) in &st.series {
        let first = v[0].0;
        let expected = ((newest - first) / 1000 + 1) as usize;
        assert_eq!(v.len(), expected, "{k}: a contiguous newest suffix");
        assert_eq!(v.last().unwrap().0, newest);
    }
    drop(st);
    // The segments the queue no longer needs are below its lowest needed segment.
    let low = rs.lowest_needed_segment().await.unwrap();
    let last = *tsdb::wal::list_segments(&db.wal_dir())
        .unwrap()
        .last()
        .unwrap();
    assert!(low + 5 >= last, "lowest needed {low}, last {last}");
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_bound_drops_what_is_too_old_and_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    rx.set_mode(UNAVAILABLE);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      max_shards: 1\n      max_samples_per_send: 50\n      batch_send_deadline: 20ms\n      min_backoff: 10ms\n      max_backoff: 50ms\n      retention_max_age: 5s\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    // 10 series: 20 samples 60 s old, then 20 samples ending 2 s after now.
    let now = now_ms();
    write_rounds(&db, "m", 10, 20, now - 60_000, 100);
    write_rounds(&db, "m", 10, 20, now, 100);
    tokio::time::sleep(Duration::from_millis(500)).await;
    rx.set_mode(OK);
    wait_until(Duration::from_secs(30), "accounted", || {
        accounted(&m) == 400
    })
    .await;
    assert_eq!(dropped(&m, DropReason::RetentionAge), 200);
    assert_eq!(load(&m.samples_sent), 200);
    rx.assert_exactly(10, 20);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_gets_more_shards_and_order_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), 1 << 20);
    let rx = Receiver::start(free_addr()).await;
    rx.delay_ms.store(100, std::sync::atomic::Ordering::Relaxed);
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      min_shards: 1\n      max_shards: 8\n      max_samples_per_send: 100\n      batch_send_deadline: 50ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    let started = Instant::now();
    let mut t = now_ms() - 600_000;
    let mut rounds = 0;
    // ~2,000 samples/s against one shard doing ~1,000/s.
    while started.elapsed() < Duration::from_secs(6) {
        db.scrape("m", 100, t, 1.0);
        t += 1000;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak = load(&m.shards);
    wait_until(Duration::from_secs(60), "all sent", || {
        load(&m.samples_sent) == 100 * rounds
    })
    .await;
    assert!(peak > 1, "resharded up: {peak} shards");
    rx.assert_exactly(100, rounds as usize);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_come_from_the_checkpoint_when_segments_were_truncated() {
    use tsdb::wal::record::{RefSample, encode_samples, encode_series};
    // A WAL as the TSDB leaves it after a checkpoint: `checkpoint.00000001` holds the series
    // of segments 0–1, which are deleted; segment 2 has samples of those series only.
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let cp = wal_dir.join("checkpoint.00000001");
    let labels: Vec<model::labels::Labels> = (0..5)
        .map(|i| {
            model::labels::Labels::from_pairs([
                ("__name__", "cp_metric".to_string()),
                ("series", i.to_string()),
            ])
            .unwrap()
        })
        .collect();
    {
        let mut w = tsdb::wal::Wal::open(&cp, SEG, false).unwrap();
        let mut rec = Vec::new();
        encode_series(
            labels.iter().enumerate().map(|(i, l)| (i as u64 + 1, l)),
            &mut rec,
        );
        w.log(&[&rec]).unwrap();
        w.close().unwrap();
    }
    for s in 0..2 {
        std::fs::write(wal_dir.join(tsdb::wal::segment_name(s)), b"").unwrap();
    }
    let t0 = now_ms() - 60_000;
    {
        let mut w = tsdb::wal::Wal::open(&wal_dir, SEG, true).unwrap();
        assert_eq!(w.current_segment(), 2);
        for k in 0..10 {
            let samples: Vec<RefSample> = (1..=5)
                .map(|id| RefSample {
                    id,
                    t: t0 + k * 1000,
                    v: k as f64,
                })
                .collect();
            let mut rec = Vec::new();
            encode_samples(&samples, &mut rec);
            w.log(&[&rec]).unwrap();
        }
        w.close().unwrap();
    }
    for s in 0..2 {
        std::fs::remove_file(wal_dir.join(tsdb::wal::segment_name(s))).unwrap();
    }
    let rx = Receiver::start(free_addr()).await;
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      batch_send_deadline: 20ms\n",
    );
    // The queue's saved position is segment 0, which is gone: it continues at segment 2.
    let qdir = dir
        .path()
        .join("remote")
        .join(remote::queue_id("", &rx.url()));
    remote::position::PositionStore::open(&qdir)
        .unwrap()
        .save(&remote::position::Position::default())
        .unwrap();
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(20), "sent", || {
        load(&m.samples_sent) == 50
    })
    .await;
    rx.assert_exactly(5, 10);
    assert!(rx.state.lock().unwrap().series.contains_key("series=3"));
    assert_eq!(dropped(&m, DropReason::UnknownSeries), 0);
    // The gap (segments the queue needed were removed) is reported.
    assert_eq!(load(&m.wal_corruptions), 1);
    assert_eq!(rs.lowest_needed_segment().await, Some(2));
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_queues_and_resumes_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    let rx2 = Receiver::start(free_addr()).await;
    let q = "    queue_config:\n      batch_send_deadline: 20ms\n";
    let (_, one) = remote_write_config(&rx.url(), q);
    let rs = start_remote(dir.path(), &one, &[]).await;
    let start = now_ms() - 100_000;
    write_rounds(&db, "m", 10, 20, start, 1000);
    let first = rs.queue_metrics()[0].clone();
    wait_until(Duration::from_secs(20), "sent", || {
        load(&first.samples_sent) == 200
    })
    .await;
    let none = std::collections::BTreeMap::new();
    let scheme = config::NameValidationScheme::Utf8;
    // Same config: the queue keeps running (same metrics object).
    rs.apply_config(&one, &none, scheme).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &rs.queue_metrics()[0]));
    // Changed batching: restarted, resuming from its position (nothing resent).
    let (_, changed) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      batch_send_deadline: 30ms\n",
    );
    rs.apply_config(&changed, &none, scheme).await.unwrap();
    write_rounds(&db, "m", 10, 20, start + 20_000, 1000);
    let second = rs.queue_metrics()[0].clone();
    assert!(!std::sync::Arc::ptr_eq(&first, &second));
    wait_until(Duration::from_secs(20), "sent", || {
        load(&second.samples_sent) == 200
    })
    .await;
    rx.assert_exactly(10, 40);
    // A second queue added: it starts at the WAL's end.
    let (cfg2, _) = remote_write_config(&rx.url(), &format!("{q}  - url: {}\n{q}", rx2.url()));
    rs.apply_config(&cfg2.remote_write, &none, scheme)
        .await
        .unwrap();
    assert_eq!(rs.queue_metrics().len(), 2);
    write_rounds(&db, "m", 10, 5, start + 40_000, 1000);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(rx.total() == 450 && rx2.total() == 50) {
        assert!(
            Instant::now() < deadline,
            "first {} second {}",
            rx.total(),
            rx2.total()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Removing a queue stops it and deletes its directory.
    rs.apply_config(&changed, &none, scheme).await.unwrap();
    assert_eq!(rs.queue_metrics().len(), 1);
    let id2 = remote::queue_id("", &rx2.url());
    assert!(!dir.path().join("remote").join(id2).exists());
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_2_0_every_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), SEG);
    let rx = Receiver::start(free_addr()).await;
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      max_shards: 2\n      min_shards: 2\n      max_samples_per_send: 100\n      batch_send_deadline: 20ms\n",
    );
    let rs = start_remote(dir.path(), &rw, &[("cluster", "v2")]).await;
    let m = rs.queue_metrics()[0].clone();
    write_rounds(&db, "m", 30, 50, now_ms() - 60_000, 1000);
    wait_until(Duration::from_secs(30), "sent", || {
        load(&m.samples_sent) == 1500
    })
    .await;
    rx.assert_exactly(30, 50);
    let st = rx.state.lock().unwrap();
    assert!(st.v2_requests > 0);
    assert!(st.series.keys().all(|k| k.contains("cluster=v2")));
    drop(st);
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_does_not_hold_back_another_queue() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), 32 * 1024);
    let dead = Receiver::start(free_addr()).await;
    dead.set_mode(UNAVAILABLE);
    let live = Receiver::start(free_addr()).await;
    let q = "    queue_config:\n      capacity: 100\n      max_shards: 1\n      max_samples_per_send: 50\n      batch_send_deadline: 20ms\n      min_backoff: 10ms\n      max_backoff: 100ms\n";
    let (cfg, _) = remote_write_config(&dead.url(), &format!("{q}  - url: {}\n{q}", live.url()));
    let rs = start_remote(dir.path(), &cfg.remote_write, &[]).await;
    write_rounds(&db, "m", 50, 200, now_ms() - 300_000, 1000);
    let live_m = rs
        .queue_metrics()
        .into_iter()
        .find(|m| m.url.contains(&live.addr.to_string()))
        .unwrap();
    wait_until(Duration::from_secs(30), "live queue done", || {
        load(&live_m.samples_sent) == 50 * 200
    })
    .await;
    live.assert_exactly(50, 200);
    assert_eq!(dead.total(), 0);
    // The dead queue holds its data in the WAL, not memory (capacity + one record + the
    // batch being retried), and keeps the segments.
    let dead_m = rs
        .queue_metrics()
        .into_iter()
        .find(|m| m.url.contains(&dead.addr.to_string()))
        .unwrap();
    assert!(
        dead_m
            .samples_pending
            .load(std::sync::atomic::Ordering::Relaxed)
            <= 100 + 50 + 50
    );
    assert_eq!(rs.lowest_needed(), Some(0));
    rs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_gone_from_a_new_checkpoint_are_forgotten() {
    // Churn: every round brings new series and drops the previous ones. After the TSDB cuts
    // its head and checkpoints the WAL, the watcher forgets the series the checkpoint no
    // longer declares, so its table tracks live series, not every series ever seen.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = tsdb::DbOptions::default();
    opts.head.wal_segment_size = SEG;
    opts.head.chunk_range = 60_000;
    opts.compaction = false;
    let db = tsdb::Db::open(dir.path(), opts).unwrap();
    let rx = Receiver::start(free_addr()).await;
    let (_, rw) = remote_write_config(
        &rx.url(),
        "    queue_config:\n      batch_send_deadline: 20ms\n",
    );
    let rs = std::sync::Arc::new(start_remote(dir.path(), &rw, &[]).await);
    {
        let rs = rs.clone();
        let queues_dir = dir.path().join("remote");
        db.head().set_wal_floor(std::sync::Arc::new(move || {
            [
                rs.lowest_needed(),
                remote::lowest_saved_segment(&queues_dir),
            ]
            .into_iter()
            .flatten()
            .min()
        }));
    }
    let m = rs.queue_metrics()[0].clone();
    let t0 = now_ms() - 10 * 60_000;
    let rounds = 8i64;
    for round in 0..rounds {
        let mut app = db.appender();
        for i in 0..50 {
            let l = model::labels::Labels::from_pairs([
                ("__name__", "churn".to_string()),
                ("pod", format!("pod-{round}-{i}")),
            ])
            .unwrap();
            app.append(None, &l, t0 + round * 60_000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let want = (round as u64 + 1) * 50;
        wait_until(Duration::from_secs(20), "sent", || {
            load(&m.samples_sent) == want
        })
        .await;
        // Let the queue save its position, then cut the head (new segment + checkpoint).
        tokio::time::sleep(Duration::from_millis(600)).await;
        tokio::task::block_in_place(|| db.compact().unwrap());
    }
    // Only the newest rounds' series are still in the head; the watcher follows.
    wait_until(Duration::from_secs(20), "pruned", || {
        load(&m.series_tracked) <= 150
    })
    .await;
    assert_eq!(dropped(&m, DropReason::UnknownSeries), 0);
    rx.assert_exactly(50 * rounds as usize, 1);
    rs.stop().await;
}
