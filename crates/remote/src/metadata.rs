//! Metric metadata in remote write: the type numbers both protocol versions use, the link
//! between a series name and its metric family, where the sender gets metadata from, and the
//! periodic metadata sender of remote write 1.0 queues.
//!
//! Remote write 1.0 sends metadata on its own (Prometheus' metadata watcher): every
//! `metadata_config.send_interval` the queue asks its [`MetadataSource`] (the scrape manager's
//! targets) for every family's metadata and sends it in `WriteRequest.metadata`, at most
//! `metadata_config.max_samples_per_send` entries per request, retrying recoverable failures
//! with backoff until the next round is due. Identical entries of several targets are sent
//! once. Remote write 2.0 carries metadata on each series instead: the queue keeps a
//! [`MetadataIndex`] snapshot (refreshed on the same interval, at most every 10 s) and looks
//! each series up by its target (`job` and `instance`) and name, falling back to the first
//! target that has the series' family.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use model::exposition::{MetricMetadata, MetricType};
use model::labels::Labels;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::metrics::QueueMetrics;
use crate::proto;
use crate::sender::{Transport, Verdict, classify};

/// A boxed future of the current metadata.
pub type MetadataFuture<'a> = Pin<Box<dyn Future<Output = Vec<TargetMetadata>> + Send + 'a>>;

/// Where remote write gets metric metadata: every active target's families.
pub trait MetadataSource: Send + Sync + 'static {
    fn metadata(&self) -> MetadataFuture<'_>;
}

/// The metadata of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMetadata {
    /// The target's labels (`job`, `instance`, ...).
    pub target: Labels,
    pub metadata: Vec<MetricMetadata>,
}

/// What identifies the target a series came from: its `job` and `instance`.
pub fn target_key(labels: &Labels) -> u64 {
    labels.hash_for(&["instance", "job"])
}

impl std::fmt::Debug for dyn MetadataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataSource")
    }
}

/// The `MetricType` number of `prometheus.MetricMetadata` and of remote write 2.0's
/// `Metadata` (0 is "unknown"/"unspecified" in both).
pub fn metric_type_to_proto(kind: MetricType) -> i32 {
    match kind {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

/// The inverse of [`metric_type_to_proto`]; `None` for numbers outside the enum.
pub fn metric_type_from_proto(n: i32) -> Option<MetricType> {
    Some(match n {
        0 => MetricType::Unknown,
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => return None,
    })
}

/// The suffixes a series of a family of type `kind` may add to the family name.
fn suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        MetricType::Counter => &["_total"],
        MetricType::Histogram => &["_bucket", "_sum", "_count"],
        MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
        MetricType::Summary => &["_sum", "_count"],
        MetricType::Info => &["_info"],
        _ => &[],
    }
}

/// Whether series `name` belongs to family `family` of type `kind` (Prometheus'
/// `isSeriesPartOfFamily`): equal names once the type's suffix is cut from the series name
/// (and, for counters and infos, from the family name too, which the text format writes
/// with it).
pub fn is_series_of_family(name: &str, family: &str, kind: MetricType) -> bool {
    if !name.starts_with(family) {
        return false;
    }
    let family = match kind {
        MetricType::Counter => family.strip_suffix("_total").unwrap_or(family),
        MetricType::Info => family.strip_suffix("_info").unwrap_or(family),
        _ => family,
    };
    let stem = suffixes(kind)
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    stem == family
}

/// The family name of series `name` whose metadata says `kind` (a remote write 2.0 series
/// carries no family name): the name without the type's suffix.
pub fn family_of(name: &str, kind: MetricType) -> &str {
    suffixes(kind)
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

type Families = HashMap<String, MetricMetadata>;

/// Metadata by target and family name, for looking series up.
#[derive(Debug, Default)]
pub struct MetadataIndex {
    by_target: HashMap<u64, Families>,
    /// The first target's entry of each family (sources list targets in a stable order).
    by_family: Families,
}

impl MetadataIndex {
    pub fn new(targets: Vec<TargetMetadata>) -> MetadataIndex {
        let mut index = MetadataIndex::default();
        for t in targets {
            let families = index.by_target.entry(target_key(&t.target)).or_default();
            for m in t.metadata {
                index
                    .by_family
                    .entry(m.family.clone())
                    .or_insert_with(|| m.clone());
                families.entry(m.family.clone()).or_insert(m);
            }
        }
        index
    }

    pub fn is_empty(&self) -> bool {
        self.by_family.is_empty()
    }

    fn lookup<'a>(families: &'a Families, name: &str) -> Option<&'a MetricMetadata> {
        let candidates = std::iter::once(name).chain(
            [
                "_total", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info",
            ]
            .iter()
            .filter_map(|s| name.strip_suffix(s)),
        );
        candidates
            .filter_map(|f| families.get(f))
            .find(|m| is_series_of_family(name, &m.family, m.kind))
    }

    /// The metadata of the family series `name` of target `target` (see [`target_key`])
    /// belongs to; another target's when that target has none.
    pub fn for_series(&self, target: u64, name: &str) -> Option<&MetricMetadata> {
        self.by_target
            .get(&target)
            .and_then(|f| Self::lookup(f, name))
            .or_else(|| Self::lookup(&self.by_family, name))
    }
}

/// Distinct entries in first-seen order.
fn distinct(all: Vec<MetricMetadata>) -> Vec<MetricMetadata> {
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    all.into_iter().filter(|m| seen.insert(m.clone())).collect()
}

/// The snappy-compressed `WriteRequest` carrying only `metadata`.
pub fn encode_metadata_request(metadata: &[MetricMetadata]) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: Vec::new(),
        metadata: metadata
            .iter()
            .map(|m| proto::MetricMetadata {
                r#type: metric_type_to_proto(m.kind),
                metric_family_name: m.family.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// Settings of a queue's metadata sending (`metadata_config` and the queue's backoff).
#[derive(Debug, Clone)]
pub struct MetadataSettings {
    pub interval: Duration,
    pub max_per_send: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
}

/// Sends one request of metadata until it is acknowledged, refused, or `give_up` passes;
/// true when acknowledged.
async fn send_with_backoff(
    transport: &dyn Transport,
    metrics: &QueueMetrics,
    chunk: &[MetricMetadata],
    s: &MetadataSettings,
    give_up: Instant,
    cancel: &CancellationToken,
) -> bool {
    let body = encode_metadata_request(chunk);
    let n = chunk.len() as u64;
    let mut backoff = s.min_backoff;
    loop {
        let result = tokio::select! {
            r = transport.send(body.clone()) => r,
            _ = cancel.cancelled() => return false,
        };
        match classify(&result, s.retry_on_http_429) {
            Verdict::Done => {
                metrics.metadata_sent.fetch_add(n, Ordering::Relaxed);
                metrics
                    .metadata_bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                return true;
            }
            Verdict::Refused => {
                let err = match &result {
                    Ok(r) => format!("HTTP {}: {}", r.status, r.message),
                    Err(e) => e.clone(),
                };
                tracing::error!(remote_name = %metrics.remote_name, url = %metrics.url, count = n, err = %err, "non-recoverable error while sending metadata");
                return false;
            }
            Verdict::Retry(after) => {
                metrics.metadata_retried.fetch_add(n, Ordering::Relaxed);
                let wait = after.unwrap_or(backoff).min(s.max_backoff.max(backoff));
                if Instant::now() + wait >= give_up {
                    let err = match &result {
                        Ok(r) => format!("HTTP {}: {}", r.status, r.message),
                        Err(e) => e.clone(),
                    };
                    tracing::warn!(remote_name = %metrics.remote_name, url = %metrics.url, count = n, err = %err, "sending metadata failed until the next round was due; giving up on this round");
                    return false;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return false,
                }
                backoff = (backoff * 2).min(s.max_backoff);
            }
        }
    }
}

/// One round: everything the source knows, in requests of at most `max_per_send`.
pub async fn send_round(
    source: &dyn MetadataSource,
    transport: &dyn Transport,
    metrics: &QueueMetrics,
    s: &MetadataSettings,
    cancel: &CancellationToken,
) {
    let all = distinct(
        source
            .metadata()
            .await
            .into_iter()
            .flat_map(|t| t.metadata)
            .collect(),
    );
    let give_up = Instant::now() + s.interval;
    for chunk in all.chunks(s.max_per_send.max(1)) {
        if !send_with_backoff(transport, metrics, chunk, s, give_up, cancel).await {
            if cancel.is_cancelled() {
                return;
            }
            metrics
                .metadata_failed
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
}

/// The metadata loop of a remote write 1.0 queue: a round every `interval` (the first one
/// interval after the start, as Prometheus' watcher), until `cancel`.
pub async fn run_sender(
    source: Arc<dyn MetadataSource>,
    transport: Arc<dyn Transport>,
    metrics: Arc<QueueMetrics>,
    s: MetadataSettings,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        send_round(source.as_ref(), transport.as_ref(), &metrics, &s, &cancel).await;
    }
}

/// The rw 2.0 queue's copy of the metadata, refreshed every `interval` until `cancel`.
pub async fn run_index_refresh(
    source: Arc<dyn MetadataSource>,
    index: Arc<std::sync::RwLock<Arc<MetadataIndex>>>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let fresh = Arc::new(MetadataIndex::new(source.metadata().await));
        *index.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(family: &str, kind: MetricType) -> MetricMetadata {
        MetricMetadata {
            family: family.into(),
            kind,
            help: format!("{family} help"),
            unit: String::new(),
        }
    }

    #[test]
    fn series_belong_to_families_as_in_prometheus() {
        use MetricType::*;
        assert!(is_series_of_family("foo_total", "foo", Counter));
        assert!(is_series_of_family("foo_total", "foo_total", Counter));
        assert!(is_series_of_family("foo", "foo", Counter));
        assert!(!is_series_of_family("foo_created", "foo", Counter));
        assert!(is_series_of_family("lat_bucket", "lat", Histogram));
        assert!(is_series_of_family("lat_count", "lat", Histogram));
        assert!(!is_series_of_family("lat_gsum", "lat", Histogram));
        assert!(is_series_of_family("lat_gsum", "lat", GaugeHistogram));
        assert!(is_series_of_family("q_sum", "q", Summary));
        assert!(!is_series_of_family("q_bucket", "q", Summary));
        assert!(is_series_of_family("build_info", "build", Info));
        assert!(is_series_of_family("build_info", "build_info", Info));
        assert!(is_series_of_family("temp", "temp", Gauge));
        assert!(!is_series_of_family("temp_total", "temp", Gauge));
        assert!(!is_series_of_family("other", "foo", Counter));
        assert_eq!(family_of("foo_total", Counter), "foo");
        assert_eq!(family_of("lat_bucket", Histogram), "lat");
        assert_eq!(family_of("temp", Gauge), "temp");
        assert_eq!(family_of("x_total", Gauge), "x_total");
    }

    #[test]
    fn index_lookup() {
        let target = |job: &str| Labels::from_pairs([("job", job), ("instance", "h:1")]).unwrap();
        let idx = MetadataIndex::new(vec![
            TargetMetadata {
                target: target("a"),
                metadata: vec![
                    m("foo", MetricType::Counter),
                    m("lat", MetricType::Histogram),
                    m("temp", MetricType::Gauge),
                    m("bar_total", MetricType::Counter),
                ],
            },
            TargetMetadata {
                target: target("b"),
                metadata: vec![MetricMetadata {
                    help: "b's".into(),
                    ..m("foo", MetricType::Counter)
                }],
            },
        ]);
        let (a, b) = (target_key(&target("a")), target_key(&target("b")));
        let series_a =
            Labels::from_pairs([("__name__", "x"), ("job", "a"), ("instance", "h:1")]).unwrap();
        assert_eq!(
            target_key(&series_a),
            a,
            "series and target agree on the key"
        );
        let family = |n: &str| idx.for_series(a, n).map(|m| m.family.as_str());
        assert_eq!(family("foo_total"), Some("foo"));
        assert_eq!(
            idx.for_series(a, "foo_total").map(|m| m.kind),
            Some(MetricType::Counter)
        );
        // Each target's own metadata; another target's when it has none.
        assert_eq!(
            idx.for_series(b, "foo_total").map(|m| m.help.as_str()),
            Some("b's")
        );
        assert_eq!(
            idx.for_series(a, "foo_total").map(|m| m.help.as_str()),
            Some("foo help")
        );
        assert_eq!(
            idx.for_series(b, "temp").map(|m| m.kind),
            Some(MetricType::Gauge)
        );
        assert_eq!(family("lat_bucket"), Some("lat"));
        assert_eq!(family("lat_sum"), Some("lat"));
        assert_eq!(family("temp"), Some("temp"));
        assert_eq!(family("temp_sum"), None);
        assert_eq!(family("bar_total"), Some("bar_total"));
        assert_eq!(family("nothing"), None);
    }

    #[test]
    fn type_numbers_round_trip() {
        for n in 0..8 {
            let t = metric_type_from_proto(n).unwrap();
            assert_eq!(metric_type_to_proto(t), n);
        }
        assert_eq!(metric_type_from_proto(8), None);
        assert_eq!(metric_type_from_proto(-1), None);
    }

    #[test]
    fn metadata_requests_decode_with_prost() {
        let body = encode_metadata_request(&[m("foo", MetricType::Counter)]);
        let req = crate::decode_write_request(&body, 1 << 20).unwrap();
        assert!(req.timeseries.is_empty());
        assert_eq!(req.metadata.len(), 1);
        assert_eq!(req.metadata[0].metric_family_name, "foo");
        assert_eq!(req.metadata[0].r#type, 1);
        assert_eq!(req.metadata[0].help, "foo help");
        let dup = distinct(vec![
            m("a", MetricType::Gauge),
            m("a", MetricType::Gauge),
            m("a", MetricType::Counter),
        ]);
        assert_eq!(dup.len(), 2);
    }
}
