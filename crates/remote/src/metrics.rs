//! The counters and gauges of remote-write queues, under Prometheus' metric names, and their
//! text exposition.
//!
//! Every sample read from the WAL after a queue starts ends in exactly one of: sent
//! (`prometheus_remote_storage_samples_total`), failed (`..._samples_failed_total`: the
//! receiver refused it with a status that is not retried), or dropped
//! (`..._samples_dropped_total{reason}`), or is still pending (`..._samples_pending`).
//! Reasons for dropping: `dropped_series` (write_relabel_configs), `too_old`
//! (sample_age_limit), `retention_age` / `retention_size` (the queue's retention bound —
//! Meridian only), `unintentionally_dropped_series` (a sample whose series record is missing
//! from the WAL). Exemplars (`send_exemplars`) have the same set under `..._exemplars_*`, and
//! metadata (remote write 1.0) `..._metadata_total`, `_failed_total`, `_retried_total` and
//! `_bytes_total`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use model::exposition::{MetricType, TextEncoder};

/// Why a sample was dropped before reaching the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    DroppedSeries = 0,
    TooOld = 1,
    RetentionAge = 2,
    RetentionSize = 3,
    UnknownSeries = 4,
}

const DROP_REASONS: [(DropReason, &str); 5] = [
    (DropReason::DroppedSeries, "dropped_series"),
    (DropReason::TooOld, "too_old"),
    (DropReason::RetentionAge, "retention_age"),
    (DropReason::RetentionSize, "retention_size"),
    (DropReason::UnknownSeries, "unintentionally_dropped_series"),
];

/// Prometheus' buckets for `sent_batch_duration_seconds`.
const DURATION_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0,
];

/// A histogram of durations with fixed buckets.
#[derive(Default)]
pub struct DurationHistogram {
    buckets: [AtomicU64; 15],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    pub fn observe(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if s <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }
}

/// One queue's metrics. Labels: `remote_name`, `url`.
pub struct QueueMetrics {
    pub remote_name: String,
    pub url: String,
    pub samples_in: AtomicU64,
    pub samples_sent: AtomicU64,
    pub samples_failed: AtomicU64,
    pub samples_retried: AtomicU64,
    dropped: [AtomicU64; 5],
    pub samples_pending: AtomicI64,
    pub exemplars_in: AtomicU64,
    pub exemplars_sent: AtomicU64,
    pub exemplars_failed: AtomicU64,
    pub exemplars_retried: AtomicU64,
    exemplars_dropped: [AtomicU64; 5],
    pub exemplars_pending: AtomicI64,
    pub metadata_sent: AtomicU64,
    pub metadata_failed: AtomicU64,
    pub metadata_retried: AtomicU64,
    pub metadata_bytes: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    pub shards: AtomicU64,
    pub shards_min: AtomicU64,
    pub shards_max: AtomicU64,
    pub shards_desired: AtomicU64,
    pub max_samples_per_send: AtomicU64,
    /// Milliseconds; 0 until the first sample.
    pub highest_read_ms: AtomicI64,
    pub highest_sent_ms: AtomicI64,
    pub current_segment: AtomicU64,
    pub lowest_needed_segment: AtomicU64,
    pub retained_bytes: AtomicU64,
    pub records_series: AtomicU64,
    pub records_samples: AtomicU64,
    pub records_exemplars: AtomicU64,
    pub records_other: AtomicU64,
    pub wal_corruptions: AtomicU64,
    /// Series the WAL watcher currently knows (pruned at each new checkpoint).
    pub series_tracked: AtomicU64,
    pub send_duration: DurationHistogram,
}

impl QueueMetrics {
    pub fn new(remote_name: &str, url: &str) -> QueueMetrics {
        QueueMetrics {
            remote_name: remote_name.to_owned(),
            url: url.to_owned(),
            samples_in: AtomicU64::new(0),
            samples_sent: AtomicU64::new(0),
            samples_failed: AtomicU64::new(0),
            samples_retried: AtomicU64::new(0),
            dropped: Default::default(),
            samples_pending: AtomicI64::new(0),
            exemplars_in: AtomicU64::new(0),
            exemplars_sent: AtomicU64::new(0),
            exemplars_failed: AtomicU64::new(0),
            exemplars_retried: AtomicU64::new(0),
            exemplars_dropped: Default::default(),
            exemplars_pending: AtomicI64::new(0),
            metadata_sent: AtomicU64::new(0),
            metadata_failed: AtomicU64::new(0),
            metadata_retried: AtomicU64::new(0),
            metadata_bytes: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            shards: AtomicU64::new(0),
            shards_min: AtomicU64::new(0),
            shards_max: AtomicU64::new(0),
            shards_desired: AtomicU64::new(0),
            max_samples_per_send: AtomicU64::new(0),
            highest_read_ms: AtomicI64::new(0),
            highest_sent_ms: AtomicI64::new(0),
            current_segment: AtomicU64::new(0),
            lowest_needed_segment: AtomicU64::new(0),
            retained_bytes: AtomicU64::new(0),
            records_series: AtomicU64::new(0),
            records_samples: AtomicU64::new(0),
            records_exemplars: AtomicU64::new(0),
            records_other: AtomicU64::new(0),
            wal_corruptions: AtomicU64::new(0),
            series_tracked: AtomicU64::new(0),
            send_duration: DurationHistogram::default(),
        }
    }

    pub fn dropped(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn exemplars_dropped(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.exemplars_dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Exemplars dropped for `reason` so far.
    pub fn exemplars_dropped_total(&self, reason: DropReason) -> u64 {
        self.exemplars_dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Samples dropped for `reason` so far.
    pub fn dropped_total(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Samples dropped for any reason so far.
    pub fn dropped_all(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

fn family(e: &mut TextEncoder<'_>, name: &str, help: &str, kind: MetricType) {
    e.help(name, help);
    e.metric_type(name, kind);
}

/// Writes the families of all `queues` (each family once, one line per queue).
pub fn write_queue_metrics(e: &mut TextEncoder<'_>, queues: &[&QueueMetrics]) {
    type Get = fn(&QueueMetrics) -> f64;
    let simple: [(&str, &str, MetricType, Get); 29] = [
        (
            "prometheus_remote_storage_samples_in_total",
            "Samples read from the WAL by the queue.",
            MetricType::Counter,
            |m| m.samples_in.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_samples_total",
            "Total number of samples sent to remote storage.",
            MetricType::Counter,
            |m| m.samples_sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_samples_failed_total",
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            MetricType::Counter,
            |m| m.samples_failed.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_samples_retried_total",
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
            MetricType::Counter,
            |m| m.samples_retried.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_samples_pending",
            "The number of samples pending in the queues shards to be sent to the remote storage.",
            MetricType::Gauge,
            |m| m.samples_pending.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_exemplars_in_total",
            "Exemplars read from the WAL by the queue.",
            MetricType::Counter,
            |m| m.exemplars_in.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_exemplars_total",
            "Total number of exemplars sent to remote storage.",
            MetricType::Counter,
            |m| m.exemplars_sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_exemplars_failed_total",
            "Total number of exemplars which failed on send to remote storage, non-recoverable errors.",
            MetricType::Counter,
            |m| m.exemplars_failed.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_exemplars_retried_total",
            "Total number of exemplars which failed on send to remote storage but were retried because the send error was recoverable.",
            MetricType::Counter,
            |m| m.exemplars_retried.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_exemplars_pending",
            "The number of exemplars pending in the queues shards to be sent to the remote storage.",
            MetricType::Gauge,
            |m| m.exemplars_pending.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_metadata_total",
            "Total number of metadata entries sent to remote storage.",
            MetricType::Counter,
            |m| m.metadata_sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_metadata_failed_total",
            "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.",
            MetricType::Counter,
            |m| m.metadata_failed.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_metadata_retried_total",
            "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.",
            MetricType::Counter,
            |m| m.metadata_retried.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_metadata_bytes_total",
            "The total number of bytes of metadata sent by the queue after compression.",
            MetricType::Counter,
            |m| m.metadata_bytes.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_exemplars_dropped_all_total",
            "Exemplars dropped for any reason (sum of prometheus_remote_storage_exemplars_dropped_total).",
            MetricType::Counter,
            |m| {
                m.exemplars_dropped
                    .iter()
                    .map(|d| d.load(Ordering::Relaxed))
                    .sum::<u64>() as f64
            },
        ),
        (
            "prometheus_remote_storage_bytes_total",
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            MetricType::Counter,
            |m| m.bytes_sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_shards",
            "The number of shards used for parallel sending to the remote storage.",
            MetricType::Gauge,
            |m| m.shards.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_shards_min",
            "The minimum number of shards that the queue is allowed to run.",
            MetricType::Gauge,
            |m| m.shards_min.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_shards_max",
            "The maximum number of shards that the queue is allowed to run.",
            MetricType::Gauge,
            |m| m.shards_max.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_shards_desired",
            "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
            MetricType::Gauge,
            |m| m.shards_desired.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_max_samples_per_send",
            "The maximum number of samples to be sent, in a single request, to the remote storage.",
            MetricType::Gauge,
            |m| m.max_samples_per_send.load(Ordering::Relaxed) as f64,
        ),
        (
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
            MetricType::Gauge,
            |m| m.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "prometheus_wal_watcher_current_segment",
            "Current segment the WAL watcher is reading records from.",
            MetricType::Gauge,
            |m| m.current_segment.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_lowest_needed_segment",
            "The oldest WAL segment this queue still needs (WAL truncation keeps it).",
            MetricType::Gauge,
            |m| m.lowest_needed_segment.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_series_tracked",
            "Series the queue's WAL watcher knows; forgotten when a checkpoint no longer has them.",
            MetricType::Gauge,
            |m| m.series_tracked.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_retained_wal_bytes",
            "Bytes of WAL segments held back for this queue.",
            MetricType::Gauge,
            |m| m.retained_bytes.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_wal_corruptions_total",
            "Damaged WAL regions the queue skipped.",
            MetricType::Counter,
            |m| m.wal_corruptions.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_requests_total",
            "Write requests acknowledged by the receiver.",
            MetricType::Counter,
            |m| m.requests_sent.load(Ordering::Relaxed) as f64,
        ),
        (
            "meridian_remote_storage_samples_dropped_all_total",
            "Samples dropped for any reason (sum of prometheus_remote_storage_samples_dropped_total).",
            MetricType::Counter,
            |m| m.dropped_all() as f64,
        ),
    ];
    for (name, help, kind, get) in simple {
        family(e, name, help, kind);
        for m in queues {
            let labels = [
                ("remote_name", m.remote_name.as_str()),
                ("url", m.url.as_str()),
            ];
            e.sample_parts(name, labels, get(m), None);
        }
    }

    let name = "prometheus_remote_storage_samples_dropped_total";
    family(
        e,
        name,
        "Total number of samples which were dropped after being read from the WAL before being sent via remote write.",
        MetricType::Counter,
    );
    for m in queues {
        for (reason, text) in DROP_REASONS {
            let labels = [
                ("reason", text),
                ("remote_name", m.remote_name.as_str()),
                ("url", m.url.as_str()),
            ];
            e.sample_parts(name, labels, m.dropped_total(reason) as f64, None);
        }
    }

    let name = "prometheus_remote_storage_exemplars_dropped_total";
    family(
        e,
        name,
        "Total number of exemplars which were dropped after being read from the WAL before being sent via remote write.",
        MetricType::Counter,
    );
    for m in queues {
        for (reason, text) in DROP_REASONS {
            let labels = [
                ("reason", text),
                ("remote_name", m.remote_name.as_str()),
                ("url", m.url.as_str()),
            ];
            e.sample_parts(name, labels, m.exemplars_dropped_total(reason) as f64, None);
        }
    }

    let name = "prometheus_wal_watcher_records_read_total";
    family(
        e,
        name,
        "Number of records read by the WAL watcher from the WAL.",
        MetricType::Counter,
    );
    for m in queues {
        let consumer = m.remote_name.as_str();
        for (kind, v) in [
            ("series", &m.records_series),
            ("samples", &m.records_samples),
            ("exemplars", &m.records_exemplars),
            ("other", &m.records_other),
        ] {
            e.sample_parts(
                name,
                [("consumer", consumer), ("type", kind)],
                v.load(Ordering::Relaxed) as f64,
                None,
            );
        }
    }

    let name = "prometheus_remote_storage_sent_batch_duration_seconds";
    family(
        e,
        name,
        "Duration of send calls to the remote storage.",
        MetricType::Histogram,
    );
    let bucket_name = format!("{name}_bucket");
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    for m in queues {
        let h = &m.send_duration;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            let le = model::exposition::float_to_string(*le);
            e.sample_parts(
                &bucket_name,
                [
                    ("remote_name", m.remote_name.as_str()),
                    ("url", m.url.as_str()),
                    ("le", le.as_str()),
                ],
                h.buckets[i].load(Ordering::Relaxed) as f64,
                None,
            );
        }
        let count = h.count.load(Ordering::Relaxed) as f64;
        let labels = [
            ("remote_name", m.remote_name.as_str()),
            ("url", m.url.as_str()),
        ];
        e.sample_parts(
            &bucket_name,
            labels.iter().copied().chain([("le", "+Inf")]),
            count,
            None,
        );
        e.sample_parts(
            &sum_name,
            labels,
            h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            None,
        );
        e.sample_parts(&count_name, labels, count, None);
    }

    let name = "prometheus_remote_storage_highest_timestamp_in_seconds";
    family(
        e,
        name,
        "Highest timestamp that has come into the remote storage via the WAL, in seconds since epoch.",
        MetricType::Gauge,
    );
    let highest = queues
        .iter()
        .map(|m| m.highest_read_ms.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    e.sample_parts(name, [], highest as f64 / 1000.0, None);
}
