//! The server as clients meet it, over real sockets on 127.0.0.1 with certificates made in
//! the test: every route refuses unauthenticated requests (basic auth, client certificates),
//! mTLS refuses a missing or foreign certificate and serves a good one, changes to the web
//! configuration and its certificates apply to new connections, and connection hygiene
//! (garbage handshakes, oversized headers, slow and idle clients, the connection bound).

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "../../httpclient/tests/support/pki.rs"]
mod pki;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{BasicAuth, HttpClientConfig, Secret, TlsConfig};
use httpclient::HttpClient;
use tokio::sync::{mpsc, oneshot};
use web::api::{ApiOptions, ApiState};
use web::serve::{HttpServer, ServeOptions};
use web::{LifecycleRequest, SelfMetrics, WebOptions, WebState};

/// The full router, with lifecycle endpoints on and reloads answered.
fn app() -> axum::Router {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            if let LifecycleRequest::Reload(reply) = request {
                let _ = reply.send(Ok(()));
            }
        }
    });
    let api = ApiState::new(
        promql::engine::Engine::default(),
        ApiOptions {
            remote_write_receiver: true,
            ..ApiOptions::default()
        },
    );
    api.set_storage(Arc::new(Empty(storage::memory::MemStorage::new())));
    let state = WebState::new(
        WebOptions {
            enable_lifecycle: true,
        },
        tx,
        Arc::new(SelfMetrics::new()),
        api,
    );
    web::router(state)
}

struct Empty(storage::memory::MemStorage);

impl storage::Queryable for Empty {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn storage::Querier>, storage::StorageError> {
        self.0.querier(mint, maxt)
    }
}

impl storage::Appendable for Empty {
    fn appender(&self) -> Box<dyn storage::Appender> {
        self.0.appender()
    }
}

impl storage::ExemplarQueryable for Empty {
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<model::matcher::Matcher>],
    ) -> Result<Vec<storage::ExemplarQueryResult>, storage::StorageError> {
        self.0.select_exemplars(start, end, matcher_sets)
    }
}

impl web::api::ApiStorage for Empty {
    fn head_summary(&self) -> web::api::HeadSummary {
        web::api::HeadSummary {
            num_series: 0,
            min_time: None,
            max_time: None,
        }
    }
}

/// A running server; stops when dropped.
struct Running {
    addr: SocketAddr,
    server: HttpServer,
    _stop: oneshot::Sender<()>,
}

async fn start(options: ServeOptions) -> Running {
    let server = HttpServer::new(options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.clone().serve(listener, app(), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        server,
        _stop: stop,
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("web.yml");
    pki::write_atomic(&path, text);
    path
}

/// Server certificate, client CA and a good client certificate, written into `dir`.
struct Pki {
    ca: pki::Ca,
    ca_file: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let ca = pki::Ca::new("meridian test CA");
    let ca_file = dir.join("ca.crt");
    pki::write_atomic(&ca_file, &ca.pem());
    let (server_cert, server_key) = ca.issue("server", &["127.0.0.1"]).write(dir, "server");
    let (client_cert, client_key) = ca
        .issue("federator", &["federator.test"])
        .write(dir, "client");
    Pki {
        ca,
        ca_file,
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

fn mtls_config(p: &Pki, client_auth: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: {client_auth}\n  client_ca_file: {}\n",
        p.server_cert.display(),
        p.server_key.display(),
        p.ca_file.display()
    )
}

fn client(tls: TlsConfig, basic: Option<(&str, &str)>) -> HttpClient {
    HttpClient::new(
        &HttpClientConfig {
            tls_config: tls,
            basic_auth: basic.map(|(u, p)| BasicAuth {
                username: u.into(),
                password: Some(Secret::new(p)),
                ..BasicAuth::default()
            }),
            ..HttpClientConfig::default()
        },
        "meridian-test",
    )
    .unwrap()
}

fn client_tls(p: &Pki, with_cert: bool) -> TlsConfig {
    TlsConfig {
        ca_file: Some(p.ca_file.clone()),
        cert_file: with_cert.then(|| p.client_cert.clone()),
        key_file: with_cert.then(|| p.client_key.clone()),
        ..TlsConfig::default()
    }
}

/// The status of `method url`, or the transport error.
async fn status(client: &HttpClient, method: &str, url: &str) -> Result<u16, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client
        .request(method, url)?
        .send()
        .await
        .map_err(|e| httpclient::error_chain(&e))?;
    Ok(response.status().as_u16())
}

/// The paths of every `.route("...")` call in this crate's sources.
fn routes_in_sources() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let trimmed = rest.trim_start();
                if let Some(literal) = trimmed.strip_prefix('"')
                    && let Some(end) = literal.find('"')
                {
                    found.insert(literal[..end].to_owned());
                }
            }
        }
    }
    found
}

#[test]
fn the_route_list_is_complete() {
    let listed: BTreeSet<String> = web::routes::ROUTES
        .iter()
        .map(|(_, path, _)| (*path).to_owned())
        .collect();
    let registered = routes_in_sources();
    assert!(registered.len() > 20, "{registered:?}");
    assert_eq!(
        listed, registered,
        "web::routes::ROUTES must list every route the router registers"
    );
}

const PASSWORD: &str = "correct horse battery staple";

fn users_config(extra: &str) -> String {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    format!("{extra}basic_auth_users:\n  prometheus: '{hash}'\n")
}

#[tokio::test]
async fn every_route_refuses_requests_without_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &users_config(""));
    let server = start(ServeOptions {
        web_config_file: Some(config),
        ..ServeOptions::default()
    })
    .await;
    let anonymous = client(TlsConfig::default(), None);
    let wrong = client(TlsConfig::default(), Some(("prometheus", "guess")));
    let unknown_user = client(TlsConfig::default(), Some(("admin", PASSWORD)));
    let good = client(TlsConfig::default(), Some(("prometheus", PASSWORD)));
    let mut failures = Vec::new();
    for (method, _, path) in web::routes::ROUTES {
        let url = format!("http://{}{path}", server.addr);
        for (who, c) in [
            ("anonymous", &anonymous),
            ("wrong password", &wrong),
            ("unknown user", &unknown_user),
        ] {
            let got = status(c, method, &url).await;
            if got != Ok(401) {
                failures.push(format!("{method} {path} {who}: {got:?}"));
            }
        }
        let got = status(&good, method, &url).await;
        if matches!(got, Ok(401) | Err(_)) {
            failures.push(format!("{method} {path} authenticated: {got:?}"));
        }
    }
    // Paths no route serves are refused before routing too.
    let got = status(
        &anonymous,
        "GET",
        &format!("http://{}/nothing/here", server.addr),
    )
    .await;
    if got != Ok(401) {
        failures.push(format!("unknown path: {got:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    println!(
        "basic auth: {} routes refused without credentials",
        web::routes::ROUTES.len()
    );
}

#[tokio::test]
async fn every_route_requires_a_verified_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let config = write_config(dir.path(), &mtls_config(&p, "RequireAndVerifyClientCert"));
    let server = start(ServeOptions {
        web_config_file: Some(config),
        ..ServeOptions::default()
    })
    .await;
    let without = client(client_tls(&p, false), None);
    let with = client(client_tls(&p, true), None);
    let mut failures = Vec::new();
    for (method, _, path) in web::routes::ROUTES {
        let url = format!("https://{}{path}", server.addr);
        if let Ok(code) = status(&without, method, &url).await {
            failures.push(format!("{method} {path} without a certificate: {code}"));
        }
        match status(&with, method, &url).await {
            Ok(401) | Err(_) => {
                failures.push(format!("{method} {path} with a certificate refused"))
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn mtls_refuses_foreign_certificates_and_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let config = write_config(dir.path(), &mtls_config(&p, "RequireAndVerifyClientCert"));
    let server = start(ServeOptions {
        web_config_file: Some(config),
        ..ServeOptions::default()
    })
    .await;
    let url = format!("https://{}/federate?match[]=up", server.addr);
    // A certificate from another CA, with the same names.
    let other = pki::Ca::new("meridian test CA");
    let (cert, key) = other
        .issue("federator", &["federator.test"])
        .write(dir.path(), "foreign");
    let foreign = client(
        TlsConfig {
            cert_file: Some(cert),
            key_file: Some(key),
            ..client_tls(&p, false)
        },
        None,
    );
    let err = status(&foreign, "GET", &url).await.unwrap_err();
    println!("foreign certificate: {err}");
    assert_eq!(
        status(&client(client_tls(&p, true), None), "GET", &url).await,
        Ok(200)
    );
    // Plain HTTP on a TLS port gets no answer.
    let plain = status(
        &client(TlsConfig::default(), None),
        "GET",
        &format!("http://{}/metrics", server.addr),
    )
    .await;
    assert!(plain.is_err(), "{plain:?}");
    let metrics = render(&server);
    assert!(
        metric(&metrics, "meridian_http_tls_handshake_failures_total") >= 2.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn verify_if_given_and_basic_auth_together() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let text = users_config(&mtls_config(&p, "VerifyClientCertIfGiven"));
    let config = write_config(dir.path(), &text);
    let server = start(ServeOptions {
        web_config_file: Some(config),
        ..ServeOptions::default()
    })
    .await;
    let url = format!("https://{}/metrics", server.addr);
    // No certificate: allowed by TLS, still needs the password.
    assert_eq!(
        status(&client(client_tls(&p, false), None), "GET", &url).await,
        Ok(401)
    );
    assert_eq!(
        status(
            &client(client_tls(&p, false), Some(("prometheus", PASSWORD))),
            "GET",
            &url
        )
        .await,
        Ok(200)
    );
    assert_eq!(
        status(
            &client(client_tls(&p, true), Some(("prometheus", PASSWORD))),
            "GET",
            &url
        )
        .await,
        Ok(200)
    );
    let metrics = render(&server);
    assert_eq!(
        metric(&metrics, "meridian_http_basic_auth_failures_total"),
        1.0
    );
}

#[tokio::test]
async fn changed_configuration_and_certificates_apply_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let config = write_config(dir.path(), &mtls_config(&p, "RequireAndVerifyClientCert"));
    let server = start(ServeOptions {
        web_config_file: Some(config.clone()),
        ..ServeOptions::default()
    })
    .await;
    let url = format!("https://{}/-/healthy", server.addr);
    assert_eq!(
        status(&client(client_tls(&p, true), None), "GET", &url).await,
        Ok(200)
    );
    // The server certificate is replaced by one from a new CA; the CA file the client trusts
    // is replaced too. New connections use the new certificate.
    let next = pki::Ca::new("next CA");
    next.issue("server", &["127.0.0.1"])
        .write(dir.path(), "server");
    let next_ca = dir.path().join("next-ca.crt");
    std::fs::write(&next_ca, next.pem()).unwrap();
    let new_trust = TlsConfig {
        ca_file: Some(next_ca),
        ..client_tls(&p, true)
    };
    assert_eq!(status(&client(new_trust, None), "GET", &url).await, Ok(200));
    // Basic auth is added to the file: new requests need it.
    pki::write_atomic(
        &config,
        &users_config(&mtls_config(&p, "RequireAndVerifyClientCert")),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let trust = TlsConfig {
        ca_file: Some(dir.path().join("next-ca.crt")),
        ..client_tls(&p, true)
    };
    assert_eq!(
        status(&client(trust.clone(), None), "GET", &url).await,
        Ok(401)
    );
    // A broken file keeps the previous configuration, and is counted.
    pki::write_atomic(&config, "tls_server_config:\n  cert_file: [\n");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        status(&client(trust, Some(("prometheus", PASSWORD))), "GET", &url).await,
        Ok(200)
    );
    assert_eq!(
        metric(
            &render(&server),
            "meridian_web_config_reload_failures_total"
        ),
        1.0
    );
    let _ = p.ca;
}

#[tokio::test]
async fn start_up_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  max_version: TLS11\n",
    );
    let err = HttpServer::new(ServeOptions {
        web_config_file: Some(config.clone()),
        ..ServeOptions::default()
    })
    .err()
    .unwrap();
    assert_eq!(
        err,
        format!(
            "{}:4:3: tls_server_config.max_version: TLS11 is not supported by Meridian (rustls offers TLS12 and TLS13)",
            config.display()
        )
    );
    let config = write_config(
        dir.path(),
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    );
    let err = HttpServer::new(ServeOptions {
        web_config_file: Some(config),
        ..ServeOptions::default()
    })
    .err()
    .unwrap();
    assert!(err.contains("missing.crt"), "{err}");
}

fn render(server: &Running) -> String {
    let mut out = Vec::new();
    {
        let mut e = model::exposition::TextEncoder::new(&mut out);
        server.server.metrics().write_metrics(&mut e);
    }
    String::from_utf8(out).unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Reads until the server closes or `limit` passes; what was read and whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

fn hygiene_options(config: Option<PathBuf>) -> ServeOptions {
    ServeOptions {
        web_config_file: config,
        max_connections: 4,
        header_read_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(1500),
        max_header_bytes: 16 << 10,
        ..ServeOptions::default()
    }
}

/// Whether the server still answers `/-/healthy` in plain HTTP.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (out, _) = read_until_closed(&mut s, Duration::from_secs(5));
    out.starts_with(b"HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tls_handshakes_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let config = write_config(dir.path(), &mtls_config(&p, "RequireAndVerifyClientCert"));
    let server = start(hygiene_options(Some(config))).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for round in 0..20 {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut junk = vec![0u8; 2048];
            for b in junk.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            if round % 2 == 0 {
                // Looks like a TLS record header, then nonsense.
                junk[..5].copy_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
            }
            let _ = s.write_all(&junk);
            let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3));
            assert!(
                closed,
                "round {round}: the server kept a garbage connection open"
            );
        }
        // A handshake that starts and then stalls is cut at the handshake deadline.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x10]).unwrap();
        let start = Instant::now();
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(closed && start.elapsed() < Duration::from_secs(3));
    })
    .await
    .unwrap();
    // A good client is still served.
    assert_eq!(
        status(
            &client(client_tls(&p, true), None),
            "GET",
            &format!("https://{addr}/-/healthy")
        )
        .await,
        Ok(200)
    );
    assert!(
        metric(
            &render(&server),
            "meridian_http_tls_handshake_failures_total"
        ) >= 21.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_slow_and_idle_clients_are_cut_off() {
    let server = start(hygiene_options(None)).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Oversized headers: refused with 431 (or closed) long before they are all sent.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n");
        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut sent = 0usize;
        for _ in 0..(4 << 10) {
            if s.write_all(line.as_bytes()).is_err() {
                break;
            }
            sent += line.len();
        }
        let (out, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(closed, "oversized headers: connection left open");
        let head = String::from_utf8_lossy(&out);
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 431"),
            "oversized headers: {head}"
        );
        println!(
            "oversized headers: connection cut after {sent} bytes were accepted by the socket"
        );

        // Slowloris: a header line every 300 ms never completes the head within 800 ms.
        let mut s = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut cut = false;
        for i in 0..30 {
            std::thread::sleep(Duration::from_millis(300));
            if s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .is_err()
            {
                cut = true;
                break;
            }
            let mut probe = [0u8; 512];
            s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            if s.read(&mut probe).is_ok() {
                cut = true;
                break;
            }
        }
        let elapsed = start.elapsed();
        assert!(cut, "slow headers were never cut off");
        assert!(elapsed < Duration::from_secs(4), "cut after {elapsed:?}");
        println!("slowloris: cut after {elapsed:?}");

        // A client that connects and says nothing is closed at the idle deadline.
        let mut s = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(closed, "silent connection left open");
        println!("silent client: closed after {:?}", start.elapsed());

        // A request whose body stalls is cut at the idle deadline.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial",
        )
        .unwrap();
        let start = Instant::now();
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(closed, "stalled body left open");
        println!("stalled body: closed after {:?}", start.elapsed());
        assert!(healthy(addr));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded() {
    let server = start(ServeOptions {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..ServeOptions::default()
    })
    .await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Four idle connections take every slot...
        let mut idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        // ...so a fifth waits in the backlog, unanswered...
        let mut fifth = TcpStream::connect(addr).unwrap();
        fifth
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (out, closed) = read_until_closed(&mut fifth, Duration::from_millis(500));
        assert!(
            out.is_empty() && !closed,
            "served beyond the connection limit"
        );
        // ...until one of them goes.
        drop(idle.remove(0));
        let start = Instant::now();
        let (out, _) = read_until_closed(&mut fifth, Duration::from_secs(5));
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        println!(
            "fifth connection served {:?} after a slot was freed",
            start.elapsed()
        );
        drop(idle);
    })
    .await
    .unwrap();
    assert_eq!(
        metric(&render(&server), "meridian_http_connections_limit"),
        4.0
    );
}

#[tokio::test]
async fn allowed_sans_versions_http2_and_response_headers() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pki(dir.path());
    let config = write_config(
        dir.path(),
        &format!(
            "{}  client_allowed_sans: [federator.test]\n  min_version: TLS13\n",
            mtls_config(&p, "RequireAndVerifyClientCert")
        ),
    );
    let server = start(ServeOptions {
        web_config_file: Some(config.clone()),
        ..ServeOptions::default()
    })
    .await;
    let url = format!("https://{}/-/healthy", server.addr);
    let response = |c: HttpClient| {
        let url = url.clone();
        async move {
            c.request(reqwest::Method::GET, &url)
                .unwrap()
                .send()
                .await
                .map_err(|e| httpclient::error_chain(&e))
        }
    };
    let ok = response(client(client_tls(&p, true), None)).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        ok.version(),
        reqwest::Version::HTTP_2,
        "h2 by default over TLS"
    );

    // Same CA, another name: refused after the handshake.
    let (cert, key) =
        p.ca.issue("intruder", &["intruder.test"])
            .write(dir.path(), "intruder");
    let intruder = TlsConfig {
        cert_file: Some(cert),
        key_file: Some(key),
        ..client_tls(&p, false)
    };
    assert!(response(client(intruder, None)).await.is_err());
    assert_eq!(
        metric(&render(&server), "meridian_http_client_san_refusals_total"),
        1.0
    );

    // A client limited to TLS 1.2 cannot connect when TLS 1.3 is the minimum.
    let old = TlsConfig {
        max_version: Some(config::TlsVersion::Tls12),
        ..client_tls(&p, true)
    };
    assert!(response(client(old, None)).await.is_err());

    // HTTP/2 off and response headers on: new connections follow the changed file.
    write_config(
        dir.path(),
        &format!(
            "{}http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
            mtls_config(&p, "RequireAndVerifyClientCert")
        ),
    );
    let ok = response(client(client_tls(&p, true), None)).await.unwrap();
    assert_eq!(ok.version(), reqwest::Version::HTTP_11);
    assert_eq!(ok.headers()["x-frame-options"], "deny");
    assert_eq!(
        ok.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}
