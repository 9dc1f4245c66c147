//! The `alerting` section: alert relabeling and the Alertmanagers to send
//! alerts to.

use std::path::Path;

use crate::discovery::{
    FileSdConfig, KubernetesSdConfig, StaticConfig, decode_discovery, resolve_discovery_paths,
};
use crate::duration::Duration;
use crate::error::DecodeResult;
use crate::http_client::HttpClientConfig;
use crate::labels::NameValidationScheme;
use crate::relabel::{RelabelConfig, decode_relabel_configs};
use crate::remote::{SigV4Config, decode_sigv4};
use crate::yaml::{Fields, Node, join_index};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingConfig {
    /// Applied to every alert, before the per-Alertmanager ones.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    pub http_client: HttpClientConfig,
    pub sigv4: Option<SigV4Config>,
    /// Usually `http` or `https`; not validated, as in Prometheus.
    pub scheme: String,
    /// Prefix of the HTTP path alerts are pushed to.
    pub path_prefix: String,
    pub timeout: Duration,
    /// Always `v2`: Prometheus 3 dropped v1.
    pub api_version: String,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Selects and rewrites discovered Alertmanagers.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Applied to alerts sent to this Alertmanager only.
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl AlertingConfig {
    pub(crate) fn decode(
        node: Option<&Node>,
        path: &str,
        scheme: NameValidationScheme,
    ) -> DecodeResult<AlertingConfig> {
        let Some(node) = node else {
            return Ok(AlertingConfig::default());
        };
        let mut fields = Fields::new(node, path)?;
        let alert_relabel_configs = decode_relabel_configs(
            fields.node("alert_relabel_configs"),
            &fields.path_of("alert_relabel_configs"),
            scheme,
            "empty or null alert relabeling rule",
        )?;
        let mut alertmanagers = Vec::new();
        if let Some(list) = fields.node("alertmanagers") {
            let list_path = fields.path_of("alertmanagers");
            for (index, item) in list.items(&list_path)?.iter().enumerate() {
                let item_path = join_index(&list_path, index);
                if item.is_null() {
                    return Err(item.error(&item_path, "empty or null Alertmanager section"));
                }
                alertmanagers.push(decode_alertmanager(item, &item_path, scheme)?);
            }
        }
        fields.finish("alerting config")?;
        Ok(AlertingConfig {
            alert_relabel_configs,
            alertmanagers,
        })
    }

    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        for alertmanager in &mut self.alertmanagers {
            alertmanager.http_client.resolve_paths(dir);
            resolve_discovery_paths(
                &mut alertmanager.file_sd_configs,
                &mut alertmanager.kubernetes_sd_configs,
                dir,
            );
        }
    }
}

fn decode_alertmanager(
    node: &Node,
    path: &str,
    scheme: NameValidationScheme,
) -> DecodeResult<AlertmanagerConfig> {
    let mut fields = Fields::new(node, path)?;
    let relabel_configs = decode_relabel_configs(
        fields.node("relabel_configs"),
        &fields.path_of("relabel_configs"),
        scheme,
        "empty or null Alertmanager target relabeling rule",
    )?;
    let alert_relabel_configs = decode_relabel_configs(
        fields.node("alert_relabel_configs"),
        &fields.path_of("alert_relabel_configs"),
        scheme,
        "empty or null Alertmanager alert relabeling rule",
    )?;
    let discovery = decode_discovery(&mut fields, scheme, relabel_configs.is_empty())?;
    let api_version = match fields.node("api_version") {
        None => "v2".to_owned(),
        Some(node) => {
            let version_path = fields.path_of("api_version");
            let version: String = crate::yaml::Decode::decode(node, &version_path)?;
            match version {
                v if v == "v2" => v,
                v if v == "v1" => {
                    return Err(
                        node.error(&version_path, "alertmanager api v1 is no longer supported")
                    );
                }
                v => {
                    return Err(node.error(
                        &version_path,
                        format!("expected Alertmanager api version to be one of [v2] but got {v}"),
                    ));
                }
            }
        }
    };
    let scheme_name = fields
        .get::<String>("scheme")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "http".to_owned())
        .to_ascii_lowercase();
    let config = AlertmanagerConfig {
        sigv4: decode_sigv4(&mut fields)?,
        scheme: scheme_name,
        path_prefix: fields
            .get::<String>("path_prefix")?
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
        timeout: fields.get_or("timeout", DEFAULT_TIMEOUT)?,
        api_version,
        http_client: HttpClientConfig::decode_inline(&mut fields, HttpClientConfig::default())?,
        static_configs: discovery.static_configs,
        file_sd_configs: discovery.file_sd_configs,
        kubernetes_sd_configs: discovery.kubernetes_sd_configs,
        relabel_configs,
        alert_relabel_configs,
    };
    fields.finish("alertmanager_config")?;

    // Like Prometheus, any scheme is accepted here; sending over an
    // unsupported one fails when alerts are sent.
    let http_auth = config.http_client.basic_auth.is_some()
        || config.http_client.authorization.is_some()
        || config.http_client.oauth2.is_some();
    if http_auth && config.sigv4.is_some() {
        return Err(fields.error(
            "sigv4",
            "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_scheme_is_accepted_as_by_prometheus() {
        // Prometheus does not validate an Alertmanager's `scheme`; `promtool
        // check config` accepts `scheme: tcp`.
        let yaml = "alerting:\n  alertmanagers:\n    - scheme: tcp\n";
        let config = match crate::Config::from_str(yaml, "prometheus.yml") {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.alerting.alertmanagers[0].scheme, "tcp");
    }
}
