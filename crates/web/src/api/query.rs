//! `/api/v1/query`, `/api/v1/query_range` and `/api/v1/format_query`.

use super::{
    ApiError, ApiState, CancelOnDrop, ErrorType, Params, json, parse_duration, parse_time, success,
};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use promql::engine::{AnnotationKind, QueryResult, Value};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Prometheus' cap on points per series in a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

fn required<'p>(p: &'p Params, name: &str) -> Result<&'p str, ApiError> {
    p.get(name).ok_or_else(|| {
        ApiError::bad_data(format!("invalid parameter {name:?}: parameter is missing"))
    })
}

/// `limit`: a positive number of series to keep (0 or absent: no limit).
fn limit_param(p: &Params) -> Result<Option<usize>, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": cannot parse {s:?}: must be a positive integer"
            ))),
        },
    }
}

/// The engine to use for this request: the `timeout` parameter can only shorten the limit.
fn engine_for(state: &ApiState, p: &Params) -> Result<promql::engine::Engine, ApiError> {
    match p.get("timeout") {
        None | Some("") => Ok(state.engine.clone()),
        Some(t) => {
            let ms = parse_duration("timeout", t)?;
            let limit = state.engine.options().timeout;
            let wanted = std::time::Duration::from_millis(ms.max(0) as u64);
            Ok(state.engine.with_timeout(wanted.min(limit)))
        }
    }
}

pub async fn instant(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let query = required(&p, "query")?.to_string();
    let t = match p.get("time") {
        Some(s) if !s.is_empty() => parse_time("time", s)?,
        _ => model::sample::now_ms(),
    };
    let limit = limit_param(&p)?;
    let engine = engine_for(&state, &p)?;
    let storage = state.storage()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let q2 = query.clone();
    let result = tokio::task::spawn_blocking(move || {
        let expr = engine.parse(&q2)?;
        engine.instant_query_expr(storage.as_ref(), &expr, t, Some(cancel))
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))??;
    render(result, &query, limit)
}

pub async fn range(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let start = parse_time("start", required(&p, "start")?)?;
    let end = parse_time("end", required(&p, "end")?)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration("step", required(&p, "step")?)?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let query = required(&p, "query")?.to_string();
    let limit = limit_param(&p)?;
    let engine = engine_for(&state, &p)?;
    let storage = state.storage()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let q2 = query.clone();
    let result = tokio::task::spawn_blocking(move || {
        let expr = engine.parse(&q2)?;
        engine.range_query_expr(storage.as_ref(), &expr, start, end, step, Some(cancel))
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))??;
    render(result, &query, limit)
}

pub async fn format(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let query = required(&p, "query")?;
    let expr = state.engine.parse(query)?;
    let mut data = String::new();
    json::string(&mut data, &expr.to_string());
    Ok(success(&data, &[], &[]))
}

/// Renders a query result as Prometheus' `{"resultType":…,"result":…}`.
fn render(result: QueryResult, query: &str, limit: Option<usize>) -> Result<Response, ApiError> {
    let mut warnings: Vec<String> = Vec::new();
    let mut infos: Vec<String> = Vec::new();
    for a in &result.annotations {
        match a.kind {
            AnnotationKind::Warning => warnings.push(a.render(query)),
            AnnotationKind::Info => infos.push(a.render(query)),
        }
    }
    let mut out = String::with_capacity(256);
    let hist_err = || {
        ApiError::new(
            ErrorType::Execution,
            "native histograms cannot be rendered by the API yet",
        )
    };
    match result.value {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            json::point(&mut out, t, v);
        }
        Value::String { t, s } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            json::timestamp(&mut out, t);
            out.push(',');
            json::string(&mut out, &s);
            out.push(']');
        }
        Value::Vector(mut v) => {
            if let Some(l) = limit
                && v.len() > l
            {
                v.truncate(l);
                warnings.push("results truncated due to limit".into());
            }
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json::labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                match s.value {
                    storage::Value::Float(f) => json::point(&mut out, s.t, f),
                    storage::Value::Histogram(_) => return Err(hist_err()),
                }
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(mut m) => {
            if let Some(l) = limit
                && m.len() > l
            {
                m.truncate(l);
                warnings.push("results truncated due to limit".into());
            }
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in m.iter().enumerate() {
                if !s.histograms.is_empty() {
                    return Err(hist_err());
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json::labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (t, v)) in s.floats.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::point(&mut out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    Ok(success(&out, &warnings, &infos))
}
