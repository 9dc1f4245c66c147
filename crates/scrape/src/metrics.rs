//! The scrape manager's self-metrics under Prometheus' names (`prometheus_target_*`), with
//! Prometheus' types, labels and meaning:
//!
//! - per scrape (counted by the loops with atomics, once per scrape): samples refused as out
//!   of order, duplicate or out of bounds, exemplars refused as out of order, scrapes over the
//!   sample or body size limit, label limits hit; the actual time between two scrapes of a
//!   target (`prometheus_target_interval_length_seconds{interval}`, the configured interval
//!   written as Go writes durations: `15s`, `1m0s`);
//! - per pool (by the manager): syncs, their duration and the targets that could not be
//!   built, the number of targets, the target limit and how often it was exceeded, pool
//!   creations and reloads (and their failures), the reload duration, and the metadata the
//!   targets' caches hold (`prometheus_target_metadata_cache_*`; bytes as Prometheus
//!   estimates them: the lengths of help, unit and type).
//!
//! `prometheus_target_scrapes_cache_flush_forced_total` counts the flushes of a cache that
//! failing scrapes grew past twice its size after the last success plus 1000 entries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use discovery::metrics::{QUANTILES_WIDE, Summary, write_family, write_single};
use model::exposition::{MetricType, TextEncoder};

use crate::cache::SharedMetadata;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the pool of one job reports.
struct PoolMetrics {
    syncs: u64,
    sync_failed: u64,
    sync_length: Summary,
    targets: usize,
    target_limit: u64,
    /// The metadata stores of the pool's active targets.
    metadata: Vec<SharedMetadata>,
}

impl PoolMetrics {
    fn new(target_limit: u64) -> PoolMetrics {
        PoolMetrics {
            syncs: 0,
            sync_failed: 0,
            sync_length: Summary::new(QUANTILES_WIDE),
            targets: 0,
            target_limit,
            metadata: Vec::new(),
        }
    }
}

/// Counters of the whole manager.
#[derive(Default)]
pub(crate) struct ScrapeMetrics {
    pub pools_created: AtomicU64,
    pub pools_failed: AtomicU64,
    pub reloads: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub exceeded_target_limit: AtomicU64,
    pub exceeded_label_limits: AtomicU64,
    pub exceeded_body_size_limit: AtomicU64,
    pub exceeded_sample_limit: AtomicU64,
    pub sample_duplicate_timestamp: AtomicU64,
    pub sample_out_of_bounds: AtomicU64,
    pub sample_out_of_order: AtomicU64,
    pub exemplar_out_of_order: AtomicU64,
    pub cache_flush_forced: AtomicU64,
    /// By configured interval (Go's spelling).
    interval_length: Mutex<BTreeMap<String, Arc<Summary>>>,
    reload_length: Mutex<BTreeMap<String, Arc<Summary>>>,
    pools: Mutex<BTreeMap<String, PoolMetrics>>,
}

/// What one scrape counted, added to the manager's counters when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScrapeOutcome {
    pub out_of_order: u64,
    pub duplicates: u64,
    pub out_of_bounds: u64,
    pub exemplar_out_of_order: u64,
    pub sample_limit_exceeded: bool,
    pub label_limit_exceeded: bool,
    pub body_size_limit_exceeded: bool,
    pub cache_flush_forced: bool,
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl ScrapeMetrics {
    pub fn scraped(&self, outcome: &ScrapeOutcome) {
        add(&self.sample_out_of_order, outcome.out_of_order);
        add(&self.sample_duplicate_timestamp, outcome.duplicates);
        add(&self.sample_out_of_bounds, outcome.out_of_bounds);
        add(&self.exemplar_out_of_order, outcome.exemplar_out_of_order);
        add(
            &self.exceeded_sample_limit,
            u64::from(outcome.sample_limit_exceeded),
        );
        add(
            &self.exceeded_label_limits,
            u64::from(outcome.label_limit_exceeded),
        );
        add(
            &self.exceeded_body_size_limit,
            u64::from(outcome.body_size_limit_exceeded),
        );
        add(
            &self.cache_flush_forced,
            u64::from(outcome.cache_flush_forced),
        );
    }

    /// The summary a loop with this configured interval observes its intervals in.
    pub fn interval_length(&self, interval: Duration) -> Arc<Summary> {
        Arc::clone(
            lock(&self.interval_length)
                .entry(go_duration(interval))
                .or_insert_with(|| Arc::new(Summary::new(QUANTILES_WIDE))),
        )
    }

    /// A pool reload took `took`; `interval` is the job's (new) scrape interval.
    pub fn reloaded(&self, interval: Duration, took: Duration) {
        let summary = Arc::clone(
            lock(&self.reload_length)
                .entry(go_duration(interval))
                .or_insert_with(|| Arc::new(Summary::new(QUANTILES_WIDE))),
        );
        summary.observe(took.as_secs_f64());
    }

    /// A pool exists (created or reloaded) with this target limit.
    pub fn pool_configured(&self, job: &str, target_limit: u64) {
        lock(&self.pools)
            .entry(job.to_owned())
            .or_insert_with(|| PoolMetrics::new(target_limit))
            .target_limit = target_limit;
    }

    /// A sync of `job`'s targets: how long it took and how many targets could not be built.
    pub fn synced(&self, job: &str, took: Duration, failed: usize) {
        let mut pools = lock(&self.pools);
        let pool = pools
            .entry(job.to_owned())
            .or_insert_with(|| PoolMetrics::new(0));
        pool.syncs += 1;
        pool.sync_failed += failed as u64;
        pool.sync_length.observe(took.as_secs_f64());
    }

    /// The pool's active targets now (their number and their metadata stores).
    pub fn pool_targets(&self, job: &str, metadata: Vec<SharedMetadata>) {
        let mut pools = lock(&self.pools);
        let pool = pools
            .entry(job.to_owned())
            .or_insert_with(|| PoolMetrics::new(0));
        pool.targets = metadata.len();
        pool.metadata = metadata;
    }

    /// The pool is gone: its labelled series go too (as Prometheus deletes them).
    pub fn pool_removed(&self, job: &str) {
        lock(&self.pools).remove(job);
    }

    pub fn write(&self, e: &mut TextEncoder<'_>) {
        let counter = |e: &mut TextEncoder<'_>, name: &str, help: &str, c: &AtomicU64| {
            write_single(
                e,
                name,
                help,
                MetricType::Counter,
                c.load(Ordering::Relaxed) as f64,
            );
        };
        let pools = lock(&self.pools);
        let per_pool = |e: &mut TextEncoder<'_>,
                        name: &str,
                        help: &str,
                        kind: MetricType,
                        value: &dyn Fn(&PoolMetrics) -> f64| {
            if pools.is_empty() {
                return;
            }
            write_family(e, name, help, kind);
            for (job, pool) in pools.iter() {
                e.sample_parts(name, [("scrape_job", job.as_str())], value(pool), None);
            }
        };
        let metadata_size = |pool: &PoolMetrics| {
            pool.metadata
                .iter()
                .fold((0usize, 0usize), |(n, bytes), m| {
                    let store = lock(m);
                    (n + store.len(), bytes + store.size_bytes())
                })
        };

        write_by_interval(
            e,
            "prometheus_target_interval_length_seconds",
            "Actual intervals between scrapes.",
            &lock(&self.interval_length),
        );
        per_pool(
            e,
            "prometheus_target_metadata_cache_bytes",
            "The number of bytes that are currently used for storing metric metadata in the cache",
            MetricType::Gauge,
            &|p| metadata_size(p).1 as f64,
        );
        per_pool(
            e,
            "prometheus_target_metadata_cache_entries",
            "Total number of metric metadata entries in the cache",
            MetricType::Gauge,
            &|p| metadata_size(p).0 as f64,
        );
        write_by_interval(
            e,
            "prometheus_target_reload_length_seconds",
            "Actual interval to reload the scrape pool with a given configuration.",
            &lock(&self.reload_length),
        );
        counter(
            e,
            "prometheus_target_scrape_pool_exceeded_label_limits_total",
            "Total number of times scrape pools hit the label limits, during sync or config reload.",
            &self.exceeded_label_limits,
        );
        counter(
            e,
            "prometheus_target_scrape_pool_exceeded_target_limit_total",
            "Total number of times scrape pools hit the target limit, during sync or config reload.",
            &self.exceeded_target_limit,
        );
        counter(
            e,
            "prometheus_target_scrape_pool_reloads_failed_total",
            "Total number of failed scrape pool reloads.",
            &self.reloads_failed,
        );
        counter(
            e,
            "prometheus_target_scrape_pool_reloads_total",
            "Total number of scrape pool reloads.",
            &self.reloads,
        );
        per_pool(
            e,
            "prometheus_target_scrape_pool_sync_total",
            "Total number of syncs that were executed on a scrape pool.",
            MetricType::Counter,
            &|p| p.syncs as f64,
        );
        per_pool(
            e,
            "prometheus_target_scrape_pool_target_limit",
            "Maximum number of targets allowed in this scrape pool.",
            MetricType::Gauge,
            &|p| p.target_limit as f64,
        );
        per_pool(
            e,
            "prometheus_target_scrape_pool_targets",
            "Current number of targets in this scrape pool.",
            MetricType::Gauge,
            &|p| p.targets as f64,
        );
        counter(
            e,
            "prometheus_target_scrape_pools_failed_total",
            "Total number of scrape pool creations that failed.",
            &self.pools_failed,
        );
        counter(
            e,
            "prometheus_target_scrape_pools_total",
            "Total number of scrape pool creation attempts.",
            &self.pools_created,
        );
        counter(
            e,
            "prometheus_target_scrapes_cache_flush_forced_total",
            "How many times a scrape cache was flushed due to getting big while scrapes are failing.",
            &self.cache_flush_forced,
        );
        counter(
            e,
            "prometheus_target_scrapes_exceeded_body_size_limit_total",
            "Total number of scrapes that hit the body size limit",
            &self.exceeded_body_size_limit,
        );
        counter(
            e,
            "prometheus_target_scrapes_exceeded_sample_limit_total",
            "Total number of scrapes that hit the sample limit and were rejected.",
            &self.exceeded_sample_limit,
        );
        counter(
            e,
            "prometheus_target_scrapes_exemplar_out_of_order_total",
            "Total number of exemplar rejected due to not being out of the expected order.",
            &self.exemplar_out_of_order,
        );
        counter(
            e,
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "Total number of samples rejected due to duplicate timestamps but different values.",
            &self.sample_duplicate_timestamp,
        );
        counter(
            e,
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            "Total number of samples rejected due to timestamp falling outside of the time bounds.",
            &self.sample_out_of_bounds,
        );
        counter(
            e,
            "prometheus_target_scrapes_sample_out_of_order_total",
            "Total number of samples rejected due to not being out of the expected order.",
            &self.sample_out_of_order,
        );
        per_pool(
            e,
            "prometheus_target_sync_failed_total",
            "Total number of target sync failures.",
            MetricType::Counter,
            &|p| p.sync_failed as f64,
        );
        if pools.is_empty() {
            return;
        }
        write_family(
            e,
            "prometheus_target_sync_length_seconds",
            "Actual interval to sync the scrape pool.",
            MetricType::Summary,
        );
        for (job, pool) in pools.iter() {
            pool.sync_length.write(
                e,
                "prometheus_target_sync_length_seconds",
                &[("scrape_job", job.as_str())],
            );
        }
    }
}

/// A summary family labelled by interval; nothing while it has no series (as Prometheus).
fn write_by_interval(
    e: &mut TextEncoder<'_>,
    name: &str,
    help: &str,
    summaries: &BTreeMap<String, Arc<Summary>>,
) {
    if summaries.is_empty() {
        return;
    }
    write_family(e, name, help, MetricType::Summary);
    for (interval, summary) in summaries {
        summary.write(e, name, &[("interval", interval.as_str())]);
    }
}

/// A duration as Go's `time.Duration.String` writes it (`15s`, `1m0s`, `1h30m0s`, `1.5s`,
/// `500ms`), which is how Prometheus labels intervals.
pub(crate) fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (unit, suffix) = match nanos {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{suffix}", with_fraction(nanos, unit));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = nanos / 60_000_000_000 % 60;
    let seconds = nanos % 60_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&with_fraction(seconds, 1_000_000_000));
    out.push('s');
    out
}

/// `value / unit` in decimal, without trailing zeros (`unit` a power of ten).
fn with_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(15), "15s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_micros(2), "2µs"),
            (Duration::from_nanos(7), "7ns"),
        ];
        for (d, text) in cases {
            assert_eq!(go_duration(d), text, "{d:?}");
        }
    }

    fn render(m: &ScrapeMetrics) -> String {
        let mut out = Vec::new();
        m.write(&mut TextEncoder::new(&mut out));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn counts_and_pool_series() {
        let m = ScrapeMetrics::default();
        m.scraped(&ScrapeOutcome {
            out_of_order: 2,
            duplicates: 3,
            out_of_bounds: 4,
            exemplar_out_of_order: 1,
            sample_limit_exceeded: true,
            label_limit_exceeded: false,
            body_size_limit_exceeded: true,
            cache_flush_forced: true,
        });
        m.interval_length(Duration::from_secs(60)).observe(60.01);
        m.pool_configured("node", 5);
        m.synced("node", Duration::from_millis(3), 2);
        m.pool_targets("node", vec![SharedMetadata::default()]);
        let text = render(&m);
        for line in [
            "prometheus_target_scrapes_sample_out_of_order_total 2\n",
            "prometheus_target_scrapes_sample_duplicate_timestamp_total 3\n",
            "prometheus_target_scrapes_sample_out_of_bounds_total 4\n",
            "prometheus_target_scrapes_exemplar_out_of_order_total 1\n",
            "prometheus_target_scrapes_exceeded_sample_limit_total 1\n",
            "prometheus_target_scrape_pool_exceeded_label_limits_total 0\n",
            "prometheus_target_scrapes_exceeded_body_size_limit_total 1\n",
            "prometheus_target_interval_length_seconds_count{interval=\"1m0s\"} 1\n",
            "prometheus_target_scrape_pool_sync_total{scrape_job=\"node\"} 1\n",
            "prometheus_target_sync_failed_total{scrape_job=\"node\"} 2\n",
            "prometheus_target_scrape_pool_target_limit{scrape_job=\"node\"} 5\n",
            "prometheus_target_scrape_pool_targets{scrape_job=\"node\"} 1\n",
            "prometheus_target_metadata_cache_entries{scrape_job=\"node\"} 0\n",
            "prometheus_target_sync_length_seconds_count{scrape_job=\"node\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}in\n{text}");
        }
        m.pool_removed("node");
        let text = render(&m);
        assert!(!text.contains("scrape_job=\"node\""), "{text}");
        // Families without series are left out, as Prometheus does.
        assert!(
            !text.contains("prometheus_target_scrape_pool_targets"),
            "{text}"
        );
        assert!(
            text.contains("prometheus_target_scrape_pools_total 0\n"),
            "{text}"
        );
    }
}
