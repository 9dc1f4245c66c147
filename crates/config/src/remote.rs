//! The `remote_write` and `remote_read` sections, with Prometheus' queue and
//! metadata defaults, and AWS SigV4 request signing (also used by
//! Alertmanager configs).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::duration::Duration;
use crate::error::{DecodeResult, FieldError};
use crate::global::decode_size;
use crate::http_client::HttpClientConfig;
use crate::labels::{NameValidationScheme, decode_label_set};
use crate::relabel::{RelabelConfig, decode_relabel_configs};
use crate::values::{Secret, Url};
use crate::yaml::{Decode, Fields, Node, join_key};

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: Url,
    /// Unique among remote write configs when set.
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
    pub round_robin_dns: bool,
    pub protobuf_message: RemoteWriteMessage,
    pub queue_config: QueueConfig,
    pub metadata_config: MetadataConfig,
    /// `enable_http2` defaults to false here, as in Prometheus.
    pub http_client: HttpClientConfig,
    pub sigv4: Option<SigV4Config>,
}

/// The protobuf message remote write sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RemoteWriteMessage {
    /// `prometheus.WriteRequest` (remote write 1.0).
    #[default]
    V1,
    /// `io.prometheus.write.v2.Request` (remote write 2.0).
    V2,
}

impl RemoteWriteMessage {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteWriteMessage::V1 => "prometheus.WriteRequest",
            RemoteWriteMessage::V2 => "io.prometheus.write.v2.Request",
        }
    }
}

impl fmt::Display for RemoteWriteMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Samples buffered per shard.
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Retry (honouring `Retry-After`) when the receiver answers 429. Meridian defaults to
    /// true: Prometheus defaults to false and drops the batch, which loses data whenever a
    /// receiver rate-limits. Set false to get Prometheus' behaviour.
    pub retry_on_http_429: bool,
    /// Samples older than this are not sent; zero sends everything.
    pub sample_age_limit: Duration,
    /// Meridian only: how old the data this queue keeps for an unreachable receiver may get
    /// (WAL segments held back from truncation, samples pending); past it the oldest is
    /// dropped and counted. Zero: no age bound.
    pub retention_max_age: Duration,
    /// Meridian only: how many WAL bytes this queue may hold back for an unreachable
    /// receiver; past it the oldest segments' samples are dropped and counted. Zero: no
    /// size bound.
    pub retention_max_size: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
            sample_age_limit: Duration::ZERO,
            retention_max_age: Duration::from_mins(24 * 60),
            retention_max_size: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_mins(1),
            max_samples_per_send: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteReadConfig {
    pub url: Url,
    /// Unique among remote read configs when set.
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    /// Only queries with all these equality matchers go to this endpoint.
    pub required_matchers: BTreeMap<String, String>,
    pub read_recent: bool,
    pub filter_external_labels: bool,
    pub http_client: HttpClientConfig,
}

/// AWS Signature Version 4 request signing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigV4Config {
    pub region: String,
    pub access_key: String,
    pub secret_key: Option<Secret>,
    pub profile: String,
    pub role_arn: String,
    pub use_fips_sts_endpoint: bool,
}

pub(crate) fn decode_sigv4(fields: &mut Fields) -> DecodeResult<Option<SigV4Config>> {
    let Some(entry) = fields.take("sigv4") else {
        return Ok(None);
    };
    // `sigv4: {}` (or empty) means "use the default AWS credentials".
    let mut sigv4_fields = Fields::new(&entry.value, &fields.path_of("sigv4"))?;
    let sigv4 = SigV4Config {
        region: sigv4_fields.get_or_default("region")?,
        access_key: sigv4_fields.get_or_default("access_key")?,
        secret_key: sigv4_fields
            .get::<Secret>("secret_key")?
            .filter(|s| !s.is_empty()),
        profile: sigv4_fields.get_or_default("profile")?,
        role_arn: sigv4_fields.get_or_default("role_arn")?,
        use_fips_sts_endpoint: sigv4_fields.get_or_default("use_fips_sts_endpoint")?,
    };
    sigv4_fields.finish("sigv4")?;
    if sigv4.access_key.is_empty() != sigv4.secret_key.is_none() {
        return Err(sigv4_fields.error_here("must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config"));
    }
    Ok(Some(sigv4))
}

/// Headers remote write and read set themselves; `Authorization` has its
/// own message.
const RESERVED_REMOTE_HEADERS: [&str; 15] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
];

/// Reads `headers` and rejects the ones Prometheus reserves.
pub(crate) fn decode_remote_headers(
    fields: &mut Fields,
    authorization_message: &str,
) -> DecodeResult<BTreeMap<String, String>> {
    let Some(node) = fields.node("headers") else {
        return Ok(BTreeMap::new());
    };
    let path = fields.path_of("headers");
    let mut headers = BTreeMap::new();
    for entry in node.entries(&path)? {
        let header_path = join_key(&path, &entry.key);
        let lower = entry.key.to_ascii_lowercase();
        let message = if lower == "authorization" {
            Some(authorization_message.to_owned())
        } else if RESERVED_REMOTE_HEADERS.contains(&lower.as_str())
            || lower == "x-amz-content-sha256"
        {
            Some(format!(
                "{} is a reserved header. It must not be changed",
                entry.key
            ))
        } else {
            None
        };
        if let Some(message) = message {
            return Err(FieldError::new(entry.key_position, &header_path, message));
        }
        headers.insert(
            entry.key.clone(),
            String::decode(&entry.value, &header_path)?,
        );
    }
    Ok(headers)
}

/// Reads the required `url`; `section` is `remote_write` or `remote_read`.
fn decode_remote_url(fields: &mut Fields, section: &str) -> DecodeResult<Url> {
    let empty_message = format!("url for {section} is empty");
    let Some(node) = fields.node("url") else {
        return Err(fields.error("url", empty_message));
    };
    if node.scalar_text().is_some_and(|t| t.is_empty()) {
        return Err(fields.error("url", empty_message));
    }
    let path = fields.path_of("url");
    let url = Url::decode(node, &path)?;
    if !matches!(url.expose().scheme(), "http" | "https") {
        return Err(node.error(&path, "URL scheme must be 'http' or 'https'"));
    }
    Ok(url)
}

impl RemoteWriteConfig {
    pub(crate) fn decode(
        node: &Node,
        path: &str,
        scheme: NameValidationScheme,
    ) -> DecodeResult<RemoteWriteConfig> {
        if node.is_null() {
            return Err(node.error(path, "empty or null remote write config section"));
        }
        let mut fields = Fields::new(node, path)?;
        let url = decode_remote_url(&mut fields, "remote_write")?;
        let headers = decode_remote_headers(
            &mut fields,
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
        )?;
        let write_relabel_configs = decode_relabel_configs(
            fields.node("write_relabel_configs"),
            &fields.path_of("write_relabel_configs"),
            scheme,
            "empty or null relabeling rule in remote write config",
        )?;
        let protobuf_message = match fields.node("protobuf_message") {
            None => RemoteWriteMessage::V1,
            Some(node) => {
                let message_path = fields.path_of("protobuf_message");
                let name = String::decode(node, &message_path)?;
                match name.as_str() {
                    "prometheus.WriteRequest" => RemoteWriteMessage::V1,
                    "io.prometheus.write.v2.Request" => RemoteWriteMessage::V2,
                    _ => {
                        return Err(node.error(
                            &message_path,
                            format!(
                                "invalid protobuf_message value: unknown type for remote write protobuf message {name}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
                            ),
                        ));
                    }
                }
            }
        };
        let queue_config = match fields.node("queue_config") {
            None => QueueConfig::default(),
            Some(node) => decode_queue_config(node, &fields.path_of("queue_config"))?,
        };
        let metadata_config = match fields.node("metadata_config") {
            None => MetadataConfig::default(),
            Some(node) => decode_metadata_config(node, &fields.path_of("metadata_config"))?,
        };
        for unsupported in ["azuread", "google_iam"] {
            if fields.has(unsupported) {
                return Err(fields.error(
                    unsupported,
                    format!("{unsupported} is not supported by Meridian"),
                ));
            }
        }
        let config = RemoteWriteConfig {
            url,
            name: fields.get_or_default("name")?,
            remote_timeout: fields.get_or("remote_timeout", Duration::from_secs(30))?,
            headers,
            write_relabel_configs,
            send_exemplars: fields.get_or_default("send_exemplars")?,
            send_native_histograms: fields.get_or_default("send_native_histograms")?,
            round_robin_dns: fields.get_or_default("round_robin_dns")?,
            protobuf_message,
            queue_config,
            metadata_config,
            sigv4: decode_sigv4(&mut fields)?,
            http_client: HttpClientConfig::decode_inline(
                &mut fields,
                HttpClientConfig::remote_write_default(),
            )?,
        };
        fields.finish("remote_write config")?;
        let http_auth = config.http_client.basic_auth.is_some()
            || config.http_client.authorization.is_some()
            || config.http_client.oauth2.is_some();
        if http_auth && config.sigv4.is_some() {
            return Err(fields.error(
                "sigv4",
                "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be configured",
            ));
        }
        Ok(config)
    }
}

fn decode_queue_config(node: &Node, path: &str) -> DecodeResult<QueueConfig> {
    let defaults = QueueConfig::default();
    let mut fields = Fields::new(node, path)?;
    let queue = QueueConfig {
        capacity: fields.get_or("capacity", defaults.capacity)?,
        max_shards: fields.get_or("max_shards", defaults.max_shards)?,
        min_shards: fields.get_or("min_shards", defaults.min_shards)?,
        max_samples_per_send: fields
            .get_or("max_samples_per_send", defaults.max_samples_per_send)?,
        batch_send_deadline: fields.get_or("batch_send_deadline", defaults.batch_send_deadline)?,
        min_backoff: fields.get_or("min_backoff", defaults.min_backoff)?,
        max_backoff: fields.get_or("max_backoff", defaults.max_backoff)?,
        retry_on_http_429: fields.get_or("retry_on_http_429", defaults.retry_on_http_429)?,
        sample_age_limit: fields.get_or("sample_age_limit", defaults.sample_age_limit)?,
        retention_max_age: fields.get_or("retention_max_age", defaults.retention_max_age)?,
        retention_max_size: decode_size(&mut fields, "retention_max_size")?,
    };
    fields.finish("queue_config")?;
    Ok(queue)
}

fn decode_metadata_config(node: &Node, path: &str) -> DecodeResult<MetadataConfig> {
    let defaults = MetadataConfig::default();
    let mut fields = Fields::new(node, path)?;
    let metadata = MetadataConfig {
        send: fields.get_or("send", defaults.send)?,
        send_interval: fields.get_or("send_interval", defaults.send_interval)?,
        max_samples_per_send: fields
            .get_or("max_samples_per_send", defaults.max_samples_per_send)?,
    };
    fields.finish("metadata_config")?;
    Ok(metadata)
}

impl RemoteReadConfig {
    pub(crate) fn decode(
        node: &Node,
        path: &str,
        scheme: NameValidationScheme,
    ) -> DecodeResult<RemoteReadConfig> {
        if node.is_null() {
            return Err(node.error(path, "empty or null remote read config section"));
        }
        let mut fields = Fields::new(node, path)?;
        let url = decode_remote_url(&mut fields, "remote_read")?;
        let headers = decode_remote_headers(
            &mut fields,
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
        )?;
        let required_matchers = match fields.node("required_matchers") {
            None => BTreeMap::new(),
            Some(node) => decode_label_set(node, &fields.path_of("required_matchers"), scheme)?,
        };
        let config = RemoteReadConfig {
            url,
            name: fields.get_or_default("name")?,
            remote_timeout: fields.get_or("remote_timeout", Duration::from_mins(1))?,
            headers,
            required_matchers,
            read_recent: fields.get_or_default("read_recent")?,
            filter_external_labels: fields.get_or("filter_external_labels", true)?,
            http_client: HttpClientConfig::decode_inline(&mut fields, HttpClientConfig::default())?,
        };
        fields.finish("remote_read config")?;
        Ok(config)
    }
}

/// Makes the file paths of remote write configs relative to `dir`.
pub(crate) fn resolve_remote_write_paths(configs: &mut [RemoteWriteConfig], dir: &Path) {
    for config in configs {
        config.http_client.resolve_paths(dir);
    }
}

pub(crate) fn resolve_remote_read_paths(configs: &mut [RemoteReadConfig], dir: &Path) {
    for config in configs {
        config.http_client.resolve_paths(dir);
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::duration::Duration;

    #[test]
    fn retention_bounds_default_and_parse() {
        let Ok(config) = Config::from_str(
            "remote_write:\n  - url: http://a/api/v1/write\n  - url: http://b/api/v1/write\n    queue_config:\n      retention_max_age: 2h\n      retention_max_size: 512MiB\n",
            "prometheus.yml",
        ) else {
            panic!("valid config refused");
        };
        let defaults = &config.remote_write[0].queue_config;
        assert_eq!(defaults.retention_max_age, Duration::from_mins(24 * 60));
        assert_eq!(defaults.retention_max_size, 0);
        assert!(
            defaults.retry_on_http_429,
            "Meridian retries 429 by default"
        );
        let set = &config.remote_write[1].queue_config;
        assert_eq!(set.retention_max_age, Duration::from_mins(120));
        assert_eq!(set.retention_max_size, 512 << 20);
        let bad = Config::from_str(
            "remote_write:\n  - url: http://a/api/v1/write\n    queue_config:\n      retention_max_size: 12\n",
            "prometheus.yml",
        );
        assert!(bad.is_err(), "a size needs a unit");
    }
}
