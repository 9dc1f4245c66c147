//! The TSDB admin endpoints (`/api/v1/admin/tsdb/delete_series`, `clean_tombstones`,
//! `snapshot`), answered only with `--web.enable-admin-api`; otherwise 503 "admin APIs
//! disabled", as Prometheus answers.

use super::meta::{selectors, time_range};
use super::{ApiError, ApiState, ErrorType, Params, json, success};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn enabled(state: &ApiState) -> Result<(), ApiError> {
    if state.admin_enabled() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
    }
}

/// Marks the matching series' samples in `[start, end]` deleted; 204 on success.
pub async fn delete_series(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    enabled(&state)?;
    let p = Params::parse(q.as_deref(), &headers, &body);
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let storage = state.storage()?;
    tokio::task::spawn_blocking(move || {
        for m in &sels {
            storage.delete_series(start, end, m)?;
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?
    .map_err(|e| ApiError::new(ErrorType::Internal, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Rewrites blocks without their deleted samples; 204 on success.
pub async fn clean_tombstones(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    enabled(&state)?;
    let storage = state.storage()?;
    tokio::task::spawn_blocking(move || storage.clean_tombstones())
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?
        .map_err(|e| ApiError::new(ErrorType::Internal, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Hard-links the blocks (and, unless `skip_head=true`, the head written as a block) into
/// `<data>/snapshots/<name>`; answers `{"name": ...}`.
pub async fn snapshot(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    enabled(&state)?;
    let p = Params::parse(q.as_deref(), &headers, &body);
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_data(format!(
                "unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing {v:?}: invalid syntax"
            ))
        })?,
    };
    let storage = state.storage()?;
    let name = tokio::task::spawn_blocking(move || storage.snapshot(skip_head))
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?
        .map_err(|e| ApiError::new(ErrorType::Internal, format!("create snapshot: {e}")))?;
    let mut out = String::from(r#"{"name":"#);
    json::string(&mut out, &name);
    out.push('}');
    Ok(success(&out, &[], &[]))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
