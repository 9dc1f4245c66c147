//! The list-then-watch loop of one kind in one namespace (or all of them), with kube's typed
//! requests ([`kube::Api`]): a paged list (`limit`/`continue`) gives the objects and a
//! `resourceVersion`; a watch from that version (with bookmarks and a server-side timeout)
//! streams [`WatchEvent`]s. A watch that ends normally is resumed from the last version seen
//! (an object's or a bookmark's); errors are retried with exponential backoff; `410 Gone`
//! (as the watch request's status or as an `ERROR` event) lists again. A watch that stays
//! silent well past its timeout counts as a dead connection. What it sees is reported as
//! [`Change`]s (a full list replaces the namespace's objects) to the discoverer, which keeps
//! the objects and renders target groups.
//!
//! This is our own loop rather than kube-runtime's `watcher`: it reports whole lists as one
//! change (so a relist replaces the namespace's objects at once), detects silent connections,
//! and logs each failure once with its cause, and kube-runtime would add another dependency
//! tree for what is a hundred lines here.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use tokio::sync::mpsc;

use super::objects::{self, KubeObject};
use super::transport::describe_error;
use crate::SdMetrics;

/// Objects per list page.
const PAGE_SIZE: u32 = 500;

/// Where and how one watcher talks to the API server.
#[derive(Clone)]
pub struct WatchTarget<T: KubeObject> {
    /// The kind's endpoint in one namespace, or in all of them.
    pub api: Api<T>,
    /// `None`: all namespaces (or a cluster-scoped kind).
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
    /// The first retry delay; doubled up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The server-side watch timeout asked for (`timeoutSeconds`).
    pub watch_timeout: Duration,
    /// Failed list and watch requests are counted here
    /// (`prometheus_sd_kubernetes_failures_total`).
    pub metrics: Arc<SdMetrics>,
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

impl From<kube::Error> for WatchError {
    fn from(error: kube::Error) -> WatchError {
        match &error {
            kube::Error::Api(status) if status.code == 410 => WatchError::Gone,
            _ => WatchError::Other(describe_error(&error)),
        }
    }
}

impl<T: KubeObject> WatchTarget<T> {
    fn describe(&self) -> String {
        let plural = T::plural(&());
        match &self.namespace {
            Some(ns) => format!("{plural} in namespace {ns}"),
            None => plural.into_owned(),
        }
    }

    fn list_params(&self) -> ListParams {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if !self.label_selector.is_empty() {
            params = params.labels(&self.label_selector);
        }
        if !self.field_selector.is_empty() {
            params = params.fields(&self.field_selector);
        }
        params
    }

    fn watch_params(&self) -> WatchParams {
        let seconds = u32::try_from(self.watch_timeout.as_secs().max(1)).unwrap_or(u32::MAX);
        let mut params = WatchParams::default().timeout(seconds);
        params.bookmarks = true;
        if !self.label_selector.is_empty() {
            params = params.labels(&self.label_selector);
        }
        if !self.field_selector.is_empty() {
            params = params.fields(&self.field_selector);
        }
        params
    }
}

/// What a watcher saw.
#[derive(Debug)]
pub enum Change<T> {
    /// Every object of the namespace (all namespaces when `None`), replacing what was known.
    Listed {
        namespace: Option<String>,
        objects: Vec<T>,
    },
    /// Added or modified (boxed: k8s-openapi objects are large, and changes queue up in a
    /// channel).
    Applied(Box<T>),
    Deleted {
        namespace: String,
        name: String,
    },
}

/// Turns a change into the discoverer's message type.
pub type Wrap<T, M> = fn(Change<T>) -> M;

/// Watches one kind and reports its changes until the receiver closes.
pub struct Watcher<T: KubeObject, M> {
    target: WatchTarget<T>,
    wrap: Wrap<T, M>,
}

impl<T: KubeObject, M: Send + 'static> Watcher<T, M> {
    pub fn new(target: WatchTarget<T>, wrap: Wrap<T, M>) -> Watcher<T, M> {
        Watcher { target, wrap }
    }

    pub async fn run(self, updates: mpsc::Sender<M>) {
        let mut backoff = self.target.min_backoff;
        'relist: loop {
            let mut version = match self.list(&updates).await {
                Ok(Some(version)) => version,
                Ok(None) => return,
                Err(e) => {
                    self.target.metrics.kubernetes_failure();
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
                        self.target.metrics.kubernetes_failure();
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
        let mut params = self.target.list_params();
        let version = loop {
            let page = match self.target.api.list(&params).await {
                Ok(page) => page,
                Err(kube::Error::Api(status)) if status.code == 410 => {
                    return Err("server returned HTTP status 410 Gone".to_owned());
                }
                Err(e) => return Err(describe_error(&e)),
            };
            objects.extend(page.items);
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break page.metadata.resource_version.unwrap_or_default(),
            }
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
        let params = self.target.watch_params();
        let stream = self.target.api.watch(&params, version).await?;
        let mut stream = std::pin::pin!(stream);
        // A silent connection is dead once the server's own timeout has long passed.
        let idle_limit = self.target.watch_timeout + Duration::from_secs(30);
        loop {
            let event = match tokio::time::timeout(idle_limit, stream.next()).await {
                Err(_) => return Err(WatchError::Other("watch stream idle too long".into())),
                Ok(None) => return Ok(WatchEnd::Closed),
                Ok(Some(event)) => event?,
            };
            if let Some(end) = self.apply(event, version, updates).await? {
                return Ok(end);
            }
        }
    }

    /// Applies one watch event; `Some` ends the watch.
    async fn apply(
        &self,
        event: WatchEvent<T>,
        version: &mut String,
        updates: &mpsc::Sender<M>,
    ) -> Result<Option<WatchEnd>, WatchError> {
        let change = match event {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                if let Some(v) = &object.meta().resource_version {
                    v.clone_into(version);
                }
                Change::Applied(Box::new(object))
            }
            WatchEvent::Deleted(object) => {
                let meta = object.meta();
                if let Some(v) = &meta.resource_version {
                    v.clone_into(version);
                }
                Change::Deleted {
                    namespace: objects::namespace(meta).to_owned(),
                    name: objects::name(meta).to_owned(),
                }
            }
            WatchEvent::Bookmark(bookmark) => {
                *version = bookmark.metadata.resource_version;
                return Ok(None);
            }
            WatchEvent::Error(status) => {
                if status.code == 410 {
                    return Ok(Some(WatchEnd::Gone));
                }
                return Err(WatchError::Other(format!(
                    "watch error {}: {} {}",
                    status.code, status.reason, status.message
                )));
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
