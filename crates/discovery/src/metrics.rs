//! Discovery's self-metrics under Prometheus' names, and the small instruments they (and the
//! scrape crate's metrics) are built from.
//!
//! - [`Summary`]: a summary in the sense of the exposition format — quantiles over recent
//!   observations (the last 10 minutes, in five 2-minute slices as Go's client keeps them,
//!   each slice holding a bounded sample of its observations) plus a lifetime `_sum` and
//!   `_count`.
//! - [`SdMetrics`]: what the mechanisms count, shared by every discoverer a
//!   [`DiscoveryManager`](crate::DiscoveryManager) runs (it comes with
//!   [`DiscovererOptions`](crate::DiscovererOptions)): file discovery's
//!   `prometheus_sd_file_*` and Kubernetes discovery's `prometheus_sd_kubernetes_*`.
//! - [`ProviderStatus`]: lets a discoverer report that its configuration could not be used
//!   (`prometheus_sd_failed_configs`).
//!
//! The manager's own families (`prometheus_sd_discovered_targets`,
//! `prometheus_sd_received_updates_total`, ...) are written by
//! [`DiscoveryManager::write_metrics`](crate::DiscoveryManager::write_metrics).
//!
//! Everything here is counted with atomics, or under a short lock per observation; nothing
//! is done per target or per sample.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use model::exposition::{MetricType, TextEncoder};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counters and samples: a panic elsewhere leaves nothing inconsistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub fn write_family(e: &mut TextEncoder<'_>, name: &str, help: &str, kind: MetricType) {
    e.help(name, help);
    e.metric_type(name, kind);
}

/// Writes a family with one unlabelled sample.
pub fn write_single(e: &mut TextEncoder<'_>, name: &str, help: &str, kind: MetricType, v: f64) {
    write_family(e, name, help, kind);
    e.sample_parts(name, [], v, None);
}

/// How long observations count towards a summary's quantiles (Go client's default).
const SUMMARY_MAX_AGE: Duration = Duration::from_secs(600);
/// The window moves in this many steps (Go client's default).
const SUMMARY_AGE_SLICES: usize = 5;
/// Observations kept per slice; beyond that a uniform sample of them is kept.
const SUMMARY_SLICE_CAPACITY: usize = 1024;

/// Prometheus' usual objectives: what `prometheus_target_interval_length_seconds` and
/// `prometheus_target_sync_length_seconds` report.
pub const QUANTILES_WIDE: &[(f64, &str)] = &[
    (0.01, "0.01"),
    (0.05, "0.05"),
    (0.5, "0.5"),
    (0.9, "0.9"),
    (0.99, "0.99"),
];
/// The objectives of client_golang's default summary (`prometheus_sd_file_scan_duration_seconds`).
pub const QUANTILES_DEFAULT: &[(f64, &str)] = &[(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// A summary: quantiles over the observations of the last 10 minutes, lifetime sum and count.
pub struct Summary {
    quantiles: &'static [(f64, &'static str)],
    state: Mutex<SummaryState>,
}

struct Slice {
    samples: Vec<f64>,
    /// Observations that fell into this slice (more than `samples` holds when it is full).
    seen: u64,
}

struct SummaryState {
    sum: f64,
    count: u64,
    slices: Vec<Slice>,
    /// The slice observations go to now, and when it started.
    head: usize,
    head_started: Instant,
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Summary")
            .field("count", &state.count)
            .field("sum", &state.sum)
            .finish_non_exhaustive()
    }
}

/// A cheap, well-mixed pseudo-random number (splitmix64), for reservoir sampling.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Summary {
    /// A summary reporting `quantiles` (each with the label value it is written with).
    pub fn new(quantiles: &'static [(f64, &'static str)]) -> Summary {
        Summary::starting_at(quantiles, Instant::now())
    }

    fn starting_at(quantiles: &'static [(f64, &'static str)], now: Instant) -> Summary {
        Summary {
            quantiles,
            state: Mutex::new(SummaryState {
                sum: 0.0,
                count: 0,
                slices: (0..SUMMARY_AGE_SLICES)
                    .map(|_| Slice {
                        samples: Vec::new(),
                        seen: 0,
                    })
                    .collect(),
                head: 0,
                head_started: now,
            }),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        self.observe_at(value, Instant::now());
    }

    fn observe_at(&self, value: f64, now: Instant) {
        let mut state = lock(&self.state);
        state.rotate(now);
        state.sum += value;
        state.count += 1;
        let salt = state.count;
        let head = state.head;
        let slice = &mut state.slices[head];
        slice.seen += 1;
        if slice.samples.len() < SUMMARY_SLICE_CAPACITY {
            slice.samples.push(value);
        } else {
            // Reservoir sampling: every observation of the slice is kept with equal odds.
            let pick = mix(salt) % slice.seen;
            if let Some(kept) = usize::try_from(pick)
                .ok()
                .and_then(|i| slice.samples.get_mut(i))
            {
                *kept = value;
            }
        }
    }

    /// The quantiles (NaN without recent observations), the sum and the count.
    pub fn snapshot(&self) -> (Vec<f64>, f64, u64) {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> (Vec<f64>, f64, u64) {
        let mut state = lock(&self.state);
        state.rotate(now);
        let mut recent: Vec<f64> = state
            .slices
            .iter()
            .flat_map(|s| s.samples.iter().copied())
            .collect();
        let (sum, count) = (state.sum, state.count);
        drop(state);
        recent.sort_by(f64::total_cmp);
        let quantiles = self
            .quantiles
            .iter()
            .map(|&(q, _)| {
                if recent.is_empty() {
                    return f64::NAN;
                }
                // The smallest observation with at least q of them at or below it.
                let rank = (q * recent.len() as f64).ceil() as usize;
                recent[rank.clamp(1, recent.len()) - 1]
            })
            .collect();
        (quantiles, sum, count)
    }

    /// Writes the summary's samples (quantile lines, `_sum`, `_count`) with `labels`; the
    /// family's HELP and TYPE are the caller's.
    pub fn write(&self, e: &mut TextEncoder<'_>, name: &str, labels: &[(&str, &str)]) {
        let (values, sum, count) = self.snapshot();
        for (&(_, text), value) in self.quantiles.iter().zip(values) {
            let with_quantile = labels.iter().copied().chain([("quantile", text)]);
            e.sample_parts(name, with_quantile, value, None);
        }
        e.sample_parts(&format!("{name}_sum"), labels.iter().copied(), sum, None);
        e.sample_parts(
            &format!("{name}_count"),
            labels.iter().copied(),
            count as f64,
            None,
        );
    }
}

impl SummaryState {
    /// Moves the window forward to `now`, emptying the slices that fell out of it.
    fn rotate(&mut self, now: Instant) {
        let step = SUMMARY_MAX_AGE / SUMMARY_AGE_SLICES as u32;
        let elapsed = now.saturating_duration_since(self.head_started);
        if elapsed < step {
            return;
        }
        if elapsed >= SUMMARY_MAX_AGE {
            for slice in &mut self.slices {
                slice.samples.clear();
                slice.seen = 0;
            }
            self.head_started = now;
            return;
        }
        while now.saturating_duration_since(self.head_started) >= step {
            self.head = (self.head + 1) % self.slices.len();
            let slice = &mut self.slices[self.head];
            slice.samples.clear();
            slice.seen = 0;
            self.head_started += step;
        }
    }
}

/// The roles of `prometheus_sd_kubernetes_events_total`, as Prometheus names them.
pub const KUBERNETES_ROLES: [&str; 6] = [
    "endpointslice",
    "endpoints",
    "node",
    "pod",
    "service",
    "ingress",
];

/// The events of `prometheus_sd_kubernetes_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubernetesEvent {
    Add,
    Delete,
    Update,
}

impl KubernetesEvent {
    const ALL: [KubernetesEvent; 3] = [
        KubernetesEvent::Add,
        KubernetesEvent::Delete,
        KubernetesEvent::Update,
    ];

    fn as_str(self) -> &'static str {
        match self {
            KubernetesEvent::Add => "add",
            KubernetesEvent::Delete => "delete",
            KubernetesEvent::Update => "update",
        }
    }

    fn index(self) -> usize {
        match self {
            KubernetesEvent::Add => 0,
            KubernetesEvent::Delete => 1,
            KubernetesEvent::Update => 2,
        }
    }
}

/// What the discovery mechanisms count, shared by all discoverers of a manager.
pub struct SdMetrics {
    file_read_errors: AtomicU64,
    file_scan_duration: Summary,
    /// Modification time (Unix seconds) of each file read, per file discoverer.
    file_mtimes: Mutex<BTreeMap<u64, BTreeMap<String, f64>>>,
    next_file_discoverer: AtomicU64,
    kubernetes_events: [[AtomicU64; 3]; 6],
    kubernetes_failures: AtomicU64,
}

impl fmt::Debug for SdMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdMetrics")
            .field("file_read_errors", &self.file_read_errors)
            .field("kubernetes_failures", &self.kubernetes_failures)
            .finish_non_exhaustive()
    }
}

impl Default for SdMetrics {
    fn default() -> Self {
        SdMetrics {
            file_read_errors: AtomicU64::new(0),
            file_scan_duration: Summary::new(QUANTILES_DEFAULT),
            file_mtimes: Mutex::new(BTreeMap::new()),
            next_file_discoverer: AtomicU64::new(0),
            kubernetes_events: Default::default(),
            kubernetes_failures: AtomicU64::new(0),
        }
    }
}

impl SdMetrics {
    /// A file that could not be read or parsed.
    pub fn file_read_error(&self) {
        self.file_read_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Files read by file discovery so far that could not be read or parsed.
    pub fn file_read_errors(&self) -> u64 {
        self.file_read_errors.load(Ordering::Relaxed)
    }

    /// How long one refresh of a file discoverer (reading all its files) took.
    pub fn file_scanned(&self, took: Duration) {
        self.file_scan_duration.observe(took.as_secs_f64());
    }

    /// Registers a file discoverer's modification times; they are forgotten when the handle
    /// is dropped (the discoverer stopped).
    pub fn file_mtimes(self: &Arc<Self>) -> FileMtimes {
        let id = self.next_file_discoverer.fetch_add(1, Ordering::Relaxed);
        FileMtimes {
            metrics: Arc::clone(self),
            id,
        }
    }

    /// One Kubernetes event of `role` (a [`KUBERNETES_ROLES`] name) handled.
    pub fn kubernetes_event(&self, role: &str, event: KubernetesEvent, n: u64) {
        if let Some(i) = KUBERNETES_ROLES.iter().position(|r| *r == role) {
            self.kubernetes_events[i][event.index()].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Events of `role` handled so far.
    pub fn kubernetes_events(&self, role: &str, event: KubernetesEvent) -> u64 {
        KUBERNETES_ROLES
            .iter()
            .position(|r| *r == role)
            .map(|i| self.kubernetes_events[i][event.index()].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// A failed list or watch request to the Kubernetes API.
    pub fn kubernetes_failure(&self) {
        self.kubernetes_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn kubernetes_failures(&self) -> u64 {
        self.kubernetes_failures.load(Ordering::Relaxed)
    }

    /// Writes the mechanisms' families. As in Prometheus 3, every mechanism's families are
    /// there whether or not a configuration uses it.
    pub fn write(&self, e: &mut TextEncoder<'_>) {
        let mtimes: BTreeMap<String, f64> = lock(&self.file_mtimes)
            .values()
            .flat_map(|files| files.iter().map(|(f, t)| (f.clone(), *t)))
            .collect();
        if !mtimes.is_empty() {
            write_family(
                e,
                "prometheus_sd_file_mtime_seconds",
                "Timestamp (mtime) of files read by FileSD. Timestamp is set at read time.",
                MetricType::Gauge,
            );
        }
        for (file, mtime) in &mtimes {
            e.sample_parts(
                "prometheus_sd_file_mtime_seconds",
                [("filename", file.as_str())],
                *mtime,
                None,
            );
        }
        write_single(
            e,
            "prometheus_sd_file_read_errors_total",
            "The number of File-SD read errors.",
            MetricType::Counter,
            self.file_read_errors() as f64,
        );
        write_family(
            e,
            "prometheus_sd_file_scan_duration_seconds",
            "The duration of the File-SD scan in seconds.",
            MetricType::Summary,
        );
        self.file_scan_duration
            .write(e, "prometheus_sd_file_scan_duration_seconds", &[]);
        // Files are polled, not watched: there is no watch that could fail.
        write_single(
            e,
            "prometheus_sd_file_watcher_errors_total",
            "The number of File-SD errors caused by filesystem watch failures.",
            MetricType::Counter,
            0.0,
        );
        if cfg!(feature = "kubernetes") {
            write_family(
                e,
                "prometheus_sd_kubernetes_events_total",
                "The number of Kubernetes events handled.",
                MetricType::Counter,
            );
            for event in KubernetesEvent::ALL {
                for role in KUBERNETES_ROLES {
                    e.sample_parts(
                        "prometheus_sd_kubernetes_events_total",
                        [("event", event.as_str()), ("role", role)],
                        self.kubernetes_events(role, event) as f64,
                        None,
                    );
                }
            }
            write_single(
                e,
                "prometheus_sd_kubernetes_failures_total",
                "The number of failed WATCH/LIST requests.",
                MetricType::Counter,
                self.kubernetes_failures() as f64,
            );
        }
    }
}

/// One file discoverer's entry in `prometheus_sd_file_mtime_seconds`.
pub struct FileMtimes {
    metrics: Arc<SdMetrics>,
    id: u64,
}

impl FileMtimes {
    /// Records the modification time of a file just read.
    pub fn set(&self, file: &str, unix_seconds: f64) {
        lock(&self.metrics.file_mtimes)
            .entry(self.id)
            .or_default()
            .insert(file.to_owned(), unix_seconds);
    }

    /// Keeps only the files in `files` (the others vanished).
    pub fn retain(&self, files: &[String]) {
        if let Some(known) = lock(&self.metrics.file_mtimes).get_mut(&self.id) {
            known.retain(|f, _| files.contains(f));
        }
    }
}

impl Drop for FileMtimes {
    fn drop(&mut self) {
        lock(&self.metrics.file_mtimes).remove(&self.id);
    }
}

/// Tells the manager whether a provider's configuration could be used; a discoverer marks
/// it failed when it cannot start (Prometheus counts such configs in
/// `prometheus_sd_failed_configs`).
#[derive(Debug, Clone, Default)]
pub struct ProviderStatus(Arc<AtomicBool>);

impl ProviderStatus {
    pub fn set_failed(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut TextEncoder<'_>)) -> String {
        let mut out = Vec::new();
        f(&mut TextEncoder::new(&mut out));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn summary_quantiles_sum_and_count() {
        let start = Instant::now();
        let s = Summary::starting_at(QUANTILES_WIDE, start);
        let (q, sum, count) = s.snapshot_at(start);
        assert!(q.iter().all(|v| v.is_nan()));
        assert_eq!((sum, count), (0.0, 0));
        for v in 1..=100 {
            s.observe_at(f64::from(v), start);
        }
        let (q, sum, count) = s.snapshot_at(start);
        assert_eq!(q, vec![1.0, 5.0, 50.0, 90.0, 99.0]);
        assert_eq!((sum, count), (5050.0, 100));
        let text = render(|e| s.write(e, "x_seconds", &[("job", "a")]));
        assert!(
            text.contains("x_seconds{job=\"a\",quantile=\"0.01\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_sum{job=\"a\"} 5050\n"), "{text}");
        assert!(text.contains("x_seconds_count{job=\"a\"} 100\n"), "{text}");
    }

    #[test]
    fn summary_window_forgets_old_observations_but_not_the_totals() {
        let start = Instant::now();
        let s = Summary::starting_at(QUANTILES_DEFAULT, start);
        s.observe_at(1.0, start);
        // Still within 10 minutes.
        s.observe_at(3.0, start + Duration::from_secs(500));
        let (q, _, _) = s.snapshot_at(start + Duration::from_secs(500));
        assert_eq!(q, vec![1.0, 3.0, 3.0]);
        // The first slice left the window; the second did not.
        let (q, sum, count) = s.snapshot_at(start + Duration::from_secs(650));
        assert_eq!(q, vec![3.0, 3.0, 3.0]);
        assert_eq!((sum, count), (4.0, 2));
        let (q, _, count) = s.snapshot_at(start + Duration::from_secs(5000));
        assert!(q[0].is_nan());
        assert_eq!(count, 2);
    }

    #[test]
    fn summary_slices_stay_bounded() {
        let start = Instant::now();
        let s = Summary::starting_at(QUANTILES_DEFAULT, start);
        for v in 0..10_000 {
            s.observe_at(f64::from(v % 100), start);
        }
        let state = lock(&s.state);
        assert_eq!(state.slices[0].samples.len(), SUMMARY_SLICE_CAPACITY);
        assert_eq!(state.slices[0].seen, 10_000);
        drop(state);
        let (q, _, count) = s.snapshot_at(start);
        assert_eq!(count, 10_000);
        // A uniform sample of 0..100 repeated: the median is near 50.
        assert!((35.0..=65.0).contains(&q[0]), "{q:?}");
    }

    #[test]
    fn sd_metrics_render_every_family() {
        let metrics = Arc::new(SdMetrics::default());
        metrics.file_read_error();
        metrics.file_scanned(Duration::from_millis(2));
        let mtimes = metrics.file_mtimes();
        mtimes.set("/sd/a.json", 1_700_000_000.0);
        mtimes.set("/sd/b.json", 1_700_000_001.0);
        mtimes.retain(&["/sd/a.json".to_owned()]);
        metrics.kubernetes_event("pod", KubernetesEvent::Add, 2);
        metrics.kubernetes_failure();
        let text = render(|e| metrics.write(e));
        assert!(
            text.contains("prometheus_sd_file_mtime_seconds{filename=\"/sd/a.json\"} 1.7e+09\n")
        );
        assert!(!text.contains("/sd/b.json"));
        assert!(text.contains("prometheus_sd_file_read_errors_total 1\n"));
        assert!(text.contains("prometheus_sd_file_scan_duration_seconds_count 1\n"));
        assert!(text.contains("prometheus_sd_file_watcher_errors_total 0\n"));
        if cfg!(feature = "kubernetes") {
            assert!(
                text.contains(
                    "prometheus_sd_kubernetes_events_total{event=\"add\",role=\"pod\"} 2\n"
                )
            );
            assert!(text.contains(
                "prometheus_sd_kubernetes_events_total{event=\"update\",role=\"ingress\"} 0\n"
            ));
            assert!(text.contains("prometheus_sd_kubernetes_failures_total 1\n"));
        }
        drop(mtimes);
        let text = render(|e| metrics.write(e));
        assert!(!text.contains("/sd/a.json"));
    }
}
