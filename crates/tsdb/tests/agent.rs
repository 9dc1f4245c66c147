//! The agent's WAL-only storage: append and replay, order checks, truncation into checkpoints
//! that keep exactly the series records a WAL reader may still need, the readers' floor, a
//! series removed while a batch referring to it was open, and tail repair.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use storage::{AppendError, Appendable};
use tsdb::wal::record::{self, RefSample, RefSeries};
use tsdb::wal::{self, WalReader};
use tsdb::{AgentDb, AgentOptions};

fn lbl(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "agent")]).unwrap()
}

fn open(dir: &Path) -> AgentDb {
    AgentDb::open(dir, AgentOptions::default()).unwrap()
}

const MIN: i64 = 60_000;

/// Everything a WAL reader sees, checkpoint first: series records by id, and samples as
/// (series name, t), failing on a sample whose series record was not seen before it.
fn read_wal(dir: &Path) -> (HashMap<u64, Labels>, Vec<(String, i64)>) {
    let wal_dir = dir.join("wal");
    let mut sources = Vec::new();
    let mut after = None;
    if let Some((n, cp)) = wal::checkpoint::last_checkpoint(&wal_dir).unwrap() {
        sources.push((cp.clone(), wal::list_segments(&cp).unwrap()));
        after = Some(n);
    }
    let segs: Vec<u32> = wal::list_segments(&wal_dir)
        .unwrap()
        .into_iter()
        .filter(|s| after.is_none_or(|n| *s > n))
        .collect();
    sources.push((wal_dir, segs));
    let mut series = HashMap::new();
    let mut samples = Vec::new();
    let mut buf = Vec::new();
    for (d, segs) in sources {
        let mut r = WalReader::new(&d, segs);
        while r.next_record(&mut buf).unwrap() {
            match buf[0] {
                record::TYPE_SERIES => {
                    let mut out: Vec<RefSeries> = Vec::new();
                    record::decode_series(&buf, &mut out, model::labels::Sym::new).unwrap();
                    for s in out {
                        series.insert(s.id, s.labels);
                    }
                }
                record::TYPE_SAMPLES => {
                    let mut out: Vec<RefSample> = Vec::new();
                    record::decode_samples(&buf, &mut out).unwrap();
                    for s in out {
                        let l = series
                            .get(&s.id)
                            .unwrap_or_else(|| panic!("sample of unknown series ref {}", s.id));
                        samples.push((l.get("__name__").unwrap().to_string(), s.t));
                    }
                }
                _ => {}
            }
        }
    }
    (series, samples)
}

#[test]
fn appends_replay_and_order_checks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let mut app = db.appender();
        let r = app.append(None, &lbl("a"), 1_000, 1.0).unwrap();
        app.append(Some(r), &lbl("a"), 2_000, 2.0).unwrap();
        app.append(None, &lbl("b"), 2_000, 5.0).unwrap();
        // Out of order within the batch.
        assert!(matches!(
            app.append(Some(r), &lbl("a"), 1_500, 1.5),
            Err(AppendError::OutOfOrder)
        ));
        app.commit().unwrap();
        assert_eq!(db.num_series(), 2);
        assert_eq!(
            db.stats()
                .samples_appended
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        // A second open of the same directory is refused.
        assert!(AgentDb::open(dir.path(), AgentOptions::default()).is_err());
        db.close().unwrap();
    }
    let db = open(dir.path());
    assert_eq!(db.num_series(), 2);
    // The last timestamps survived the restart.
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &lbl("a"), 1_000, 0.0),
        Err(AppendError::OutOfOrder)
    ));
    assert!(matches!(
        app.append(None, &lbl("b"), 2_000, 6.0),
        Err(AppendError::DuplicateTimestamp)
    ));
    // An exact repeat is accepted and ignored.
    app.append(None, &lbl("b"), 2_000, 5.0).unwrap();
    app.append(None, &lbl("a"), 3_000, 3.0).unwrap();
    app.commit().unwrap();
    db.close().unwrap();
    let (_, samples) = read_wal(dir.path());
    let names: Vec<(String, i64)> = samples;
    assert_eq!(
        names,
        vec![
            ("a".to_string(), 1_000),
            ("a".to_string(), 2_000),
            ("b".to_string(), 2_000),
            ("a".to_string(), 3_000)
        ]
    );
}

#[test]
fn truncation_folds_segments_and_drops_idle_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut app = db.appender();
    app.append(None, &lbl("a"), 0, 1.0).unwrap();
    app.append(None, &lbl("b"), 0, 1.0).unwrap();
    app.commit().unwrap();
    // Nothing is idle yet; segment 0 is folded (no floor).
    let st = db.truncate().unwrap();
    assert_eq!(st.series_removed, 0);
    assert_eq!(st.checkpoint, Some(0));
    let (series, _) = read_wal(dir.path());
    assert_eq!(series.len(), 2, "both series are still live");

    // Only `a` keeps getting samples; ten minutes later `b` is idle.
    let mut app = db.appender();
    app.append(None, &lbl("a"), 10 * MIN, 2.0).unwrap();
    app.commit().unwrap();
    let st = db.truncate().unwrap();
    assert_eq!(st.series_removed, 1);
    assert_eq!(st.checkpoint, Some(1));
    assert_eq!(db.num_series(), 1);
    let (series, samples) = read_wal(dir.path());
    let names: Vec<&str> = series
        .values()
        .map(|l| l.get("__name__").unwrap())
        .collect();
    assert_eq!(names, vec!["a"], "b's record is gone with its segments");
    assert!(samples.is_empty(), "a checkpoint carries no samples");

    // `b` comes back: a new reference and a new series record.
    let mut app = db.appender();
    app.append(None, &lbl("b"), 11 * MIN, 3.0).unwrap();
    app.commit().unwrap();
    let (series, samples) = read_wal(dir.path());
    assert_eq!(series.len(), 2);
    assert_eq!(samples, vec![("b".to_string(), 11 * MIN)]);
    db.close().unwrap();
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.num_series(), 2);
}

#[test]
fn segments_a_reader_needs_are_kept_with_their_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let floor = Arc::new(std::sync::atomic::AtomicU32::new(0));
    {
        let floor = floor.clone();
        db.set_wal_floor(Arc::new(move || {
            Some(floor.load(std::sync::atomic::Ordering::Relaxed))
        }));
    }
    let mut app = db.appender();
    app.append(None, &lbl("a"), 0, 1.0).unwrap();
    app.append(None, &lbl("b"), 0, 1.0).unwrap();
    app.commit().unwrap();
    // A reader still needs segment 0: nothing is folded.
    assert_eq!(db.truncate().unwrap().checkpoint, None);
    let mut app = db.appender();
    app.append(None, &lbl("a"), 10 * MIN, 2.0).unwrap();
    app.commit().unwrap();
    // `b` leaves memory, but its samples in segment 0 are still needed: the record stays.
    let st = db.truncate().unwrap();
    assert_eq!((st.series_removed, st.checkpoint), (1, None));
    let (_, samples) = read_wal(dir.path());
    assert_eq!(samples.len(), 3);
    assert_eq!(
        db.stats()
            .deleted_series
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The reader moves to segment 2: segments 0 and 1 are folded; b was last written in
    // segment 0 (removed at segment 1's start), so its record goes.
    floor.store(2, std::sync::atomic::Ordering::Relaxed);
    let st = db.truncate().unwrap();
    assert_eq!(st.checkpoint, Some(1));
    let (series, samples) = read_wal(dir.path());
    assert_eq!(series.len(), 1);
    assert!(samples.is_empty());
}

#[test]
fn a_series_removed_during_an_open_batch_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut app = db.appender();
    app.append(None, &lbl("old"), 0, 1.0).unwrap();
    app.append(None, &lbl("new"), 10 * MIN, 1.0).unwrap();
    app.commit().unwrap();
    // A batch refers to `old`, then truncation removes `old` (idle), then the batch commits.
    let mut app = db.appender();
    app.append(None, &lbl("old"), MIN, 2.0).unwrap();
    let st = db.truncate().unwrap();
    assert_eq!(st.series_removed, 1);
    app.commit().unwrap();
    // Every sample a reader finds has its series record before it.
    let (series, samples) = read_wal(dir.path());
    assert!(samples.contains(&("old".to_string(), MIN)));
    assert_eq!(series.len(), 2);
}

#[test]
fn a_torn_tail_is_repaired_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        for k in 0..50 {
            let mut app = db.appender();
            app.append(None, &lbl("a"), k * 1000, k as f64).unwrap();
            app.commit().unwrap();
        }
        db.close().unwrap();
    }
    let wal_dir = dir.path().join("wal");
    let last = *wal::list_segments(&wal_dir).unwrap().last().unwrap();
    let seg = wal_dir.join(wal::segment_name(last));
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 3);
    std::fs::write(&seg, bytes).unwrap();
    let db = open(dir.path());
    assert_eq!(
        db.stats()
            .corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(db.num_series(), 1);
    let (_, samples) = read_wal(dir.path());
    assert!(samples.len() >= 48 && samples.len() < 50);
}
