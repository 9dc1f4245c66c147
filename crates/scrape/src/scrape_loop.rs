//! One target's scrape loop (Prometheus' `scrapeLoop`): waits for the target's offset, then
//! every interval scrapes, appends, reports the synthetic series and commits; keeps the
//! target's status for `/api/v1/targets`.
//!
//! Timestamps: the scrape's wall-clock time, snapped to the loop's own interval grid when it
//! is within the tolerance (`--scrape.timestamp-tolerance`, at most 1% of the interval), so
//! that consecutive samples are exactly one interval apart and compress well.
//!
//! Stopping: a loop stopped because its target went away writes staleness markers for all
//! its series about two intervals later, unless the whole manager is shutting down (then
//! nothing is written, as in Prometheus: a restart continues the series). A loop stopped for
//! a reload hands its cache to its successor and writes nothing.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use config::ScrapeConfig;
use model::labels::{Labels, METRIC_NAME};
use model::names::ValidationScheme;
use model::sample::stale_nan;
use storage::{AppendError, Appendable, Appender, SeriesRef};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::append::{AppendSettings, AppendStats, append_body, append_failed};
use crate::cache::ScrapeCache;
use crate::http::{BODY_SIZE_LIMIT_EXCEEDED, Buffers, HttpScraper};
use crate::metrics::{ScrapeMetrics, ScrapeOutcome};
use crate::target::Target;

/// Health of a target, as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetHealth {
    #[default]
    Unknown,
    Up,
    Down,
}

impl TargetHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// The outcome of a target's last scrape.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    pub health: TargetHealth,
    /// Empty after a successful scrape.
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    /// Samples appended by the last scrape (after metric relabeling).
    pub last_samples: u64,
}

/// What the loops of one scrape job share; replaced as a whole when the job's config changes.
pub(crate) struct JobContext {
    pub config: Arc<ScrapeConfig>,
    pub scraper: Arc<HttpScraper>,
    pub metric_rules: Vec<relabel::Rule>,
}

/// Settings of the manager that loops need.
#[derive(Debug, Clone)]
pub(crate) struct LoopOptions {
    pub adjust_timestamps: bool,
    pub timestamp_tolerance: Duration,
    pub skip_offsetting: bool,
    pub offset_seed: u64,
}

/// How a loop was asked to stop.
pub(crate) const STOP_FOR_RELOAD: u8 = 0;
pub(crate) const STOP_TARGET_REMOVED: u8 = 1;

/// What a finished loop hands back.
pub(crate) struct LoopExit {
    pub cache: ScrapeCache,
}

/// The synthetic series of a target, with their storage references.
struct ReportSeries {
    series: Vec<(Labels, Option<SeriesRef>)>,
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];
const EXTRA_REPORT_NAMES: [&str; 3] = [
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
];

impl ReportSeries {
    fn new(target: &Labels, extra: bool) -> ReportSeries {
        let names = REPORT_NAMES
            .iter()
            .chain(EXTRA_REPORT_NAMES.iter().filter(|_| extra));
        let series = names
            .map(|name| {
                let mut builder = target.builder();
                builder.set(METRIC_NAME, *name);
                (builder.build(), None)
            })
            .collect();
        ReportSeries { series }
    }

    fn append(&mut self, app: &mut dyn Appender, t: i64, values: &[f64]) -> Result<(), String> {
        for ((labels, series_ref), &value) in self.series.iter_mut().zip(values) {
            match app.append(*series_ref, labels, t, value) {
                Ok(r) => *series_ref = Some(r),
                Err(
                    AppendError::OutOfOrder
                    | AppendError::DuplicateTimestamp
                    | AppendError::OutOfBounds
                    | AppendError::TooOld,
                ) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

pub(crate) struct ScrapeLoop {
    pub target: Arc<Target>,
    pub job: Arc<JobContext>,
    pub appendable: Arc<dyn Appendable>,
    pub cache: ScrapeCache,
    pub status: Arc<Mutex<TargetStatus>>,
    pub options: LoopOptions,
    /// Set by the manager when `target_limit` is exceeded: scrapes fail with it.
    pub forced_error: Arc<Mutex<Option<String>>>,
    /// The manager's counters.
    pub metrics: Arc<ScrapeMetrics>,
    /// `prometheus_target_interval_length_seconds` of the target's configured interval.
    pub interval_length: Arc<discovery::metrics::Summary>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    model::sample::now_ms()
}

/// Snaps a scrape time to the loop's grid (its first scrape plus whole intervals) when it is
/// within `tolerance_ms` of a grid point, as Prometheus' `--scrape.adjust-timestamps`; `grid`
/// is the last grid point, advanced here. Prometheus only snaps late scrapes; early ones are
/// snapped too because the timer here is anchored a little before the first timestamp is
/// read, so ticks can land just short of the grid in wall-clock milliseconds.
pub(crate) fn align_timestamp(
    grid: &mut Option<i64>,
    now_ms: i64,
    interval_ms: i64,
    tolerance_ms: i64,
) -> i64 {
    let aligned = grid.get_or_insert(now_ms);
    // Advance to the grid point nearest below `now` (or just above, within tolerance);
    // several at once when ticks were skipped.
    while interval_ms > tolerance_ms && now_ms - *aligned >= interval_ms - tolerance_ms {
        *aligned += interval_ms;
    }
    if (now_ms - *aligned).abs() <= tolerance_ms {
        *aligned
    } else {
        now_ms
    }
}

impl ScrapeLoop {
    /// Runs until `cancel` fires; `shutdown` fires when the whole manager stops. `stop_mode`
    /// tells why the loop was cancelled.
    pub(crate) async fn run(
        mut self,
        cancel: CancellationToken,
        shutdown: CancellationToken,
        stop_mode: Arc<AtomicU8>,
    ) -> LoopExit {
        let interval = self.target.interval;
        if !self.options.skip_offsetting {
            let now_nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let offset = self.target.offset(now_nanos, self.options.offset_seed);
            tokio::select! {
                _ = tokio::time::sleep(offset) => {}
                _ = cancel.cancelled() => return LoopExit { cache: self.cache },
            }
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut report = ReportSeries::new(
            &self.target.public_labels,
            self.job.config.extra_scrape_metrics,
        );
        let mut buffers = Buffers::default();
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let tolerance_ms = i64::try_from(
            self.options
                .timestamp_tolerance
                .min(interval / 100)
                .as_millis(),
        )
        .unwrap_or(0);
        let mut aligned_ms: Option<i64> = None;
        let mut last_scrape_ms: Option<i64> = None;
        let mut last_start: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // The actual time since the previous scrape started (from the second on).
            let started = Instant::now();
            if let Some(last) = last_start.replace(started) {
                self.interval_length
                    .observe(started.duration_since(last).as_secs_f64());
            }
            let mut scrape_ms = now_ms();
            if self.options.adjust_timestamps {
                scrape_ms = align_timestamp(&mut aligned_ms, scrape_ms, interval_ms, tolerance_ms);
            }
            if !self
                .scrape_and_report(scrape_ms, &mut buffers, &mut report, &cancel)
                .await
            {
                break;
            }
            last_scrape_ms = Some(scrape_ms);
        }
        if stop_mode.load(Ordering::SeqCst) == STOP_TARGET_REMOVED
            && !shutdown.is_cancelled()
            && last_scrape_ms.is_some()
        {
            self.end_of_run_staleness(&mut ticker, &mut report, &shutdown)
                .await;
        }
        LoopExit { cache: self.cache }
    }

    /// One scrape; false when it was cancelled before appending anything.
    async fn scrape_and_report(
        &mut self,
        t: i64,
        buffers: &mut Buffers,
        report: &mut ReportSeries,
        cancel: &CancellationToken,
    ) -> bool {
        let start = Instant::now();
        let wall_start = SystemTime::now();
        let forced = lock(&self.forced_error).clone();
        let fetched = match forced {
            Some(e) => Err(e),
            None => {
                let scraper = &self.job.scraper;
                tokio::select! {
                    result = scraper.scrape(&self.target.url, self.target.timeout, buffers) => result,
                    _ = cancel.cancelled() => return false,
                }
            }
        };
        let config = &self.job.config;
        let settings = AppendSettings {
            target_labels: &self.target.public_labels,
            honor_labels: config.honor_labels,
            honor_timestamps: config.honor_timestamps,
            track_timestamps_staleness: config.track_timestamps_staleness,
            metric_rules: &self.job.metric_rules,
            sample_limit: config.sample_limit,
            label_limit: config.label_limit,
            label_name_length_limit: config.label_name_length_limit,
            label_value_length_limit: config.label_value_length_limit,
            validation: match config.metric_name_validation_scheme {
                config::NameValidationScheme::Utf8 => ValidationScheme::Utf8,
                config::NameValidationScheme::Legacy => ValidationScheme::Legacy,
            },
        };
        let mut app = self.appendable.appender();
        let mut body_size: f64 = 0.0;
        let mut body_size_limit_exceeded = false;
        let (stats, error) = match fetched {
            Ok(format) => {
                let body = buffers.body();
                body_size = body.len() as f64;
                let (stats, result) =
                    append_body(&mut self.cache, app.as_mut(), body, format, t, &settings);
                match result {
                    Ok(()) => (stats, None),
                    Err(e) => {
                        if let Err(rollback) = app.rollback() {
                            tracing::warn!(err = %rollback, "rollback failed");
                        }
                        app = self.appendable.appender();
                        if let Err(stale) = append_failed(&mut self.cache, app.as_mut(), t, true) {
                            tracing::warn!(err = %stale, "appending staleness markers failed");
                        }
                        (stats, Some(e))
                    }
                }
            }
            Err(e) => {
                if e == BODY_SIZE_LIMIT_EXCEEDED {
                    body_size = -1.0;
                    body_size_limit_exceeded = true;
                }
                if let Err(stale) = append_failed(&mut self.cache, app.as_mut(), t, false) {
                    tracing::warn!(err = %stale, "appending staleness markers failed");
                }
                (AppendStats::default(), Some(e))
            }
        };
        self.metrics.scraped(&ScrapeOutcome {
            out_of_order: stats.out_of_order,
            duplicates: stats.duplicates,
            out_of_bounds: stats.out_of_bounds,
            exemplar_out_of_order: stats.exemplar_out_of_order,
            sample_limit_exceeded: stats.sample_limit_exceeded,
            label_limit_exceeded: stats.label_limit_exceeded,
            body_size_limit_exceeded,
            cache_flush_forced: stats.cache_flush_forced,
        });
        let duration = start.elapsed();
        let mut values = vec![
            if error.is_none() { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            stats.total as f64,
            stats.added as f64,
            stats.series_added as f64,
        ];
        if config.extra_scrape_metrics {
            values.extend([
                self.target.timeout.as_secs_f64(),
                config.sample_limit as f64,
                body_size,
            ]);
        }
        let mut error = error;
        if let Err(e) = report.append(app.as_mut(), t, &values) {
            error.get_or_insert(e);
        }
        if let Err(e) = app.commit() {
            tracing::warn!(target = %self.target.url, err = %e, "commit of a scrape failed");
            error.get_or_insert(e.to_string());
        }
        if let Some(e) = &error {
            tracing::debug!(target = %self.target.url, err = %e, "scrape failed");
        }
        *lock(&self.status) = TargetStatus {
            health: if error.is_none() {
                TargetHealth::Up
            } else {
                TargetHealth::Down
            },
            last_error: error.unwrap_or_default(),
            last_scrape: Some(wall_start),
            last_scrape_duration: duration,
            last_samples: stats.added,
        };
        true
    }

    /// Staleness markers for a removed target, written when its next scrape would have
    /// happened, after waiting two intervals in case the target comes back (then the markers
    /// are out of order and ignored), as Prometheus' `endOfRunStaleness`.
    async fn end_of_run_staleness(
        &mut self,
        ticker: &mut tokio::time::Interval,
        report: &mut ReportSeries,
        shutdown: &CancellationToken,
    ) {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let stale_ms = now_ms();
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(self.target.interval / 10) => {}
            _ = shutdown.cancelled() => return,
        }
        let mut app = self.appendable.appender();
        if let Err(e) = append_failed(&mut self.cache, app.as_mut(), stale_ms, false) {
            tracing::warn!(err = %e, "appending end-of-run staleness markers failed");
        }
        let stale = vec![stale_nan(); report.series.len()];
        if let Err(e) = report.append(app.as_mut(), stale_ms, &stale) {
            tracing::warn!(err = %e, "appending end-of-run staleness markers failed");
        }
        if let Err(e) = app.commit() {
            tracing::warn!(err = %e, "commit of end-of-run staleness markers failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_snap_to_the_grid_within_tolerance() {
        let mut grid = None;
        assert_eq!(align_timestamp(&mut grid, 1_000, 100, 2), 1_000);
        assert_eq!(align_timestamp(&mut grid, 1_101, 100, 2), 1_100);
        assert_eq!(align_timestamp(&mut grid, 1_202, 100, 2), 1_200);
        // Too late: the real time is kept, the grid stays.
        assert_eq!(align_timestamp(&mut grid, 1_305, 100, 2), 1_305);
        // A skipped tick.
        assert_eq!(align_timestamp(&mut grid, 1_501, 100, 2), 1_500);
        // Slightly early (timer anchored before the first timestamp was read).
        assert_eq!(align_timestamp(&mut grid, 1_599, 100, 2), 1_600);
        // Far from any grid point.
        assert_eq!(align_timestamp(&mut grid, 1_650, 100, 2), 1_650);
        assert_eq!(align_timestamp(&mut grid, 1_700, 100, 2), 1_700);
    }
}
