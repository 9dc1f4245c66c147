//! Series and label metadata (`series`, `labels`, `label/<name>/values`), status pages, and
//! the listing endpoints of subsystems that report their current state (`targets`, `rules`,
//! `alerts`, `alertmanagers`, `metadata`, `targets/metadata`, `query_exemplars`). Targets and
//! their metric metadata come from the scrape manager (`/api/v1/metadata` adds what remote
//! write received), rules, alerts and Alertmanagers from the rule manager, exemplars from the
//! storage.
//!
//! Where Prometheus' answer order is that of Go map iteration (random), Meridian's is sorted:
//! targets by job then URL, metric families by name.

use super::{ApiError, ApiState, Params, json, parse_time, success};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use model::exposition::MetricMetadata;
use model::labels::Labels;
use model::matcher::Matcher;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Earliest and latest times an unbounded metadata query covers.
const MIN_TIME: i64 = i64::MIN / 2;
const MAX_TIME: i64 = i64::MAX / 2;

pub(super) fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = match p.get("start") {
        Some(s) if !s.is_empty() => parse_time("start", s)?,
        _ => MIN_TIME,
    };
    let end = match p.get("end") {
        Some(s) if !s.is_empty() => parse_time("end", s)?,
        _ => MAX_TIME,
    };
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

/// Parses each `match[]` as a series selector.
pub(super) fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut out = Vec::new();
    for m in p.all("match[]") {
        let expr = promql::parse(m).map_err(|e| ApiError::bad_data(e.to_string()))?;
        let mut e = &expr;
        while let promql::Expr::Paren(inner) = e {
            e = &inner.expr;
        }
        match e {
            promql::Expr::VectorSelector(vs) => out.push(vs.matchers.clone()),
            _ => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {m:?} is not a series selector"
                )));
            }
        }
    }
    Ok(out)
}

fn limit(p: &Params) -> Result<Option<usize>, ApiError> {
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

pub async fn series(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let lim = limit(&p)?;
    let storage = state.storage()?;
    let found = tokio::task::spawn_blocking(move || -> Result<BTreeSet<Labels>, ApiError> {
        let q = storage.querier(start, end)?;
        let mut set = BTreeSet::new();
        for m in &sels {
            let hints = storage::SelectHints {
                start,
                end,
                func: Some("series".into()),
                ..Default::default()
            };
            for s in q.select(false, Some(&hints), m)? {
                set.insert(s?.labels);
            }
        }
        Ok(set)
    })
    .await
    .map_err(|e| ApiError::new(super::ErrorType::Internal, e.to_string()))??;
    let mut warnings = Vec::new();
    let mut out = String::from("[");
    for (i, l) in found.iter().enumerate() {
        if lim.is_some_and(|n| i >= n) {
            warnings.push("results truncated due to limit".to_string());
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json::labels(&mut out, l);
    }
    out.push(']');
    Ok(success(&out, &warnings, &[]))
}

fn string_list(values: impl IntoIterator<Item = String>, lim: Option<usize>) -> Response {
    let mut warnings = Vec::new();
    let mut out = String::from("[");
    for (i, v) in values.into_iter().enumerate() {
        if lim.is_some_and(|n| i >= n) {
            warnings.push("results truncated due to limit".to_string());
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json::string(&mut out, &v);
    }
    out.push(']');
    success(&out, &warnings, &[])
}

pub async fn labels(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let sels = selectors(&p)?;
    let (start, end) = time_range(&p)?;
    let lim = limit(&p)?;
    let storage = state.storage()?;
    let names = tokio::task::spawn_blocking(move || -> Result<BTreeSet<String>, ApiError> {
        let q = storage.querier(start, end)?;
        let mut set = BTreeSet::new();
        if sels.is_empty() {
            set.extend(q.label_names(&[])?);
        }
        for m in &sels {
            set.extend(q.label_names(m)?);
        }
        Ok(set)
    })
    .await
    .map_err(|e| ApiError::new(super::ErrorType::Internal, e.to_string()))??;
    Ok(string_list(names, lim))
}

pub async fn label_values(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sels = selectors(&p)?;
    let (start, end) = time_range(&p)?;
    let lim = limit(&p)?;
    let storage = state.storage()?;
    let values = tokio::task::spawn_blocking(move || -> Result<BTreeSet<String>, ApiError> {
        let q = storage.querier(start, end)?;
        let mut set = BTreeSet::new();
        if sels.is_empty() {
            set.extend(q.label_values(&name, &[])?);
        }
        for m in &sels {
            set.extend(q.label_values(&name, m)?);
        }
        Ok(set)
    })
    .await
    .map_err(|e| ApiError::new(super::ErrorType::Internal, e.to_string()))??;
    Ok(string_list(values, lim))
}

/// `limit` and `limit_per_metric` of the metric metadata endpoints: an integer as Go's
/// `strconv.Atoi` reads it, -1 when absent.
fn int_param(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(-1),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::bad_data(format!("{name} must be a number"))),
    }
}

/// A time parameter of `query_exemplars`, in the wording of Prometheus' `parseTimeParam`.
fn exemplar_time(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(name, s).map_err(|_| {
            ApiError::bad_data(format!(
                "invalid parameter {name:?}: Invalid time value for '{name}': cannot parse {s:?} to a valid timestamp"
            ))
        }),
    }
}

/// The matchers of every series selector in `expr` (Prometheus' `ExtractSelectors`), found
/// without recursion.
fn selectors_of(expr: &promql::Expr) -> Vec<Vec<Matcher>> {
    use promql::Expr;
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::VectorSelector(v) => out.push(v.matchers.clone()),
            Expr::MatrixSelector(m) => out.push(m.selector.matchers.clone()),
            Expr::Subquery(s) => stack.push(&s.expr),
            Expr::Paren(p) => stack.push(&p.expr),
            Expr::Unary(u) => stack.push(&u.expr),
            Expr::Binary(b) => {
                stack.push(&b.rhs);
                stack.push(&b.lhs);
            }
            Expr::Aggregate(a) => {
                stack.push(&a.expr);
                if let Some(param) = &a.param {
                    stack.push(param);
                }
            }
            Expr::Call(c) => stack.extend(c.args.iter().rev()),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
    }
    out
}

/// `/api/v1/query_exemplars?query=&start=&end=`: the exemplars in the range of every series
/// the query's selectors select; 204 without a body when the query has no selector (as
/// Prometheus answers).
pub async fn exemplars(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let start = exemplar_time(&p, "start", MIN_TIME)?;
    let end = exemplar_time(&p, "end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let expr = promql::parse(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let sets = selectors_of(&expr);
    if sets.is_empty() {
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    let storage = state.storage()?;
    let found = tokio::task::spawn_blocking(move || storage.select_exemplars(start, end, &sets))
        .await
        .map_err(|e| ApiError::new(super::ErrorType::Internal, e.to_string()))??;
    let mut out = String::from("[");
    for (i, r) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"seriesLabels":"#);
        json::labels(&mut out, &r.series_labels);
        out.push_str(r#","exemplars":["#);
        for (j, e) in r.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"labels":"#);
            json::labels(&mut out, &e.labels);
            out.push_str(r#","value":"#);
            json::value(&mut out, e.value);
            out.push_str(r#","timestamp":"#);
            json::timestamp(&mut out, e.ts);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    Ok(success(&out, &[], &[]))
}

/// `{"type":…,"help":…,"unit":…}`.
fn metadata_fields(out: &mut String, m: &MetricMetadata) {
    out.push_str(r#""type":"#);
    json::string(out, m.kind.as_api_str());
    out.push_str(r#","help":"#);
    json::string(out, &m.help);
    out.push_str(r#","unit":"#);
    json::string(out, &m.unit);
}

/// `/api/v1/metadata?limit=&limit_per_metric=&metric=`: per metric family the distinct
/// metadata its targets (and remote-write senders) gave, at most `limit` families and
/// `limit_per_metric` entries each (negative or absent: all).
pub async fn metadata(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new());
    let limit = int_param(&p, "limit")?;
    let per_metric = int_param(&p, "limit_per_metric")?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let targets = match state.scrape.get() {
        Some(m) => m.targets_metadata(metric).await,
        None => Vec::new(),
    };
    let received = state.received_metadata.snapshot(metric);
    let mut families: BTreeMap<&str, Vec<&MetricMetadata>> = BTreeMap::new();
    let scraped = targets.iter().flat_map(|t| &t.metadata);
    for m in scraped.chain(&received) {
        let list = families.entry(m.family.as_str()).or_default();
        if per_metric > 0 && list.len() as i64 >= per_metric {
            continue;
        }
        let same = |e: &&MetricMetadata| e.kind == m.kind && e.help == m.help && e.unit == m.unit;
        if !list.iter().any(same) {
            list.push(m);
        }
    }
    let mut out = String::from("{");
    for (i, (family, list)) in families.iter().enumerate() {
        if limit >= 0 && i as i64 >= limit {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json::string(&mut out, family);
        out.push_str(":[");
        for (j, m) in list.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('{');
            metadata_fields(&mut out, m);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    Ok(success(&out, &[], &[]))
}

/// `/api/v1/targets?state=active|dropped|any&scrapePool=<job>`: the scrape manager's view of
/// every target, shaped as Prometheus renders it.
pub async fn targets(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new());
    let which = p.get("state").unwrap_or("").to_ascii_lowercase();
    let (show_active, show_dropped) = match which.as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let pool = p
        .get("scrapePool")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let in_pool = |job: &str| pool.as_deref().is_none_or(|p| p == job);
    let report = match state.scrape.get() {
        Some(m) => m.targets().await,
        None => scrape::TargetsReport::default(),
    };
    let mut out = String::from(r#"{"activeTargets":["#);
    if show_active {
        let mut first = true;
        for t in report.active.iter().filter(|t| in_pool(&t.scrape_pool)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(r#"{"discoveredLabels":"#);
            json::labels(&mut out, &t.discovered_labels);
            out.push_str(r#","labels":"#);
            json::labels(&mut out, &t.labels);
            out.push_str(r#","scrapePool":"#);
            json::string(&mut out, &t.scrape_pool);
            out.push_str(r#","scrapeUrl":"#);
            json::string(&mut out, &t.scrape_url);
            out.push_str(r#","globalUrl":"#);
            json::string(&mut out, &t.scrape_url);
            out.push_str(r#","lastError":"#);
            json::string(&mut out, &t.last_error);
            out.push_str(r#","lastScrape":"#);
            let last = t
                .last_scrape
                .and_then(|s| s.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339_nanos);
            json::string(&mut out, &last);
            out.push_str(&format!(
                r#","lastScrapeDuration":{},"health":"{}","scrapeInterval":"{}","scrapeTimeout":"{}"}}"#,
                t.last_scrape_duration.as_secs_f64(),
                t.health.as_str(),
                go_duration(t.scrape_interval),
                go_duration(t.scrape_timeout),
            ));
        }
    }
    out.push_str(r#"],"droppedTargets":["#);
    if show_dropped {
        let mut first = true;
        for t in report.dropped.iter().filter(|t| in_pool(&t.scrape_pool)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(r#"{"discoveredLabels":"#);
            json::labels(&mut out, &t.discovered_labels);
            out.push_str(r#","scrapePool":"#);
            json::string(&mut out, &t.scrape_pool);
            out.push('}');
        }
    }
    out.push_str(r#"],"droppedTargetCounts":{"#);
    let mut first = true;
    for (job, n) in report.dropped_counts.iter().filter(|(j, _)| in_pool(j)) {
        if !first {
            out.push(',');
        }
        first = false;
        json::string(&mut out, job);
        out.push_str(&format!(":{n}"));
    }
    out.push_str("}}");
    success(&out, &[], &[])
}

/// A duration as Prometheus' configuration prints it (`15s`, `1m30s`).
fn go_duration(d: std::time::Duration) -> String {
    model::duration::Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
        .to_string()
}

/// `2006-01-02T15:04:05.999999999Z` (trailing zeros of the fraction dropped, as Go does).
fn rfc3339_nanos(since_epoch: std::time::Duration) -> String {
    let ms = (since_epoch.as_millis().min(i64::MAX as u128)) as i64;
    let base = rfc3339(ms - ms.rem_euclid(1000));
    let nanos = since_epoch.subsec_nanos();
    let head = base.trim_end_matches(".000Z");
    if nanos == 0 {
        return format!("{head}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{head}.{}Z", frac.trim_end_matches('0'))
}

/// `/api/v1/targets/metadata?match_target=&metric=&limit=`: the metadata each active target
/// gave, for targets whose labels match `match_target`; with `metric`, only that family (and
/// without the `metric` field, as Prometheus). `limit` counts entries but, as in Prometheus, is
/// only checked between targets.
pub async fn targets_metadata(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let limit = int_param(&p, "limit")?;
    let matchers = match p.get("match_target").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let invalid = |msg: String| {
                ApiError::bad_data(format!("invalid parameter \"match_target\": {msg}"))
            };
            let expr = promql::parse(s).map_err(|e| invalid(e.to_string()))?;
            match expr {
                promql::Expr::VectorSelector(vs) => Some(vs.matchers),
                _ => return Err(invalid(format!("{s:?} is not a series selector"))),
            }
        }
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let targets = match state.scrape.get() {
        Some(m) => m.targets_metadata(metric).await,
        None => Vec::new(),
    };
    let mut out = String::from("[");
    let mut n: i64 = 0;
    for t in &targets {
        if limit >= 0 && n >= limit {
            break;
        }
        if matchers
            .as_ref()
            .is_some_and(|m| !model::matcher::matches_all(m, &t.labels))
        {
            continue;
        }
        for m in &t.metadata {
            if n > 0 {
                out.push(',');
            }
            n += 1;
            out.push_str(r#"{"target":"#);
            json::labels(&mut out, &t.labels);
            if metric.is_none() {
                out.push_str(r#","metric":"#);
                json::string(&mut out, &m.family);
            }
            out.push(',');
            metadata_fields(&mut out, m);
            out.push('}');
        }
    }
    out.push(']');
    Ok(success(&out, &[], &[]))
}

/// `/api/v1/rules?type=alert|record&rule_name[]=&rule_group[]=&file[]=&exclude_alerts=`.
pub async fn rules(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new());
    let kind = match p.get("type").unwrap_or("") {
        "" => None,
        "alert" => Some(rules::RuleKindView::Alerting),
        "record" => Some(rules::RuleKindView::Recording),
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid query parameter type='{other}'"
            )));
        }
    };
    let exclude_alerts = match p.get("exclude_alerts").unwrap_or("") {
        "" | "false" | "0" => false,
        "true" | "1" => true,
        other => {
            return Err(ApiError::bad_data(format!(
                "parse exclude_alerts: strconv.ParseBool: parsing {other:?}: invalid syntax"
            )));
        }
    };
    let Some(rm) = state.rules.get() else {
        return Ok(success(r#"{"groups":[]}"#, &[], &[]));
    };
    let names: Vec<&str> = p.all("rule_name[]");
    let group_names: Vec<&str> = p.all("rule_group[]");
    let files: Vec<&str> = p.all("file[]");
    let mut groups = rm.rule_groups().await;
    groups.retain(|g| {
        (group_names.is_empty() || group_names.contains(&g.name.as_str()))
            && (files.is_empty() || files.contains(&g.file.as_str()))
    });
    if !names.is_empty() {
        for g in &mut groups {
            g.rules.retain(|r| names.contains(&r.name.as_str()));
        }
        groups.retain(|g| !g.rules.is_empty());
    }
    Ok(success(
        &rules::api::rules_json(&groups, kind, exclude_alerts).to_string(),
        &[],
        &[],
    ))
}

/// `/api/v1/alerts`: every active alert of every alerting rule.
pub async fn alerts(State(state): State<Arc<ApiState>>) -> Response {
    match state.rules.get() {
        Some(rm) => success(
            &rules::api::alerts_json(&rm.alerts().await).to_string(),
            &[],
            &[],
        ),
        None => success(r#"{"alerts":[]}"#, &[], &[]),
    }
}

/// `/api/v1/alertmanagers`: the Alertmanager endpoints alerts are sent to.
pub async fn alertmanagers(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::from(r#"{"activeAlertmanagers":["#);
    if let Some(rm) = state.rules.get() {
        for (i, url) in rm.notifier().alertmanagers().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(r#"{"url":"#);
            json::string(&mut out, url);
            out.push('}');
        }
    }
    out.push_str(r#"],"droppedAlertmanagers":[]}"#);
    success(&out, &[], &[])
}

pub async fn buildinfo() -> Response {
    let mut out = String::from("{");
    for (i, (k, v)) in [
        ("version", env!("CARGO_PKG_VERSION")),
        ("revision", ""),
        ("branch", ""),
        ("buildUser", ""),
        ("buildDate", ""),
        ("goVersion", ""),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        json::string(&mut out, k);
        out.push(':');
        json::string(&mut out, v);
    }
    out.push('}');
    success(&out, &[], &[])
}

pub async fn runtimeinfo(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::from("{");
    out.push_str(r#""startTime":"#);
    json::string(&mut out, &rfc3339(state.start_time_ms));
    out.push_str(r#","CWD":"#);
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    json::string(&mut out, &cwd);
    out.push_str(r#","reloadConfigSuccess":true,"lastConfigTime":"#);
    json::string(&mut out, &rfc3339(state.start_time_ms));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    out.push_str(&format!(
        r#","corruptionCount":0,"goroutineCount":0,"GOMAXPROCS":{threads},"GOMEMLIMIT":0,"GOGC":"","GODEBUG":"","storageRetention":"""#
    ));
    out.push('}');
    success(&out, &[], &[])
}

/// `/api/v1/status/config`: `{"yaml": ...}` with secrets shown as `<secret>`.
pub async fn config(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::from(r#"{"yaml":"#);
    json::string(&mut out, &state.config_yaml());
    out.push('}');
    success(&out, &[], &[])
}

pub async fn flags(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::from("{");
    for (i, (k, v)) in state.options().flags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::string(&mut out, k);
        out.push(':');
        json::string(&mut out, v);
    }
    out.push('}');
    success(&out, &[], &[])
}

pub async fn walreplay(State(state): State<Arc<ApiState>>) -> Response {
    let done = state.storage.get().is_some();
    let data = if done {
        r#"{"min":0,"max":0,"current":0}"#
    } else {
        r#"{"min":0,"max":-1,"current":0}"#
    };
    success(data, &[], &[])
}

pub async fn tsdb_status(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let storage = state.storage()?;
    let summary = storage.head_summary();
    let by_name = tokio::task::spawn_blocking(move || -> Result<Vec<(String, usize)>, ApiError> {
        let q = storage.querier(MIN_TIME, MAX_TIME)?;
        let mut counts = Vec::new();
        for name in q.label_values(model::labels::METRIC_NAME, &[])? {
            let n = q
                .select(
                    false,
                    None,
                    &[Matcher::equal(model::labels::METRIC_NAME, name.as_str())],
                )?
                .count();
            counts.push((name, n));
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(10);
        Ok(counts)
    })
    .await
    .map_err(|e| ApiError::new(super::ErrorType::Internal, e.to_string()))??;
    let mut out = format!(
        r#"{{"headStats":{{"numSeries":{},"numLabelPairs":0,"chunkCount":0,"minTime":{},"maxTime":{}}},"seriesCountByMetricName":["#,
        summary.num_series,
        summary.min_time.unwrap_or(i64::MAX),
        summary.max_time.unwrap_or(i64::MIN)
    );
    for (i, (name, n)) in by_name.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"name":"#);
        json::string(&mut out, name);
        out.push_str(&format!(r#","value":{n}}}"#));
    }
    out.push_str(r#"],"labelValueCountByLabelName":[],"memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}"#);
    Ok(success(&out, &[], &[]))
}

/// `2006-01-02T15:04:05.000Z`.
fn rfc3339(ms: i64) -> String {
    model::time::Utc::from_unix_ms(ms).rfc3339_millis()
}
