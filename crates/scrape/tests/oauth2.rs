//! A scrape job with `oauth2`: the target gets the token from a token server on 127.0.0.1,
//! and while that server fails the target is down (`up` 0) with the token error as the
//! scrape error, then up again once a token is issued.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use storage::memory::MemStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_carry_the_token_and_a_failing_token_endpoint_is_a_failed_scrape() {
    let up_flag = Arc::new(AtomicBool::new(true));
    let issued = Arc::new(AtomicU64::new(0));
    let app = {
        let (up_flag, issued) = (up_flag.clone(), issued.clone());
        axum::Router::new().route(
            "/oauth/token",
            axum::routing::post(move |headers: HeaderMap| {
                let (up_flag, issued) = (up_flag.clone(), issued.clone());
                async move {
                    let json = [("content-type", "application/json")];
                    // "scraper:pw" in base64: the client's id and secret.
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v == "Basic c2NyYXBlcjpwdw==");
                    if !up_flag.load(Ordering::Relaxed) || !authorized {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            json,
                            r#"{"error":"temporarily_unavailable"}"#.to_owned(),
                        );
                    }
                    let n = issued.fetch_add(1, Ordering::Relaxed) + 1;
                    // Expires at once (minus Go's 10 s margin): a new token per scrape.
                    (
                        StatusCode::OK,
                        json,
                        format!(
                            r#"{{"access_token":"scrape-token-{n}","token_type":"bearer","expires_in":5}}"#
                        ),
                    )
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let token_addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let target = TestTarget::start("m 1\n").await;
    let storage = MemStorage::new();
    let manager = manager(&storage);
    let addr = target.addr;
    let extra = format!(
        "  oauth2:\n    client_id: scraper\n    client_secret: pw\n    token_url: http://{token_addr}/oauth/token\n"
    );
    let config = load_config(&job_config("secured", addr, "100ms", &extra));
    manager
        .apply_config(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = series("up", addr, "secured", &[]);
    wait_until("two successful scrapes", || {
        values(&storage, &up).iter().filter(|v| **v == 1.0).count() >= 2
    })
    .await;
    let auths: Vec<String> = target
        .requests()
        .iter()
        .filter_map(|h| h.get("authorization")?.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        auths.len() >= 2 && auths.iter().all(|a| a.starts_with("Bearer scrape-token-")),
        "{auths:?}"
    );

    // The token endpoint fails: the scrape fails with its error, and `up` goes to 0.
    up_flag.store(false, Ordering::Relaxed);
    let error = wait_for_error(
        &manager,
        &format!(
            "Get \"http://{addr}/metrics\": oauth2: cannot fetch token: 503 Service Unavailable"
        ),
    )
    .await;
    assert!(error.contains("temporarily_unavailable"), "{error}");
    assert!(!error.contains("pw"), "{error}");
    wait_until("a failed scrape", || values(&storage, &up).contains(&0.0)).await;

    // Back: scrapes succeed again.
    up_flag.store(true, Ordering::Relaxed);
    wait_until("up again", || values(&storage, &up).last() == Some(&1.0)).await;
    manager.stop().await;
    server.abort();
}
