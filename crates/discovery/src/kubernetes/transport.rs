//! The bytes under kube: a tower [`Service`] that carries the requests a [`kube::Client`]
//! builds to the API server through our [`HttpClient`], and the [`kube::Client`] made from it.
//!
//! kube builds requests with relative URIs (`/api/v1/pods?limit=500`); the transport puts the
//! API server's base URL in front (keeping a path prefix such as `https://host/k8s`), sends
//! them with the job's HTTP client settings — our rustls configuration with the aws-lc-rs
//! provider, CA and client certificates re-read on change, `authorization`/`basic_auth` with
//! credentials files read at every request (a rotated service-account token is used by the
//! next request), proxy — and hands the response body back as a stream, so watches flow event
//! by event. kube therefore needs none of its own TLS, proxy or authentication features.
//!
//! Requests other than watches get a time limit; a watch response may not carry a line (one
//! event) longer than [`MAX_EVENT_BYTES`], which bounds the memory one connection can take.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use httpclient::HttpClient;
use httpclient::reqwest::Url;
use tower::Service;

/// Errors crossing the tower boundary.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A watch event line larger than this ends the watch with an error.
pub const MAX_EVENT_BYTES: usize = 64 << 20;
/// The time limit of a request that is not a watch (a list page).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends kube's requests to one API server through one [`HttpClient`].
#[derive(Clone)]
pub struct Transport {
    client: HttpClient,
    base: Url,
}

impl Transport {
    pub fn new(client: HttpClient, base: Url) -> Transport {
        Transport { client, base }
    }

    /// The absolute URL of a request kube addressed relative to the API server.
    fn url(&self, uri: &http::Uri) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}{}", url.path().trim_end_matches('/'), uri.path());
        url.set_path(&path);
        url.set_query(uri.query().filter(|q| !q.is_empty()));
        url
    }

    async fn send(
        self,
        request: http::Request<kube::client::Body>,
    ) -> Result<http::Response<ResponseBody>, BoxError> {
        let (parts, body) = request.into_parts();
        let url = self.url(&parts.uri);
        let watching = url
            .query_pairs()
            .any(|(name, value)| name == "watch" && (value == "true" || value == "1"));
        let body = body.collect_bytes().await?;
        let mut builder = self
            .client
            .request(parts.method, url.as_str())?
            .headers(parts.headers);
        if !body.is_empty() {
            builder = builder.body(body);
        }
        if !watching {
            builder = builder.timeout(REQUEST_TIMEOUT);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| httpclient::error_chain(&e))?;
        let response: http::Response<httpclient::reqwest::Body> = response.into();
        Ok(response.map(|inner| ResponseBody {
            inner,
            line_limit: watching.then_some(MAX_EVENT_BYTES),
            line_len: 0,
        }))
    }
}

impl Service<http::Request<kube::client::Body>> for Transport {
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The HTTP client's pool takes any number of requests.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}

/// A response body streamed from reqwest; for watches, with a bound on the line length.
pub struct ResponseBody {
    inner: httpclient::reqwest::Body,
    /// Watches: the longest line (event) allowed.
    line_limit: Option<usize>,
    /// Bytes since the last newline.
    line_len: usize,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Some(Err(httpclient::error_chain(&e).into())));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let (Some(limit), Some(data)) = (this.line_limit, frame.data_ref()) {
            match data.iter().rposition(|b| *b == b'\n') {
                Some(last) => this.line_len = data.len() - last - 1,
                None => this.line_len += data.len(),
            }
            if this.line_len > limit {
                let error = format!("watch event larger than {limit} bytes");
                return Poll::Ready(Some(Err(error.into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A kube client that talks to `base` through `client`. Needs a tokio runtime (kube runs a
/// small dispatch task).
pub fn kube_client(client: HttpClient, base: Url, default_namespace: &str) -> kube::Client {
    kube::Client::new(Transport::new(client, base), default_namespace)
}

/// An error of a kube request, in one line: the API server's `Status` (code and message), or
/// the transport's error chain.
pub fn describe_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let code = http::StatusCode::from_u16(status.code)
                .map(|c| c.to_string())
                .unwrap_or_else(|_| status.code.to_string());
            format!("server returned HTTP status {code}: {}", status.message)
        }
        // Our transport's errors are already whole chains.
        kube::Error::Service(inner) => inner.to_string(),
        kube::Error::SerdeError(e) => format!("decoding the API server's response: {e}"),
        kube::Error::ReadEvents(e) => format!("reading the watch stream: {e}"),
        other => httpclient::error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(base: &str) -> Transport {
        let client = HttpClient::new(&config::HttpClientConfig::default(), "test")
            .expect("default client builds");
        Transport::new(client, Url::parse(base).expect("base URL"))
    }

    fn watch_body(text: &'static str, limit: usize) -> ResponseBody {
        ResponseBody {
            inner: httpclient::reqwest::Body::from(text),
            line_limit: Some(limit),
            line_len: 0,
        }
    }

    async fn next_frame(body: &mut ResponseBody) -> Option<Result<Frame<Bytes>, BoxError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    #[tokio::test]
    async fn watch_events_longer_than_the_limit_are_an_error() {
        let mut long = watch_body("{\"type\":\"ADDED\",\"object\":{}}", 8);
        let error = next_frame(&mut long).await.and_then(Result::err);
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("watch event larger than 8 bytes")
        );
        let mut short = watch_body("{\"a\":1}\n{\"b\":2}\n", 8);
        assert!(matches!(next_frame(&mut short).await, Some(Ok(_))));
    }

    #[test]
    fn relative_uris_join_the_base_url_and_its_prefix() {
        let uri: http::Uri = "/api/v1/namespaces/a/pods?limit=500&labelSelector=app%3Dx"
            .parse()
            .expect("uri");
        let url = transport("https://k8s.example:6443/prefix/").url(&uri);
        assert_eq!(
            url.as_str(),
            "https://k8s.example:6443/prefix/api/v1/namespaces/a/pods?limit=500&labelSelector=app%3Dx"
        );
        let bare: http::Uri = "/api/v1/nodes?".parse().expect("uri");
        assert_eq!(
            transport("http://127.0.0.1:8080").url(&bare).as_str(),
            "http://127.0.0.1:8080/api/v1/nodes"
        );
    }
}
