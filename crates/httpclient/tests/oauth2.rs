//! `oauth2` against a token server on 127.0.0.1 issuing short-lived tokens: the token is
//! fetched once, reused, and fetched again when it is about to expire; the request's form
//! and client authentication are what Go's client sends; a changed `client_secret_file` is
//! picked up; a server that wants the credentials as form parameters is served so; the
//! token endpoint is reached through the block's own TLS settings and proxy; failures are
//! clean request errors that quote no secret.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "support/pki.rs"]
mod pki;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use config::{HttpClientConfig, OAuth2, Secret, TlsConfig};
use httpclient::HttpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the token server accepts and how it answers.
#[derive(Default)]
struct Issuer {
    client_id: String,
    secret: String,
    /// `expires_in` of issued tokens; `None`: none sent.
    expires_in: Option<i64>,
    /// Refuse credentials in the Authorization header (wants form parameters).
    params_only: bool,
    /// Answer every request with this status and body.
    fail: Option<(u16, String)>,
    delay: Duration,
    issued: u32,
    requests: Vec<TokenRequest>,
}

#[derive(Clone, Debug)]
struct TokenRequest {
    authorization: String,
    form: BTreeMap<String, String>,
    user_agent: String,
}

type Shared = Arc<Mutex<Issuer>>;

/// Standard base64 with padding (test-side, to build the expected basic auth header).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn token(
    State(issuer): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let delay = issuer.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut s = issuer.lock().unwrap();
    s.requests.push(TokenRequest {
        authorization: header("authorization"),
        form: form.clone(),
        user_agent: header("user-agent"),
    });
    if let Some((status, body)) = s.fail.clone() {
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    // Go escapes the id and secret (form encoding) before basic auth; the test ids and
    // secrets have characters that show it.
    let escape = |t: &str| t.replace(' ', "+").replace('/', "%2F").replace('!', "%21");
    let basic = format!(
        "Basic {}",
        base64(format!("{}:{}", escape(&s.client_id), escape(&s.secret)).as_bytes())
    );
    let by_header = !s.params_only && header("authorization") == basic;
    let by_params =
        form.get("client_id") == Some(&s.client_id) && form.get("client_secret") == Some(&s.secret);
    if !(by_header || by_params) {
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            format!(
                r#"{{"error":"invalid_client","error_description":"unknown client; got '{}'"}}"#,
                form.get("client_secret").cloned().unwrap_or_default()
            ),
        )
            .into_response();
    }
    s.issued += 1;
    let mut answer = format!(
        r#"{{"access_token":"tok-{}","token_type":"bearer""#,
        s.issued
    );
    if let Some(e) = s.expires_in {
        answer.push_str(&format!(r#","expires_in":{e}"#));
    }
    answer.push('}');
    ([("content-type", "application/json")], answer).into_response()
}

/// The token server (`POST /token`).
async fn token_server(issuer: Issuer) -> (SocketAddr, Shared) {
    let shared = Arc::new(Mutex::new(issuer));
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, shared)
}

/// A resource server answering every request with its Authorization header.
async fn resource_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                seen.lock().unwrap().push(auth.clone());
                auth
            },
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

fn oauth2_config(token_url: String, id: &str, secret: &str) -> HttpClientConfig {
    HttpClientConfig {
        oauth2: Some(OAuth2 {
            client_id: id.to_owned(),
            client_secret: Some(Secret::new(secret)),
            scopes: vec!["metrics:read".into(), "metrics:write".into()],
            token_url,
            endpoint_params: BTreeMap::from([("audience".to_owned(), "meridian".to_owned())]),
            ..OAuth2::default()
        }),
        ..HttpClientConfig::default()
    }
}

/// GET `url`: the Authorization the resource server saw, or the request's error.
async fn get(client: &HttpClient, url: &str) -> Result<String, String> {
    let response = client
        .request(reqwest::Method::GET, url)?
        .send()
        .await
        .map_err(|e| httpclient::error_chain(&e))?;
    response.text().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn tokens_are_reused_and_refreshed_before_they_expire() {
    let (token_addr, issuer) = token_server(Issuer {
        client_id: "my client".into(),
        secret: "s3cr/t!".into(),
        // Valid for 1 s once Go's 10 s margin is taken off.
        expires_in: Some(11),
        ..Issuer::default()
    })
    .await;
    let (addr, seen) = resource_server().await;
    let cfg = oauth2_config(format!("http://{token_addr}/token"), "my client", "s3cr/t!");
    let client = HttpClient::new(&cfg, "Meridian/test").unwrap();
    let url = format!("http://{addr}/metrics");
    for _ in 0..3 {
        assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-1");
    }
    // Concurrent requests share one token request.
    let many: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    for r in many {
        assert_eq!(r.await.unwrap().unwrap(), "Bearer tok-1");
    }
    assert_eq!(issuer.lock().unwrap().requests.len(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-2");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-2");
    assert_eq!(seen.lock().unwrap().len(), 13);

    let s = issuer.lock().unwrap();
    assert_eq!(s.requests.len(), 2, "{:?}", s.requests);
    let first = &s.requests[0];
    assert_eq!(
        first.form,
        BTreeMap::from([
            ("audience".to_owned(), "meridian".to_owned()),
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "metrics:read metrics:write".to_owned()),
        ])
    );
    // "my+client:s3cr%2Ft%21", as Go's oauth2 sends it.
    assert_eq!(
        first.authorization,
        format!("Basic {}", base64(b"my+client:s3cr%2Ft%21"))
    );
    assert_eq!(first.user_agent, "Meridian/test");
    let debug = format!("{client:?}");
    assert!(
        !debug.contains("s3cr") && !debug.contains("tok-"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_changed_secret_file_gets_a_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "first-secret\n").unwrap();
    let (token_addr, issuer) = token_server(Issuer {
        client_id: "meridian".into(),
        secret: "first-secret".into(),
        // No expires_in: the token is kept until the secret changes.
        ..Issuer::default()
    })
    .await;
    let (addr, _) = resource_server().await;
    let mut cfg = oauth2_config(format!("http://{token_addr}/token"), "meridian", "");
    if let Some(o) = &mut cfg.oauth2 {
        o.client_secret = None;
        o.client_secret_file = Some(secret_file.clone());
    }
    let client = HttpClient::new(&cfg, "t").unwrap();
    let url = format!("http://{addr}/");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-1");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-1");

    // The secret is rotated on both sides: the next request uses a token got with the new one.
    issuer.lock().unwrap().secret = "second-secret".into();
    pki::write_atomic(&secret_file, "second-secret");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-2");
    {
        let s = issuer.lock().unwrap();
        assert_eq!(s.requests.len(), 2);
        assert_eq!(
            s.requests[1].authorization,
            format!("Basic {}", base64(b"meridian:second-secret"))
        );
    }

    // An unreadable secret file fails the request, naming the file and not its content.
    std::fs::remove_file(&secret_file).unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(
        err.contains("unable to read oauth2 client secret") && err.contains("secret"),
        "{err}"
    );
    assert!(!err.contains("second-secret"), "{err}");
}

#[tokio::test]
async fn credentials_go_in_the_form_when_the_server_wants_them_there() {
    let (token_addr, issuer) = token_server(Issuer {
        client_id: "id".into(),
        secret: "pw".into(),
        params_only: true,
        expires_in: Some(-1),
        ..Issuer::default()
    })
    .await;
    let (addr, _) = resource_server().await;
    let client = HttpClient::new(
        &oauth2_config(format!("http://{token_addr}/token"), "id", "pw"),
        "t",
    )
    .unwrap();
    let url = format!("http://{addr}/");
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-1");
    // An already expired token is fetched again, directly the way that worked.
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tok-2");
    let s = issuer.lock().unwrap();
    let styles: Vec<(bool, bool)> = s
        .requests
        .iter()
        .map(|r| {
            (
                r.authorization.starts_with("Basic "),
                r.form.contains_key("client_secret"),
            )
        })
        .collect();
    assert_eq!(styles, [(true, false), (false, true), (false, true)]);
}

#[tokio::test]
async fn token_endpoint_failures_are_clean_request_errors() {
    let (token_addr, issuer) = token_server(Issuer {
        client_id: "id".into(),
        secret: "right".into(),
        ..Issuer::default()
    })
    .await;
    let (addr, seen) = resource_server().await;
    let url = format!("http://{addr}/");

    // A wrong secret: the endpoint's error code and description; the secret it echoes is
    // masked.
    let client = HttpClient::new(
        &oauth2_config(format!("http://{token_addr}/token"), "id", "wrong-secret"),
        "t",
    )
    .unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(
        err.starts_with("oauth2: cannot fetch token: 401 Unauthorized: \"invalid_client\""),
        "{err}"
    );
    assert!(!err.contains("wrong-secret"), "{err}");

    // A server error with a body that is not a token answer.
    issuer.lock().unwrap().fail = Some((500, "<html>down</html>".into()));
    let client = HttpClient::new(
        &oauth2_config(format!("http://{token_addr}/token"), "id", "right"),
        "t",
    )
    .unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(
        err.contains("500 Internal Server Error: response: <html>down</html>"),
        "{err}"
    );

    // 200 without a token.
    issuer.lock().unwrap().fail = Some((200, r#"{"token_type":"bearer"}"#.into()));
    let err = get(&client, &url).await.unwrap_err();
    assert_eq!(err, "oauth2: server response missing access_token");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = HttpClient::new(
        &oauth2_config(format!("http://{closed}/token"), "id", "right"),
        "t",
    )
    .unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(err.starts_with("oauth2: cannot fetch token: "), "{err}");

    // A slow endpoint: the request's timeout bounds the token request too.
    {
        let mut s = issuer.lock().unwrap();
        s.fail = None;
        s.delay = Duration::from_secs(5);
    }
    let client = HttpClient::new(
        &oauth2_config(format!("http://{token_addr}/token"), "id", "right"),
        "t",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .request(reqwest::Method::GET, &url)
        .unwrap()
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        "oauth2: cannot fetch token: timed out after 300ms"
    );

    // No request reached the resource server without a token.
    assert!(seen.lock().unwrap().is_empty());
}

/// A one-request-per-connection TLS token endpoint that answers any request with a token.
async fn tls_token_server(ca: &pki::Ca) -> SocketAddr {
    let cert = ca.issue("auth", &["127.0.0.1"]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![
                rustls::pki_types::pem::PemObject::from_pem_slice(cert.cert_pem.as_bytes())
                    .unwrap(),
            ],
            rustls::pki_types::pem::PemObject::from_pem_slice(cert.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
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
                let body =
                    r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":3600}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_token_endpoint_uses_the_blocks_own_tls_and_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("auth CA");
    let ca_file = dir.path().join("auth-ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let token_addr = tls_token_server(&ca).await;
    let (addr, _) = resource_server().await;
    let url = format!("http://{addr}/");

    // The token endpoint's CA is trusted by the oauth2 block only.
    let mut cfg = oauth2_config(format!("https://{token_addr}/token"), "id", "pw");
    if let Some(o) = &mut cfg.oauth2 {
        o.tls_config = TlsConfig {
            ca_file: Some(ca_file.clone()),
            ..TlsConfig::default()
        };
    }
    let client = HttpClient::new(&cfg, "t").unwrap();
    assert_eq!(get(&client, &url).await.unwrap(), "Bearer tls-token");
    // The same CA in the client's own tls_config instead does not make the token endpoint
    // trusted.
    let mut untrusted = oauth2_config(format!("https://{token_addr}/token"), "id", "pw");
    untrusted.tls_config = TlsConfig {
        ca_file: Some(ca_file),
        ..TlsConfig::default()
    };
    let err = get(&HttpClient::new(&untrusted, "t").unwrap(), &url)
        .await
        .unwrap_err();
    assert!(err.starts_with("oauth2: cannot fetch token:"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The block's proxy_url carries the token request (and only it).
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut s, _) = proxy.accept().await.unwrap();
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
        "scrape_configs:\n- job_name: j\n  oauth2:\n    client_id: id\n    client_secret: pw\n    token_url: http://auth.example/token\n    proxy_url: http://{proxy_addr}\n  static_configs:\n  - targets: [x]\n"
    );
    let config = config::Config::from_str(&yaml, "/tmp/prometheus.yml").unwrap();
    let client = HttpClient::new(&config.scrape_configs[0].http_client, "t").unwrap();
    let err = get(&client, &url).await.unwrap_err();
    assert!(err.contains("502 Bad Gateway"), "{err}");
    let head = rx.await.unwrap();
    assert!(
        head.starts_with("POST http://auth.example/token HTTP/1.1"),
        "{head}"
    );
}
