//! The head: every active series in memory, the inverted index, and the WAL that makes
//! committed samples durable.
//!
//! Writes: an appender checks each sample (order, bounds) against the series' last sample and
//! its own batch, and buffers it. `commit` writes the batch to the WAL first (a series record
//! for each series not yet logged, then one samples record), and only then applies the samples
//! to the series' chunks. A failed WAL write fails the commit and nothing becomes visible.
//!
//! Reads: a querier turns matchers into series ids through the index, snapshots each series'
//! chunk list under its lock, and decodes chunks while iterating.
//!
//! Start-up: [`Head::replay`] streams the latest WAL checkpoint and the segments after it
//! (series, then samples through the same append path as commits, skipping samples older
//! than the floor the database passes: the end of its newest block; exemplars into the
//! exemplar storage) and repairs a corrupt tail, logging what was lost.
//!
//! Exemplars (`exemplars`): appenders validate them against the series' newest one, log them
//! to the WAL after the batch's samples (an exemplars record) and add them to the bounded
//! exemplar storage under the same WAL lock, so replay rebuilds what was accepted live.
//!
//! Persistence (`persist`): the oldest block range is written as a block, then dropped from
//! memory with the WAL checkpointed; see [`Head::write_block`] and [`Head::truncate`].

mod appender;
pub mod exemplars;
mod persist;
pub(crate) mod postings;
mod querier;
mod readers;
pub(crate) mod series;
mod symbols;

pub use appender::HeadAppender;
pub use persist::TruncateStats;
pub use querier::HeadQuerier;

use crate::chunks_head::ChunkDiskMapper;
use crate::wal::record::{self, RefSample, RefSeries};
use crate::wal::{self, ReadError, Wal, WalReader};
use model::labels::{Label, Labels};
use model::sample::Timestamp;
use postings::Postings;
use series::{MemSeries, Rejected, SeriesData};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use symbols::Symbols;

/// Number of shards of the label-hash → series map.
const HASH_SHARDS: usize = 64;

/// Counters the head keeps (exported as metrics by the server).
#[derive(Default, Debug)]
pub struct HeadStats {
    pub samples_appended: AtomicU64,
    pub series_created: AtomicU64,
    pub out_of_order: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_bounds: AtomicU64,
    pub wal_corruptions: AtomicU64,
    pub wal_bytes_dropped: AtomicU64,
    pub replay_unknown_series: AtomicU64,
    /// Series removed from memory after their data moved to a block.
    pub series_removed: AtomicU64,
    /// Head truncations (a block range moved to a block) and WAL checkpoints written.
    pub truncations: AtomicU64,
    pub checkpoints_created: AtomicU64,
    pub checkpoints_failed: AtomicU64,
}

/// Settings of the head.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never cross multiples of this (Prometheus' block range, 2h).
    pub chunk_range: i64,
    pub wal_segment_size: usize,
    pub wal_compression: bool,
    /// Capacity of the exemplar storage; 0 (the default) keeps no exemplars. Must be set
    /// before opening for the WAL's exemplars to be restored.
    pub max_exemplars: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: 2 * 3600 * 1000,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_compression: true,
            max_exemplars: 0,
        }
    }
}

pub(crate) struct HeadInner {
    opts: HeadOptions,
    symbols: Symbols,
    postings: RwLock<Postings>,
    /// Series by id; id `n` is at index `n - 1` (ids start at 1).
    series: RwLock<Vec<Option<Arc<MemSeries>>>>,
    /// Label-set hash → ids (more than one only on a hash collision).
    by_hash: Box<[Mutex<HashMap<u64, SmallIds>>]>,
    wal: Mutex<Option<Wal>>,
    mapper: ChunkDiskMapper,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Samples older than this belong to persisted blocks: rejected as out of bounds when
    /// appended, skipped on WAL replay.
    min_valid_floor: AtomicI64,
    wal_dir: PathBuf,
    /// Deleted intervals by series id (from `delete` and WAL tombstones records).
    tombstones: RwLock<crate::tombstones::Tombstones>,
    /// Exemplars by series labels, bounded.
    exemplars: exemplars::ExemplarStorage,
    pub stats: HeadStats,
    closed: AtomicBool,
    /// The lowest WAL segment another reader (the remote-write queues) still needs; a
    /// checkpoint never deletes it or later segments.
    wal_floor: RwLock<Option<WalFloor>>,
    /// Selects still reading; truncation waits for those reading what it drops.
    readers: Arc<readers::Readers>,
}

/// Tells the head which WAL segment is the oldest still needed by a WAL reader.
pub type WalFloor = Arc<dyn Fn() -> Option<u32> + Send + Sync>;

/// Ids sharing one label hash; almost always exactly one.
#[derive(Debug, Clone)]
enum SmallIds {
    One(u32),
    Many(Vec<u32>),
}

impl SmallIds {
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        match self {
            SmallIds::One(id) => std::slice::from_ref(id).iter().copied(),
            SmallIds::Many(v) => v.iter().copied(),
        }
    }
}

/// The head of the database. Cloning shares it.
#[derive(Clone)]
pub struct Head {
    pub(crate) inner: Arc<HeadInner>,
}

impl Head {
    /// Keeps WAL segments from the one `floor` names onwards when checkpointing (a reader
    /// such as a remote-write queue has not consumed them yet).
    pub fn set_wal_floor(&self, floor: WalFloor) {
        *self
            .inner
            .wal_floor
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(floor);
    }

    /// Opens the head on `dir` (`wal/` and `chunks_head/` inside), replaying the WAL.
    pub fn open(dir: &Path, opts: HeadOptions) -> std::io::Result<Head> {
        Self::open_with_floor(dir, opts, i64::MIN)
    }

    /// Opens the head, ignoring WAL samples older than `floor` (the end of the newest block:
    /// they were persisted before a crash interrupted the WAL checkpoint).
    pub fn open_with_floor(dir: &Path, opts: HeadOptions, floor: i64) -> std::io::Result<Head> {
        let mapper = ChunkDiskMapper::open(&dir.join("chunks_head"))?;
        let head = Head {
            inner: Arc::new(HeadInner {
                opts: opts.clone(),
                symbols: Symbols::new(),
                postings: RwLock::new(Postings::default()),
                series: RwLock::new(Vec::new()),
                by_hash: (0..HASH_SHARDS)
                    .map(|_| Mutex::new(HashMap::new()))
                    .collect(),
                wal: Mutex::new(None),
                mapper,
                min_t: AtomicI64::new(i64::MAX),
                max_t: AtomicI64::new(i64::MIN),
                min_valid_floor: AtomicI64::new(floor),
                wal_dir: dir.join("wal"),
                tombstones: RwLock::new(crate::tombstones::Tombstones::default()),
                exemplars: exemplars::ExemplarStorage::new(opts.max_exemplars),
                stats: HeadStats::default(),
                closed: AtomicBool::new(false),
                wal_floor: RwLock::new(None),
                readers: Arc::default(),
            }),
        };
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir)?;
        head.replay(&wal_dir)?;
        let wal = Wal::open(&wal_dir, opts.wal_segment_size, opts.wal_compression)?;
        *head.inner.wal.lock().unwrap_or_else(|e| e.into_inner()) = Some(wal);
        Ok(head)
    }

    pub fn stats(&self) -> &HeadStats {
        &self.inner.stats
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.inner
            .postings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .all()
            .len()
    }

    /// Bytes of the head chunk files.
    pub fn chunks_disk_size(&self) -> u64 {
        self.inner.mapper.disk_size()
    }

    /// Number of distinct label names and values.
    pub fn num_symbols(&self) -> usize {
        self.inner.symbols.len()
    }

    /// Oldest and newest sample timestamps (`None` when empty).
    pub fn time_range(&self) -> Option<(Timestamp, Timestamp)> {
        let min = self.inner.min_t.load(Ordering::Acquire);
        let max = self.inner.max_t.load(Ordering::Acquire);
        (min <= max).then_some((min, max))
    }

    /// Changes the exemplar storage's capacity (a reload of `storage.exemplars`), keeping
    /// the newest exemplars that fit; 0 disables it. Returns how many were kept.
    pub fn set_max_exemplars(&self, max: usize) -> usize {
        self.inner.exemplars.resize(max)
    }

    /// The exemplar storage's numbers.
    pub fn exemplar_stats(&self) -> exemplars::ExemplarStats {
        self.inner.exemplars.stats()
    }

    /// The exemplars in `[start, end]` of the series matching any of `matcher_sets`.
    pub fn select_exemplars(
        &self,
        start: Timestamp,
        end: Timestamp,
        matcher_sets: &[Vec<model::matcher::Matcher>],
    ) -> Vec<storage::ExemplarQueryResult> {
        self.inner.exemplars.select(start, end, matcher_sets)
    }

    /// A new appender.
    pub fn appender(&self) -> HeadAppender {
        HeadAppender::new(self.inner.clone())
    }

    /// A querier over `[mint, maxt]`.
    pub fn querier(&self, mint: Timestamp, maxt: Timestamp) -> HeadQuerier {
        HeadQuerier::new(self.inner.clone(), mint, maxt)
    }

    /// Forces the WAL to the device.
    pub fn sync_wal(&self) -> std::io::Result<()> {
        match self
            .inner
            .wal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    /// Syncs and closes the WAL; later commits fail with "storage is closed".
    pub fn close(&self) -> std::io::Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let wal = self
            .inner
            .wal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match wal {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }

    /// Marks `[mint, maxt]` of the series matching `matchers` as deleted: logged to the WAL
    /// (a Prometheus tombstones record), hidden from queries, left out of blocks. Returns the
    /// number of series affected.
    pub fn delete(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[model::matcher::Matcher],
    ) -> std::io::Result<usize> {
        let ids = {
            let postings = self
                .inner
                .postings
                .read()
                .unwrap_or_else(|e| e.into_inner());
            postings.for_matchers(matchers, &self.inner.symbols)
        };
        let mut stones = Vec::new();
        for id in ids {
            let Some(s) = self.inner.get(id) else {
                continue;
            };
            let d = s.data.lock().unwrap_or_else(|e| e.into_inner());
            let overlaps = d.full.iter().any(|c| {
                let (a, b) = c.time_range();
                a <= maxt && b >= mint
            }) || (d.app.num_samples() > 0
                && d.open_min_t <= maxt
                && d.app.last_timestamp() >= mint);
            if overlaps {
                stones.push(record::RefTombstone {
                    id: u64::from(id),
                    min_t: mint,
                    max_t: maxt,
                });
            }
        }
        if stones.is_empty() {
            return Ok(0);
        }
        let mut rec = Vec::new();
        record::encode_tombstones(&stones, &mut rec);
        let mut wal = self.inner.wal.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = wal.as_mut() else {
            return Err(std::io::Error::other("storage is closed"));
        };
        w.log(&[&rec])?;
        let mut t = self
            .inner
            .tombstones
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for s in &stones {
            t.add(s.id, s.min_t, s.max_t);
        }
        Ok(stones.len())
    }

    /// Reads the latest checkpoint and the WAL segments after it into memory, repairing a
    /// corrupt tail.
    fn replay(&self, wal_dir: &Path) -> std::io::Result<()> {
        wal::checkpoint::remove_tmp(wal_dir)?;
        let mut after = None;
        if let Some((n, cp)) = wal::checkpoint::last_checkpoint(wal_dir)? {
            tracing::info!(checkpoint = %cp.display(), "Replaying WAL checkpoint");
            self.replay_segments(&cp, wal::list_segments(&cp)?, false)?;
            // Segments the checkpoint covers may survive a crash right after it was written.
            wal::checkpoint::delete_covered(wal_dir, n)?;
            after = Some(n);
        }
        let segments: Vec<u32> = wal::list_segments(wal_dir)?
            .into_iter()
            .filter(|s| after.is_none_or(|n| *s > n))
            .collect();
        self.replay_segments(wal_dir, segments, true)
    }

    /// Replays `segments` of `wal_dir`. With `repair`, a corrupt record truncates the WAL there;
    /// without (a checkpoint), reading stops at it.
    fn replay_segments(
        &self,
        wal_dir: &Path,
        segments: Vec<u32>,
        repair: bool,
    ) -> std::io::Result<()> {
        let started = Instant::now();
        if segments.is_empty() {
            return Ok(());
        }
        let floor = self.inner.min_valid_floor.load(Ordering::Acquire);
        tracing::info!(
            segments = segments.len(),
            "Replaying WAL, this may take a while"
        );
        let mut reader = WalReader::new(wal_dir, segments.clone());
        let mut buf = Vec::new();
        let mut series_buf: Vec<RefSeries> = Vec::new();
        let mut samples_buf: Vec<RefSample> = Vec::new();
        let mut exemplars_buf: Vec<record::RefExemplar> = Vec::new();
        let (mut n_series, mut n_samples, mut n_records) = (0u64, 0u64, 0u64);
        let mut n_exemplars = 0u64;
        let mut last_segment = None;
        let mut last_log = Instant::now();
        loop {
            match reader.next_record(&mut buf) {
                Ok(true) => {}
                Ok(false) => break,
                Err(ReadError::Corrupt(c)) if !repair => {
                    self.inner
                        .stats
                        .wal_corruptions
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(corruption = %c, dir = %wal_dir.display(), "corrupt WAL checkpoint; using what was read before the corruption");
                    break;
                }
                Err(ReadError::Corrupt(c)) => {
                    let report = wal::repair(wal_dir, &c)?;
                    self.inner
                        .stats
                        .wal_corruptions
                        .fetch_add(1, Ordering::Relaxed);
                    self.inner
                        .stats
                        .wal_bytes_dropped
                        .fetch_add(report.bytes_dropped, Ordering::Relaxed);
                    tracing::warn!(
                        corruption = %c,
                        bytes_dropped = report.bytes_dropped,
                        segments_deleted = report.segments_deleted,
                        "WAL corruption detected; truncated the WAL at the last good record"
                    );
                    break;
                }
                Err(ReadError::Io(e)) => return Err(e),
            }
            n_records += 1;
            if reader.segment() != last_segment {
                last_segment = reader.segment();
                if last_log.elapsed().as_secs() >= 5 {
                    last_log = Instant::now();
                    tracing::info!(
                        segment = last_segment,
                        max_segment = segments.last(),
                        "WAL segment loaded"
                    );
                }
            }
            match buf.first() {
                Some(&record::TYPE_SERIES) => {
                    series_buf.clear();
                    let symbols = &self.inner.symbols;
                    if let Err(e) = record::decode_series(&buf, &mut series_buf, |s| {
                        symbols.get(symbols.intern(s))
                    }) {
                        tracing::warn!(err = %e, "skipping an undecodable WAL series record");
                        continue;
                    }
                    for s in series_buf.drain(..) {
                        self.restore_series(s.id, &s.labels);
                        n_series += 1;
                    }
                }
                Some(&record::TYPE_SAMPLES) => {
                    samples_buf.clear();
                    if let Err(e) = record::decode_samples(&buf, &mut samples_buf) {
                        tracing::warn!(err = %e, "skipping an undecodable WAL samples record");
                        continue;
                    }
                    for s in &samples_buf {
                        if s.t < floor {
                            continue; // already in a block
                        }
                        let Some(series) =
                            u32::try_from(s.id).ok().and_then(|id| self.inner.get(id))
                        else {
                            self.inner
                                .stats
                                .replay_unknown_series
                                .fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        self.inner.apply(&series, s.t, s.v);
                        n_samples += 1;
                    }
                }
                Some(&record::TYPE_TOMBSTONES) => {
                    let mut stones = Vec::new();
                    if let Err(e) = record::decode_tombstones(&buf, &mut stones) {
                        tracing::warn!(err = %e, "skipping an undecodable WAL tombstones record");
                        continue;
                    }
                    let mut t = self
                        .inner
                        .tombstones
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    for s in stones {
                        if u32::try_from(s.id)
                            .ok()
                            .and_then(|id| self.inner.get(id))
                            .is_some()
                        {
                            t.add(s.id, s.min_t, s.max_t);
                        }
                    }
                }
                Some(&record::TYPE_EXEMPLARS) => {
                    if !self.inner.exemplars.enabled() {
                        continue;
                    }
                    exemplars_buf.clear();
                    if let Err(e) =
                        record::decode_exemplars(&buf, &mut exemplars_buf, model::labels::Sym::new)
                    {
                        tracing::warn!(err = %e, "skipping an undecodable WAL exemplars record");
                        continue;
                    }
                    for e in exemplars_buf.drain(..) {
                        if e.t < floor {
                            continue;
                        }
                        let Some(series) =
                            u32::try_from(e.id).ok().and_then(|id| self.inner.get(id))
                        else {
                            continue;
                        };
                        let exemplar = storage::Exemplar {
                            labels: e.labels,
                            value: e.v,
                            ts: e.t,
                        };
                        // Out-of-order and duplicate ones were refused live too.
                        if self
                            .inner
                            .exemplars
                            .add(&self.inner.labels_of(&series), exemplar)
                            .is_ok()
                        {
                            n_exemplars += 1;
                        }
                    }
                }
                // Other record types (metadata, histograms) are not used.
                _ => {}
            }
        }
        tracing::info!(
            segments = segments.len(),
            records = n_records,
            series = n_series,
            samples = n_samples,
            exemplars = n_exemplars,
            duration_seconds = started.elapsed().as_secs_f64(),
            "WAL replay completed"
        );
        Ok(())
    }

    /// Re-creates a series from a WAL series record, keeping its id.
    fn restore_series(&self, id: u64, labels: &Labels) {
        let Ok(id) = u32::try_from(id) else {
            return;
        };
        if id == 0 || self.inner.get(id).is_some() {
            return;
        }
        let s = self.inner.create_series_with_id(id, labels);
        s.wal_logged.store(true, Ordering::Relaxed);
    }
}

impl HeadInner {
    /// The deleted intervals of series `id`.
    pub(crate) fn deleted(&self, id: u32) -> Vec<(Timestamp, Timestamp)> {
        let t = self.tombstones.read().unwrap_or_else(|e| e.into_inner());
        if t.is_empty() {
            return Vec::new();
        }
        t.get(u64::from(id)).to_vec()
    }

    /// The live series among `ids`, taken under one lock.
    fn get_many(&self, ids: &[u32]) -> Vec<Arc<MemSeries>> {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        ids.iter()
            .filter_map(|id| series.get(id.checked_sub(1)? as usize).cloned().flatten())
            .collect()
    }

    fn get(&self, id: u32) -> Option<Arc<MemSeries>> {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        series.get(id.checked_sub(1)? as usize).cloned().flatten()
    }

    /// The series with these labels, if the head has it.
    pub(crate) fn lookup(&self, labels: &Labels) -> Option<Arc<MemSeries>> {
        let hash = labels.hash64();
        let shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        let ids = shard.get(&hash)?;
        ids.iter()
            .filter_map(|id| self.get(id))
            .find(|s| self.labels_equal(s, labels))
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<u64, SmallIds>> {
        &self.by_hash[(hash as usize) % self.by_hash.len()]
    }

    /// True when series `s` has exactly these labels.
    fn labels_equal(&self, s: &MemSeries, labels: &Labels) -> bool {
        if s.labels.len() != labels.len() * 2 {
            return false;
        }
        self.symbols.with_str(|resolve| {
            labels
                .iter()
                .zip(s.labels.chunks_exact(2))
                .all(|(l, ids)| resolve(ids[0]) == &*l.name && resolve(ids[1]) == &*l.value)
        })
    }

    /// The existing series with exactly these normalized pairs, whose set hashes to `hash`.
    pub(crate) fn find_by_pairs(
        &self,
        hash: u64,
        pairs: &[(&str, &str)],
    ) -> Option<Arc<MemSeries>> {
        let shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        let ids = shard.get(&hash)?.clone();
        drop(shard);
        ids.iter().filter_map(|id| self.get(id)).find(|s| {
            s.labels.len() == pairs.len() * 2
                && self.symbols.with_str(|resolve| {
                    pairs
                        .iter()
                        .zip(s.labels.chunks_exact(2))
                        .all(|((n, v), ids)| resolve(ids[0]) == *n && resolve(ids[1]) == *v)
                })
        })
    }

    /// The series with these labels, created when new.
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Arc<MemSeries> {
        let hash = labels.hash64();
        let mut shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = shard.get(&hash) {
            for id in ids.iter() {
                if let Some(s) = self.get(id)
                    && self.labels_equal(&s, labels)
                {
                    return s;
                }
            }
        }
        let id = {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            series.push(None);
            series.len() as u32
        };
        let s = self.insert_series(id, labels);
        add_hash(&mut shard, hash, id);
        s
    }

    /// Creates a series with a known id (WAL replay).
    fn create_series_with_id(&self, id: u32, labels: &Labels) -> Arc<MemSeries> {
        {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            if series.len() < id as usize {
                series.resize(id as usize, None);
            }
        }
        let s = self.insert_series(id, labels);
        let hash = labels.hash64();
        add_hash(
            &mut self.shard(hash).lock().unwrap_or_else(|e| e.into_inner()),
            hash,
            id,
        );
        s
    }

    fn insert_series(&self, id: u32, labels: &Labels) -> Arc<MemSeries> {
        let ids: Box<[u32]> = labels
            .iter()
            .flat_map(|l| [self.symbols.intern(&l.name), self.symbols.intern(&l.value)])
            .collect();
        let s = Arc::new(MemSeries {
            id,
            labels: ids,
            data: Mutex::new(SeriesData::new()),
            wal_logged: AtomicBool::new(false),
        });
        {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = series.get_mut(id as usize - 1) {
                *slot = Some(s.clone());
            }
        }
        let mut postings = self.postings.write().unwrap_or_else(|e| e.into_inner());
        // Ids normally arrive in order; replay of a repaired or merged WAL may not, so keep the
        // lists sorted either way.
        if postings.all().last().is_some_and(|last| *last > id) {
            postings.add_unordered(id, &s.labels);
        } else {
            postings.add(id, &s.labels);
        }
        drop(postings);
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
        s
    }

    /// The labels of a series.
    pub(crate) fn labels_of(&self, s: &MemSeries) -> Labels {
        let v: Vec<Label> = self.symbols.with(|resolve| {
            s.labels
                .chunks_exact(2)
                .map(|p| Label {
                    name: resolve(p[0]),
                    value: resolve(p[1]),
                })
                .collect()
        });
        Labels::from_vec(v).unwrap_or_default()
    }

    /// Appends a committed (or replayed) sample to its series, counting rejections.
    fn apply(&self, s: &MemSeries, t: Timestamp, v: f64) {
        if t < self.min_valid_floor.load(Ordering::Acquire) {
            // Validated before a concurrent head truncation moved this range to a block.
            self.stats.out_of_bounds.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut data = s.data.lock().unwrap_or_else(|e| e.into_inner());
        match data.append(s.id, t, v, self.opts.chunk_range, &self.mapper) {
            Ok(true) => {
                drop(data);
                self.stats.samples_appended.fetch_add(1, Ordering::Relaxed);
                self.min_t.fetch_min(t, Ordering::AcqRel);
                self.max_t.fetch_max(t, Ordering::AcqRel);
            }
            Ok(false) => {}
            Err(Rejected::OutOfOrder) => {
                self.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            Err(Rejected::Duplicate) => {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Samples older than this are "out of bounds" (half a chunk range behind the newest).
    fn min_valid_time(&self) -> Timestamp {
        let max = self.max_t.load(Ordering::Acquire);
        let floor = self.min_valid_floor.load(Ordering::Acquire);
        if max == i64::MIN {
            floor
        } else {
            max.saturating_sub(self.opts.chunk_range / 2).max(floor)
        }
    }
}

fn add_hash(shard: &mut HashMap<u64, SmallIds>, hash: u64, id: u32) {
    match shard.get_mut(&hash) {
        None => {
            shard.insert(hash, SmallIds::One(id));
        }
        Some(SmallIds::One(first)) => {
            let first = *first;
            shard.insert(hash, SmallIds::Many(vec![first, id]));
        }
        Some(SmallIds::Many(v)) => v.push(id),
    }
}
