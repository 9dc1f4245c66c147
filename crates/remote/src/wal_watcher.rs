//! The WAL watcher of one queue: a thread that reads the TSDB's WAL from the queue's saved
//! position, follows the segment being written, turns series records into the labels to send
//! (external labels, then write_relabel_configs) and samples records into pending samples
//! routed to shards by series; with `send_exemplars`, exemplars records likewise.
//!
//! Start-up: series come from the newest `checkpoint.NNNNNNNN` directory (Prometheus' format;
//! only its series records are used) and from every segment between the checkpoint and the
//! saved position; samples are read from the saved position on, skipping those already done
//! (see `position`). When the shards are full the watcher waits: the WAL keeps the data, not
//! memory. While it waits it enforces the retention bound: past `retention_max_size` it
//! raises the queue's floor so whole old segments are dropped (counted per sample); past
//! `retention_max_age` old samples are dropped where they are found.
//!
//! The watcher also performs resharding: when the desired shard count differs, it stops
//! reading, lets every shard drain, and then changes the routing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use model::labels::Labels;
use tsdb::wal::record::{self, RefExemplar, RefSample, RefSeries};
use tsdb::wal::{WalReader, list_segments, segment_name};

use crate::encode::{FastMap, encode_labels};
use crate::metrics::DropReason;
use crate::proto;
use crate::shards::{Item, SeriesInfo, Shared, now_ms};
use crate::wal_tail::{Next, SegmentTail};

/// How a series record becomes the labels that are sent.
pub(crate) struct SeriesRules {
    pub external_labels: Vec<(String, String)>,
    pub relabel: Vec<relabel::Rule>,
    /// Keep the label strings (remote write 2.0 builds a symbol table per request).
    pub keep_labels: bool,
    /// Read exemplars records too (`send_exemplars`).
    pub send_exemplars: bool,
}

impl SeriesRules {
    fn apply(&self, wal: &Labels) -> Option<Arc<SeriesInfo>> {
        let key = wal.hash64();
        let with_external = if self.external_labels.is_empty() {
            wal.clone()
        } else {
            let mut b = wal.builder();
            for (k, v) in &self.external_labels {
                if b.get(k).is_none() {
                    b.set(k.as_str(), v.as_str());
                }
            }
            b.build()
        };
        let out = relabel::process(&with_external, &self.relabel)?;
        if out.is_empty() {
            return None;
        }
        let labels: Vec<proto::Label> = out
            .iter()
            .map(|l| proto::Label {
                name: l.name.as_str().to_owned(),
                value: l.value.as_str().to_owned(),
            })
            .collect();
        let encoded_labels = if self.keep_labels {
            Box::default()
        } else {
            encode_labels(&labels).into_boxed_slice()
        };
        let name = out.metric_name().unwrap_or_default().into();
        Some(Arc::new(SeriesInfo {
            name,
            target: crate::metadata::target_key(wal),
            encoded_labels,
            labels: if self.keep_labels {
                labels.into_boxed_slice()
            } else {
                Box::default()
            },
            key,
        }))
    }
}

pub(crate) struct WatcherOptions {
    pub wal_dir: PathBuf,
    pub poll_interval: Duration,
    pub persist_interval: Duration,
    /// How long a reshard may wait for the shards to drain before it is abandoned.
    pub drain_timeout: Duration,
}

/// The newest complete checkpoint directory and the last segment it covers.
pub fn latest_checkpoint(wal_dir: &Path) -> Option<(u32, PathBuf)> {
    let mut best: Option<(u32, PathBuf)> = None;
    for e in fs::read_dir(wal_dir).ok()?.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name.strip_prefix("checkpoint.") else {
            continue;
        };
        // `checkpoint.NNNNNNNN.tmp` is unfinished.
        let Ok(n) = num.parse::<u32>() else { continue };
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, e.path()));
        }
    }
    best
}

/// A series the watcher knows.
struct SeriesEntry {
    info: Option<Arc<SeriesInfo>>,
    seg: u32,
}

struct Watcher {
    shared: Arc<Shared>,
    opts: WatcherOptions,
    rules: SeriesRules,
    /// Series by WAL reference: what to send (`None`: dropped by relabeling) and the segment
    /// of the newest record declaring it (a checkpoint counts as its last segment).
    series: FastMap<u64, SeriesEntry>,
    /// The newest checkpoint whose series this watcher has reconciled with its table.
    checkpoint_seen: Option<u32>,
    last_checkpoint_check: Instant,
    /// Done timestamps loaded at start; cleared once the watcher has caught up.
    filter: FastMap<u64, i64>,
    skip: (u32, u64),
    samples: Vec<RefSample>,
    exemplars: Vec<RefExemplar>,
    series_buf: Vec<RefSeries>,
    routed: Vec<Vec<Item>>,
    last_persist: Instant,
    last_bound_check: Instant,
    segment_sizes: Vec<(u32, u64)>,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    opts: WatcherOptions,
    rules: SeriesRules,
    start_segment: u32,
    filter: FastMap<u64, i64>,
    skip: (u32, u64),
) {
    let routed = (0..shared.shards.len()).map(|_| Vec::new()).collect();
    let mut w = Watcher {
        shared,
        opts,
        rules,
        series: FastMap::default(),
        checkpoint_seen: None,
        last_checkpoint_check: Instant::now(),
        filter,
        skip,
        samples: Vec::new(),
        exemplars: Vec::new(),
        series_buf: Vec::new(),
        routed,
        last_persist: Instant::now(),
        last_bound_check: Instant::now() - Duration::from_secs(60),
        segment_sizes: Vec::new(),
    };
    w.main(start_segment);
}

impl Watcher {
    fn stopped(&self) -> bool {
        self.shared.stop_reading.load(Ordering::Acquire)
    }

    fn name(&self) -> &str {
        &self.shared.metrics.remote_name
    }

    /// Loads series from the checkpoint and the segments before `start`; returns the segment
    /// to start at (later than `start` when the WAL no longer has it).
    fn load_series(&mut self, start: u32) -> u32 {
        let dir = self.opts.wal_dir.clone();
        let mut first_after_checkpoint = 0;
        if let Some((n, cp)) = latest_checkpoint(&dir) {
            let segs = list_segments(&cp).unwrap_or_default();
            self.read_series_only(&cp, segs, Some(n));
            first_after_checkpoint = n.saturating_add(1);
            self.checkpoint_seen = Some(n);
        }
        let segs = list_segments(&dir).unwrap_or_default();
        let mut start = start;
        let first_existing = segs.iter().copied().find(|s| *s >= first_after_checkpoint);
        if let Some(first) = first_existing
            && first > start
        {
            tracing::warn!(remote_name = %self.name(), saved = start, first, "WAL segments this queue needed were removed; their unsent samples are lost");
            self.shared
                .metrics
                .wal_corruptions
                .fetch_add(1, Ordering::Relaxed);
            start = first;
        }
        let before: Vec<u32> = segs
            .iter()
            .copied()
            .filter(|s| *s >= first_after_checkpoint && *s < start)
            .collect();
        self.read_series_only(&dir, before, None);
        start
    }

    /// Reads the series records of `segments` of `dir`; `checkpoint` is the checkpoint's
    /// index when `dir` is one (its records count as declared in that segment).
    fn read_series_only(&mut self, dir: &Path, segments: Vec<u32>, checkpoint: Option<u32>) {
        let mut r = WalReader::new(dir, segments);
        let mut buf = Vec::new();
        loop {
            match r.next_record(&mut buf) {
                Ok(true) => {
                    if buf.first() == Some(&record::TYPE_SERIES) {
                        let seg = checkpoint.or(r.segment()).unwrap_or(0);
                        self.handle_series(&buf, seg);
                    }
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(remote_name = %self.name(), err = %e, "reading series from the WAL; the rest of that range is skipped");
                    return;
                }
            }
        }
    }

    fn handle_series(&mut self, rec: &[u8], seg: u32) {
        self.series_buf.clear();
        if let Err(e) = record::decode_series(rec, &mut self.series_buf, model::labels::Sym::new) {
            tracing::warn!(remote_name = %self.name(), err = %e, "undecodable series record skipped");
            return;
        }
        self.shared
            .metrics
            .records_series
            .fetch_add(1, Ordering::Relaxed);
        let buf = std::mem::take(&mut self.series_buf);
        for s in &buf {
            let info = self.rules.apply(&s.labels);
            self.series.insert(s.id, SeriesEntry { info, seg });
        }
        self.shared
            .metrics
            .series_tracked
            .store(self.series.len() as u64, Ordering::Relaxed);
        self.series_buf = buf;
    }

    fn main(&mut self, start: u32) {
        let mut seg = self.load_series(start);
        self.shared.read_segment.store(seg, Ordering::Release);
        self.shared
            .metrics
            .current_segment
            .store(u64::from(seg), Ordering::Relaxed);
        let mut tail: Option<SegmentTail> = None;
        let mut buf = Vec::new();
        while !self.stopped() {
            self.maybe_reshard();
            self.periodic();
            if tail.is_none() {
                let path = self.opts.wal_dir.join(segment_name(seg));
                match SegmentTail::open(&path, 0) {
                    Ok(t) => tail = Some(t),
                    Err(_) => {
                        // Not created yet, or removed: look for what exists.
                        let segs = list_segments(&self.opts.wal_dir).unwrap_or_default();
                        if let Some(next) = segs.iter().copied().find(|s| *s > seg) {
                            tracing::warn!(remote_name = %self.name(), missing = seg, next, "WAL segment missing; continuing with the next one");
                            seg = next;
                            self.set_segment(seg);
                        } else {
                            std::thread::sleep(self.opts.poll_interval);
                        }
                        continue;
                    }
                }
            }
            let Some(t) = tail.as_mut() else { continue };
            match t.next_record(&mut buf) {
                Ok(Next::Record { offset }) => {
                    self.handle_record_at(&buf, seg, offset);
                }
                Ok(Next::Pending) | Ok(Next::Broken { .. }) | Err(_) => {
                    let segs = list_segments(&self.opts.wal_dir).unwrap_or_default();
                    let Some(next) = segs.iter().copied().find(|s| *s > seg) else {
                        // The live segment: nothing new yet.
                        if !self.filter.is_empty() {
                            self.filter = FastMap::default();
                        }
                        std::thread::sleep(self.opts.poll_interval);
                        continue;
                    };
                    // A later segment exists, so this one is complete: read what arrived
                    // since, then move on.
                    match t.next_record(&mut buf) {
                        Ok(Next::Record { offset }) => {
                            self.handle_record_at(&buf, seg, offset);
                            continue;
                        }
                        Ok(Next::Broken { offset, reason }) => {
                            tracing::warn!(remote_name = %self.name(), segment = seg, offset, reason = %reason, "corrupt WAL record; the rest of the segment is skipped");
                            self.shared
                                .metrics
                                .wal_corruptions
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Next::Pending) => {
                            let unread = t.unread_bytes().unwrap_or(0);
                            if unread > 0 {
                                tracing::warn!(remote_name = %self.name(), segment = seg, bytes = unread, "torn WAL segment tail skipped");
                                self.shared
                                    .metrics
                                    .wal_corruptions
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(remote_name = %self.name(), segment = seg, err = %e, "reading the WAL; the rest of the segment is skipped");
                        }
                    }
                    seg = next;
                    self.set_segment(seg);
                    tail = None;
                }
            }
        }
    }

    fn set_segment(&mut self, seg: u32) {
        self.shared.read_segment.store(seg, Ordering::Release);
        self.shared
            .metrics
            .current_segment
            .store(u64::from(seg), Ordering::Relaxed);
    }

    /// Position snapshot, retention bound and series pruning, on their intervals.
    fn periodic(&mut self) {
        // New checkpoints are looked for as often as positions are saved.
        if self.last_checkpoint_check.elapsed() >= self.opts.persist_interval {
            self.last_checkpoint_check = Instant::now();
            self.prune_series();
        }
        if self.last_bound_check.elapsed() >= Duration::from_millis(200) {
            self.last_bound_check = Instant::now();
            self.check_size_bound();
        }
        if self.last_persist.elapsed() >= self.opts.persist_interval {
            self.last_persist = Instant::now();
            if self.shared.acks().dirty {
                self.shared.persist();
            } else {
                let low = self.shared.lowest_needed();
                self.shared
                    .metrics
                    .lowest_needed_segment
                    .store(u64::from(low), Ordering::Relaxed);
            }
        }
    }

    /// Forgets the series a new checkpoint no longer declares. A checkpoint `N` keeps the
    /// records of every series still referenced after segment `N`, so a series absent from it
    /// whose newest record is in a segment `<= N` will never have another sample: without
    /// this, churning series (pods come and go) would grow the table forever.
    fn prune_series(&mut self) {
        let Some((n, cp)) = latest_checkpoint(&self.opts.wal_dir) else {
            return;
        };
        if self.checkpoint_seen.is_some_and(|seen| seen >= n) {
            return;
        }
        // Only once everything up to the checkpoint has been read (the floor guarantees it,
        // but a checkpoint written for another reason must not drop what is still ahead).
        if n >= self.shared.read_segment.load(Ordering::Acquire) {
            return;
        }
        let mut declared: FastMap<u64, ()> = FastMap::default();
        let mut r = WalReader::new(&cp, list_segments(&cp).unwrap_or_default());
        let mut buf = Vec::new();
        loop {
            match r.next_record(&mut buf) {
                Ok(true) => {
                    if buf.first() == Some(&record::TYPE_SERIES) {
                        self.series_buf.clear();
                        if record::decode_series(
                            &buf,
                            &mut self.series_buf,
                            model::labels::Sym::new,
                        )
                        .is_ok()
                        {
                            declared.extend(self.series_buf.iter().map(|s| (s.id, ())));
                        }
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    // An unreadable checkpoint prunes nothing.
                    tracing::warn!(remote_name = %self.name(), err = %e, "reading a WAL checkpoint for series pruning; skipped");
                    return;
                }
            }
        }
        let before = self.series.len();
        self.series
            .retain(|id, e| e.seg > n || declared.contains_key(id));
        self.checkpoint_seen = Some(n);
        let removed = before - self.series.len();
        if removed > 0 {
            tracing::debug!(remote_name = %self.name(), checkpoint = n, removed, kept = self.series.len(), "series gone from the WAL forgotten");
        }
        self.shared
            .metrics
            .series_tracked
            .store(self.series.len() as u64, Ordering::Relaxed);
    }

    /// Raises the floor when the WAL held back for this queue exceeds `retention_max_size`.
    fn check_size_bound(&mut self) {
        let max = self.shared.settings.retention_max_size;
        let dir = &self.opts.wal_dir;
        let segs = list_segments(dir).unwrap_or_default();
        self.segment_sizes.clear();
        for s in segs {
            let size = fs::metadata(dir.join(segment_name(s)))
                .map(|m| m.len())
                .unwrap_or(0);
            self.segment_sizes.push((s, size));
        }
        let low = self.shared.lowest_needed();
        let retained: u64 = self
            .segment_sizes
            .iter()
            .filter(|(s, _)| *s >= low)
            .map(|(_, b)| *b)
            .sum();
        self.shared
            .metrics
            .retained_bytes
            .store(retained, Ordering::Relaxed);
        if max == 0 || retained <= max {
            return;
        }
        // The oldest segments go first; the segment being written always stays.
        let Some(&(last, _)) = self.segment_sizes.last() else {
            return;
        };
        let mut suffix = 0u64;
        let mut floor = last;
        for &(s, b) in self.segment_sizes.iter().rev() {
            if s < low {
                break;
            }
            suffix += b;
            if suffix > max {
                break;
            }
            floor = s;
        }
        let old = self.shared.floor.fetch_max(floor, Ordering::AcqRel);
        if floor > old {
            tracing::warn!(remote_name = %self.name(), retained_bytes = retained, retention_max_size = max, from_segment = low, to_segment = floor, "remote-write retention size exceeded: the oldest unsent samples are dropped (counted in prometheus_remote_storage_samples_dropped_total{{reason=\"retention_size\"}})");
        }
    }

    fn maybe_reshard(&mut self) {
        let sh = &self.shared;
        let desired = sh.desired.load(Ordering::Acquire);
        let active = sh.active.load(Ordering::Acquire);
        if desired == active || desired == 0 {
            return;
        }
        sh.flushing.store(true, Ordering::Release);
        for q in &sh.shards[..active] {
            q.notify.notify_one();
        }
        let started = Instant::now();
        while sh.pending.load(Ordering::Acquire) > 0 {
            if self.stopped() || started.elapsed() > self.opts.drain_timeout {
                sh.flushing.store(false, Ordering::Release);
                // Try again at the next computation.
                sh.desired.store(active, Ordering::Release);
                tracing::info!(remote_name = %self.name(), from = active, to = desired, "resharding abandoned: the shards did not drain in time");
                return;
            }
            sh.wait_space(Duration::from_millis(20));
        }
        sh.active.store(desired, Ordering::Release);
        sh.flushing.store(false, Ordering::Release);
        sh.metrics.shards.store(desired as u64, Ordering::Relaxed);
        tracing::info!(remote_name = %self.name(), from = active, to = desired, "remote-write resharded");
    }

    /// A record at `offset` of `seg`: before a fresh queue's start offset only its series
    /// count (the samples there predate the queue).
    fn handle_record_at(&mut self, rec: &[u8], seg: u32, offset: u64) {
        if seg == self.skip.0 && offset < self.skip.1 {
            if rec.first() == Some(&record::TYPE_SERIES) {
                self.handle_series(rec, seg);
            }
            return;
        }
        self.handle_record(rec, seg);
    }

    fn handle_record(&mut self, rec: &[u8], seg: u32) {
        match rec.first() {
            Some(&record::TYPE_SERIES) => self.handle_series(rec, seg),
            Some(&record::TYPE_SAMPLES) => {
                self.samples.clear();
                if let Err(e) = record::decode_samples(rec, &mut self.samples) {
                    tracing::warn!(remote_name = %self.name(), err = %e, "undecodable samples record skipped");
                    return;
                }
                self.shared
                    .metrics
                    .records_samples
                    .fetch_add(1, Ordering::Relaxed);
                self.handle_samples(seg);
            }
            Some(&record::TYPE_EXEMPLARS) if self.rules.send_exemplars => {
                self.exemplars.clear();
                if let Err(e) =
                    record::decode_exemplars(rec, &mut self.exemplars, model::labels::Sym::new)
                {
                    tracing::warn!(remote_name = %self.name(), err = %e, "undecodable exemplars record skipped");
                    return;
                }
                self.shared
                    .metrics
                    .records_exemplars
                    .fetch_add(1, Ordering::Relaxed);
                self.handle_exemplars(seg);
            }
            _ => {
                self.shared
                    .metrics
                    .records_other
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Routes the exemplars just decoded: like samples, except that the "done" filter does
    /// not apply (it tracks samples), nor the retention age (an exemplar's timestamp is when
    /// it was observed, which says nothing about how long the queue has held it).
    fn handle_exemplars(&mut self, seg: u32) {
        let sh = Arc::clone(&self.shared);
        let m = &sh.metrics;
        let s = &sh.settings;
        let now = now_ms();
        let floor = sh.floor.load(Ordering::Acquire);
        let too_old = (s.sample_age_limit_ms > 0).then(|| now - s.sample_age_limit_ms);
        let active = sh.active.load(Ordering::Acquire).max(1);
        let mut counts = [0u64; 5];
        let mut accepted = 0u64;
        for e in self.exemplars.drain(..) {
            let reason = match self.series.get(&e.id).map(|entry| &entry.info) {
                None => Err(DropReason::UnknownSeries),
                Some(None) => Err(DropReason::DroppedSeries),
                Some(Some(_)) if seg < floor => Err(DropReason::RetentionSize),
                Some(Some(_)) if too_old.is_some_and(|min| e.t < min) => Err(DropReason::TooOld),
                Some(Some(info)) => Ok(info),
            };
            let info = match reason {
                Ok(info) => info,
                Err(r) => {
                    counts[r as usize] += 1;
                    continue;
                }
            };
            let labels: Arc<[proto::Label]> = e
                .labels
                .iter()
                .map(|l| proto::Label {
                    name: l.name.as_str().to_owned(),
                    value: l.value.as_str().to_owned(),
                })
                .collect();
            let shard = (info.key % active as u64) as usize;
            self.routed[shard].push(Item {
                series: Arc::clone(info),
                t: e.t,
                v: e.v,
                seg,
                exemplar: Some(labels),
            });
            accepted += 1;
        }
        let dropped: u64 = counts.iter().sum();
        m.exemplars_in
            .fetch_add(accepted + dropped, Ordering::Relaxed);
        for reason in [
            DropReason::DroppedSeries,
            DropReason::TooOld,
            DropReason::RetentionAge,
            DropReason::RetentionSize,
            DropReason::UnknownSeries,
        ] {
            m.exemplars_dropped(reason, counts[reason as usize]);
        }
        self.enqueue_routed(seg, accepted);
    }

    fn handle_samples(&mut self, seg: u32) {
        let sh = Arc::clone(&self.shared);
        let m = &sh.metrics;
        let s = &sh.settings;
        let now = now_ms();
        let floor = sh.floor.load(Ordering::Acquire);
        let too_old = (s.sample_age_limit_ms > 0).then(|| now - s.sample_age_limit_ms);
        let retention = (s.retention_max_age_ms > 0).then(|| now - s.retention_max_age_ms);
        let active = sh.active.load(Ordering::Acquire).max(1);
        let mut counts = [0u64; 5];
        let mut accepted = 0u64;
        let mut highest = i64::MIN;
        for rs in &self.samples {
            let Some(entry) = self.series.get(&rs.id) else {
                counts[DropReason::UnknownSeries as usize] += 1;
                continue;
            };
            let Some(info) = &entry.info else {
                counts[DropReason::DroppedSeries as usize] += 1;
                continue;
            };
            if let Some(done) = self.filter.get(&info.key)
                && rs.t <= *done
            {
                continue;
            }
            highest = highest.max(rs.t);
            if seg < floor {
                counts[DropReason::RetentionSize as usize] += 1;
                continue;
            }
            if retention.is_some_and(|min| rs.t < min) {
                counts[DropReason::RetentionAge as usize] += 1;
                continue;
            }
            if too_old.is_some_and(|min| rs.t < min) {
                counts[DropReason::TooOld as usize] += 1;
                continue;
            }
            let shard = (info.key % active as u64) as usize;
            self.routed[shard].push(Item {
                series: Arc::clone(info),
                t: rs.t,
                v: rs.v,
                seg,
                exemplar: None,
            });
            accepted += 1;
        }
        let dropped: u64 = counts.iter().sum();
        m.samples_in
            .fetch_add(accepted + dropped, Ordering::Relaxed);
        if highest > i64::MIN {
            m.highest_read_ms.fetch_max(highest, Ordering::Relaxed);
        }
        for (reason, n) in [
            DropReason::DroppedSeries,
            DropReason::TooOld,
            DropReason::RetentionAge,
            DropReason::RetentionSize,
            DropReason::UnknownSeries,
        ]
        .into_iter()
        .map(|r| (r, counts[r as usize]))
        {
            m.dropped(reason, n);
        }
        self.enqueue_routed(seg, accepted);
    }

    /// Hands the routed items (`accepted` of them, read from `seg`) to their shards, waiting
    /// for room.
    fn enqueue_routed(&mut self, seg: u32, accepted: u64) {
        let sh = Arc::clone(&self.shared);
        let m = &sh.metrics;
        let s = &sh.settings;
        if accepted == 0 {
            return;
        }
        {
            let mut st = sh.acks();
            *st.outstanding.entry(seg).or_insert(0) += accepted;
        }
        sh.pending.fetch_add(accepted as i64, Ordering::AcqRel);
        for items in &self.routed {
            crate::shards::add_pending(m, items, 1);
        }
        for shard in 0..self.routed.len() {
            if self.routed[shard].is_empty() {
                continue;
            }
            let mut items = std::mem::take(&mut self.routed[shard]);
            loop {
                if self.stopped() {
                    // Not enqueued: still outstanding (the position keeps them), no longer
                    // pending in memory.
                    let n = items.len() as i64;
                    sh.pending.fetch_sub(n, Ordering::AcqRel);
                    crate::shards::add_pending(m, &items, -1);
                    break;
                }
                {
                    let mut q = sh.queue(shard);
                    if q.len() < s.capacity {
                        q.extend(items.drain(..));
                        break;
                    }
                }
                sh.shards[shard].notify.notify_one();
                sh.wait_space(Duration::from_millis(50));
                // While blocked, the retention bound still applies to what is held here.
                self.periodic();
                let floor = sh.floor.load(Ordering::Acquire);
                let now = now_ms();
                let retention = (s.retention_max_age_ms > 0).then(|| now - s.retention_max_age_ms);
                if items.iter().any(|i| {
                    i.seg < floor
                        || (i.exemplar.is_none() && retention.is_some_and(|min| i.t < min))
                }) {
                    let mut dropped = Vec::new();
                    // [samples, exemplars] × [by size, by age]
                    let mut counts = [[0u64; 2]; 2];
                    items.retain(|i| {
                        let size = i.seg < floor;
                        let age = i.exemplar.is_none() && retention.is_some_and(|min| i.t < min);
                        if size || age {
                            counts[usize::from(i.exemplar.is_some())][usize::from(!size)] += 1;
                            dropped.push(i.clone());
                            false
                        } else {
                            true
                        }
                    });
                    m.dropped(DropReason::RetentionSize, counts[0][0]);
                    m.dropped(DropReason::RetentionAge, counts[0][1]);
                    m.exemplars_dropped(DropReason::RetentionSize, counts[1][0]);
                    m.exemplars_dropped(DropReason::RetentionAge, counts[1][1]);
                    sh.mark_done(&dropped);
                    if items.is_empty() {
                        break;
                    }
                }
            }
            sh.shards[shard].notify.notify_one();
            // Keep the allocation for the next record.
            self.routed[shard] = items;
        }
    }
}
