//! The database with persistent blocks: head cutting, queries over blocks and head, level and
//! vertical compaction, retention, tombstones, snapshots, and reopening.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use storage::{Appendable, Queryable};
use tsdb::block::{BlockSpec, ChunkData, write_block};
use tsdb::chunkenc::{ENCODING_XOR, XorAppender};
use tsdb::{Db, DbOptions};

type Samples = BTreeMap<Labels, Vec<(i64, f64)>>;

fn small_opts() -> DbOptions {
    let mut o = DbOptions::default();
    o.head.chunk_range = 10_000;
    o.max_block_duration = Some(90_000);
    o.retention_time = 0;
    o
}

fn lbl(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]).unwrap()
}

fn all(db: &Db) -> Samples {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Samples::new();
    for s in q
        .select(
            true,
            None,
            &[Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()],
        )
        .unwrap()
    {
        let s = s.unwrap();
        let mut it = s.samples;
        let v = out.entry(s.labels.clone()).or_default();
        while it.next().is_some() {
            v.push(it.at());
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    out
}

/// Appends `n` samples per series at 1 s intervals starting at `start`, one commit per second.
fn fill(db: &Db, series: usize, start: i64, n: i64, want: &mut Samples) {
    for k in 0..n {
        let t = start + k * 1000;
        let mut app = db.appender();
        for i in 0..series {
            let v = (t / 1000) as f64 * (i + 1) as f64;
            app.append(None, &lbl(i), t, v).unwrap();
            want.entry(lbl(i)).or_default().push((t, v));
        }
        app.commit().unwrap();
    }
}

fn block_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn head_cut_into_blocks_then_compacted_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db, 20, 0, 200, &mut want);
        let r = db.compact().unwrap();
        assert!(r.head_blocks >= 17, "{r:?}");
        assert!(r.merged_blocks > 0, "level compaction ran: {r:?}");
        // The head keeps at most 1.5 block ranges.
        let (min, max) = db.head().time_range().unwrap();
        assert!(max - min <= 15_000, "{min} {max}");
        assert_eq!(
            all(&db),
            want,
            "blocks + head return every sample exactly once"
        );
        // The WAL was checkpointed.
        let wal: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");
        let levels: Vec<u32> = db
            .blocks()
            .iter()
            .map(|b| b.meta().compaction.level)
            .collect();
        assert!(levels.iter().any(|l| *l >= 2), "{levels:?}");
        // Blocks never overlap after compaction.
        let blocks = db.blocks();
        for w in blocks.windows(2) {
            assert!(w[0].meta().max_time <= w[1].meta().min_time);
        }
        fill(&db, 20, 200_000, 5, &mut want);
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&db), want, "reopened: same samples, none duplicated");
    // Narrow range queries cross block boundaries correctly.
    let q = db.querier(25_500, 35_000).unwrap();
    let s: Vec<_> = q
        .select(true, None, &[Matcher::equal("i", "3")])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(s.len(), 1);
    let mut it = s.into_iter().next().unwrap().samples;
    let mut ts = Vec::new();
    while it.next().is_some() {
        ts.push(it.at_t());
    }
    assert_eq!(ts, (26..=35).map(|s| s * 1000).collect::<Vec<_>>());
    assert_eq!(
        db.querier(0, i64::MAX)
            .unwrap()
            .label_values("i", &[])
            .unwrap()
            .len(),
        20
    );
}

fn encode(samples: &[(i64, f64)]) -> ChunkData<'static> {
    let mut b = Vec::new();
    let mut a = XorAppender::new();
    for (t, v) in samples {
        a.append(&mut b, *t, *v);
    }
    ChunkData {
        encoding: ENCODING_XOR,
        data: Cow::Owned(b),
        min_t: samples[0].0,
        max_t: samples[samples.len() - 1].0,
    }
}

#[test]
fn overlapping_blocks_are_deduplicated_and_merged_vertically() {
    let dir = tempfile::tempdir().unwrap();
    let labels = vec![lbl(0), lbl(1)];
    // Block A: t = 0..100 s; block B: t = 50..150 s (same values where they overlap).
    for (from, to) in [(0i64, 100i64), (50, 150)] {
        let spec = BlockSpec {
            min_time: from * 1000,
            max_time: to * 1000,
            level: 1,
            ..Default::default()
        };
        write_block(dir.path(), &spec, &labels, |i, out| {
            let s: Vec<(i64, f64)> = (from..to)
                .map(|t| (t * 1000, (t * (i as i64 + 1)) as f64))
                .collect();
            out.push(encode(&s));
            Ok(())
        })
        .unwrap()
        .unwrap();
    }
    let want: Samples = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.clone(),
                (0..150)
                    .map(|t| (t * 1000, (t * (i as i64 + 1)) as f64))
                    .collect(),
            )
        })
        .collect();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(db.blocks().len(), 2);
    assert_eq!(all(&db), want, "queries deduplicate overlapping blocks");
    db.compact().unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(
        db.stats()
            .vertical_compactions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let m = db.blocks()[0].meta().clone();
    assert_eq!((m.min_time, m.max_time), (0, 150_000));
    assert_eq!(m.stats.num_samples, 300);
    assert_eq!(m.compaction.level, 2);
    assert_eq!(m.compaction.parents.len(), 2);
    assert_eq!(all(&db), want);
    drop(db);
    assert_eq!(block_dirs(dir.path()).len(), 1, "parents deleted");
}

#[test]
fn retention_by_time_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    let mut o = small_opts();
    o.compaction = false;
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        fill(&db, 5, 0, 100, &mut want);
        db.compact().unwrap();
        assert_eq!(db.blocks().len(), 9);
    }
    // Time: keep blocks ending within 30 s of the newest block's end.
    o.retention_time = 30_000;
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let r = db.compact().unwrap();
    assert_eq!(r.time_retentions, 5, "{r:?}");
    assert_eq!(
        db.stats()
            .time_retentions
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    let mins: Vec<i64> = db.blocks().iter().map(|b| b.meta().min_time).collect();
    assert_eq!(mins, [50_000, 60_000, 70_000, 80_000]);
    let got = all(&db);
    assert_eq!(
        got[&lbl(0)].first().unwrap().0,
        50_000,
        "oldest data removed first"
    );
    drop(db);

    // Size: a budget of the WAL, the head chunks and one block keeps only the newest block.
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let newest = db.blocks().last().unwrap().size();
    let budget = db.wal_size() + db.head().chunks_disk_size() + newest;
    drop(db);
    o.retention_size = budget;
    let db = Db::open(dir.path(), o).unwrap();
    let r = db.compact().unwrap();
    assert_eq!(r.size_retentions, 3, "{r:?}");
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(db.blocks()[0].meta().min_time, 80_000);
    assert_eq!(block_dirs(dir.path()).len(), 1);
}

#[test]
fn tombstones_snapshot_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    fill(&db, 3, 0, 60, &mut want);
    db.compact().unwrap();
    let n = db
        .delete_series(0, 19_999, &[Matcher::equal("i", "1")])
        .unwrap();
    assert!(n > 0);
    want.get_mut(&lbl(1)).unwrap().retain(|(t, _)| *t >= 20_000);
    assert_eq!(all(&db), want, "deleted samples are hidden");
    assert!(db.clean_tombstones().unwrap() > 0);
    assert_eq!(all(&db), want, "and gone after cleaning tombstones");
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));

    let snap = tempfile::tempdir().unwrap();
    db.snapshot(snap.path(), true).unwrap();
    drop(db);
    // A crash leftover and a half-written block are removed on open.
    std::fs::create_dir_all(
        dir.path()
            .join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp-for-creation/chunks"),
    )
    .unwrap();
    std::fs::create_dir_all(
        dir.path()
            .join("01ARZ3NDEKTSV4RRFFQ69G5FAW.tmp-for-deletion"),
    )
    .unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&db), want);
    assert!(
        !dir.path()
            .join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp-for-creation")
            .exists()
    );
    assert!(
        !dir.path()
            .join("01ARZ3NDEKTSV4RRFFQ69G5FAW.tmp-for-deletion")
            .exists()
    );
    // The snapshot alone (blocks only, head written as a block) holds everything.
    let sdb = Db::open(snap.path(), small_opts()).unwrap();
    assert_eq!(all(&sdb), want, "snapshot is complete");
    assert!(sdb.head().time_range().is_none());
    let _ = Arc::new(());
}

#[test]
fn deleting_from_the_head_survives_restart_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db, 3, 0, 60, &mut want);
        db.compact().unwrap();
        let (hmin, _) = db.head().time_range().unwrap();
        assert!(hmin <= 52_000, "the range to delete is in the head");
        let n = db
            .delete_series(52_000, 56_000, &[Matcher::equal("i", "2")])
            .unwrap();
        assert_eq!(n, 1);
        want.get_mut(&lbl(2))
            .unwrap()
            .retain(|(t, _)| !(52_000..=56_000).contains(t));
        assert_eq!(all(&db), want, "hidden at once");
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&db), want, "the WAL tombstone is replayed");
    fill(&db, 3, 60_000, 40, &mut want);
    db.compact().unwrap();
    assert!(
        db.head().time_range().unwrap().0 > 56_000,
        "the range is now in blocks"
    );
    assert_eq!(all(&db), want, "and left out of the block");
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&db), want, "after a checkpointed restart too");
}

#[test]
fn corrupt_block_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db, 2, 0, 40, &mut want);
        db.compact().unwrap();
    }
    let b = block_dirs(dir.path()).into_iter().next().unwrap();
    let idx = dir.path().join(&b).join("index");
    let mut bytes = std::fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff; // TOC checksum no longer matches
    std::fs::write(&idx, bytes).unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(
        db.stats()
            .blocks_corrupt
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let _ = all(&db);
}

#[test]
fn queries_see_every_sample_once_while_compacting() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    let committed = Arc::new(AtomicI64::new(-1));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, committed, done) = (db.clone(), committed.clone(), done.clone());
        std::thread::spawn(move || {
            for k in 0..1500i64 {
                let mut app = db.appender();
                for i in 0..4 {
                    app.append(None, &lbl(i), k * 1000, k as f64).unwrap();
                }
                app.commit().unwrap();
                committed.store(k, Ordering::Release);
            }
            done.store(true, Ordering::Release);
        })
    };
    let compactor = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                n += db.compact().unwrap().head_blocks;
            }
            n + db.compact().unwrap().head_blocks
        })
    };
    let mut checks = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        let upto = committed.load(Ordering::Acquire);
        if upto >= 0 {
            let got = all(&db);
            for i in 0..4 {
                let ts: Vec<i64> = got[&lbl(i)].iter().map(|(t, _)| *t / 1000).collect();
                let prefix: Vec<i64> = ts.iter().copied().take_while(|k| *k <= upto).collect();
                assert_eq!(
                    prefix,
                    (0..=upto).collect::<Vec<_>>(),
                    "series {i}: every committed sample exactly once (check {checks})"
                );
            }
            checks += 1;
        }
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    let blocks = compactor.join().unwrap();
    assert!(
        blocks > 50,
        "compaction ran concurrently ({blocks} head blocks)"
    );
    assert!(checks > 5, "queries ran concurrently ({checks})");
}

/// The states a crash can leave between the steps of persisting and compacting, recreated
/// exactly: each must reopen with every sample present once.
#[test]
fn crash_states_between_steps_reopen_cleanly() {
    // A: the block from the head is in place, the head was not truncated nor the WAL
    // checkpointed.
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db, 4, 0, 60, &mut want);
        let (mint, maxt) = db.head().compactable_range(10_000).unwrap();
        db.head()
            .write_block(dir.path(), mint, maxt, 480)
            .unwrap()
            .unwrap();
    }
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        assert_eq!(db.blocks().len(), 1);
        assert_eq!(
            all(&db),
            want,
            "A: block and WAL overlap without duplicates"
        );
        db.compact().unwrap();
        assert_eq!(all(&db), want, "A: and after compaction");
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&db), want);
    drop(db);

    // B: a merged block is in place, its parents were not deleted yet.
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    let mut o = small_opts();
    o.compaction = false;
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        fill(&db, 4, 0, 60, &mut want);
        db.compact().unwrap();
        let blocks = db.blocks();
        assert!(blocks.len() >= 3);
        tsdb::compact::compact_blocks(dir.path(), &blocks[..3], 480)
            .unwrap()
            .unwrap();
    }
    let before = block_dirs(dir.path()).len();
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert_eq!(
        block_dirs(dir.path()).len(),
        before - 3,
        "B: parents removed at open"
    );
    assert_eq!(all(&db), want, "B: no duplicates, nothing lost");
    drop(db);

    // C: a WAL checkpoint was written, the segments it covers were not deleted.
    let dir = tempfile::tempdir().unwrap();
    let mut want = Samples::new();
    for round in 0..3 {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        fill(&db, 4, round * 10_000, 10, &mut want);
    }
    let wal = dir.path().join("wal");
    let segs = tsdb::wal::list_segments(&wal).unwrap();
    let last = segs[segs.len() - 2];
    tsdb::wal::checkpoint::create(&wal, last, |_| true, i64::MIN, true).unwrap();
    assert!(tsdb::wal::list_segments(&wal).unwrap().contains(&last));
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(
        all(&db),
        want,
        "C: checkpoint and covered segments replay once"
    );
    assert!(!tsdb::wal::list_segments(&wal).unwrap().contains(&last));
}

#[test]
fn a_failing_merge_is_marked_and_does_not_stop_retention() {
    let dir = tempfile::tempdir().unwrap();
    let labels = vec![lbl(0)];
    // Two overlapping blocks; one holds a chunk in an encoding Meridian cannot decode (a native
    // histogram chunk), so the vertical merge fails.
    for (from, enc) in [(0i64, 2u8), (50, ENCODING_XOR)] {
        let spec = BlockSpec {
            min_time: from * 1000,
            max_time: (from + 100) * 1000,
            level: 1,
            ..Default::default()
        };
        write_block(dir.path(), &spec, &labels, |_, out| {
            let mut c = encode(&[(from * 1000, 1.0), ((from + 99) * 1000, 2.0)]);
            c.encoding = enc;
            out.push(c);
            Ok(())
        })
        .unwrap()
        .unwrap();
    }
    // An old block for time retention to remove.
    let spec = BlockSpec {
        min_time: -1_000_000,
        max_time: -900_000,
        level: 1,
        ..Default::default()
    };
    write_block(dir.path(), &spec, &labels, |_, out| {
        out.push(encode(&[(-950_000, 1.0)]));
        Ok(())
    })
    .unwrap()
    .unwrap();
    let mut o = small_opts();
    o.retention_time = 500_000;
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert!(db.compact().is_err(), "the merge fails");
    assert_eq!(
        db.stats()
            .compactions_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        db.stats()
            .time_retentions
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "retention still ran"
    );
    let r = db.compact().unwrap();
    assert_eq!(r.merged_blocks, 0, "not retried");
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    assert!(db.blocks().iter().all(|b| b.meta().compaction.failed));
    db.compact().unwrap();
    assert_eq!(db.blocks().len(), 2);
}
