//! The client against a TLS server that requires client certificates (all certificates made
//! in the test): CA and client certificate from files, `server_name`, `insecure_skip_verify`,
//! bearer token and basic auth files re-read at each request, client certificate rotation,
//! and secrets kept out of errors and Debug output.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "support/pki.rs"]
mod pki;

use std::path::Path;
use std::sync::{Arc, Mutex};

use config::{Authorization, BasicAuth, HttpClientConfig, Secret, TlsConfig};
use httpclient::HttpClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server saw of each request: the client certificate and the Authorization header.
#[derive(Default)]
struct Seen {
    peers: Vec<Vec<u8>>,
    auth: Vec<String>,
}

/// A TLS server on 127.0.0.1 that requires a client certificate signed by `client_ca`, and
/// answers every request with its Authorization header. One request per connection.
async fn server(
    server_cert: &pki::Issued,
    client_ca: &pki::Ca,
) -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca.pem().as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server_cert.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(server_cert.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec())
                    .unwrap_or_default();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let auth = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                {
                    let mut s = seen.lock().unwrap();
                    s.peers.push(peer);
                    s.auth.push(auth.clone());
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{auth}",
                    auth.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, seen)
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn tls_files(dir: &Path, ca: &pki::Ca, client: &pki::Issued) -> TlsConfig {
    let ca_file = dir.join("ca.crt");
    pki::write_atomic(&ca_file, &ca.pem());
    let (cert_file, key_file) = client.write(dir, "client");
    TlsConfig {
        ca_file: Some(ca_file),
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        ..TlsConfig::default()
    }
}

async fn get(client: &HttpClient, url: &str) -> Result<String, String> {
    let response = client
        .request(reqwest::Method::GET, url)?
        .send()
        .await
        .map_err(|e| httpclient::error_chain(&e))?;
    response.text().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn mtls_with_rotating_bearer_token_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("test CA");
    let server_cert = ca.issue("server", &["127.0.0.1", "meridian.test"]);
    let (addr, seen) = server(&server_cert, &ca).await;
    let client_cert = ca.issue("scraper", &["scraper.test"]);
    let token = dir.path().join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let cfg = HttpClientConfig {
        authorization: Some(Authorization {
            kind: "Bearer".into(),
            credentials: None,
            credentials_file: Some(token.clone()),
        }),
        tls_config: tls_files(dir.path(), &ca, &client_cert),
        ..HttpClientConfig::default()
    };
    let client = HttpClient::new(&cfg, "meridian-test").unwrap();
    let url = format!("https://{addr}/metrics");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer first-token");

    // The token file is rotated: the next request carries the new token, same client.
    pki::write_atomic(&token, "second-token");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer second-token");

    // The client certificate is rotated: the next handshake presents the new one.
    let rotated = ca.issue("scraper-rotated", &["scraper.test"]);
    rotated.write(dir.path(), "client");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer second-token");
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.peers.len(), 3);
        assert_eq!(s.peers[0], der(&client_cert.cert_pem));
        assert_eq!(s.peers[1], der(&client_cert.cert_pem));
        assert_eq!(
            s.peers[2],
            der(&rotated.cert_pem),
            "rotated client certificate used"
        );
    }

    // A missing token file fails the request with an error naming the file, not a secret.
    std::fs::remove_file(&token).unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(
        err.contains("credentials_file") && err.contains("token"),
        "{err}"
    );
}

#[tokio::test]
async fn server_certificates_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("test CA");
    // The server's certificate is valid for a name only, not for the address we dial.
    let server_cert = ca.issue("server", &["meridian.test"]);
    let (addr, _) = server(&server_cert, &ca).await;
    let client_cert = ca.issue("client", &["client.test"]);
    let tls = tls_files(dir.path(), &ca, &client_cert);
    let url = format!("https://{addr}/");

    let plain = HttpClient::new(
        &HttpClientConfig {
            tls_config: tls.clone(),
            ..HttpClientConfig::default()
        },
        "t",
    )
    .unwrap();
    let err = get(&plain, &url).await.unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    let named = HttpClient::new(
        &HttpClientConfig {
            tls_config: TlsConfig {
                server_name: "meridian.test".into(),
                ..tls.clone()
            },
            ..HttpClientConfig::default()
        },
        "t",
    )
    .unwrap();
    assert_eq!(get(&named, &url).await.unwrap(), "");

    // A CA that did not sign the server's certificate.
    let other = pki::Ca::new("other CA");
    let other_ca = dir.path().join("other.crt");
    std::fs::write(&other_ca, other.pem()).unwrap();
    let wrong_ca = HttpClient::new(
        &HttpClientConfig {
            tls_config: TlsConfig {
                ca_file: Some(other_ca),
                server_name: "meridian.test".into(),
                ..tls.clone()
            },
            ..HttpClientConfig::default()
        },
        "t",
    )
    .unwrap();
    assert!(get(&wrong_ca, &url).await.is_err());

    let insecure = HttpClient::new(
        &HttpClientConfig {
            tls_config: TlsConfig {
                insecure_skip_verify: true,
                ca_file: None,
                ..tls
            },
            ..HttpClientConfig::default()
        },
        "t",
    )
    .unwrap();
    assert_eq!(get(&insecure, &url).await.unwrap(), "");
}

#[tokio::test]
async fn basic_auth_password_file_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("test CA");
    let server_cert = ca.issue("server", &["127.0.0.1"]);
    let (addr, _) = server(&server_cert, &ca).await;
    let client_cert = ca.issue("client", &["client.test"]);
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2").unwrap();
    let cfg = HttpClientConfig {
        basic_auth: Some(BasicAuth {
            username: "alice".into(),
            password_file: Some(password.clone()),
            ..BasicAuth::default()
        }),
        tls_config: TlsConfig {
            key: Some(Secret::new(client_cert.key_pem.clone())),
            cert: Some(client_cert.cert_pem.clone()),
            ..tls_files(dir.path(), &ca, &client_cert)
        },
        ..HttpClientConfig::default()
    };
    let cfg = HttpClientConfig {
        tls_config: TlsConfig {
            cert_file: None,
            key_file: None,
            ..cfg.tls_config
        },
        ..cfg
    };
    let client = HttpClient::new(&cfg, "t").unwrap();
    let url = format!("https://{addr}/");
    // "alice:hunter2" in base64.
    assert_eq!(
        get(&client, &url).await.unwrap(),
        "Basic YWxpY2U6aHVudGVyMg=="
    );
    std::fs::write(&password, "correct horse").unwrap();
    assert_eq!(
        get(&client, &url).await.unwrap(),
        "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="
    );
    let debug = format!("{client:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(!debug.contains("correct horse"));

    // A broken key is refused at construction, without echoing it.
    let bad = HttpClientConfig {
        tls_config: TlsConfig {
            key: Some(Secret::new(
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
            )),
            ..cfg.tls_config.clone()
        },
        ..cfg.clone()
    };
    let err = HttpClient::new(&bad, "t").unwrap_err();
    assert!(!err.contains("c2VjcmV0"), "{err}");
}

#[tokio::test]
async fn a_replaced_ca_file_applies_to_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = pki::Ca::new("old CA");
    let new_ca = pki::Ca::new("new CA");
    let client_cert = old_ca.issue("client", &["client.test"]);
    // Both servers accept the same client certificate (signed by the old CA); the second one
    // presents a certificate from the new CA.
    let (old_addr, _) = server(&old_ca.issue("old", &["127.0.0.1"]), &old_ca).await;
    let (new_addr, _) = server(&new_ca.issue("new", &["127.0.0.1"]), &old_ca).await;
    let tls = tls_files(dir.path(), &old_ca, &client_cert);
    let ca_file = tls.ca_file.clone().unwrap();
    let client = HttpClient::new(
        &HttpClientConfig {
            tls_config: tls,
            ..HttpClientConfig::default()
        },
        "t",
    )
    .unwrap();
    assert!(get(&client, &format!("https://{old_addr}/")).await.is_ok());
    assert!(get(&client, &format!("https://{new_addr}/")).await.is_err());
    pki::write_atomic(&ca_file, &new_ca.pem());
    assert!(get(&client, &format!("https://{new_addr}/")).await.is_ok());
    assert!(get(&client, &format!("https://{old_addr}/")).await.is_err());
}

#[tokio::test]
async fn proxy_url_and_proxy_connect_header() {
    // A "proxy" that records the request head it gets and refuses it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = tx.send(String::from_utf8_lossy(&head).to_string());
    });
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  proxy_url: http://127.0.0.1:{}\n  proxy_connect_header:\n    X-Proxy-Token: [abc]\n  static_configs:\n  - targets: [x]\n",
        addr.port()
    );
    let config = config::Config::from_str(&yaml, "/tmp/prometheus.yml").unwrap();
    let client = HttpClient::new(&config.scrape_configs[0].http_client, "t").unwrap();
    assert!(
        get(&client, "https://target.example:9100/metrics")
            .await
            .is_err()
    );
    let head = rx.await.unwrap();
    assert!(
        head.starts_with("CONNECT target.example:9100 HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-proxy-token: abc"),
        "{head}"
    );
    assert!(!format!("{client:?}").contains("abc"));
}
