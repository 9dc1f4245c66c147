//! Bytes per sample on disk, Meridian against Prometheus 2.42 on the same samples (see
//! `tests/common/size.rs`; `cargo run --release -p tsdb --example bytes_per_sample` prints
//! the figures for a larger workload and with timestamp jitter).

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

#[test]
fn bytes_per_sample_not_above_prometheus() {
    let (m, p) = common::size::measure(10, 0, tsdb::DbOptions::default().max_chunk_samples, true);
    println!("{}", m.line("meridian"));
    println!("{}", p.line("prometheus"));
    assert_eq!(m.samples, p.samples, "both stored the same samples");
    assert_eq!(m.series, p.series);
    assert!(
        m.total() < p.total(),
        "Meridian uses no more bytes than Prometheus ({} > {})",
        m.total(),
        p.total()
    );
}
