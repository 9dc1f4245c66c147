//! The rule manager: loads the rule files a configuration names, runs one task per group,
//! keeps unchanged groups (and the state of unchanged rules) across reloads, writes
//! staleness markers for removed groups, feeds the notifier, and answers what
//! `/api/v1/rules`, `/api/v1/alerts` and `/metrics` need.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use config::Config;
use model::labels::Labels;
use promql::engine::Engine;
use storage::{Appendable, Queryable};

use crate::file::{RuleFileError, expand_patterns, load_file};
use crate::group::{EvalDeps, Group, now_ms};
use crate::notifier::Notifier;
use crate::rule::{AlertState, EvalContext, Health, RuleKindView};

/// How the manager is set up (Prometheus' `--rules.*` and `--alertmanager.*` flags).
#[derive(Clone)]
pub struct RuleManagerOptions {
    pub engine: Engine,
    pub queryable: Arc<dyn Queryable>,
    pub appendable: Arc<dyn Appendable>,
    /// `--web.external-url`, used in `generatorURL` and `$externalURL`.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (default 1m).
    pub resend_delay: StdDuration,
    /// `--rules.alert.for-outage-tolerance` (default 1h).
    pub outage_tolerance: StdDuration,
    /// `--rules.alert.for-grace-period` (default 10m).
    pub for_grace_period: StdDuration,
    /// `--alertmanager.notification-queue-capacity` (default 10000).
    pub notification_queue_capacity: usize,
}

impl RuleManagerOptions {
    /// Prometheus' defaults for everything but the storage and engine.
    pub fn new(
        engine: Engine,
        queryable: Arc<dyn Queryable>,
        appendable: Arc<dyn Appendable>,
    ) -> RuleManagerOptions {
        RuleManagerOptions {
            engine,
            queryable,
            appendable,
            external_url: String::new(),
            resend_delay: StdDuration::from_secs(60),
            outage_tolerance: StdDuration::from_secs(3600),
            for_grace_period: StdDuration::from_secs(600),
            notification_queue_capacity: crate::notifier::DEFAULT_QUEUE_CAPACITY,
        }
    }
}

struct GroupEntry {
    group: Arc<Mutex<Group>>,
    /// Snapshot after the last evaluation, so API readers never wait for one.
    status: Arc<RwLock<GroupStatus>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    groups: BTreeMap<(PathBuf, String), GroupEntry>,
    /// False until the first successful load: only groups of the first load restore their
    /// `for` state.
    loaded: bool,
}

/// Runs the rule groups. Create it inside a Tokio runtime.
pub struct RuleManager {
    opts: RuleManagerOptions,
    deps: Arc<RwLock<EvalDeps>>,
    notifier: Notifier,
    notifier_stop: tokio::sync::watch::Sender<bool>,
    notifier_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    state: tokio::sync::Mutex<State>,
}

impl RuleManager {
    /// Starts the notifier; no groups run before [`RuleManager::apply_config`].
    pub fn new(opts: RuleManagerOptions) -> Arc<RuleManager> {
        let notifier = Notifier::new(opts.notification_queue_capacity);
        let (notifier_stop, stop_rx) = tokio::sync::watch::channel(false);
        let n = notifier.clone();
        let task = tokio::spawn(async move { n.run(stop_rx).await });
        let deps = EvalDeps {
            engine: opts.engine.clone(),
            queryable: opts.queryable.clone(),
            appendable: opts.appendable.clone(),
            ctx: EvalContext {
                external_labels: BTreeMap::new(),
                external_url: opts.external_url.clone(),
            },
            resend_delay: opts.resend_delay,
            outage_tolerance: opts.outage_tolerance,
            for_grace_period: opts.for_grace_period,
        };
        Arc::new(RuleManager {
            opts,
            deps: Arc::new(RwLock::new(deps)),
            notifier,
            notifier_stop,
            notifier_task: Mutex::new(Some(task)),
            state: tokio::sync::Mutex::new(State {
                groups: BTreeMap::new(),
                loaded: false,
            }),
        })
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Loads the rule files and the `alerting` section of `cfg`. On any error nothing
    /// changes and the error lists every problem. Unchanged groups keep running; changed
    /// ones restart with the state of their unchanged rules; removed ones stop and get
    /// staleness markers.
    pub async fn apply_config(&self, cfg: &Config) -> Result<(), String> {
        let files = expand_patterns(&cfg.rule_files)?;
        let mut errors: Vec<RuleFileError> = Vec::new();
        let mut loaded = Vec::new();
        for f in &files {
            match load_file(f) {
                Ok(rf) => loaded.push(rf),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(msgs.join("; "));
        }
        self.notifier.apply_config(
            &cfg.alerting,
            &cfg.global.external_labels,
            cfg.global.metric_name_validation_scheme,
        )?;
        {
            let mut deps = self.deps.write().unwrap_or_else(|e| e.into_inner());
            deps.ctx.external_labels = cfg.global.external_labels.clone();
        }
        let mut state = self.state.lock().await;
        let should_restore = !state.loaded;
        let mut new_groups = Vec::new();
        for rf in loaded {
            for spec in rf.groups {
                // An interval of 0 means the global one, as in Prometheus.
                let interval = spec
                    .interval
                    .filter(|d| !d.is_zero())
                    .unwrap_or(cfg.global.evaluation_interval)
                    .as_millis() as i64;
                let offset = spec
                    .query_offset
                    .unwrap_or(cfg.global.rule_query_offset)
                    .as_millis() as i64;
                let g = Group::new(spec, rf.path.clone(), interval, offset, should_restore)?;
                new_groups.push(g);
            }
        }
        let mut old = std::mem::take(&mut state.groups);
        for mut g in new_groups {
            let key = (g.file.clone(), g.name.clone());
            if let Some(entry) = old.remove(&key) {
                let same = entry
                    .group
                    .lock()
                    .map(|o| o.same_definition(&g))
                    .unwrap_or(false);
                if same {
                    state.groups.insert(key, entry);
                    continue;
                }
                stop_entry(&entry).await;
                {
                    let mut o = entry.group.lock().unwrap_or_else(|e| e.into_inner());
                    g.copy_state(&mut o);
                }
            }
            let entry = self.start_group(g);
            state.groups.insert(key, entry);
        }
        for (_, entry) in old {
            stop_entry(&entry).await;
            let mut g = entry.group.lock().unwrap_or_else(|e| e.into_inner());
            let ts = now_ms() - g.query_offset_ms;
            g.mark_stale(ts, self.opts.appendable.as_ref());
        }
        state.loaded = true;
        Ok(())
    }

    fn start_group(&self, g: Group) -> GroupEntry {
        let status = Arc::new(RwLock::new(group_status(&g)));
        let group = Arc::new(Mutex::new(g));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_group(
            group.clone(),
            status.clone(),
            self.deps.clone(),
            self.notifier.clone(),
            stop_rx,
        ));
        GroupEntry {
            group,
            status,
            stop,
            task,
        }
    }

    /// Stops every group and then the notifier (which first sends what is queued).
    pub async fn stop(&self) {
        let mut state = self.state.lock().await;
        for (_, entry) in std::mem::take(&mut state.groups) {
            stop_entry(&entry).await;
        }
        let _ = self.notifier_stop.send(true);
        let task = self
            .notifier_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(StdDuration::from_secs(10), task).await;
        }
    }

    /// A snapshot of every group for `/api/v1/rules`, in file then name order.
    pub async fn rule_groups(&self) -> Vec<GroupStatus> {
        let state = self.state.lock().await;
        let mut out = Vec::with_capacity(state.groups.len());
        for entry in state.groups.values() {
            let status = entry.status.read().unwrap_or_else(|e| e.into_inner());
            out.push(status.clone());
        }
        out
    }

    /// Pending and firing alerts of every alerting rule, for `/api/v1/alerts`.
    pub async fn alerts(&self) -> Vec<AlertStatus> {
        self.rule_groups()
            .await
            .into_iter()
            .flat_map(|g| g.rules.into_iter().flat_map(|r| r.alerts))
            .collect()
    }

    /// The rule and notifier metrics in the text exposition format.
    pub async fn render_metrics(&self, out: &mut String) {
        let groups = self.rule_groups().await;
        let counts: Vec<(String, u64, u64, u64)> = groups
            .iter()
            .map(|g| (g.key(), g.evaluations, g.failures, g.missed))
            .collect();
        let esc = |s: &str| {
            let mut v = Vec::new();
            model::exposition::escape_label_value(s, &mut v);
            String::from_utf8_lossy(&v).into_owned()
        };
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let rg = |k: &str| format!("{{rule_group=\"{}\"}}", esc(k));
        family(
            "prometheus_rule_evaluations_total",
            "counter",
            "The total number of rule evaluations.",
            counts.iter().map(|c| (rg(&c.0), c.1.to_string())).collect(),
        );
        family(
            "prometheus_rule_evaluation_failures_total",
            "counter",
            "The total number of rule evaluation failures.",
            counts.iter().map(|c| (rg(&c.0), c.2.to_string())).collect(),
        );
        family(
            "prometheus_rule_group_iterations_missed_total",
            "counter",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            counts.iter().map(|c| (rg(&c.0), c.3.to_string())).collect(),
        );
        family(
            "prometheus_rule_group_interval_seconds",
            "gauge",
            "The interval of a rule group.",
            groups
                .iter()
                .map(|g| (rg(&g.key()), fmt_f(g.interval_seconds)))
                .collect(),
        );
        family(
            "prometheus_rule_group_last_duration_seconds",
            "gauge",
            "The duration of the last rule group evaluation.",
            groups
                .iter()
                .map(|g| (rg(&g.key()), fmt_f(g.evaluation_time.as_secs_f64())))
                .collect(),
        );
        family(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "The timestamp of the last rule group evaluation in seconds.",
            groups
                .iter()
                .map(|g| (rg(&g.key()), fmt_f(g.last_evaluation as f64 / 1000.0)))
                .collect(),
        );
        family(
            "prometheus_rule_group_rules",
            "gauge",
            "The number of rules.",
            groups
                .iter()
                .map(|g| (rg(&g.key()), g.rules.len().to_string()))
                .collect(),
        );
        let m = self.notifier.metrics();
        use std::sync::atomic::Ordering::Relaxed;
        family(
            "prometheus_notifications_sent_total",
            "counter",
            "Total number of alerts sent.",
            vec![(String::new(), m.sent.load(Relaxed).to_string())],
        );
        family(
            "prometheus_notifications_errors_total",
            "counter",
            "Total number of sent alerts affected by errors.",
            vec![(String::new(), m.errors.load(Relaxed).to_string())],
        );
        family(
            "prometheus_notifications_dropped_total",
            "counter",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            vec![(String::new(), m.dropped.load(Relaxed).to_string())],
        );
        family(
            "prometheus_notifications_queue_length",
            "gauge",
            "The number of alert notifications in the queue.",
            vec![(String::new(), self.notifier.queue_length().to_string())],
        );
        family(
            "prometheus_notifications_queue_capacity",
            "gauge",
            "The capacity of the alert notifications queue.",
            vec![(String::new(), self.notifier.queue_capacity().to_string())],
        );
        family(
            "prometheus_notifications_alertmanagers_discovered",
            "gauge",
            "The number of alertmanagers discovered and active.",
            vec![(
                String::new(),
                self.notifier.alertmanagers().len().to_string(),
            )],
        );
    }
}

fn fmt_f(v: f64) -> String {
    model::exposition::float_to_string(v)
}

async fn stop_entry(entry: &GroupEntry) {
    let _ = entry.stop.send(true);
    // The task ends at its next await point; an evaluation in progress finishes first.
    let mut waited = 0;
    while !entry.task.is_finished() && waited < 1200 {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        waited += 1;
    }
}

async fn run_group(
    group: Arc<Mutex<Group>>,
    status: Arc<RwLock<GroupStatus>>,
    deps: Arc<RwLock<EvalDeps>>,
    notifier: Notifier,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (interval, mut next) = {
        let g = group.lock().unwrap_or_else(|e| e.into_inner());
        (g.interval_ms, g.eval_timestamp(now_ms()) + g.interval_ms)
    };
    loop {
        let wait = (next - now_ms()).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_millis(wait)) => {}
            _ = stop.changed() => return,
        }
        let now = now_ms();
        if now - next >= interval {
            let missed = (now - next) / interval;
            let mut g = group.lock().unwrap_or_else(|e| e.into_inner());
            g.missed += missed as u64;
            status.write().unwrap_or_else(|e| e.into_inner()).missed = g.missed;
            next += missed * interval;
        }
        let d = deps.read().unwrap_or_else(|e| e.into_inner()).clone();
        let g = group.clone();
        let ts = next;
        let st = status.clone();
        let alerts = tokio::task::spawn_blocking(move || {
            let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
            let alerts = g.eval(ts, &d);
            *st.write().unwrap_or_else(|e| e.into_inner()) = group_status(&g);
            alerts
        })
        .await
        .unwrap_or_default();
        notifier.send(alerts);
        next += interval;
    }
}

/// One group as `/api/v1/rules` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub file: String,
    pub interval_seconds: f64,
    pub limit: u64,
    pub query_offset_seconds: f64,
    pub rules: Vec<RuleStatus>,
    pub evaluation_time: StdDuration,
    /// ms since the epoch, 0 = never.
    pub last_evaluation: i64,
    /// Rule evaluations, failed ones, and missed group iterations (for `/metrics`).
    pub evaluations: u64,
    pub failures: u64,
    pub missed: u64,
}

impl GroupStatus {
    /// `file;name`, the `rule_group` label of the rule metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

/// One rule as `/api/v1/rules` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    pub kind: RuleKindView,
    pub name: String,
    /// The expression in canonical form.
    pub query: String,
    /// `for` and `keep_firing_for` in seconds (alerting rules).
    pub duration_seconds: f64,
    pub keep_firing_for_seconds: f64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Pending and firing alerts, in label order.
    pub alerts: Vec<AlertStatus>,
    /// `inactive`, `pending` or `firing`: the highest state among the alerts.
    pub state: AlertState,
    pub health: Health,
    pub last_error: Option<String>,
    pub evaluation_time: StdDuration,
    pub last_evaluation: i64,
}

/// One alert as `/api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStatus {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// ms since the epoch.
    pub active_at: i64,
    /// ms since the epoch, 0 when not keeping firing.
    pub keep_firing_since: i64,
    pub value: f64,
}

fn group_status(g: &Group) -> GroupStatus {
    let rules = g
        .rules
        .iter()
        .map(|r| {
            let mut alerts: Vec<AlertStatus> = r
                .active
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .map(|a| AlertStatus {
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    state: a.state,
                    active_at: a.active_at,
                    keep_firing_since: a.keep_firing_since,
                    value: a.value,
                })
                .collect();
            alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
            let state = alerts
                .iter()
                .fold(AlertState::Inactive, |s, a| match (s, a.state) {
                    (AlertState::Firing, _) | (_, AlertState::Firing) => AlertState::Firing,
                    (AlertState::Pending, _) | (_, AlertState::Pending) => AlertState::Pending,
                    _ => AlertState::Inactive,
                });
            RuleStatus {
                kind: if r.is_alerting() {
                    RuleKindView::Alerting
                } else {
                    RuleKindView::Recording
                },
                name: r.name().to_owned(),
                query: r.expr.to_string(),
                duration_seconds: r.spec.for_.as_millis() as f64 / 1000.0,
                keep_firing_for_seconds: r.spec.keep_firing_for.as_millis() as f64 / 1000.0,
                labels: r.labels.clone(),
                annotations: r.spec.annotations.clone(),
                alerts,
                state,
                health: r.health,
                last_error: r.last_error.clone(),
                evaluation_time: r.evaluation_time,
                last_evaluation: r.last_evaluation,
            }
        })
        .collect();
    GroupStatus {
        name: g.name.clone(),
        file: g.file.display().to_string(),
        interval_seconds: g.interval_ms as f64 / 1000.0,
        limit: g.limit,
        query_offset_seconds: g.query_offset_ms as f64 / 1000.0,
        rules,
        evaluation_time: g.evaluation_time,
        last_evaluation: g.last_evaluation,
        evaluations: g.evaluations,
        failures: g.failures,
        missed: g.missed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::memory::MemStorage;

    fn config(dir: &std::path::Path, rules: &[(&str, &str)]) -> Config {
        for (name, text) in rules {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
        let text = format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}/*.yml\n",
            dir.display()
        );
        Config::from_str(&text, dir.join("prometheus.yml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reload_keeps_unchanged_groups_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(MemStorage::new());
        let m = RuleManager::new(RuleManagerOptions::new(
            Engine::default(),
            store.clone(),
            store.clone(),
        ));
        let a = "groups:\n- name: a\n  rules:\n  - record: one\n    expr: vector(1)\n";
        let b =
            "groups:\n- name: b\n  rules:\n  - alert: Always\n    expr: vector(1)\n    for: 1h\n";
        let cfg = config(dir.path(), &[("a.yml", a), ("b.yml", b)]);
        m.apply_config(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        // Wait for both groups to evaluate.
        for _ in 0..60 {
            let g = m.rule_groups().await;
            if g.iter().all(|g| g.last_evaluation != 0) {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        let before = m.rule_groups().await;
        assert_eq!(before.len(), 2);
        let alerts = m.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].state, AlertState::Pending);
        let active_at = alerts[0].active_at;
        let group_a = {
            let state = m.state.lock().await;
            state.groups.values().next().map(|e| Arc::as_ptr(&e.group))
        };

        // A broken file: nothing changes.
        std::fs::write(
            dir.path().join("c.yml"),
            "groups:\n- name: c\n  rules:\n  - record: x\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = m.apply_config(&cfg).await.err().unwrap_or_default();
        assert!(err.contains("c.yml") && err.contains("expr"), "{err}");
        assert_eq!(m.rule_groups().await.len(), 2);
        std::fs::remove_file(dir.path().join("c.yml")).unwrap_or_else(|e| panic!("{e}"));

        // Add a rule to b: a keeps running as is, b restarts with the alert's state.
        let b2 = "groups:\n- name: b\n  rules:\n  - alert: Always\n    expr: vector(1)\n    for: 1h\n  - record: two\n    expr: vector(2)\n";
        let cfg = config(dir.path(), &[("b.yml", b2)]);
        m.apply_config(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        let group_a_after = {
            let state = m.state.lock().await;
            state.groups.values().next().map(|e| Arc::as_ptr(&e.group))
        };
        assert_eq!(group_a, group_a_after, "unchanged group kept");
        let groups = m.rule_groups().await;
        assert_eq!(groups[1].rules.len(), 2);
        let alerts = m.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].active_at, active_at, "pending state carried over");

        // Remove a: its series get a staleness marker.
        std::fs::remove_file(dir.path().join("a.yml")).unwrap_or_else(|e| panic!("{e}"));
        m.apply_config(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.rule_groups().await.len(), 1);
        let r = Engine::default()
            .instant_query(store.as_ref(), "one", crate::group::now_ms())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.value, promql::engine::Value::Vector(Vec::new()));
        let mut text = String::new();
        m.render_metrics(&mut text).await;
        assert!(
            text.contains("prometheus_rule_group_rules{rule_group="),
            "{text}"
        );
        m.stop().await;
    }
}
