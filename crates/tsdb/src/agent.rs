//! The agent's storage (`--agent`): a write-ahead log and nothing else.
//!
//! In agent mode Meridian scrapes and remote-writes but answers no queries, so there is no
//! head, no chunks and no blocks. What remains is what the remote-write queues read: the WAL,
//! in the same directory layout and record format as the full database (`wal/` segments and
//! `wal/checkpoint.N/`), so the same queues, position files and tools work on it.
//!
//! Memory holds one entry per active series: its labels, its WAL reference and the timestamp
//! of its last sample (to refuse out-of-order samples a receiver would refuse anyway). On
//! start-up the WAL is replayed to rebuild that table; a corrupt tail is cut off and counted,
//! as the database does.
//!
//! [`AgentDb::truncate`] (the server calls it periodically) keeps the WAL small:
//! - series whose last sample is older than the newest sample minus `min_wal_time` leave
//!   memory (a later sample re-creates them with a new reference and a new series record);
//! - every finished segment that no remote-write queue still needs is folded into a checkpoint
//!   holding only the series records still referenced: live series, and removed series whose
//!   samples sit in segments that are kept. Samples are not carried into the checkpoint: a
//!   queue reads only series records from a checkpoint.
//!
//! Which segments the queues still need comes from the same floor callback the database uses,
//! so one receiver's outage keeps exactly the data its queue has not sent (up to the queue's
//! own retention bounds), and nothing it has sent.

use crate::wal::record::{self, RefExemplar, RefSample, RefSeries};
use crate::wal::{self, ReadError, Wal, WalReader};
use model::labels::Labels;
use model::sample::Timestamp;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use storage::{AppendError, Appendable, Appender, Exemplar, SeriesRef, StorageError};

/// Settings of the agent's storage.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub wal_segment_size: usize,
    pub wal_compression: bool,
    /// Series without a sample for this long (measured from the newest sample) leave memory
    /// at the next truncation (`--storage.agent.retention.min-time`; Prometheus' default 5m).
    pub min_wal_time: Duration,
    /// Series without a sample for this long always leave memory, whatever `min_wal_time`
    /// (`--storage.agent.retention.max-time`; default 4h).
    pub max_wal_time: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_compression: true,
            min_wal_time: Duration::from_secs(5 * 60),
            max_wal_time: Duration::from_secs(4 * 3600),
        }
    }
}

/// Counters and gauges of the agent's storage, exported under Prometheus' names.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub active_series: AtomicU64,
    /// Series removed from memory whose series record the checkpoint still keeps.
    pub deleted_series: AtomicU64,
    pub samples_appended: AtomicU64,
    pub out_of_order_samples: AtomicU64,
    pub corruptions: AtomicU64,
    pub wal_bytes_dropped: AtomicU64,
    pub replay_duration_ms: AtomicU64,
    pub checkpoints_created: AtomicU64,
    pub checkpoints_failed: AtomicU64,
    pub checkpoint_deletions: AtomicU64,
    pub checkpoint_deletions_failed: AtomicU64,
    pub truncations: AtomicU64,
    pub truncate_seconds_total_ms: AtomicU64,
}

/// One series the agent tracks.
struct AgentSeries {
    id: u64,
    labels: Labels,
    /// Timestamp of the last committed sample (`i64::MIN` before the first).
    last_t: AtomicI64,
    /// Value bits of the last committed sample.
    last_v: AtomicU64,
    /// Whether a WAL series record for this reference has been written.
    wal_logged: AtomicBool,
    /// The newest exemplar committed, against which the next one is checked (a scrape
    /// presents the same exemplar until a new one is observed).
    last_exemplar: Mutex<Option<Exemplar>>,
}

impl AgentSeries {
    /// A series with reference `id`; `last` is its last sample (timestamp, value bits), and
    /// `logged` whether the WAL already holds its series record.
    fn new(id: u64, labels: Labels, last: Option<(Timestamp, u64)>, logged: bool) -> Self {
        AgentSeries {
            id,
            labels,
            last_t: AtomicI64::new(last.map_or(i64::MIN, |l| l.0)),
            last_v: AtomicU64::new(last.map_or(0, |l| l.1)),
            wal_logged: AtomicBool::new(logged),
            last_exemplar: Mutex::new(None),
        }
    }

    fn last(&self) -> Option<(Timestamp, u64)> {
        let t = self.last_t.load(Ordering::Acquire);
        (t != i64::MIN).then(|| (t, self.last_v.load(Ordering::Acquire)))
    }
}

#[derive(Default)]
struct SeriesTable {
    by_id: HashMap<u64, Arc<AgentSeries>>,
    /// Label hash → ids (more than one only on a hash collision).
    by_hash: HashMap<u64, Vec<u64>>,
}

impl SeriesTable {
    fn find(&self, hash: u64, labels: &Labels) -> Option<Arc<AgentSeries>> {
        self.by_hash
            .get(&hash)?
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .find(|s| &s.labels == labels)
            .cloned()
    }

    fn insert(&mut self, s: Arc<AgentSeries>) {
        self.by_hash
            .entry(s.labels.hash64())
            .or_default()
            .push(s.id);
        self.by_id.insert(s.id, s);
    }

    fn remove(&mut self, id: u64) {
        let Some(s) = self.by_id.remove(&id) else {
            return;
        };
        let h = s.labels.hash64();
        if let Some(ids) = self.by_hash.get_mut(&h) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_hash.remove(&h);
            }
        }
    }
}

struct AgentInner {
    opts: AgentOptions,
    wal_dir: PathBuf,
    wal: Mutex<Option<Wal>>,
    series: RwLock<SeriesTable>,
    next_id: AtomicU64,
    /// Removed series → the last WAL segment holding a record of theirs: their series record
    /// stays in checkpoints until that segment is folded in.
    deleted: Mutex<HashMap<u64, u32>>,
    /// Newest sample timestamp seen.
    max_t: AtomicI64,
    wal_floor: RwLock<Option<crate::head::WalFloor>>,
    stats: AgentStats,
    truncating: Mutex<()>,
    /// Bumped whenever series leave memory: a batch begun before must re-check its series.
    gc_generation: AtomicU64,
}

/// The agent's WAL-only storage. Cloning shares it.
#[derive(Clone)]
pub struct AgentDb {
    inner: Arc<AgentInner>,
    _lock: Arc<File>,
}

/// What one truncation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AgentTruncateStats {
    pub series_removed: u64,
    /// The last segment folded into the new checkpoint, if one was written.
    pub checkpoint: Option<u32>,
}

impl AgentDb {
    /// Opens (creating if needed) the agent storage in `dir`: locks it, replays `dir/wal`,
    /// repairing a corrupt tail, and starts a new segment for writing.
    pub fn open(dir: &Path, opts: AgentOptions) -> Result<AgentDb, crate::db::OpenError> {
        let io = |err| crate::db::OpenError::Io {
            dir: dir.to_path_buf(),
            err,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(crate::db::OpenError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(io)?;
        let db = AgentDb {
            inner: Arc::new(AgentInner {
                opts: opts.clone(),
                wal_dir: wal_dir.clone(),
                wal: Mutex::new(None),
                series: RwLock::new(SeriesTable::default()),
                next_id: AtomicU64::new(1),
                deleted: Mutex::new(HashMap::new()),
                max_t: AtomicI64::new(i64::MIN),
                wal_floor: RwLock::new(None),
                stats: AgentStats::default(),
                truncating: Mutex::new(()),
                gc_generation: AtomicU64::new(0),
            }),
            _lock: Arc::new(lock),
        };
        let started = Instant::now();
        db.replay().map_err(io)?;
        db.inner
            .stats
            .replay_duration_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let w = Wal::open(&wal_dir, opts.wal_segment_size, opts.wal_compression).map_err(io)?;
        *db.inner.wal.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
        tracing::info!(
            series = db.num_series(),
            dir = %dir.display(),
            "agent WAL storage started"
        );
        Ok(db)
    }

    pub fn stats(&self) -> &AgentStats {
        &self.inner.stats
    }

    /// The WAL directory the remote-write queues read.
    pub fn wal_dir(&self) -> &Path {
        &self.inner.wal_dir
    }

    /// Number of series in memory.
    pub fn num_series(&self) -> usize {
        self.inner
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .len()
    }

    /// Tells truncation which segment is the oldest a WAL reader still needs.
    pub fn set_wal_floor(&self, floor: crate::head::WalFloor) {
        *self
            .inner
            .wal_floor
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(floor);
    }

    /// Syncs the WAL to the device.
    pub fn sync(&self) -> std::io::Result<()> {
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

    /// Syncs and closes the WAL; later appends fail with [`StorageError::Closed`].
    pub fn close(&self) -> std::io::Result<()> {
        match self
            .inner
            .wal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }

    fn replay(&self) -> std::io::Result<()> {
        let dir = &self.inner.wal_dir;
        wal::checkpoint::remove_tmp(dir)?;
        let mut after = None;
        if let Some((n, cp)) = wal::checkpoint::last_checkpoint(dir)? {
            self.replay_segments(&cp, wal::list_segments(&cp)?, false)?;
            wal::checkpoint::delete_covered(dir, n)?;
            after = Some(n);
        }
        let segments: Vec<u32> = wal::list_segments(dir)?
            .into_iter()
            .filter(|s| after.is_none_or(|n| *s > n))
            .collect();
        self.replay_segments(dir, segments, true)
    }

    /// Rebuilds the series table from `segments` of `dir`. A series record for labels already
    /// known under another reference (the series left memory and came back) maps the new
    /// reference onto the known series only for the samples that follow; the newest reference
    /// becomes the series' own.
    fn replay_segments(&self, dir: &Path, segments: Vec<u32>, repair: bool) -> std::io::Result<()> {
        if segments.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let mut reader = WalReader::new(dir, segments);
        let mut buf = Vec::new();
        let mut series_buf: Vec<RefSeries> = Vec::new();
        let mut samples_buf: Vec<RefSample> = Vec::new();
        // Older references of re-created series → the series.
        let mut aliases: HashMap<u64, Arc<AgentSeries>> = HashMap::new();
        let mut table = inner.series.write().unwrap_or_else(|e| e.into_inner());
        loop {
            match reader.next_record(&mut buf) {
                Ok(true) => {}
                Ok(false) => break,
                Err(ReadError::Corrupt(c)) if !repair => {
                    inner.stats.corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(corruption = %c, dir = %dir.display(), "corrupt agent WAL checkpoint; using what was read before the corruption");
                    break;
                }
                Err(ReadError::Corrupt(c)) => {
                    let report = wal::repair(dir, &c)?;
                    inner.stats.corruptions.fetch_add(1, Ordering::Relaxed);
                    inner
                        .stats
                        .wal_bytes_dropped
                        .fetch_add(report.bytes_dropped, Ordering::Relaxed);
                    tracing::warn!(
                        corruption = %c,
                        bytes_dropped = report.bytes_dropped,
                        segments_deleted = report.segments_deleted,
                        "agent WAL corruption detected; truncated the WAL at the last good record"
                    );
                    break;
                }
                Err(ReadError::Io(e)) => return Err(e),
            }
            match buf.first() {
                Some(&record::TYPE_SERIES) => {
                    series_buf.clear();
                    if let Err(e) =
                        record::decode_series(&buf, &mut series_buf, model::labels::Sym::new)
                    {
                        tracing::warn!(err = %e, "skipping an undecodable agent WAL series record");
                        continue;
                    }
                    for s in series_buf.drain(..) {
                        inner.next_id.fetch_max(s.id + 1, Ordering::Relaxed);
                        let hash = s.labels.hash64();
                        if let Some(known) = table.find(hash, &s.labels) {
                            if known.id == s.id {
                                continue;
                            }
                            // The newer reference takes over; samples under the old one still
                            // update the same series.
                            let last = known.last();
                            table.remove(known.id);
                            aliases.insert(known.id, known);
                            table.insert(Arc::new(AgentSeries::new(s.id, s.labels, last, true)));
                            continue;
                        }
                        table.insert(Arc::new(AgentSeries::new(s.id, s.labels, None, true)));
                    }
                }
                Some(&record::TYPE_SAMPLES) => {
                    samples_buf.clear();
                    if let Err(e) = record::decode_samples(&buf, &mut samples_buf) {
                        tracing::warn!(err = %e, "skipping an undecodable agent WAL samples record");
                        continue;
                    }
                    for s in &samples_buf {
                        let Some(series) = table.by_id.get(&s.id).or_else(|| aliases.get(&s.id))
                        else {
                            continue;
                        };
                        if s.t > series.last_t.load(Ordering::Relaxed) {
                            series.last_t.store(s.t, Ordering::Relaxed);
                            series.last_v.store(s.v.to_bits(), Ordering::Relaxed);
                        }
                        inner.max_t.fetch_max(s.t, Ordering::Relaxed);
                    }
                }
                // Tombstones, exemplars, metadata and histograms carry nothing the agent keeps.
                _ => {}
            }
        }
        // An alias whose series has a newer reference only matters for the samples above.
        for (_, s) in aliases {
            if let Some(cur) = table.find(s.labels.hash64(), &s.labels)
                && cur.last_t.load(Ordering::Relaxed) < s.last_t.load(Ordering::Relaxed)
            {
                cur.last_t
                    .store(s.last_t.load(Ordering::Relaxed), Ordering::Relaxed);
                cur.last_v
                    .store(s.last_v.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        inner
            .stats
            .active_series
            .store(table.by_id.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Removes idle series from memory and folds the WAL segments no queue needs into a
    /// checkpoint (see the module documentation). Safe to call concurrently with appends.
    pub fn truncate(&self) -> std::io::Result<AgentTruncateStats> {
        let inner = &self.inner;
        let _one = inner.truncating.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let mut st = AgentTruncateStats::default();
        // Start a new segment (everything before it is finished and may be folded), and
        // remove idle series from memory while commits wait, so that the segment recorded
        // for a removed series is the last one that can hold a record of it.
        let max_t = inner.max_t.load(Ordering::Acquire);
        let current = {
            let mut guard = inner.wal.lock().unwrap_or_else(|e| e.into_inner());
            let Some(w) = guard.as_mut() else {
                return Ok(st);
            };
            w.next_segment()?;
            let current = w.current_segment();
            if max_t != i64::MIN {
                let min_wal = inner.opts.min_wal_time.min(inner.opts.max_wal_time);
                let gc_before = max_t.saturating_sub(min_wal.as_millis() as i64);
                let mut table = inner.series.write().unwrap_or_else(|e| e.into_inner());
                let idle: Vec<u64> = table
                    .by_id
                    .values()
                    .filter(|s| s.last_t.load(Ordering::Acquire) < gc_before)
                    .map(|s| s.id)
                    .collect();
                if !idle.is_empty() {
                    inner.gc_generation.fetch_add(1, Ordering::AcqRel);
                }
                let mut deleted = inner.deleted.lock().unwrap_or_else(|e| e.into_inner());
                for id in idle {
                    table.remove(id);
                    // Its records are in segments before `current` (nothing was written to
                    // `current` yet).
                    deleted.insert(id, current.saturating_sub(1));
                    st.series_removed += 1;
                }
                inner
                    .stats
                    .active_series
                    .store(table.by_id.len() as u64, Ordering::Relaxed);
            }
            current
        };
        // Fold finished segments nobody needs.
        let Some(mut last) = current.checked_sub(1) else {
            self.finish_truncate(started);
            return Ok(st);
        };
        let floor = inner
            .wal_floor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(needed) = floor.and_then(|f| f()) {
            match needed.checked_sub(1) {
                Some(before) => last = last.min(before),
                None => {
                    self.finish_truncate(started);
                    return Ok(st);
                }
            }
        }
        let first = wal::list_segments(&inner.wal_dir)?.first().copied();
        let done = wal::checkpoint::last_checkpoint(&inner.wal_dir)?.map(|(n, _)| n);
        if first.is_none_or(|f| f > last) || done.is_some_and(|d| d >= last) {
            self.finish_truncate(started);
            return Ok(st);
        }
        let keep = {
            let table = inner.series.read().unwrap_or_else(|e| e.into_inner());
            let deleted = inner.deleted.lock().unwrap_or_else(|e| e.into_inner());
            let live: std::collections::HashSet<u64> = table.by_id.keys().copied().collect();
            let pending: std::collections::HashSet<u64> = deleted
                .iter()
                .filter(|(_, seg)| **seg > last)
                .map(|(id, _)| *id)
                .collect();
            move |id: u64| live.contains(&id) || pending.contains(&id)
        };
        // Samples are not kept: a queue reads only series from a checkpoint.
        match wal::checkpoint::create(
            &inner.wal_dir,
            last,
            keep,
            i64::MAX,
            inner.opts.wal_compression,
        ) {
            Ok(_) => {
                inner
                    .stats
                    .checkpoints_created
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                inner
                    .stats
                    .checkpoints_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        match wal::checkpoint::delete_covered(&inner.wal_dir, last) {
            Ok(()) => {
                inner
                    .stats
                    .checkpoint_deletions
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                inner
                    .stats
                    .checkpoint_deletions_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        // Removed series whose last records were folded are gone for good.
        inner
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, seg| *seg > last);
        st.checkpoint = Some(last);
        self.finish_truncate(started);
        Ok(st)
    }

    fn finish_truncate(&self, started: Instant) {
        let inner = &self.inner;
        let n = inner
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        inner
            .stats
            .deleted_series
            .store(n as u64, Ordering::Relaxed);
        inner.stats.truncations.fetch_add(1, Ordering::Relaxed);
        inner
            .stats
            .truncate_seconds_total_ms
            .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl Appendable for AgentDb {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(AgentAppender {
            generation: self.inner.gc_generation.load(Ordering::Acquire),
            db: self.inner.clone(),
            pending: Vec::new(),
            exemplars: Vec::new(),
            batch_last: HashMap::new(),
            buf: Vec::new(),
        })
    }
}

/// A batch for the agent's WAL.
struct AgentAppender {
    /// The GC generation when the batch began.
    generation: u64,
    db: Arc<AgentInner>,
    pending: Vec<(Arc<AgentSeries>, Timestamp, f64)>,
    exemplars: Vec<(Arc<AgentSeries>, Exemplar)>,
    /// Last (timestamp, value bits) per series within this batch.
    batch_last: HashMap<u64, (Timestamp, u64)>,
    buf: Vec<u8>,
}

impl AgentInner {
    /// The series with these labels, created (not yet logged) when new.
    fn get_or_create(&self, labels: &Labels) -> Result<Arc<AgentSeries>, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        if labels.iter().any(|l| l.name.is_empty()) {
            return Err(AppendError::InvalidLabels("empty label name".into()));
        }
        let hash = labels.hash64();
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .find(hash, labels)
        {
            return Ok(s);
        }
        let mut table = self.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = table.find(hash, labels) {
            return Ok(s);
        }
        let s = Arc::new(AgentSeries::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
            labels.clone(),
            None,
            false,
        ));
        table.insert(s.clone());
        self.stats
            .active_series
            .store(table.by_id.len() as u64, Ordering::Relaxed);
        Ok(s)
    }

    /// `s` if it is still the series in memory for its labels, else the one that now is
    /// (created when truncation removed `s` since a batch took it).
    fn current(&self, s: &Arc<AgentSeries>) -> Result<Arc<AgentSeries>, AppendError> {
        let present = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(&s.id)
            .is_some_and(|c| Arc::ptr_eq(c, s));
        if present {
            Ok(Arc::clone(s))
        } else {
            self.get_or_create(&s.labels)
        }
    }
}

impl Appender for AgentAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        // A reference is trusted while its series is in memory (the scrape cache passes it
        // back); one that left memory falls back to the labels.
        let known = series.and_then(|r| {
            self.db
                .series
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .by_id
                .get(&r)
                .cloned()
        });
        let s = match known {
            Some(s) => s,
            None => self.db.get_or_create(labels)?,
        };
        let last = self.batch_last.get(&s.id).copied().or_else(|| s.last());
        match storage::check_append_order(last, t, v) {
            Ok(true) => {}
            Ok(false) => return Ok(s.id),
            Err(e) => {
                self.db
                    .stats
                    .out_of_order_samples
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.batch_last.insert(s.id, (t, v.to_bits()));
        let id = s.id;
        self.pending.push((s, t, v));
        Ok(id)
    }

    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        let s = {
            let table = self.db.series.read().unwrap_or_else(|e| e.into_inner());
            series
                .and_then(|r| table.by_id.get(&r).cloned())
                .or_else(|| table.find(labels.hash64(), labels))
        }
        .ok_or_else(|| AppendError::ExemplarForUnknownSeries(labels.to_string()))?;
        let newest = match self.exemplars.iter().rev().find(|(p, _)| p.id == s.id) {
            Some((_, e)) => Some(e.clone()),
            None => s
                .last_exemplar
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        match storage::validate_exemplar(newest.as_ref(), exemplar) {
            Ok(()) => {}
            Err(AppendError::DuplicateExemplar) => return Ok(s.id),
            Err(e) => return Err(e),
        }
        let id = s.id;
        self.exemplars.push((s, exemplar.clone()));
        Ok(id)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() && self.exemplars.is_empty() {
            self.batch_last.clear();
            return Ok(());
        }
        let mut wal = self.db.wal.lock().unwrap_or_else(|e| e.into_inner());
        if wal.is_none() {
            drop(wal);
            self.rollback()?;
            return Err(StorageError::Closed);
        }
        // A series that left memory since the batch began gets a fresh reference (and series
        // record), so its samples never follow a record a checkpoint has dropped. Truncation
        // removes series only under the WAL lock held here.
        let generation = self.db.gc_generation.load(Ordering::Acquire);
        if generation != self.generation {
            let db = &self.db;
            let refreshed = self
                .pending
                .iter_mut()
                .map(|(s, _, _)| s)
                .chain(self.exemplars.iter_mut().map(|(s, _)| s))
                .try_for_each(|s| {
                    *s = db.current(s)?;
                    Ok::<(), AppendError>(())
                });
            if let Err(e) = refreshed {
                drop(wal);
                self.rollback()?;
                return Err(StorageError::Other(e.to_string()));
            }
            self.generation = generation;
        }
        let mut unlogged: Vec<&Arc<AgentSeries>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in self
            .pending
            .iter()
            .map(|(s, _, _)| s)
            .chain(self.exemplars.iter().map(|(s, _)| s))
        {
            if !s.wal_logged.load(Ordering::Acquire) && seen.insert(s.id) {
                unlogged.push(s);
            }
        }
        let mut series_rec = Vec::new();
        if !unlogged.is_empty() {
            record::encode_series(unlogged.iter().map(|s| (s.id, &s.labels)), &mut series_rec);
        }
        let refs: Vec<RefSample> = self
            .pending
            .iter()
            .map(|(s, t, v)| RefSample {
                id: s.id,
                t: *t,
                v: *v,
            })
            .collect();
        self.buf.clear();
        if !refs.is_empty() {
            record::encode_samples(&refs, &mut self.buf);
        }
        let mut exemplar_rec = Vec::new();
        if !self.exemplars.is_empty() {
            let refs: Vec<RefExemplar> = self
                .exemplars
                .iter()
                .map(|(s, e)| RefExemplar {
                    id: s.id,
                    t: e.ts,
                    v: e.value,
                    labels: e.labels.clone(),
                })
                .collect();
            record::encode_exemplars(&refs, &mut exemplar_rec);
        }
        let mut records: Vec<&[u8]> = Vec::with_capacity(3);
        if !series_rec.is_empty() {
            records.push(&series_rec);
        }
        if !self.buf.is_empty() {
            records.push(&self.buf);
        }
        if !exemplar_rec.is_empty() {
            records.push(&exemplar_rec);
        }
        let logged = match wal.as_mut() {
            Some(w) => w.log(&records),
            None => Ok(()),
        };
        if let Err(e) = logged {
            drop(wal);
            self.rollback()?;
            return Err(StorageError::Io(format!("writing the agent WAL: {e}")));
        }
        // Applied under the WAL lock, so the last timestamps follow WAL order.
        for s in unlogged {
            s.wal_logged.store(true, Ordering::Release);
        }
        let mut max_t = i64::MIN;
        for (s, t, v) in self.pending.drain(..) {
            if t > s.last_t.load(Ordering::Acquire) {
                s.last_t.store(t, Ordering::Release);
                s.last_v.store(v.to_bits(), Ordering::Release);
            }
            max_t = max_t.max(t);
        }
        for (s, e) in self.exemplars.drain(..) {
            *s.last_exemplar.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
        drop(wal);
        self.db.max_t.fetch_max(max_t, Ordering::AcqRel);
        self.db
            .stats
            .samples_appended
            .fetch_add(refs.len() as u64, Ordering::Relaxed);
        self.batch_last.clear();
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        self.exemplars.clear();
        self.batch_last.clear();
        self.generation = self.db.gc_generation.load(Ordering::Acquire);
        Ok(())
    }
}
