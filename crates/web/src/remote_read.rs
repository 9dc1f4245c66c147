//! `/api/v1/read`: remote read, so that another server (a real Prometheus with `remote_read`,
//! or a global query layer) can pull raw series from Meridian.
//!
//! Both response types are served: SAMPLES (one snappy-compressed `ReadResponse`) and
//! STREAMED_XOR_CHUNKS (frames of `ChunkedReadResponse`, each series' samples re-encoded as
//! XOR chunks of at most 120 samples, frames kept under 1 MiB and sent as they are produced).
//! The first type of the client's list that Meridian knows wins; no list means samples.
//! As in Prometheus, an equality matcher on an external label that the external label satisfies
//! is dropped (the data is "inside" that label), and external labels are added to the series
//! that lack them. A request may load at most `MAX_SAMPLES` samples; more is a 400.

use crate::api::{ApiState, ApiStorage};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use remote::proto::{
    Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label, LabelMatcher, MatcherType,
    QueryResult, ReadResponse, ResponseType, Sample, TimeSeries,
};
use std::sync::Arc;
use storage::ValueKind;

/// Largest decompressed request.
const MAX_REQUEST: usize = 32 << 20;
/// Most samples one request may read (`--storage.remote.read-sample-limit` in Prometheus).
const MAX_SAMPLES: usize = 50_000_000;
/// Frames of the streamed response stay under this size.
const MAX_FRAME: usize = 1 << 20;
/// Samples per XOR chunk in the streamed response (Prometheus' chunk size).
const SAMPLES_PER_CHUNK: u16 = 120;

fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (code, m).into_response()
}

pub async fn read(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let req = match remote::read::decode_read_request(&body, MAX_REQUEST) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let storage = match state.storage() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let external = state.options().external_labels;
    let mut queries = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        match matchers(&q.matchers, &external) {
            Ok(m) => queries.push((q.start_timestamp_ms, q.end_timestamp_ms, m)),
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        }
    }
    let streamed = req
        .accepted_response_types
        .iter()
        .find_map(|t| ResponseType::try_from(*t).ok())
        .is_some_and(|t| t == ResponseType::StreamedXorChunks);
    if !req.accepted_response_types.is_empty()
        && !req
            .accepted_response_types
            .iter()
            .any(|t| ResponseType::try_from(*t).is_ok())
    {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "server does not support any of the requested response types: {:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
                req.accepted_response_types
            ),
        );
    }
    if streamed {
        return streamed_response(storage, queries, external);
    }
    let answer =
        tokio::task::spawn_blocking(move || samples_response(&*storage, &queries, &external)).await;
    match answer {
        Ok(Ok(resp)) => (
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            remote::read::encode_read_response(&resp),
        )
            .into_response(),
        Ok(Err((code, e))) => text(code, e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The request's matchers, minus equality matchers that an external label satisfies.
fn matchers(pb: &[LabelMatcher], external: &Labels) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::with_capacity(pb.len());
    for m in pb {
        let op = match MatcherType::try_from(m.r#type) {
            Ok(MatcherType::Eq) => MatchOp::Equal,
            Ok(MatcherType::Neq) => MatchOp::NotEqual,
            Ok(MatcherType::Re) => MatchOp::RegexMatch,
            Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
            Err(_) => return Err(format!("invalid matcher type {}", m.r#type)),
        };
        if op == MatchOp::Equal && external.get(&m.name) == Some(m.value.as_str()) {
            continue;
        }
        out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
    }
    if out.is_empty() {
        return Err("no matchers in query".into());
    }
    Ok(out)
}

fn to_pb_labels(l: &Labels, external: &Labels) -> Vec<Label> {
    let mut b = l.builder();
    for e in external {
        if !l.has(&e.name) {
            b.set(e.name.clone(), e.value.clone());
        }
    }
    b.build()
        .iter()
        .map(|l| Label {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect()
}

type Failure = (StatusCode, String);

fn storage_failure(e: impl std::fmt::Display) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn too_many() -> Failure {
    (
        StatusCode::BAD_REQUEST,
        format!("exceeded sample limit ({MAX_SAMPLES})"),
    )
}

fn samples_response(
    storage: &dyn ApiStorage,
    queries: &[(i64, i64, Vec<Matcher>)],
    external: &Labels,
) -> Result<ReadResponse, Failure> {
    let mut total = 0usize;
    let mut results = Vec::with_capacity(queries.len());
    for (start, end, m) in queries {
        let q = storage.querier(*start, *end).map_err(storage_failure)?;
        let mut timeseries = Vec::new();
        for s in q.select(true, None, m).map_err(storage_failure)? {
            let s = s.map_err(storage_failure)?;
            let mut it = s.samples;
            let mut samples = Vec::new();
            while let Some(kind) = it.next() {
                if kind != ValueKind::Float {
                    continue;
                }
                let (t, v) = it.at();
                if t < *start || t > *end {
                    continue;
                }
                samples.push(Sample {
                    value: v,
                    timestamp: t,
                });
            }
            total += samples.len();
            if total > MAX_SAMPLES {
                return Err(too_many());
            }
            if !samples.is_empty() {
                timeseries.push(TimeSeries {
                    labels: to_pb_labels(&s.labels, external),
                    samples,
                    ..Default::default()
                });
            }
        }
        results.push(QueryResult { timeseries });
    }
    Ok(ReadResponse { results })
}

/// Streams the chunked answer: one blocking task reads series and sends finished frames.
fn streamed_response(
    storage: Arc<dyn ApiStorage>,
    queries: Vec<(i64, i64, Vec<Matcher>)>,
    external: Labels,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err((_, e)) = stream_frames(&*storage, &queries, &external, &tx) {
            // Headers are gone already: cutting the stream short is how the error shows.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    (
        [(header::CONTENT_TYPE, remote::read::STREAMED_CONTENT_TYPE)],
        body,
    )
        .into_response()
}

fn stream_frames(
    storage: &dyn ApiStorage,
    queries: &[(i64, i64, Vec<Matcher>)],
    external: &Labels,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), Failure> {
    let gone = || (StatusCode::OK, "client went away".to_string());
    let mut total = 0usize;
    for (index, (start, end, m)) in queries.iter().enumerate() {
        let q = storage.querier(*start, *end).map_err(storage_failure)?;
        for s in q.select(true, None, m).map_err(storage_failure)? {
            let s = s.map_err(storage_failure)?;
            let labels = to_pb_labels(&s.labels, external);
            let mut it = s.samples;
            let mut chunks: Vec<Chunk> = Vec::new();
            let mut frame_bytes = 0usize;
            let mut open: Option<(Chunk, tsdb::chunkenc::XorAppender)> = None;
            let flush_frame = |chunks: &mut Vec<Chunk>| -> bool {
                let mut out = Vec::new();
                remote::read::write_frame(
                    &mut out,
                    &ChunkedReadResponse {
                        chunked_series: vec![ChunkedSeries {
                            labels: labels.clone(),
                            chunks: std::mem::take(chunks),
                        }],
                        query_index: index as i64,
                    },
                );
                tx.blocking_send(Ok(Bytes::from(out))).is_ok()
            };
            while let Some(kind) = it.next() {
                if kind != ValueKind::Float {
                    continue;
                }
                let (t, v) = it.at();
                if t < *start || t > *end {
                    continue;
                }
                total += 1;
                if total > MAX_SAMPLES {
                    return Err(too_many());
                }
                let (chunk, app) = open.get_or_insert_with(|| {
                    (
                        Chunk {
                            min_time_ms: t,
                            max_time_ms: t,
                            r#type: ChunkEncoding::Xor as i32,
                            data: Vec::new(),
                        },
                        tsdb::chunkenc::XorAppender::new(),
                    )
                });
                app.append(&mut chunk.data, t, v);
                chunk.max_time_ms = t;
                if app.num_samples() >= SAMPLES_PER_CHUNK
                    && let Some((c, _)) = open.take()
                {
                    frame_bytes += c.data.len() + 32;
                    chunks.push(c);
                    if frame_bytes >= MAX_FRAME {
                        if !flush_frame(&mut chunks) {
                            return Err(gone());
                        }
                        frame_bytes = 0;
                    }
                }
            }
            if let Some((c, _)) = open.take() {
                chunks.push(c);
            }
            if !chunks.is_empty() && !flush_frame(&mut chunks) {
                return Err(gone());
            }
        }
    }
    Ok(())
}
