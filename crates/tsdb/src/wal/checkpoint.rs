//! WAL checkpoints in Prometheus' layout: `wal/checkpoint.NNNNNNNN/` is a directory of WAL
//! segments holding what is still needed from the WAL up to and including segment `N`: the
//! series records of series still in the head, the samples and exemplars at or after the
//! head's new minimum time, and the tombstones of live series that reach that time. Replay reads the latest checkpoint, then the segments after `N`.
//!
//! Creation is crash-safe: the checkpoint is written to `checkpoint.N.tmp`, synced, and
//! renamed; only then are segments `<= N` and older checkpoints deleted. A crash at any point
//! leaves either the old segments (replayed as before) or the new checkpoint (and possibly
//! segments it covers, which replay skips and the next start-up removes).

use super::record::{self, RefSample, RefSeries};
use super::{ReadError, Wal, WalReader, list_segments};
use crate::encoding::fsync_dir;
use model::labels::Sym;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "checkpoint.";

/// The name of the checkpoint covering segments up to `index`.
pub fn checkpoint_name(index: u32) -> String {
    format!("{PREFIX}{index:08}")
}

/// Completed checkpoints in `wal_dir`, sorted by index.
pub fn list_checkpoints(wal_dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(wal_dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix(PREFIX)
            && n.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = n.parse::<u32>()
            && e.file_type()?.is_dir()
        {
            out.push((i, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The latest completed checkpoint.
pub fn last_checkpoint(wal_dir: &Path) -> io::Result<Option<(u32, PathBuf)>> {
    Ok(list_checkpoints(wal_dir)?.pop())
}

/// What a checkpoint kept and dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
}

/// Writes `checkpoint.<last>` from the previous checkpoint and segments `..= last`, keeping the
/// series for which `keep` is true and their samples at or after `mint`. Nothing is deleted
/// here (see [`delete_covered`]).
pub fn create(
    wal_dir: &Path,
    last: u32,
    keep: impl Fn(u64) -> bool,
    mint: i64,
    compress: bool,
) -> io::Result<CheckpointStats> {
    let mut sources: Vec<(PathBuf, Vec<u32>)> = Vec::new();
    if let Some((i, dir)) = last_checkpoint(wal_dir)?
        && i <= last
    {
        let segs = list_segments(&dir)?;
        sources.push((dir, segs));
    }
    let segs: Vec<u32> = list_segments(wal_dir)?
        .into_iter()
        .filter(|s| *s <= last)
        .collect();
    sources.push((wal_dir.to_path_buf(), segs));

    let tmp = wal_dir.join(format!("{}.tmp", checkpoint_name(last)));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    let mut out = Wal::open(&tmp, super::DEFAULT_SEGMENT_SIZE, compress)?;
    let mut stats = CheckpointStats::default();
    let mut buf = Vec::new();
    let mut enc = Vec::new();
    let mut series: Vec<RefSeries> = Vec::new();
    let mut samples: Vec<RefSample> = Vec::new();
    let mut stones: Vec<record::RefTombstone> = Vec::new();
    let mut exemplars: Vec<record::RefExemplar> = Vec::new();
    for (dir, segs) in sources {
        let mut r = WalReader::new(&dir, segs);
        loop {
            match r.next_record(&mut buf) {
                Ok(true) => {}
                Ok(false) => break,
                Err(ReadError::Corrupt(c)) => {
                    return Err(io::Error::other(format!(
                        "checkpoint: corrupt WAL at {c} in {}",
                        dir.display()
                    )));
                }
                Err(ReadError::Io(e)) => return Err(e),
            }
            enc.clear();
            match buf.first() {
                Some(&record::TYPE_SERIES) => {
                    series.clear();
                    record::decode_series(&buf, &mut series, Sym::new)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    let before = series.len();
                    series.retain(|s| keep(s.id));
                    stats.series_kept += series.len() as u64;
                    stats.series_dropped += (before - series.len()) as u64;
                    if !series.is_empty() {
                        record::encode_series(series.iter().map(|s| (s.id, &s.labels)), &mut enc);
                    }
                }
                Some(&record::TYPE_TOMBSTONES) => {
                    stones.clear();
                    record::decode_tombstones(&buf, &mut stones)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    stones.retain(|s| s.max_t >= mint && keep(s.id));
                    record::encode_tombstones(&stones, &mut enc);
                }
                Some(&record::TYPE_EXEMPLARS) => {
                    exemplars.clear();
                    record::decode_exemplars(&buf, &mut exemplars, Sym::new)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    exemplars.retain(|e| e.t >= mint && keep(e.id));
                    record::encode_exemplars(&exemplars, &mut enc);
                }
                Some(&record::TYPE_SAMPLES) => {
                    samples.clear();
                    record::decode_samples(&buf, &mut samples)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    let before = samples.len();
                    samples.retain(|s| s.t >= mint && keep(s.id));
                    stats.samples_kept += samples.len() as u64;
                    stats.samples_dropped += (before - samples.len()) as u64;
                    if !samples.is_empty() {
                        record::encode_samples(&samples, &mut enc);
                    }
                }
                _ => {}
            }
            if !enc.is_empty() {
                out.log(&[&enc])?;
            }
        }
    }
    out.close()?;
    fsync_dir(&tmp)?;
    let dst = wal_dir.join(checkpoint_name(last));
    if dst.exists() {
        fs::remove_dir_all(&dst)?;
    }
    fs::rename(&tmp, &dst)?;
    fsync_dir(wal_dir)?;
    Ok(stats)
}

/// Removes segments `<= last`, checkpoints older than `last` and leftover temporary
/// checkpoints.
pub fn delete_covered(wal_dir: &Path, last: u32) -> io::Result<()> {
    for s in list_segments(wal_dir)? {
        if s <= last {
            fs::remove_file(wal_dir.join(super::segment_name(s)))?;
        }
    }
    for (i, dir) in list_checkpoints(wal_dir)? {
        if i < last {
            fs::remove_dir_all(dir)?;
        }
    }
    remove_tmp(wal_dir)?;
    fsync_dir(wal_dir)
}

/// Removes `checkpoint.*.tmp` directories (left by a crash during creation).
pub fn remove_tmp(wal_dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(wal_dir)? {
        let e = e?;
        let name = e.file_name();
        if let Some(name) = name.to_str()
            && name.starts_with(PREFIX)
            && name.ends_with(".tmp")
        {
            fs::remove_dir_all(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::labels::Labels;

    #[test]
    fn keeps_live_series_and_recent_samples() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path();
        let mut w = Wal::open(wal_dir, 64 * 1024, true).unwrap();
        let l1 = Labels::from_static(&[("a", "1")]);
        let l2 = Labels::from_static(&[("a", "2")]);
        let mut rec = Vec::new();
        record::encode_series([(1u64, &l1), (2u64, &l2)], &mut rec);
        w.log(&[&rec]).unwrap();
        for t in 0..100i64 {
            let mut rec = Vec::new();
            record::encode_samples(
                &[
                    RefSample {
                        id: 1,
                        t,
                        v: t as f64,
                    },
                    RefSample {
                        id: 2,
                        t,
                        v: t as f64,
                    },
                ],
                &mut rec,
            );
            w.log(&[&rec]).unwrap();
            if t % 10 == 0 {
                let mut rec = Vec::new();
                record::encode_exemplars(
                    &[1, 2].map(|id| record::RefExemplar {
                        id,
                        t,
                        v: 1.0,
                        labels: Labels::from_static(&[("trace_id", "x")]),
                    }),
                    &mut rec,
                );
                w.log(&[&rec]).unwrap();
            }
            if t % 30 == 0 {
                w.next_segment().unwrap();
            }
        }
        let last = w.current_segment() - 1;
        w.close().unwrap();
        let st = create(wal_dir, last, |id| id == 1, 50, true).unwrap();
        assert_eq!(st.series_kept, 1);
        assert_eq!(st.series_dropped, 1);
        delete_covered(wal_dir, last).unwrap();
        assert_eq!(list_segments(wal_dir).unwrap(), vec![last + 1]);
        let (i, cp) = last_checkpoint(wal_dir).unwrap().unwrap();
        assert_eq!(i, last);
        let mut r = WalReader::new(&cp, list_segments(&cp).unwrap());
        let mut buf = Vec::new();
        let mut ts = Vec::new();
        let mut exemplar_ts = Vec::new();
        while r.next_record(&mut buf).unwrap() {
            if buf[0] == record::TYPE_EXEMPLARS {
                let mut e = Vec::new();
                record::decode_exemplars(&buf, &mut e, Sym::new).unwrap();
                assert!(e.iter().all(|e| e.id == 1 && e.t >= 50));
                exemplar_ts.extend(e.iter().map(|e| e.t));
            }
            if buf[0] == record::TYPE_SAMPLES {
                let mut s = Vec::new();
                record::decode_samples(&buf, &mut s).unwrap();
                assert!(s.iter().all(|s| s.id == 1 && s.t >= 50));
                ts.extend(s.iter().map(|s| s.t));
            }
        }
        assert_eq!(ts.first(), Some(&50));
        assert_eq!(exemplar_ts, vec![50, 60, 70, 80, 90]);
        assert!(ts.len() as u64 == st.samples_kept);
    }
}
