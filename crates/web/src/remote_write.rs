//! `/api/v1/write`: the remote-write 1.0 receiver (`--web.enable-remote-write-receiver`).
//!
//! A request is acknowledged (204) only after its samples were committed, i.e. written to the
//! WAL. Bad input is the sender's fault and gets 400 so that senders do not retry it forever:
//! invalid label sets (empty, duplicate or empty names), samples too far in the future, and
//! ordering errors (out of order, duplicate timestamp, out of bounds), which also roll the
//! request back, as Prometheus does. Bodies are limited before and after decompression.

use crate::api::ApiState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::labels::{Label, Labels};
use std::sync::Arc;
use storage::AppendError;

/// Largest accepted compressed body.
pub const MAX_BODY: usize = 32 << 20;
/// Largest accepted decompressed body.
const MAX_DECOMPRESSED: usize = 256 << 20;
/// Samples more than this far ahead of the clock are refused (one such sample would make
/// every later normal write "out of bounds").
const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

fn status(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (code, m).into_response()
}

pub async fn write(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.options().remote_write_receiver {
        return status(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let proto = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("proto="))
        .next()
        .unwrap_or("prometheus.WriteRequest");
    if !content_type.starts_with("application/x-protobuf") || proto != "prometheus.WriteRequest" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {content_type:?}; supported: application/x-protobuf;proto=prometheus.WriteRequest"
            ),
        );
    }
    if let Some(enc) = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content encoding {enc:?}; supported: snappy"),
        );
    }
    if body.len() > MAX_BODY {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let storage = match state.storage() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = tokio::task::spawn_blocking(move || -> Result<(), (StatusCode, String)> {
        let req = remote::decode_write_request(&body, MAX_DECOMPRESSED)
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let limit = model::sample::now_ms() + MAX_FUTURE_MS;
        let mut app = storage.appender();
        let mut outcome = Ok(());
        'series: for ts in &req.timeseries {
            if !ts.histograms.is_empty() {
                outcome = Err((
                    StatusCode::BAD_REQUEST,
                    "native histograms are not supported yet by this receiver".to_string(),
                ));
                break;
            }
            let labels = match labels_of(ts) {
                Ok(l) => l,
                Err(e) => {
                    outcome = Err((StatusCode::BAD_REQUEST, e));
                    break;
                }
            };
            let mut r = None;
            for s in &ts.samples {
                if s.timestamp > limit {
                    outcome = Err((
                        StatusCode::BAD_REQUEST,
                        format!(
                            "sample timestamp {} for series {labels} is too far in the future",
                            s.timestamp
                        ),
                    ));
                    break 'series;
                }
                match app.append(r, &labels, s.timestamp, s.value) {
                    Ok(sr) => r = Some(sr),
                    Err(
                        e @ (AppendError::OutOfOrder
                        | AppendError::DuplicateTimestamp
                        | AppendError::OutOfBounds
                        | AppendError::TooOld
                        | AppendError::InvalidLabels(_)),
                    ) => {
                        outcome =
                            Err((StatusCode::BAD_REQUEST, format!("{e} for series {labels}")));
                        break 'series;
                    }
                    Err(e) => {
                        outcome = Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
                        break 'series;
                    }
                }
            }
        }
        match outcome {
            Ok(()) => app
                .commit()
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            Err(e) => {
                let _ = app.rollback();
                Err(e)
            }
        }
    })
    .await;
    match result {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err((code, msg))) => status(code, msg),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A valid label set from the protobuf labels: names non-empty and unique, at least one label.
fn labels_of(ts: &remote::proto::TimeSeries) -> Result<Labels, String> {
    if ts.labels.is_empty() {
        return Err("series without labels".into());
    }
    let mut v = Vec::with_capacity(ts.labels.len());
    for l in &ts.labels {
        if l.name.is_empty() {
            return Err("empty label name".into());
        }
        v.push(Label::new(l.name.as_str(), l.value.as_str()));
    }
    Labels::from_vec(v).map_err(|e| e.to_string())
}
