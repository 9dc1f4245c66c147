//! `/federate`: the latest sample (within the lookback window) of every series matching any
//! `match[]` selector, in the text format, grouped by metric name with a `# TYPE` line per
//! family, external labels added where a series lacks them, stale series left out.

use crate::api::{ApiState, Params};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::exposition::{MetricType, TextEncoder};
use model::labels::{Labels, METRIC_NAME};
use model::sample::is_stale_nan;
use std::collections::BTreeMap;
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
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let q = storage
            .querier(now - lookback + 1, now)
            .map_err(|e| e.to_string())?;
        // Sorted by metric name, then labels: one family after the other.
        let mut latest: BTreeMap<(String, Labels), (i64, f64)> = BTreeMap::new();
        for m in &selectors {
            for s in q.select(false, None, m).map_err(|e| e.to_string())? {
                let s = s.map_err(|e| e.to_string())?;
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
                    let name = s.labels.metric_name().unwrap_or("").to_string();
                    latest.insert((name, s.labels), (t, v));
                }
            }
        }
        let mut out = Vec::with_capacity(latest.len() * 96);
        let mut enc = TextEncoder::new(&mut out);
        let mut current: Option<String> = None;
        for ((name, labels), (t, v)) in latest {
            if current.as_deref() != Some(name.as_str()) {
                enc.metric_type(&name, MetricType::Unknown);
                current = Some(name.clone());
            }
            let labels = with_external(&labels, &external);
            enc.sample_parts(
                &name,
                labels
                    .iter()
                    .filter(|l| l.name.as_str() != METRIC_NAME)
                    .map(|l| (l.name.as_str(), l.value.as_str())),
                v,
                Some(t),
            );
        }
        Ok(out)
    })
    .await;
    match body {
        Ok(Ok(b)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            b,
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("federation failed: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("federation failed: {e}\n"),
        )
            .into_response(),
    }
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
