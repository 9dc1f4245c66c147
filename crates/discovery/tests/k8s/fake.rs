//! A fake Kubernetes API server for tests: an axum server on 127.0.0.1 that speaks the REST
//! list/watch protocol of the core/v1, discovery.k8s.io/v1 and networking.k8s.io/v1
//! resources — lists with `resourceVersion`, `limit` and
//! `continue`; watches as chunked newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`) replayed from the requested version and then live;
//! `410 Gone` (as an `ERROR` event, or as the HTTP status) for versions older than the last
//! compaction; label (`=`, `==`, `!=`, `key`, `!key`) and field (`metadata.*`, `spec.*`,
//! `status.*` with `=`/`!=`) selectors, where an object leaving a watch's selection is sent
//! as `DELETED` and one entering it as `ADDED`, as the API server does. It records every
//! request (path, query, `Authorization` header) for assertions. It speaks plain HTTP
//! ([`FakeApiServer::start`]) or HTTPS with a certificate the test gives it
//! ([`FakeApiServer::start_tls`]).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
}

impl Request {
    pub fn is_watch(&self) -> bool {
        self.query
            .get("watch")
            .is_some_and(|w| w == "1" || w == "true")
    }
}

/// One change of an object: the state before (None when created) and after (None when
/// deleted).
struct Change {
    version: u64,
    plural: String,
    before: Option<Value>,
    after: Option<Value>,
}

/// What a watch selects.
#[derive(Clone)]
struct Filter {
    plural: String,
    namespace: Option<String>,
    labels: String,
    fields: String,
}

impl Filter {
    fn matches(&self, plural: &str, object: &Value) -> bool {
        plural == self.plural
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns.as_str()))
            && labels_match(&self.labels, object)
            && fields_match(&self.fields, object)
    }

    /// The event this watch sees for a change, if any.
    fn event_for(&self, change: &Change) -> Option<(&'static str, Value)> {
        let before = change
            .before
            .as_ref()
            .filter(|o| self.matches(&change.plural, o));
        let after = change
            .after
            .as_ref()
            .filter(|o| self.matches(&change.plural, o));
        match (before, after) {
            (None, Some(after)) => Some(("ADDED", after.clone())),
            (Some(_), Some(after)) => Some(("MODIFIED", after.clone())),
            (Some(before), None) => {
                // A deleted object carries the deletion's version; one that left the
                // selection, its new state.
                let mut object = change.after.clone().unwrap_or_else(|| before.clone());
                object["metadata"]["resourceVersion"] = json!(change.version.to_string());
                Some(("DELETED", object))
            }
            (None, None) => None,
        }
    }
}

fn labels_match(selector: &str, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((key, value)) = term.split_once("!=") {
                labels[key.trim()].as_str() != Some(value.trim())
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                labels[key.trim()].as_str() == Some(value.trim())
            } else if let Some(key) = term.strip_prefix('!') {
                labels.get(key.trim()).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
}

fn field_value<'a>(object: &'a Value, path: &str) -> Option<&'a str> {
    let mut node = object;
    for part in path.split('.') {
        node = node.get(part)?;
    }
    node.as_str()
}

fn fields_match(selector: &str, object: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((path, value)) = term.split_once("!=") {
                field_value(object, path.trim()).unwrap_or("") != value.trim()
            } else if let Some((path, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                field_value(object, path.trim()).unwrap_or("") == value.trim()
            } else {
                false
            }
        })
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "pods" => "Pod",
        "services" => "Service",
        "nodes" => "Node",
        "endpoints" => "Endpoints",
        "endpointslices" => "EndpointSlice",
        "ingresses" => "Ingress",
        "namespaces" => "Namespace",
        _ => "Unknown",
    }
}

fn api_version_of(plural: &str) -> &'static str {
    match plural {
        "endpointslices" => "discovery.k8s.io/v1",
        "ingresses" => "networking.k8s.io/v1",
        _ => "v1",
    }
}

/// The path prefix of a resource's API group.
fn prefix_of(plural: &str) -> &'static str {
    match plural {
        "endpointslices" => "/apis/discovery.k8s.io/v1",
        "ingresses" => "/apis/networking.k8s.io/v1",
        _ => "/api/v1",
    }
}

struct Watch {
    filter: Filter,
    events: mpsc::UnboundedSender<String>,
}

#[derive(Default)]
struct Cluster {
    version: u64,
    /// (plural, namespace, name) → object without kind/apiVersion, as list items are.
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Change>,
    /// Watches from versions below this get 410 Gone.
    compacted: u64,
    watches: Vec<Watch>,
    requests: Vec<Request>,
    /// Answer 410 as the HTTP status of the watch request instead of an ERROR event.
    gone_as_status: bool,
    /// Fail this many of the next requests with 500.
    fail_requests: usize,
}

/// The fake API server. Dropping it stops the server.
pub struct FakeApiServer {
    pub addr: SocketAddr,
    cluster: Arc<Mutex<Cluster>>,
    server: tokio::task::JoinHandle<()>,
    https: bool,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn event_line(kind: &str, plural: &str, object: &Value) -> String {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.insert("kind".into(), json!(kind_of(plural)));
        map.insert("apiVersion".into(), json!(api_version_of(plural)));
    }
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    line
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// Accepts TLS connections (a failed handshake, e.g. a client that does not trust the
/// certificate, is dropped and the next connection accepted).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl FakeApiServer {
    /// Serves plain HTTP on 127.0.0.1.
    pub async fn start() -> FakeApiServer {
        FakeApiServer::serve(None).await
    }

    /// Serves HTTPS on 127.0.0.1 with `tls` (its certificate must cover 127.0.0.1).
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> FakeApiServer {
        FakeApiServer::serve(Some(tls)).await
    }

    async fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> FakeApiServer {
        let https = tls.is_some();
        let cluster = Arc::new(Mutex::new(Cluster {
            version: 100,
            ..Cluster::default()
        }));
        let app = Router::new()
            .route("/api/v1/{plural}", get(cluster_wide))
            .route("/api/v1/namespaces/{namespace}/{plural}", get(namespaced))
            .route("/apis/discovery.k8s.io/v1/{plural}", get(cluster_wide))
            .route("/apis/networking.k8s.io/v1/{plural}", get(cluster_wide))
            .route(
                "/apis/networking.k8s.io/v1/namespaces/{namespace}/{plural}",
                get(namespaced),
            )
            .route(
                "/apis/discovery.k8s.io/v1/namespaces/{namespace}/{plural}",
                get(namespaced),
            )
            .with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let server = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            Some(tls) => {
                let listener = TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(tls),
                };
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                })
            }
        };
        FakeApiServer {
            addr,
            cluster,
            server,
            https,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or replaces an object (given without kind/apiVersion); returns its version.
    pub fn apply(&self, plural: &str, mut object: Value) -> u64 {
        let mut cluster = self.lock();
        cluster.version += 1;
        let version = cluster.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let before = cluster
            .objects
            .insert((plural.to_owned(), namespace, name), object.clone());
        cluster.record(Change {
            version,
            plural: plural.to_owned(),
            before,
            after: Some(object),
        });
        version
    }

    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut cluster = self.lock();
        let key = (plural.to_owned(), namespace.to_owned(), name.to_owned());
        let Some(before) = cluster.objects.remove(&key) else {
            return;
        };
        cluster.version += 1;
        let version = cluster.version;
        cluster.record(Change {
            version,
            plural: plural.to_owned(),
            before: Some(before),
            after: None,
        });
    }

    /// Forgets history: watches from older versions get 410 Gone, and open watches end.
    pub fn compact(&self) {
        let mut cluster = self.lock();
        cluster.compacted = cluster.version + 1;
        cluster.history.clear();
        cluster.watches.clear();
    }

    /// Ends every open watch stream (as the server's watch timeout does).
    pub fn close_watches(&self) {
        self.lock().watches.clear();
    }

    /// Sends a BOOKMARK with the current version to every open watch.
    pub fn bookmark(&self) {
        let mut cluster = self.lock();
        let version = cluster.version.to_string();
        cluster.watches.retain(|w| {
            let object = json!({"metadata": {"resourceVersion": version}});
            w.events
                .send(event_line("BOOKMARK", &w.filter.plural, &object))
                .is_ok()
        });
    }

    pub fn set_gone_as_status(&self, yes: bool) {
        self.lock().gone_as_status = yes;
    }

    pub fn fail_next_requests(&self, count: usize) {
        self.lock().fail_requests = count;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    pub fn open_watches(&self) -> usize {
        let mut cluster = self.lock();
        cluster.watches.retain(|w| !w.events.is_closed());
        cluster.watches.len()
    }
}

impl Cluster {
    fn record(&mut self, change: Change) {
        self.watches.retain(|w| match w.filter.event_for(&change) {
            Some((kind, object)) => w
                .events
                .send(event_line(kind, &change.plural, &object))
                .is_ok(),
            None => !w.events.is_closed(),
        });
        self.history.push(change);
    }
}

type Shared = Arc<Mutex<Cluster>>;

async fn cluster_wide(
    State(cluster): State<Shared>,
    Path(plural): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve(cluster, None, plural, query, headers)
}

async fn namespaced(
    State(cluster): State<Shared>,
    Path((namespace, plural)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve(cluster, Some(namespace), plural, query, headers)
}

fn json_response(code: StatusCode, body: Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn serve(
    cluster: Shared,
    namespace: Option<String>,
    plural: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let mut cluster = cluster.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = prefix_of(&plural);
    let path = match &namespace {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}"),
        None => format!("{prefix}/{plural}"),
    };
    let request = Request {
        path,
        query: query.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let watch = request.is_watch();
    cluster.requests.push(request);
    if cluster.fail_requests > 0 {
        cluster.fail_requests -= 1;
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            status(500, "InternalError", "injected failure"),
        );
    }
    let filter = Filter {
        plural: plural.clone(),
        namespace,
        labels: query.get("labelSelector").cloned().unwrap_or_default(),
        fields: query.get("fieldSelector").cloned().unwrap_or_default(),
    };
    if !watch {
        return list(&cluster, &filter, &query);
    }

    let from: u64 = match query.get("resourceVersion").map(|v| v.parse()) {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                status(400, "BadRequest", "invalid resourceVersion"),
            );
        }
        None => cluster.version,
    };
    if from + 1 < cluster.compacted {
        let message = format!("too old resource version: {from} ({})", cluster.compacted);
        if cluster.gone_as_status {
            return json_response(StatusCode::GONE, status(410, "Gone", &message));
        }
        let line = json!({"type": "ERROR", "object": status(410, "Expired", &message)});
        return (StatusCode::OK, format!("{line}\n")).into_response();
    }
    let (events, receiver) = mpsc::unbounded_channel();
    for change in cluster.history.iter().filter(|c| c.version > from) {
        if let Some((kind, object)) = filter.event_for(change) {
            let _ = events.send(event_line(kind, &change.plural, &object));
        }
    }
    cluster.watches.push(Watch { filter, events });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<_, Infallible>(line), receiver))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A list page: objects sorted by namespace and name; `continue` is the index to resume at.
fn list(cluster: &Cluster, filter: &Filter, query: &HashMap<String, String>) -> Response {
    let items: Vec<&Value> = cluster
        .objects
        .iter()
        .filter(|((plural, _, _), object)| filter.matches(plural, object))
        .map(|(_, object)| object)
        .collect();
    let start: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(items.len());
    let page: Vec<&Value> = items.get(start..end).unwrap_or_default().to_vec();
    let mut metadata = json!({"resourceVersion": cluster.version.to_string()});
    if end < items.len() {
        metadata["continue"] = json!(end.to_string());
    }
    json_response(
        StatusCode::OK,
        json!({
            "kind": format!("{}List", kind_of(&filter.plural)),
            "apiVersion": api_version_of(&filter.plural),
            "metadata": metadata,
            "items": page,
        }),
    )
}
