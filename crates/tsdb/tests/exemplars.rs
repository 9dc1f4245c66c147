//! Exemplars in the database: appended with samples, validated, logged to the WAL as
//! Prometheus' exemplar records, restored by replay (also across a checkpoint), resized, and
//! kept out entirely when the storage is disabled.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use model::matcher::Matcher;
use std::path::Path;
use storage::{AppendError, Appendable, Exemplar, ExemplarQueryable};
use tsdb::wal::record;
use tsdb::{Db, DbOptions};

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "requests_total".to_string()),
        ("instance", format!("host-{i}")),
    ])
    .unwrap()
}

fn ex(trace: &str, value: f64, ts: i64) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs([("trace_id", trace)]).unwrap(),
        value,
        ts,
    }
}

fn open(dir: &Path, max_exemplars: usize) -> Db {
    let mut opts = DbOptions::default();
    opts.head.max_exemplars = max_exemplars;
    Db::open(dir, opts).unwrap()
}

/// (instance, [(trace_id, ts)]) of every series with exemplars.
fn dump(db: &Db) -> Vec<(String, Vec<(String, i64)>)> {
    let all = [vec![Matcher::equal("__name__", "requests_total")]];
    db.select_exemplars(i64::MIN, i64::MAX, &all)
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.series_labels.get_or_empty("instance").to_string(),
                r.exemplars
                    .iter()
                    .map(|e| (e.labels.get_or_empty("trace_id").to_string(), e.ts))
                    .collect(),
            )
        })
        .collect()
}

fn exemplar_records(wal: &Path) -> usize {
    let segs = tsdb::wal::list_segments(wal).unwrap();
    let mut r = tsdb::wal::WalReader::new(wal, segs);
    let mut buf = Vec::new();
    let mut n = 0;
    while r.next_record(&mut buf).unwrap() {
        if buf.first() == Some(&record::TYPE_EXEMPLARS) {
            n += 1;
        }
    }
    n
}

#[test]
fn exemplars_are_validated_committed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let want = {
        let db = open(dir.path(), 100);
        for step in 0..5i64 {
            let t = 1_000 + step * 15_000;
            let mut app = db.appender();
            for i in 0..3 {
                let r = app.append(None, &series(i), t, step as f64).unwrap();
                app.append_exemplar(Some(r), &series(i), &ex(&format!("{i}-{step}"), 0.5, t))
                    .unwrap();
            }
            // A repeat of the newest is accepted and ignored; an older one is refused.
            app.append_exemplar(None, &series(0), &ex(&format!("0-{step}"), 0.5, t))
                .unwrap();
            assert_eq!(
                app.append_exemplar(None, &series(0), &ex("old", 0.5, t - 1)),
                Err(AppendError::OutOfOrderExemplar)
            );
            app.commit().unwrap();
        }
        // Nothing of a rolled-back batch is visible.
        let mut app = db.appender();
        app.append_exemplar(None, &series(1), &ex("rolled-back", 1.0, 999_999))
            .unwrap();
        app.rollback().unwrap();
        // Exemplars never create series.
        let mut app = db.appender();
        assert!(matches!(
            app.append_exemplar(None, &series(9), &ex("x", 1.0, 1)),
            Err(AppendError::ExemplarForUnknownSeries(_))
        ));
        let want = dump(&db);
        assert_eq!(want.len(), 3);
        assert_eq!(want[1].0, "host-1");
        assert_eq!(
            want[1].1,
            (0..5)
                .map(|s| (format!("1-{s}"), 1_000 + s * 15_000))
                .collect::<Vec<_>>()
        );
        let st = db.head().exemplar_stats();
        assert_eq!((st.appended, st.in_storage, st.series), (15, 15, 3));
        assert_eq!(st.oldest_ts, 1_000);
        // A time range cuts per exemplar.
        let one = db
            .select_exemplars(
                16_000,
                16_000,
                &[vec![Matcher::equal("instance", "host-2")]],
            )
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].exemplars, vec![ex("2-1", 0.5, 16_000)]);
        db.close().unwrap();
        want
    };
    assert_eq!(exemplar_records(&dir.path().join("wal")), 5);
    // Replay restores them; a smaller storage keeps the newest.
    let db = open(dir.path(), 100);
    assert_eq!(dump(&db), want);
    assert_eq!(db.head().set_max_exemplars(4), 4);
    let kept: usize = dump(&db).iter().map(|(_, e)| e.len()).sum();
    assert_eq!(kept, 4);
    assert_eq!(db.head().exemplar_stats().max, 4);
    db.close().unwrap();
    drop(db);
    // Without exemplar storage nothing is restored, nothing new is logged or kept.
    let db = open(dir.path(), 0);
    assert!(dump(&db).is_empty());
    let mut app = db.appender();
    app.append(None, &series(0), 200_000, 1.0).unwrap();
    app.append_exemplar(None, &series(0), &ex("off", 1.0, 200_000))
        .unwrap();
    app.commit().unwrap();
    assert!(dump(&db).is_empty());
    db.close().unwrap();
    assert_eq!(exemplar_records(&dir.path().join("wal")), 5);
}

#[test]
fn an_exemplar_of_a_series_another_batch_created_logs_the_series() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), 10);
        // Batch A creates the series but is still open when batch B commits an exemplar.
        let mut a = db.appender();
        a.append(None, &series(0), 1_000, 1.0).unwrap();
        let mut b = db.appender();
        b.append_exemplar(None, &series(0), &ex("b", 2.0, 1_000))
            .unwrap();
        b.commit().unwrap();
        a.rollback().unwrap();
        db.close().unwrap();
    }
    let db = open(dir.path(), 10);
    assert_eq!(
        dump(&db),
        vec![("host-0".to_string(), vec![("b".to_string(), 1_000)])]
    );
}

#[test]
fn exemplars_survive_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DbOptions::default();
    opts.head.max_exemplars = 1000;
    opts.head.chunk_range = 60_000;
    opts.compaction = false;
    let hour = 3_600_000;
    {
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        for k in 0..200i64 {
            let t = hour + k * 1_000;
            let mut app = db.appender();
            app.append(None, &series(0), t, k as f64).unwrap();
            if k % 10 == 0 {
                app.append_exemplar(None, &series(0), &ex(&k.to_string(), 1.0, t))
                    .unwrap();
            }
            app.commit().unwrap();
        }
        // Cut the head into blocks: the WAL is checkpointed, keeping what is still in the
        // head.
        let report = db.compact().unwrap();
        assert!(!db.blocks().is_empty(), "{report:?}");
        db.close().unwrap();
    }
    let wal = dir.path().join("wal");
    assert!(
        tsdb::wal::checkpoint::last_checkpoint(&wal)
            .unwrap()
            .is_some(),
        "a checkpoint was written"
    );
    let db = Db::open(dir.path(), opts).unwrap();
    let got = dump(&db);
    assert_eq!(got.len(), 1);
    let ts: Vec<i64> = got[0].1.iter().map(|(_, t)| *t).collect();
    let floor = db.head().min_valid_floor();
    let want: Vec<i64> = (0..200i64)
        .filter(|k| k % 10 == 0)
        .map(|k| hour + k * 1_000)
        .filter(|t| *t >= floor)
        .collect();
    assert!(!want.is_empty() && want.len() < 20, "{floor} {want:?}");
    assert_eq!(ts, want, "exemplars at or after the head's start are kept");
}
