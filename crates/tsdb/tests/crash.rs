//! Crash safety: a child process appends and commits batches, recording each committed batch
//! id in a log file after its commit returns, and is SIGKILLed at random moments. After every
//! kill the database must open, contain every recorded batch in full, and contain no batch
//! beyond the one in flight at the kill (which may or may not have made it), never part of
//! a batch.
//!
//! The child is this test binary itself, re-run with `MERIDIAN_CRASH_CHILD` set. With
//! `MERIDIAN_CRASH_COMPACT` set it also runs `Db::compact` after every batch with a 10 s block
//! range, so kills land while blocks are written, the head is truncated, the WAL is
//! checkpointed and blocks are merged or deleted by retention.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use model::matcher::Matcher;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use storage::{Appendable, Queryable};
use tsdb::{Db, DbOptions};

const SERIES: usize = 40;
const ROUNDS: usize = 25;

fn options(compact: bool) -> DbOptions {
    let mut o = DbOptions::default();
    if compact {
        // A block every 10 batches; merged up to 90 s. Retention is off: every batch must stay.
        o.head.chunk_range = 10_000;
        o.max_block_duration = Some(90_000);
        o.retention_time = 0;
    }
    o
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "crash_test".to_string()), ("i", i.to_string())]).unwrap()
}

/// The child's work: append batches forever (until killed).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("MERIDIAN_CRASH_CHILD") else {
        return; // Only meaningful when started by `survives_sigkill`.
    };
    let dir = Path::new(&dir);
    let start: i64 = std::env::var("MERIDIAN_CRASH_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let compact = std::env::var("MERIDIAN_CRASH_COMPACT").is_ok();
    let db = Db::open(&dir.join("db"), options(compact)).unwrap();
    let log_path = dir.join("committed.log");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    // An earlier child may have been killed mid-line: start on a fresh line so that its torn
    // record cannot merge with ours.
    if std::fs::read(&log_path)
        .unwrap()
        .last()
        .is_some_and(|b| *b != b'\n')
    {
        log.write_all(b"\n").unwrap();
    }
    for batch in start.. {
        let mut app = db.appender();
        for i in 0..SERIES {
            app.append(None, &labels(i), batch * 1000, batch as f64)
                .unwrap();
        }
        app.commit().unwrap();
        // Recorded only after commit returned.
        // One write, so that a kill cannot split the line.
        log.write_all(format!("{batch}\n").as_bytes()).unwrap();
        if compact {
            db.compact().unwrap();
        }
    }
}

/// Batch ids per series found in the database.
fn batches_in_db(dir: &Path, compact: bool) -> BTreeMap<i64, usize> {
    let db = Db::open(&dir.join("db"), options(compact)).expect("the database opens after a crash");
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for s in q
        .select(false, None, &[Matcher::equal("__name__", "crash_test")])
        .unwrap()
    {
        let mut it = s.unwrap().samples;
        while it.next().is_some() {
            let (t, v) = it.at();
            assert_eq!(t, v as i64 * 1000, "sample value matches its batch");
            *count.entry(v as i64).or_default() += 1;
        }
        assert!(it.err().is_none());
    }
    count
}

fn recorded(dir: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(dir.join("committed.log")).unwrap_or_default();
    // The last line may be torn by the kill: only lines ending in a newline count.
    let complete = match text.rfind('\n') {
        Some(p) => &text[..=p],
        None => "",
    };
    complete.lines().filter_map(|l| l.parse().ok()).collect()
}

#[test]
fn survives_sigkill() {
    if std::env::var("MERIDIAN_CRASH_CHILD").is_ok() {
        return;
    }
    run_rounds(false);
}

#[test]
fn survives_sigkill_during_compaction() {
    if std::env::var("MERIDIAN_CRASH_CHILD").is_ok() {
        return;
    }
    run_rounds(true);
}

fn run_rounds(compact: bool) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // A simple deterministic spread of kill delays (ms), varied per round.
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next_start = 1;
    let mut total_batches = 0;
    // Kills that left a block, a deletion or a WAL checkpoint half-done.
    let mut mid_write = 0;
    for round in 0..ROUNDS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = 30 + rng % 400;
        let mut cmd = Command::new(&exe);
        if compact {
            cmd.env("MERIDIAN_CRASH_COMPACT", "1");
        }
        let mut child = cmd
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("MERIDIAN_CRASH_CHILD", dir.path())
            .env("MERIDIAN_CRASH_START", next_start.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if has_tmp(&dir.path().join("db")) || has_tmp(&dir.path().join("db").join("wal")) {
            mid_write += 1;
        }

        let rec = recorded(dir.path());
        let found = batches_in_db(dir.path(), compact);
        for b in &rec {
            assert_eq!(
                found.get(b),
                Some(&SERIES),
                "round {round}: committed batch {b} incomplete or missing"
            );
        }
        let max_rec = rec.iter().copied().max().unwrap_or(0);
        for (b, n) in &found {
            assert_eq!(*n, SERIES, "round {round}: batch {b} is partial");
            assert!(
                *b <= max_rec + 1,
                "round {round}: batch {b} was never committed (last recorded {max_rec})"
            );
        }
        next_start = found.keys().copied().max().unwrap_or(0).max(max_rec) + 1;
        total_batches = found.len();
    }
    assert!(
        total_batches > ROUNDS,
        "children made progress ({total_batches} batches)"
    );
    if compact {
        let blocks = std::fs::read_dir(dir.path().join("db"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("meta.json").exists())
            .count();
        assert!(blocks > 0, "blocks were written");
        println!(
            "crash test with compaction: {ROUNDS} SIGKILL rounds ({mid_write} in the middle of writing a block or checkpoint), {total_batches} batches intact, {blocks} blocks"
        );
    } else {
        println!("crash test: {ROUNDS} SIGKILL rounds, {total_batches} batches intact");
    }
}

/// Whether `dir` holds a temporary directory of an interrupted write.
fn has_tmp(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".tmp"))
    })
}
