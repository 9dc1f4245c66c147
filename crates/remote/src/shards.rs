//! The state one queue's WAL watcher and its shards share, and the shard loop: batching by
//! `max_samples_per_send` and `batch_send_deadline`, sending, retrying with exponential
//! backoff (or the receiver's `Retry-After`), and marking samples done.
//!
//! Order: a series always hashes to the same shard while the shard count is unchanged, a
//! shard sends one batch at a time and finishes it (sent, refused or dropped) before taking
//! the next, and resharding waits until every shard is empty. So a receiver never sees a
//! series' samples out of order, even with many shards in parallel.
//!
//! Exemplars (`send_exemplars`) travel as items too, in the same shard as their series' samples
//! and counted towards `max_samples_per_send`, and are sent in the series' `TimeSeries` entry;
//! they advance the position like samples but not the series' "done" timestamp (their
//! timestamps are not ordered with the samples'), so a restart may send a few again, which
//! receivers ignore as duplicates. `sample_age_limit` applies to their timestamps (as in
//! Prometheus), the retention age does not (an exemplar may be old when it is scraped); the
//! retention size does.
//!
//! Nothing is lost while a batch is retried: the samples stay in the WAL and the queue's
//! saved position does not pass them until they are done. A retried batch only gives up its
//! samples when they fall outside the queue's retention bound (`retention_max_age`,
//! `retention_max_size`) or `sample_age_limit`; they are then counted as dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::encode::{FastMap, V2Builder, put_timeseries};
use crate::metrics::{DropReason, QueueMetrics};
use crate::position::{Position, PositionStore};
use crate::sender::{Transport, Verdict, classify};

/// A `Retry-After` longer than this is shortened to it (a receiver cannot park a queue for
/// days; the retention bound decides what is dropped).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A series as it is sent: labels after external labels and write_relabel_configs, already
/// protobuf-encoded (see `encode`).
#[derive(Debug)]
pub(crate) struct SeriesInfo {
    /// Remote write 1.0: the `labels` fields of a `TimeSeries`.
    pub encoded_labels: Box<[u8]>,
    /// Remote write 2.0: the labels (empty for 1.0 queues).
    pub labels: Box<[crate::proto::Label]>,
    /// Hash of the series' WAL labels: the key of "done" timestamps and of shard routing.
    pub key: u64,
    /// The metric name after relabeling and the series' target (`metadata::target_key` of
    /// its WAL labels): remote write 2.0 looks its metadata up by them.
    pub name: Box<str>,
    pub target: u64,
}

/// One pending sample, or exemplar.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub series: Arc<SeriesInfo>,
    pub t: i64,
    pub v: f64,
    /// The WAL segment it was read from.
    pub seg: u32,
    /// `Some(labels)` for an exemplar.
    pub exemplar: Option<Arc<[crate::proto::Label]>>,
}

/// Adds `sign` times the items to the pending gauges (samples and exemplars apart).
pub(crate) fn add_pending(m: &QueueMetrics, items: &[Item], sign: i64) {
    let exemplars = items.iter().filter(|i| i.exemplar.is_some()).count() as i64;
    let samples = items.len() as i64 - exemplars;
    if samples != 0 {
        m.samples_pending
            .fetch_add(sign * samples, Ordering::Relaxed);
    }
    if exemplars != 0 {
        m.exemplars_pending
            .fetch_add(sign * exemplars, Ordering::Relaxed);
    }
}

/// (samples, exemplars) among `items`.
fn kinds(items: &[Item]) -> (u64, u64) {
    let exemplars = items.iter().filter(|i| i.exemplar.is_some()).count() as u64;
    (items.len() as u64 - exemplars, exemplars)
}

/// The numbers of a queue_config, resolved.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub capacity: usize,
    pub min_shards: usize,
    pub max_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
    /// Milliseconds; 0: off.
    pub sample_age_limit_ms: i64,
    /// Milliseconds; 0: off.
    pub retention_max_age_ms: i64,
    /// Bytes; 0: off.
    pub retention_max_size: u64,
    /// Remote write 1.0 or 2.0.
    pub protobuf_message: config::RemoteWriteMessage,
}

impl QueueSettings {
    pub fn from_config(q: &config::QueueConfig) -> QueueSettings {
        let ms = |d: config::Duration| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX);
        let max_shards = usize::try_from(q.max_shards)
            .unwrap_or(usize::MAX)
            .clamp(1, 10_000);
        QueueSettings {
            capacity: usize::try_from(q.capacity).unwrap_or(usize::MAX).max(1),
            min_shards: usize::try_from(q.min_shards)
                .unwrap_or(1)
                .clamp(1, max_shards),
            max_shards,
            max_samples_per_send: usize::try_from(q.max_samples_per_send)
                .unwrap_or(usize::MAX)
                .max(1),
            batch_send_deadline: q.batch_send_deadline.as_std(),
            min_backoff: q.min_backoff.as_std(),
            max_backoff: q.max_backoff.as_std().max(q.min_backoff.as_std()),
            retry_on_http_429: q.retry_on_http_429,
            sample_age_limit_ms: ms(q.sample_age_limit),
            retention_max_age_ms: ms(q.retention_max_age),
            retention_max_size: q.retention_max_size,
            protobuf_message: config::RemoteWriteMessage::V1,
        }
    }
}

pub(crate) struct ShardQueue {
    pub items: Mutex<VecDeque<Item>>,
    pub notify: tokio::sync::Notify,
}

/// Progress bookkeeping, under one lock.
pub(crate) struct AckState {
    /// Series key → newest done timestamp.
    pub done: FastMap<u64, i64>,
    /// Segment → samples read from it and not yet done.
    pub outstanding: BTreeMap<u32, u64>,
    pub store: PositionStore,
    /// The fresh-queue start: records of this segment before this offset are skipped.
    pub skip: (u32, u64),
    pub dirty: bool,
}

pub(crate) struct Shared {
    pub settings: QueueSettings,
    pub metrics: Arc<QueueMetrics>,
    pub shards: Vec<ShardQueue>,
    pub active: AtomicUsize,
    pub desired: AtomicUsize,
    /// Samples enqueued and not yet done.
    pub pending: AtomicI64,
    pub space_lock: Mutex<()>,
    pub space: Condvar,
    /// Samples from segments below this are dropped (retention_max_size).
    pub floor: AtomicU32,
    pub read_segment: AtomicU32,
    pub acks: Mutex<AckState>,
    pub stop_reading: AtomicBool,
    /// Shards send partial batches at once (resharding, shutdown).
    pub flushing: AtomicBool,
    pub cancel: CancellationToken,
    /// Unix ms of the last failed send attempt; 0: none.
    pub last_failure_ms: AtomicI64,
    /// Nanoseconds spent in successful sends, for resharding.
    pub send_nanos: AtomicU64,
    /// Remote write 2.0 with `metadata_config.send`: the metadata series are sent with.
    pub metadata: Option<Arc<std::sync::RwLock<Arc<crate::metadata::MetadataIndex>>>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn acks(&self) -> MutexGuard<'_, AckState> {
        lock(&self.acks)
    }

    pub fn queue(&self, i: usize) -> MutexGuard<'_, VecDeque<Item>> {
        lock(&self.shards[i].items)
    }

    /// Wakes a watcher waiting for room.
    pub fn signal_space(&self) {
        let _g = lock(&self.space_lock);
        self.space.notify_all();
    }

    /// Waits up to `d` for a shard to make room.
    pub fn wait_space(&self, d: Duration) {
        let g = lock(&self.space_lock);
        let _ = self.space.wait_timeout(g, d);
    }

    /// The oldest segment still needed: the oldest with samples not done, or the one being
    /// read, but never below the retention floor.
    pub fn lowest_needed(&self) -> u32 {
        let read = self.read_segment.load(Ordering::Acquire);
        let st = self.acks();
        let oldest = st.outstanding.keys().next().copied().unwrap_or(read);
        oldest.min(read).max(self.floor.load(Ordering::Acquire))
    }

    /// Marks samples done: updates the done timestamps (journalled) and the per-segment
    /// outstanding counts.
    pub fn mark_done(&self, items: &[Item]) {
        if items.is_empty() {
            return;
        }
        // Newest timestamp per series of the batch (a series' samples are in order, so the
        // last one seen is the newest), and counts per segment.
        let mut latest: FastMap<u64, i64> = FastMap::default();
        latest.reserve(items.len().min(4096));
        let mut per_segment: Vec<(u32, u64)> = Vec::with_capacity(2);
        for it in items {
            if it.exemplar.is_none() {
                let e = latest.entry(it.series.key).or_insert(it.t);
                *e = (*e).max(it.t);
            }
            match per_segment.iter_mut().find(|(s, _)| *s == it.seg) {
                Some((_, n)) => *n += 1,
                None => per_segment.push((it.seg, 1)),
            }
        }
        let entries: Vec<(u64, i64)> = latest.into_iter().collect();
        {
            let mut st = self.acks();
            st.done.reserve(entries.len());
            for (k, t) in &entries {
                let e = st.done.entry(*k).or_insert(*t);
                *e = (*e).max(*t);
            }
            for (seg, count) in per_segment {
                if let Some(n) = st.outstanding.get_mut(&seg) {
                    *n = n.saturating_sub(count);
                    if *n == 0 {
                        st.outstanding.remove(&seg);
                    }
                }
            }
            if let Err(e) = st.store.journal(&entries) {
                tracing::error!(remote_name = %self.metrics.remote_name, err = %e, "writing the remote-write acknowledgement journal");
            }
            st.dirty = true;
        }
        let n = items.len() as i64;
        self.pending.fetch_sub(n, Ordering::AcqRel);
        add_pending(&self.metrics, items, -1);
    }

    /// Writes the position snapshot (and empties the journal).
    pub fn persist(&self) {
        let segment = self.lowest_needed();
        let mut st = self.acks();
        // Entries older than the retention age can go: every sample at or before them is
        // dropped by age anyway if it is read again.
        if self.settings.retention_max_age_ms > 0 {
            let min = now_ms() - self.settings.retention_max_age_ms;
            st.done.retain(|_, t| *t >= min);
        }
        let p = Position {
            segment,
            skip_before: if segment == st.skip.0 { st.skip.1 } else { 0 },
            done: st.done.clone(),
        };
        match st.store.save(&p) {
            Ok(()) => st.dirty = false,
            Err(e) => {
                tracing::error!(remote_name = %self.metrics.remote_name, err = %e, "saving the remote-write position");
            }
        }
        self.metrics
            .lowest_needed_segment
            .store(u64::from(segment), Ordering::Relaxed);
    }

    /// Removes items that may no longer be sent, counting them; returns how many remain.
    fn drop_expired(&self, batch: &mut Vec<Item>) -> usize {
        let s = &self.settings;
        let now = now_ms();
        let floor = self.floor.load(Ordering::Acquire);
        let too_old = (s.sample_age_limit_ms > 0).then(|| now - s.sample_age_limit_ms);
        let retention = (s.retention_max_age_ms > 0).then(|| now - s.retention_max_age_ms);
        let mut dropped = Vec::new();
        let mut counts = [0u64; 3];
        let mut exemplar_counts = [0u64; 3];
        batch.retain(|it| {
            let reason = if it.seg < floor {
                Some(0)
            } else if it.exemplar.is_none() && retention.is_some_and(|m| it.t < m) {
                Some(1)
            } else if too_old.is_some_and(|m| it.t < m) {
                Some(2)
            } else {
                None
            };
            match reason {
                Some(r) => {
                    if it.exemplar.is_some() {
                        exemplar_counts[r] += 1;
                    } else {
                        counts[r] += 1;
                    }
                    dropped.push(it.clone());
                    false
                }
                None => true,
            }
        });
        let m = &self.metrics;
        m.dropped(DropReason::RetentionSize, counts[0]);
        m.dropped(DropReason::RetentionAge, counts[1]);
        m.dropped(DropReason::TooOld, counts[2]);
        m.exemplars_dropped(DropReason::RetentionSize, exemplar_counts[0]);
        m.exemplars_dropped(DropReason::RetentionAge, exemplar_counts[1]);
        m.exemplars_dropped(DropReason::TooOld, exemplar_counts[2]);
        self.mark_done(&dropped);
        batch.len()
    }
}

/// Per-shard encoding buffers.
#[derive(Default)]
pub(crate) struct Encoder {
    order: Vec<u32>,
    raw: Vec<u8>,
    v2: Option<V2Builder>,
}

/// Encodes a batch as a compressed request: one time series per series, each with its
/// samples (and exemplars) in batch (= WAL) order; for remote write 2.0 with the series'
/// metadata from `metadata`.
fn encode_batch(
    batch: &[Item],
    enc: &mut Encoder,
    message: config::RemoteWriteMessage,
    metadata: Option<&crate::metadata::MetadataIndex>,
) -> Vec<u8> {
    let ptr = |i: u32| Arc::as_ptr(&batch[i as usize].series) as usize;
    let order = &mut enc.order;
    order.clear();
    order.extend(0..batch.len() as u32);
    // Stable: a series' samples keep their order.
    order.sort_by_key(|&i| ptr(i));
    let samples = |run: &[u32]| {
        run.iter()
            .map(|&i| &batch[i as usize])
            .filter(|it| it.exemplar.is_none())
            .map(|it| (it.t, it.v))
            .collect::<Vec<_>>()
    };
    let exemplars = |run: &[u32]| {
        run.iter()
            .map(|&i| &batch[i as usize])
            .filter_map(|it| Some((it.exemplar.as_deref()?, it.v, it.t)))
            .collect::<Vec<_>>()
    };
    enc.raw.clear();
    match message {
        config::RemoteWriteMessage::V1 => {
            for run in order.chunk_by(|a, b| ptr(*a) == ptr(*b)) {
                let series = &batch[run[0] as usize].series;
                put_timeseries(
                    &mut enc.raw,
                    &series.encoded_labels,
                    samples(run).into_iter(),
                    &exemplars(run),
                );
            }
        }
        config::RemoteWriteMessage::V2 => {
            let b = enc.v2.get_or_insert_with(V2Builder::new);
            b.clear();
            for run in order.chunk_by(|a, b| ptr(*a) == ptr(*b)) {
                let series = &batch[run[0] as usize].series;
                let meta = metadata.and_then(|m| m.for_series(series.target, &series.name));
                b.add(
                    &series.labels,
                    samples(run).into_iter(),
                    &exemplars(run),
                    meta,
                );
            }
            b.finish(&mut enc.raw);
        }
    }
    snap::raw::Encoder::new()
        .compress_vec(&enc.raw)
        .unwrap_or_default()
}

/// Sends one batch until it is done; false when cancelled first (the batch stays pending:
/// its samples are still in the WAL and not marked done).
async fn send_batch(
    shared: &Shared,
    transport: &dyn Transport,
    batch: &mut Vec<Item>,
    enc: &mut Encoder,
) -> bool {
    let s = &shared.settings;
    let m = &shared.metrics;
    let mut backoff = s.min_backoff;
    let mut attempt = 0u32;
    loop {
        if shared.drop_expired(batch) == 0 {
            return true;
        }
        let index = shared
            .metadata
            .as_ref()
            .map(|m| Arc::clone(&m.read().unwrap_or_else(|e| e.into_inner())));
        let body = encode_batch(batch, enc, s.protobuf_message, index.as_deref());
        let bytes = body.len() as u64;
        let started = Instant::now();
        let result = tokio::select! {
            r = transport.send(body) => r,
            _ = shared.cancel.cancelled() => return false,
        };
        let took = started.elapsed();
        m.send_duration.observe(took);
        let (n, n_exemplars) = kinds(batch);
        match classify(&result, s.retry_on_http_429) {
            Verdict::Done => {
                if let Ok(r) = &result
                    && let Some(written) = r.samples_written
                    && written < n
                {
                    tracing::warn!(remote_name = %m.remote_name, url = %m.url, sent = n, written, "the receiver acknowledged the request but says it wrote fewer samples");
                }
                m.samples_sent.fetch_add(n, Ordering::Relaxed);
                m.exemplars_sent.fetch_add(n_exemplars, Ordering::Relaxed);
                m.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                m.requests_sent.fetch_add(1, Ordering::Relaxed);
                let newest = batch
                    .iter()
                    .filter(|i| i.exemplar.is_none())
                    .map(|i| i.t)
                    .max()
                    .unwrap_or(0);
                m.highest_sent_ms.fetch_max(newest, Ordering::Relaxed);
                shared
                    .send_nanos
                    .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
                shared.mark_done(batch);
                batch.clear();
                return true;
            }
            Verdict::Refused => {
                let (status, message) = match &result {
                    Ok(r) => (r.status, r.message.as_str()),
                    Err(e) => (0, e.as_str()),
                };
                tracing::warn!(remote_name = %m.remote_name, url = %m.url, status, err = message, samples = n, exemplars = n_exemplars, "remote write refused a batch; its samples are dropped (not retried)");
                m.samples_failed.fetch_add(n, Ordering::Relaxed);
                m.exemplars_failed.fetch_add(n_exemplars, Ordering::Relaxed);
                shared.mark_done(batch);
                batch.clear();
                return true;
            }
            Verdict::Retry(after) => {
                m.samples_retried.fetch_add(n, Ordering::Relaxed);
                m.exemplars_retried
                    .fetch_add(n_exemplars, Ordering::Relaxed);
                shared.last_failure_ms.store(now_ms(), Ordering::Relaxed);
                let err = match &result {
                    Ok(r) => format!("HTTP {}: {}", r.status, r.message),
                    Err(e) => e.clone(),
                };
                let wait = match after {
                    Some(a) => a.min(MAX_RETRY_AFTER),
                    None => backoff,
                };
                if attempt == 0 {
                    tracing::warn!(remote_name = %m.remote_name, url = %m.url, err = %err, samples = n, "remote write failed; retrying with backoff (data is kept in the WAL)");
                } else {
                    tracing::debug!(remote_name = %m.remote_name, err = %err, attempt, ?wait, "remote write retry failed");
                }
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shared.cancel.cancelled() => return false,
                }
                backoff = (backoff * 2).min(s.max_backoff);
            }
        }
    }
}

/// The loop of shard `idx`: waits for a full batch or the batch deadline, sends, repeats.
pub(crate) async fn run_shard(shared: Arc<Shared>, idx: usize, transport: Arc<dyn Transport>) {
    let s = shared.settings.clone();
    let q = &shared.shards[idx];
    let mut batch: Vec<Item> = Vec::with_capacity(s.max_samples_per_send);
    let mut enc = Encoder::default();
    let mut deadline: Option<Instant> = None;
    loop {
        if shared.cancel.is_cancelled() {
            return;
        }
        let len = shared.queue(idx).len();
        if len == 0 {
            deadline = None;
            tokio::select! {
                _ = q.notify.notified() => {}
                _ = shared.cancel.cancelled() => return,
            }
            continue;
        }
        let dl = *deadline.get_or_insert_with(|| Instant::now() + s.batch_send_deadline);
        if len < s.max_samples_per_send
            && Instant::now() < dl
            && !shared.flushing.load(Ordering::Acquire)
        {
            tokio::select! {
                _ = q.notify.notified() => {}
                _ = tokio::time::sleep_until(dl.into()) => {}
                _ = shared.cancel.cancelled() => return,
            }
            continue;
        }
        deadline = None;
        {
            let mut queue = shared.queue(idx);
            let n = queue.len().min(s.max_samples_per_send);
            batch.extend(queue.drain(..n));
        }
        shared.signal_space();
        if !send_batch(&shared, transport.as_ref(), &mut batch, &mut enc).await {
            return;
        }
    }
}
