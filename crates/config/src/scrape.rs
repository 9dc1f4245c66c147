//! Scrape configs (`scrape_configs` and the files of `scrape_config_files`):
//! their fields, what they inherit from `global`, and Prometheus' checks
//! (job name, timeout vs interval, scrape protocols, name schemes).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::discovery::{
    FileSdConfig, KubernetesSdConfig, StaticConfig, decode_discovery, resolve_discovery_paths,
};
use crate::duration::Duration;
use crate::error::{DecodeResult, FieldError};
use crate::global::{
    GlobalConfig, UTF8_ESCAPING_NEEDS_UTF8_VALIDATION, decode_escaping_scheme, decode_size,
    decode_validation_scheme, non_empty_path,
};
use crate::http_client::HttpClientConfig;
use crate::labels::{NameEscapingScheme, NameValidationScheme};
use crate::relabel::{RelabelConfig, decode_relabel_configs};
use crate::values::resolve_opt;
use crate::yaml::{Decode, Fields, Node, join_index};

/// One scrape job, with everything it inherits from `global` filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    /// URL query parameters, e.g. `match[]` for federation.
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    /// In order of preference, for the `Accept` header.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Used when a target answers with a missing or unknown content type.
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    pub scrape_native_histograms: bool,
    pub always_scrape_classic_histograms: bool,
    pub convert_classic_histograms_to_nhcb: bool,
    pub extra_scrape_metrics: bool,
    pub metrics_path: String,
    /// Usually `http` or `https`; not validated, as in Prometheus.
    pub scheme: String,
    pub enable_compression: bool,
    /// Bytes; 0 means no limit. The limits below also use 0 for "none".
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
    pub keep_dropped_targets: u64,
    pub native_histogram_bucket_limit: u64,
    pub native_histogram_min_bucket_factor: f64,
    pub metric_name_validation_scheme: NameValidationScheme,
    pub metric_name_escaping_scheme: NameEscapingScheme,
    pub scrape_failure_log_file: Option<PathBuf>,
    pub http_client: HttpClientConfig,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// An exposition format a scrape may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    /// Sorted by name, as Prometheus lists them in its error message.
    const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
    ];

    /// The default negotiation order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The default order when native histograms are scraped.
    pub const DEFAULT_WITH_NATIVE_HISTOGRAMS: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// Case-sensitive, as in Prometheus.
    fn parse(text: &str) -> Result<ScrapeProtocol, String> {
        ScrapeProtocol::ALL
            .into_iter()
            .find(|protocol| protocol.as_str() == text)
            .ok_or_else(|| {
                let supported: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown scrape protocol {text}, supported: [{}]",
                    supported.join(" ")
                )
            })
    }
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a `scrape_protocols` list. `context` ends each message, e.g.
/// `for scrape config with job name "node"`.
pub(crate) fn decode_scrape_protocols(
    node: &Node,
    path: &str,
    context: &str,
) -> DecodeResult<Vec<ScrapeProtocol>> {
    let names: Vec<String> = Vec::decode(node, path)?;
    let items = node.items(path)?;
    if names.is_empty() {
        return Err(node.error(path, format!("scrape_protocols cannot be empty {context}")));
    }
    let mut protocols = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let item_path = join_index(path, index);
        let position = items.get(index).map_or(node.position, |item| item.position);
        let seen_before = names[..index]
            .iter()
            .any(|earlier| earlier.eq_ignore_ascii_case(name));
        if seen_before {
            return Err(FieldError::new(
                position,
                &item_path,
                format!(
                    "duplicated protocol in scrape_protocols, got [{}] {context}",
                    names.join(" ")
                ),
            ));
        }
        let protocol = ScrapeProtocol::parse(name).map_err(|message| {
            FieldError::new(
                position,
                &item_path,
                format!("scrape_protocols: {message} {context}"),
            )
        })?;
        protocols.push(protocol);
    }
    Ok(protocols)
}

const DEFAULT_METRICS_PATH: &str = "/metrics";
const DEFAULT_SCHEME: &str = "http";

impl ScrapeConfig {
    /// Reads one scrape config and applies the global defaults.
    pub(crate) fn decode(
        node: &Node,
        path: &str,
        global: &GlobalConfig,
    ) -> DecodeResult<ScrapeConfig> {
        if node.is_null() {
            return Err(node.error(path, "empty or null scrape config section"));
        }
        let mut fields = Fields::new(node, path)?;
        let job_name = fields.get_or_default::<String>("job_name")?;
        let context = format!("for scrape config with job name {job_name:?}");

        let explicit_validation = decode_validation_scheme(&mut fields, "scrape config")?;
        let validation = explicit_validation.unwrap_or(global.metric_name_validation_scheme);
        let explicit_escaping = decode_escaping_scheme(&mut fields, "scrape config")?;

        let relabel_configs = decode_relabel_configs(
            fields.node("relabel_configs"),
            &fields.path_of("relabel_configs"),
            validation,
            "empty or null target relabeling rule in scrape config",
        )?;
        let metric_relabel_configs = decode_relabel_configs(
            fields.node("metric_relabel_configs"),
            &fields.path_of("metric_relabel_configs"),
            validation,
            "empty or null metric relabeling rule in scrape config",
        )?;
        let discovery = decode_discovery(&mut fields, validation, relabel_configs.is_empty())?;

        let explicit_interval = fields
            .get::<Duration>("scrape_interval")?
            .filter(|d| !d.is_zero());
        let explicit_timeout = fields
            .get::<Duration>("scrape_timeout")?
            .filter(|d| !d.is_zero());
        let scrape_native_histograms = fields
            .get::<bool>("scrape_native_histograms")?
            .unwrap_or(global.scrape_native_histograms);
        let scrape_protocols = match fields.node("scrape_protocols") {
            Some(node) => {
                decode_scrape_protocols(node, &fields.path_of("scrape_protocols"), &context)?
            }
            None => match &global.scrape_protocols {
                Some(protocols) => protocols.clone(),
                None if scrape_native_histograms => {
                    ScrapeProtocol::DEFAULT_WITH_NATIVE_HISTOGRAMS.to_vec()
                }
                None => ScrapeProtocol::DEFAULT.to_vec(),
            },
        };
        let fallback_scrape_protocol = match fields.node("fallback_scrape_protocol") {
            None => None,
            Some(node) => {
                let fallback_path = fields.path_of("fallback_scrape_protocol");
                let name = String::decode(node, &fallback_path)?;
                if name.is_empty() {
                    None
                } else {
                    Some(ScrapeProtocol::parse(&name).map_err(|message| {
                        node.error(
                            &fallback_path,
                            format!(
                                "invalid fallback_scrape_protocol for scrape config with job name {job_name:?}: {message}"
                            ),
                        )
                    })?)
                }
            }
        };
        let scheme = fields
            .get::<String>("scheme")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SCHEME.to_owned())
            .to_ascii_lowercase();
        let inherit = |value: u64, global_value: u64| if value == 0 { global_value } else { value };

        let mut config = ScrapeConfig {
            honor_labels: fields.get_or_default("honor_labels")?,
            honor_timestamps: fields.get_or("honor_timestamps", true)?,
            track_timestamps_staleness: fields.get_or_default("track_timestamps_staleness")?,
            params: fields.get_or_default("params")?,
            scrape_interval: explicit_interval.unwrap_or(global.scrape_interval),
            scrape_timeout: Duration::ZERO,
            scrape_protocols,
            fallback_scrape_protocol,
            scrape_native_histograms,
            always_scrape_classic_histograms: fields
                .get::<bool>("always_scrape_classic_histograms")?
                .unwrap_or(global.always_scrape_classic_histograms),
            convert_classic_histograms_to_nhcb: fields
                .get::<bool>("convert_classic_histograms_to_nhcb")?
                .unwrap_or(global.convert_classic_histograms_to_nhcb),
            extra_scrape_metrics: fields
                .get::<bool>("extra_scrape_metrics")?
                .unwrap_or(global.extra_scrape_metrics),
            metrics_path: fields
                .get::<String>("metrics_path")?
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_METRICS_PATH.to_owned()),
            scheme,
            enable_compression: fields.get_or("enable_compression", true)?,
            body_size_limit: inherit(
                decode_size(&mut fields, "body_size_limit")?,
                global.body_size_limit,
            ),
            sample_limit: inherit(fields.get_or_default("sample_limit")?, global.sample_limit),
            label_limit: inherit(fields.get_or_default("label_limit")?, global.label_limit),
            label_name_length_limit: inherit(
                fields.get_or_default("label_name_length_limit")?,
                global.label_name_length_limit,
            ),
            label_value_length_limit: inherit(
                fields.get_or_default("label_value_length_limit")?,
                global.label_value_length_limit,
            ),
            target_limit: inherit(fields.get_or_default("target_limit")?, global.target_limit),
            keep_dropped_targets: inherit(
                fields.get_or_default("keep_dropped_targets")?,
                global.keep_dropped_targets,
            ),
            native_histogram_bucket_limit: fields
                .get_or_default("native_histogram_bucket_limit")?,
            native_histogram_min_bucket_factor: fields
                .get_or_default("native_histogram_min_bucket_factor")?,
            metric_name_validation_scheme: validation,
            metric_name_escaping_scheme: explicit_escaping.unwrap_or(
                if global.escaping_scheme_is_explicit && explicit_validation.is_none() {
                    global.metric_name_escaping_scheme
                } else {
                    NameEscapingScheme::default_for(validation)
                },
            ),
            scrape_failure_log_file: non_empty_path(&mut fields, "scrape_failure_log_file")?
                .or_else(|| global.scrape_failure_log_file.clone()),
            http_client: HttpClientConfig::decode_inline(&mut fields, HttpClientConfig::default())?,
            static_configs: discovery.static_configs,
            file_sd_configs: discovery.file_sd_configs,
            kubernetes_sd_configs: discovery.kubernetes_sd_configs,
            relabel_configs,
            metric_relabel_configs,
            job_name,
        };
        fields.finish("scrape_config")?;

        if config.job_name.is_empty() {
            return Err(fields.error("job_name", "job_name is empty"));
        }
        // The scheme is not validated: Prometheus accepts any (relabeling
        // can set `__scheme__` to anything too), and a scrape over an
        // unsupported one fails at scrape time.
        // Prometheus checks an explicit timeout against the (possibly
        // inherited) interval, then derives a missing timeout from the global
        // one, capped at the interval.
        if let Some(timeout) = explicit_timeout
            && timeout > config.scrape_interval
        {
            let key = if fields.has("scrape_timeout") {
                "scrape_timeout"
            } else {
                "scrape_interval"
            };
            return Err(fields.error(
                key,
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    config.job_name
                ),
            ));
        }
        config.scrape_timeout =
            explicit_timeout.unwrap_or_else(|| global.scrape_timeout.min(config.scrape_interval));
        if config.metric_name_escaping_scheme == NameEscapingScheme::AllowUtf8
            && config.metric_name_validation_scheme != NameValidationScheme::Utf8
        {
            return Err(fields.error(
                "metric_name_escaping_scheme",
                UTF8_ESCAPING_NEEDS_UTF8_VALIDATION,
            ));
        }
        Ok(config)
    }

    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        resolve_opt(dir, &mut self.scrape_failure_log_file);
        self.http_client.resolve_paths(dir);
        resolve_discovery_paths(
            &mut self.file_sd_configs,
            &mut self.kubernetes_sd_configs,
            dir,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn decode(yaml: &str) -> DecodeResult<ScrapeConfig> {
        decode_with(yaml, &GlobalConfig::default())
    }

    fn decode_with(yaml: &str, global: &GlobalConfig) -> DecodeResult<ScrapeConfig> {
        let node = parse(yaml)?;
        ScrapeConfig::decode(&node, "scrape_configs[0]", global)
    }

    fn message(yaml: &str) -> String {
        match decode(yaml) {
            Ok(config) => panic!("{yaml:?} should fail, got {config:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn defaults_and_inheritance() {
        let global = GlobalConfig {
            scrape_interval: Duration::from_secs(5),
            scrape_timeout: Duration::from_secs(5),
            sample_limit: 100,
            ..GlobalConfig::default()
        };
        let Ok(config) = decode_with("job_name: node\nlabel_limit: 7\n", &global) else {
            panic!("valid");
        };
        assert_eq!(config.scrape_interval, Duration::from_secs(5));
        assert_eq!(config.scrape_timeout, Duration::from_secs(5));
        assert_eq!(config.sample_limit, 100);
        assert_eq!(config.label_limit, 7);
        assert_eq!(config.metrics_path, "/metrics");
        assert_eq!(config.scheme, "http");
        assert!(config.honor_timestamps && config.enable_compression && !config.honor_labels);
        assert_eq!(config.scrape_protocols, ScrapeProtocol::DEFAULT);
        assert_eq!(
            config.metric_name_escaping_scheme,
            NameEscapingScheme::AllowUtf8
        );
    }

    #[test]
    fn any_scheme_is_accepted_as_by_prometheus() {
        // Prometheus (2.x and 3.x) does not validate `scheme`; `promtool
        // check config` accepts `scheme: ftp`.
        let Ok(config) = decode("job_name: node\nscheme: ftp\n") else {
            panic!("valid");
        };
        assert_eq!(config.scheme, "ftp");
    }

    #[test]
    fn timeout_defaults_never_exceed_the_interval() {
        let Ok(config) = decode("job_name: fast\nscrape_interval: 5s\n") else {
            panic!("valid");
        };
        assert_eq!(config.scrape_timeout, Duration::from_secs(5));
    }

    #[test]
    fn protocol_errors_match_prometheus() {
        assert_eq!(
            message("job_name: node\nscrape_protocols: [prometheusproto]\n"),
            "scrape_protocols: unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0] for scrape config with job name \"node\""
        );
        assert_eq!(
            message(
                "job_name: node\nscrape_protocols: [OpenMetricsText1.0.0, PrometheusProto, OpenMetricsText1.0.0]\n"
            ),
            "duplicated protocol in scrape_protocols, got [OpenMetricsText1.0.0 PrometheusProto OpenMetricsText1.0.0] for scrape config with job name \"node\""
        );
        assert_eq!(
            message("job_name: node\nfallback_scrape_protocol: prometheusproto\n"),
            "invalid fallback_scrape_protocol for scrape config with job name \"node\": unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]"
        );
    }

    #[test]
    fn legacy_validation_defaults_to_underscore_escaping() {
        let Ok(config) = decode("job_name: a\nmetric_name_validation_scheme: legacy\n") else {
            panic!("valid");
        };
        assert_eq!(
            config.metric_name_escaping_scheme,
            NameEscapingScheme::Underscores
        );
        assert_eq!(
            message(
                "job_name: a\nmetric_name_validation_scheme: legacy\nmetric_name_escaping_scheme: allow-utf-8\n"
            ),
            UTF8_ESCAPING_NEEDS_UTF8_VALIDATION
        );
    }

    #[test]
    fn native_histograms_put_protobuf_first() {
        let Ok(config) = decode("job_name: a\nscrape_native_histograms: true\n") else {
            panic!("valid");
        };
        assert_eq!(config.scrape_protocols[0], ScrapeProtocol::PrometheusProto);
    }
}
