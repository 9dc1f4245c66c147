//! SigV4 signing against servers on 127.0.0.1 that check every signature with a verifier
//! written apart from the signer: static keys, environment keys with `role_arn` through a
//! fake STS (its `AssumeRole` request verified too, credentials renewed before they
//! expire), STS failures as request errors, and configurations refused at build time.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

#[path = "support/aws_verify.rs"]
mod aws_verify;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use config::{HttpClientConfig, SigV4Config};
use httpclient::HttpClient;
use httpclient::aws::AwsEnv;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ROLE: &str = "arn:aws:iam::123456789012:role/remote-writer";

/// The secret keys the servers know: the long-term key and STS's temporary ones.
fn secret_for(access_key: &str) -> Option<String> {
    if access_key == ACCESS_KEY {
        return Some(SECRET_KEY.to_owned());
    }
    access_key
        .strip_prefix("ASIATEMP")
        .map(|n| format!("temp-secret-{n}"))
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// One request as the receiver checked it.
#[derive(Debug, Clone)]
struct Checked {
    verified: Result<aws_verify::Verified, String>,
    session_token: Option<String>,
}

type Log = Arc<Mutex<Vec<Checked>>>;

async fn receive(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = aws_verify::verify(
        method.as_str(),
        uri.path(),
        uri.query(),
        &pairs(&headers),
        &body,
        secret_for,
    );
    let ok = verified.is_ok();
    log.lock().unwrap().push(Checked {
        verified,
        session_token: headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::FORBIDDEN
    }
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn receiver() -> (SocketAddr, Log) {
    let log = Log::default();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(log.clone());
    (serve(app).await, log)
}

/// What the fake STS does.
#[derive(Default)]
struct Sts {
    /// Lifetime of the credentials it hands out.
    lifetime: Duration,
    /// Refuse every call (AccessDenied).
    deny: bool,
    calls: Vec<Result<String, String>>,
}

async fn sts(
    State(state): State<Arc<Mutex<Sts>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let verified = aws_verify::verify(
        method.as_str(),
        uri.path(),
        uri.query(),
        &pairs(&headers),
        &body,
        secret_for,
    );
    let form = String::from_utf8_lossy(&body).into_owned();
    let mut s = state.lock().unwrap();
    let n = s.calls.len() + 1;
    let call = verified.and_then(|v| {
        if v.service != "sts" || v.region != "eu-west-1" || v.access_key != ACCESS_KEY {
            return Err(format!("signed for the wrong scope: {v:?}"));
        }
        let want = [
            "Action=AssumeRole",
            "Version=2011-06-15",
            "DurationSeconds=900",
            "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fremote-writer",
            "RoleSessionName=meridian-",
        ];
        match want.iter().find(|w| !form.contains(*w)) {
            Some(missing) => Err(format!("{missing} not in {form}")),
            None => Ok(form.clone()),
        }
    });
    let ok = call.is_ok();
    s.calls.push(call);
    if s.deny || !ok {
        return (
            StatusCode::FORBIDDEN,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed to assume the role</Message></Error></ErrorResponse>".to_owned(),
        );
    }
    let expiration = aws_verify::iso8601(SystemTime::now() + s.lifetime);
    (
        StatusCode::OK,
        format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIATEMP{n}</AccessKeyId><SecretAccessKey>temp-secret-{n}</SecretAccessKey><SessionToken>token-{n}</SessionToken><Expiration>{expiration}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>"
        ),
    )
}

async fn fake_sts(lifetime: Duration, deny: bool) -> (SocketAddr, Arc<Mutex<Sts>>) {
    let state = Arc::new(Mutex::new(Sts {
        lifetime,
        deny,
        calls: Vec::new(),
    }));
    let app = axum::Router::new().fallback(sts).with_state(state.clone());
    (serve(app).await, state)
}

async fn post(client: &HttpClient, url: &str, body: &[u8]) -> Result<u16, String> {
    let response = client
        .request(reqwest::Method::POST, url)?
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", "Meridian/test")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| httpclient::error_chain(&e))?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn static_keys_sign_what_is_sent() {
    let (addr, log) = receiver().await;
    let sigv4 = SigV4Config {
        region: "eu-west-1".into(),
        access_key: ACCESS_KEY.into(),
        secret_key: Some(config::Secret::new(SECRET_KEY)),
        ..SigV4Config::default()
    };
    let client = HttpClient::builder(&HttpClientConfig::default(), "Meridian/test")
        .sigv4_with_env(&sigv4, AwsEnv::default())
        .build()
        .unwrap();
    // A path to clean and a query to put in order: signed as sent.
    let url = format!("http://{addr}/workspaces/ws-1//api/v1/remote_write?z=1&a=b%20c");
    assert_eq!(post(&client, &url, b"\x00snappy body").await.unwrap(), 204);
    let get = client
        .request(
            reqwest::Method::GET,
            &format!("http://{addr}/api/v1/status"),
        )
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 204);
    {
        let log = log.lock().unwrap();
        let v = log[0].verified.clone().unwrap();
        assert_eq!(
            (v.region.as_str(), v.service.as_str()),
            ("eu-west-1", "aps")
        );
        assert_eq!(
            v.signed_headers,
            [
                "content-encoding",
                "content-length",
                "content-type",
                "host",
                "x-amz-date",
                "x-prometheus-remote-write-version"
            ]
        );
        assert_eq!(log[0].session_token, None);
        let v = log[1].verified.clone().unwrap();
        assert_eq!(v.signed_headers, ["host", "x-amz-date"]);
        let debug = format!("{client:?}");
        assert!(!debug.contains(SECRET_KEY), "{debug}");
    }

    // The receiver's check is not a formality: a wrong secret key is caught.
    let wrong = SigV4Config {
        secret_key: Some(config::Secret::new("not-the-secret")),
        ..sigv4
    };
    let client = HttpClient::builder(&HttpClientConfig::default(), "t")
        .sigv4_with_env(&wrong, AwsEnv::default())
        .build()
        .unwrap();
    assert_eq!(post(&client, &url, b"x").await.unwrap(), 403);
}

#[tokio::test]
async fn role_arn_assumes_the_role_through_sts_and_renews_it() {
    let (addr, log) = receiver().await;
    // Credentials valid for 31 s: used for 1 s (renewed 30 s before they expire).
    let (sts_addr, sts_state) = fake_sts(Duration::from_secs(31), false).await;
    let env = AwsEnv::from_pairs([
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ENDPOINT_URL_STS", format!("http://{sts_addr}/")),
    ]);
    let sigv4 = SigV4Config {
        role_arn: ROLE.into(),
        ..SigV4Config::default()
    };
    let client = HttpClient::builder(&HttpClientConfig::default(), "Meridian/test")
        .sigv4_with_env(&sigv4, env)
        .build()
        .unwrap();
    // Building called nobody.
    assert!(sts_state.lock().unwrap().calls.is_empty());
    let url = format!("http://{addr}/api/v1/write");
    assert_eq!(post(&client, &url, b"one").await.unwrap(), 204);
    assert_eq!(post(&client, &url, b"two").await.unwrap(), 204);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(post(&client, &url, b"three").await.unwrap(), 204);

    let calls = sts_state.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(Result::is_ok), "{calls:?}");
    let log = log.lock().unwrap();
    let keys: Vec<(String, Option<String>)> = log
        .iter()
        .map(|c| {
            let v = c.verified.clone().unwrap();
            assert!(
                v.signed_headers
                    .contains(&"x-amz-security-token".to_owned())
            );
            (v.access_key, c.session_token.clone())
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("ASIATEMP1".to_owned(), Some("token-1".to_owned())),
            ("ASIATEMP1".to_owned(), Some("token-1".to_owned())),
            ("ASIATEMP2".to_owned(), Some("token-2".to_owned())),
        ]
    );
}

#[tokio::test]
async fn an_sts_refusal_fails_the_request_cleanly() {
    let (addr, log) = receiver().await;
    let (sts_addr, _) = fake_sts(Duration::from_secs(3600), true).await;
    let sigv4 = SigV4Config {
        region: "eu-west-1".into(),
        access_key: ACCESS_KEY.into(),
        secret_key: Some(config::Secret::new(SECRET_KEY)),
        role_arn: ROLE.into(),
        ..SigV4Config::default()
    };
    let client = HttpClient::builder(&HttpClientConfig::default(), "t")
        .sigv4_with_env(
            &sigv4,
            AwsEnv::from_pairs([("AWS_ENDPOINT_URL_STS", format!("http://{sts_addr}"))]),
        )
        .build()
        .unwrap();
    let err = post(&client, &format!("http://{addr}/api/v1/write"), b"x")
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "sts AssumeRole {ROLE} at http://{sts_addr}/: 403 Forbidden: AccessDenied: not allowed"
        )),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY));
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn unusable_configurations_are_refused_when_the_client_is_built() {
    let build = |cfg: &HttpClientConfig, sigv4: &SigV4Config, env: AwsEnv| {
        HttpClient::builder(cfg, "t")
            .sigv4_with_env(sigv4, env)
            .build()
            .map(|_| ())
            .unwrap_err()
    };
    let plain = HttpClientConfig::default();
    let err = build(
        &plain,
        &SigV4Config {
            region: "eu-west-1".into(),
            ..SigV4Config::default()
        },
        AwsEnv::default(),
    );
    assert!(
        err.starts_with("sigv4: could not get SigV4 credentials: "),
        "{err}"
    );
    let keys = SigV4Config {
        access_key: ACCESS_KEY.into(),
        secret_key: Some(config::Secret::new(SECRET_KEY)),
        ..SigV4Config::default()
    };
    let err = build(&plain, &keys, AwsEnv::default());
    assert_eq!(
        err,
        "sigv4: region not configured in sigv4 or in default credentials chain"
    );
    let with_bearer = HttpClientConfig {
        authorization: Some(config::Authorization {
            kind: "Bearer".into(),
            credentials: Some(config::Secret::new("x")),
            credentials_file: None,
        }),
        ..HttpClientConfig::default()
    };
    let err = build(
        &with_bearer,
        &keys,
        AwsEnv::from_pairs([("AWS_REGION", "eu-west-1")]),
    );
    assert!(err.starts_with("at most one of"), "{err}");
}
