//! All remote-write queues of the server: started from the configuration after the TSDB is
//! open, changed on reload (unchanged queues keep running; changed ones stop and restart from
//! their saved position; removed ones stop and forget their position), stopped at shutdown,
//! and exported as metrics.
//!
//! A queue's identity, and so its directory `<data>/remote/<queue-id>`, is its `name` and
//! `url`: editing other settings (batching, relabeling) keeps its position.
//!
//! Metric metadata comes from the [`MetadataSource`] given with
//! [`RemoteStorage::set_metadata_source`] (the scrape manager); without one, queues send none.
//!
//! A queue's `sigv4` section makes its HTTP client sign every request (AWS SigV4, service
//! `aps`, credentials and region as `httpclient::aws` finds them); a configuration whose
//! credentials or region cannot be found is refused like any unusable HTTP setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::{NameValidationScheme, RemoteWriteConfig};
use model::exposition::TextEncoder;

use crate::metadata::{MetadataSettings, MetadataSource};
use crate::metrics::{QueueMetrics, write_queue_metrics};
use crate::queue::{QueueManager, QueueOptions};
use crate::sender::HttpTransport;
use crate::shards::{QueueSettings, Shared};

/// How long a reload lets a replaced or removed queue send what it holds.
const RELOAD_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Server-wide settings of remote write.
#[derive(Debug, Clone)]
pub struct RemoteWriteOptions {
    /// The TSDB's WAL directory (`<storage.tsdb.path>/wal`).
    pub wal_dir: PathBuf,
    /// Where queues keep their positions (`<storage.tsdb.path>/remote`).
    pub queues_dir: PathBuf,
    /// `User-Agent` of write requests, e.g. `Meridian/0.1.0`.
    pub user_agent: String,
    /// `--storage.remote.flush-deadline` (default 1 minute).
    pub flush_deadline: Duration,
    pub reshard_interval: Duration,
    pub poll_interval: Duration,
    pub persist_interval: Duration,
}

impl RemoteWriteOptions {
    /// Production defaults for a TSDB directory.
    pub fn new(tsdb_dir: &Path, user_agent: &str) -> RemoteWriteOptions {
        RemoteWriteOptions {
            wal_dir: tsdb_dir.join("wal"),
            queues_dir: tsdb_dir.join("remote"),
            user_agent: user_agent.to_owned(),
            flush_deadline: Duration::from_secs(60),
            reshard_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            persist_interval: Duration::from_secs(5),
        }
    }
}

/// The directory name of a queue: 16 hex digits of a hash of its name and URL.
pub fn queue_id(name: &str, url: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(format!("{name}\n{url}").as_bytes());
    format!("{h:016x}")
}

/// The `remote_name` label: the configured name, or the first 6 hex digits of the id (as
/// Prometheus does with its config hash).
fn remote_name(cfg: &RemoteWriteConfig, id: &str) -> String {
    if cfg.name.is_empty() {
        id[..6].to_owned()
    } else {
        cfg.name.clone()
    }
}

struct Running {
    config: RemoteWriteConfig,
    external_labels: BTreeMap<String, String>,
    queue: QueueManager,
}

/// The remote-write queues of one server.
pub struct RemoteStorage {
    opts: RemoteWriteOptions,
    queues: tokio::sync::Mutex<BTreeMap<String, Running>>,
    /// Metrics of running queues, readable without the async lock.
    metrics: Mutex<Vec<Arc<QueueMetrics>>>,
    /// The running queues' state, for the synchronous [`RemoteStorage::lowest_needed`].
    shared: Mutex<Vec<Arc<Shared>>>,
    metadata_source: Mutex<Option<Arc<dyn MetadataSource>>>,
}

/// The lowest segment any saved queue position names, read from disk (for WAL truncation
/// before the queues are started). `None` when no queue has a position.
pub fn lowest_saved_segment(queues_dir: &Path) -> Option<u32> {
    std::fs::read_dir(queues_dir)
        .ok()?
        .flatten()
        .filter_map(|e| crate::position::saved_segment(&e.path()))
        .min()
}

impl RemoteStorage {
    pub fn new(opts: RemoteWriteOptions) -> RemoteStorage {
        RemoteStorage {
            opts,
            queues: tokio::sync::Mutex::new(BTreeMap::new()),
            metrics: Mutex::new(Vec::new()),
            shared: Mutex::new(Vec::new()),
            metadata_source: Mutex::new(None),
        }
    }

    /// Where queues started from now on get metric metadata (Prometheus' metadata watcher
    /// reads the scrape manager); set it before the first [`apply_config`].
    ///
    /// [`apply_config`]: RemoteStorage::apply_config
    pub fn set_metadata_source(&self, source: Arc<dyn MetadataSource>) {
        *self
            .metadata_source
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Makes the running queues match `configs`. Configuration errors (an unusable HTTP
    /// client setting, a relabel rule, an unsupported option) are returned before anything
    /// changes; a queue that cannot start (its directory) is logged and reported after the
    /// others started.
    pub async fn apply_config(
        &self,
        configs: &[RemoteWriteConfig],
        external_labels: &BTreeMap<String, String>,
        scheme: NameValidationScheme,
    ) -> Result<(), String> {
        // Validate and prepare everything first.
        let mut wanted: BTreeMap<String, (RemoteWriteConfig, Vec<relabel::Rule>)> = BTreeMap::new();
        for cfg in configs {
            let rules = relabel::compile(&cfg.write_relabel_configs, scheme)
                .map_err(|e| format!("remote_write {}: {e}", cfg.url))?;
            let url = cfg.url.expose().to_string();
            wanted.insert(queue_id(&cfg.name, &url), (cfg.clone(), rules));
        }
        // HTTP clients (TLS files, proxy) are built before anything changes, so a bad
        // setting leaves the running queues as they are.
        let mut prepared = BTreeMap::new();
        for (id, (cfg, rules)) in wanted {
            let url = cfg.url.expose().to_string();
            // `sigv4` signs each request (after its headers and body are final).
            let client = httpclient::HttpClient::builder(&cfg.http_client, &self.opts.user_agent)
                .sigv4(cfg.sigv4.as_ref())
                .build()
                .map_err(|e| format!("remote_write {}: {e}", cfg.url))?;
            let transport = Arc::new(HttpTransport::new(
                client,
                &url,
                cfg.headers.clone(),
                cfg.remote_timeout.as_std(),
                cfg.protobuf_message,
            ));
            prepared.insert(id, (cfg, rules, transport));
        }
        let mut queues = self.queues.lock().await;
        // Stop queues that are gone or changed, in parallel and briefly: what they have not
        // sent stays in the WAL and a restarted queue resumes from its saved position.
        let mut stopping = Vec::new();
        let ids: Vec<String> = queues.keys().cloned().collect();
        for id in ids {
            let keep = match (queues.get(&id), prepared.get(&id)) {
                (Some(run), Some((cfg, _, _))) => {
                    run.config == *cfg && run.external_labels == *external_labels
                }
                _ => false,
            };
            if keep {
                prepared.remove(&id);
                continue;
            }
            if let Some(run) = queues.remove(&id) {
                let deadline = self.opts.flush_deadline.min(RELOAD_FLUSH_DEADLINE);
                stopping.push((id, run.queue.stop_with_deadline(deadline)));
            }
        }
        let (stopped_ids, stops): (Vec<String>, Vec<_>) = stopping.into_iter().unzip();
        futures_join_all(stops.into_iter()).await;
        for id in stopped_ids {
            if !prepared.contains_key(&id) {
                let dir = self.opts.queues_dir.join(&id);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), err = %e, "removing a remote-write queue directory");
                }
            }
        }
        let mut first_error = None;
        for (id, (cfg, rules, transport)) in prepared {
            let mut settings = QueueSettings::from_config(&cfg.queue_config);
            settings.protobuf_message = cfg.protobuf_message;
            let mut qo = QueueOptions::new(
                self.opts.wal_dir.clone(),
                self.opts.queues_dir.join(&id),
                &remote_name(&cfg, &id),
                &cfg.url.to_string(),
                settings,
            );
            qo.external_labels = external_labels.clone();
            qo.relabel = rules;
            qo.flush_deadline = self.opts.flush_deadline;
            qo.reshard_interval = self.opts.reshard_interval;
            qo.poll_interval = self.opts.poll_interval;
            qo.persist_interval = self.opts.persist_interval;
            qo.send_exemplars = cfg.send_exemplars;
            let source = self
                .metadata_source
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            qo.metadata = source.filter(|_| cfg.metadata_config.send).map(|source| {
                let mc = &cfg.metadata_config;
                let settings = MetadataSettings {
                    interval: mc.send_interval.as_std().max(Duration::from_millis(10)),
                    max_per_send: usize::try_from(mc.max_samples_per_send)
                        .unwrap_or(usize::MAX)
                        .max(1),
                    min_backoff: cfg.queue_config.min_backoff.as_std(),
                    max_backoff: cfg.queue_config.max_backoff.as_std(),
                    retry_on_http_429: cfg.queue_config.retry_on_http_429,
                };
                (source, settings)
            });
            match QueueManager::start(qo, transport) {
                Ok(queue) => {
                    queues.insert(
                        id,
                        Running {
                            config: cfg,
                            external_labels: external_labels.clone(),
                            queue,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(url = %cfg.url, err = %e, "starting a remote-write queue");
                    first_error.get_or_insert(format!("remote_write {}: {e}", cfg.url));
                }
            }
        }
        self.refresh(&queues);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn refresh(&self, queues: &BTreeMap<String, Running>) {
        let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        *m = queues
            .values()
            .map(|r| Arc::clone(r.queue.metrics()))
            .collect();
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        *sh = queues
            .values()
            .map(|r| Arc::clone(r.queue.shared()))
            .collect();
    }

    /// As [`lowest_needed_segment`](Self::lowest_needed_segment), without waiting (for the
    /// TSDB's truncation, which runs on its own thread). While a reload is replacing a queue
    /// the replaced queue is already absent: callers should also take
    /// [`lowest_saved_segment`] of the queues directory into account, which covers it.
    pub fn lowest_needed(&self) -> Option<u32> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| s.lowest_needed())
            .min()
    }

    /// Stops every queue (each gets the flush deadline, in parallel) and saves their
    /// positions. Bounded by the flush deadline even when receivers are unreachable.
    pub async fn stop(&self) {
        self.stop_with_deadline(self.opts.flush_deadline).await;
    }

    /// As [`stop`](Self::stop) with another flush deadline (zero: at once; nothing is lost
    /// either way, unsent samples stay in the WAL).
    pub async fn stop_with_deadline(&self, flush_deadline: Duration) {
        let mut queues = self.queues.lock().await;
        let all = std::mem::take(&mut *queues);
        let stops = all
            .into_values()
            .map(|r| r.queue.stop_with_deadline(flush_deadline));
        futures_join_all(stops).await;
        self.refresh(&queues);
    }

    /// The oldest WAL segment any running queue still needs (`None` without queues). WAL
    /// truncation must keep this segment and later ones.
    pub async fn lowest_needed_segment(&self) -> Option<u32> {
        let queues = self.queues.lock().await;
        queues
            .values()
            .map(|r| r.queue.lowest_needed_segment())
            .min()
    }

    /// The metrics of the running queues.
    pub fn queue_metrics(&self) -> Vec<Arc<QueueMetrics>> {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes all remote-write metric families in the text format (for `/metrics`).
    pub fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        let all = self.queue_metrics();
        let refs: Vec<&QueueMetrics> = all.iter().map(|m| m.as_ref()).collect();
        write_queue_metrics(e, &refs);
    }
}

/// Runs futures concurrently and waits for all (a small join_all without another crate).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}
