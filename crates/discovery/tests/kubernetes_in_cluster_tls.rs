//! In-cluster configuration over a real TLS handshake: the fake API server (`k8s/fake.rs`)
//! serves HTTPS with a certificate for 127.0.0.1 signed by a CA made in the test (rcgen,
//! `httpclient/tests/support/pki.rs`); discovery finds it through `KUBERNETES_SERVICE_HOST`
//! and `KUBERNETES_SERVICE_PORT` of this process, and takes the CA and the bearer token
//! from a service-account directory of the test. A rotated token file is sent with the next
//! request; a CA that did not sign the server's certificate fails with a clear error.
//!
//! One test only in this binary: it sets the process environment, which is sound only while
//! no other thread reads it (the runtime is single-threaded and starts no client before).

#![cfg(feature = "kubernetes")]

#[path = "k8s/fake.rs"]
mod fake;
#[path = "../../httpclient/tests/support/pki.rs"]
mod pki;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use config::Config;
use discovery::kubernetes::transport::describe_error;
use discovery::kubernetes::{ClusterEnvironment, KubernetesSd};
use discovery::{DiscovererOptions, SdConfig, TargetGroup};
use fake::FakeApiServer;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::sync::mpsc;

fn pod(name: &str, ip: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "ns", "uid": name},
        "spec": {"containers": [{"name": "c", "image": "i",
                                 "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip},
    })
}

/// A pod-role config with no `api_server`: in-cluster configuration.
fn in_cluster_sd(environment: ClusterEnvironment) -> KubernetesSd {
    let yaml = "scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n  - role: pod\n";
    let config = Config::from_str(yaml, "test.yml").expect("config loads");
    let job = config.scrape_configs.into_iter().next().expect("a job");
    let sd = job.kubernetes_sd_configs.into_iter().next().expect("an sd");
    KubernetesSd::with_environment(sd, environment).with_min_backoff(Duration::from_millis(20))
}

/// The TLS settings of a server with a certificate for 127.0.0.1 issued by `ca`.
fn server_tls(ca: &pki::Ca) -> Arc<rustls::ServerConfig> {
    let issued = ca.issue("kubernetes", &["127.0.0.1"]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("cert");
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    Arc::new(config)
}

/// A service-account directory: `ca.crt`, `token`, `namespace`.
fn service_account(dir: &Path, ca_pem: &str, token: &str) {
    pki::write_atomic(&dir.join("ca.crt"), ca_pem);
    pki::write_atomic(&dir.join("token"), token);
    pki::write_atomic(&dir.join("namespace"), "ns\n");
}

/// Collects updates until `sources` are all present.
async fn until_sources(
    updates: &mut mpsc::Receiver<Vec<TargetGroup>>,
    seen: &mut BTreeSet<String>,
    sources: &[&str],
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sources.iter().all(|s| seen.contains(*s)) {
        match tokio::time::timeout_at(deadline, updates.recv()).await {
            Ok(Some(groups)) => {
                for group in groups {
                    if group.targets.is_empty() {
                        seen.remove(&group.source);
                    } else {
                        seen.insert(group.source);
                    }
                }
            }
            Ok(None) => panic!("discoverer stopped"),
            Err(_) => panic!("timed out waiting for {sources:?}; have {seen:?}"),
        }
    }
}

#[test]
fn in_cluster_configuration_over_tls() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(scenario());
}

async fn scenario() {
    let ca = pki::Ca::new("cluster CA");
    let server = FakeApiServer::start_tls(server_tls(&ca)).await;
    server.apply("pods", pod("a", "10.0.0.1"));

    // SAFETY: this binary's only test runs on a single-threaded runtime, and nothing has read
    // the environment or started a thread that could since the process began.
    unsafe {
        std::env::set_var("KUBERNETES_SERVICE_HOST", "127.0.0.1");
        std::env::set_var("KUBERNETES_SERVICE_PORT", server.addr.port().to_string());
    }

    let dir = tempfile::tempdir().expect("tempdir");
    service_account(dir.path(), &ca.pem(), "first-token\n");
    let environment = ClusterEnvironment::with_service_account_dir(dir.path());
    assert_eq!(environment.service_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(environment.scheme, "https");
    let sd = in_cluster_sd(environment);
    let connection = sd.connection().expect("in-cluster connection");
    assert_eq!(
        connection.base.as_str(),
        format!("https://127.0.0.1:{}/", server.addr.port())
    );

    // Discovery over TLS, with the service account's token.
    let (sender, mut updates) = mpsc::channel(64);
    let task = tokio::spawn(sd.discoverer(&DiscovererOptions::default()).run(sender));
    let mut seen = BTreeSet::new();
    until_sources(&mut updates, &mut seen, &["pod/ns/a"]).await;
    while server.open_watches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer first-token")),
        "{requests:#?}"
    );

    // The kubelet rotates the token: the next request (the watch reconnecting) carries it.
    pki::write_atomic(&dir.path().join("token"), "second-token\n");
    server.close_watches();
    server.apply("pods", pod("b", "10.0.0.2"));
    until_sources(&mut updates, &mut seen, &["pod/ns/a", "pod/ns/b"]).await;
    let requests = server.requests();
    let last = requests.last().expect("requests");
    assert_eq!(
        last.authorization.as_deref(),
        Some("Bearer second-token"),
        "{requests:#?}"
    );
    task.abort();

    // A CA that did not sign the server's certificate: the handshake fails, and the error
    // says why.
    let other = tempfile::tempdir().expect("tempdir");
    service_account(
        other.path(),
        &pki::Ca::new("some other CA").pem(),
        "first-token\n",
    );
    let sd = in_cluster_sd(ClusterEnvironment::with_service_account_dir(other.path()));
    let (client, _) = sd.client().expect("client builds");
    let before = server.requests().len();
    let error = Api::<Pod>::all(client)
        .list(&ListParams::default())
        .await
        .expect_err("an untrusted server certificate fails the request");
    let message = describe_error(&error);
    assert!(
        message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "https://127.0.0.1:{}/api/v1/pods",
            server.addr.port()
        )),
        "{message}"
    );
    assert_eq!(server.requests().len(), before, "no request got through");
}
