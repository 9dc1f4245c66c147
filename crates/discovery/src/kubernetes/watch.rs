//! The list-then-watch loop of one resource in one namespace (or all of them), speaking the
//! Kubernetes REST protocol directly: a paged list (`limit`/`continue`) gives the objects and
//! a `resourceVersion`; a watch from that version streams newline-delimited JSON events
//! (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`) over a chunked response. A watch
//! that ends normally is resumed from the last version seen; errors are retried with
//! exponential backoff; `410 Gone` (as a status or an `ERROR` event) relists. What it sees is
//! reported as [`Change`]s (a full list replaces the namespace's objects) to the discoverer,
//! which keeps the objects and renders target groups.

use std::time::Duration;

use httpclient::HttpClient;
use httpclient::reqwest::{Method, StatusCode, Url};
use tokio::sync::mpsc;

use super::objects::{KubeObject, MetaOnly, ObjectList, Status, WatchEvent};

/// Objects per list page.
const PAGE_SIZE: u32 = 500;
/// A watch event line larger than this is an error (bounds memory per connection).
const MAX_EVENT_BYTES: usize = 64 << 20;
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how one watcher talks to the API server.
#[derive(Clone)]
pub struct WatchTarget {
    pub client: HttpClient,
    /// The API server URL (a path prefix is kept).
    pub base: Url,
    /// `/api/v1` or `/apis/<group>/<version>`.
    pub api_prefix: &'static str,
    /// `pods`, `services`, …
    pub plural: &'static str,
    /// `None`: all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
    /// The first retry delay; doubled up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The server-side watch timeout asked for (`timeoutSeconds`).
    pub watch_timeout: Duration,
}

/// How a watch ended.
enum WatchEnd {
    /// The stream ended (server timeout): resume from the last version.
    Closed,
    /// The version is too old: list again.
    Gone,
    /// The receiver of updates is gone: stop.
    Stopped,
}

/// Why a request failed.
#[derive(Debug)]
enum WatchError {
    Gone,
    Other(String),
}

impl WatchTarget {
    fn url(&self, query: &[(&str, &str)]) -> Result<Url, String> {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        path.push_str(self.api_prefix);
        if let Some(ns) = &self.namespace {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        path.push('/');
        path.push_str(self.plural);
        url.set_path(&path);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            if !self.label_selector.is_empty() {
                pairs.append_pair("labelSelector", &self.label_selector);
            }
            if !self.field_selector.is_empty() {
                pairs.append_pair("fieldSelector", &self.field_selector);
            }
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} in namespace {ns}", self.plural),
            None => self.plural.to_owned(),
        }
    }
}

/// Error text for a non-success response (its `Status` message when there is one).
async fn status_error(response: httpclient::reqwest::Response) -> WatchError {
    let code = response.status();
    if code == StatusCode::GONE {
        return WatchError::Gone;
    }
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Status>(&body)
        .map(|s| s.message)
        .unwrap_or_default();
    WatchError::Other(format!("server returned HTTP status {code}: {detail}"))
}

/// What a watcher saw.
#[derive(Debug)]
pub enum Change<T> {
    /// Every object of the namespace (all namespaces when `None`), replacing what was known.
    Listed {
        namespace: Option<String>,
        objects: Vec<T>,
    },
    /// Added or modified.
    Applied(T),
    Deleted {
        namespace: String,
        name: String,
    },
}

/// Turns a change into the discoverer's message type.
pub type Wrap<T, M> = fn(Change<T>) -> M;

/// Watches one resource and reports its changes until the receiver closes.
pub struct Watcher<T, M> {
    target: WatchTarget,
    wrap: Wrap<T, M>,
}

impl<T: KubeObject, M: Send + 'static> Watcher<T, M> {
    pub fn new(target: WatchTarget, wrap: Wrap<T, M>) -> Watcher<T, M> {
        Watcher { target, wrap }
    }

    pub async fn run(self, updates: mpsc::Sender<M>) {
        let mut backoff = self.target.min_backoff;
        'relist: loop {
            let mut version = match self.list(&updates).await {
                Ok(Some(version)) => version,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(
                        what = %self.target.describe(),
                        err = e,
                        "Kubernetes list failed; retrying"
                    );
                    if wait(&updates, &mut backoff, self.target.max_backoff).await {
                        continue 'relist;
                    }
                    return;
                }
            };
            backoff = self.target.min_backoff;
            loop {
                match self.watch(&mut version, &updates).await {
                    Ok(WatchEnd::Closed) => backoff = self.target.min_backoff,
                    Ok(WatchEnd::Gone) | Err(WatchError::Gone) => {
                        tracing::info!(
                            what = %self.target.describe(),
                            "Kubernetes watch: resource version expired; listing again"
                        );
                        continue 'relist;
                    }
                    Ok(WatchEnd::Stopped) => return,
                    Err(WatchError::Other(e)) => {
                        tracing::warn!(
                            what = %self.target.describe(),
                            err = e,
                            "Kubernetes watch failed; reconnecting"
                        );
                        if !wait(&updates, &mut backoff, self.target.max_backoff).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Lists every object (page by page), reports them and returns the version to watch
    /// from; `None` when `updates` closed.
    async fn list(&self, updates: &mpsc::Sender<M>) -> Result<Option<String>, String> {
        let mut objects: Vec<T> = Vec::new();
        let mut continue_token = String::new();
        let version = loop {
            let limit = PAGE_SIZE.to_string();
            let mut query = vec![("limit", limit.as_str())];
            if !continue_token.is_empty() {
                query.push(("continue", continue_token.as_str()));
            }
            let url = self.target.url(&query)?;
            let response = self
                .target
                .client
                .request(Method::GET, url.as_str())?
                .header("Accept", "application/json")
                .timeout(LIST_TIMEOUT)
                .send()
                .await
                .map_err(|e| httpclient::error_chain(&e))?;
            if !response.status().is_success() {
                return Err(match status_error(response).await {
                    WatchError::Gone => "server returned HTTP status 410 Gone".to_owned(),
                    WatchError::Other(e) => e,
                });
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| httpclient::error_chain(&e))?;
            let page: ObjectList<T> = serde_json::from_slice(&body)
                .map_err(|e| format!("decoding the list of {}: {e}", self.target.plural))?;
            objects.extend(page.items);
            if page.metadata.continue_token.is_empty() {
                break page.metadata.resource_version;
            }
            continue_token = page.metadata.continue_token;
        };

        let change = Change::Listed {
            namespace: self.target.namespace.clone(),
            objects,
        };
        if updates.send((self.wrap)(change)).await.is_err() {
            return Ok(None);
        }
        Ok(Some(version))
    }

    /// One watch request from `version`, applying its events until the stream ends.
    async fn watch(
        &self,
        version: &mut String,
        updates: &mpsc::Sender<M>,
    ) -> Result<WatchEnd, WatchError> {
        let timeout = self.target.watch_timeout.as_secs().max(1).to_string();
        let url = self
            .target
            .url(&[
                ("watch", "1"),
                ("resourceVersion", version.as_str()),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", timeout.as_str()),
            ])
            .map_err(WatchError::Other)?;
        let mut response = self
            .target
            .client
            .request(Method::GET, url.as_str())
            .map_err(WatchError::Other)?
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| WatchError::Other(httpclient::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        // A silent connection is dead once the server's own timeout has long passed.
        let idle_limit = self.target.watch_timeout + Duration::from_secs(30);
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(idle_limit, response.chunk()).await {
                Err(_) => return Err(WatchError::Other("watch stream idle too long".into())),
                Ok(Err(e)) => return Err(WatchError::Other(httpclient::error_chain(&e))),
                Ok(Ok(None)) => return Ok(WatchEnd::Closed),
                Ok(Ok(Some(chunk))) => chunk,
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                match self.apply(line, version, updates).await? {
                    None => {}
                    Some(end) => return Ok(end),
                }
            }
            if buffer.len() > MAX_EVENT_BYTES {
                return Err(WatchError::Other(format!(
                    "watch event larger than {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
    }

    /// Applies one watch event; `Some` ends the watch.
    async fn apply(
        &self,
        line: &[u8],
        version: &mut String,
        updates: &mpsc::Sender<M>,
    ) -> Result<Option<WatchEnd>, WatchError> {
        let event: WatchEvent = serde_json::from_slice(line)
            .map_err(|e| WatchError::Other(format!("decoding a watch event: {e}")))?;
        let change = match event.kind.as_str() {
            "ADDED" | "MODIFIED" => {
                let object: T = serde_json::from_value(event.object).map_err(|e| {
                    WatchError::Other(format!("decoding a watched {}: {e}", self.target.plural))
                })?;
                *version = object.metadata().resource_version.clone();
                Change::Applied(object)
            }
            "DELETED" => {
                let object: MetaOnly = serde_json::from_value(event.object).map_err(|e| {
                    WatchError::Other(format!("decoding a deleted {}: {e}", self.target.plural))
                })?;
                *version = object.metadata.resource_version;
                Change::Deleted {
                    namespace: object.metadata.namespace,
                    name: object.metadata.name,
                }
            }
            "BOOKMARK" => {
                if let Ok(object) = serde_json::from_value::<MetaOnly>(event.object) {
                    *version = object.metadata.resource_version;
                }
                return Ok(None);
            }
            "ERROR" => {
                let status: Status = serde_json::from_value(event.object).unwrap_or_default();
                if status.code == 410 {
                    return Ok(Some(WatchEnd::Gone));
                }
                return Err(WatchError::Other(format!(
                    "watch error {}: {} {}",
                    status.code, status.reason, status.message
                )));
            }
            other => {
                tracing::debug!(event = other, "unknown Kubernetes watch event ignored");
                return Ok(None);
            }
        };
        if updates.send((self.wrap)(change)).await.is_err() {
            return Ok(Some(WatchEnd::Stopped));
        }
        Ok(None)
    }
}

/// Sleeps for the backoff (then doubles it); false when `updates` closed meanwhile.
async fn wait<M>(updates: &mpsc::Sender<M>, backoff: &mut Duration, max: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = updates.closed() => return false,
    }
    *backoff = (*backoff * 2).min(max);
    true
}
