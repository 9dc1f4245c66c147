//! A WAL reader's floor (the remote-write queues' oldest needed segment) holds back WAL
//! truncation: head cutting still makes blocks, but no segment at or after the floor is
//! checkpointed away; once the floor moves on, the next cut deletes them.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use storage::Appendable;
use tsdb::{Db, DbOptions};

fn fill(db: &Db, start: i64, n: i64) {
    for k in 0..n {
        let t = start + k * 1000;
        let mut app = db.appender();
        for i in 0..5 {
            let l =
                Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]).unwrap();
            app.append(None, &l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

fn segments(dir: &std::path::Path) -> Vec<u32> {
    tsdb::wal::list_segments(&dir.join("wal")).unwrap()
}

#[test]
fn checkpoints_keep_what_a_reader_still_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DbOptions::default();
    opts.head.chunk_range = 10_000;
    opts.retention_time = 0;
    let db = Db::open(dir.path(), opts).unwrap();
    // -1: no floor; otherwise the oldest segment still needed.
    let floor = Arc::new(AtomicI64::new(0));
    let f = floor.clone();
    db.head().set_wal_floor(Arc::new(move || {
        u32::try_from(f.load(Ordering::SeqCst)).ok()
    }));

    fill(&db, 0, 40);
    db.compact().unwrap();
    assert!(!db.blocks().is_empty(), "the head was cut into blocks");
    assert_eq!(
        segments(dir.path()).first(),
        Some(&0),
        "segment 0 is still needed"
    );

    floor.store(-1, Ordering::SeqCst);
    fill(&db, 40_000, 40);
    db.compact().unwrap();
    let left = segments(dir.path());
    assert!(
        left.first().is_some_and(|s| *s > 0),
        "segment 0 checkpointed away: {left:?}"
    );
}
