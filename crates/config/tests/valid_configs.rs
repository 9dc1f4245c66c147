//! Loads the valid configurations under `tests/data/` and checks that
//! defaults, inheritance from `global`, path resolution and the merging of
//! `scrape_config_files` come out as Prometheus would have them.

use std::path::{Path, PathBuf};

use config::{
    Config, Duration, KubernetesRole, NameEscapingScheme, RelabelAction, RemoteWriteMessage,
    ScrapeConfig, ScrapeProtocol, TlsVersion,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn load(name: &str) -> Config {
    match Config::load(data_dir().join(name)) {
        Ok(config) => config,
        Err(e) => panic!("{name} should load: {e}"),
    }
}

fn job<'a>(config: &'a Config, name: &str) -> &'a ScrapeConfig {
    match config
        .scrape_configs
        .iter()
        .find(|job| job.job_name == name)
    {
        Some(job) => job,
        None => panic!("no job {name}"),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn empty_file_is_the_default_config() {
    let config = load("empty.yml");
    assert_eq!(config, Config::default());
    assert_eq!(config.global.scrape_interval, Duration::from_mins(1));
    assert_eq!(config.global.scrape_timeout, secs(10));
    assert_eq!(config.global.evaluation_interval, Duration::from_mins(1));
    assert_eq!(config.runtime.gogc, 75);
    assert_eq!(
        config.otlp.translation_strategy.as_str(),
        "UnderscoreEscapingWithSuffixes"
    );
}

#[test]
fn empty_text_and_empty_global_block_load() {
    for text in ["", "global:\n", "global: {}\n"] {
        match Config::from_str(text, "prometheus.yml") {
            Ok(config) => assert_eq!(config, Config::default(), "{text:?}"),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }
}

#[test]
fn shipped_default_config_with_null_lists() {
    let config = load("default.yml");
    assert_eq!(config.global.scrape_interval, secs(15));
    assert_eq!(config.global.scrape_timeout, secs(10));
    assert!(config.rule_files.is_empty());
    assert_eq!(config.alerting.alertmanagers.len(), 1);
    assert!(
        config.alerting.alertmanagers[0].static_configs[0]
            .targets
            .is_empty()
    );
    let prometheus = job(&config, "prometheus");
    assert_eq!(prometheus.scrape_interval, secs(15));
    assert_eq!(prometheus.scrape_timeout, secs(10));
    assert_eq!(prometheus.static_configs[0].targets, ["localhost:9090"]);
    assert_eq!(prometheus.static_configs[0].labels["app"], "prometheus");
    assert_eq!(prometheus.metrics_path, "/metrics");
    assert_eq!(prometheus.scheme, "http");
    assert!(prometheus.honor_timestamps);
    assert!(prometheus.http_client.follow_redirects);
    assert!(prometheus.http_client.enable_http2);
}

#[test]
fn full_config_global_and_inheritance() {
    let config = load("full.yml");
    let dir = data_dir();
    let global = &config.global;
    assert_eq!(global.scrape_interval, secs(30));
    assert_eq!(global.scrape_timeout, secs(20));
    assert_eq!(global.evaluation_interval, secs(90));
    assert_eq!(global.rule_query_offset, secs(10));
    assert_eq!(global.external_labels["cluster"], "eu-1");
    assert_eq!(global.query_log_file, Some(dir.join("logs/queries.log")));
    assert_eq!(global.body_size_limit, 10 * 1024 * 1024);
    assert_eq!(
        global.scrape_protocols.as_deref(),
        Some(
            &[
                ScrapeProtocol::PrometheusText0_0_4,
                ScrapeProtocol::OpenMetricsText1_0_0
            ][..]
        )
    );
    assert_eq!(config.runtime.gogc, 50);
    assert_eq!(
        config.rule_files,
        [
            dir.join("rules/*.yml"),
            PathBuf::from("/etc/prometheus/alerts.yml")
        ]
    );

    let node = job(&config, "node");
    assert_eq!(node.scrape_interval, secs(10));
    // The global timeout (20s) is capped at the job's interval.
    assert_eq!(node.scrape_timeout, secs(10));
    assert_eq!(node.scheme, "https");
    assert_eq!(node.metrics_path, "/custom/metrics");
    assert!(node.honor_labels && !node.honor_timestamps && node.track_timestamps_staleness);
    assert!(!node.enable_compression);
    assert_eq!(node.body_size_limit, 1024 * 1024);
    assert_eq!(node.sample_limit, 1000);
    assert_eq!(node.label_limit, 64, "inherited from global");
    assert_eq!(node.target_limit, 1000, "inherited from global");
    assert_eq!(
        node.scrape_protocols,
        global.scrape_protocols.clone().unwrap_or_default()
    );
    assert_eq!(
        node.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusText0_0_4)
    );
    assert!(node.convert_classic_histograms_to_nhcb && node.always_scrape_classic_histograms);
    assert_eq!(
        node.scrape_failure_log_file,
        Some(PathBuf::from("/var/log/scrape-failures.log"))
    );
    assert_eq!(node.params["module"], ["http_2xx"]);
    assert_eq!(
        node.metric_name_escaping_scheme,
        NameEscapingScheme::AllowUtf8
    );
}

#[test]
fn full_config_http_client_and_paths() {
    let config = load("full.yml");
    let dir = data_dir();
    let node = job(&config, "node");
    let http = &node.http_client;
    let basic_auth = http.basic_auth.as_ref();
    assert_eq!(basic_auth.map(|b| b.username.as_str()), Some("scraper"));
    assert_eq!(
        basic_auth.and_then(|b| b.password_file.clone()),
        Some(dir.join("secrets/password"))
    );
    assert_eq!(http.tls_config.ca_file, Some(dir.join("certs/ca.pem")));
    assert_eq!(
        http.tls_config.cert_file,
        Some(PathBuf::from("/etc/tls/client.pem"))
    );
    assert_eq!(http.tls_config.min_version, Some(TlsVersion::Tls12));
    assert_eq!(http.tls_config.server_name, "node.internal");
    assert_eq!(
        http.proxy.proxy_url.as_ref().map(|u| u.to_string()),
        Some("http://proxy.internal:3128/".to_owned())
    );
    assert!(!http.follow_redirects && !http.enable_http2);
    let header = &http.http_headers["X-Scope-OrgID"];
    assert_eq!(header.values, ["tenant-1"]);
    assert_eq!(header.secrets[0].expose(), "hidden");
    assert_eq!(header.files, [dir.join("headers/extra")]);
    assert_eq!(
        node.file_sd_configs[0].files,
        [
            dir.join("targets/*.json"),
            PathBuf::from("/etc/prometheus/targets.yml")
        ]
    );
    assert_eq!(
        node.file_sd_configs[0].refresh_interval,
        Duration::from_mins(1)
    );

    let federate = job(&config, "federate");
    let authorization = federate.http_client.authorization.as_ref();
    assert_eq!(authorization.map(|a| a.kind.as_str()), Some("Bearer"));
    assert_eq!(
        authorization.and_then(|a| a.credentials_file.clone()),
        Some(dir.join("secrets/token"))
    );
    assert_eq!(federate.params["match[]"], [r#"{job="node"}"#]);

    let bearer = job(&config, "bearer");
    let credentials = bearer
        .http_client
        .authorization
        .as_ref()
        .and_then(|a| a.credentials.as_ref());
    assert_eq!(credentials.map(|c| c.expose()), Some("s3cr3t"));

    let oauth = job(&config, "oauth");
    let oauth2 = oauth.http_client.oauth2.as_ref();
    assert_eq!(
        oauth2.map(|o| o.token_url.as_str()),
        Some("https://auth.example.com/token")
    );
    assert_eq!(
        oauth2.and_then(|o| o.client_secret_file.clone()),
        Some(dir.join("secrets/client-secret"))
    );
}

#[test]
fn full_config_relabeling() {
    let config = load("full.yml");
    let node = job(&config, "node");
    let relabel = &node.relabel_configs;
    assert_eq!(relabel.len(), 5);
    assert_eq!(relabel[0].regex, r"([^:]+):\d+");
    assert_eq!(relabel[0].separator, ";");
    assert_eq!(relabel[0].replacement, "${1}");
    assert_eq!(relabel[0].action, RelabelAction::Replace);
    assert_eq!(relabel[1].action, RelabelAction::LabelDrop);
    assert_eq!(relabel[2].modulus, 4);
    assert_eq!(relabel[3].action, RelabelAction::Keep);
    assert_eq!(relabel[4].action, RelabelAction::Lowercase);
    assert_eq!(node.metric_relabel_configs[0].action, RelabelAction::Drop);
}

#[test]
fn full_config_alerting_remote_and_the_rest() {
    let config = load("full.yml");
    let alerting = &config.alerting;
    assert_eq!(
        alerting.alert_relabel_configs[0].action,
        RelabelAction::LabelDrop
    );
    let first = &alerting.alertmanagers[0];
    assert_eq!(first.scheme, "https");
    assert_eq!(first.path_prefix, "/alertmanager");
    assert_eq!(first.timeout, secs(5));
    assert_eq!(first.api_version, "v2");
    assert_eq!(first.static_configs[0].targets, ["am-1:9093", "am-2:9093"]);
    let second = &alerting.alertmanagers[1];
    assert_eq!(second.timeout, secs(10));
    assert_eq!(second.path_prefix, "/");
    assert_eq!(second.kubernetes_sd_configs[0].role, KubernetesRole::Pod);

    let primary = &config.remote_write[0];
    assert_eq!(primary.name, "primary");
    assert_eq!(primary.remote_timeout, secs(10));
    assert_eq!(primary.protobuf_message, RemoteWriteMessage::V2);
    assert!(primary.send_exemplars && primary.send_native_histograms);
    assert_eq!(primary.queue_config.capacity, 2500);
    assert_eq!(primary.queue_config.max_shards, 200);
    assert_eq!(primary.queue_config.min_shards, 1);
    assert_eq!(primary.queue_config.min_backoff, Duration::from_millis(30));
    assert!(!primary.queue_config.retry_on_http_429);
    assert_eq!(
        primary.queue_config.sample_age_limit,
        Duration::from_mins(60)
    );
    assert!(primary.metadata_config.send);
    assert_eq!(
        primary.metadata_config.send_interval,
        Duration::from_mins(2)
    );
    assert!(
        !primary.http_client.enable_http2,
        "remote write defaults to HTTP/1.1"
    );
    assert!(!primary.url.to_string().contains("pass@"));
    assert_eq!(primary.url.expose().password(), Some("pass"));
    let backup = &config.remote_write[1];
    assert_eq!(backup.queue_config, config::QueueConfig::default());
    assert_eq!(backup.remote_timeout, secs(30));
    assert_eq!(
        backup.sigv4.as_ref().map(|s| s.region.as_str()),
        Some("eu-west-1")
    );

    let read = &config.remote_read[0];
    assert_eq!(read.remote_timeout, Duration::from_mins(1));
    assert!(read.read_recent && !read.filter_external_labels);
    assert_eq!(read.required_matchers["source"], "archive");

    let tsdb = config.storage.tsdb.as_ref();
    assert_eq!(
        tsdb.map(|t| t.out_of_order_time_window),
        Some(Duration::from_mins(30))
    );
    assert_eq!(
        config.storage.exemplars.as_ref().map(|e| e.max_exemplars),
        Some(500_000)
    );
    assert_eq!(
        config.otlp.promote_resource_attributes,
        ["service.instance.id", "deployment.environment"]
    );
    let tracing = config.tracing.as_ref();
    assert_eq!(
        tracing.map(|t| t.endpoint.as_str()),
        Some("otel-collector:4317")
    );
    assert_eq!(tracing.map(|t| t.timeout), Some(secs(5)));
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let config = load("full.yml");
    let debug = format!("{config:?}");
    for secret in ["s3cr3t", "hunter2", "hidden", ":pass@", "\"secret\""] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
    assert!(debug.contains("<secret>"));
}

#[test]
fn kubernetes_discovery() {
    let config = load("kubernetes.yml");
    let dir = data_dir();
    let pods = job(&config, "kubernetes-pods");
    let sd = &pods.kubernetes_sd_configs[0];
    assert_eq!(sd.role, KubernetesRole::Pod);
    assert!(sd.namespaces.own_namespace);
    assert_eq!(sd.namespaces.names, ["apps"]);
    assert_eq!(sd.selectors.len(), 2);
    assert_eq!(sd.selectors[1].role, KubernetesRole::Node);
    assert!(sd.attach_metadata.node);
    assert!(sd.api_server.is_none());
    assert_eq!(pods.relabel_configs[0].regex, "true");
    assert_eq!(pods.relabel_configs[2].action, RelabelAction::LabelMap);

    let remote = job(&config, "remote-cluster");
    let endpoint_slices = &remote.kubernetes_sd_configs[0];
    assert_eq!(endpoint_slices.role, KubernetesRole::EndpointSlice);
    assert_eq!(
        endpoint_slices.api_server.as_ref().map(|u| u.to_string()),
        Some("https://k8s.example.com:6443/".to_owned())
    );
    assert_eq!(
        endpoint_slices
            .http_client
            .authorization
            .as_ref()
            .and_then(|a| a.credentials_file.clone()),
        Some(dir.join("tokens/remote"))
    );
    assert_eq!(
        endpoint_slices.http_client.tls_config.ca_file,
        Some(dir.join("certs/remote-ca.pem"))
    );
    assert_eq!(
        remote.kubernetes_sd_configs[1].kubeconfig_file,
        Some(dir.join("kubeconfig.yml"))
    );
}

#[test]
fn anchors_and_merge_keys() {
    let config = load("anchors.yml");
    let http = job(&config, "blackbox-http");
    let tcp = job(&config, "blackbox-tcp");
    assert_eq!(tcp.scrape_interval, secs(20));
    assert_eq!(tcp.metrics_path, "/probe");
    assert_eq!(tcp.params["module"], ["tcp_connect"]);
    assert_eq!(tcp.relabel_configs, http.relabel_configs);
    assert_eq!(tcp.static_configs, http.static_configs);
}

#[test]
fn scrape_config_files_are_merged_in_name_order() {
    let config = load("with_scrape_config_files.yml");
    let dir = data_dir();
    let names: Vec<&str> = config
        .scrape_configs
        .iter()
        .map(|job| job.job_name.as_str())
        .collect();
    assert_eq!(names, ["main", "from-file-a", "from-file-b"]);
    assert_eq!(
        config.scrape_config_files,
        [dir.join("scrape_configs/*.yml")]
    );
    let a = job(&config, "from-file-a");
    assert_eq!(
        a.scrape_interval,
        secs(20),
        "global applies to included files"
    );
    // Paths in an included file are relative to that file.
    assert_eq!(
        a.http_client
            .authorization
            .as_ref()
            .and_then(|auth| auth.credentials_file.clone()),
        Some(dir.join("scrape_configs/token-a"))
    );
    let b = job(&config, "from-file-b");
    assert_eq!(b.scrape_interval, Duration::from_mins(1));
    assert_eq!(b.scrape_timeout, secs(10));
    assert_eq!(
        b.file_sd_configs[0].files,
        [dir.join("scrape_configs/targets-b.json")]
    );
}

#[test]
fn external_labels_expand_environment_variables() {
    // Reads HOME and a variable nobody sets; the test sets nothing itself.
    let yaml = "global:\n  external_labels:\n    home: \"${HOME}\"\n    literal: \"$$HOME\"\n    unset: \"x${MERIDIAN_CONFIG_TEST_UNSET_VARIABLE}y\"\n";
    let config = match Config::from_str(yaml, "prometheus.yml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    let labels = &config.global.external_labels;
    assert_eq!(labels["home"], std::env::var("HOME").unwrap_or_default());
    assert_eq!(labels["literal"], "$HOME");
    assert_eq!(labels["unset"], "xy");
}

#[test]
fn legacy_name_validation_changes_defaults() {
    let yaml =
        "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n";
    let config = match Config::from_str(yaml, "prometheus.yml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    let a = job(&config, "a");
    assert_eq!(
        a.metric_name_escaping_scheme,
        NameEscapingScheme::Underscores
    );
}
