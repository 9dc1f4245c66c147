//! The database directory: an exclusive lock file, the head, the persistent blocks, and the
//! storage interfaces over all of them.
//!
//! Layout (as Prometheus'): `lock`, `wal/` (segments and `checkpoint.N/`), `chunks_head/`, and
//! one directory per block named by its ULID. A directory written by Prometheus opens as is.
//!
//! Opening removes leftovers of interrupted work (`*.tmp-for-creation`, `*.tmp-for-deletion`,
//! `*.tmp` directories, blocks already merged into a compacted block), loads every block, and
//! replays the WAL into the head, ignoring samples older than the newest block's end (they
//! were persisted before a crash stopped the WAL checkpoint).
//!
//! [`Db::compact`] does the periodic work, in Prometheus' order: persist the head's oldest
//! block range while the head spans more than 1.5 ranges (then truncate the head and
//! checkpoint the WAL), merge blocks by level (2h → 6h → 18h …, capped by
//! `max_block_duration`) and overlapping blocks (vertical compaction), and apply retention by
//! time and size, oldest blocks first. The server calls it every minute.
//!
//! Queries merge the head and every block overlapping the range; where they overlap the head
//! wins and duplicates at equal timestamps are removed.

use crate::block::{self, Block, BlockMeta};
use crate::compact;
use crate::encoding::fsync_dir;
use crate::head::{Head, HeadOptions};
use model::matcher::Matcher;
use model::sample::Timestamp;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use storage::merge::MergeQuerier;
use storage::{Appendable, Appender, Querier, Queryable, StorageError};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Settings of the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Head settings; `head.chunk_range` is also the smallest block range (2h).
    pub head: HeadOptions,
    /// Keep blocks whose end is within this many milliseconds of the newest block's end
    /// (`--storage.tsdb.retention.time`, default 15d); 0 disables.
    pub retention_time: i64,
    /// Delete the oldest blocks while blocks, WAL and head chunks exceed this many bytes
    /// (`--storage.tsdb.retention.size`); 0 disables.
    pub retention_size: u64,
    /// Largest block a compaction may produce, in milliseconds. `None`: 10% of the retention
    /// time, at most 31 days (Prometheus' rule).
    pub max_block_duration: Option<i64>,
    /// Merge blocks by level and overlap (disable for tests of head cutting alone).
    pub compaction: bool,
    /// Chunks written to blocks hold up to this many samples (consecutive head chunks are
    /// merged); 0 keeps the head's 120-sample chunks as Prometheus does.
    pub max_chunk_samples: u16,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            retention_time: 15 * DAY,
            retention_size: 0,
            max_block_duration: None,
            compaction: true,
            max_chunk_samples: block::DEFAULT_MAX_CHUNK_SAMPLES,
        }
    }
}

impl DbOptions {
    /// The block ranges compaction produces: the head's range times 3^k, up to the maximum.
    pub fn block_ranges(&self) -> Vec<i64> {
        let min = self.head.chunk_range.max(1);
        let max = self.max_block_duration.unwrap_or_else(|| {
            let cap = 31 * DAY;
            if self.retention_time > 0 {
                (self.retention_time / 10).min(cap)
            } else {
                cap
            }
        });
        let mut out = vec![min];
        let mut r = min;
        for _ in 0..9 {
            r = r.saturating_mul(3);
            if r > max {
                break;
            }
            out.push(r);
        }
        out
    }
}

/// Counters of the database's block management (exported by the server as
/// `prometheus_tsdb_*` metrics; see [`Db::stats`]).
#[derive(Debug, Default)]
pub struct DbStats {
    /// Blocks written from the head (`prometheus_tsdb_compactions_total` counts these and the
    /// block merges).
    pub head_blocks_written: AtomicU64,
    /// Block merges by level or overlap.
    pub compactions: AtomicU64,
    /// Of which vertical (overlapping blocks) (`prometheus_tsdb_vertical_compactions_total`).
    pub vertical_compactions: AtomicU64,
    /// Failed head persistence or compaction runs (`prometheus_tsdb_compactions_failed_total`).
    pub compactions_failed: AtomicU64,
    /// Blocks removed by time retention (`prometheus_tsdb_time_retentions_total`).
    pub time_retentions: AtomicU64,
    /// Blocks removed by size retention (`prometheus_tsdb_size_retentions_total`).
    pub size_retentions: AtomicU64,
    /// Block directories that failed to open and were skipped.
    pub blocks_corrupt: AtomicU64,
}

/// An open database. Dropping it releases the lock (after closing the WAL).
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    /// Sorted by min time. Shared with queriers, which read it when they select.
    blocks: Arc<RwLock<Vec<Arc<Block>>>>,
    compacting: Mutex<()>,
    /// Blocks whose merge failed (also recorded in their meta.json).
    failed: Mutex<std::collections::HashSet<String>>,
    stats: DbStats,
    _lock: File,
}

/// Why a database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data directory {0} is in use by another process (lock file held)")]
    Locked(PathBuf),
    #[error("opening the data directory {dir}: {err}")]
    Io { dir: PathBuf, err: std::io::Error },
}

/// What one [`Db::compact`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactReport {
    pub head_blocks: usize,
    pub merged_blocks: usize,
    pub time_retentions: usize,
    pub size_retentions: usize,
}

impl Db {
    /// Opens (creating when needed) the database in `dir`, loads its blocks and replays its WAL.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, OpenError> {
        let io = |err| OpenError::Io {
            dir: dir.to_path_buf(),
            err,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let stats = DbStats::default();
        remove_tmp_dirs(dir).map_err(io)?;
        let blocks = load_blocks(dir, &stats).map_err(io)?;
        let floor = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(i64::MIN);
        let head = Head::open_with_floor(dir, opts.head.clone(), floor).map_err(io)?;
        tracing::info!(blocks = blocks.len(), "TSDB started");
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            blocks: Arc::new(RwLock::new(blocks)),
            compacting: Mutex::new(()),
            failed: Mutex::new(std::collections::HashSet::new()),
            stats,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    pub fn stats(&self) -> &DbStats {
        &self.stats
    }

    /// The loaded blocks, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes of all blocks on disk.
    pub fn blocks_size(&self) -> u64 {
        self.blocks().iter().map(|b| b.size()).sum()
    }

    /// Bytes of the WAL (segments and checkpoint).
    pub fn wal_size(&self) -> u64 {
        dir_size(&self.dir.join("wal"))
    }

    /// Oldest sample time over blocks and head (`prometheus_tsdb_lowest_timestamp`).
    pub fn lowest_timestamp(&self) -> Option<Timestamp> {
        let b = self.blocks().first().map(|b| b.meta().min_time);
        let h = self.head.time_range().map(|r| r.0);
        match (b, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Syncs the WAL to the device (call periodically and at shutdown).
    pub fn sync(&self) -> std::io::Result<()> {
        self.head.sync_wal()
    }

    /// Closes the WAL; the lock is released when the `Db` is dropped.
    pub fn close(&self) -> std::io::Result<()> {
        let _g = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        self.head.close()
    }

    /// Persists the head's old ranges, merges blocks, applies retention. Runs one at a time;
    /// the server calls it periodically (Prometheus: every minute).
    pub fn compact(&self) -> std::io::Result<CompactReport> {
        let _g = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = CompactReport::default();
        // Retention runs even when persisting or merging fails (a full disk must still be
        // relieved); the first error is returned at the end.
        let mut first_err = self.persist_head(&mut report).err();
        if first_err.is_none() && self.opts.compaction {
            first_err = self.merge_blocks(&mut report).err();
        }
        match self.apply_retention() {
            Ok((t, s)) => {
                report.time_retentions = t;
                report.size_retentions = s;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Writes the head's old block ranges as blocks and truncates the head after each.
    fn persist_head(&self, report: &mut CompactReport) -> std::io::Result<()> {
        let range = self.opts.head.chunk_range;
        while let Some((mint, maxt)) = self.head.compactable_range(range) {
            let written = self
                .head
                .write_block(&self.dir, mint, maxt, self.opts.max_chunk_samples)
                .and_then(|m| match m {
                    Some(meta) => self.add_block(&meta).map(|()| Some(meta)),
                    None => Ok(None),
                });
            match written {
                Ok(Some(meta)) => {
                    report.head_blocks += 1;
                    self.stats
                        .head_blocks_written
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(ulid = %meta.ulid, mint, maxt, "write block");
                }
                Ok(None) => {}
                Err(e) => {
                    self.stats
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(err = %e, mint, maxt, "persisting the head failed");
                    return Err(e);
                }
            }
            self.head.truncate(maxt)?;
        }
        Ok(())
    }

    /// Merges blocks by level and overlap. A merge that fails marks its blocks
    /// (`compaction.failed` in their meta.json, as Prometheus does) so that it is not retried
    /// forever.
    fn merge_blocks(&self, report: &mut CompactReport) -> std::io::Result<()> {
        loop {
            let blocks: Vec<Arc<Block>> = self
                .blocks()
                .into_iter()
                .filter(|b| !b.meta().compaction.failed && !self.failed_merge(b))
                .collect();
            let Some(plan) = compact::plan(&blocks, &self.opts.block_ranges()) else {
                return Ok(());
            };
            let vertical = compact::overlapping(&plan);
            let merged = compact::compact_blocks(&self.dir, &plan, self.opts.max_chunk_samples)
                .and_then(|meta| self.replace_blocks(&plan, meta.as_ref()));
            match merged {
                Ok(()) => {
                    report.merged_blocks += plan.len();
                    self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                    if vertical {
                        self.stats
                            .vertical_compactions
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    self.stats
                        .compactions_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(err = %e, blocks = plan.len(), "compaction failed; marking the blocks");
                    for b in &plan {
                        self.mark_failed(b);
                    }
                    return Err(e);
                }
            }
        }
    }

    fn failed_merge(&self, b: &Block) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&b.meta().ulid)
    }

    fn mark_failed(&self, b: &Block) {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(b.meta().ulid.clone());
        let mut meta = b.meta().clone();
        meta.compaction.failed = true;
        if let Err(e) = meta.write(b.dir()) {
            tracing::warn!(err = %e, ulid = %meta.ulid, "cannot mark the block as failed to compact");
        }
    }

    fn add_block(&self, meta: &BlockMeta) -> std::io::Result<()> {
        let b = Block::open(&self.dir.join(&meta.ulid))?;
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        blocks.push(Arc::new(b));
        blocks.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
        Ok(())
    }

    /// Makes the compacted block visible and deletes its parents.
    fn replace_blocks(
        &self,
        parents: &[Arc<Block>],
        new: Option<&BlockMeta>,
    ) -> std::io::Result<()> {
        if let Some(m) = new {
            self.add_block(m)?;
        }
        {
            let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            blocks.retain(|b| !parents.iter().any(|p| p.meta().ulid == b.meta().ulid));
        }
        for p in parents {
            delete_block_dir(&self.dir, &p.meta().ulid)?;
        }
        Ok(())
    }

    /// Deletes blocks beyond the time and size retention; returns how many for each.
    fn apply_retention(&self) -> std::io::Result<(usize, usize)> {
        let blocks = self.blocks();
        let mut doomed: Vec<(Arc<Block>, bool)> = Vec::new();
        if self.opts.retention_time > 0
            && let Some(newest) = blocks.iter().map(|b| b.meta().max_time).max()
        {
            for b in &blocks {
                if newest - b.meta().max_time > self.opts.retention_time {
                    doomed.push((b.clone(), true));
                }
            }
        }
        if self.opts.retention_size > 0 {
            let mut total = self.wal_size() + self.head.chunks_disk_size();
            // Newest first: the oldest blocks go once the budget is used up.
            for b in blocks.iter().rev() {
                total += b.size();
                if total > self.opts.retention_size
                    && !doomed.iter().any(|(d, _)| d.meta().ulid == b.meta().ulid)
                {
                    doomed.push((b.clone(), false));
                }
            }
        }
        if doomed.is_empty() {
            return Ok((0, 0));
        }
        {
            let mut list = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            list.retain(|b| !doomed.iter().any(|(d, _)| d.meta().ulid == b.meta().ulid));
        }
        let (mut t, mut s) = (0, 0);
        for (b, by_time) in &doomed {
            delete_block_dir(&self.dir, &b.meta().ulid)?;
            if *by_time {
                t += 1;
            } else {
                s += 1;
            }
            tracing::info!(ulid = %b.meta().ulid, by_time, "Deleting block beyond retention");
        }
        self.stats
            .time_retentions
            .fetch_add(t as u64, Ordering::Relaxed);
        self.stats
            .size_retentions
            .fetch_add(s as u64, Ordering::Relaxed);
        Ok((t, s))
    }

    /// Marks `[mint, maxt]` of matching series as deleted in the head (a WAL tombstones
    /// record) and in every overlapping block (its `tombstones` file); returns how many
    /// (series, block-or-head) pairs were affected. The API's `delete_series`.
    pub fn delete_series(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
    ) -> std::io::Result<usize> {
        let _g = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = self.head.delete(mint, maxt, matchers)?;
        for b in self.blocks() {
            if b.overlaps(mint, maxt) {
                n += b.delete(mint, maxt, matchers)?;
            }
        }
        Ok(n)
    }

    /// Rewrites blocks that have tombstones without the deleted samples (the API's
    /// `clean_tombstones`; the head's deletions disappear when its data becomes a block).
    pub fn clean_tombstones(&self) -> std::io::Result<usize> {
        let _g = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for b in self.blocks() {
            if b.tombstones().is_empty() {
                continue;
            }
            let plan = vec![b.clone()];
            let meta = compact::compact_blocks(&self.dir, &plan, self.opts.max_chunk_samples)?;
            self.replace_blocks(&plan, meta.as_ref())?;
            n += 1;
        }
        Ok(n)
    }

    /// Hard-links every block into `dst/<ulid>/` (a consistent copy that Prometheus or
    /// Meridian can open); with `with_head`, the head's samples are written as a block too.
    pub fn snapshot(&self, dst: &Path, with_head: bool) -> std::io::Result<()> {
        fs::create_dir_all(dst)?;
        for b in self.blocks() {
            link_tree(b.dir(), &dst.join(&b.meta().ulid))?;
        }
        if with_head && let Some((mint, maxt)) = self.head.time_range() {
            let labels_floor = self.head.min_valid_floor().max(mint);
            self.head.write_block_snapshot(
                dst,
                labels_floor,
                maxt.saturating_add(1),
                self.opts.max_chunk_samples,
            )?;
        }
        fsync_dir(dst)
    }
}

fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dst)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &to)?;
        } else {
            fs::hard_link(e.path(), &to)?;
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Renames a block directory out of the way, then removes it (a crash in between leaves a
/// `.tmp-for-deletion` directory that the next start-up removes).
fn delete_block_dir(dir: &Path, ulid: &str) -> std::io::Result<()> {
    let src = dir.join(ulid);
    if !src.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!("{ulid}{}", block::TMP_DELETION_SUFFIX));
    fs::rename(&src, &tmp)?;
    fsync_dir(dir)?;
    fs::remove_dir_all(&tmp)
}

/// Removes directories left by interrupted block creation or deletion.
fn remove_tmp_dirs(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if e.file_type()?.is_dir()
            && (name.ends_with(block::TMP_CREATION_SUFFIX)
                || name.ends_with(block::TMP_DELETION_SUFFIX)
                || name.ends_with(".tmp"))
        {
            tracing::info!(dir = name, "Removing leftover temporary directory");
            fs::remove_dir_all(e.path())?;
        }
    }
    Ok(())
}

/// Opens every block directory; deletes blocks that a complete compacted block replaced.
fn load_blocks(dir: &Path, stats: &DbStats) -> std::io::Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !e.file_type()?.is_dir() || !block::is_ulid(name) {
            continue;
        }
        match Block::open(&e.path()) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(err) => {
                stats.blocks_corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(block = name, err = %err, "skipping a block that cannot be opened");
            }
        }
    }
    // A block listed as a parent of another was merged; the merge completed (the child
    // exists), so the parent is a leftover of a crash before its deletion.
    let parents: std::collections::HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().map(|p| p.ulid.clone()))
        .collect();
    let mut kept = Vec::with_capacity(blocks.len());
    for b in blocks {
        if parents.contains(&b.meta().ulid) || b.meta().compaction.deletable {
            tracing::info!(ulid = %b.meta().ulid, "Removing a block already compacted into another");
            delete_block_dir(dir, &b.meta().ulid)?;
        } else {
            kept.push(b);
        }
    }
    kept.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
    Ok(kept)
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.head.close() {
            tracing::error!(err = %e, "closing the WAL");
        }
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.head.appender())
    }
}

impl storage::ExemplarQueryable for Db {
    /// Exemplars live only in the head's exemplar storage (as in Prometheus).
    fn select_exemplars(
        &self,
        start: Timestamp,
        end: Timestamp,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<storage::ExemplarQueryResult>, StorageError> {
        Ok(self.head.select_exemplars(start, end, matcher_sets))
    }
}

impl Queryable for Db {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(DbQuerier {
            head: self.head.clone(),
            blocks: self.blocks.clone(),
            mint,
            maxt,
        }))
    }
}

/// A querier over the head and the blocks. Each call reads the head first and the block list
/// after it: data moves from the head to a block only after the block joined the list, so a
/// compaction running concurrently can duplicate samples (removed by the merge) but never
/// hide them.
struct DbQuerier {
    head: Head,
    blocks: Arc<RwLock<Vec<Arc<Block>>>>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl DbQuerier {
    /// Queriers of the blocks overlapping the range, newest first (on equal timestamps the
    /// earlier querier wins, and the head comes before them all).
    fn block_queriers(&self) -> Vec<Box<dyn Querier>> {
        let blocks = self
            .blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        blocks
            .iter()
            .rev()
            .filter(|b| b.overlaps(self.mint, self.maxt))
            .map(|b| Box::new(b.querier(self.mint, self.maxt)) as Box<dyn Querier>)
            .collect()
    }
}

/// A selection already made, served as a querier (so the head can be read before the block
/// list while still merging through [`MergeQuerier`]).
struct Selected(Mutex<Option<storage::SeriesSet>>);

impl Querier for Selected {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&storage::SelectHints>,
        _matchers: &[Matcher],
    ) -> Result<storage::SeriesSet, StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Box::new(std::iter::empty())))
    }

    fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

impl Querier for DbQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&storage::SelectHints>,
        matchers: &[Matcher],
    ) -> Result<storage::SeriesSet, StorageError> {
        // Sorted even when the caller does not ask: whether blocks must be merged in is only
        // known after the head has been read.
        let head_set = self
            .head
            .querier(self.mint, self.maxt)
            .select(true, hints, matchers)?;
        let blocks = self.block_queriers();
        if blocks.is_empty() {
            return Ok(head_set);
        }
        let mut qs: Vec<Box<dyn Querier>> = Vec::with_capacity(blocks.len() + 1);
        qs.push(Box::new(Selected(Mutex::new(Some(head_set)))));
        qs.extend(blocks);
        MergeQuerier::new(qs).select(sorted, hints, matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut all = std::collections::BTreeSet::new();
        all.extend(
            self.head
                .querier(self.mint, self.maxt)
                .label_values(name, matchers)?,
        );
        for q in self.block_queriers() {
            all.extend(q.label_values(name, matchers)?);
        }
        Ok(all.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut all = std::collections::BTreeSet::new();
        all.extend(
            self.head
                .querier(self.mint, self.maxt)
                .label_names(matchers)?,
        );
        for q in self.block_queriers() {
            all.extend(q.label_names(matchers)?);
        }
        Ok(all.into_iter().collect())
    }
}
