//! The scrape manager (Prometheus' `scrape.Manager` and `scrapePool`): one pool per job, one
//! loop per target, fed by its own [`DiscoveryManager`].
//!
//! - [`ScrapeManager::apply_config`] builds everything new first (relabel rules, HTTP clients)
//!   and only then swaps: jobs with an unchanged config keep their loops and caches untouched;
//!   a changed job restarts its loops with the new settings, handing each surviving target's
//!   cache to its new loop: as is when the change cannot alter stored series (Prometheus'
//!   `reusableCache`), otherwise only to mark the series the new settings no longer produce
//!   as stale; removed jobs and targets get end-of-run staleness markers.
//! - Target updates from discovery are applied as they are published (discovery throttles).
//! - [`ScrapeManager::stop`] stops everything without staleness markers, as Prometheus does on
//!   shutdown.
//! - [`ScrapeManager::targets_metadata`] reports what each active target says about its
//!   metric families (kept current by the loops), for the metadata APIs and remote write.
//! - [`ScrapeManager::write_metrics`] writes the `prometheus_target_*` families (see
//!   [`crate::metrics`]) and the discovery manager's `prometheus_sd_*` ones: pool creations,
//!   reloads and syncs are counted here, per-scrape events by the loops.
//!
//! All of it runs as tasks on the caller's tokio runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use config::{Config, ScrapeConfig};
use discovery::{DiscoveryManager, DiscoveryOptions, SdConfig, TargetGroup, TargetSets};
use model::exposition::TextEncoder;
use model::labels::Labels;
use storage::Appendable;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::{ScrapeCache, SharedMetadata};
use crate::http::HttpScraper;
use crate::metrics::ScrapeMetrics;
use crate::scrape_loop::{
    JobContext, LoopExit, LoopOptions, STOP_FOR_RELOAD, STOP_TARGET_REMOVED, ScrapeLoop,
    TargetHealth, TargetStatus, lock,
};
use crate::target::{Fnv64a, Target, targets_from_groups};

/// Settings of the manager (Prometheus' scrape flags).
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    /// `User-Agent` of scrape requests.
    pub user_agent: String,
    /// Discovery throttling and file polling.
    pub discovery: DiscoveryOptions,
    /// `--scrape.adjust-timestamps`.
    pub adjust_timestamps: bool,
    /// `--scrape.timestamp-tolerance` (capped at 1% of each interval).
    pub timestamp_tolerance: Duration,
    /// Scrape new targets at once instead of at their offset in the interval (tests).
    pub skip_offsetting: bool,
    /// Mixed into every target's offset so that servers scraping the same targets spread
    /// out; `None` reads the machine's hostname (Prometheus uses the FQDN).
    pub hostname: Option<String>,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        ScrapeOptions {
            user_agent: format!("Meridian/{}", env!("CARGO_PKG_VERSION")),
            discovery: DiscoveryOptions::default(),
            adjust_timestamps: true,
            timestamp_tolerance: Duration::from_millis(2),
            skip_offsetting: false,
            hostname: None,
        }
    }
}

/// A configuration the manager cannot apply; the running one stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("job {job:?}: {message}")]
    Job { job: String, message: String },
    #[error("the scrape manager is stopped")]
    Stopped,
}

/// One active target, for `/api/v1/targets`.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// The job name.
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// Labels after relabeling, without the `__` ones.
    pub labels: Labels,
    pub health: TargetHealth,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
}

/// The metadata of one active target's metric families.
#[derive(Debug, Clone)]
pub struct TargetMetadata {
    pub scrape_pool: String,
    /// Labels after relabeling, without the `__` ones.
    pub labels: Labels,
    /// Sorted by family name.
    pub metadata: Vec<model::exposition::MetricMetadata>,
}

/// A target relabeling dropped.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub scrape_pool: String,
    pub discovered_labels: Labels,
}

/// All targets, sorted by job then URL.
#[derive(Debug, Clone, Default)]
pub struct TargetsReport {
    pub active: Vec<TargetInfo>,
    /// Up to `keep_dropped_targets` per job (all when 0).
    pub dropped: Vec<DroppedTarget>,
    /// Number of dropped targets per job, including those not kept.
    pub dropped_counts: BTreeMap<String, usize>,
}

struct LoopHandle {
    target: Arc<Target>,
    status: Arc<Mutex<TargetStatus>>,
    metadata: SharedMetadata,
    cancel: CancellationToken,
    stop_mode: Arc<AtomicU8>,
    task: JoinHandle<LoopExit>,
}

impl LoopHandle {
    /// Stops the loop because its target is gone; it writes staleness markers later.
    fn remove(self) {
        self.stop_mode.store(STOP_TARGET_REMOVED, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// Stops the loop for a reload and takes back its cache.
    async fn hand_over(self) -> Option<ScrapeCache> {
        self.stop_mode.store(STOP_FOR_RELOAD, Ordering::SeqCst);
        self.cancel.cancel();
        self.task.await.ok().map(|exit| exit.cache)
    }
}

struct Pool {
    job: Arc<JobContext>,
    target_rules: Vec<relabel::Rule>,
    loops: HashMap<u64, LoopHandle>,
    groups: Vec<TargetGroup>,
    dropped: Vec<Labels>,
    dropped_count: usize,
    /// `target_limit` exceeded: every loop of the pool fails with this.
    forced_error: Arc<Mutex<Option<String>>>,
}

struct State {
    pools: BTreeMap<String, Pool>,
    loop_options: LoopOptions,
    stopped: bool,
}

struct Inner {
    appendable: Arc<dyn Appendable>,
    options: ScrapeOptions,
    discovery: DiscoveryManager,
    state: tokio::sync::Mutex<State>,
    shutdown: CancellationToken,
    sync_task: Mutex<Option<JoinHandle<()>>>,
    /// The `prometheus_target_*` counters.
    metrics: Arc<ScrapeMetrics>,
}

impl Drop for Inner {
    /// A manager dropped without `stop` still ends its loops (without staleness markers).
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Scrapes the targets of a configuration into an [`Appendable`]. Create it inside a tokio
/// runtime; it runs as tasks on that runtime until [`ScrapeManager::stop`].
#[derive(Clone)]
pub struct ScrapeManager {
    inner: Arc<Inner>,
}

/// The parts of a new job built before anything running is touched.
struct PreparedJob {
    job: Arc<JobContext>,
    target_rules: Vec<relabel::Rule>,
}

impl ScrapeManager {
    pub fn new(appendable: Arc<dyn Appendable>, options: ScrapeOptions) -> ScrapeManager {
        let (discovery, updates) = DiscoveryManager::new(options.discovery.clone());
        let inner = Arc::new(Inner {
            appendable,
            options,
            discovery,
            state: tokio::sync::Mutex::new(State {
                pools: BTreeMap::new(),
                loop_options: LoopOptions {
                    adjust_timestamps: true,
                    timestamp_tolerance: Duration::from_millis(2),
                    skip_offsetting: false,
                    offset_seed: 0,
                },
                stopped: false,
            }),
            shutdown: CancellationToken::new(),
            sync_task: Mutex::new(None),
            metrics: Arc::new(ScrapeMetrics::default()),
        });
        let task = tokio::spawn(sync_loop(Arc::downgrade(&inner), updates));
        *lock(&inner.sync_task) = Some(task);
        ScrapeManager { inner }
    }

    /// Applies a (new) configuration. On error nothing changed.
    pub async fn apply_config(&self, config: &Config) -> Result<(), ApplyError> {
        let inner = &self.inner;
        let mut prepared = BTreeMap::new();
        for scrape in &config.scrape_configs {
            match prepare_job(scrape, &inner.options) {
                Ok(job) => {
                    prepared.insert(scrape.job_name.clone(), job);
                }
                Err(e) => {
                    self.count_failed_pool(scrape).await;
                    return Err(e);
                }
            }
        }
        let mut state = inner.state.lock().await;
        if state.stopped {
            return Err(ApplyError::Stopped);
        }
        state.loop_options = LoopOptions {
            adjust_timestamps: inner.options.adjust_timestamps,
            timestamp_tolerance: inner.options.timestamp_tolerance,
            skip_offsetting: inner.options.skip_offsetting,
            offset_seed: offset_seed(
                inner.options.hostname.as_deref(),
                &config.global.external_labels,
            ),
        };
        let loop_options = state.loop_options.clone();
        let mut old_pools = std::mem::take(&mut state.pools);
        for (name, new) in prepared {
            let pool = match old_pools.remove(&name) {
                Some(old) if *old.job.config == *new.job.config => old,
                Some(old) => self.reload_pool(old, new, &loop_options).await,
                None => {
                    inner.metrics.pools_created.fetch_add(1, Ordering::Relaxed);
                    inner
                        .metrics
                        .pool_configured(&name, new.job.config.target_limit);
                    Pool {
                        job: new.job,
                        target_rules: new.target_rules,
                        loops: HashMap::new(),
                        groups: Vec::new(),
                        dropped: Vec::new(),
                        dropped_count: 0,
                        forced_error: Arc::new(Mutex::new(None)),
                    }
                }
            };
            state.pools.insert(name, pool);
        }
        for (name, pool) in old_pools {
            tracing::info!(job = %name, "stopping scrape pool");
            inner.metrics.pool_removed(&name);
            for (_, handle) in pool.loops {
                handle.remove();
            }
        }
        let jobs: BTreeMap<String, Vec<Arc<dyn SdConfig>>> = config
            .scrape_configs
            .iter()
            .map(|s| (s.job_name.clone(), discovery::sd_configs_for_scrape(s)))
            .collect();
        inner.discovery.apply_config(&jobs);
        // Apply what discovery already knows, so unchanged providers' targets are used
        // by new pools right away.
        let current = inner.discovery.current();
        for (job, groups) in &current {
            if let Some(pool) = state.pools.get_mut(job)
                && pool.loops.is_empty()
                && !groups.is_empty()
            {
                self.sync_pool(pool, groups.clone(), &loop_options);
            }
        }
        Ok(())
    }

    /// Counts a job whose client could not be built: a failed reload when the job runs with
    /// another config, a failed pool creation when it is new (as Prometheus counts them).
    async fn count_failed_pool(&self, scrape: &ScrapeConfig) {
        let metrics = &self.inner.metrics;
        let state = self.inner.state.lock().await;
        match state.pools.get(&scrape.job_name) {
            Some(pool) if *pool.job.config == *scrape => {}
            Some(_) => {
                metrics.reloads.fetch_add(1, Ordering::Relaxed);
                metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                metrics.pools_created.fetch_add(1, Ordering::Relaxed);
                metrics.pools_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Restarts the loops of a job whose config changed.
    async fn reload_pool(&self, old: Pool, new: PreparedJob, options: &LoopOptions) -> Pool {
        let started = Instant::now();
        let metrics = &self.inner.metrics;
        metrics.reloads.fetch_add(1, Ordering::Relaxed);
        metrics.pool_configured(&new.job.config.job_name, new.job.config.target_limit);
        let reuse = reusable_cache(&old.job.config, &new.job.config);
        let mut pool = Pool {
            job: new.job,
            target_rules: new.target_rules,
            loops: HashMap::new(),
            groups: Vec::new(),
            dropped: Vec::new(),
            dropped_count: 0,
            forced_error: old.forced_error,
        };
        let mut old_loops = old.loops;
        let (targets, dropped, _errors) =
            targets_from_groups(&pool.job.config, &pool.target_rules, &old.groups);
        pool.groups = old.groups;
        pool.dropped_count = dropped.len();
        pool.dropped = keep_dropped(dropped, pool.job.config.keep_dropped_targets);
        for target in targets {
            let cache = match old_loops.remove(&target.hash()) {
                Some(handle) => handle
                    .hand_over()
                    .await
                    .map(|cache| if reuse { cache } else { cache.invalidated() }),
                None => None,
            };
            self.start_loop(&mut pool, target, cache.unwrap_or_default(), options);
        }
        for (_, handle) in old_loops {
            handle.remove();
        }
        self.apply_target_limit(&pool);
        self.publish_targets(&pool);
        metrics.reloaded(pool.job.config.scrape_interval.as_std(), started.elapsed());
        pool
    }

    /// Tells the metrics which targets the pool has now.
    fn publish_targets(&self, pool: &Pool) {
        let metadata = pool.loops.values().map(|h| h.metadata.clone()).collect();
        self.inner
            .metrics
            .pool_targets(&pool.job.config.job_name, metadata);
    }

    fn start_loop(
        &self,
        pool: &mut Pool,
        target: Target,
        cache: ScrapeCache,
        options: &LoopOptions,
    ) {
        let target = Arc::new(target);
        let status = Arc::new(Mutex::new(TargetStatus::default()));
        let cancel = self.inner.shutdown.child_token();
        let stop_mode = Arc::new(AtomicU8::new(STOP_FOR_RELOAD));
        let metadata = cache.metadata();
        let scrape_loop = ScrapeLoop {
            target: target.clone(),
            job: pool.job.clone(),
            appendable: self.inner.appendable.clone(),
            cache,
            status: status.clone(),
            options: options.clone(),
            forced_error: pool.forced_error.clone(),
            metrics: self.inner.metrics.clone(),
            interval_length: self.inner.metrics.interval_length(target.interval),
        };
        let task = tokio::spawn(scrape_loop.run(
            cancel.clone(),
            self.inner.shutdown.clone(),
            stop_mode.clone(),
        ));
        pool.loops.insert(
            target.hash(),
            LoopHandle {
                target,
                status,
                metadata,
                cancel,
                stop_mode,
                task,
            },
        );
    }

    /// Replaces a pool's targets with those of `groups`: new targets start, vanished ones
    /// stop (with staleness markers), the others keep running untouched.
    fn sync_pool(&self, pool: &mut Pool, groups: Vec<TargetGroup>, options: &LoopOptions) {
        let started = Instant::now();
        let (targets, dropped, errors) =
            targets_from_groups(&pool.job.config, &pool.target_rules, &groups);
        let failed = errors.len();
        for error in errors {
            tracing::error!(job = %pool.job.config.job_name, err = %error, "Creating target failed");
        }
        pool.groups = groups;
        pool.dropped_count = dropped.len();
        pool.dropped = keep_dropped(dropped, pool.job.config.keep_dropped_targets);
        let mut old_loops = std::mem::take(&mut pool.loops);
        for target in targets {
            match old_loops.remove(&target.hash()) {
                Some(handle) => {
                    pool.loops.insert(target.hash(), handle);
                }
                None => self.start_loop(pool, target, ScrapeCache::default(), options),
            }
        }
        for (_, handle) in old_loops {
            handle.remove();
        }
        self.apply_target_limit(pool);
        self.publish_targets(pool);
        self.inner
            .metrics
            .synced(&pool.job.config.job_name, started.elapsed(), failed);
    }

    fn apply_target_limit(&self, pool: &Pool) {
        let limit = pool.job.config.target_limit;
        let count = pool.loops.len();
        let exceeded = limit > 0 && count as u64 > limit;
        if exceeded {
            self.inner
                .metrics
                .exceeded_target_limit
                .fetch_add(1, Ordering::Relaxed);
        }
        *lock(&pool.forced_error) = exceeded
            .then(|| format!("target_limit exceeded (number of targets: {count}, limit: {limit})"));
    }

    /// Every target with its labels and last scrape.
    pub async fn targets(&self) -> TargetsReport {
        let state = self.inner.state.lock().await;
        let mut report = TargetsReport::default();
        for (job, pool) in &state.pools {
            let mut active: Vec<TargetInfo> = pool
                .loops
                .values()
                .map(|handle| {
                    let status = lock(&handle.status).clone();
                    TargetInfo {
                        scrape_pool: job.clone(),
                        scrape_url: handle.target.url.clone(),
                        discovered_labels: handle.target.discovered_labels.clone(),
                        labels: handle.target.public_labels.clone(),
                        health: status.health,
                        last_error: status.last_error,
                        last_scrape: status.last_scrape,
                        last_scrape_duration: status.last_scrape_duration,
                        scrape_interval: handle.target.interval,
                        scrape_timeout: handle.target.timeout,
                    }
                })
                .collect();
            active.sort_by(|a, b| a.scrape_url.cmp(&b.scrape_url));
            report.active.extend(active);
            report
                .dropped
                .extend(pool.dropped.iter().map(|labels| DroppedTarget {
                    scrape_pool: job.clone(),
                    discovered_labels: labels.clone(),
                }));
            report
                .dropped_counts
                .insert(job.clone(), pool.dropped_count);
        }
        report
    }

    /// The metadata of every active target, sorted by job then URL (as [`targets`]), each
    /// with all its families or, with `family`, only that one (targets without it are left
    /// out).
    ///
    /// [`targets`]: ScrapeManager::targets
    pub async fn targets_metadata(&self, family: Option<&str>) -> Vec<TargetMetadata> {
        let state = self.inner.state.lock().await;
        let mut out = Vec::new();
        for (job, pool) in &state.pools {
            let mut handles: Vec<&LoopHandle> = pool.loops.values().collect();
            handles.sort_by(|a, b| a.target.url.cmp(&b.target.url));
            for handle in handles {
                let store = lock(&handle.metadata);
                let metadata = match family {
                    None => store.list(),
                    Some(f) => match store.get(f) {
                        Some(m) => vec![m],
                        None => continue,
                    },
                };
                drop(store);
                out.push(TargetMetadata {
                    scrape_pool: job.clone(),
                    labels: handle.target.public_labels.clone(),
                    metadata,
                });
            }
        }
        out
    }

    /// Exemplars refused as out of order by all scrapes so far.
    pub fn exemplar_out_of_order_total(&self) -> u64 {
        self.inner
            .metrics
            .exemplar_out_of_order
            .load(Ordering::Relaxed)
    }

    /// Writes the scrape manager's `prometheus_target_*` families and its discovery
    /// manager's `prometheus_sd_*` ones (manager name `scrape`), in the text format.
    pub fn write_metrics(&self, e: &mut TextEncoder<'_>) {
        self.inner.discovery.write_metrics(e, "scrape");
        self.inner.discovery.sd_metrics().write(e);
        self.inner.metrics.write(e);
    }

    /// Stops discovery and every loop, without staleness markers (a restarted server
    /// continues the series). Waits for the loops to finish; later calls do nothing.
    pub async fn stop(&self) {
        let inner = &self.inner;
        inner.shutdown.cancel();
        inner.discovery.stop();
        if let Some(task) = lock(&inner.sync_task).take() {
            task.abort();
        }
        let mut state = inner.state.lock().await;
        state.stopped = true;
        let pools = std::mem::take(&mut state.pools);
        drop(state);
        for (_, pool) in pools {
            for (_, handle) in pool.loops {
                let _ = handle.task.await;
            }
        }
    }
}

/// Applies discovery updates to the pools until the manager goes away.
async fn sync_loop(inner: std::sync::Weak<Inner>, mut updates: watch::Receiver<Arc<TargetSets>>) {
    while updates.changed().await.is_ok() {
        let sets = updates.borrow_and_update().clone();
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let manager = ScrapeManager { inner };
        let mut state = manager.inner.state.lock().await;
        if state.stopped {
            return;
        }
        let options = state.loop_options.clone();
        for (job, groups) in sets.iter() {
            if let Some(pool) = state.pools.get_mut(job) {
                manager.sync_pool(pool, groups.clone(), &options);
            }
        }
    }
}

fn prepare_job(scrape: &ScrapeConfig, options: &ScrapeOptions) -> Result<PreparedJob, ApplyError> {
    let job_error = |message: String| ApplyError::Job {
        job: scrape.job_name.clone(),
        message,
    };
    let scheme = scrape.metric_name_validation_scheme;
    let target_rules =
        relabel::compile(&scrape.relabel_configs, scheme).map_err(|e| job_error(e.to_string()))?;
    let metric_rules = relabel::compile(&scrape.metric_relabel_configs, scheme)
        .map_err(|e| job_error(e.to_string()))?;
    // As Prometheus, a client that cannot be built (unreadable CA file, unsupported
    // setting) rejects the whole configuration, and the running one stays.
    let scraper = HttpScraper::new(scrape, &options.user_agent).map_err(job_error)?;
    Ok(PreparedJob {
        job: Arc::new(JobContext {
            config: Arc::new(scrape.clone()),
            scraper: Arc::new(scraper),
            metric_rules,
        }),
        target_rules,
    })
}

/// Whether the cache of a loop stays valid under a new config: only when nothing that
/// shapes stored series changed (Prometheus' `reusableCache`).
fn reusable_cache(old: &ScrapeConfig, new: &ScrapeConfig) -> bool {
    let zeroed = |c: &ScrapeConfig| {
        let mut z = c.clone();
        z.scrape_interval = config::Duration::ZERO;
        z.scrape_timeout = config::Duration::ZERO;
        z.sample_limit = 0;
        z.http_client = config::HttpClientConfig::default();
        z
    };
    zeroed(old) == zeroed(new)
}

fn keep_dropped(mut dropped: Vec<Labels>, keep: u64) -> Vec<Labels> {
    if keep > 0 {
        dropped.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }
    dropped
}

/// Prometheus' offset seed: a hash of the hostname and the external labels.
fn offset_seed(hostname: Option<&str>, external_labels: &BTreeMap<String, String>) -> u64 {
    let hostname = hostname.map(str::to_owned).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    });
    let labels = Labels::from_pairs(
        external_labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    )
    .unwrap_or_default();
    let mut hash = Fnv64a::new();
    hash.write(hostname.as_bytes());
    hash.write(labels.to_string().as_bytes());
    hash.finish()
}
