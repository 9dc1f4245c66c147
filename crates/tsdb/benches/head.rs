//! Head figures for the storage issue: append throughput on one core, RSS per active series,
//! WAL replay time, and select latency, at 100k and 1M series (override the sizes with
//! `MERIDIAN_BENCH_SERIES=100000,1000000`). Run with `cargo bench -p tsdb --bench head`.
//!
//! Series are shaped like node_exporter's: 100 metric names × N/100 instances, labels
//! `__name__`, `instance`, `job`, `cpu`, `mode` (5 labels, `instance` high-cardinality). Each
//! series gets 120 samples (`MERIDIAN_BENCH_SAMPLES`) at a 15 s interval, so it holds one open,
//! full chunk; batches of 1,000 series are committed like a scrape, reusing series references
//! as the scrape cache does. WAL replay runs in a fresh child process, which reports its replay
//! time and its peak RSS (so the allocator's retained memory from ingestion does not hide it).

#![allow(clippy::unwrap_used)] // A benchmark: failing loudly is the right outcome.

use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use std::time::Instant;
use storage::{Appendable, Queryable};
use tsdb::{Db, DbOptions};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn labels_for(i: usize) -> Labels {
    let modes = ["idle", "user", "system", "iowait"];
    Labels::from_pairs([
        ("__name__", format!("node_metric_{}", i % 100)),
        (
            "instance",
            format!("host-{}.example.internal:9100", i / 100),
        ),
        ("job", "node".to_string()),
        ("cpu", ((i / 7) % 16).to_string()),
        ("mode", modes[i % 4].to_string()),
    ])
    .unwrap()
}

const BATCH: usize = 1000;

fn samples_per_series() -> i64 {
    std::env::var("MERIDIAN_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120)
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Child mode: open the database (replaying its WAL) and report.
fn replay_only(dir: &str) {
    let base = rss_bytes();
    let start = Instant::now();
    let db = Db::open(std::path::Path::new(dir), DbOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{secs} {} {} {}",
        db.head().num_series(),
        rss_bytes() - base,
        peak_rss_bytes() - base
    );
}

fn run(n: usize) {
    let dir =
        tempfile::tempdir_in(std::env::var("MERIDIAN_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
            .unwrap();
    let labels: Vec<Labels> = (0..n).map(labels_for).collect();
    let mut refs: Vec<Option<u64>> = vec![None; n];
    let rss_before = rss_bytes();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let samples_per_series = samples_per_series();

    let start = Instant::now();
    let t0 = 1_700_000_000_000i64;
    for step in 0..samples_per_series {
        let t = t0 + step * 15_000;
        for chunk_start in (0..n).step_by(BATCH) {
            let mut app = db.appender();
            for i in chunk_start..(chunk_start + BATCH).min(n) {
                let v = (i as f64) * 0.5 + step as f64;
                refs[i] = Some(app.append(refs[i], &labels[i], t, v).unwrap());
            }
            app.commit().unwrap();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = n as f64 * samples_per_series as f64;
    // The benchmark's label sets and reference vector exist before the first measurement.
    let head_rss = rss_bytes().saturating_sub(rss_before);
    drop(refs);
    println!(
        "series={n}: append {:.2} M samples/s on one core ({:.0} ns/sample, {total:.0} samples in {elapsed:.1} s)",
        total / elapsed / 1e6,
        elapsed * 1e9 / total
    );
    println!(
        "series={n}: head RSS {:.1} MiB = {:.0} bytes per series ({samples_per_series} samples in one open chunk each; {} symbols)",
        head_rss as f64 / (1 << 20) as f64,
        head_rss as f64 / n as f64,
        db.head().num_symbols()
    );

    // Select latency for typical matchers.
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        (
            "__name__=\"node_metric_5\"",
            vec![Matcher::equal("__name__", "node_metric_5")],
        ),
        (
            "__name__=\"node_metric_5\",instance=\"host-42…\"",
            vec![
                Matcher::equal("__name__", "node_metric_5"),
                Matcher::equal("instance", "host-42.example.internal:9100"),
            ],
        ),
        (
            "__name__=\"node_metric_5\",mode!=\"idle\"",
            vec![
                Matcher::equal("__name__", "node_metric_5"),
                Matcher::new(MatchOp::NotEqual, "mode", "idle").unwrap(),
            ],
        ),
        (
            "job=\"node\",instance=~\"host-1.*\"",
            vec![
                Matcher::equal("job", "node"),
                Matcher::new(MatchOp::RegexMatch, "instance", "host-1.*").unwrap(),
            ],
        ),
        (
            "__name__=~\"node_metric_(1|2)\"",
            vec![Matcher::new(MatchOp::RegexMatch, "__name__", "node_metric_(1|2)").unwrap()],
        ),
    ];
    for (name, ms) in &cases {
        let reps = 5;
        let start = Instant::now();
        let mut series = 0;
        let mut samples = 0;
        for _ in 0..reps {
            series = 0;
            samples = 0;
            for s in q.select(false, None, ms).unwrap() {
                let mut it = s.unwrap().samples;
                series += 1;
                while it.next().is_some() {
                    samples += 1;
                }
            }
        }
        let per = start.elapsed().as_secs_f64() / reps as f64;
        println!(
            "series={n}: select {name}: {series} series, {samples} samples in {:.2} ms",
            per * 1e3
        );
    }
    drop(q);

    // Replay, in a fresh process.
    drop(db);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--replay-only", &dir.path().display().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [secs, restored, rss, peak] = f[..] {
        println!(
            "series={n}: WAL replay {secs:.2} s ({:.1} M samples/s) in a fresh process, {restored} series restored; \
             RSS after replay {:.0} bytes per series, peak during replay {:.0} bytes per series",
            total / secs / 1e6,
            rss / n as f64,
            peak / n as f64
        );
    } else {
        println!(
            "series={n}: replay child failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--replay-only") {
        replay_only(&args[pos + 1]);
        return;
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let sizes: Vec<usize> = std::env::var("MERIDIAN_BENCH_SERIES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    for n in sizes {
        run(n);
    }
}
