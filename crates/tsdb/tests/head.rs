//! The head through the storage interfaces: append, commit, query across chunk boundaries,
//! restart with WAL replay, ordering errors, corrupt-WAL repair, and the directory lock.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use std::path::Path;
use storage::{AppendError, Appendable, Queryable};
use tsdb::{Db, DbOptions};

fn series(name: &str, i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", name.to_string()),
        ("instance", format!("host-{i}")),
        ("job", "node".to_string()),
    ])
    .unwrap()
}

fn read_all(db: &Db, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = db.querier(mint, maxt).unwrap();
    q.select(true, None, matchers)
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            let mut it = s.samples;
            let mut v = Vec::new();
            while it.next().is_some() {
                v.push(it.at());
            }
            assert!(it.err().is_none());
            (s.labels, v)
        })
        .collect()
}

fn open(dir: &Path) -> Db {
    Db::open(dir, DbOptions::default()).unwrap()
}

#[test]
fn append_query_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        // 10 series × 500 samples: several full chunks on disk plus an open one each.
        for batch in 0..500i64 {
            let mut app = db.appender();
            for i in 0..10 {
                app.append(
                    None,
                    &series("cpu", i),
                    batch * 15_000,
                    (batch * i as i64) as f64,
                )
                .unwrap();
            }
            app.commit().unwrap();
        }
        // An uncommitted batch must never appear.
        let mut app = db.appender();
        app.append(None, &series("cpu", 0), 500 * 15_000, -1.0)
            .unwrap();
        drop(app);
        let got = read_all(
            &db,
            &[Matcher::equal("__name__", "cpu")],
            i64::MIN,
            i64::MAX,
        );
        assert_eq!(got.len(), 10);
        assert_eq!(got[3].1.len(), 500);
        assert!(
            db.head()
                .stats()
                .samples_appended
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 5000
        );
    }
    let db = open(dir.path());
    let got = read_all(
        &db,
        &[Matcher::equal("__name__", "cpu")],
        i64::MIN,
        i64::MAX,
    );
    assert_eq!(got.len(), 10);
    for (labels, samples) in &got {
        let i: i64 = labels.get("instance").unwrap()[5..].parse().unwrap();
        assert_eq!(samples.len(), 500, "{labels}");
        for (b, (t, v)) in samples.iter().enumerate() {
            assert_eq!(*t, b as i64 * 15_000);
            assert_eq!(*v, (b as i64 * i) as f64);
        }
    }
    // Range restriction and seeking across chunks.
    let got = read_all(
        &db,
        &[Matcher::new(MatchOp::RegexMatch, "instance", "host-[12]").unwrap()],
        1_000_000,
        2_000_000,
    );
    assert_eq!(got.len(), 2);
    assert!(
        got[0]
            .1
            .iter()
            .all(|(t, _)| (1_000_000..=2_000_000).contains(t))
    );
    assert_eq!(got[0].1.len(), 67);
    let q = db.querier(0, i64::MAX).unwrap();
    let mut it = q
        .select(false, None, &[Matcher::equal("instance", "host-1")])
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .samples;
    assert!(it.seek(4_000_001).is_some());
    assert_eq!(it.at_t(), 4_005_000);
    assert!(it.seek(100).is_some(), "seek does not go back");
    assert_eq!(it.at_t(), 4_005_000);
    assert!(it.seek(7_485_000).is_some());
    assert!(it.next().is_none());
    // Label queries.
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["node"]);
    assert_eq!(
        q.label_values("instance", &[Matcher::equal("instance", "host-7")])
            .unwrap(),
        vec!["host-7"]
    );
}

#[test]
fn ordering_errors_are_distinct_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let l = series("x", 0);
    let mut app = db.appender();
    app.append(None, &l, 10_000_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert_eq!(
        app.append(None, &l, 9_999_999, 1.0),
        Err(AppendError::OutOfOrder)
    );
    assert_eq!(
        app.append(None, &l, 10_000_000, 2.0),
        Err(AppendError::DuplicateTimestamp)
    );
    assert!(
        app.append(None, &l, 10_000_000, 1.0).is_ok(),
        "an identical repeat is accepted"
    );
    // More than an hour behind the newest sample: out of bounds even for a new series.
    assert_eq!(
        app.append(None, &series("y", 0), 10_000_000 - 3_600_001, 1.0),
        Err(AppendError::OutOfBounds)
    );
    let stale = model::sample::stale_nan();
    app.append(None, &l, 10_000_001, stale).unwrap();
    app.commit().unwrap();
    let s = db.head().stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        (
            s.out_of_order.load(Relaxed),
            s.duplicates.load(Relaxed),
            s.out_of_bounds.load(Relaxed)
        ),
        (1, 1, 1)
    );
    drop(db);
    // The staleness marker survives a restart bit for bit.
    let db = open(dir.path());
    let got = read_all(&db, &[Matcher::equal("__name__", "x")], 0, i64::MAX);
    assert_eq!(got[0].1.len(), 2);
    assert_eq!(got[0].1[1].1.to_bits(), model::sample::STALE_NAN_BITS);
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let err = Db::open(dir.path(), DbOptions::default()).err().unwrap();
    assert!(err.to_string().contains("in use"), "{err}");
    drop(db);
    open(dir.path());
}

#[test]
fn corrupt_wal_tail_is_repaired_on_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        for b in 0..200i64 {
            let mut app = db.appender();
            for i in 0..50 {
                app.append(None, &series("m", i), b * 1000, b as f64)
                    .unwrap();
            }
            app.commit().unwrap();
        }
    }
    // Flip a byte near the end of the newest non-empty segment and chop its last bytes.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let seg = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut bytes = std::fs::read(seg).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff;
    bytes.truncate(n - 10);
    std::fs::write(seg, &bytes).unwrap();

    let db = open(dir.path());
    let s = db.head().stats();
    assert_eq!(
        s.wal_corruptions.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(
        s.wal_bytes_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    let got = read_all(&db, &[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX);
    // Whole batches survive (a commit is one record): every series has the same count, and
    // only the newest batches can be missing.
    let counts: Vec<usize> = got.iter().map(|(_, v)| v.len()).collect();
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    assert!(counts[0] >= 150 && counts[0] < 200, "{counts:?}");
    // The repaired WAL takes new writes and replays cleanly.
    let mut app = db.appender();
    app.append(None, &series("m", 0), 1_000_000, 1.0).unwrap();
    app.commit().unwrap();
    drop(db);
    let db = open(dir.path());
    assert_eq!(
        db.head()
            .stats()
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn sorted_select_merges_many_runs_in_label_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    // More series than one sort run holds, created in an order unrelated to label order, with
    // label sets of different lengths and shared prefixes.
    let n = 40_000usize;
    let mut app = db.appender();
    for i in 0..n {
        let k = (i * 7919) % n;
        let mut pairs = vec![
            ("__name__", format!("m{}", k % 3)),
            ("instance", format!("host-{}", k / 7)),
        ];
        if k.is_multiple_of(5) {
            pairs.push(("zone", format!("z{}", k % 11)));
        } else {
            pairs.push(("job", format!("j{}", k % 4)));
        }
        app.append(None, &Labels::from_pairs(pairs).unwrap(), 1_000, k as f64)
            .unwrap();
    }
    app.commit().unwrap();
    // A series with no sample in the range is left out.
    let mut app = db.appender();
    app.append(None, &series("late", 1), 5_000_000, 1.0)
        .unwrap();
    app.commit().unwrap();

    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
    let got = read_all(&db, &all, 0, 2_000);
    assert_eq!(got.len(), n);
    let labels: Vec<&Labels> = got.iter().map(|(l, _)| l).collect();
    let mut expected = labels.clone();
    expected.sort();
    assert!(labels == expected, "series are not in label order");
    assert!(got.iter().all(|(_, s)| s.len() == 1 && s[0].0 == 1_000));

    // Unsorted: the same set.
    let q = db.querier(0, 2_000).unwrap();
    let mut unsorted: Vec<Labels> = q
        .select(false, None, &all)
        .unwrap()
        .map(|s| s.unwrap().labels)
        .collect();
    unsorted.sort();
    assert_eq!(unsorted.iter().collect::<Vec<_>>(), expected);

    // Label names and values under matchers.
    let zone = [Matcher::new(MatchOp::RegexMatch, "zone", "z1|z2").unwrap()];
    assert_eq!(q.label_values("zone", &zone).unwrap(), vec!["z1", "z2"]);
    assert_eq!(
        q.label_names(&zone).unwrap(),
        vec!["__name__", "instance", "zone"]
    );
    assert_eq!(q.label_values("job", &zone).unwrap(), Vec::<String>::new());
}
