//! Prints bytes per sample on disk for Meridian and Prometheus 2.42 on the same realistic
//! workload (node-exporter-like counters, gauges and histogram buckets at 15 s), split into
//! index and chunks, without and with timestamp jitter.
//!
//! `cargo run --release -p tsdb --example bytes_per_sample [targets]` (needs `promtool`).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let targets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    for (jitter, max) in [(0i64, 0u16), (0, 240), (0, 480), (2, 480), (50, 480)] {
        let (m, p) = common::size::measure(targets, jitter, max, false);
        println!(
            "{targets} targets, 2h block, 15 s interval, timestamp jitter ±{jitter} ms, chunks up to {} samples:",
            if max == 0 { 120 } else { max }
        );
        println!("  {}", m.line("meridian"));
        println!("  {}", p.line("prometheus"));
    }
}
