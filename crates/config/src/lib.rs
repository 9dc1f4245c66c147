//! Prometheus 3.x configuration (`prometheus.yml`) for Meridian: parsing,
//! defaults and validation, as strict as Prometheus (unknown fields,
//! duplicate keys and invalid combinations are errors), with errors that name
//! the file, line, column and field:
//!
//! ```text
//! prometheus.yml:12:5: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name "node"
//! ```
//!
//! Entry points: [`Config::load`] and [`Config::from_str`]; [`WebConfig::load`] for the web
//! configuration file (`--web.config.file`).

mod alerting;
mod config;
mod discovery;
pub use model::duration;
mod error;
mod global;
mod http_client;
mod labels;
mod otlp;
mod redact;
mod regex_compat;
mod relabel;
mod remote;
mod scrape;
mod size;
pub use redact::redacted_yaml;
pub use size::parse_size;
mod storage;
mod tracing_config;
mod values;
mod web;
mod yaml;

pub use alerting::{AlertingConfig, AlertmanagerConfig};
pub use config::Config;
pub use discovery::{
    FileSdConfig, KubernetesAttachMetadata, KubernetesNamespaces, KubernetesRole,
    KubernetesSdConfig, KubernetesSelector, StaticConfig,
};
pub use duration::Duration;
pub use error::{ConfigError, Position};
pub use global::{GlobalConfig, RuntimeConfig};
pub use http_client::{
    Authorization, BasicAuth, HttpClientConfig, HttpHeader, OAuth2, ProxyConfig, TlsConfig,
    TlsVersion,
};
pub use labels::{NameEscapingScheme, NameValidationScheme};
pub use otlp::{OtlpConfig, OtlpTranslationStrategy};
pub use relabel::{RelabelAction, RelabelConfig};
pub use remote::{
    MetadataConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig, RemoteWriteMessage,
    SigV4Config,
};
pub use scrape::{ScrapeConfig, ScrapeProtocol};
pub use storage::{ExemplarsConfig, RetentionConfig, StorageConfig, TsdbConfig};
pub use tracing_config::{TracingClientType, TracingConfig};
pub use values::{Secret, Url};
pub use web::{CipherSuite, ClientAuthType, Curve, HttpServerConfig, TlsServerConfig, WebConfig};
