//! One test per configuration error: each checks that loading fails with
//! Prometheus' message and that the error names the file, the line and the
//! field path (`prometheus.yml:5:5: scrape_configs[0].scrape_timeout: ...`).
//!
//! The YAML snippets start with a newline, so their first line is empty and
//! line numbers count from the line after `r#"`.

use std::fs;

use config::{Config, ConfigError};

/// Loads `yaml` as `prometheus.yml` and returns the error it must cause.
fn load_error(yaml: &str) -> ConfigError {
    match Config::from_str(yaml, "prometheus.yml") {
        Ok(config) => panic!("expected an error, loaded {config:#?}"),
        Err(error) => error,
    }
}

/// Checks file, line, field path and message of the error `yaml` causes.
fn check(yaml: &str, line: u64, field: Option<&str>, message: &str) {
    let error = load_error(yaml);
    let rendered = error.to_string();
    assert_eq!(error.file.to_str(), Some("prometheus.yml"), "{rendered}");
    assert_eq!(error.position.map(|p| p.line), Some(line), "{rendered}");
    assert_eq!(error.field.as_deref(), field, "{rendered}");
    assert!(
        error.message.contains(message),
        "message {:?} does not contain {message:?}",
        error.message
    );
    let prefix = format!("prometheus.yml:{line}:");
    assert!(rendered.starts_with(&prefix), "{rendered}");
    if let Some(field) = field {
        assert!(rendered.contains(&format!(": {field}: ")), "{rendered}");
    }
}

/// Defines one `#[test]` per error case.
macro_rules! error_case {
    ($name:ident, $yaml:expr, $line:expr, $field:expr, $message:expr $(,)?) => {
        #[test]
        fn $name() {
            check($yaml, $line, $field, $message);
        }
    };
}

// --- YAML level -------------------------------------------------------------

error_case!(
    unknown_top_level_field,
    r#"
global:
  scrape_interval: 15s
scrape_config:
  - job_name: node
"#,
    4,
    Some("scrape_config"),
    "field scrape_config not found in the configuration file (did you mean scrape_configs?)",
);

error_case!(
    unknown_scrape_config_field,
    r#"
scrape_configs:
  - job_name: node
    scrape_intervall: 10s
"#,
    4,
    Some("scrape_configs[0].scrape_intervall"),
    "field scrape_intervall not found in scrape_config (did you mean scrape_interval?)",
);

error_case!(
    duplicate_key,
    r#"
global:
  scrape_interval: 15s
  scrape_timeout: 15s
  evaluation_interval: 15s
  scrape_timeout: 10s
"#,
    6,
    Some("global.scrape_timeout"),
    r#"mapping key "scrape_timeout" already defined"#,
);

error_case!(
    yaml_syntax_error,
    r#"
scrape_configs:
  - job_name: node
    static_configs:
      - targets:
        - example.test
          labels:
            env: prod
"#,
    7,
    Some("scrape_configs[0].static_configs[0].targets[0].labels"),
    "mapping values are not allowed in this context",
);

error_case!(
    wrong_type,
    r#"
global:
  sample_limit: lots
"#,
    3,
    Some("global.sample_limit"),
    "cannot unmarshal !!str `lots` into uint",
);

error_case!(
    negative_limit,
    r#"
scrape_configs:
  - job_name: node
    sample_limit: -1
"#,
    4,
    Some("scrape_configs[0].sample_limit"),
    "cannot unmarshal !!int `-1` into uint",
);

error_case!(
    invalid_duration,
    r#"
global:
  scrape_interval: 15x
"#,
    3,
    Some("global.scrape_interval"),
    r#"unknown unit "x" in duration "15x""#,
);

error_case!(
    duration_units_out_of_order,
    r#"
global:
  evaluation_interval: 30s1m
"#,
    3,
    Some("global.evaluation_interval"),
    r#"not a valid duration string: "30s1m""#,
);

error_case!(
    body_size_limit_without_unit,
    r#"
scrape_configs:
  - job_name: node
    body_size_limit: 100
"#,
    4,
    Some("scrape_configs[0].body_size_limit"),
    "units: unknown unit  in 100",
);

// --- Global ---------------------------------------------------------------

error_case!(
    global_timeout_greater_than_interval,
    r#"
global:
  scrape_interval: 10s
  scrape_timeout: 20s
"#,
    4,
    Some("global.scrape_timeout"),
    "global scrape timeout greater than scrape interval",
);

error_case!(
    unknown_validation_scheme,
    r#"
global:
  metric_name_validation_scheme: ascii
"#,
    3,
    Some("global.metric_name_validation_scheme"),
    "unknown global name validation method specified, must be either '', 'legacy' or 'utf8', got ascii",
);

error_case!(
    utf8_escaping_with_legacy_validation,
    r#"
scrape_configs:
  - job_name: node
    metric_name_validation_scheme: legacy
    metric_name_escaping_scheme: allow-utf-8
"#,
    5,
    Some("scrape_configs[0].metric_name_escaping_scheme"),
    "utf8 metric names requested but validation scheme is not set to UTF8",
);

error_case!(
    legacy_external_label_name,
    r#"
global:
  metric_name_validation_scheme: legacy
  external_labels:
    cluster.name: eu-1
"#,
    5,
    Some("global.external_labels[\"cluster.name\"]"),
    r#""cluster.name" is not a valid label name"#,
);

error_case!(
    invalid_rule_file_path,
    r#"
rule_files:
  - rules/ok.yml
  - rules/*/bad.yml
"#,
    4,
    Some("rule_files[1]"),
    r#"invalid rule file path "rules/*/bad.yml""#,
);

error_case!(
    invalid_scrape_config_file_path,
    r#"
scrape_config_files:
  - "scrape_configs/*/*"
"#,
    3,
    Some("scrape_config_files[0]"),
    r#"invalid scrape config file path "scrape_configs/*/*""#,
);

// --- Scrape configs ---------------------------------------------------------

error_case!(
    empty_job_name,
    r#"
scrape_configs:
  - job_name: ""
    static_configs:
      - targets: [localhost:9090]
"#,
    3,
    Some("scrape_configs[0].job_name"),
    "job_name is empty",
);

error_case!(
    missing_job_name,
    r#"
scrape_configs:
  - static_configs:
      - targets: [localhost:9090]
"#,
    3,
    Some("scrape_configs[0].job_name"),
    "job_name is empty",
);

error_case!(
    duplicate_job_name,
    r#"
scrape_configs:
  - job_name: node
  - job_name: prometheus
  - job_name: node
"#,
    5,
    Some("scrape_configs[2].job_name"),
    r#"found multiple scrape configs with job name "node""#,
);

error_case!(
    null_scrape_config,
    r#"
scrape_configs:
  - job_name: node
  -
"#,
    4,
    Some("scrape_configs[1]"),
    "empty or null scrape config section",
);

error_case!(
    scrape_timeout_greater_than_interval,
    r#"
scrape_configs:
  - job_name: node
    scrape_interval: 10s
    scrape_timeout: 20s
"#,
    5,
    Some("scrape_configs[0].scrape_timeout"),
    r#"scrape timeout greater than scrape interval for scrape config with job name "node""#,
);

error_case!(
    scrape_timeout_greater_than_global_interval,
    r#"
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: node
    scrape_timeout: 20s
"#,
    6,
    Some("scrape_configs[0].scrape_timeout"),
    r#"scrape timeout greater than scrape interval for scrape config with job name "node""#,
);

error_case!(
    url_in_static_target,
    r#"
scrape_configs:
  - job_name: node
    static_configs:
      - targets:
          - localhost:9100
          - http://bad
"#,
    7,
    Some("scrape_configs[0].static_configs[0].targets[1]"),
    r#""http://bad" is not a valid hostname"#,
);

error_case!(
    invalid_static_label_name,
    r#"
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [a:80]
        labels:
          "": empty
"#,
    7,
    Some("scrape_configs[0].static_configs[0].labels[\"\"]"),
    r#""" is not a valid label name"#,
);

error_case!(
    null_static_config,
    r#"
scrape_configs:
  - job_name: node
    static_configs:
      -
"#,
    5,
    Some("scrape_configs[0].static_configs[0]"),
    "empty or null section in static_configs",
);

error_case!(
    unknown_scrape_protocol,
    r#"
scrape_configs:
  - job_name: node
    scrape_protocols:
      - OpenMetricsText1.0.0
      - prometheusproto
"#,
    6,
    Some("scrape_configs[0].scrape_protocols[1]"),
    "scrape_protocols: unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0] for scrape config with job name \"node\"",
);

error_case!(
    duplicate_scrape_protocol,
    r#"
global:
  scrape_protocols: [PrometheusProto, prometheusproto]
"#,
    3,
    Some("global.scrape_protocols[1]"),
    "duplicated protocol in scrape_protocols, got [PrometheusProto prometheusproto] for global config",
);

error_case!(
    empty_scrape_protocols,
    r#"
scrape_configs:
  - job_name: node
    scrape_protocols: []
"#,
    4,
    Some("scrape_configs[0].scrape_protocols"),
    "scrape_protocols cannot be empty",
);

error_case!(
    invalid_fallback_protocol,
    r#"
scrape_configs:
  - job_name: node
    fallback_scrape_protocol: text
"#,
    4,
    Some("scrape_configs[0].fallback_scrape_protocol"),
    "invalid fallback_scrape_protocol for scrape config with job name \"node\": unknown scrape protocol text",
);

error_case!(
    unsupported_service_discovery,
    r#"
scrape_configs:
  - job_name: node
    consul_sd_configs:
      - server: localhost:8500
"#,
    4,
    Some("scrape_configs[0].consul_sd_configs"),
    "consul_sd_configs is not supported by Meridian",
);

// --- HTTP client ------------------------------------------------------------

error_case!(
    basic_auth_and_authorization,
    r#"
scrape_configs:
  - job_name: node
    basic_auth:
      username: u
      password: p
    authorization:
      credentials: token
"#,
    7,
    Some("scrape_configs[0].authorization"),
    "at most one of basic_auth, oauth2 & authorization must be configured",
);

error_case!(
    bearer_token_and_bearer_token_file,
    r#"
scrape_configs:
  - job_name: node
    bearer_token: token
    bearer_token_file: /run/token
"#,
    5,
    Some("scrape_configs[0].bearer_token_file"),
    "at most one of bearer_token & bearer_token_file must be configured",
);

error_case!(
    basic_auth_and_bearer_token,
    r#"
scrape_configs:
  - job_name: node
    basic_auth:
      username: u
    bearer_token: token
"#,
    6,
    Some("scrape_configs[0].bearer_token"),
    "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
);

error_case!(
    authorization_and_bearer_token,
    r#"
scrape_configs:
  - job_name: node
    bearer_token: token
    authorization:
      credentials: token
"#,
    5,
    Some("scrape_configs[0].authorization"),
    "authorization is not compatible with bearer_token & bearer_token_file",
);

error_case!(
    authorization_type_basic,
    r#"
scrape_configs:
  - job_name: node
    authorization:
      type: Basic
      credentials: dXNlcjpwYXNz
"#,
    5,
    Some("scrape_configs[0].authorization.type"),
    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
);

error_case!(
    password_and_password_file,
    r#"
scrape_configs:
  - job_name: node
    basic_auth:
      username: u
      password: p
      password_file: /run/password
"#,
    7,
    Some("scrape_configs[0].basic_auth.password_file"),
    "at most one of basic_auth password, password_file & password_ref must be configured",
);

error_case!(
    credentials_and_credentials_file,
    r#"
remote_read:
  - url: http://localhost:9201/read
    authorization:
      credentials: a
      credentials_file: b
"#,
    6,
    Some("remote_read[0].authorization.credentials_file"),
    "at most one of authorization credentials & credentials_file must be configured",
);

error_case!(
    client_cert_without_key,
    r#"
scrape_configs:
  - job_name: node
    tls_config:
      cert_file: client.pem
"#,
    // The key is missing: the error points at the tls_config block.
    5,
    Some("scrape_configs[0].tls_config.key_file"),
    "exactly one of key or key_file must be configured when a client certificate is configured",
);

error_case!(
    unknown_tls_version,
    r#"
scrape_configs:
  - job_name: node
    tls_config:
      min_version: TLS1.2
"#,
    5,
    Some("scrape_configs[0].tls_config.min_version"),
    "unknown TLS version: TLS1.2",
);

error_case!(
    oauth2_without_client_id,
    r#"
scrape_configs:
  - job_name: node
    oauth2:
      token_url: https://auth.example.com/token
"#,
    5,
    Some("scrape_configs[0].oauth2.client_id"),
    "oauth2 client_id must be configured",
);

error_case!(
    no_proxy_without_proxy_url,
    r#"
scrape_configs:
  - job_name: node
    no_proxy: localhost
"#,
    4,
    Some("scrape_configs[0].no_proxy"),
    "if no_proxy is configured, proxy_url must also be configured",
);

error_case!(
    bad_proxy_url,
    r#"
scrape_configs:
  - job_name: node
    proxy_url: "http://proxy:port"
"#,
    4,
    Some("scrape_configs[0].proxy_url"),
    r#"parse "http://proxy:port": invalid port number"#,
);

error_case!(
    reserved_http_header,
    r#"
scrape_configs:
  - job_name: node
    http_headers:
      authorization:
        values: [Bearer x]
"#,
    5,
    Some("scrape_configs[0].http_headers.authorization"),
    r#"setting header "Authorization" is not allowed"#,
);

// --- Relabeling ---------------------------------------------------------------

error_case!(
    replace_without_target_label,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - source_labels: [__address__]
        regex: (.*)
"#,
    5,
    Some("scrape_configs[0].relabel_configs[0].target_label"),
    "relabel configuration for replace action requires 'target_label' value",
);

error_case!(
    hashmod_without_modulus,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - action: hashmod
        source_labels: [__address__]
        target_label: __tmp_hash
"#,
    5,
    Some("scrape_configs[0].relabel_configs[0].modulus"),
    "relabel configuration for hashmod requires non-zero modulus",
);

error_case!(
    labeldrop_with_other_fields,
    r#"
scrape_configs:
  - job_name: node
    metric_relabel_configs:
      - action: labeldrop
        regex: tmp_.*
        source_labels: [job]
"#,
    7,
    Some("scrape_configs[0].metric_relabel_configs[0].source_labels"),
    "labeldrop action requires only 'regex', and no other fields",
);

error_case!(
    keepequal_with_regex,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - action: keepequal
        source_labels: [a]
        target_label: b
        regex: (.*)
"#,
    8,
    Some("scrape_configs[0].relabel_configs[0].regex"),
    "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
);

error_case!(
    lowercase_with_replacement,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - action: lowercase
        source_labels: [a]
        target_label: b
        replacement: c
"#,
    8,
    Some("scrape_configs[0].relabel_configs[0].replacement"),
    "'replacement' can not be set for lowercase action",
);

error_case!(
    unknown_relabel_action,
    r#"
alerting:
  alert_relabel_configs:
    - action: delete
"#,
    4,
    Some("alerting.alert_relabel_configs[0].action"),
    r#"unknown relabel action "delete""#,
);

error_case!(
    empty_relabel_action,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - action: ""
"#,
    5,
    Some("scrape_configs[0].relabel_configs[0].action"),
    "relabel action cannot be empty",
);

error_case!(
    invalid_relabel_regex,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - source_labels: [job]
        regex: "node(-[0-9]+"
        action: keep
"#,
    6,
    Some("scrape_configs[0].relabel_configs[0].regex"),
    "error parsing regexp: unclosed group",
);

error_case!(
    invalid_source_label,
    r#"
scrape_configs:
  - job_name: node
    relabel_configs:
      - source_labels: [job, ""]
        action: keep
"#,
    5,
    Some("scrape_configs[0].relabel_configs[0].source_labels[1]"),
    r#""" is not a valid label name"#,
);

error_case!(
    null_relabel_rule,
    r#"
scrape_configs:
  - job_name: node
    metric_relabel_configs:
      - action: keep
        source_labels: [job]
      -
"#,
    7,
    Some("scrape_configs[0].metric_relabel_configs[1]"),
    "empty or null metric relabeling rule in scrape config",
);

error_case!(
    legacy_target_label,
    r#"
global:
  metric_name_validation_scheme: legacy
scrape_configs:
  - job_name: node
    relabel_configs:
      - source_labels: [job]
        target_label: job.name
"#,
    8,
    Some("scrape_configs[0].relabel_configs[0].target_label"),
    r#""job.name" is invalid 'target_label' for replace action"#,
);

// --- Discovery ----------------------------------------------------------------

error_case!(
    file_sd_without_files,
    r#"
scrape_configs:
  - job_name: node
    file_sd_configs:
      - refresh_interval: 1m
"#,
    5,
    Some("scrape_configs[0].file_sd_configs[0].files"),
    "file service discovery config must contain at least one path name",
);

error_case!(
    file_sd_bad_path,
    r#"
scrape_configs:
  - job_name: node
    file_sd_configs:
      - files:
          - targets/*.json
          - targets/nodes.txt
"#,
    7,
    Some("scrape_configs[0].file_sd_configs[0].files[1]"),
    r#"path name "targets/nodes.txt" is not valid for file discovery"#,
);

error_case!(
    kubernetes_role_missing,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - namespaces:
          names: [default]
"#,
    5,
    Some("scrape_configs[0].kubernetes_sd_configs[0].role"),
    "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
);

error_case!(
    kubernetes_unknown_role,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: deployment
"#,
    5,
    Some("scrape_configs[0].kubernetes_sd_configs[0].role"),
    r#"unknown Kubernetes SD role "deployment""#,
);

error_case!(
    kubernetes_api_server_and_kubeconfig,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: https://k8s:6443
        kubeconfig_file: kubeconfig
"#,
    7,
    Some("scrape_configs[0].kubernetes_sd_configs[0].kubeconfig_file"),
    "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
);

error_case!(
    kubernetes_http_config_without_api_server,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        bearer_token_file: /run/token
"#,
    5,
    Some("scrape_configs[0].kubernetes_sd_configs[0].api_server"),
    "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
);

error_case!(
    kubernetes_own_namespace_with_api_server,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: https://k8s:6443
        namespaces:
          own_namespace: true
"#,
    7,
    Some("scrape_configs[0].kubernetes_sd_configs[0].namespaces"),
    "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
);

error_case!(
    kubernetes_selector_role_not_allowed,
    r#"
scrape_configs:
  - job_name: nodes
    kubernetes_sd_configs:
      - role: node
        selectors:
          - role: pod
            label: app=x
"#,
    7,
    Some("scrape_configs[0].kubernetes_sd_configs[0].selectors[0].role"),
    "node role supports only node selectors",
);

error_case!(
    kubernetes_duplicate_selector_role,
    r#"
scrape_configs:
  - job_name: endpoints
    kubernetes_sd_configs:
      - role: endpoints
        selectors:
          - role: pod
            label: app=x
          - role: pod
            field: spec.nodeName=a
"#,
    9,
    Some("scrape_configs[0].kubernetes_sd_configs[0].selectors[1].role"),
    "duplicated selector role: pod",
);

error_case!(
    kubernetes_unknown_namespace_field,
    r#"
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          foo: bar
"#,
    7,
    Some("scrape_configs[0].kubernetes_sd_configs[0].namespaces.foo"),
    "field foo not found in namespaces",
);

// --- Alerting -----------------------------------------------------------------

error_case!(
    alertmanager_api_v1,
    r#"
alerting:
  alertmanagers:
    - api_version: v1
      static_configs:
        - targets: [am:9093]
"#,
    4,
    Some("alerting.alertmanagers[0].api_version"),
    "alertmanager api v1 is no longer supported",
);

error_case!(
    null_alertmanager_relabel_rule,
    r#"
alerting:
  alertmanagers:
    - relabel_configs:
        -
"#,
    5,
    Some("alerting.alertmanagers[0].relabel_configs[0]"),
    "empty or null Alertmanager target relabeling rule",
);

// --- Remote write and read ----------------------------------------------------

error_case!(
    remote_write_without_url,
    r#"
remote_write:
  - name: primary
"#,
    3,
    Some("remote_write[0].url"),
    "url for remote_write is empty",
);

error_case!(
    remote_write_bad_url,
    r#"
remote_write:
  - url: "http://[::1"
"#,
    3,
    Some("remote_write[0].url"),
    r#"parse "http://[::1": invalid IPv6 address"#,
);

error_case!(
    remote_write_url_without_scheme,
    r#"
remote_write:
  - url: metrics.example.com/api/v1/write
"#,
    3,
    Some("remote_write[0].url"),
    "relative URL without a base",
);

error_case!(
    remote_write_url_bad_scheme,
    r#"
remote_write:
  - url: ftp://metrics.example.com/write
"#,
    3,
    Some("remote_write[0].url"),
    "URL scheme must be 'http' or 'https'",
);

error_case!(
    remote_write_reserved_header,
    r#"
remote_write:
  - url: http://localhost:9201/write
    headers:
      x-prometheus-remote-write-version: "2.0"
"#,
    5,
    Some("remote_write[0].headers.x-prometheus-remote-write-version"),
    "x-prometheus-remote-write-version is a reserved header. It must not be changed",
);

error_case!(
    remote_write_authorization_header,
    r#"
remote_write:
  - url: http://localhost:9201/write
    headers:
      Authorization: Bearer x
"#,
    5,
    Some("remote_write[0].headers.Authorization"),
    "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
);

error_case!(
    remote_write_duplicate_name,
    r#"
remote_write:
  - url: http://a/write
    name: queue1
  - url: http://b/write
    name: queue1
"#,
    6,
    Some("remote_write[1].name"),
    r#"found multiple remote write configs with job name "queue1""#,
);

error_case!(
    remote_read_duplicate_name,
    r#"
remote_read:
  - url: http://a/read
    name: queue1
  - url: http://b/read
    name: queue1
"#,
    6,
    Some("remote_read[1].name"),
    r#"found multiple remote read configs with job name "queue1""#,
);

error_case!(
    remote_write_unknown_protobuf_message,
    r#"
remote_write:
  - url: http://localhost:9201/write
    protobuf_message: io.prometheus.writet.v2.Request
"#,
    4,
    Some("remote_write[0].protobuf_message"),
    "invalid protobuf_message value: unknown type for remote write protobuf message io.prometheus.writet.v2.Request, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
);

error_case!(
    remote_write_sigv4_and_basic_auth,
    r#"
remote_write:
  - url: http://localhost:9201/write
    basic_auth:
      username: u
    sigv4:
      region: eu-west-1
"#,
    6,
    Some("remote_write[0].sigv4"),
    "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be configured",
);

error_case!(
    null_remote_write,
    r#"
remote_write:
  -
"#,
    3,
    Some("remote_write[0]"),
    "empty or null remote write config section",
);

// --- OTLP, tracing ------------------------------------------------------------

error_case!(
    otlp_promote_all_and_specific,
    r#"
otlp:
  promote_all_resource_attributes: true
  promote_resource_attributes: [service.name]
"#,
    4,
    Some("otlp.promote_resource_attributes"),
    "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
);

error_case!(
    otlp_duplicate_attribute,
    r#"
otlp:
  promote_resource_attributes:
    - k8s.job.name
    - " k8s.job.name"
"#,
    5,
    Some("otlp.promote_resource_attributes[1]"),
    r#"duplicated promoted OTel resource attribute "k8s.job.name""#,
);

error_case!(
    otlp_unknown_translation_strategy,
    r#"
otlp:
  translation_strategy: Invalid
"#,
    3,
    Some("otlp.translation_strategy"),
    r#"unsupported OTLP translation strategy "Invalid""#,
);

error_case!(
    otlp_strategy_needs_utf8,
    r#"
global:
  metric_name_validation_scheme: legacy
otlp:
  translation_strategy: NoTranslation
"#,
    5,
    Some("otlp.translation_strategy"),
    r#"OTLP translation strategy "NoTranslation" is not allowed when UTF8 is disabled"#,
);

error_case!(
    tracing_without_endpoint,
    r#"
tracing:
  sampling_fraction: 1
"#,
    3,
    Some("tracing.endpoint"),
    "tracing endpoint must be set",
);

error_case!(
    tracing_bad_compression,
    r#"
tracing:
  endpoint: localhost:4317
  compression: foo
"#,
    4,
    Some("tracing.compression"),
    "invalid compression type foo provided, valid options: gzip",
);

// --- Files --------------------------------------------------------------------

#[test]
fn missing_file_names_the_file() {
    let error = match Config::load("/nonexistent/prometheus.yml") {
        Ok(_) => panic!("should fail"),
        Err(error) => error,
    };
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/prometheus.yml: cannot read the configuration"),
        "{error}"
    );
    assert_eq!(error.position, None);
}

#[test]
fn errors_name_the_given_path() {
    let error = match Config::from_str("global: [1]\n", "/etc/prometheus/prometheus.yml") {
        Ok(_) => panic!("should fail"),
        Err(error) => error,
    };
    assert_eq!(
        error.to_string(),
        "/etc/prometheus/prometheus.yml:1:9: global: cannot unmarshal !!seq into mapping"
    );
}

#[test]
fn errors_give_the_column() {
    let yaml =
        "scrape_configs:\n  - job_name: node\n    scrape_interval: 10s\n    scrape_timeout: 20s\n";
    assert_eq!(
        load_error(yaml).to_string(),
        "prometheus.yml:4:5: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"node\""
    );
}

/// Writes a main config and included scrape config files into a temporary
/// directory and returns the error loading it causes.
fn load_error_with_files(main: &str, files: &[(&str, &str)]) -> (ConfigError, tempfile::TempDir) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent()
            && let Err(e) = fs::create_dir_all(parent)
        {
            panic!("mkdir: {e}");
        }
        if let Err(e) = fs::write(&path, text) {
            panic!("write: {e}");
        }
    }
    let main_path = dir.path().join("prometheus.yml");
    if let Err(e) = fs::write(&main_path, main) {
        panic!("write: {e}");
    }
    match Config::load(&main_path) {
        Ok(config) => panic!("expected an error, loaded {config:#?}"),
        Err(error) => (error, dir),
    }
}

#[test]
fn duplicate_job_across_scrape_config_files() {
    let main = "scrape_config_files: [jobs/*.yml]\nscrape_configs:\n  - job_name: node\n";
    let (error, dir) = load_error_with_files(
        main,
        &[(
            "jobs/extra.yml",
            "scrape_configs:\n  - job_name: other\n  - job_name: node\n",
        )],
    );
    assert_eq!(error.file, dir.path().join("jobs/extra.yml"));
    assert_eq!(error.position.map(|p| p.line), Some(3));
    assert_eq!(error.field.as_deref(), Some("scrape_configs[1].job_name"));
    assert_eq!(
        error.message,
        r#"found multiple scrape configs with job name "node", first found in main config file"#
    );
}

#[test]
fn duplicate_job_between_two_scrape_config_files() {
    let (error, dir) = load_error_with_files(
        "scrape_config_files: [jobs/*.yml]\n",
        &[
            ("jobs/a.yml", "scrape_configs:\n  - job_name: node\n"),
            ("jobs/b.yml", "scrape_configs:\n  - job_name: node\n"),
        ],
    );
    assert_eq!(error.file, dir.path().join("jobs/b.yml"));
    let first = format!("{:?}", dir.path().join("jobs/a.yml").display().to_string());
    assert!(
        error.message.ends_with(&format!("first found in {first}")),
        "{error}"
    );
}

#[test]
fn scrape_config_file_errors_point_into_that_file() {
    let (error, dir) = load_error_with_files(
        "scrape_config_files: [jobs/*.yml]\n",
        &[(
            "jobs/a.yml",
            "scrape_configs:\n  - job_name: node\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
        )],
    );
    let expected_file = dir.path().join("jobs/a.yml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}:4:5: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"node\"",
            expected_file.display()
        )
    );
}

#[test]
fn scrape_config_files_only_hold_scrape_configs() {
    let (error, _dir) = load_error_with_files(
        "scrape_config_files: [jobs/*.yml]\n",
        &[("jobs/a.yml", "global:\n  scrape_interval: 1s\n")],
    );
    assert_eq!(error.field.as_deref(), Some("global"));
    assert!(
        error
            .message
            .starts_with("field global not found in a scrape config file")
    );
}
