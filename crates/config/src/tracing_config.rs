//! The `tracing` section: exporting Meridian's own traces over OTLP.

use std::collections::BTreeMap;
use std::path::Path;

use crate::duration::Duration;
use crate::error::{DecodeResult, FieldError};
use crate::http_client::{TlsConfig, decode_tls_config};
use crate::yaml::{Decode, Fields, Node, join_key};

#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub client_type: TracingClientType,
    /// `host:port` of the OTLP receiver.
    pub endpoint: String,
    /// From 0 (no traces) to 1 (all).
    pub sampling_fraction: f64,
    pub insecure: bool,
    pub headers: BTreeMap<String, String>,
    /// Empty or `gzip`.
    pub compression: String,
    pub timeout: Duration,
    pub tls_config: TlsConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TracingClientType {
    #[default]
    Grpc,
    Http,
}

const RESERVED_TRACING_HEADERS: [&str; 3] = [
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "content-type",
];

impl TracingConfig {
    /// `None` when there is no (or an empty) `tracing` section.
    pub(crate) fn decode(node: Option<&Node>, path: &str) -> DecodeResult<Option<TracingConfig>> {
        let Some(node) = node else {
            return Ok(None);
        };
        let mut fields = Fields::new(node, path)?;
        let client_type = match fields.get::<String>("client_type")? {
            None => TracingClientType::Grpc,
            Some(text) => match text.as_str() {
                "grpc" => TracingClientType::Grpc,
                "http" => TracingClientType::Http,
                _ => {
                    return Err(fields.error(
                        "client_type",
                        format!("expected tracing client type to be to be one of [http grpc], but got {text}"),
                    ));
                }
            },
        };
        let mut headers = BTreeMap::new();
        if let Some(headers_node) = fields.node("headers") {
            let headers_path = fields.path_of("headers");
            for entry in headers_node.entries(&headers_path)? {
                let header_path = join_key(&headers_path, &entry.key);
                let lower = entry.key.to_ascii_lowercase();
                if lower == "authorization" {
                    return Err(FieldError::new(
                        entry.key_position,
                        &header_path,
                        "authorization header configuration is not yet supported",
                    ));
                }
                if RESERVED_TRACING_HEADERS.contains(&lower.as_str()) {
                    return Err(FieldError::new(
                        entry.key_position,
                        &header_path,
                        format!("{} is a reserved header. It must not be changed", entry.key),
                    ));
                }
                headers.insert(
                    entry.key.clone(),
                    String::decode(&entry.value, &header_path)?,
                );
            }
        }
        let config = TracingConfig {
            client_type,
            endpoint: fields.get_or_default("endpoint")?,
            sampling_fraction: fields.get_or_default("sampling_fraction")?,
            insecure: fields.get_or_default("insecure")?,
            headers,
            compression: fields.get_or_default("compression")?,
            timeout: fields.get_or("timeout", Duration::from_secs(10))?,
            tls_config: match fields.node("tls_config") {
                Some(node) => decode_tls_config(node, &fields.path_of("tls_config"))?,
                None => TlsConfig::default(),
            },
        };
        fields.finish("tracing config")?;
        if config.endpoint.is_empty() {
            return Err(fields.error("endpoint", "tracing endpoint must be set"));
        }
        if !config.compression.is_empty() && config.compression != "gzip" {
            return Err(fields.error(
                "compression",
                format!(
                    "invalid compression type {} provided, valid options: gzip",
                    config.compression
                ),
            ));
        }
        Ok(Some(config))
    }

    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        self.tls_config.resolve_paths(dir);
    }
}
