//! The Alertmanager client: alerts get the external labels and `alert_relabel_configs`,
//! wait in a bounded queue, and are POSTed in batches to `/api/v2/alerts` of every
//! configured Alertmanager (per-Alertmanager `alert_relabel_configs`, scheme, path prefix,
//! timeout, HTTP client settings and `sigv4` request signing), as Prometheus' notifier does.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use config::{AlertingConfig, NameValidationScheme};
use httpclient::HttpClient;
use model::labels::Labels;

/// Most alerts kept waiting (`--alertmanager.notification-queue-capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Most alerts per request (Prometheus' `maxBatchSize`).
pub const MAX_BATCH_SIZE: usize = 256;

/// One alert as sent to Alertmanager. Times are ms since the epoch; 0 is unset.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

impl NotifierAlert {
    fn to_json(&self) -> serde_json::Value {
        let labels: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|l| (l.name.as_str().to_owned(), l.value.as_str().into()))
            .collect();
        let mut o = serde_json::Map::new();
        o.insert("labels".into(), labels.into());
        o.insert(
            "annotations".into(),
            serde_json::to_value(&self.annotations).unwrap_or_default(),
        );
        if self.starts_at != 0 {
            o.insert("startsAt".into(), rfc3339(self.starts_at).into());
        }
        if self.ends_at != 0 {
            o.insert("endsAt".into(), rfc3339(self.ends_at).into());
        }
        o.insert("generatorURL".into(), self.generator_url.clone().into());
        o.into()
    }
}

fn rfc3339(ms: i64) -> String {
    model::time::Utc::from_unix_ms(ms).rfc3339_millis()
}

/// Counters of the notifier (Prometheus' `prometheus_notifications_*`).
#[derive(Debug, Default)]
pub struct NotifierMetrics {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
}

/// One Alertmanager endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
}

struct AlertmanagerSet {
    client: HttpClient,
    timeout: StdDuration,
    relabel: Vec<relabel::Rule>,
    endpoints: Vec<Endpoint>,
}

struct State {
    external_labels: Labels,
    relabel: Vec<relabel::Rule>,
    sets: Vec<Arc<AlertmanagerSet>>,
}

struct Inner {
    queue: Mutex<VecDeque<NotifierAlert>>,
    capacity: usize,
    state: Mutex<State>,
    more: tokio::sync::Notify,
    metrics: NotifierMetrics,
}

/// The Alertmanager client. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new(DEFAULT_QUEUE_CAPACITY)
    }
}

impl Notifier {
    pub fn new(capacity: usize) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                state: Mutex::new(State {
                    external_labels: Labels::empty(),
                    relabel: Vec::new(),
                    sets: Vec::new(),
                }),
                more: tokio::sync::Notify::new(),
                metrics: NotifierMetrics::default(),
            }),
        }
    }

    /// Applies the `alerting` section and the external labels. On error nothing changes.
    pub fn apply_config(
        &self,
        alerting: &AlertingConfig,
        external_labels: &BTreeMap<String, String>,
        scheme: NameValidationScheme,
    ) -> Result<(), String> {
        let relabel = relabel::compile(&alerting.alert_relabel_configs, scheme)
            .map_err(|e| format!("alert_relabel_configs: {e}"))?;
        let mut sets = Vec::new();
        for (i, am) in alerting.alertmanagers.iter().enumerate() {
            let user_agent = user_agent();
            let client = HttpClient::builder(&am.http_client, &user_agent)
                .sigv4(am.sigv4.as_ref())
                .build()
                .map_err(|e| format!("alertmanagers[{i}]: {e}"))?;
            let relabel = relabel::compile(&am.alert_relabel_configs, scheme)
                .map_err(|e| format!("alertmanagers[{i}].alert_relabel_configs: {e}"))?;
            let target_relabel = relabel::compile(&am.relabel_configs, scheme)
                .map_err(|e| format!("alertmanagers[{i}].relabel_configs: {e}"))?;
            let alerts_path = format!("{}/api/v2/alerts", am.path_prefix.trim_end_matches('/'));
            let mut endpoints = Vec::new();
            for sc in &am.static_configs {
                for target in &sc.targets {
                    let mut b = Labels::empty().builder();
                    for (k, v) in &sc.labels {
                        b.set(k.as_str(), v.as_str());
                    }
                    b.set("__address__", target.as_str());
                    b.set("__scheme__", am.scheme.as_str());
                    b.set("__alerts_path__", alerts_path.as_str());
                    if !relabel::process_builder(&mut b, &target_relabel) {
                        continue;
                    }
                    let labels = b.build();
                    let (Some(address), Some(scheme_name)) =
                        (labels.get("__address__"), labels.get("__scheme__"))
                    else {
                        continue;
                    };
                    let path = labels.get("__alerts_path__").unwrap_or("/api/v2/alerts");
                    endpoints.push(Endpoint {
                        url: format!("{scheme_name}://{address}{path}"),
                    });
                }
            }
            sets.push(Arc::new(AlertmanagerSet {
                client,
                timeout: am.timeout.as_std(),
                relabel,
                endpoints,
            }));
        }
        let external_labels = Labels::from_pairs(
            external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| e.to_string())?;
        let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = State {
            external_labels,
            relabel,
            sets,
        };
        Ok(())
    }

    /// The Alertmanager URLs alerts go to (for `/api/v1/alertmanagers`).
    pub fn alertmanagers(&self) -> Vec<String> {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .sets
            .iter()
            .flat_map(|s| s.endpoints.iter().map(|e| e.url.clone()))
            .collect()
    }

    pub fn metrics(&self) -> &NotifierMetrics {
        &self.inner.metrics
    }

    pub fn queue_length(&self) -> usize {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn queue_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Queues `alerts` after adding the external labels and applying `alert_relabel_configs`;
    /// the oldest alerts are dropped when the queue is full.
    pub fn send(&self, alerts: Vec<NotifierAlert>) {
        if alerts.is_empty() {
            return;
        }
        let relabeled: Vec<NotifierAlert> = {
            let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            alerts
                .into_iter()
                .filter_map(|mut a| {
                    let mut b = a.labels.builder();
                    for l in state.external_labels.iter() {
                        if b.get(l.name.as_str()).is_none() {
                            b.set(l.name.clone(), l.value.clone());
                        }
                    }
                    if !relabel::process_builder(&mut b, &state.relabel) {
                        return None;
                    }
                    a.labels = b.build();
                    (!a.labels.is_empty()).then_some(a)
                })
                .collect()
        };
        let mut queue = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.extend(relabeled);
        let excess = queue.len().saturating_sub(self.inner.capacity);
        if excess > 0 {
            queue.drain(..excess);
            self.inner
                .metrics
                .dropped
                .fetch_add(excess as u64, Ordering::Relaxed);
        }
        drop(queue);
        self.inner.more.notify_one();
    }

    /// Sends queued alerts until `stop` fires; then a last flush of what is queued.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            self.flush().await;
            tokio::select! {
                _ = self.inner.more.notified() => {}
                _ = stop.changed() => {
                    self.flush().await;
                    return;
                }
            }
        }
    }

    /// Sends everything queued now, in batches.
    pub async fn flush(&self) {
        loop {
            let batch: Vec<NotifierAlert> = {
                let mut queue = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = queue.len().min(MAX_BATCH_SIZE);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            self.send_batch(&batch).await;
        }
    }

    async fn send_batch(&self, batch: &[NotifierAlert]) {
        let sets: Vec<Arc<AlertmanagerSet>> = {
            let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.sets.clone()
        };
        let mut requests = Vec::new();
        for set in sets {
            let alerts: Vec<serde_json::Value> = batch
                .iter()
                .filter_map(|a| {
                    let labels = relabel::process(&a.labels, &set.relabel)?;
                    let mut a = a.clone();
                    a.labels = labels;
                    Some(a.to_json())
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let body = serde_json::Value::Array(alerts).to_string();
            let count = batch.len() as u64;
            for endpoint in set.endpoints.clone() {
                let set = set.clone();
                let body = body.clone();
                let inner = self.inner.clone();
                requests.push(tokio::spawn(async move {
                    match post(&set, &endpoint.url, body).await {
                        Ok(()) => {
                            inner.metrics.sent.fetch_add(count, Ordering::Relaxed);
                        }
                        Err(e) => {
                            inner.metrics.errors.fetch_add(count, Ordering::Relaxed);
                            tracing::error!(alertmanager = %endpoint.url, count, err = %e, "Error sending alerts");
                        }
                    }
                }));
            }
        }
        for r in requests {
            let _ = r.await;
        }
    }
}

async fn post(set: &AlertmanagerSet, url: &str, body: String) -> Result<(), String> {
    let request = set
        .client
        .request(reqwest::Method::POST, url)?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(set.timeout)
        .body(body);
    let response = request
        .send()
        .await
        .map_err(|e| httpclient::error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("bad response status {status}"));
    }
    Ok(())
}

fn user_agent() -> String {
    format!("Meridian/{}", env!("CARGO_PKG_VERSION"))
}

/// Prometheus' link to an expression in the table view: `/graph?g0.expr=…&g0.tab=1`.
pub fn table_link_for_expression(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_and_escape() {
        let a = NotifierAlert {
            labels: Labels::from_static(&[("alertname", "X"), ("job", "j")]),
            annotations: BTreeMap::from([("summary".to_owned(), "s".to_owned())]),
            starts_at: 1_000,
            ends_at: 0,
            generator_url: table_link_for_expression("up == 0"),
        };
        let j = a.to_json().to_string();
        assert_eq!(
            j,
            r#"{"annotations":{"summary":"s"},"generatorURL":"/graph?g0.expr=up+%3D%3D+0&g0.tab=1","labels":{"alertname":"X","job":"j"},"startsAt":"1970-01-01T00:00:01.000Z"}"#
        );
    }

    #[test]
    fn alertmanager_urls_follow_relabeling() {
        let text = "alerting:\n  alertmanagers:\n  - path_prefix: /am/\n    static_configs:\n    - targets: ['a:9093', 'b:9093']\n    relabel_configs:\n    - source_labels: [__address__]\n      regex: 'b:.*'\n      action: drop\n";
        let cfg = config::Config::from_str(text, "p.yml").unwrap_or_else(|e| panic!("{e}"));
        let n = Notifier::new(10);
        n.apply_config(
            &cfg.alerting,
            &BTreeMap::new(),
            NameValidationScheme::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.alertmanagers(),
            vec!["http://a:9093/am/api/v2/alerts".to_owned()]
        );
    }

    #[test]
    fn external_labels_and_relabel() {
        let n = Notifier::new(2);
        let alerting = AlertingConfig::default();
        let ext = BTreeMap::from([("cluster".to_owned(), "eu".to_owned())]);
        assert!(
            n.apply_config(&alerting, &ext, NameValidationScheme::default())
                .is_ok()
        );
        let mk = |name: &str| NotifierAlert {
            labels: Labels::from_static(&[("alertname", name)]),
            annotations: BTreeMap::new(),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
        };
        n.send(vec![mk("a"), mk("b"), mk("c")]);
        assert_eq!(n.queue_length(), 2);
        assert_eq!(n.metrics().dropped.load(Ordering::Relaxed), 1);
        let q = n.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(q[0].labels.get("cluster"), Some("eu"));
        assert_eq!(q[0].labels.get("alertname"), Some("b"));
    }
}
