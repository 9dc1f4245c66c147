//! A rule group: its rules evaluated in order at one timestamp, the samples appended with
//! staleness markers for series that disappeared, alerts handed to the notifier, and the
//! group's evaluation schedule (aligned to the interval with an offset from a hash of the
//! group's name and file, as Prometheus does).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use model::labels::Labels;
use promql::engine::Engine;
use storage::{AppendError, Appendable, Queryable};

use crate::file::GroupSpec;
use crate::notifier::{NotifierAlert, table_link_for_expression};
use crate::rule::{EvalContext, Health, Rule};

/// What evaluation needs from the server.
#[derive(Clone)]
pub struct EvalDeps {
    pub engine: Engine,
    pub queryable: Arc<dyn Queryable>,
    pub appendable: Arc<dyn Appendable>,
    pub ctx: EvalContext,
    /// Resend firing alerts this often (`--rules.alert.resend-delay`, 1m).
    pub resend_delay: StdDuration,
    /// `--rules.alert.for-outage-tolerance` (1h).
    pub outage_tolerance: StdDuration,
    /// `--rules.alert.for-grace-period` (10m).
    pub for_grace_period: StdDuration,
}

/// One group with its rules and evaluation state.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub file: PathBuf,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: u64,
    pub spec: GroupSpec,
    pub rules: Vec<Rule>,
    /// Timestamp (ms) of the last evaluation; 0 before the first.
    pub last_evaluation: i64,
    pub evaluation_time: StdDuration,
    /// Series each rule produced at its last successful evaluation.
    prev_series: Vec<HashSet<Labels>>,
    /// Restore the `for` state after the first evaluation.
    pub should_restore: bool,
    /// Counters for the rule metrics.
    pub evaluations: u64,
    pub failures: u64,
    pub missed: u64,
}

impl Group {
    /// Builds a group; `interval_ms`/`query_offset_ms` are the effective values (the group's
    /// or the global defaults). With `should_restore`, `ALERTS` appear only after the `for`
    /// state was restored.
    pub fn new(
        spec: GroupSpec,
        file: PathBuf,
        interval_ms: i64,
        query_offset_ms: i64,
        should_restore: bool,
    ) -> Result<Group, String> {
        let mut rules = Vec::with_capacity(spec.rules.len());
        for r in &spec.rules {
            rules.push(Rule::new(r.clone(), &spec.labels, !should_restore)?);
        }
        Ok(Group {
            name: spec.name.clone(),
            file,
            interval_ms: interval_ms.max(1),
            query_offset_ms,
            limit: spec.limit,
            prev_series: vec![HashSet::new(); rules.len()],
            spec,
            rules,
            last_evaluation: 0,
            evaluation_time: StdDuration::ZERO,
            should_restore,
            evaluations: 0,
            failures: 0,
            missed: 0,
        })
    }

    /// Whether `other` is the same group definition (same file, name, interval, offset,
    /// limit, labels and rules).
    pub fn same_definition(&self, other: &Group) -> bool {
        self.file == other.file
            && self.spec == other.spec
            && self.interval_ms == other.interval_ms
            && self.query_offset_ms == other.query_offset_ms
    }

    /// Takes over the state of `old`'s rules of the same kind and name (active alerts,
    /// series of the last evaluation), as Prometheus' `CopyState`.
    pub fn copy_state(&mut self, old: &mut Group) {
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let Some(j) = old
                .rules
                .iter()
                .position(|o| o.name() == rule.name() && o.is_alerting() == rule.is_alerting())
            else {
                continue;
            };
            let o = &mut old.rules[j];
            rule.active = std::mem::take(&mut o.active);
            rule.health = o.health;
            rule.last_error = o.last_error.take();
            rule.last_evaluation = o.last_evaluation;
            rule.evaluation_time = o.evaluation_time;
            rule.restored = o.restored;
            self.prev_series[i] = std::mem::take(&mut old.prev_series[j]);
        }
    }

    /// Hash that spreads groups over their interval.
    fn hash(&self) -> u64 {
        let file = self.file.to_string_lossy();
        Labels::from_pairs([("name", self.name.as_str()), ("file", file.as_ref())])
            .map(|l| l.hash64())
            .unwrap_or(0)
    }

    /// The latest evaluation time (ms) at or before `now_ms` on this group's grid.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms;
        let offset = (self.hash() % interval as u64) as i64;
        let adj = now_ms - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    /// Evaluates every rule at `ts` (ms), appends the results and staleness markers, and
    /// returns the alerts to send.
    pub fn eval(&mut self, ts: i64, deps: &EvalDeps) -> Vec<NotifierAlert> {
        let started = std::time::Instant::now();
        let query_ts = ts - self.query_offset_ms;
        let mut to_send = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            self.evaluations += 1;
            let samples = match rule.eval(
                &deps.engine,
                deps.queryable.as_ref(),
                ts,
                self.query_offset_ms,
                self.limit,
                &deps.ctx,
            ) {
                Ok(s) => s,
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(group = %self.name, rule = %rule.name(), err = %e, "Evaluating rule failed");
                    continue;
                }
            };
            let mut app = deps.appendable.appender();
            let mut seen = HashSet::with_capacity(samples.len());
            let mut failure = None;
            for (labels, v) in samples {
                match app.append(None, &labels, query_ts, v) {
                    Ok(_) => {}
                    Err(AppendError::OutOfOrder | AppendError::DuplicateTimestamp) => {}
                    Err(e) => failure = Some(e.to_string()),
                }
                seen.insert(labels);
            }
            for gone in self.prev_series[i].difference(&seen) {
                let _ = app.append(None, gone, query_ts, model::sample::stale_nan());
            }
            if let Err(e) = app.commit() {
                failure = Some(e.to_string());
            }
            if let Some(e) = failure {
                rule.health = Health::Err;
                rule.last_error = Some(e);
            }
            self.prev_series[i] = seen;
            if rule.is_alerting() {
                let generator_url = format!(
                    "{}{}",
                    deps.ctx.external_url.trim_end_matches('/'),
                    table_link_for_expression(&rule.spec.expr)
                );
                let resend = deps.resend_delay.as_millis() as i64;
                for a in rule.alerts_to_send(ts, resend, self.interval_ms) {
                    to_send.push(NotifierAlert {
                        labels: a.labels,
                        annotations: a.annotations,
                        starts_at: a.fired_at,
                        ends_at: if a.resolved_at != 0 {
                            a.resolved_at
                        } else {
                            a.valid_until
                        },
                        generator_url: generator_url.clone(),
                    });
                }
            }
        }
        if self.should_restore {
            self.should_restore = false;
            let now = now_ms();
            for rule in self.rules.iter_mut().filter(|r| r.is_alerting()) {
                if let Err(e) = rule.restore_for_state(
                    deps.queryable.as_ref(),
                    now,
                    deps.outage_tolerance.as_millis() as i64,
                    deps.for_grace_period.as_millis() as i64,
                ) {
                    tracing::error!(group = %self.name, rule = %rule.name(), err = %e, "Failed to restore 'for' state");
                }
            }
        }
        self.last_evaluation = ts;
        self.evaluation_time = started.elapsed();
        to_send
    }

    /// Writes staleness markers at `ts` for every series the group produced last (when the
    /// group is removed or the manager stops).
    pub fn mark_stale(&mut self, ts: i64, appendable: &dyn Appendable) {
        let mut app = appendable.appender();
        for set in &mut self.prev_series {
            for labels in set.drain() {
                let _ = app.append(None, &labels, ts, model::sample::stale_nan());
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.name, err = %e, "Writing staleness markers failed");
        }
    }
}

/// Now in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::parse_rule_file;
    use crate::rule::{AlertState, RESOLVED_RETENTION_MS};
    use storage::memory::MemStorage;

    fn setup(rules: &str) -> (Arc<MemStorage>, Group, EvalDeps) {
        let store = Arc::new(MemStorage::new());
        let file = parse_rule_file(rules, std::path::Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("{}", e[0]));
        let spec = file
            .groups
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no group"));
        let g =
            Group::new(spec, "t.yml".into(), 60_000, 0, false).unwrap_or_else(|e| panic!("{e}"));
        let deps = EvalDeps {
            engine: Engine::default(),
            queryable: store.clone(),
            appendable: store.clone(),
            ctx: EvalContext {
                external_labels: [("cluster".to_owned(), "eu".to_owned())].into(),
                external_url: "http://prom:9090".into(),
            },
            resend_delay: StdDuration::from_secs(60),
            outage_tolerance: StdDuration::from_secs(3600),
            for_grace_period: StdDuration::from_secs(600),
        };
        (store, g, deps)
    }

    fn put(store: &MemStorage, labels: &[(&str, &str)], points: &[(i64, f64)]) {
        store.insert_samples(
            &Labels::from_static(labels),
            points.iter().map(|(t, v)| (*t, storage::Value::Float(*v))),
        );
    }

    fn instant(store: &MemStorage, q: &str, t: i64) -> Vec<(String, f64)> {
        let r = Engine::default()
            .instant_query(store, q, t)
            .unwrap_or_else(|e| panic!("{e}"));
        match r.value {
            promql::engine::Value::Vector(v) => v
                .into_iter()
                .map(|s| match s.value {
                    storage::Value::Float(f) => (s.labels.to_string(), f),
                    storage::Value::Histogram(_) => (s.labels.to_string(), f64::NAN),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    const ALERT: &str = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    labels:\n      severity: page\n      instance_copy: '{{ $labels.instance }}'\n    annotations:\n      summary: '{{ $labels.instance }} down, value {{ $value }} in {{ $externalLabels.cluster }}'\n";

    #[test]
    fn alert_goes_pending_firing_resolved() {
        let (store, mut g, deps) = setup(ALERT);
        let up = [("__name__", "up"), ("instance", "h1"), ("job", "j")];
        put(
            &store,
            &up,
            &[(0, 0.0), (60_000, 0.0), (120_000, 0.0), (180_000, 1.0)],
        );
        assert!(g.eval(0, &deps).is_empty());
        let a = g.rules[0].active.values().next().cloned();
        let a = a.unwrap_or_else(|| panic!("no alert"));
        assert_eq!(a.state, AlertState::Pending);
        assert_eq!(a.labels.get("instance_copy"), Some("h1"));
        assert_eq!(a.labels.get("alertname"), Some("Down"));
        assert_eq!(a.annotations["summary"], "h1 down, value 0 in eu");
        assert!(g.eval(60_000, &deps).is_empty());
        let sent = g.eval(120_000, &deps);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at, 120_000);
        assert_eq!(sent[0].ends_at, 120_000 + 4 * 60_000);
        assert!(
            sent[0]
                .generator_url
                .starts_with("http://prom:9090/graph?g0.expr=up+%3D%3D+0")
        );
        // ALERTS at each evaluation: pending twice, then firing.
        let alerts = instant(&store, "ALERTS", 120_000);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].0.contains("alertstate=\"firing\""), "{alerts:?}");
        let for_state = instant(&store, "ALERTS_FOR_STATE", 120_000);
        assert_eq!(for_state[0].1, 0.0);
        // Resolved: sent once more with endsAt = resolution time, ALERTS goes stale.
        let sent = g.eval(180_000, &deps);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at, 180_000);
        assert!(instant(&store, "ALERTS", 180_000).is_empty());
        assert_eq!(
            g.rules[0].active.values().next().map(|a| a.state),
            Some(AlertState::Inactive)
        );
        // Kept for the resolved retention, then dropped.
        assert!(g.eval(240_000, &deps).is_empty());
        g.eval(180_000 + RESOLVED_RETENTION_MS + 60_000, &deps);
        assert!(g.rules[0].active.is_empty());
    }

    #[test]
    fn firing_alerts_are_resent_after_the_resend_delay() {
        let (store, mut g, deps) =
            setup("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n");
        let _ = store;
        assert_eq!(g.eval(0, &deps).len(), 1);
        assert!(g.eval(30_000, &deps).is_empty());
        assert!(g.eval(60_000, &deps).is_empty());
        assert_eq!(g.eval(90_000, &deps).len(), 1);
    }

    #[test]
    fn keep_firing_for_holds_the_alert() {
        let (store, mut g, deps) = setup(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    keep_firing_for: 2m\n",
        );
        put(
            &store,
            &[("__name__", "x")],
            &[(0, 1.0), (60_000, 0.0), (120_000, 0.0), (180_000, 0.0)],
        );
        g.eval(0, &deps);
        let state = |g: &Group| g.rules[0].active.values().next().map(|a| a.state);
        assert_eq!(state(&g), Some(AlertState::Firing));
        g.eval(60_000, &deps);
        assert_eq!(state(&g), Some(AlertState::Firing));
        g.eval(120_000, &deps);
        assert_eq!(state(&g), Some(AlertState::Firing));
        g.eval(180_000, &deps);
        assert_eq!(state(&g), Some(AlertState::Inactive));
    }

    #[test]
    fn recording_rules_write_series_and_staleness_markers() {
        let (store, mut g, deps) = setup(
            "groups:\n- name: g\n  labels:\n    team: t\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n    labels:\n      source: rule\n",
        );
        put(
            &store,
            &[("__name__", "x"), ("job", "a"), ("i", "1")],
            &[(0, 1.0), (60_000, 2.0)],
        );
        put(
            &store,
            &[("__name__", "x"), ("job", "a"), ("i", "2")],
            &[(0, 3.0), (60_000, 4.0)],
        );
        put(&store, &[("__name__", "x"), ("job", "b")], &[(0, 5.0)]);
        g.eval(0, &deps);
        let r = instant(&store, "job:x:sum", 0);
        assert_eq!(
            r,
            vec![
                (
                    "{__name__=\"job:x:sum\", job=\"a\", source=\"rule\", team=\"t\"}".to_owned(),
                    4.0
                ),
                (
                    "{__name__=\"job:x:sum\", job=\"b\", source=\"rule\", team=\"t\"}".to_owned(),
                    5.0
                ),
            ]
        );
        // At 6m the `b` series is out of the lookback window: it must get a stale marker.
        g.eval(360_001, &deps);
        let r = instant(&store, "job:x:sum", 360_001);
        assert!(r.is_empty(), "{r:?}");
        let q = store.querier(0, 400_000).unwrap_or_else(|e| panic!("{e}"));
        let m = model::matcher::Matcher::new(model::matcher::MatchOp::Equal, "job", "b")
            .unwrap_or_else(|e| panic!("{e}"));
        let n =
            model::matcher::Matcher::new(model::matcher::MatchOp::Equal, "__name__", "job:x:sum")
                .unwrap_or_else(|e| panic!("{e}"));
        let mut stale = false;
        for s in q
            .select(false, None, &[m, n])
            .unwrap_or_else(|e| panic!("{e}"))
        {
            let mut s = s.unwrap_or_else(|e| panic!("{e}"));
            while s.samples.next().is_some() {
                stale |= model::sample::is_stale_nan(s.samples.at().1);
            }
        }
        assert!(stale);
    }

    #[test]
    fn errors_and_limits_set_health() {
        let (store, mut g, deps) =
            setup("groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: x\n");
        put(&store, &[("__name__", "x"), ("a", "1")], &[(0, 1.0)]);
        put(&store, &[("__name__", "x"), ("a", "2")], &[(0, 1.0)]);
        g.eval(0, &deps);
        assert_eq!(g.rules[0].health, Health::Err);
        assert_eq!(
            g.rules[0].last_error.as_deref(),
            Some("exceeded limit of 1 with 2 series")
        );
    }

    #[test]
    fn for_state_is_restored() {
        let rules = ALERT.replace("for: 2m", "for: 1h");
        let (store, _, deps) = setup(&rules);
        let now = now_ms();
        let up = [("__name__", "up"), ("instance", "h1"), ("job", "j")];
        put(&store, &up, &[(now - 60_000, 0.0), (now, 0.0)]);
        // Before the restart the alert had been pending for 29 minutes when the server went
        // down one minute ago: 31 minutes remain, more than the grace period, so the
        // downtime is not counted.
        let fs = [
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "Down"),
            ("instance", "h1"),
            ("instance_copy", "h1"),
            ("job", "j"),
            ("severity", "page"),
        ];
        let down_at = (now - 60_000) / 1000 * 1000;
        put(
            &store,
            &fs,
            &[(down_at, ((down_at - 29 * 60_000) / 1000) as f64)],
        );
        let file = parse_rule_file(&rules, std::path::Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("{}", e[0]));
        let spec = file
            .groups
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no group"));
        let mut g =
            Group::new(spec, "t.yml".into(), 60_000, 0, true).unwrap_or_else(|e| panic!("{e}"));
        g.eval(now, &deps);
        assert!(
            instant(&store, "ALERTS", now).is_empty(),
            "no ALERTS before restoring"
        );
        let a = g.rules[0].active.values().next().cloned();
        let a = a.unwrap_or_else(|| panic!("no alert"));
        let expected = down_at - 29 * 60_000 + (now - down_at);
        assert!(
            (a.active_at - expected).abs() <= 2_000,
            "{} vs {expected}",
            a.active_at
        );
        g.eval(now + 60_000, &deps);
        assert_eq!(instant(&store, "ALERTS", now + 60_000).len(), 1);
    }

    #[test]
    fn eval_timestamps_are_aligned() {
        let (_, g, _) = setup(ALERT);
        let t = g.eval_timestamp(1_000_000_000);
        assert!(t <= 1_000_000_000 && t > 1_000_000_000 - 60_000);
        assert_eq!(g.eval_timestamp(t + 59_999), t);
        assert_eq!(g.eval_timestamp(t + 60_000), t + 60_000);
    }
}
