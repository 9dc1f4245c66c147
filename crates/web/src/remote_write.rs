//! `/api/v1/write`: the remote-write receiver (`--web.enable-remote-write-receiver`), for
//! remote write 1.0 (`proto=prometheus.WriteRequest`) and 2.0
//! (`proto=io.prometheus.write.v2.Request`, answered with the `X-Prometheus-Remote-Write-*-Written`
//! headers), told apart by the content type.
//!
//! A request is acknowledged (204) only after its samples were committed, i.e. written to the
//! WAL. Bad input is the sender's fault and gets 400 so that senders do not retry it forever:
//! invalid label sets (empty, duplicate or empty names), samples too far in the future, and
//! ordering errors (out of order, duplicate timestamp, out of bounds), which also roll the
//! request back, as Prometheus does. Bodies are limited before and after decompression.
//!
//! Exemplars (1.0 `TimeSeries.exemplars`, 2.0 series exemplars) are appended after their
//! series' samples; as in Prometheus a refused exemplar (out of order, unknown series, labels
//! too long) never fails the request, and 2.0 answers count the stored ones. Metadata (1.0
//! `WriteRequest.metadata`, 2.0 series metadata, named by family) of an accepted request goes
//! to the in-memory `received_metadata` store.

use crate::api::ApiState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::exposition::MetricMetadata;
use model::labels::{Label, Labels};
use std::sync::Arc;
use storage::{AppendError, Exemplar};

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
    let version = match proto {
        _ if !content_type.starts_with("application/x-protobuf") => None,
        "prometheus.WriteRequest" => Some(Version::V1),
        "io.prometheus.write.v2.Request" => Some(Version::V2),
        _ => None,
    };
    let Some(version) = version else {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {content_type:?}; supported: application/x-protobuf;proto=prometheus.WriteRequest, application/x-protobuf;proto=io.prometheus.write.v2.Request"
            ),
        );
    };
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
    let api = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Remote write 1.0 requests of plain float series take the borrowing path; anything
        // else (exemplars, histograms, metadata) the generated decoder.
        let raw_v1 = match version {
            Version::V1 => match remote::decompress_limited(&body, MAX_DECOMPRESSED) {
                Ok(raw) => match append_borrowed(&*storage, &raw) {
                    Some(outcome) => return outcome,
                    None => Some(raw),
                },
                Err(e) => return Err((StatusCode::BAD_REQUEST, e.to_string())),
            },
            Version::V2 => None,
        };
        let decoded = match version {
            Version::V1 => remote::decode_write_request_raw(raw_v1.as_deref().unwrap_or_default())
                .map(|req| {
                    let series = req
                        .timeseries
                        .into_iter()
                        .map(|ts| Incoming {
                            labels: ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                            samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                            histograms: ts.histograms.len(),
                            exemplars: ts
                                .exemplars
                                .into_iter()
                                .map(|e| {
                                    let pairs = e.labels.into_iter().map(|l| (l.name, l.value));
                                    (pairs.collect(), e.value, e.timestamp)
                                })
                                .collect(),
                        })
                        .collect::<Vec<_>>();
                    let metadata = req
                        .metadata
                        .into_iter()
                        .filter_map(|m| {
                            Some(MetricMetadata {
                                kind: remote::metadata::metric_type_from_proto(m.r#type)?,
                                family: m.metric_family_name,
                                help: m.help,
                                unit: m.unit,
                            })
                        })
                        .collect::<Vec<_>>();
                    (series, metadata)
                }),
            Version::V2 => remote::decode_write_request_v2(&body, MAX_DECOMPRESSED).map(|series| {
                let metadata = series
                    .iter()
                    .filter_map(|ts| {
                        let m = ts.metadata.as_ref()?;
                        let name = ts.labels.iter().find(|(n, _)| n == "__name__")?;
                        Some(MetricMetadata {
                            family: remote::metadata::family_of(&name.1, m.kind).to_string(),
                            kind: m.kind,
                            help: m.help.clone(),
                            unit: m.unit.clone(),
                        })
                    })
                    .collect::<Vec<_>>();
                let series = series
                    .into_iter()
                    .map(|ts| Incoming {
                        labels: ts.labels,
                        samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                        histograms: ts.histograms,
                        exemplars: ts
                            .exemplars
                            .into_iter()
                            .map(|e| (e.labels, e.value, e.timestamp))
                            .collect(),
                    })
                    .collect();
                (series, metadata)
            }),
        };
        match decoded {
            Ok((series, metadata)) => {
                let written = append_all(&*storage, &series)?;
                api.received_metadata.record(metadata);
                Ok(written)
            }
            Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
        }
    })
    .await;
    match (result, version) {
        (Ok(Ok(written)), Version::V2) => (
            StatusCode::NO_CONTENT,
            [
                (WRITTEN_SAMPLES, written.samples.to_string()),
                (WRITTEN_HISTOGRAMS, "0".to_string()),
                (WRITTEN_EXEMPLARS, written.exemplars.to_string()),
            ],
        )
            .into_response(),
        (Ok(Ok(_)), Version::V1) => StatusCode::NO_CONTENT.into_response(),
        (Ok(Err((code, msg))), Version::V2) => {
            // Nothing of a refused request is kept (it is rolled back).
            let mut resp = status(code, msg);
            for h in [WRITTEN_SAMPLES, WRITTEN_HISTOGRAMS, WRITTEN_EXEMPLARS] {
                resp.headers_mut()
                    .insert(h, header::HeaderValue::from_static("0"));
            }
            resp
        }
        (Ok(Err((code, msg))), Version::V1) => status(code, msg),
        (Err(e), _) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Which remote-write protocol a request speaks (from its content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

const WRITTEN_SAMPLES: &str = "x-prometheus-remote-write-samples-written";
const WRITTEN_HISTOGRAMS: &str = "x-prometheus-remote-write-histograms-written";
const WRITTEN_EXEMPLARS: &str = "x-prometheus-remote-write-exemplars-written";

/// One series of a request, whichever protocol version carried it.
struct Incoming {
    labels: Vec<(String, String)>,
    samples: Vec<(i64, f64)>,
    histograms: usize,
    exemplars: Vec<IncomingExemplar>,
}

/// Label pairs, value, timestamp.
type IncomingExemplar = (Vec<(String, String)>, f64, i64);

/// What a request stored.
#[derive(Default)]
struct Written {
    samples: usize,
    exemplars: usize,
}

/// Appends every series in one transaction: all of it is committed, or (on the first bad
/// series or sample) none of it.
fn append_all(
    storage: &dyn crate::api::ApiStorage,
    series: &[Incoming],
) -> Result<Written, (StatusCode, String)> {
    let limit = model::sample::now_ms() + MAX_FUTURE_MS;
    let mut app = storage.appender();
    let mut written = Written::default();
    let mut outcome = Ok(());
    'series: for ts in series {
        if ts.histograms > 0 {
            outcome = Err((
                StatusCode::BAD_REQUEST,
                "native histograms are not supported yet by this receiver".to_string(),
            ));
            break;
        }
        let labels = match labels_of(&ts.labels) {
            Ok(l) => l,
            Err(e) => {
                outcome = Err((StatusCode::BAD_REQUEST, e));
                break;
            }
        };
        let mut r = None;
        for &(t, v) in &ts.samples {
            if t > limit {
                outcome = Err(too_far_ahead(t, &labels));
                break 'series;
            }
            match app.append(r, &labels, t, v) {
                Ok(sr) => {
                    r = Some(sr);
                    written.samples += 1;
                }
                Err(e) => {
                    outcome = Err(refused(e, &labels));
                    break 'series;
                }
            }
        }
        for (pairs, value, ts) in &ts.exemplars {
            let exemplar = labels_of(pairs)
                .or_else(|e| {
                    if pairs.is_empty() {
                        Ok(Labels::empty())
                    } else {
                        Err(e)
                    }
                })
                .map(|labels| Exemplar {
                    labels,
                    value: *value,
                    ts: *ts,
                });
            let stored = exemplar.and_then(|e| {
                app.append_exemplar(r, &labels, &e)
                    .map_err(|err| err.to_string())
            });
            match stored {
                Ok(_) => written.exemplars += 1,
                // As Prometheus: exemplar errors do not fail the request.
                Err(e) => tracing::debug!(series = %labels, err = %e, "exemplar not stored"),
            }
        }
    }
    match outcome {
        Ok(()) => app
            .commit()
            .map(|()| written)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => {
            let _ = app.rollback();
            Err(e)
        }
    }
}

/// Appends a remote write 1.0 request straight from its bytes (see `remote::wire_v1`), with
/// the same checks, errors and all-or-nothing commit as [`append_all`]; `None` when the
/// request needs the full decoder (nothing of it is kept then).
fn append_borrowed(
    storage: &dyn crate::api::ApiStorage,
    raw: &[u8],
) -> Option<Result<Written, (StatusCode, String)>> {
    let limit = model::sample::now_ms() + MAX_FUTURE_MS;
    let mut app = storage.appender();
    let mut written = 0usize;
    let (mut pairs, mut samples) = (Vec::new(), Vec::new());
    let walked = remote::wire_v1::for_each_series(
        raw,
        &mut pairs,
        &mut samples,
        |pairs, samples| -> Result<(), (StatusCode, String)> {
            if pairs.is_empty() {
                return Err((StatusCode::BAD_REQUEST, "series without labels".into()));
            }
            if pairs.iter().any(|(n, _)| n.is_empty()) {
                return Err((StatusCode::BAD_REQUEST, "empty label name".into()));
            }
            model::labels::normalize_pairs(pairs)
                .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
            let mut r = None;
            for &(t, v) in samples {
                if t > limit {
                    return Err(too_far_ahead(t, show_pairs(pairs)));
                }
                let sr = app
                    .append_pairs(r, pairs, t, v)
                    .map_err(|e| refused(e, show_pairs(pairs)))?;
                r = Some(sr);
                written += 1;
            }
            Ok(())
        },
    );
    match walked {
        Ok(remote::wire_v1::Walk::Done) => Some(
            app.commit()
                .map(|()| Written {
                    samples: written,
                    ..Written::default()
                })
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        ),
        Ok(remote::wire_v1::Walk::NeedsFullDecode) => {
            let _ = app.rollback();
            None
        }
        Err(e) => {
            let _ = app.rollback();
            Some(Err(match e {
                remote::wire_v1::WalkError::Decode(e) => (StatusCode::BAD_REQUEST, e.to_string()),
                remote::wire_v1::WalkError::Callback(e) => e,
            }))
        }
    }
}

/// The answer to a sample the storage refused: ordering, bounds and label errors are the
/// sender's (400, not retried); anything else is ours (500).
fn refused(e: AppendError, series: impl std::fmt::Display) -> (StatusCode, String) {
    match e {
        AppendError::OutOfOrder
        | AppendError::DuplicateTimestamp
        | AppendError::OutOfBounds
        | AppendError::TooOld
        | AppendError::InvalidLabels(_) => {
            (StatusCode::BAD_REQUEST, format!("{e} for series {series}"))
        }
        e => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The refusal of a sample more than `MAX_FUTURE_MS` ahead of the clock.
fn too_far_ahead(t: i64, series: impl std::fmt::Display) -> (StatusCode, String) {
    (
        StatusCode::BAD_REQUEST,
        format!("sample timestamp {t} for series {series} is too far in the future"),
    )
}

/// A label set for an error message, as Prometheus prints one.
fn show_pairs(pairs: &[(&str, &str)]) -> String {
    let l: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", l.join(", "))
}

/// A valid label set from the sent pairs: names non-empty and unique, at least one label.
fn labels_of(pairs: &[(String, String)]) -> Result<Labels, String> {
    if pairs.is_empty() {
        return Err("series without labels".into());
    }
    let mut v = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if name.is_empty() {
            return Err("empty label name".into());
        }
        v.push(Label::new(name.as_str(), value.as_str()));
    }
    Labels::from_vec(v).map_err(|e| e.to_string())
}
