//! Building and sending one write request: the protobuf body (remote write 1.0), snappy
//! block compression, the headers the specification requires, and the classification of the
//! receiver's answer into "done", "retry (maybe after Retry-After)" and "refused".
//!
//! Sending goes through the [`Transport`] trait so that tests can inject faults; the real one,
//! [`HttpTransport`], uses the shared `httpclient` crate (TLS, basic auth, authorization,
//! bearer token files re-read per request, OAuth 2.0 tokens, SigV4 signing, proxy). The
//! remote-write `headers` are set before the request is signed, so SigV4 covers them, as in
//! Prometheus; an authentication failure (token endpoint, STS) is a transport failure and is
//! retried.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// The header values remote write 1.0 requires.
pub const CONTENT_TYPE_V1: &str = "application/x-protobuf";
pub const REMOTE_WRITE_VERSION_V1: &str = "0.1.0";

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `Retry-After`, as a delay.
    pub retry_after: Option<Duration>,
    /// The start of the body, for logs.
    pub message: String,
    /// `X-Prometheus-Remote-Write-Samples-Written` (remote write 2.0 receivers).
    pub samples_written: Option<u64>,
}

/// A boxed future, so that the trait stays object safe.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, String>> + Send + 'a>>;

/// Delivers one compressed write request. `Err` is a transport failure (connection refused,
/// timeout, reset), which is always retried.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, body: Vec<u8>) -> SendFuture<'_>;
}

/// How a response is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Try again, after at least this long when the receiver said so.
    Retry(Option<Duration>),
    /// Not retried: the samples are counted as failed.
    Refused,
}

/// Prometheus' rules, except that 429 is retried by default in Meridian
/// (`retry_on_http_429: true`; Prometheus defaults to false and drops the data).
pub fn classify(r: &Result<Response, String>, retry_on_429: bool) -> Verdict {
    match r {
        Err(_) => Verdict::Retry(None),
        Ok(r) if (200..300).contains(&r.status) => Verdict::Done,
        Ok(r) if r.status >= 500 || r.status == 408 => Verdict::Retry(r.retry_after),
        Ok(r) if r.status == 429 && retry_on_429 => Verdict::Retry(r.retry_after),
        Ok(_) => Verdict::Refused,
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate(v)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Sends over HTTP with the shared client.
pub struct HttpTransport {
    client: httpclient::HttpClient,
    message: config::RemoteWriteMessage,
    url: String,
    headers: BTreeMap<String, String>,
    timeout: Duration,
}

impl HttpTransport {
    pub fn new(
        client: httpclient::HttpClient,
        url: &str,
        headers: BTreeMap<String, String>,
        timeout: Duration,
        message: config::RemoteWriteMessage,
    ) -> HttpTransport {
        HttpTransport {
            client,
            message,
            url: url.to_owned(),
            headers,
            timeout,
        }
    }
}

impl Transport for HttpTransport {
    fn send(&self, body: Vec<u8>) -> SendFuture<'_> {
        Box::pin(async move {
            let mut req = self
                .client
                .request(httpclient::reqwest::Method::POST, &self.url)?;
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let (content_type, version) = match self.message {
                config::RemoteWriteMessage::V1 => (CONTENT_TYPE_V1, REMOTE_WRITE_VERSION_V1),
                config::RemoteWriteMessage::V2 => {
                    (crate::proto_v2::CONTENT_TYPE, crate::proto_v2::VERSION)
                }
            };
            let req = req
                .header("Content-Encoding", "snappy")
                .header("Content-Type", content_type)
                .header("X-Prometheus-Remote-Write-Version", version)
                .timeout(self.timeout)
                .body(body);
            let resp = req.send().await.map_err(|e| httpclient::error_chain(&e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let samples_written = resp
                .headers()
                .get("x-prometheus-remote-write-samples-written")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            // Only the start of an error body is kept (for the log line).
            let message = if (200..300).contains(&status) {
                String::new()
            } else {
                match resp.bytes().await {
                    Ok(b) => String::from_utf8_lossy(&b[..b.len().min(512)])
                        .trim()
                        .to_owned(),
                    Err(_) => String::new(),
                }
            };
            Ok(Response {
                status,
                retry_after,
                message,
                samples_written,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, retry_after: Option<Duration>) -> Result<Response, String> {
        Ok(Response {
            status,
            retry_after,
            message: String::new(),
            samples_written: None,
        })
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&resp(204, None), true), Verdict::Done);
        assert_eq!(classify(&resp(503, None), true), Verdict::Retry(None));
        assert_eq!(classify(&resp(408, None), false), Verdict::Retry(None));
        let after = Some(Duration::from_secs(3));
        assert_eq!(classify(&resp(429, after), true), Verdict::Retry(after));
        assert_eq!(classify(&resp(429, after), false), Verdict::Refused);
        assert_eq!(classify(&resp(400, None), true), Verdict::Refused);
        assert_eq!(classify(&resp(404, None), true), Verdict::Refused);
        assert_eq!(
            classify(&Err("connection refused".into()), true),
            Verdict::Retry(None)
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
