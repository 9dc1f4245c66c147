//! Remote write with authentication, end to end from a real WAL: a `sigv4` queue against a
//! receiver on 127.0.0.1 that recomputes every signature from the raw request (verifier
//! written apart from the signer), and an `oauth2` queue whose token endpoint fails for a
//! while: the batches are retried, and every sample arrives once the endpoint answers.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "../../httpclient/tests/support/aws_verify.rs"]
mod aws_verify;
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use common::*;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// What the receiver saw: per series its sample count; per request what the check found.
#[derive(Default)]
struct Seen {
    samples: HashMap<String, usize>,
    checks: Vec<Result<aws_verify::Verified, String>>,
    authorizations: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn key(labels: &[remote::proto::Label]) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    parts.sort();
    parts.join(",")
}

/// Stores the samples of a request that passed `check` (else answers 403).
fn store(seen: &Shared, body: &[u8], check: Result<aws_verify::Verified, String>) -> StatusCode {
    let mut s = seen.lock().unwrap();
    let ok = check.is_ok();
    s.checks.push(check);
    if !ok {
        return StatusCode::FORBIDDEN;
    }
    let Ok(request) = remote::decode_write_request(body, 64 << 20) else {
        return StatusCode::BAD_REQUEST;
    };
    for series in &request.timeseries {
        *s.samples.entry(key(&series.labels)).or_default() += series.samples.len();
    }
    StatusCode::NO_CONTENT
}

async fn sigv4_receiver(
    State(seen): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let check = aws_verify::verify(
        method.as_str(),
        uri.path(),
        uri.query(),
        &pairs,
        &body,
        |access_key| (access_key == ACCESS_KEY).then(|| SECRET_KEY.to_owned()),
    );
    store(&seen, &body, check)
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn total(seen: &Shared) -> usize {
    seen.lock().unwrap().samples.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signed_batches_verify_at_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), 64 * 1024);
    let seen = Shared::default();
    let addr = serve(
        axum::Router::new()
            .fallback(sigv4_receiver)
            .with_state(seen.clone()),
    )
    .await;
    let (_, rw) = remote_write_config(
        &format!("http://{addr}/workspaces/ws-1/api/v1/remote_write"),
        &format!(
            "    headers:\n      X-Scope-OrgID: team-a\n    sigv4:\n      region: eu-west-1\n      access_key: {ACCESS_KEY}\n      secret_key: {SECRET_KEY}\n    metadata_config:\n      send: false\n    queue_config:\n      max_samples_per_send: 50\n      batch_send_deadline: 100ms\n"
        ),
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let start = now_ms() - 30_000;
    for i in 0..20 {
        db.scrape("signed", 10, start + i * 1000, i as f64);
    }
    wait_until(Duration::from_secs(60), "all 200 samples received", || {
        total(&seen) == 200
    })
    .await;
    rs.stop().await;
    let s = seen.lock().unwrap();
    assert_eq!(s.samples.len(), 10);
    assert!(s.samples.values().all(|n| *n == 20), "{:?}", s.samples);
    assert!(s.checks.len() >= 4, "batches of at most 50 samples");
    for check in &s.checks {
        let v = check.as_ref().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (v.access_key.as_str(), v.region.as_str(), v.service.as_str()),
            (ACCESS_KEY, "eu-west-1", "aps")
        );
        // The queue's own headers are signed too, as in Prometheus; the User-Agent is not.
        assert_eq!(
            v.signed_headers,
            [
                "content-encoding",
                "content-length",
                "content-type",
                "host",
                "x-amz-date",
                "x-prometheus-remote-write-version",
                "x-scope-orgid"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_batches_are_retried_until_a_token_is_issued() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), 64 * 1024);

    // The token endpoint fails until `up` is set.
    let up = Arc::new(AtomicBool::new(false));
    let token_requests = Arc::new(AtomicU64::new(0));
    let token_app = {
        let (up, requests) = (up.clone(), token_requests.clone());
        axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let (up, requests) = (up.clone(), requests.clone());
                async move {
                    requests.fetch_add(1, Ordering::Relaxed);
                    let json = [("content-type", "application/json")];
                    if up.load(Ordering::Relaxed) {
                        (
                            StatusCode::OK,
                            json,
                            r#"{"access_token":"good-token","token_type":"bearer","expires_in":3600}"#,
                        )
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            json,
                            r#"{"error":"temporarily_unavailable"}"#,
                        )
                    }
                }
            }),
        )
    };
    let token_addr = serve(token_app).await;

    // The receiver wants the token.
    let seen = Shared::default();
    let receiver = {
        let seen = seen.clone();
        axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                seen.lock().unwrap().authorizations.push(auth.clone());
                let check = if auth == "Bearer good-token" {
                    Ok(aws_verify::Verified {
                        access_key: String::new(),
                        date: String::new(),
                        region: String::new(),
                        service: String::new(),
                        signed_headers: Vec::new(),
                    })
                } else {
                    Err(format!("unexpected Authorization {auth:?}"))
                };
                store(&seen, &body, check)
            }
        })
    };
    let addr = serve(receiver).await;
    let (_, rw) = remote_write_config(
        &format!("http://{addr}/api/v1/write"),
        &format!(
            "    oauth2:\n      client_id: meridian\n      client_secret: s3cret\n      token_url: http://{token_addr}/token\n    metadata_config:\n      send: false\n    queue_config:\n      min_backoff: 50ms\n      max_backoff: 200ms\n      batch_send_deadline: 100ms\n"
        ),
    );
    let rs = start_remote(dir.path(), &rw, &[]).await;
    let m = rs.queue_metrics()[0].clone();
    let start = now_ms() - 30_000;
    for i in 0..10 {
        db.scrape("tokened", 5, start + i * 1000, i as f64);
    }
    wait_until(
        Duration::from_secs(30),
        "retries while the token endpoint fails",
        || load(&m.samples_retried) > 0 && token_requests.load(Ordering::Relaxed) >= 4,
    )
    .await;
    assert_eq!(total(&seen), 0, "nothing is sent without a token");
    up.store(true, Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "all 50 samples received", || {
        total(&seen) == 50
    })
    .await;
    rs.stop().await;
    let s = seen.lock().unwrap();
    assert!(s.samples.values().all(|n| *n == 10), "{:?}", s.samples);
    assert!(
        s.authorizations.iter().all(|a| a == "Bearer good-token"),
        "{:?}",
        s.authorizations
    );
    assert_eq!(load(&m.samples_failed), 0);
}
