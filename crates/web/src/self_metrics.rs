//! The server's own metrics, served at `/metrics` in the text format.
//!
//! Process metrics use the names every Prometheus client exports (`process_*`, read from
//! `/proc/self`), so existing dashboards work. Server metrics use Prometheus' names where the
//! meaning is the same (`prometheus_config_last_reload_successful` ...) so that alerts written
//! for Prometheus keep firing for Meridian, plus `meridian_build_info`.

use model::exposition::{MetricType, TextEncoder};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A component that contributes metrics to `/metrics` (the TSDB, later scraping...).
pub trait MetricsSource: Send + Sync {
    /// Writes its families (HELP, TYPE and samples) in the text format.
    fn write_metrics(&self, e: &mut TextEncoder<'_>);
}

/// Writes one unlabeled metric with its metadata.
pub fn write_single(e: &mut TextEncoder<'_>, name: &str, help: &str, kind: MetricType, v: f64) {
    e.help(name, help);
    e.metric_type(name, kind);
    e.sample_parts(name, [], v, None);
}

/// Counters and gauges the rest of the server updates.
pub struct SelfMetrics {
    start_time_ms: i64,
    config_reload_ok: AtomicBool,
    config_reload_success_ms: AtomicI64,
    sources: std::sync::RwLock<Vec<std::sync::Arc<dyn MetricsSource>>>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    pub fn new() -> Self {
        SelfMetrics {
            start_time_ms: model::sample::now_ms(),
            config_reload_ok: AtomicBool::new(false),
            config_reload_success_ms: AtomicI64::new(0),
            sources: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// Adds a component whose metrics `/metrics` includes from now on.
    pub fn add_source(&self, source: std::sync::Arc<dyn MetricsSource>) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    /// Records the outcome of a configuration (re)load.
    pub fn config_loaded(&self, ok: bool) {
        self.config_reload_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.config_reload_success_ms
                .store(model::sample::now_ms(), Ordering::Relaxed);
        }
    }

    /// Renders everything in the 0.0.4 text format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2048);
        let mut e = TextEncoder::new(&mut out);
        let gauge = |e: &mut TextEncoder<'_>, name: &str, help: &str, kind: MetricType, v: f64| {
            e.help(name, help);
            e.metric_type(name, kind);
            e.sample_parts(name, [], v, None);
        };
        let proc = ProcessStats::read();
        if let Some(p) = &proc {
            gauge(
                &mut e,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                p.cpu_seconds,
            );
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                p.rss_bytes,
            );
            gauge(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                MetricType::Gauge,
                p.vsize_bytes,
            );
            gauge(
                &mut e,
                "process_open_fds",
                "Number of open file descriptors.",
                MetricType::Gauge,
                p.open_fds,
            );
        }
        gauge(
            &mut e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            MetricType::Gauge,
            self.start_time_ms as f64 / 1000.0,
        );
        gauge(
            &mut e,
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            MetricType::Gauge,
            if self.config_reload_ok.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
        gauge(
            &mut e,
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            MetricType::Gauge,
            self.config_reload_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        for src in self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            src.write_metrics(&mut e);
        }
        e.help(
            "meridian_build_info",
            "A metric with a constant '1' value labeled by version and target.",
        );
        e.metric_type("meridian_build_info", MetricType::Gauge);
        e.sample_parts(
            "meridian_build_info",
            [
                ("version", env!("CARGO_PKG_VERSION")),
                ("target_arch", std::env::consts::ARCH),
                ("target_os", std::env::consts::OS),
            ],
            1.0,
            None,
        );
        out
    }
}

/// What `/proc/self` says about this process (Linux only; elsewhere the metrics are omitted).
struct ProcessStats {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    open_fds: f64,
}

impl ProcessStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        // Indices relative to field 3 ("state"): utime 14, stime 15, vsize 23, rss 24.
        let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        // USER_HZ and the page size are 100 and 4 KiB on the Linux targets we build for;
        // asking the kernel would need libc.
        let ticks = 100.0;
        let page = 4096.0;
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as f64)
            .unwrap_or(0.0);
        Some(ProcessStats {
            cpu_seconds: (num(14)? + num(15)?) / ticks,
            vsize_bytes: num(23)?,
            rss_bytes: num(24)? * page,
            open_fds,
        })
    }
}
