//! The Prometheus HTTP API v1, shaped exactly as Prometheus returns it.
//!
//! Every endpoint accepts GET (query string) and POST (form body), merged like Go's
//! `ParseForm`, with repeated parameters such as `match[]`. Successes are
//! `{"status":"success","data":…}` plus `warnings`/`infos` when there are any; errors are
//! `{"status":"error","errorType":…,"error":…}` with Prometheus' status codes (400 bad_data,
//! 422 execution, 503 timeout, 499 canceled, 500 internal, 404 not_found).
//!
//! Queries run on blocking threads; dropping the request (the client went away) sets the
//! query's cancel flag, so evaluation stops instead of finishing for nobody.

mod admin;
pub mod json;
mod meta;
mod parse_query;
mod query;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use model::labels::Labels;
use promql::engine::Engine;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// What the API needs from the storage.
pub trait ApiStorage:
    storage::Queryable + storage::Appendable + storage::ExemplarQueryable + Send + Sync
{
    /// Numbers for `/api/v1/status/tsdb`.
    fn head_summary(&self) -> HeadSummary;

    /// Deletes the samples in `[start, end]` of the series matching all `matchers`.
    fn delete_series(
        &self,
        _start: i64,
        _end: i64,
        _matchers: &[model::matcher::Matcher],
    ) -> Result<(), String> {
        Err("this storage does not support deletion".into())
    }

    /// Removes deleted samples from persistent blocks.
    fn clean_tombstones(&self) -> Result<(), String> {
        Err("this storage does not support tombstones".into())
    }

    /// Takes a snapshot of the data (without the head when `skip_head`); returns its name.
    fn snapshot(&self, _skip_head: bool) -> Result<String, String> {
        Err("this storage does not support snapshots".into())
    }
}

/// The head's numbers for the status page.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadSummary {
    pub num_series: u64,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

/// Settings of the API (from the command line).
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// Labels added to federated series that lack them (`global.external_labels`).
    pub external_labels: Labels,
    /// `--web.enable-remote-write-receiver`.
    pub remote_write_receiver: bool,
    /// The command-line flags, for `/api/v1/status/flags`.
    pub flags: Vec<(String, String)>,
}

/// State shared by the API handlers.
pub struct ApiState {
    pub(crate) storage: OnceLock<Arc<dyn ApiStorage>>,
    pub(crate) engine: Engine,
    pub(crate) options: std::sync::RwLock<ApiOptions>,
    pub(crate) start_time_ms: i64,
    /// The scrape manager, once the server has started it (`/api/v1/targets`).
    pub(crate) scrape: OnceLock<scrape::ScrapeManager>,
    /// `--web.federate.max-series`: the most series one `/federate` answer may hold (0: any).
    federate_max_series: std::sync::atomic::AtomicUsize,
    /// The rule manager (`/api/v1/rules`, `alerts`, `alertmanagers`).
    pub(crate) rules: OnceLock<Arc<rules::RuleManager>>,
    /// `--web.enable-admin-api`.
    admin_enabled: std::sync::atomic::AtomicBool,
    /// Agent mode (`--agent`): the endpoints that read the local storage or the rules answer
    /// "unavailable with Prometheus Agent".
    agent: std::sync::atomic::AtomicBool,
    /// The loaded configuration with secrets hidden, for `/api/v1/status/config`.
    config_yaml: std::sync::RwLock<String>,
    /// Metadata received by remote write (`/api/v1/metadata` shows it too).
    pub(crate) received_metadata: crate::received_metadata::ReceivedMetadata,
}

impl ApiState {
    pub fn new(engine: Engine, options: ApiOptions) -> Arc<ApiState> {
        Arc::new(ApiState {
            storage: OnceLock::new(),
            engine,
            options: std::sync::RwLock::new(options),
            start_time_ms: model::sample::now_ms(),
            scrape: OnceLock::new(),
            federate_max_series: std::sync::atomic::AtomicUsize::new(0),
            rules: OnceLock::new(),
            admin_enabled: std::sync::atomic::AtomicBool::new(false),
            agent: std::sync::atomic::AtomicBool::new(false),
            config_yaml: std::sync::RwLock::new(String::new()),
            received_metadata: Default::default(),
        })
    }

    /// Metadata received by remote write.
    pub fn received_metadata(&self) -> &crate::received_metadata::ReceivedMetadata {
        &self.received_metadata
    }

    /// Sets what `/api/v1/status/config` shows (secrets must already be hidden).
    pub fn set_config_yaml(&self, yaml: String) {
        *self.config_yaml.write().unwrap_or_else(|e| e.into_inner()) = yaml;
    }

    pub(crate) fn config_yaml(&self) -> String {
        self.config_yaml
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes rules, alerts and Alertmanagers visible in the API.
    pub fn set_rule_manager(&self, m: Arc<rules::RuleManager>) {
        let _ = self.rules.set(m);
    }

    /// Enables the TSDB admin endpoints (`--web.enable-admin-api`).
    pub fn set_admin_enabled(&self, on: bool) {
        self.admin_enabled
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Switches the API to agent mode (`--agent`).
    pub fn set_agent(&self, on: bool) {
        self.agent.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_agent(&self) -> bool {
        self.agent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn admin_enabled(&self) -> bool {
        self.admin_enabled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Caps the number of series one `/federate` answer may hold (0: no cap).
    pub fn set_federate_max_series(&self, n: usize) {
        self.federate_max_series
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn federate_max_series(&self) -> usize {
        self.federate_max_series
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes the scrape manager's targets visible at `/api/v1/targets`.
    pub fn set_scrape_manager(&self, m: scrape::ScrapeManager) {
        let _ = self.scrape.set(m);
    }

    /// Makes the storage available (after WAL replay); until then data endpoints answer 503.
    pub fn set_storage(&self, s: Arc<dyn ApiStorage>) {
        let _ = self.storage.set(s);
    }

    /// Replaces the options that follow the configuration (external labels).
    pub fn set_external_labels(&self, l: Labels) {
        self.options
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .external_labels = l;
    }

    pub(crate) fn options(&self) -> ApiOptions {
        self.options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn storage(&self) -> Result<Arc<dyn ApiStorage>, ApiError> {
        self.storage.get().cloned().ok_or_else(|| {
            ApiError::new(
                ErrorType::Unavailable,
                "storage is not ready yet (WAL replay in progress)",
            )
        })
    }
}

/// The API routes.
pub fn router(state: Arc<ApiState>) -> Router {
    // What needs the local storage's data or the rule manager; in agent mode these answer
    // as Prometheus' agent does, before their parameters are even looked at.
    let local = Router::new()
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route("/api/v1/series", get(meta::series).post(meta::series))
        .route("/api/v1/labels", get(meta::labels).post(meta::labels))
        .route("/api/v1/label/{name}/values", get(meta::label_values))
        .route(
            "/api/v1/query_exemplars",
            get(meta::exemplars).post(meta::exemplars),
        )
        .route("/api/v1/rules", get(meta::rules))
        .route("/api/v1/alerts", get(meta::alerts))
        .route("/api/v1/alertmanagers", get(meta::alertmanagers))
        .route("/api/v1/status/tsdb", get(meta::tsdb_status))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            unavailable_in_agent_mode,
        ));
    Router::new()
        .route(
            "/api/v1/format_query",
            get(query::format).post(query::format),
        )
        .route("/api/v1/metadata", get(meta::metadata))
        .route("/api/v1/targets", get(meta::targets))
        .route(
            "/api/v1/targets/metadata",
            get(meta::targets_metadata).post(meta::targets_metadata),
        )
        .route("/api/v1/status/buildinfo", get(meta::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(meta::runtimeinfo))
        .route(
            "/api/v1/parse_query",
            get(parse_query::parse_query).post(parse_query::parse_query),
        )
        .route("/api/v1/status/config", get(meta::config))
        .route("/api/v1/status/flags", get(meta::flags))
        .route("/api/v1/status/walreplay", get(meta::walreplay))
        .route("/api/v1/write", post(crate::remote_write::write))
        .route("/api/v1/read", post(crate::remote_read::read))
        .route("/federate", get(crate::federate::federate))
        .merge(local)
        .with_state(state)
}

/// In agent mode, refuses a request for local data with Prometheus' agent error.
async fn unavailable_in_agent_mode(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.is_agent() {
        return ApiError::new(ErrorType::Execution, "unavailable with Prometheus Agent")
            .into_response();
    }
    next.run(req).await
}

/// Prometheus' API error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    NotFound,
    Unavailable,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
            ErrorType::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorType,
    message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, message)
    }
}

impl From<promql::engine::QueryError> for ApiError {
    fn from(e: promql::engine::QueryError) -> Self {
        let kind = match e.error_type() {
            "bad_data" => ErrorType::BadData,
            "timeout" => ErrorType::Timeout,
            "canceled" => ErrorType::Canceled,
            _ => ErrorType::Execution,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<storage::StorageError> for ApiError {
    fn from(e: storage::StorageError) -> Self {
        ApiError::new(ErrorType::Internal, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from(r#"{"status":"error","errorType":"#);
        json::string(&mut body, self.kind.as_str());
        body.push_str(r#","error":"#);
        json::string(&mut body, &self.message);
        body.push('}');
        (
            self.kind.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A success response with `data` already rendered as JSON.
pub(crate) fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut body = String::with_capacity(data.len() + 64);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(data);
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if list.is_empty() {
            continue;
        }
        body.push_str(",\"");
        body.push_str(key);
        body.push_str("\":[");
        for (i, w) in list.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            json::string(&mut body, w);
        }
        body.push(']');
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Request parameters: the query string and, for POST, the form body, in that order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Params {
        let mut v: Vec<(String, String)> = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        // Body values first: as in Go's `FormValue`, they take precedence over the query string.
        if is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(v)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Prometheus' `parseTime`: Unix seconds (with fraction) or RFC 3339.
pub(crate) fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    let err = || {
        ApiError::bad_data(format!(
            "invalid parameter {name:?}: cannot parse {s:?} to a valid timestamp"
        ))
    };
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(err());
        }
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        let t = secs * 1000.0 + ms;
        if t.abs() > 9.2e18 {
            return Err(err());
        }
        return Ok(t as i64);
    }
    parse_rfc3339(s).ok_or_else(err)
}

/// Prometheus' `parseDuration`: seconds (with fraction) or a Prometheus duration; milliseconds.
pub(crate) fn parse_duration(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() > 9.2e15 {
            return Err(ApiError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse {s:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(ms.round() as i64);
    }
    model::duration::Duration::parse(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| {
            ApiError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse {s:?} to a valid duration"
            ))
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let padded: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
        ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let m = oh * 60 + om;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = model::time::days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Sets a query's cancel flag when the request future is dropped before the answer.
pub(crate) struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(
            parse_time("time", "1435781451.781").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time("time", "1.5").unwrap(), 1500);
        assert_eq!(
            parse_time("time", "2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("time", "2015-07-01T22:10:51+02:00").unwrap(),
            1_435_781_451_000
        );
        assert_eq!(parse_time("time", "1970-01-01T00:00:00Z").unwrap(), 0);
        let e = parse_time("time", "yesterday").unwrap_err();
        assert_eq!(
            e.message,
            r#"invalid parameter "time": cannot parse "yesterday" to a valid timestamp"#
        );
        assert_eq!(parse_duration("step", "15").unwrap(), 15_000);
        assert_eq!(parse_duration("step", "0.5").unwrap(), 500);
        assert_eq!(parse_duration("step", "1m30s").unwrap(), 90_000);
        assert!(parse_duration("step", "soon").is_err());
    }
}
