//! The discovery manager: runs one provider (a [`Discoverer`] task) per distinct discovery
//! config — jobs with identical configs share one provider, as in Prometheus, so e.g. two jobs
//! with the same Kubernetes role, namespaces and selectors share one set of watches — keeps
//! the latest group of every source, and publishes the merged groups of all jobs on a `watch`
//! channel, at most once per `update_interval` (Prometheus' manager
//! throttles the same way, every 5 s), so bursts of changes cost one scrape-manager sync.
//!
//! [`DiscoveryManager::apply_config`] keeps the providers whose config did not change (their
//! targets stay, nothing is re-read; the jobs they serve are updated) and replaces the others.
//!
//! Metrics ([`DiscoveryManager::write_metrics`]), as Prometheus' discovery manager:
//! `prometheus_sd_received_updates_total` counts updates providers sent,
//! `prometheus_sd_updates_total` the target sets published, `prometheus_sd_updates_delayed_total`
//! stays 0 (publishing replaces the value of a `watch` channel, it never waits for the
//! consumer), `prometheus_sd_failed_configs` counts providers whose discoverer could not start,
//! and `prometheus_sd_discovered_targets{config}` the targets of each job.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use model::exposition::{MetricType, TextEncoder};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::write_family;
use crate::{DiscovererOptions, ProviderStatus, SdConfig, SdMetrics, TargetGroup};

/// The groups of every job, by job name. A configured job without targets has an empty list.
pub type TargetSets = BTreeMap<String, Vec<TargetGroup>>;

#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Minimum time between two published updates.
    pub update_interval: Duration,
    pub discoverer: DiscovererOptions,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            update_interval: Duration::from_secs(5),
            discoverer: DiscovererOptions::default(),
        }
    }
}

struct Provider {
    id: u64,
    /// The jobs using this config.
    jobs: Vec<String>,
    config: Arc<dyn SdConfig>,
    /// Latest group per source.
    groups: BTreeMap<String, TargetGroup>,
    /// Set by the discoverer when its configuration cannot be used.
    status: ProviderStatus,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    providers: Vec<Provider>,
    jobs: BTreeSet<String>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    /// Updates received from providers.
    received_updates: AtomicU64,
    /// Target sets published.
    sent_updates: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, provider_id: u64, groups: Vec<TargetGroup>) {
        let mut state = self.lock();
        let Some(provider) = state.providers.iter_mut().find(|p| p.id == provider_id) else {
            return;
        };
        self.received_updates.fetch_add(1, Ordering::Relaxed);
        for group in groups {
            provider.groups.insert(group.source.clone(), group);
        }
        drop(state);
        self.changed.notify_one();
    }

    fn snapshot(&self) -> TargetSets {
        let state = self.lock();
        let mut sets: TargetSets = state.jobs.iter().map(|j| (j.clone(), Vec::new())).collect();
        for provider in &state.providers {
            for job in &provider.jobs {
                let groups = sets.entry(job.clone()).or_default();
                groups.extend(
                    provider
                        .groups
                        .values()
                        .filter(|g| !g.targets.is_empty())
                        .cloned(),
                );
            }
        }
        sets
    }
}

/// Runs discovery providers and publishes their merged target groups. Must be created inside
/// a tokio runtime; dropping it stops every provider.
pub struct DiscoveryManager {
    shared: Arc<Shared>,
    options: DiscoveryOptions,
    publisher: JoinHandle<()>,
}

impl DiscoveryManager {
    /// The manager and the receiving end of its updates. The first update is published as
    /// soon as the first provider reports (or a config is applied).
    pub fn new(options: DiscoveryOptions) -> (DiscoveryManager, watch::Receiver<Arc<TargetSets>>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            received_updates: AtomicU64::new(0),
            sent_updates: AtomicU64::new(0),
        });
        let (sender, receiver) = watch::channel(Arc::new(TargetSets::new()));
        let publisher = tokio::spawn(publish_loop(
            shared.clone(),
            sender,
            options.update_interval,
        ));
        (
            DiscoveryManager {
                shared,
                options,
                publisher,
            },
            receiver,
        )
    }

    /// Replaces the discovery configuration: `jobs` maps each job to its discovery configs.
    /// Identical configs (of one job or several) share a provider; providers whose config is
    /// still used keep running; the rest are stopped, and new configs started.
    pub fn apply_config(&self, jobs: &BTreeMap<String, Vec<Arc<dyn SdConfig>>>) {
        let mut state = self.shared.lock();
        let old = std::mem::take(&mut state.providers);
        let mut kept: Vec<Option<Provider>> = old.into_iter().map(Some).collect();
        let mut providers: Vec<Provider> = Vec::new();
        for (job, configs) in jobs {
            for config in configs {
                if let Some(shared) = providers
                    .iter_mut()
                    .find(|p| p.config.same_as(config.as_ref()))
                {
                    if !shared.jobs.contains(job) {
                        shared.jobs.push(job.clone());
                    }
                    continue;
                }
                let reusable = kept.iter_mut().find(|slot| {
                    slot.as_ref()
                        .is_some_and(|p| p.config.same_as(config.as_ref()))
                });
                if let Some(mut provider) = reusable.and_then(Option::take) {
                    provider.jobs = vec![job.clone()];
                    providers.push(provider);
                    continue;
                }
                let id = state.next_id;
                state.next_id += 1;
                tracing::debug!(job = %job, mechanism = config.name(), "starting discovery provider");
                let status = ProviderStatus::default();
                providers.push(Provider {
                    id,
                    jobs: vec![job.clone()],
                    config: config.clone(),
                    groups: BTreeMap::new(),
                    task: self.spawn_provider(id, config.as_ref(), status.clone()),
                    status,
                });
            }
        }
        for provider in kept.into_iter().flatten() {
            provider.task.abort();
        }
        state.providers = providers;
        state.jobs = jobs.keys().cloned().collect();
        drop(state);
        self.shared.changed.notify_one();
    }

    fn spawn_provider(
        &self,
        id: u64,
        config: &dyn SdConfig,
        status: ProviderStatus,
    ) -> JoinHandle<()> {
        let options = DiscovererOptions {
            status,
            ..self.options.discoverer.clone()
        };
        let discoverer = config.discoverer(&options);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let (sender, mut receiver) = mpsc::channel(16);
            let run = discoverer.run(sender);
            tokio::pin!(run);
            let mut running = true;
            loop {
                tokio::select! {
                    _ = &mut run, if running => running = false,
                    update = receiver.recv() => match update {
                        Some(groups) => shared.update(id, groups),
                        None => return,
                    },
                }
            }
        })
    }

    /// The current merged groups, without waiting for the next publication.
    pub fn current(&self) -> TargetSets {
        self.shared.snapshot()
    }

    /// The counters the discovery mechanisms of this manager share.
    pub fn sd_metrics(&self) -> &Arc<SdMetrics> {
        &self.options.discoverer.metrics
    }

    /// Writes the manager's families, labelled `name` as Prometheus labels its managers
    /// (`scrape`); the mechanisms' families are [`SdMetrics::write`]'s.
    pub fn write_metrics(&self, e: &mut TextEncoder<'_>, name: &str) {
        let (failed, discovered) = {
            let state = self.shared.lock();
            let failed = state.providers.iter().filter(|p| p.status.failed()).count();
            let mut discovered: BTreeMap<&str, usize> =
                state.jobs.iter().map(|j| (j.as_str(), 0)).collect();
            for provider in &state.providers {
                let targets: usize = provider.groups.values().map(|g| g.targets.len()).sum();
                for job in &provider.jobs {
                    *discovered.entry(job.as_str()).or_default() += targets;
                }
            }
            let discovered: Vec<(String, usize)> = discovered
                .into_iter()
                .map(|(job, n)| (job.to_owned(), n))
                .collect();
            (failed, discovered)
        };
        if !discovered.is_empty() {
            write_family(
                e,
                "prometheus_sd_discovered_targets",
                "Current number of discovered targets.",
                MetricType::Gauge,
            );
        }
        for (job, n) in &discovered {
            e.sample_parts(
                "prometheus_sd_discovered_targets",
                [("config", job.as_str()), ("name", name)],
                *n as f64,
                None,
            );
        }
        let labelled = |e: &mut TextEncoder<'_>, family: &str, help: &str, kind, v: f64| {
            write_family(e, family, help, kind);
            e.sample_parts(family, [("name", name)], v, None);
        };
        labelled(
            e,
            "prometheus_sd_failed_configs",
            "Current number of service discovery configurations that failed to load.",
            MetricType::Gauge,
            failed as f64,
        );
        labelled(
            e,
            "prometheus_sd_received_updates_total",
            "Total number of update events received from the SD providers.",
            MetricType::Counter,
            self.shared.received_updates.load(Ordering::Relaxed) as f64,
        );
        labelled(
            e,
            "prometheus_sd_updates_delayed_total",
            "Total number of update events that couldn't be sent immediately.",
            MetricType::Counter,
            0.0,
        );
        labelled(
            e,
            "prometheus_sd_updates_total",
            "Total number of update events sent to the SD consumers.",
            MetricType::Counter,
            self.shared.sent_updates.load(Ordering::Relaxed) as f64,
        );
    }

    /// Stops every provider and the publisher.
    pub fn stop(&self) {
        let mut state = self.shared.lock();
        for provider in state.providers.drain(..) {
            provider.task.abort();
        }
        self.publisher.abort();
    }
}

impl Drop for DiscoveryManager {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn publish_loop(
    shared: Arc<Shared>,
    sender: watch::Sender<Arc<TargetSets>>,
    interval: Duration,
) {
    loop {
        shared.changed.notified().await;
        let sets = shared.snapshot();
        let sent = sender.send_if_modified(|current| {
            if **current == sets {
                return false;
            }
            *current = Arc::new(sets);
            true
        });
        if sent {
            shared.sent_updates.fetch_add(1, Ordering::Relaxed);
        }
        if sender.is_closed() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}
