//! Bytes per sample on disk: the same samples stored by Meridian (through the head, cut into a
//! block by `Db::compact`) and by Prometheus 2.42 (`promtool tsdb create-blocks-from
//! openmetrics`), split into index and chunk bytes.
//!
//! Shared by the bytes-per-sample test and example.

#![allow(dead_code, clippy::unwrap_used)]

use super::workload::{self, Series};
use std::path::Path;
use std::process::Command;
use storage::Appendable;

#[derive(Debug, Default, Clone, Copy)]
pub struct Size {
    pub samples: u64,
    pub series: u64,
    pub chunks_count: u64,
    pub index: u64,
    pub chunks: u64,
    /// meta.json and tombstones.
    pub other: u64,
}

impl Size {
    pub fn total(&self) -> u64 {
        self.index + self.chunks + self.other
    }
    pub fn per_sample(&self, bytes: u64) -> f64 {
        bytes as f64 / self.samples.max(1) as f64
    }
    pub fn line(&self, who: &str) -> String {
        format!(
            "{who:<10} samples {:>9}  series {:>6}  chunks {:>6}  index {:>9} B ({:.3} B/sample)  chunks {:>9} B ({:.3} B/sample)  total {:.3} B/sample",
            self.samples,
            self.series,
            self.chunks_count,
            self.index,
            self.per_sample(self.index),
            self.chunks,
            self.per_sample(self.chunks),
            self.per_sample(self.total())
        )
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Sums the sizes of every block directory in `dir`.
pub fn blocks_size(dir: &Path) -> Size {
    let mut s = Size::default();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let Ok(meta) = tsdb::block::BlockMeta::read(&p) else {
            continue;
        };
        s.samples += meta.stats.num_samples;
        s.series += meta.stats.num_series;
        s.chunks_count += meta.stats.num_chunks;
        s.index += file_size(&p.join("index"));
        for c in std::fs::read_dir(p.join("chunks")).unwrap() {
            s.chunks += file_size(&c.unwrap().path());
        }
        s.other += file_size(&p.join("meta.json")) + file_size(&p.join("tombstones"));
    }
    s
}

/// Measures Meridian and Prometheus on `targets` targets of the workload, 4h at 15 s (the
/// first 2h become a block), with optional timestamp jitter.
pub fn measure(
    targets: usize,
    jitter_ms: i64,
    max_chunk_samples: u16,
    verify_with_promtool: bool,
) -> (Size, Size) {
    let start = 1_700_006_400_000; // a multiple of 2h
    let series = workload::generate(targets, start, 4 * 3_600_000, 15_000, jitter_ms);
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("meridian");
    {
        let opts = tsdb::DbOptions {
            max_chunk_samples,
            ..Default::default()
        };
        let db = tsdb::Db::open(&mdir, opts).unwrap();
        let n = series[0].samples.len();
        let mut refs = vec![None; series.len()];
        for k in 0..n {
            let mut app = db.appender();
            for (i, s) in series.iter().enumerate() {
                let (t, v) = s.samples[k];
                refs[i] = Some(app.append(refs[i], &s.labels, t, v).unwrap());
            }
            app.commit().unwrap();
        }
        db.compact().unwrap();
        assert!(!db.blocks().is_empty(), "the head was cut into a block");
    }
    let meridian = blocks_size(&mdir);
    if verify_with_promtool {
        verify(&mdir, &series);
    }

    // The same samples (those Meridian persisted: before the first cut) through promtool.
    let cut = start + 2 * 3_600_000;
    let persisted: Vec<Series> = series
        .into_iter()
        .map(|s| Series {
            labels: s.labels,
            samples: s.samples.into_iter().filter(|(t, _)| *t < cut).collect(),
        })
        .collect();
    let input = dir.path().join("in.om");
    std::fs::write(&input, workload::openmetrics(&persisted)).unwrap();
    let pdir = dir.path().join("prometheus");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&pdir)
        .output()
        .expect("promtool must be installed (Debian package `prometheus`)");
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prometheus = blocks_size(&pdir);
    (meridian, prometheus)
}

/// `promtool tsdb dump` of Meridian's directory (blocks with merged, compactly encoded
/// chunks, plus the WAL) returns exactly the generated samples.
fn verify(dir: &Path, series: &[Series]) {
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
        .expect("promtool must be installed (Debian package `prometheus`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut got: std::collections::HashMap<&str, Vec<(i64, u64)>> = Default::default();
    for line in text.lines() {
        let (rest, ts) = line.rsplit_once(' ').unwrap();
        let (labels, value) = rest.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap();
        got.entry(labels)
            .or_default()
            .push((ts.parse().unwrap(), v.to_bits()));
    }
    assert_eq!(got.len(), series.len());
    for s in series {
        let key: Vec<String> = s
            .labels
            .iter()
            .map(|p| format!("{}=\"{}\"", p.name, p.value))
            .collect();
        let key = format!("{{{}}}", key.join(", "));
        let want: Vec<(i64, u64)> = s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(got.get(key.as_str()), Some(&want), "{key}");
    }
}
