//! Scraping into the real TSDB (`tsdb::Db`): samples, staleness markers (by their bits) and
//! synthetic series are stored, and survive closing and reopening the database.

mod common;

use std::sync::Arc;

use common::*;
use discovery::{DiscovererOptions, DiscoveryOptions};
use scrape::{ScrapeManager, ScrapeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_into_the_tsdb_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = TestTarget::start("a 1\nb 2\n").await;
    let addr = target.addr;
    let db = Arc::new(
        tsdb::Db::open(dir.path(), tsdb::DbOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    );
    let manager = ScrapeManager::new(
        db.clone(),
        ScrapeOptions {
            skip_offsetting: true,
            discovery: DiscoveryOptions {
                update_interval: std::time::Duration::from_millis(10),
                discoverer: DiscovererOptions::default(),
            },
            ..ScrapeOptions::default()
        },
    );
    manager
        .apply_config(&load_config(&job_config("j", addr, "100ms", "")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = series("b", addr, "j", &[]);
    let up = series("up", addr, "j", &[]);
    wait_until("b scraped twice, up five times", || {
        values(db.as_ref(), &b).len() >= 2 && values(db.as_ref(), &up).len() >= 5
    })
    .await;
    target.set_body("a 1\n");
    wait_until("b stale", || {
        points(db.as_ref(), &b).iter().any(|p| p.stale)
    })
    .await;
    manager.stop().await;
    let before = dump(db.as_ref());
    db.close().unwrap_or_else(|e| panic!("{e}"));
    // The manager holds the storage too; the lock is released with the last reference.
    drop(manager);
    assert_eq!(
        Arc::strong_count(&db),
        1,
        "the stopped manager let go of the storage"
    );
    drop(db);

    let reopened =
        tsdb::Db::open(dir.path(), tsdb::DbOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let after = dump(&reopened);
    assert_eq!(before, after);
    assert!(after.contains_key(&series("up", addr, "j", &[])));
    assert!(after[&b].last().is_some_and(|p| p.stale));
    // Timestamps sit on the 100 ms grid: jitter within the tolerance is snapped away. A
    // scrape delayed past the tolerance (a loaded CI machine) keeps its real time, so the
    // check is that most timestamps share one position on the grid; unaligned timestamps
    // would scatter over the 100 possible positions.
    let up_times: Vec<i64> = after[&up].iter().map(|p| p.t).collect();
    let mut on_grid = std::collections::HashMap::new();
    for t in &up_times {
        *on_grid.entry(t.rem_euclid(100)).or_insert(0) += 1;
    }
    assert!(on_grid.values().any(|n| *n >= 3), "{up_times:?}");
}
