//! The `oauth2` block of an HTTP client config: the OAuth 2.0 client credentials grant as
//! Prometheus does it with Go's `golang.org/x/oauth2/clientcredentials`.
//!
//! The token request is a form POST to `token_url` with `grant_type=client_credentials`,
//! `scope` (the `scopes` joined by spaces) and the `endpoint_params` (which may replace
//! `grant_type` but no other parameter). The client id and secret go first in HTTP basic
//! auth, each form-encoded as Go does; when that attempt fails, once more as `client_id` and
//! `client_secret` form parameters, and the way that worked is kept for the token endpoint.
//! The answer is JSON (or a form body for `application/x-www-form-urlencoded` and
//! `text/plain`); `error` in it, a non-2xx status or a missing `access_token` fail the
//! request. The token is kept and used until 10 seconds before `expires_in` runs out (no
//! `expires_in`: until the secret changes); every request of the client then carries
//! `Authorization: <token_type> <access_token>` (`Bearer` unless the endpoint says otherwise).
//!
//! `client_secret_file` is read at every request; a changed secret drops the token, so the
//! next request asks for a new one with the new secret. The token endpoint is reached with
//! the block's own `tls_config` and proxy settings (HTTP/1.1, redirects followed), with the
//! client's User-Agent. Concurrent requests wait for one token request. A token request is
//! bounded by the timeout of the request that needs it (else one minute).
//!
//! Not supported: `grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer` (the client is
//! refused with an error saying so). Secrets and tokens never appear in errors, logs or
//! `Debug` output; a token endpoint's answer quoted in an error has the secret masked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use config::OAuth2;
use reqwest::header::HeaderValue;

/// Tokens are renewed this long before they expire (Go's `expiryDelta`).
const EXPIRY_DELTA: Duration = Duration::from_secs(10);
/// Most bytes of a token endpoint's answer read (Go reads 1 MiB).
const MAX_BODY: usize = 1 << 20;
/// Most bytes of an answer quoted in an error.
const QUOTED_BODY: usize = 512;
/// The JWT bearer grant of RFC 7523, which Meridian does not implement.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Where the client id and secret go in a token request (Go's `AuthStyle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStyle {
    /// HTTP basic auth, id and secret form-encoded first.
    Header,
    /// `client_id` and `client_secret` form parameters.
    Params,
}

/// A token and when to stop using it.
struct Token {
    /// `<type> <access token>`, marked sensitive.
    header: HeaderValue,
    /// `None`: never expires.
    renew_at: Option<Instant>,
}

impl Token {
    fn valid(&self, now: Instant) -> bool {
        self.renew_at.is_none_or(|at| now < at)
    }
}

#[derive(Default)]
struct State {
    /// The secret the token (and the auth style) were obtained with.
    secret: Option<String>,
    token: Option<Token>,
    style: Option<AuthStyle>,
}

/// The token source of one client.
pub(crate) struct TokenSource {
    client_id: String,
    client_secret: SecretSource,
    scopes: Vec<String>,
    token_url: reqwest::Url,
    endpoint_params: BTreeMap<String, String>,
    client: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

enum SecretSource {
    Inline(String),
    File(std::path::PathBuf),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.client_id)
            .field("token_url", &redacted(&self.token_url))
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// `url` with its password (if any) replaced, for errors and logs.
fn redacted(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("xxxxx"));
    }
    url.to_string()
}

/// Go's `url.QueryEscape`: form encoding, space as `+`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`; `None` for an invalid escape.
fn query_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hi = char::from(hex[0]).to_digit(16)?;
                let lo = char::from(hex[1]).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.Values.Encode`: sorted by name.
fn encode_form(values: &BTreeMap<String, String>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.ParseQuery`, first value of each name.
fn parse_form(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.entry(query_unescape(k)?).or_insert(query_unescape(v)?);
    }
    Some(out)
}

/// Go's `Token.Type()`: the canonical spelling of the usual types, `Bearer` when unset.
fn token_type(kind: &str) -> String {
    if kind.eq_ignore_ascii_case("bearer") || kind.is_empty() {
        "Bearer".to_owned()
    } else if kind.eq_ignore_ascii_case("mac") {
        "MAC".to_owned()
    } else if kind.eq_ignore_ascii_case("basic") {
        "Basic".to_owned()
    } else {
        kind.to_owned()
    }
}

/// The fields of a token endpoint's answer.
#[derive(Default)]
struct Answer {
    access_token: String,
    token_type: String,
    expires_in: Option<i64>,
    error: String,
    error_description: String,
    error_uri: String,
}

/// `expires_in` as Go reads it: a number or a numeric string, capped to 32 bits; 0 is "no
/// expiry".
fn expires_in(value: &serde_json::Value) -> Result<Option<i64>, ()> {
    let n = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.as_i64().ok_or(())?,
        serde_json::Value::String(s) => s.trim().parse::<i64>().map_err(|_| ())?,
        _ => return Err(()),
    };
    let n = n.min(i64::from(i32::MAX));
    Ok((n != 0).then_some(n))
}

fn parse_json(body: &[u8]) -> Option<Answer> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let text = |name: &str| -> Option<String> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Some(String::new()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        }
    };
    Some(Answer {
        access_token: text("access_token")?,
        token_type: text("token_type")?,
        expires_in: match object.get("expires_in") {
            None => None,
            Some(v) => expires_in(v).ok()?,
        },
        error: text("error")?,
        error_description: text("error_description")?,
        error_uri: text("error_uri")?,
    })
}

fn parse_form_answer(body: &[u8]) -> Option<Answer> {
    let form = parse_form(&String::from_utf8_lossy(body))?;
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    let expires = get("expires_in").trim().parse::<i64>().unwrap_or(0);
    Some(Answer {
        access_token: get("access_token"),
        token_type: get("token_type"),
        expires_in: (expires != 0).then_some(expires),
        error: get("error"),
        error_description: get("error_description"),
        error_uri: get("error_uri"),
    })
}

impl TokenSource {
    /// The token source of an `oauth2` block; `client` reaches the token endpoint (built by
    /// the caller from the block's TLS and proxy settings).
    pub(crate) fn new(cfg: &OAuth2, client: reqwest::Client) -> Result<TokenSource, String> {
        if cfg.grant_type == JWT_BEARER {
            return Err(format!(
                "oauth2: grant_type {JWT_BEARER} is not supported by Meridian (only the client credentials grant is)"
            ));
        }
        let token_url = reqwest::Url::parse(&cfg.token_url)
            .map_err(|e| format!("oauth2: invalid token_url: {e}"))?;
        if !matches!(token_url.scheme(), "http" | "https") {
            return Err("oauth2: token_url must be an http or https URL".to_owned());
        }
        let client_secret = match (&cfg.client_secret_file, &cfg.client_secret) {
            (Some(path), _) => SecretSource::File(path.clone()),
            (None, Some(secret)) => SecretSource::Inline(secret.expose().to_owned()),
            (None, None) => SecretSource::Inline(String::new()),
        };
        Ok(TokenSource {
            client_id: cfg.client_id.clone(),
            client_secret,
            scopes: cfg.scopes.clone(),
            token_url,
            endpoint_params: cfg.endpoint_params.clone(),
            client,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    fn secret(&self) -> Result<String, String> {
        match &self.client_secret {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::File(path) => crate::read_secret_file(path, "client_secret_file")
                .map_err(|e| format!("unable to read oauth2 client secret: {e}")),
        }
    }

    /// The `Authorization` value for the next request: the kept token while it is valid,
    /// else a new one.
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, String> {
        let secret = self.secret()?;
        let mut state = self.state.lock().await;
        if state.secret.as_deref() != Some(secret.as_str()) {
            *state = State {
                secret: Some(secret.clone()),
                ..State::default()
            };
        }
        if let Some(token) = &state.token
            && token.valid(Instant::now())
        {
            return Ok(token.header.clone());
        }
        state.token = None;
        let known = state.style;
        let first = known.unwrap_or(AuthStyle::Header);
        let token = match self.fetch(&secret, first).await {
            Ok(token) => {
                state.style = Some(first);
                token
            }
            Err(first_error) if known.is_none() => {
                match self.fetch(&secret, AuthStyle::Params).await {
                    Ok(token) => {
                        state.style = Some(AuthStyle::Params);
                        token
                    }
                    Err(second) if second == first_error => return Err(first_error),
                    Err(second) => {
                        return Err(format!(
                            "{first_error} (and with the client credentials as form parameters: {second})"
                        ));
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let header = token.header.clone();
        state.token = Some(token);
        Ok(header)
    }

    /// One token request.
    async fn fetch(&self, secret: &str, style: AuthStyle) -> Result<Token, String> {
        let mut form = BTreeMap::new();
        form.insert("grant_type".to_owned(), "client_credentials".to_owned());
        if !self.scopes.is_empty() {
            form.insert("scope".to_owned(), self.scopes.join(" "));
        }
        for (name, value) in &self.endpoint_params {
            if name != "grant_type" && form.contains_key(name) {
                return Err(format!("oauth2: cannot overwrite parameter {name:?}"));
            }
            form.insert(name.clone(), value.clone());
        }
        if style == AuthStyle::Params {
            if !self.client_id.is_empty() {
                form.insert("client_id".to_owned(), self.client_id.clone());
            }
            if !secret.is_empty() {
                form.insert("client_secret".to_owned(), secret.to_owned());
            }
        }
        let mut request = self
            .client
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(encode_form(&form));
        if style == AuthStyle::Header {
            request = request.basic_auth(query_escape(&self.client_id), Some(query_escape(secret)));
        }
        let fail = |detail: String| format!("oauth2: cannot fetch token: {detail}");
        let started = Instant::now();
        let mut response = request
            .send()
            .await
            .map_err(|e| fail(crate::error_chain(&e.without_url())))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(crate::error_chain(&e.without_url())))?
        {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        // What the endpoint says is quoted in errors, but never the secret it may echo.
        let mask = |text: &str| {
            if secret.is_empty() {
                text.to_owned()
            } else {
                text.replace(secret, "<secret>")
            }
        };
        let quoted = || {
            mask(&String::from_utf8_lossy(
                &body[..body.len().min(QUOTED_BODY)],
            ))
            .trim()
            .to_owned()
        };
        let failure = !status.is_success();
        let answer = match content_type.as_str() {
            "application/x-www-form-urlencoded" | "text/plain" => parse_form_answer(&body),
            _ => parse_json(&body),
        };
        let Some(answer) = answer else {
            return Err(if failure {
                fail(format!("{status}: response: {}", quoted()))
            } else {
                fail(format!(
                    "cannot parse the token endpoint's answer: {}",
                    quoted()
                ))
            });
        };
        if !answer.error.is_empty() {
            let mut text = format!("{status}: {:?}", mask(&answer.error));
            if !answer.error_description.is_empty() {
                text.push_str(&format!(" {:?}", mask(&answer.error_description)));
            }
            if !answer.error_uri.is_empty() {
                text.push_str(&format!(" {:?}", mask(&answer.error_uri)));
            }
            return Err(fail(text));
        }
        if failure {
            return Err(fail(format!("{status}: response: {}", quoted())));
        }
        if answer.access_token.is_empty() {
            return Err("oauth2: server response missing access_token".to_owned());
        }
        let mut header = HeaderValue::from_str(&format!(
            "{} {}",
            token_type(&answer.token_type),
            answer.access_token
        ))
        .map_err(|_| fail("the token is not a valid header value".to_owned()))?;
        header.set_sensitive(true);
        let renew_at = answer.expires_in.map(|secs| {
            if secs <= 0 {
                started
            } else {
                let lifetime = Duration::from_secs(secs.unsigned_abs());
                started + lifetime.saturating_sub(EXPIRY_DELTA)
            }
        });
        tracing::debug!(token_url = %redacted(&self.token_url), expires_in = ?answer.expires_in, "oauth2: new token");
        Ok(Token { header, renew_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_form_encoding() {
        assert_eq!(query_escape("a b+c/d~e*"), "a+b%2Bc%2Fd~e%2A");
        let mut form = BTreeMap::new();
        form.insert("scope".to_owned(), "read write".to_owned());
        form.insert("grant_type".to_owned(), "client_credentials".to_owned());
        form.insert("audience".to_owned(), "https://x/".to_owned());
        assert_eq!(
            encode_form(&form),
            "audience=https%3A%2F%2Fx%2F&grant_type=client_credentials&scope=read+write"
        );
        assert_eq!(query_unescape("a+b%2F"), Some("a b/".to_owned()));
        assert_eq!(query_unescape("%zz"), None);
        let parsed = parse_form("access_token=t%2B1&expires_in=60&x").unwrap_or_default();
        assert_eq!(parsed.get("access_token").map(String::as_str), Some("t+1"));
        assert_eq!(parsed.get("x").map(String::as_str), Some(""));
    }

    #[test]
    fn answers() {
        let a = parse_json(br#"{"access_token":"abc","token_type":"bearer","expires_in":"3600"}"#)
            .unwrap_or_default();
        assert_eq!((a.access_token.as_str(), a.expires_in), ("abc", Some(3600)));
        assert_eq!(token_type(&a.token_type), "Bearer");
        assert_eq!(token_type("mac"), "MAC");
        assert_eq!(token_type("DPoP"), "DPoP");
        let big =
            parse_json(br#"{"access_token":"abc","expires_in":99999999999}"#).unwrap_or_default();
        assert_eq!(big.expires_in, Some(i64::from(i32::MAX)));
        assert!(parse_json(br#"{"access_token":"abc","expires_in":1.5}"#).is_none());
        assert!(parse_json(b"not json").is_none());
        let e = parse_json(br#"{"error":"invalid_client","error_description":"bad"}"#)
            .unwrap_or_default();
        assert_eq!(
            (e.error.as_str(), e.error_description.as_str()),
            ("invalid_client", "bad")
        );
        let f = parse_form_answer(b"access_token=xyz&token_type=bearer&expires_in=0")
            .unwrap_or_default();
        assert_eq!((f.access_token.as_str(), f.expires_in), ("xyz", None));
    }

    #[test]
    fn jwt_bearer_is_refused_and_debug_hides_secrets() {
        let cfg = OAuth2 {
            client_id: "id".into(),
            client_secret: Some(config::Secret::new("very-secret")),
            token_url: "https://user:pw@auth.example/token".into(),
            grant_type: JWT_BEARER.into(),
            ..OAuth2::default()
        };
        let client = || {
            crate::build_client(
                &config::TlsConfig::default(),
                &config::ProxyConfig::default(),
                reqwest::redirect::Policy::none(),
                false,
                "test",
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let err = TokenSource::new(&cfg, client()).err().unwrap_or_default();
        assert!(err.contains("not supported"), "{err}");
        let cfg = OAuth2 {
            grant_type: String::new(),
            ..cfg
        };
        let source = TokenSource::new(&cfg, client()).unwrap_or_else(|e| panic!("{e}"));
        let text = format!("{source:?}");
        assert!(
            !text.contains("very-secret") && !text.contains("pw@"),
            "{text}"
        );
    }
}
