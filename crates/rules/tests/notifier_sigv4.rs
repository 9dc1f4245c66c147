//! The Alertmanager client with a `sigv4` section: alerts are POSTed signed (service `aps`)
//! to a receiver on 127.0.0.1 that recomputes the signature from the raw request (verifier
//! written apart from the signer).

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "../../httpclient/tests/support/aws_verify.rs"]
mod aws_verify;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use config::NameValidationScheme;
use model::labels::Labels;
use rules::notifier::{Notifier, NotifierAlert};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

type Seen = Arc<Mutex<Vec<(Result<aws_verify::Verified, String>, String)>>>;

async fn alertmanager(
    State(seen): State<Seen>,
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
        |key| (key == ACCESS_KEY).then(|| SECRET_KEY.to_owned()),
    );
    let ok = check.is_ok();
    seen.lock()
        .unwrap()
        .push((check, String::from_utf8_lossy(&body).into_owned()));
    if ok {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

#[tokio::test]
async fn alerts_are_signed_for_the_alertmanager() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(alertmanager)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let yaml = format!(
        "alerting:\n  alertmanagers:\n  - path_prefix: /workspaces/ws-1/alertmanager\n    sigv4:\n      region: us-west-2\n      access_key: {ACCESS_KEY}\n      secret_key: {SECRET_KEY}\n    static_configs:\n    - targets: ['{addr}']\n"
    );
    let cfg = config::Config::from_str(&yaml, "prometheus.yml").unwrap();
    let notifier = Notifier::new(10);
    notifier
        .apply_config(
            &cfg.alerting,
            &BTreeMap::new(),
            NameValidationScheme::default(),
        )
        .unwrap();
    notifier.send(vec![NotifierAlert {
        labels: Labels::from_static(&[("alertname", "Signed")]),
        annotations: BTreeMap::new(),
        starts_at: 1_000,
        ends_at: 0,
        generator_url: String::new(),
    }]);
    notifier.flush().await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (check, body) = &seen[0];
        let v = check.as_ref().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (v.region.as_str(), v.service.as_str()),
            ("us-west-2", "aps")
        );
        assert!(v.signed_headers.contains(&"content-type".to_owned()));
        assert!(body.contains("\"alertname\":\"Signed\""), "{body}");
    }
    assert_eq!(
        notifier
            .metrics()
            .errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    server.abort();
}
