//! One remote-write queue: its directory and saved position, its WAL watcher thread, its
//! shards, the shard-count computation, and an orderly stop.
//!
//! Shard count: every `reshard_interval` the queue measures the rate of samples coming out
//! of the WAL, the time a successful send takes per sample, and the backlog, and asks for
//! `ceil(time_per_sample × (rate_in + backlog / 10 s))` shards within `min_shards..=max_shards`.
//! Changes smaller than 30% are ignored, and nothing changes while sends are failing (more
//! connections do not help a receiver that is down, and a reshard must drain the shards).
//!
//! Metadata (`metadata_config.send`, given a [`MetadataSource`]): a remote write 1.0 queue runs
//! the periodic metadata sender; a 2.0 queue keeps a metadata index its shards put on series.
//!
//! Stop: the watcher stops reading, the shards get `flush_deadline` to send what they hold,
//! then they are cancelled and the position is saved. Unsent samples are not lost: they are
//! still in the WAL after the saved position, and the next start sends them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metadata::{MetadataIndex, MetadataSettings, MetadataSource};
use crate::metrics::QueueMetrics;
use crate::position::{Position, PositionStore};
use crate::sender::Transport;
use crate::shards::{AckState, QueueSettings, ShardQueue, Shared, run_shard};
use crate::wal_watcher::{self, SeriesRules, WatcherOptions};

/// Everything a queue needs besides its configuration.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// The TSDB's WAL directory (`<data>/wal`).
    pub wal_dir: PathBuf,
    /// This queue's own directory (`<data>/remote/<queue-id>`).
    pub queue_dir: PathBuf,
    /// `remote_name` and `url` labels of the metrics.
    pub remote_name: String,
    pub url: String,
    pub settings: QueueSettings,
    /// External labels, added to series that lack them.
    pub external_labels: BTreeMap<String, String>,
    pub relabel: Vec<relabel::Rule>,
    /// How long a stop lets the shards send what they hold (Prometheus'
    /// `--storage.remote.flush-deadline`, 1 minute).
    pub flush_deadline: Duration,
    /// Shard-count computation period (10 s in production; shorter in tests).
    pub reshard_interval: Duration,
    /// Idle WAL poll period.
    pub poll_interval: Duration,
    /// Position snapshot period (the acknowledgement journal covers the time between).
    pub persist_interval: Duration,
    /// `send_exemplars`: read exemplars records and send them with their series.
    pub send_exemplars: bool,
    /// Where metadata comes from and how it is sent; `None` sends none.
    pub metadata: Option<(Arc<dyn MetadataSource>, MetadataSettings)>,
}

impl QueueOptions {
    /// Production periods for the given queue.
    pub fn new(
        wal_dir: PathBuf,
        queue_dir: PathBuf,
        remote_name: &str,
        url: &str,
        settings: QueueSettings,
    ) -> QueueOptions {
        QueueOptions {
            wal_dir,
            queue_dir,
            remote_name: remote_name.to_owned(),
            url: url.to_owned(),
            settings,
            external_labels: BTreeMap::new(),
            relabel: Vec::new(),
            flush_deadline: Duration::from_secs(60),
            reshard_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            persist_interval: Duration::from_secs(5),
            send_exemplars: false,
            metadata: None,
        }
    }
}

/// How often a remote write 2.0 queue refreshes the metadata it puts on series, at most.
const METADATA_INDEX_REFRESH: Duration = Duration::from_secs(10);

/// A running queue.
pub struct QueueManager {
    shared: Arc<Shared>,
    watcher: Option<std::thread::JoinHandle<()>>,
    shards: Vec<JoinHandle<()>>,
    resharder: Option<JoinHandle<()>>,
    metadata_task: Option<JoinHandle<()>>,
    flush_deadline: Duration,
}

/// Where a queue without a saved position starts: the end of the WAL as it is now.
fn fresh_position(wal_dir: &Path) -> Position {
    let segs = tsdb::wal::list_segments(wal_dir).unwrap_or_default();
    match segs.last() {
        Some(&last) => {
            let size = std::fs::metadata(wal_dir.join(tsdb::wal::segment_name(last)))
                .map(|m| m.len())
                .unwrap_or(0);
            Position {
                segment: last,
                skip_before: size,
                done: Default::default(),
            }
        }
        None => Position::default(),
    }
}

impl QueueManager {
    /// Starts the queue on the current tokio runtime. A queue directory with a saved
    /// position resumes there; a new one starts at the WAL's end.
    pub fn start(
        opts: QueueOptions,
        transport: Arc<dyn Transport>,
    ) -> Result<QueueManager, String> {
        let mut store = PositionStore::open(&opts.queue_dir)
            .map_err(|e| format!("creating {}: {e}", opts.queue_dir.display()))?;
        let position = match store.load() {
            Ok(Some(p)) => p,
            Ok(None) => {
                let p = fresh_position(&opts.wal_dir);
                store.save(&p).map_err(|e| {
                    format!("saving the position in {}: {e}", opts.queue_dir.display())
                })?;
                p
            }
            Err(e) => {
                tracing::error!(remote_name = %opts.remote_name, err = %e, "the saved remote-write position is unusable; starting at the end of the WAL");
                let p = fresh_position(&opts.wal_dir);
                store.save(&p).map_err(|e| {
                    format!("saving the position in {}: {e}", opts.queue_dir.display())
                })?;
                p
            }
        };
        let s = opts.settings.clone();
        let metrics = Arc::new(QueueMetrics::new(&opts.remote_name, &opts.url));
        metrics.shards.store(s.min_shards as u64, Ordering::Relaxed);
        metrics
            .shards_min
            .store(s.min_shards as u64, Ordering::Relaxed);
        metrics
            .shards_max
            .store(s.max_shards as u64, Ordering::Relaxed);
        metrics
            .shards_desired
            .store(s.min_shards as u64, Ordering::Relaxed);
        metrics
            .max_samples_per_send
            .store(s.max_samples_per_send as u64, Ordering::Relaxed);
        metrics
            .lowest_needed_segment
            .store(u64::from(position.segment), Ordering::Relaxed);
        let v2 = s.protobuf_message == config::RemoteWriteMessage::V2;
        let metadata_index = (v2 && opts.metadata.is_some())
            .then(|| Arc::new(std::sync::RwLock::new(Arc::new(MetadataIndex::default()))));
        let shared = Arc::new(Shared {
            shards: (0..s.max_shards)
                .map(|_| ShardQueue {
                    items: Mutex::new(Default::default()),
                    notify: tokio::sync::Notify::new(),
                })
                .collect(),
            active: AtomicUsize::new(s.min_shards),
            desired: AtomicUsize::new(s.min_shards),
            pending: AtomicI64::new(0),
            space_lock: Mutex::new(()),
            space: Condvar::new(),
            floor: AtomicU32::new(0),
            read_segment: AtomicU32::new(position.segment),
            acks: Mutex::new(AckState {
                done: position.done.clone(),
                outstanding: BTreeMap::new(),
                store,
                skip: (position.segment, position.skip_before),
                dirty: false,
            }),
            stop_reading: AtomicBool::new(false),
            flushing: AtomicBool::new(false),
            cancel: CancellationToken::new(),
            last_failure_ms: AtomicI64::new(0),
            send_nanos: AtomicU64::new(0),
            settings: s.clone(),
            metrics,
            metadata: metadata_index.clone(),
        });
        let shards = (0..s.max_shards)
            .map(|i| tokio::spawn(run_shard(Arc::clone(&shared), i, Arc::clone(&transport))))
            .collect();
        let rules = SeriesRules {
            external_labels: opts
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            relabel: opts.relabel.clone(),
            keep_labels: v2,
            send_exemplars: opts.send_exemplars,
        };
        let wopts = WatcherOptions {
            wal_dir: opts.wal_dir.clone(),
            poll_interval: opts.poll_interval,
            persist_interval: opts.persist_interval,
            drain_timeout: s.batch_send_deadline + Duration::from_secs(30),
        };
        let watcher_shared = Arc::clone(&shared);
        let skip = (position.segment, position.skip_before);
        let segment = position.segment;
        let filter = position.done;
        let watcher = std::thread::Builder::new()
            .name(format!("rw-wal-{}", opts.remote_name))
            .spawn(move || wal_watcher::run(watcher_shared, wopts, rules, segment, filter, skip))
            .map_err(|e| format!("starting the WAL watcher thread: {e}"))?;
        let resharder = tokio::spawn(reshard_loop(Arc::clone(&shared), opts.reshard_interval));
        let metadata_task = opts.metadata.map(|(source, ms)| match metadata_index {
            Some(index) => tokio::spawn(crate::metadata::run_index_refresh(
                source,
                index,
                ms.interval.min(METADATA_INDEX_REFRESH),
                shared.cancel.clone(),
            )),
            None => tokio::spawn(crate::metadata::run_sender(
                source,
                Arc::clone(&transport),
                Arc::clone(&shared.metrics),
                ms,
                shared.cancel.clone(),
            )),
        });
        Ok(QueueManager {
            shared,
            watcher: Some(watcher),
            shards,
            resharder: Some(resharder),
            metadata_task,
            flush_deadline: opts.flush_deadline,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The queue's metrics (shared; they stay valid after the queue stops).
    pub fn metrics(&self) -> &Arc<QueueMetrics> {
        &self.shared.metrics
    }

    /// The oldest WAL segment this queue still needs; the TSDB must not delete it or later
    /// ones (checkpointing their series is fine: the watcher reads series from checkpoints).
    pub fn lowest_needed_segment(&self) -> u32 {
        self.shared.lowest_needed()
    }

    /// Samples read from the WAL and not yet done.
    pub fn pending(&self) -> i64 {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Stops reading, gives the shards `flush_deadline` to send what they hold, cancels
    /// them and saves the position.
    pub async fn stop(mut self) {
        self.stop_inner(self.flush_deadline).await;
    }

    /// As [`stop`](Self::stop) with another flush deadline (zero: stop at once).
    pub async fn stop_with_deadline(mut self, flush_deadline: Duration) {
        self.stop_inner(flush_deadline).await;
    }

    async fn stop_inner(&mut self, flush_deadline: Duration) {
        let sh = Arc::clone(&self.shared);
        sh.stop_reading.store(true, Ordering::Release);
        sh.signal_space();
        if let Some(w) = self.watcher.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        if let Some(r) = self.resharder.take() {
            r.abort();
        }
        if let Some(t) = self.metadata_task.take() {
            t.abort();
        }
        sh.flushing.store(true, Ordering::Release);
        for q in &sh.shards {
            q.notify.notify_one();
        }
        let started = Instant::now();
        while sh.pending.load(Ordering::Acquire) > 0 && started.elapsed() < flush_deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sh.cancel.cancel();
        for h in self.shards.drain(..) {
            let _ = h.await;
        }
        sh.persist();
        let left = sh.pending.load(Ordering::Acquire);
        if left > 0 {
            tracing::info!(remote_name = %sh.metrics.remote_name, samples = left, "remote-write queue stopped with unsent samples; they stay in the WAL and are sent after the next start");
        }
    }
}

impl Drop for QueueManager {
    fn drop(&mut self) {
        // A queue dropped without `stop` still stops its tasks and thread.
        self.shared.stop_reading.store(true, Ordering::Release);
        self.shared.cancel.cancel();
        self.shared.signal_space();
        if let Some(r) = self.resharder.take() {
            r.abort();
        }
        if let Some(t) = self.metadata_task.take() {
            t.abort();
        }
    }
}

/// Computes the desired shard count periodically.
async fn reshard_loop(shared: Arc<Shared>, every: Duration) {
    let s = shared.settings.clone();
    let m = Arc::clone(&shared.metrics);
    let mut last_in = m.samples_in.load(Ordering::Relaxed);
    let mut last_out = m.samples_sent.load(Ordering::Relaxed);
    let mut last_nanos = shared.send_nanos.load(Ordering::Relaxed);
    let mut rate_in: Option<f64> = None;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let secs = every.as_secs_f64().max(1e-3);
        let now_in = m.samples_in.load(Ordering::Relaxed);
        let now_out = m.samples_sent.load(Ordering::Relaxed);
        let nanos = shared.send_nanos.load(Ordering::Relaxed);
        let d_in = now_in.saturating_sub(last_in) as f64;
        let d_out = now_out.saturating_sub(last_out) as f64;
        let d_nanos = nanos.saturating_sub(last_nanos) as f64;
        (last_in, last_out, last_nanos) = (now_in, now_out, nanos);
        let r = d_in / secs;
        let smoothed = match rate_in {
            Some(prev) => prev * 0.7 + r * 0.3,
            None => r,
        };
        rate_in = Some(smoothed);
        let failing = crate::shards::now_ms() - shared.last_failure_ms.load(Ordering::Relaxed)
            < every.as_millis() as i64;
        if failing || d_out == 0.0 {
            continue;
        }
        let time_per_sample = d_nanos / 1e9 / d_out;
        let backlog = shared.pending.load(Ordering::Relaxed).max(0) as f64;
        let want = (time_per_sample * (smoothed + backlog / 10.0)).ceil() as usize;
        let want = want.clamp(s.min_shards, s.max_shards);
        let active = shared.active.load(Ordering::Acquire);
        m.shards_desired.store(want as u64, Ordering::Relaxed);
        let lo = (active as f64 * 0.7).floor() as usize;
        let hi = (active as f64 * 1.3).ceil() as usize;
        if want != active
            && (want < lo || want > hi || want == s.min_shards || want == s.max_shards)
        {
            shared.desired.store(want, Ordering::Release);
        }
    }
}
