//! Scraping over mutual TLS with a rotating `bearer_token_file`: the target (a TLS server in
//! the test, certificates made by rcgen) requires a client certificate from its CA and the
//! current token; the token file is replaced while the job runs and scrapes go on succeeding
//! with the new token, without a reload.

mod common;
#[path = "../../httpclient/tests/support/pki.rs"]
mod pki;

use std::sync::{Arc, Mutex};

use common::{job_config, load_config_in, manager, series, values, wait_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use storage::memory::MemStorage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The token the target accepts, and how many requests it refused.
#[derive(Default)]
struct Gate {
    token: String,
    accepted: u64,
    refused: u64,
}

/// A TLS target on 127.0.0.1 requiring a client certificate signed by `ca` and
/// `Authorization: Bearer <gate.token>`; answers `token_ok 1`. One request per connection.
async fn target(ca: &pki::Ca, gate: Arc<Mutex<Gate>>) -> std::net::SocketAddr {
    let server = ca.issue("target", &["127.0.0.1"]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap_or_else(|e| panic!("{e}"));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![
                CertificateDer::from_pem_slice(server.cert_pem.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}")),
            ],
            PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
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
                let ok = {
                    let mut g = gate.lock().unwrap_or_else(|e| e.into_inner());
                    let ok = auth == format!("Bearer {}", g.token);
                    if ok {
                        g.accepted += 1;
                    } else {
                        g.refused += 1;
                    }
                    ok
                };
                let response = if ok {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 11\r\nConnection: close\r\n\r\ntoken_ok 1\n"
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_over_mtls_with_a_rotating_bearer_token_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = pki::Ca::new("scrape test CA");
    pki::write_atomic(&dir.path().join("ca.crt"), &ca.pem());
    ca.issue("meridian", &["meridian.test"])
        .write(dir.path(), "client");
    pki::write_atomic(&dir.path().join("token"), "token-one\n");
    let gate = Arc::new(Mutex::new(Gate {
        token: "token-one".into(),
        ..Gate::default()
    }));
    let addr = target(&ca, gate.clone()).await;
    let extra = "  scheme: https\n  bearer_token_file: token\n  tls_config:\n    ca_file: ca.crt\n    cert_file: client.crt\n    key_file: client.key\n";
    let storage = MemStorage::new();
    let manager = manager(&storage);
    manager
        .apply_config(&load_config_in(
            &job_config("secure", addr, "100ms", extra),
            dir.path(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = series("token_ok", addr, "secure", &[]);
    wait_until("a scrape with the first token", || {
        !values(&storage, &ok).is_empty()
    })
    .await;

    // Rotate: the target now accepts only the new token, and the file holds it.
    gate.lock().unwrap_or_else(|e| e.into_inner()).token = "token-two".into();
    pki::write_atomic(&dir.path().join("token"), "token-two\n");
    let accepted_before = gate.lock().unwrap_or_else(|e| e.into_inner()).accepted;
    wait_until("scrapes with the rotated token", || {
        gate.lock().unwrap_or_else(|e| e.into_inner()).accepted >= accepted_before + 3
    })
    .await;
    let up = series("up", addr, "secure", &[]);
    let ups = values(&storage, &up);
    assert_eq!(ups.last().copied(), Some(1.0), "{ups:?}");
    let refused = gate.lock().unwrap_or_else(|e| e.into_inner()).refused;
    // At most the scrapes in flight while the token and the file were being swapped.
    assert!(refused <= 2, "{refused} scrapes refused");
    manager.stop().await;
}
