//! The TSDB as the HTTP API's storage, and the TSDB's counters on `/metrics`, under Prometheus' metric names where the meaning is the
//! same (so dashboards and alerts written for Prometheus keep working).

use model::exposition::{MetricType, TextEncoder};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use web::{MetricsSource, write_single};

/// The database as the HTTP API sees it.
pub struct ApiDb(pub Arc<tsdb::Db>);

impl storage::Queryable for ApiDb {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn storage::Querier>, storage::StorageError> {
        self.0.querier(mint, maxt)
    }
}

impl storage::ExemplarQueryable for ApiDb {
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<model::matcher::Matcher>],
    ) -> Result<Vec<storage::ExemplarQueryResult>, storage::StorageError> {
        self.0.select_exemplars(start, end, matcher_sets)
    }
}

impl storage::Appendable for ApiDb {
    fn appender(&self) -> Box<dyn storage::Appender> {
        self.0.appender()
    }
}

impl web::api::ApiStorage for ApiDb {
    fn delete_series(
        &self,
        start: i64,
        end: i64,
        matchers: &[model::matcher::Matcher],
    ) -> Result<(), String> {
        self.0
            .delete_series(start, end, matchers)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn clean_tombstones(&self) -> Result<(), String> {
        self.0
            .clean_tombstones()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, String> {
        let name = snapshot_name();
        let dst = self.0.dir().join("snapshots").join(&name);
        self.0
            .snapshot(&dst, !skip_head)
            .map_err(|e| e.to_string())?;
        Ok(name)
    }

    fn head_summary(&self) -> web::api::HeadSummary {
        let head = self.0.head();
        let range = head.time_range();
        web::api::HeadSummary {
            num_series: head.num_series() as u64,
            min_time: range.map(|r| r.0),
            max_time: range.map(|r| r.1),
        }
    }
}

/// Exposes a database's head statistics.
pub struct TsdbMetrics(pub Arc<tsdb::Db>);

impl MetricsSource for TsdbMetrics {
    fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let head = self.0.head();
        let s = head.stats();
        let (c, g) = (MetricType::Counter, MetricType::Gauge);
        let count = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as f64;
        let mut rows: Vec<(&str, &str, MetricType, f64)> = vec![
            (
                "prometheus_tsdb_head_series",
                "Total number of series in the head block.",
                g,
                head.num_series() as f64,
            ),
            (
                "prometheus_tsdb_head_series_created_total",
                "Total number of series created in the head",
                c,
                count(&s.series_created),
            ),
            (
                "prometheus_tsdb_head_samples_appended_total",
                "Total number of appended samples.",
                c,
                count(&s.samples_appended),
            ),
            (
                "prometheus_tsdb_out_of_order_samples_total",
                "Total number of out of order samples ingestion failed attempts.",
                c,
                count(&s.out_of_order),
            ),
            (
                "prometheus_tsdb_out_of_bound_samples_total",
                "Total number of out of bound samples ingestion failed attempts.",
                c,
                count(&s.out_of_bounds),
            ),
            (
                "meridian_tsdb_duplicate_samples_total",
                "Samples rejected because their series already had a different value at that timestamp.",
                c,
                count(&s.duplicates),
            ),
            (
                "prometheus_tsdb_wal_corruptions_total",
                "Total number of WAL corruptions.",
                c,
                count(&s.wal_corruptions),
            ),
            (
                "meridian_tsdb_wal_bytes_dropped_total",
                "Bytes of WAL cut away by repairs of corrupt or torn records.",
                c,
                count(&s.wal_bytes_dropped),
            ),
        ];
        let d = self.0.stats();
        let blocks = self.0.blocks();
        rows.extend([
            (
                "prometheus_tsdb_blocks_loaded",
                "Number of currently loaded data blocks",
                g,
                blocks.len() as f64,
            ),
            (
                "prometheus_tsdb_storage_blocks_bytes",
                "The number of bytes that are currently used for local storage by all blocks.",
                g,
                self.0.blocks_size() as f64,
            ),
            (
                "prometheus_tsdb_wal_storage_size_bytes",
                "Size of the write log directory.",
                g,
                self.0.wal_size() as f64,
            ),
            (
                "prometheus_tsdb_retention_limit_bytes",
                "Max number of bytes to be retained in the tsdb blocks, configured 0 means disabled",
                g,
                self.0.options().retention_size as f64,
            ),
            (
                "prometheus_tsdb_compactions_total",
                "Total number of compactions that were executed for the partition.",
                c,
                count(&d.head_blocks_written) + count(&d.compactions),
            ),
            (
                "prometheus_tsdb_compactions_failed_total",
                "Total number of compactions that failed for the partition.",
                c,
                count(&d.compactions_failed),
            ),
            (
                "prometheus_tsdb_vertical_compactions_total",
                "Total number of compactions done on overlapping blocks.",
                c,
                count(&d.vertical_compactions),
            ),
            (
                "prometheus_tsdb_time_retentions_total",
                "The number of times that blocks were deleted because the maximum time limit was exceeded.",
                c,
                count(&d.time_retentions),
            ),
            (
                "prometheus_tsdb_size_retentions_total",
                "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
                c,
                count(&d.size_retentions),
            ),
            (
                "meridian_tsdb_blocks_corrupt_total",
                "Blocks skipped at load because they could not be opened.",
                c,
                count(&d.blocks_corrupt),
            ),
            (
                "prometheus_tsdb_head_truncations_total",
                "Total number of head truncations attempted.",
                c,
                count(&s.truncations),
            ),
            (
                "prometheus_tsdb_head_series_removed_total",
                "Total number of series removed in the head",
                c,
                count(&s.series_removed),
            ),
            (
                "prometheus_tsdb_checkpoint_creations_total",
                "Total number of checkpoint creations attempted.",
                c,
                count(&s.checkpoints_created),
            ),
            (
                "prometheus_tsdb_checkpoint_creations_failed_total",
                "Total number of checkpoint creations that failed.",
                c,
                count(&s.checkpoints_failed),
            ),
        ]);
        let x = head.exemplar_stats();
        rows.extend([
            (
                "prometheus_tsdb_exemplar_exemplars_appended_total",
                "Total number of appended exemplars.",
                c,
                x.appended as f64,
            ),
            (
                "prometheus_tsdb_exemplar_exemplars_in_storage",
                "Number of exemplars currently in circular storage.",
                g,
                x.in_storage as f64,
            ),
            (
                "prometheus_tsdb_exemplar_series_with_exemplars_in_storage",
                "Number of series with exemplars currently in circular storage.",
                g,
                x.series as f64,
            ),
            (
                "prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds",
                "The timestamp of the oldest exemplar stored in circular storage. Useful to check for what timerange the current exemplar buffer limit allows. This usually means the last timestamp for all exemplars for a typical setup. This is not true though if one of the series timestamp is in future compared to rest series.",
                g,
                x.oldest_ts as f64 / 1000.0,
            ),
            (
                "prometheus_tsdb_exemplar_max_exemplars",
                "Total number of exemplars the exemplar storage can store, resizeable.",
                g,
                x.max as f64,
            ),
            (
                "prometheus_tsdb_exemplar_out_of_order_exemplars_total",
                "Total number of out of order exemplar ingestion failed attempts.",
                c,
                x.out_of_order as f64,
            ),
        ]);
        if let Some(t) = self.0.lowest_timestamp() {
            rows.push((
                "prometheus_tsdb_lowest_timestamp",
                "Lowest timestamp value stored in the database. The unit is decided by the library consumer.",
                g,
                t as f64,
            ));
            rows.push((
                "prometheus_tsdb_lowest_timestamp_seconds",
                "Lowest timestamp value stored in the database.",
                g,
                (t / 1000) as f64,
            ));
        }
        if let Some((min, max)) = head.time_range() {
            rows.push((
                "prometheus_tsdb_head_min_time",
                "Minimum time bound of the head block.",
                g,
                min as f64,
            ));
            rows.push((
                "prometheus_tsdb_head_max_time",
                "Maximum timestamp of the head block.",
                g,
                max as f64,
            ));
        }
        for (name, help, kind, v) in rows {
            write_single(e, name, help, kind, v);
        }
    }
}

/// `20060102T150405Z-<16 hex digits>`, the form of Prometheus' snapshot names.
fn snapshot_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = model::time::Utc::from_unix_ms(now.as_millis() as i64).compact();
    // Uniqueness within a second: the clock's nanoseconds and the process id, mixed.
    let mix = (u64::from(now.subsec_nanos()) << 20 ^ u64::from(std::process::id()))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{stamp}-{mix:016x}")
}
