//! The secure setup end to end, certificates made in the test with rcgen:
//!
//! - with the real Prometheus (Debian's 2.42): a Meridian serving over mutual TLS
//!   (`--web.config.file` with RequireAndVerifyClientCert) receives data by remote write over
//!   TLS, and a real Prometheus federates from it with a client certificate; a Prometheus job
//!   without a certificate is refused;
//! - the seeds' topology: two cluster-local Meridians serve `/federate` over mTLS, and a
//!   central Meridian (itself behind mTLS and basic auth) federates from both with its client
//!   certificate, each series carrying its cluster's external `cluster` label.
//!
//! Every process listens on 127.0.0.1 on a port picked here and is stopped by its PID.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "../../httpclient/tests/support/pki.rs"]
mod pki;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use config::{HttpClientConfig, TlsConfig};
use httpclient::HttpClient;
use serde_json::Value;

const MERIDIAN: &str = env!("CARGO_BIN_EXE_meridian");

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `method url` with `client`: status and body, or the transport error.
fn call(
    client: &HttpClient,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    runtime().block_on(async {
        let mut request = client.request(method, url)?.body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| httpclient::error_chain(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, bytes.to_vec()))
    })
}

fn get(client: &HttpClient, url: &str) -> Result<(u16, Vec<u8>), String> {
    call(client, reqwest::Method::GET, url, &[], Vec::new())
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Files {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    web_config: PathBuf,
}

fn make_files(dir: &Path) -> Files {
    let ca = pki::Ca::new("interop CA");
    let ca_file = dir.join("ca.crt");
    pki::write_atomic(&ca_file, &ca.pem());
    let (server_cert, server_key) = ca.issue("meridian", &["127.0.0.1"]).write(dir, "server");
    let (client_cert, client_key) = ca
        .issue("prometheus", &["prometheus.test"])
        .write(dir, "prometheus");
    let web_config = dir.join("web.yml");
    std::fs::write(
        &web_config,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            server_cert.display(),
            server_key.display(),
            ca_file.display()
        ),
    )
    .unwrap();
    Files {
        ca: ca_file,
        client_cert,
        client_key,
        web_config,
    }
}

fn tls_client(files: &Files, with_cert: bool) -> HttpClient {
    HttpClient::new(
        &HttpClientConfig {
            tls_config: TlsConfig {
                ca_file: Some(files.ca.clone()),
                cert_file: with_cert.then(|| files.client_cert.clone()),
                key_file: with_cert.then(|| files.client_key.clone()),
                ..TlsConfig::default()
            },
            ..HttpClientConfig::default()
        },
        "interop-test",
    )
    .unwrap()
}

/// Ten counters, five samples each, ending a little before now.
fn dataset() -> Vec<u8> {
    use remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    let now = model::sample::now_ms();
    let base = (now - 5 * 60 * 1000) / 15_000 * 15_000;
    let timeseries = (0..10)
        .map(|i| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "secure_requests_total".into(),
                },
                Label {
                    name: "instance".into(),
                    value: format!("h{i}"),
                },
            ],
            samples: (0..5)
                .map(|k| Sample {
                    value: (k * (i + 1)) as f64,
                    timestamp: base + k * 15_000,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    remote::encode_write_request(&WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

/// The result of an instant query against Prometheus (plain HTTP).
fn prom_query(addr: SocketAddr, q: &str) -> Vec<Value> {
    let plain = HttpClient::new(&HttpClientConfig::default(), "interop-test").unwrap();
    let mut url = format!("http://{addr}/api/v1/query?query=");
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    let Ok((200, body)) = get(&plain, &url) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Starts a Meridian with `config` (YAML) and `web_config` in a directory of its own under
/// `dir`, and waits until it is ready (over TLS with `client`).
fn start_meridian(
    dir: &Path,
    name: &str,
    config: &str,
    web_config: &Path,
    client: &HttpClient,
) -> (Proc, SocketAddr) {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let config_file = home.join("meridian.yml");
    std::fs::write(&config_file, config).unwrap();
    let addr = free_addr();
    let proc = Proc {
        child: Command::new(MERIDIAN)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                home.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--web.config.file={}", web_config.display()))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    wait_until("meridian ready over TLS", || {
        matches!(
            get(client, &format!("https://{addr}/-/ready")),
            Ok((200, _))
        )
    });
    (proc, addr)
}

fn remote_write(client: &HttpClient, addr: SocketAddr, body: Vec<u8>) {
    let (code, answer) = call(
        client,
        reqwest::Method::POST,
        &format!("https://{addr}/api/v1/write"),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        body,
    )
    .unwrap();
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&answer));
}

#[test]
fn the_real_prometheus_federates_from_meridian_over_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_files(dir.path());
    let good = tls_client(&files, true);
    let (_meridian, meridian_addr) = start_meridian(
        dir.path(),
        "meridian",
        "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: secure\n",
        &files.web_config,
        &good,
    );
    let base = format!("https://{meridian_addr}");
    // Without a client certificate: no answer at all; plain HTTP neither.
    assert!(get(&tls_client(&files, false), &format!("{base}/-/ready")).is_err());
    let plain = HttpClient::new(&HttpClientConfig::default(), "t").unwrap();
    assert!(!matches!(
        get(&plain, &format!("http://{meridian_addr}/-/ready")),
        Ok((200, _))
    ));
    remote_write(&good, meridian_addr, dataset());

    let prom_addr = free_addr();
    let prom_config = dir.path().join("prometheus.yml");
    let tls = |cert: bool| {
        let mut s = format!("    tls_config:\n      ca_file: {}\n", files.ca.display());
        if cert {
            s.push_str(&format!(
                "      cert_file: {}\n      key_file: {}\n",
                files.client_cert.display(),
                files.client_key.display()
            ));
        }
        s
    };
    let job = |name: &str, cert: bool| {
        format!(
            "  - job_name: {name}\n    honor_labels: true\n    metrics_path: /federate\n    scheme: https\n    params:\n      'match[]': ['{{__name__=\"secure_requests_total\"}}']\n{}    static_configs:\n      - targets: ['{meridian_addr}']\n",
            tls(cert)
        )
    };
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("federate", true),
            job("nocert", false)
        ),
    )
    .unwrap();
    let _prometheus = Proc {
        child: Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the real Prometheus must be installed (scripts/test installs Debian's prometheus package)"),
    };
    wait_until("prometheus listening", || {
        TcpStream::connect(prom_addr).is_ok()
    });
    wait_until("federated series in prometheus", || {
        prom_query(prom_addr, "secure_requests_total{cluster=\"secure\"}").len() == 10
    });
    let up = |job: &str| {
        prom_query(prom_addr, &format!("up{{job=\"{job}\"}}"))
            .first()
            .and_then(|r| r["value"][1].as_str().map(str::to_owned))
    };
    wait_until("both jobs scraped", || up("nocert").is_some());
    assert_eq!(up("federate").as_deref(), Some("1"));
    assert_eq!(
        up("nocert").as_deref(),
        Some("0"),
        "a scrape without a client certificate must fail"
    );
    let latest = prom_query(
        prom_addr,
        "secure_requests_total{cluster=\"secure\", instance=\"h9\"}",
    );
    assert_eq!(latest[0]["value"][1], "40", "{latest:?}");
    println!(
        "prometheus 2.42 federated 10 series from meridian over mTLS; the job without a certificate is down"
    );
}

/// The instant-query result of `q` on a Meridian over TLS.
fn meridian_query(client: &HttpClient, addr: SocketAddr, q: &str) -> Vec<Value> {
    let mut url = format!("https://{addr}/api/v1/query?query=");
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    let Ok((200, body)) = get(client, &url) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_central_meridian_federates_two_cluster_meridians_over_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_files(dir.path());
    let good = tls_client(&files, true);
    let mut clusters = Vec::new();
    for cluster in ["east", "west"] {
        let (proc, addr) = start_meridian(
            dir.path(),
            cluster,
            &format!(
                "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: {cluster}\n"
            ),
            &files.web_config,
            &good,
        );
        remote_write(&good, addr, dataset());
        clusters.push((proc, addr));
    }
    // The central Meridian is itself behind mTLS and basic auth.
    let hash = bcrypt::hash("central-password", 4).unwrap();
    let central_web = dir.path().join("central-web.yml");
    std::fs::write(
        &central_web,
        format!(
            "{}basic_auth_users:\n  ops: '{hash}'\n",
            std::fs::read_to_string(&files.web_config).unwrap()
        ),
    )
    .unwrap();
    let targets = clusters
        .iter()
        .map(|(_, addr)| format!("'{addr}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let central_config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    scheme: https\n    params:\n      'match[]': ['{{__name__=\"secure_requests_total\"}}']\n    tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n    static_configs:\n      - targets: [{targets}]\n",
        files.ca.display(),
        files.client_cert.display(),
        files.client_key.display()
    );
    let ops = HttpClient::new(
        &HttpClientConfig {
            basic_auth: Some(config::BasicAuth {
                username: "ops".into(),
                password: Some(config::Secret::new("central-password")),
                ..config::BasicAuth::default()
            }),
            tls_config: TlsConfig {
                ca_file: Some(files.ca.clone()),
                cert_file: Some(files.client_cert.clone()),
                key_file: Some(files.client_key.clone()),
                ..TlsConfig::default()
            },
            ..HttpClientConfig::default()
        },
        "interop-test",
    )
    .unwrap();
    let (_central, central) =
        start_meridian(dir.path(), "central", &central_config, &central_web, &ops);
    // A certificate alone is not enough at the center.
    assert!(matches!(
        get(&good, &format!("https://{central}/-/ready")),
        Ok((401, _))
    ));
    wait_until("both clusters federated into the central Meridian", || {
        meridian_query(&ops, central, "count by (cluster) (secure_requests_total)").len() == 2
    });
    for cluster in ["east", "west"] {
        let got = meridian_query(
            &ops,
            central,
            &format!("secure_requests_total{{cluster=\"{cluster}\", instance=\"h9\"}}"),
        );
        assert_eq!(got.len(), 1, "{cluster}: {got:?}");
        assert_eq!(got[0]["value"][1], "40", "{cluster}: {got:?}");
    }
    let up = meridian_query(&ops, central, "up{job=\"federate\"}");
    assert_eq!(up.len(), 2, "{up:?}");
    assert!(up.iter().all(|r| r["value"][1] == "1"), "{up:?}");
    println!("central meridian federated 2 clusters x 10 series over mTLS");
}

/// The remote-write leg of the seeds' secure topology: a cluster-local Meridian sends what it
/// holds to a central Meridian that requires client certificates, over TLS with its client
/// certificate and a `bearer_token_file` (read at each request), and the central server ends
/// up with the cluster's series under the cluster's external label.
#[test]
fn a_cluster_meridian_remote_writes_to_the_central_over_mtls_with_a_bearer_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_files(dir.path());
    let good = tls_client(&files, true);
    let (_central, central) = start_meridian(
        dir.path(),
        "central",
        "global:\n  scrape_interval: 1h\n",
        &files.web_config,
        &good,
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "cluster-edge-token\n").unwrap();
    let cluster_config = format!(
        "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: edge\nremote_write:\n  - url: https://{central}/api/v1/write\n    bearer_token_file: {}\n    tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 100ms\n",
        token.display(),
        files.ca.display(),
        files.client_cert.display(),
        files.client_key.display()
    );
    let (_cluster, cluster) = start_meridian(
        dir.path(),
        "edge",
        &cluster_config,
        &files.web_config,
        &good,
    );
    // Samples reach the cluster server (here by remote write from the test; in a cluster they
    // would be scraped) and its WAL-fed queue forwards them.
    remote_write(&good, cluster, dataset());
    wait_until("the cluster's series at the central Meridian", || {
        meridian_query(
            &good,
            central,
            "count(secure_requests_total{cluster=\"edge\"})",
        )
        .first()
        .is_some_and(|r| r["value"][1] == "10")
    });
    let got = meridian_query(
        &good,
        central,
        "secure_requests_total{cluster=\"edge\", instance=\"h9\"}",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["value"][1], "40", "{got:?}");
    println!("cluster meridian remote-wrote 10 series to the central meridian over mTLS");
}
