//! `/federate`: the latest sample (within the lookback window) of every series matching any
//! `match[]` selector, in the text format, grouped by metric name with a `# TYPE` line per
//! family, external labels added where a series lacks them, stale series left out. The body is
//! encoded and sent in 64 KiB pieces, gzip-compressed when the client accepts it (scrapers do).
//! Without `--web.federate.max-series` the answer is produced while the storage is read and
//! never held whole (the storage's select still snapshots the matching series); with a cap,
//! the newest samples are gathered first so that a refusal can still be a 422.

use crate::api::{ApiState, Params};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::exposition::{MetricType, TextEncoder};
use model::labels::{Labels, METRIC_NAME};
use model::sample::is_stale_nan;
use std::sync::Arc;
use storage::ValueKind;

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

pub async fn federate(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new());
    let mut selectors = Vec::new();
    for m in p.all("match[]") {
        match promql::parse(m) {
            Ok(promql::Expr::VectorSelector(vs)) => selectors.push(vs.matchers),
            Ok(_) => {
                return bad_request(format!(
                    "error parsing match[]: {m:?} is not a series selector\n"
                ));
            }
            Err(e) => return bad_request(format!("error parsing match[]: {e}\n")),
        }
    }
    if selectors.is_empty() {
        return bad_request("no match[] parameter provided\n".into());
    }
    let storage = match state.storage() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let external = state.options().external_labels;
    let lookback = state.engine.options().lookback_delta;
    let now = model::sample::now_ms();
    let gzip = accepts_gzip(&headers);
    let max_series = state.federate_max_series();
    if max_series == 0 {
        // No cap to enforce before answering: stream straight from the storage.
        return streamed(storage, selectors, external, now, lookback, gzip);
    }
    // With a cap, the newest samples are gathered first (so that a refusal or a storage
    // error still gets its status code), then encoded and sent in pieces.
    let gathered = tokio::task::spawn_blocking(move || {
        latest_samples(&*storage, &selectors, now, lookback, max_series)
    })
    .await;
    let latest = match gathered {
        Ok(Ok(l)) => l,
        Ok(Err(Refusal::Storage(e))) => return server_error(e),
        Ok(Err(Refusal::TooManySeries(n))) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "federation refused: more than {n} series match the match[] selectors \
                     (--web.federate.max-series); narrow the selectors\n"
                ),
            )
                .into_response();
        }
        Err(e) => return server_error(e.to_string()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || encode_streaming(latest, &external, gzip, &tx));
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response();
    if gzip {
        resp.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    resp
}

fn server_error(e: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("federation failed: {e}\n"),
    )
        .into_response()
}

/// Whether the client lists gzip among its acceptable encodings (with a non-zero weight).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// One federated series: its labels (shared with the storage, not copied) and newest sample.
struct Latest {
    labels: Labels,
    t: i64,
    v: f64,
}

impl Latest {
    fn name(&self) -> &str {
        self.labels.metric_name().unwrap_or("")
    }
}

/// Why a federation request gets no data.
enum Refusal {
    Storage(String),
    /// More series match than `--web.federate.max-series` allows.
    TooManySeries(usize),
}

/// The newest non-stale float sample within the lookback window of every series matching any
/// selector, sorted by metric name then labels, each series once.
fn latest_samples(
    storage: &dyn crate::api::ApiStorage,
    selectors: &[Vec<model::matcher::Matcher>],
    now: i64,
    lookback: i64,
    max_series: usize,
) -> Result<Vec<Latest>, Refusal> {
    let q = storage
        .querier(now - lookback + 1, now)
        .map_err(|e| Refusal::Storage(e.to_string()))?;
    let mut out = Vec::new();
    for m in selectors {
        for s in q
            .select(false, None, m)
            .map_err(|e| Refusal::Storage(e.to_string()))?
        {
            let s = s.map_err(|e| Refusal::Storage(e.to_string()))?;
            let mut it = s.samples;
            let mut last = None;
            while let Some(kind) = it.next() {
                if kind == ValueKind::Float {
                    last = Some(it.at());
                }
            }
            if let Some((t, v)) = last
                && !is_stale_nan(v)
            {
                if max_series > 0 && out.len() >= max_series {
                    return Err(Refusal::TooManySeries(max_series));
                }
                out.push(Latest {
                    labels: s.labels,
                    t,
                    v,
                });
            }
        }
    }
    out.sort_unstable_by(|a, b| a.name().cmp(b.name()).then_with(|| a.labels.cmp(&b.labels)));
    if selectors.len() > 1 {
        // Overlapping selectors select a series more than once.
        out.dedup_by(|a, b| a.labels == b.labels);
    }
    Ok(out)
}

/// Pieces of roughly this many bytes are handed to the HTTP connection.
const PIECE: usize = 64 * 1024;

/// The answer built while reading: the matching series come from the storage sorted by
/// labels (so by metric name first), the selectors' streams are merged with duplicates
/// dropped, and each series' newest sample is encoded and sent as it is found. Beyond what the
/// storage's select holds, memory is the set of metric names seen (for the `# TYPE` lines).
/// A storage error after the headers went out cuts the response short.
fn streamed(
    storage: Arc<dyn crate::api::ApiStorage>,
    selectors: Vec<Vec<model::matcher::Matcher>>,
    external: Labels,
    now: i64,
    lookback: i64,
    gzip: bool,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = stream_series(&*storage, &selectors, &external, now, lookback, gzip, &tx) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response();
    if gzip {
        resp.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    resp
}

fn stream_series(
    storage: &dyn crate::api::ApiStorage,
    selectors: &[Vec<model::matcher::Matcher>],
    external: &Labels,
    now: i64,
    lookback: i64,
    gzip: bool,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let q = storage
        .querier(now - lookback + 1, now)
        .map_err(|e| e.to_string())?;
    let mut streams = Vec::with_capacity(selectors.len());
    for m in selectors {
        streams.push(
            q.select(true, None, m)
                .map_err(|e| e.to_string())?
                .peekable(),
        );
    }
    let mut sink = Sink {
        tx,
        zip: gzip
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())),
    };
    let mut text = Vec::with_capacity(PIECE + 4096);
    // Names that already had their `# TYPE` line: a family split by a series whose labels sort
    // before `__name__` continues without a second one (a second TYPE line is an error).
    let mut typed: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        // The stream whose next series has the smallest label set.
        let mut best: Option<(usize, Labels)> = None;
        for (i, st) in streams.iter_mut().enumerate() {
            match st.peek() {
                Some(Err(_)) => {
                    if let Some(Err(e)) = st.next() {
                        return Err(e.to_string());
                    }
                }
                Some(Ok(s)) if best.as_ref().is_none_or(|(_, l)| s.labels < *l) => {
                    best = Some((i, s.labels.clone()));
                }
                Some(Ok(_)) | None => {}
            }
        }
        let Some((i, labels)) = best else { break };
        let Some(Ok(series)) = streams[i].next() else {
            continue;
        };
        // The same series selected by other selectors is answered once.
        for (j, st) in streams.iter_mut().enumerate() {
            while j != i && matches!(st.peek(), Some(Ok(s)) if s.labels == labels) {
                st.next();
            }
        }
        let mut it = series.samples;
        let mut last = None;
        while let Some(kind) = it.next() {
            if kind == ValueKind::Float {
                last = Some(it.at());
            }
        }
        let Some((t, v)) = last else { continue };
        if is_stale_nan(v) {
            continue;
        }
        let name = labels.metric_name().unwrap_or("");
        let mut enc = TextEncoder::new(&mut text);
        if !typed.contains(name) {
            enc.metric_type(name, MetricType::Unknown);
            typed.insert(name.to_string());
        }
        let shown = with_external(&labels, external);
        enc.sample_parts(
            name,
            shown
                .iter()
                .filter(|l| l.name.as_str() != METRIC_NAME)
                .map(|l| (l.name.as_str(), l.value.as_str())),
            v,
            Some(t),
        );
        if text.len() >= PIECE && !sink.send(&mut text, false) {
            return Ok(());
        }
    }
    sink.send(&mut text, true);
    Ok(())
}

/// Where encoded text goes: straight to the client, or through gzip first.
struct Sink<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    zip: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Sink<'_> {
    /// Hands `text` on (emptying it); false when the client has gone away or gzip failed.
    fn send(&mut self, text: &mut Vec<u8>, last: bool) -> bool {
        use std::io::Write;
        let piece = match self.zip.as_mut() {
            None => std::mem::replace(text, Vec::with_capacity(PIECE + 4096)),
            Some(z) => {
                let written = z.write_all(text);
                text.clear();
                let piece = match written {
                    Ok(()) if !last => Ok(std::mem::take(z.get_mut())),
                    Ok(()) => self.zip.take().map_or(Ok(Vec::new()), |z| z.finish()),
                    Err(e) => Err(e),
                };
                match piece {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = self.tx.blocking_send(Err(e));
                        return false;
                    }
                }
            }
        };
        piece.is_empty() || self.tx.blocking_send(Ok(Bytes::from(piece))).is_ok()
    }
}

/// Encodes the series in the text format into `tx`, gzip-compressed when asked. Stops early
/// when the client has gone away.
fn encode_streaming(
    latest: Vec<Latest>,
    external: &Labels,
    gzip: bool,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut sink = Sink {
        tx,
        zip: gzip
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())),
    };
    let mut text = Vec::with_capacity(PIECE + 4096);
    let mut current: Option<&str> = None;
    for s in &latest {
        let mut enc = TextEncoder::new(&mut text);
        let name = s.name();
        if current != Some(name) {
            enc.metric_type(name, MetricType::Unknown);
            current = Some(name);
        }
        let labels = with_external(&s.labels, external);
        enc.sample_parts(
            name,
            labels
                .iter()
                .filter(|l| l.name.as_str() != METRIC_NAME)
                .map(|l| (l.name.as_str(), l.value.as_str())),
            s.v,
            Some(s.t),
        );
        if text.len() >= PIECE && !sink.send(&mut text, false) {
            return;
        }
    }
    sink.send(&mut text, true);
}

/// Adds each external label the series does not have.
fn with_external(l: &Labels, external: &Labels) -> Labels {
    if external.iter().all(|e| l.has(&e.name)) {
        return l.clone();
    }
    let mut b = l.builder();
    for e in external {
        if !l.has(&e.name) {
            b.set(e.name.clone(), e.value.clone());
        }
    }
    b.build()
}
