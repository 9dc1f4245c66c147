//! Interoperability: recording rules evaluated by the rule manager over an in-memory store
//! produce the series the real Prometheus (Debian's 2.42) produces from the same rule file and
//! the same data (sent to it by remote write); alerts reach the real Alertmanager (Debian's
//! `prometheus-alertmanager`) with their labels and annotations, and resolve. Both tests fail
//! when the programs are missing. Servers bind 127.0.0.1 on picked ports and are killed by
//! PID when the test ends.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::labels::Labels;
use serde_json::Value;
use storage::memory::MemStorage;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, Vec::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 4 + size).min(b.len())..];
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // Killed by its own PID only.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http(addr, "GET", "/-/ready", &[], b"").0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr} did not become ready");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const RECORDING_RULES: &str = r#"groups:
- name: recording
  interval: 1s
  rules:
  - record: job:temperature:sum
    expr: sum by (job) (temperature)
  - record: job:temperature:max
    expr: max by (job) (temperature)
    labels:
      source: rules
  - record: job:temperature:sum_doubled
    expr: job:temperature:sum * 2
  - record: temperature:hot
    expr: temperature > 21
  - record: instance:temperature:relabeled
    expr: label_replace(temperature, "host", "$1", "instance", "h(.*)")
    labels:
      env: prod
  - record: dup:temperature
    expr: temperature
    labels:
      job: overridden
  - record: scalar:one
    expr: vector(1)
  - record: fading:copy
    expr: fading
  - record: count:temperature
    expr: count(temperature)
- name: second
  interval: 2s
  rules:
  - alert: Hot
    expr: temperature > 21
    labels:
      severity: '{{ if gt $value 21.5 }}page{{ else }}ticket{{ end }}'
  - record: job:temperature:avg
    expr: avg by (job) (temperature)
"#;

/// How long after the start the `fading` series stays visible.
const FADE_MS: i64 = 25_000;

/// Labels and samples of one series.
type SeriesData = (Vec<(&'static str, String)>, Vec<(i64, f64)>);

/// The same samples for both stores: `temperature` of 2 jobs × 3 instances, every 10 s
/// over the last 2 minutes.
fn samples(now: i64) -> Vec<SeriesData> {
    let mut out = Vec::new();
    for job in ["api", "db"] {
        for i in 0..3i64 {
            let labels = vec![
                ("__name__", "temperature".to_owned()),
                ("job", job.to_owned()),
                ("instance", format!("h{i}")),
            ];
            let points = (0..12)
                .map(|k| {
                    (
                        now - 120_000 + k * 10_000,
                        19.0 + ((k * 7 + i * 13) % 11) as f64 * 0.25 + i as f64,
                    )
                })
                .collect();
            out.push((labels, points));
        }
    }
    // Visible for FADE_MS more (then out of the 5m lookback): its rule output must then
    // go stale at once, in both.
    out.push((
        vec![("__name__", "fading".to_owned()), ("job", "x".to_owned())],
        vec![(now - 300_000 + FADE_MS, 7.0)],
    ));
    out
}

fn remote_write(addr: SocketAddr, data: &[SeriesData]) {
    use remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    let timeseries = data
        .iter()
        .map(|(labels, points)| TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: (*n).to_owned(),
                    value: v.clone(),
                })
                .collect(),
            samples: points
                .iter()
                .map(|(t, v)| Sample {
                    value: *v,
                    timestamp: *t,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let body = remote::encode_write_request(&WriteRequest {
        timeseries,
        metadata: vec![],
    });
    let (code, resp) = http(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    );
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&resp));
}

fn mem_store(data: &[SeriesData]) -> Arc<MemStorage> {
    let store = Arc::new(MemStorage::new());
    for (labels, points) in data {
        let labels = Labels::from_pairs(labels.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
        store.insert_samples(
            &labels,
            points.iter().map(|(t, v)| (*t, storage::Value::Float(*v))),
        );
    }
    store
}

const RULE_SERIES: &str =
    r#"{__name__=~"job:.+|temperature:hot|instance:.+|scalar:one|count:.+|fading:.+|ALERTS"}"#;

fn query_prometheus(addr: SocketAddr, q: &str, t: i64) -> BTreeSet<String> {
    let mut path = String::from("/api/v1/query?query=");
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push_str(&format!("&time={}", t as f64 / 1000.0));
    let (code, body) = http(addr, "GET", &path, &[], b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["metric"], s["value"][1].as_str().unwrap_or("")))
        .collect()
}

fn query_ours(store: &MemStorage, q: &str, t: i64) -> BTreeSet<String> {
    let r = promql::engine::Engine::default()
        .instant_query(store, q, t)
        .unwrap();
    let promql::engine::Value::Vector(v) = r.value else {
        panic!("not a vector")
    };
    v.into_iter()
        .map(|s| {
            let metric: serde_json::Map<String, Value> = s
                .labels
                .iter()
                .map(|l| (l.name.as_str().to_owned(), Value::from(l.value.as_str())))
                .collect();
            let storage::Value::Float(f) = s.value else {
                panic!("histogram")
            };
            format!(
                "{} {}",
                Value::Object(metric),
                model::exposition::float_to_string(f)
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_match_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, RECORDING_RULES).unwrap();
    let config_text = format!(
        "global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\nrule_files:\n  - {}\n",
        rules_path.display()
    );
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, &config_text).unwrap();

    let now = now_ms();
    let data = samples(now);
    let addr = free_addr();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom-data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the real Prometheus must be installed (Debian package prometheus)");
    let _prom = Proc(child);
    wait_ready(addr);
    remote_write(addr, &data);

    let store = mem_store(&data);
    let opts = rules::RuleManagerOptions::new(
        promql::engine::Engine::default(),
        store.clone(),
        store.clone(),
    );
    let manager = rules::RuleManager::new(opts);
    let cfg = config::Config::from_str(&config_text, &cfg_path).unwrap();
    manager.apply_config(&cfg).await.unwrap();

    // Both evaluate every 1-2 s over static data: after a few seconds the latest results
    // no longer change.
    let mut last = (BTreeSet::new(), BTreeSet::new());
    let mut phase = 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = now_ms();
        let theirs = query_prometheus(addr, RULE_SERIES, t);
        let ours = query_ours(&store, RULE_SERIES, t);
        let fading = theirs.iter().any(|s| s.contains("fading:copy"));
        if phase == 1 && theirs == ours && theirs.len() == 21 && fading {
            eprintln!(
                "recording rules: {} series equal to Prometheus'",
                ours.len()
            );
            let groups = manager.rule_groups().await;
            assert_eq!(groups.len(), 2);
            for r in groups.iter().flat_map(|g| g.rules.iter()) {
                if r.name == "dup:temperature" {
                    // Both fail it: two series end up with one label set.
                    assert_eq!(r.health, rules::Health::Err);
                    assert_eq!(
                        r.last_error.as_deref(),
                        Some(
                            "vector contains metrics with the same labelset after applying rule labels"
                        )
                    );
                    assert!(query_prometheus(addr, "dup:temperature", t).is_empty());
                } else {
                    assert_eq!(r.health, rules::Health::Ok, "{}", r.name);
                }
            }
            let json = rules::api::rules_json(&groups, None, false);
            assert_eq!(json["groups"][0]["rules"][0]["type"], "recording");
            phase = 2;
        } else if phase == 2 && t > now + FADE_MS + 2_000 && theirs == ours && !fading {
            // Gone within seconds, not after the 5m lookback: a staleness marker.
            assert_eq!(ours.len(), 20);
            assert!(stale_marker_written(&store, "fading:copy"));
            eprintln!("recording rules: staleness of a vanished series agrees");
            manager.stop().await;
            return;
        }
        last = (theirs, ours);
    }
    manager.stop().await;
    panic!(
        "results differ (phase {phase}):\nprometheus: {:#?}\nours: {:#?}",
        last.0, last.1
    );
}

fn stale_marker_written(store: &MemStorage, name: &str) -> bool {
    use storage::Queryable;
    let q = store.querier(0, i64::MAX).unwrap();
    let m = model::matcher::Matcher::new(model::matcher::MatchOp::Equal, "__name__", name).unwrap();
    let mut stale = false;
    for s in q.select(false, None, &[m]).unwrap() {
        let mut s = s.unwrap();
        while s.samples.next().is_some() {
            stale |= model::sample::is_stale_nan(s.samples.at().1);
        }
    }
    stale
}

const AM_CONFIG: &str =
    "route:\n  receiver: none\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n- name: none\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_real_alertmanager_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let am_cfg = dir.path().join("alertmanager.yml");
    std::fs::write(&am_cfg, AM_CONFIG).unwrap();
    let am = free_addr();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address={am}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Alertmanager must be installed (apt-get install -y prometheus-alertmanager)");
    let _am = Proc(child);
    wait_ready(am);

    let rules_path = dir.path().join("alerts.yml");
    std::fs::write(
        &rules_path,
        "groups:\n- name: alerts\n  interval: 1s\n  rules:\n  - alert: HighTemperature\n    expr: temperature > 30\n    labels:\n      severity: page\n      room: '{{ $labels.instance }}'\n    annotations:\n      summary: 'Temperature in {{ $labels.instance }} is {{ printf \"%.1f\" $value }} ({{ humanize $value }})'\n      cluster: '{{ $externalLabels.cluster }}'\n",
    )
    .unwrap();
    let config_text = format!(
        "global:\n  external_labels:\n    cluster: eu1\nrule_files:\n  - {}\nalerting:\n  alert_relabel_configs:\n  - source_labels: [severity]\n    target_label: paged\n    regex: page\n    replacement: 'yes'\n  alertmanagers:\n  - static_configs:\n    - targets: ['{am}']\n    timeout: 5s\n",
        rules_path.display()
    );
    let cfg_path = dir.path().join("prometheus.yml");
    let cfg = config::Config::from_str(&config_text, &cfg_path).unwrap();

    let store = Arc::new(MemStorage::new());
    let hot = Labels::from_static(&[("__name__", "temperature"), ("instance", "kitchen")]);
    let cold = Labels::from_static(&[("__name__", "temperature"), ("instance", "cellar")]);
    let now = now_ms();
    store.insert_samples(&hot, [(now - 1000, storage::Value::Float(35.25))]);
    store.insert_samples(&cold, [(now - 1000, storage::Value::Float(12.0))]);
    let mut opts = rules::RuleManagerOptions::new(
        promql::engine::Engine::default(),
        store.clone(),
        store.clone(),
    );
    opts.external_url = "http://meridian.example:9090".into();
    let manager = rules::RuleManager::new(opts);
    manager.apply_config(&cfg).await.unwrap();

    let get_alerts = || -> Vec<Value> {
        let (code, body) = http(am, "GET", "/api/v2/alerts", &[], b"");
        if code != 200 {
            return Vec::new();
        }
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.is_empty() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen = get_alerts();
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    let a = &seen[0];
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "HighTemperature");
    assert_eq!(labels["instance"], "kitchen");
    assert_eq!(labels["room"], "kitchen");
    assert_eq!(labels["severity"], "page");
    assert_eq!(labels["cluster"], "eu1", "external labels are added");
    assert_eq!(labels["paged"], "yes", "alert_relabel_configs apply");
    assert!(labels.get("__name__").is_none());
    assert_eq!(
        a["annotations"]["summary"],
        "Temperature in kitchen is 35.2 (35.25)"
    );
    assert_eq!(a["annotations"]["cluster"], "eu1");
    assert_eq!(a["status"]["state"], "active");
    let gen_url = a["generatorURL"].as_str().unwrap_or("");
    assert!(
        gen_url.starts_with("http://meridian.example:9090/graph?g0.expr=temperature+%3E+30"),
        "{gen_url}"
    );

    // Our API view agrees.
    let alerts = manager.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, rules::AlertState::Firing);
    let json = rules::api::alerts_json(&alerts);
    assert_eq!(json["alerts"][0]["value"], "3.525e+01");

    // Cool the kitchen: the alert resolves and Alertmanager drops it from the active list.
    store.insert_samples(&hot, [(now_ms(), storage::Value::Float(20.0))]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut remaining = seen;
    while Instant::now() < deadline && !remaining.is_empty() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        remaining = get_alerts();
    }
    assert!(remaining.is_empty(), "still active: {remaining:?}");
    assert!(manager.alerts().await.is_empty());
    let sent = manager
        .notifier()
        .metrics()
        .sent
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent >= 2, "firing and resolved notifications: {sent}");
    assert_eq!(
        manager
            .notifier()
            .metrics()
            .errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    manager.stop().await;
}
