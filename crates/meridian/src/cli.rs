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
    Server(ServerOptions),
    /// Check configuration files or exposition payloads, like promtool.
    #[command(subcommand)]
    Check(CheckCommand),
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that configuration files load (syntax, fields, values).
    Config {
        /// The configuration files.
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

    /// Address to listen on for the web interface and API.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: SocketAddr,

    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

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

fn parse_duration(s: &str) -> Result<model::duration::Duration, String> {
    model::duration::Duration::parse(s).map_err(|e| e.to_string())
}

impl ServerOptions {
    /// The flags as `/api/v1/status/flags` lists them.
    pub fn flag_values(&self) -> Vec<(String, String)> {
        vec![
            ("config.file".into(), self.config_file.display().to_string()),
            (
                "storage.tsdb.path".into(),
                self.storage_tsdb_path.display().to_string(),
            ),
            ("web.listen-address".into(), self.listen_address.to_string()),
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
const NOT_SERVER: &[&str] = &["server", "check", "help", "--help", "-h", "--version", "-V"];

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
