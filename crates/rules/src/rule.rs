//! One rule and its evaluation at a timestamp: a recording rule turns its query result into
//! samples of a new series; an alerting rule keeps the state of each alert (pending,
//! firing, inactive; `for`, `keep_firing_for`, resolved retention) and produces the `ALERTS`
//! and `ALERTS_FOR_STATE` samples, as Prometheus' rules package does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration as StdDuration;

use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use promql::engine::{Engine, Value};
use storage::Queryable;

use crate::file::{RuleKind, RuleSpec};
use crate::template::{TemplateData, expand_with};

/// How long a resolved alert is still reported (and sent) before it is dropped.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// `last_sent_at` of an alert never sent.
pub const NEVER: i64 = i64::MIN / 4;

/// State of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// The name the API and the `alertstate` label use.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are milliseconds since the epoch; 0 is unset.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    /// Alert labels: the series' labels without `__name__`, the rule's labels and
    /// `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// The value of the series at the last evaluation.
    pub value: f64,
    pub active_at: i64,
    pub fired_at: i64,
    pub resolved_at: i64,
    /// [`NEVER`] until first sent.
    pub last_sent_at: i64,
    pub valid_until: i64,
    pub keep_firing_since: i64,
}

impl Alert {
    /// Whether it must be sent to Alertmanager at `ts` (Prometheus' `needsSending`).
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at != 0 && self.resolved_at > self.last_sent_at {
            return true;
        }
        self.last_sent_at + resend_delay_ms < ts
    }
}

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// Settings shared by the rules of a manager.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// A loaded rule with its evaluation state.
#[derive(Debug)]
pub struct Rule {
    pub spec: RuleSpec,
    pub expr: promql::Expr,
    /// The group's labels merged under the rule's own.
    pub labels: BTreeMap<String, String>,
    pub health: Health,
    pub last_error: Option<String>,
    /// Milliseconds since the epoch, 0 before the first evaluation.
    pub last_evaluation: i64,
    pub evaluation_time: StdDuration,
    /// Alerts by their label-set hash (alerting rules only).
    pub active: HashMap<u64, Alert>,
    /// Whether `ALERTS` samples are produced yet (after the `for` state was restored).
    pub restored: bool,
}

impl Rule {
    /// Builds a rule from its spec; `group_labels` are added under the rule's labels.
    pub fn new(
        spec: RuleSpec,
        group_labels: &BTreeMap<String, String>,
        restored: bool,
    ) -> Result<Rule, String> {
        let expr = promql::parse(&spec.expr).map_err(|e| e.to_string())?;
        let mut labels = group_labels.clone();
        labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Rule {
            spec,
            expr,
            labels,
            health: Health::Unknown,
            last_error: None,
            last_evaluation: 0,
            evaluation_time: StdDuration::ZERO,
            active: HashMap::new(),
            restored,
        })
    }

    pub fn name(&self) -> &str {
        self.spec.name()
    }

    pub fn is_alerting(&self) -> bool {
        matches!(self.spec.kind, RuleKind::Alerting(_))
    }

    /// Whether this rule is the same (kind, name, expression, labels, annotations, `for`) as
    /// `other`, so that its state can be carried over a reload.
    pub fn same_definition(&self, other: &Rule) -> bool {
        self.spec == other.spec && self.labels == other.labels
    }

    /// Evaluates the rule for the group's evaluation time `ts` (ms); the query runs at
    /// `ts - query_offset_ms`, the time of the returned samples. Alert times (`activeAt`,
    /// `firedAt`, `resolvedAt`) are `ts`. Records health, error and timing.
    pub fn eval(
        &mut self,
        engine: &Engine,
        storage: &dyn Queryable,
        ts: i64,
        query_offset_ms: i64,
        limit: u64,
        ctx: &EvalContext,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let started = std::time::Instant::now();
        let query_ts = ts - query_offset_ms;
        let result = match self.spec.kind.clone() {
            RuleKind::Recording(name) => {
                self.eval_recording(&name, engine, storage, query_ts, limit)
            }
            RuleKind::Alerting(name) => {
                self.eval_alerting(&name, engine, storage, (ts, query_ts), limit, ctx)
            }
        };
        self.evaluation_time = started.elapsed();
        self.last_evaluation = ts;
        match &result {
            Ok(_) => {
                self.health = Health::Ok;
                self.last_error = None;
            }
            Err(e) => {
                self.health = Health::Err;
                self.last_error = Some(e.clone());
            }
        }
        result
    }

    fn query(
        &self,
        engine: &Engine,
        storage: &dyn Queryable,
        ts: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let result = engine
            .instant_query_expr(storage, &self.expr, ts, None)
            .map_err(|e| e.to_string())?;
        Ok(match result.value {
            Value::Vector(samples) => samples
                .into_iter()
                .filter_map(|s| match s.value {
                    storage::Value::Float(v) => Some((s.labels, v)),
                    // Native histogram results are not recorded yet.
                    storage::Value::Histogram(_) => None,
                })
                .collect(),
            Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
            Value::String { .. } | Value::Matrix(_) => {
                return Err("rule result is not a vector or scalar".into());
            }
        })
    }

    fn eval_recording(
        &mut self,
        name: &str,
        engine: &Engine,
        storage: &dyn Queryable,
        ts: i64,
        limit: u64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let samples = self.query(engine, storage, ts)?;
        let mut out = Vec::with_capacity(samples.len());
        let mut seen = HashSet::with_capacity(samples.len());
        for (labels, v) in samples {
            let mut b = labels.builder();
            b.set("__name__", name);
            for (k, val) in &self.labels {
                if val.is_empty() {
                    b.del(k);
                } else {
                    b.set(k.as_str(), val.as_str());
                }
            }
            let labels = b.build();
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            out.push((labels, v));
        }
        if limit > 0 && out.len() as u64 > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }

    fn eval_alerting(
        &mut self,
        name: &str,
        engine: &Engine,
        storage: &dyn Queryable,
        (ts, query_ts): (i64, i64),
        limit: u64,
        ctx: &EvalContext,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let samples = self.query(engine, storage, query_ts)?;
        let query_fn = |q: &str| -> crate::template::QueryRows {
            let r = engine
                .instant_query(storage, q, query_ts)
                .map_err(|e| e.to_string())?;
            Ok(match r.value {
                Value::Vector(v) => v
                    .into_iter()
                    .filter_map(|s| match s.value {
                        storage::Value::Float(f) => Some((labels_map(&s.labels), f)),
                        storage::Value::Histogram(_) => None,
                    })
                    .collect(),
                Value::Scalar { v, .. } => vec![(BTreeMap::new(), v)],
                Value::String { s, .. } => {
                    vec![(BTreeMap::from([("__value__".to_owned(), s)]), 0.0)]
                }
                Value::Matrix(_) => return Err("query result is a range vector".into()),
            })
        };
        let hold = self.spec.for_.as_millis() as i64;
        let keep_firing_for = self.spec.keep_firing_for.as_millis() as i64;
        let mut current: HashMap<u64, Alert> = HashMap::new();
        let tmpl_name = format!("__alert_{name}");
        for (series, value) in samples {
            let series_labels = labels_map(&series);
            let data = TemplateData {
                labels: series_labels,
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.clone(),
                value,
            };
            let mut b = series.builder();
            b.del("__name__");
            for (k, v) in &self.labels {
                let v = expand_with(&tmpl_name, v, &data, Some(&query_fn));
                if v.is_empty() {
                    b.del(k);
                } else {
                    b.set(k.as_str(), v);
                }
            }
            b.set("alertname", name);
            let labels = b.build();
            let annotations: BTreeMap<String, String> = self
                .spec
                .annotations
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        expand_with(&tmpl_name, v, &data, Some(&query_fn)),
                    )
                })
                .collect();
            let h = labels.hash64();
            if current.contains_key(&h) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(
                h,
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value,
                    active_at: ts,
                    fired_at: 0,
                    resolved_at: 0,
                    last_sent_at: NEVER,
                    valid_until: 0,
                    keep_firing_since: 0,
                },
            );
        }
        let in_result: HashSet<u64> = current.keys().copied().collect();
        for (h, a) in current {
            match self.active.get_mut(&h) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(h, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_pending = 0u64;
        let mut remove = Vec::new();
        for (h, a) in self.active.iter_mut() {
            if !in_result.contains(h) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for > 0 {
                    if a.keep_firing_since == 0 {
                        a.keep_firing_since = ts;
                    }
                    if ts - a.keep_firing_since < keep_firing_for {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || (a.resolved_at != 0 && ts - a.resolved_at > RESOLVED_RETENTION_MS)
                {
                    remove.push(*h);
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = ts;
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = 0;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = ts;
            }
            if self.restored {
                let mut b = a.labels.builder();
                b.set("__name__", "ALERTS");
                b.set("alertstate", a.state.as_str());
                out.push((b.build(), 1.0));
                let mut b = a.labels.builder();
                b.set("__name__", "ALERTS_FOR_STATE");
                out.push((b.build(), (a.active_at / 1000) as f64));
            }
        }
        for h in remove {
            self.active.remove(&h);
        }
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_pending} alerts"
            ));
        }
        Ok(out)
    }

    /// The alerts to send at `ts`, marking them sent (Prometheus' `sendAlerts`).
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = ts;
                a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
                out.push(a.clone());
            }
        }
        out
    }

    /// Restores the `for` state of pending alerts from `ALERTS_FOR_STATE` (Prometheus'
    /// `RestoreForState`): `ts` is now (ms), `outage_tolerance` and `grace` in ms.
    pub fn restore_for_state(
        &mut self,
        storage: &dyn Queryable,
        ts: i64,
        outage_tolerance: i64,
        grace: i64,
    ) -> Result<(), String> {
        let hold = self.spec.for_.as_millis() as i64;
        self.restored = true;
        if hold == 0 || hold < grace || self.active.is_empty() {
            return Ok(());
        }
        let name = self.name().to_owned();
        let mint = ts - outage_tolerance;
        let querier = storage.querier(mint, ts).map_err(|e| e.to_string())?;
        let matchers = [
            Matcher::new(MatchOp::Equal, "__name__", "ALERTS_FOR_STATE")
                .map_err(|e| e.to_string())?,
            Matcher::new(MatchOp::Equal, "alertname", name.as_str()).map_err(|e| e.to_string())?,
        ];
        let set = querier
            .select(false, None, &matchers)
            .map_err(|e| e.to_string())?;
        let mut last: HashMap<Labels, (i64, f64)> = HashMap::new();
        for series in set {
            let mut series = series.map_err(|e| e.to_string())?;
            let labels = series.labels.without_metric_name();
            let mut found = None;
            while let Some(kind) = series.samples.next() {
                if kind != storage::ValueKind::Float {
                    continue;
                }
                let (t, v) = series.samples.at();
                if !model::sample::is_stale_nan(v) {
                    found = Some((t, v));
                }
            }
            if let Some(f) = found {
                last.insert(labels, f);
            }
        }
        for a in self.active.values_mut() {
            if a.state != AlertState::Pending {
                continue;
            }
            let Some(&(t, v)) = last.get(&a.labels) else {
                continue;
            };
            let down_at = t / 1000 * 1000;
            let mut restored_active_at = (v as i64) * 1000;
            let spent = down_at - restored_active_at;
            let remaining = hold - spent;
            if remaining <= 0 {
            } else if remaining < grace {
                restored_active_at = ts + grace - hold;
            } else {
                restored_active_at += ts - down_at;
            }
            a.active_at = restored_active_at;
        }
        Ok(())
    }
}

/// The `type` of a rule in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKindView {
    Recording,
    Alerting,
}

impl RuleKindView {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKindView::Recording => "recording",
            RuleKindView::Alerting => "alerting",
        }
    }
}

fn labels_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.as_str().to_owned(), l.value.as_str().to_owned()))
        .collect()
}
