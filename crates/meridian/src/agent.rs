//! Agent mode (`--agent`, or 2.x's `--enable-feature=agent`): what differs from the server.
//!
//! The agent scrapes and remote-writes; its storage is `tsdb::AgentDb`, a WAL the queues
//! read. This module holds the pieces the server wires in instead of the database's: the
//! configuration check Prometheus' agent applies, the storage as the web layer sees it (it can
//! take remote writes but answers no reads), and the `prometheus_agent_*` metrics.

use model::exposition::{MetricType, TextEncoder};
use std::sync::atomic::Ordering::Relaxed;
use web::{MetricsSource, write_single};

/// What Prometheus' agent refuses in a configuration: sections that need local queries, and
/// a configuration with nowhere to send samples.
pub fn check_config(c: &config::Config) -> Result<(), String> {
    if c.remote_write.is_empty() {
        return Err("at least one remote_write target must be specified in agent mode".into());
    }
    if !c.alerting.alertmanagers.is_empty() || !c.alerting.alert_relabel_configs.is_empty() {
        return Err("field alerting is not allowed in agent mode".into());
    }
    if !c.rule_files.is_empty() {
        return Err("field rule_files is not allowed in agent mode".into());
    }
    if !c.remote_read.is_empty() {
        return Err("field remote_read is not allowed in agent mode".into());
    }
    Ok(())
}

/// The message of every read refused in agent mode (Prometheus' wording).
const UNAVAILABLE: &str = "unavailable with Prometheus Agent";

/// The agent's storage for the web layer: remote writes go to the WAL; reads (federation,
/// remote read) are refused.
pub struct AgentStorage(pub tsdb::AgentDb);

impl storage::Queryable for AgentStorage {
    fn querier(
        &self,
        _mint: i64,
        _maxt: i64,
    ) -> Result<Box<dyn storage::Querier>, storage::StorageError> {
        Err(storage::StorageError::Other(UNAVAILABLE.into()))
    }
}

impl storage::ExemplarQueryable for AgentStorage {
    fn select_exemplars(
        &self,
        _start: i64,
        _end: i64,
        _matcher_sets: &[Vec<model::matcher::Matcher>],
    ) -> Result<Vec<storage::ExemplarQueryResult>, storage::StorageError> {
        Err(storage::StorageError::Other(UNAVAILABLE.into()))
    }
}

impl storage::Appendable for AgentStorage {
    fn appender(&self) -> Box<dyn storage::Appender> {
        self.0.appender()
    }
}

impl web::api::ApiStorage for AgentStorage {
    fn head_summary(&self) -> web::api::HeadSummary {
        web::api::HeadSummary {
            num_series: self.0.num_series() as u64,
            min_time: None,
            max_time: None,
        }
    }
}

/// `prometheus_agent_*` on `/metrics`, under Prometheus' names.
pub struct AgentMetrics(pub tsdb::AgentDb);

impl MetricsSource for AgentMetrics {
    fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let s = self.0.stats();
        let (c, g) = (MetricType::Counter, MetricType::Gauge);
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as f64;
        let rows: [(&str, &str, MetricType, f64); 12] = [
            (
                "prometheus_agent_active_series",
                "Number of active series being tracked by the WAL storage",
                g,
                self.0.num_series() as f64,
            ),
            (
                "prometheus_agent_deleted_series",
                "Number of series pending deletion from the WAL",
                g,
                n(&s.deleted_series),
            ),
            (
                "prometheus_agent_samples_appended_total",
                "Total number of samples appended to the storage",
                c,
                n(&s.samples_appended),
            ),
            (
                "prometheus_agent_out_of_order_samples_total",
                "Total number of out of order samples ingestion failed attempts.",
                c,
                n(&s.out_of_order_samples),
            ),
            (
                "prometheus_agent_corruptions_total",
                "Total number of WAL corruptions.",
                c,
                n(&s.corruptions),
            ),
            (
                "prometheus_agent_data_replay_duration_seconds",
                "Time taken to replay the data on disk.",
                g,
                n(&s.replay_duration_ms) / 1000.0,
            ),
            (
                "prometheus_agent_checkpoint_creations_total",
                "Total number of checkpoint creations attempted.",
                c,
                n(&s.checkpoints_created) + n(&s.checkpoints_failed),
            ),
            (
                "prometheus_agent_checkpoint_creations_failed_total",
                "Total number of checkpoint creations that failed.",
                c,
                n(&s.checkpoints_failed),
            ),
            (
                "prometheus_agent_checkpoint_deletions_total",
                "Total number of checkpoint deletions attempted.",
                c,
                n(&s.checkpoint_deletions) + n(&s.checkpoint_deletions_failed),
            ),
            (
                "prometheus_agent_checkpoint_deletions_failed_total",
                "Total number of checkpoint deletions that failed.",
                c,
                n(&s.checkpoint_deletions_failed),
            ),
            (
                "meridian_agent_truncations_total",
                "WAL truncations run by the agent.",
                c,
                n(&s.truncations),
            ),
            (
                "meridian_agent_truncate_duration_seconds_total",
                "Time spent truncating the agent's WAL.",
                c,
                n(&s.truncate_seconds_total_ms) / 1000.0,
            ),
        ];
        for (name, help, kind, v) in rows {
            write_single(e, name, help, kind, v);
        }
    }
}
