//! The TSDB's counters on `/metrics`, under Prometheus' metric names where the meaning is the
//! same (so dashboards and alerts written for Prometheus keep working).

use model::exposition::{MetricType, TextEncoder};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use web::{MetricsSource, write_single};

/// Exposes a database's head statistics.
pub struct TsdbMetrics(pub Arc<tsdb::Db>);

impl MetricsSource for TsdbMetrics {
    fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let head = self.0.head();
        let s = head.stats();
        let c = MetricType::Counter;
        let g = MetricType::Gauge;
        write_single(
            e,
            "prometheus_tsdb_head_series",
            "Total number of series in the head block.",
            g,
            head.num_series() as f64,
        );
        write_single(
            e,
            "prometheus_tsdb_head_series_created_total",
            "Total number of series created in the head",
            c,
            s.series_created.load(Relaxed) as f64,
        );
        write_single(
            e,
            "prometheus_tsdb_head_samples_appended_total",
            "Total number of appended samples.",
            c,
            s.samples_appended.load(Relaxed) as f64,
        );
        write_single(
            e,
            "prometheus_tsdb_out_of_order_samples_total",
            "Total number of out of order samples ingestion failed attempts.",
            c,
            s.out_of_order.load(Relaxed) as f64,
        );
        write_single(
            e,
            "prometheus_tsdb_out_of_bound_samples_total",
            "Total number of out of bound samples ingestion failed attempts.",
            c,
            s.out_of_bounds.load(Relaxed) as f64,
        );
        write_single(
            e,
            "meridian_tsdb_duplicate_samples_total",
            "Samples rejected because their series already had a different value at that timestamp.",
            c,
            s.duplicates.load(Relaxed) as f64,
        );
        write_single(
            e,
            "prometheus_tsdb_wal_corruptions_total",
            "Total number of WAL corruptions.",
            c,
            s.wal_corruptions.load(Relaxed) as f64,
        );
        write_single(
            e,
            "meridian_tsdb_wal_bytes_dropped_total",
            "Bytes of WAL cut away by repairs of corrupt or torn records.",
            c,
            s.wal_bytes_dropped.load(Relaxed) as f64,
        );
        if let Some((min, max)) = head.time_range() {
            write_single(
                e,
                "prometheus_tsdb_head_min_time",
                "Minimum time bound of the head block.",
                g,
                min as f64,
            );
            write_single(
                e,
                "prometheus_tsdb_head_max_time",
                "Maximum timestamp of the head block.",
                g,
                max as f64,
            );
        }
    }
}
