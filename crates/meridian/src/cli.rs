//! Command-line definitions (clap), with Prometheus' flag names.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "meridian",
    version,
    about = "Monitoring for applications spread over many clusters; a drop-in replacement for Prometheus.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Server(Box<ServerOptions>),
    /// Check configuration files or exposition payloads, like promtool.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run a whole multi-cluster topology on loopback: three clusters and a central server.
    Demo(DemoOptions),
}

#[derive(Args, Debug, Clone)]
pub struct DemoOptions {
    /// Keep data, configurations, certificates and logs here (default: a temporary directory
    /// removed at the end).
    #[arg(long = "data-dir")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that configuration files load (syntax, fields, values).
    Config {
        /// The configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check rule files (syntax, expressions, templates), like `promtool check rules`.
    Rules {
        /// The rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check an exposition payload read from standard input.
    Metrics {
        /// The payload's format; detected when absent (OpenMetrics when it ends with `# EOF`).
        #[arg(long, value_enum)]
        format: Option<MetricsFormat>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MetricsFormat {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text format.
    Openmetrics,
}

#[derive(Args, Debug, Clone)]
pub struct ServerOptions {
    /// Configuration file path.
    #[arg(long = "config.file", default_value = "prometheus.yml")]
    pub config_file: PathBuf,

    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub storage_tsdb_path: PathBuf,

    /// How long to keep samples; blocks ending further back are deleted. Default 15d, unless
    /// only a size limit is given (then no time limit, as in Prometheus).
    #[arg(long = "storage.tsdb.retention.time", value_parser = parse_duration)]
    pub retention_time: Option<model::duration::Duration>,

    /// Maximum bytes of storage (blocks, WAL, head chunks); the oldest blocks go first.
    /// Units: B, KB, MB, GB, TB, PB, EB (powers of 1024). 0 means no limit.
    #[arg(long = "storage.tsdb.retention.size", value_parser = parse_bytes)]
    pub retention_size: Option<u64>,

    /// Compress WAL records with snappy.
    #[arg(long = "storage.tsdb.wal-compression", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wal_compression: bool,

    /// Smallest block range (the head's range); tests use short ones.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h", value_parser = parse_duration, hide = true)]
    pub min_block_duration: model::duration::Duration,

    /// Largest block compaction may produce (default: 10% of the retention time, at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration", value_parser = parse_duration, hide = true)]
    pub max_block_duration: Option<model::duration::Duration>,

    /// Run in agent mode: scrape and remote-write only, with a WAL-only storage under
    /// `--storage.agent.path`; no queries, rules or alerts (as Prometheus' agent mode, which
    /// 2.x enabled with `--enable-feature=agent`, also accepted here).
    #[arg(long = "agent")]
    pub agent: bool,

    /// Base path of the agent's WAL (agent mode only).
    #[arg(long = "storage.agent.path", default_value = "data-agent/")]
    pub storage_agent_path: PathBuf,

    /// Compress the agent's WAL records with snappy (agent mode only).
    #[arg(long = "storage.agent.wal-compression", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub agent_wal_compression: bool,

    /// Series without a sample for this long leave the agent's memory and, once no queue
    /// needs their segments, its WAL (agent mode only; default 5m).
    #[arg(long = "storage.agent.retention.min-time", value_parser = parse_duration)]
    pub agent_retention_min_time: Option<model::duration::Duration>,

    /// Upper bound of the above (agent mode only; default 4h). Unlike Prometheus, segments a
    /// remote-write queue still needs are never deleted by age here: each queue's own
    /// `retention_max_age`/`retention_max_size` bound what an unreachable receiver keeps.
    #[arg(long = "storage.agent.retention.max-time", value_parser = parse_duration)]
    pub agent_retention_max_time: Option<model::duration::Duration>,

    /// Accepted for Prometheus compatibility: Meridian always locks its data directory.
    #[arg(long = "storage.agent.use-lockfile")]
    pub agent_use_lockfile: bool,

    /// How often the agent folds WAL segments no queue needs into a checkpoint.
    #[arg(long = "storage.agent.wal-truncate-frequency", default_value = "2h", value_parser = parse_duration, hide = true)]
    pub agent_truncate_frequency: model::duration::Duration,

    /// Address to listen on for the web interface and API.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: SocketAddr,

    /// Path to a configuration file that can enable TLS or authentication (the exporter
    /// toolkit's web configuration format, as in Prometheus).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,

    /// Maximum number of simultaneous connections across all listeners.
    #[arg(long = "web.max-connections", default_value_t = 512)]
    pub web_max_connections: usize,

    /// Maximum duration a connection may stay without reading or writing a byte (idle
    /// keep-alive connections, stalled bodies, clients that stop reading).
    #[arg(long = "web.read-timeout", default_value = "5m", value_parser = parse_duration)]
    pub web_read_timeout: model::duration::Duration,

    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// The most series one `/federate` answer may hold; a request matching more gets a 422
    /// naming this flag instead of a huge answer. 0 means no cap.
    #[arg(long = "web.federate.max-series", default_value_t = 0)]
    pub federate_max_series: usize,

    /// The URL under which Meridian is reachable from outside (alerts' generatorURL, links).
    #[arg(long = "web.external-url", default_value = "")]
    pub external_url: String,

    /// Path prefix of every HTTP endpoint; default: the path of --web.external-url.
    #[arg(long = "web.route-prefix")]
    pub route_prefix: Option<String>,

    /// Prometheus' console templates and libraries: Meridian has no consoles; accepted so that
    /// Prometheus command lines keep working.
    #[arg(long = "web.console.templates", default_value = "consoles")]
    pub console_templates: String,
    #[arg(long = "web.console.libraries", default_value = "console_libraries")]
    pub console_libraries: String,

    /// The browser page title (accepted for compatibility; Meridian serves no UI pages yet).
    #[arg(long = "web.page-title", default_value = "Meridian")]
    pub page_title: String,

    /// Prometheus feature flags (comma-separated, repeatable). `exemplar-storage` turns on
    /// the exemplar storage (also on whenever the configuration has `storage.exemplars`);
    /// the others are accepted and logged, Meridian's behaviour does not depend on them.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,

    /// Minimum delay between two notifications of the same firing alert.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m", value_parser = parse_duration)]
    pub rules_resend_delay: model::duration::Duration,

    /// How long an outage may last for `for` state to be restored after a restart.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h", value_parser = parse_duration)]
    pub rules_for_outage_tolerance: model::duration::Duration,

    /// Minimum time between an alert's restore and its firing.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m", value_parser = parse_duration)]
    pub rules_for_grace_period: model::duration::Duration,

    /// Alerts waiting to be sent to Alertmanager, at most.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10_000
    )]
    pub notification_queue_capacity: usize,

    /// How long remote-write queues may take to send what they hold at shutdown.
    #[arg(long = "storage.remote.flush-deadline", default_value = "1m", value_parser = parse_duration)]
    pub remote_flush_deadline: model::duration::Duration,

    /// Enable the TSDB admin endpoints (delete series, clean tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Enable the API endpoint accepting remote write requests.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration)]
    pub query_timeout: model::duration::Duration,

    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// How far back to look for a sample of an instant selector.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration)]
    pub query_lookback_delta: model::duration::Duration,

    #[command(flatten)]
    pub log: LogOptions,
}

#[derive(Args, Debug, Clone)]
pub struct LogOptions {
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    pub level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    config::parse_size(s)
}

fn parse_duration(s: &str) -> Result<model::duration::Duration, String> {
    model::duration::Duration::parse(s).map_err(|e| e.to_string())
}

impl ServerOptions {
    /// The path every endpoint is served under: `--web.route-prefix`, else the path of
    /// `--web.external-url`; empty for the root.
    pub fn route_prefix(&self) -> String {
        let raw = match &self.route_prefix {
            Some(p) => p.clone(),
            None => self
                .external_url
                .split_once("://")
                .map(|(_, rest)| rest.find('/').map_or("", |i| &rest[i..]).to_string())
                .unwrap_or_default(),
        };
        let trimmed = raw.trim_end_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else if trimmed.starts_with('/') {
            trimmed.to_string()
        } else {
            format!("/{trimmed}")
        }
    }

    /// Whether `--enable-feature=exemplar-storage` was given.
    pub fn exemplar_storage_feature(&self) -> bool {
        self.enable_feature
            .iter()
            .any(|f| f.trim() == "exemplar-storage")
    }

    /// The exemplar storage's capacity under `config`: `storage.exemplars.max_exemplars` when
    /// the configuration has that section (0 or less: off), else Prometheus' default of
    /// 100000 with `--enable-feature=exemplar-storage`, else 0 (off). Prometheus needs the
    /// flag in every case; Meridian also takes a configured section as the wish to store.
    pub fn max_exemplars(&self, config: &config::Config) -> usize {
        match &config.storage.exemplars {
            Some(e) => usize::try_from(e.max_exemplars.max(0)).unwrap_or(usize::MAX),
            None if self.exemplar_storage_feature() => tsdb::head::exemplars::DEFAULT_MAX_EXEMPLARS,
            None => 0,
        }
    }

    /// The database settings the storage flags describe.
    pub fn db_options(&self) -> tsdb::DbOptions {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        let retention_time = match (self.retention_time, self.retention_size) {
            (Some(d), _) => d.as_millis() as i64,
            // Only a size limit: no time limit (Prometheus' rule).
            (None, Some(size)) if size > 0 => 0,
            (None, _) => 15 * DAY_MS,
        };
        let mut o = tsdb::DbOptions {
            retention_time,
            retention_size: self.retention_size.unwrap_or(0),
            max_block_duration: self.max_block_duration.map(|d| d.as_millis() as i64),
            ..Default::default()
        };
        o.head.wal_compression = self.wal_compression;
        o.head.chunk_range = (self.min_block_duration.as_millis() as i64).max(1000);
        o
    }

    /// Agent mode: `--agent`, or Prometheus 2.x's `--enable-feature=agent`.
    pub fn is_agent(&self) -> bool {
        self.agent || self.enable_feature.iter().any(|f| f == "agent")
    }

    /// The agent storage settings the flags describe.
    pub fn agent_options(&self) -> tsdb::AgentOptions {
        let d = tsdb::AgentOptions::default();
        tsdb::AgentOptions {
            wal_compression: self.agent_wal_compression,
            min_wal_time: self
                .agent_retention_min_time
                .map_or(d.min_wal_time, |t| t.as_std()),
            max_wal_time: self
                .agent_retention_max_time
                .map_or(d.max_wal_time, |t| t.as_std()),
            ..d
        }
    }

    /// The flags as `/api/v1/status/flags` lists them.
    pub fn flag_values(&self) -> Vec<(String, String)> {
        vec![
            ("config.file".into(), self.config_file.display().to_string()),
            (
                "storage.tsdb.path".into(),
                self.storage_tsdb_path.display().to_string(),
            ),
            (
                "storage.tsdb.retention.time".into(),
                self.retention_time
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "0s".into()),
            ),
            (
                "storage.tsdb.retention.size".into(),
                format!("{}B", self.retention_size.unwrap_or(0)),
            ),
            (
                "storage.tsdb.wal-compression".into(),
                self.wal_compression.to_string(),
            ),
            ("web.listen-address".into(), self.listen_address.to_string()),
            ("web.external-url".into(), self.external_url.clone()),
            (
                "web.route-prefix".into(),
                self.route_prefix.clone().unwrap_or_default(),
            ),
            (
                "rules.alert.resend-delay".into(),
                self.rules_resend_delay.to_string(),
            ),
            (
                "alertmanager.notification-queue-capacity".into(),
                self.notification_queue_capacity.to_string(),
            ),
            ("enable-feature".into(), self.enable_feature.join(",")),
            ("agent".into(), self.is_agent().to_string()),
            (
                "storage.agent.path".into(),
                self.storage_agent_path.display().to_string(),
            ),
            (
                "web.enable-admin-api".into(),
                self.enable_admin_api.to_string(),
            ),
            (
                "web.federate.max-series".into(),
                self.federate_max_series.to_string(),
            ),
            (
                "web.config.file".into(),
                self.web_config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "web.max-connections".into(),
                self.web_max_connections.to_string(),
            ),
            ("web.read-timeout".into(), self.web_read_timeout.to_string()),
            (
                "web.enable-lifecycle".into(),
                self.enable_lifecycle.to_string(),
            ),
            (
                "web.enable-remote-write-receiver".into(),
                self.enable_remote_write_receiver.to_string(),
            ),
            ("query.timeout".into(), self.query_timeout.to_string()),
            (
                "query.max-samples".into(),
                self.query_max_samples.to_string(),
            ),
            (
                "query.max-concurrency".into(),
                self.query_max_concurrency.to_string(),
            ),
            (
                "query.lookback-delta".into(),
                self.query_lookback_delta.to_string(),
            ),
        ]
    }
}

/// First arguments that select something other than the default `server` subcommand.
const NOT_SERVER: &[&str] = &[
    "server",
    "check",
    "demo",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

impl Cli {
    /// Parses the arguments, inserting `server` when no subcommand is named.
    pub fn parse_with_default_subcommand(args: impl IntoIterator<Item = OsString>) -> Cli {
        let mut args: Vec<OsString> = args.into_iter().collect();
        let needs_default = match args.get(1).and_then(|a| a.to_str()) {
            None => true,
            Some(first) => !NOT_SERVER.contains(&first),
        };
        if needs_default {
            args.insert(1.min(args.len()), OsString::from("server"));
        }
        Cli::parse_from(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::parse_with_default_subcommand(args.iter().map(OsString::from))
    }

    #[test]
    fn server_is_the_default_and_flags_use_prometheus_names() {
        let c = parse(&[
            "meridian",
            "--config.file=x.yml",
            "--web.listen-address",
            "127.0.0.1:1234",
        ]);
        match c.command {
            Command::Server(o) => {
                assert_eq!(o.config_file, PathBuf::from("x.yml"));
                assert_eq!(o.listen_address.port(), 1234);
                assert!(!o.enable_lifecycle);
                assert_eq!(o.web_config_file, None);
                assert_eq!(o.web_max_connections, 512);
                assert_eq!(o.log.format, LogFormat::Logfmt);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&["meridian"]).command, Command::Server(_)));
    }

    #[test]
    fn check_subcommands() {
        match parse(&["meridian", "check", "config", "a.yml", "b.yml"]).command {
            Command::Check(CheckCommand::Config { files }) => assert_eq!(files.len(), 2),
            other => panic!("{other:?}"),
        }
        match parse(&["meridian", "check", "metrics", "--format", "openmetrics"]).command {
            Command::Check(CheckCommand::Metrics { format }) => {
                assert_eq!(format, Some(MetricsFormat::Openmetrics))
            }
            other => panic!("{other:?}"),
        }
    }
}
