//! Target discovery, as Prometheus' `discovery` package: mechanisms that find scrape targets
//! and report them as [`TargetGroup`]s, and a [`DiscoveryManager`] that runs one provider per
//! discovery config and publishes the merged groups of every job.
//!
//! - [`Discoverer`]: the interface a mechanism implements (the Kubernetes issue plugs in here);
//!   [`SdConfig`]: a discovery config that can build its discoverer and tell whether a reload
//!   changed it.
//! - [`static_sd`]: `static_configs`; [`file_sd`]: `file_sd_configs` (JSON and YAML files,
//!   watched by polling, re-read every `refresh_interval`); [`kubernetes`]:
//!   `kubernetes_sd_configs` (list and watch of the Kubernetes API with the `kube` and
//!   `k8s-openapi` crates; cargo feature `kubernetes`, on by default — without it such
//!   configs are logged and give no targets).
//! - [`manager`]: the [`DiscoveryManager`].
//! - [`metrics`]: the `prometheus_sd_*` self-metrics and the [`metrics::Summary`] instrument
//!   (which the scrape crate's metrics use too).
//!
//! Everything async runs on the caller's tokio runtime.

pub mod file_sd;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod manager;
pub mod metrics;
pub mod static_sd;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use model::labels::Labels;
use tokio::sync::mpsc;

pub use file_sd::{FileDiscoverer, FileSd};
#[cfg(feature = "kubernetes")]
pub use kubernetes::KubernetesSd;
pub use manager::{DiscoveryManager, DiscoveryOptions, TargetSets};
pub use metrics::{ProviderStatus, SdMetrics};
pub use static_sd::StaticSd;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

/// A set of targets sharing labels and a source, as Prometheus' `targetgroup.Group`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Identifies the group within its provider: a later group with the same source replaces
    /// it, and one with no targets removes it.
    pub source: String,
    /// One label set per target, each with at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels for every target of the group (a target's own labels win).
    pub labels: Labels,
}

/// The labels of a target known only by its address.
pub fn address_labels(address: &str) -> Labels {
    // One pair cannot repeat a name; an empty address gives an empty set.
    Labels::from_pairs([(ADDRESS_LABEL, address)]).unwrap_or_default()
}

/// The future a [`Discoverer`] runs as.
pub type DiscovererFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A discovery mechanism.
pub trait Discoverer: Send + 'static {
    /// Runs the mechanism: sends the groups it finds, and later the groups that changed (a
    /// group with no targets clears its source). It returns when `updates` is closed; the
    /// manager may also simply drop (abort) it.
    fn run(self: Box<Self>, updates: mpsc::Sender<Vec<TargetGroup>>) -> DiscovererFuture;
}

/// Settings the manager passes to every discoverer it builds.
#[derive(Debug, Clone)]
pub struct DiscovererOptions {
    /// How often file-based discovery looks for changed files (Prometheus reacts to inotify;
    /// Meridian polls modification times and sizes, which is cheap for a few files).
    pub file_poll_interval: Duration,
    /// Where the mechanisms count what they do (shared by all discoverers of a manager).
    pub metrics: Arc<SdMetrics>,
    /// The provider's status; the manager gives each provider its own.
    pub status: ProviderStatus,
}

impl Default for DiscovererOptions {
    fn default() -> Self {
        DiscovererOptions {
            file_poll_interval: Duration::from_secs(1),
            metrics: Arc::new(SdMetrics::default()),
            status: ProviderStatus::default(),
        }
    }
}

/// One discovery config of a job, able to build its [`Discoverer`].
pub trait SdConfig: Send + Sync + fmt::Debug + 'static {
    /// The mechanism's name (`static`, `file`, `kubernetes`), for logs.
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// True when `other` is the same mechanism with the same settings: a reload keeps the
    /// running provider (and its targets) instead of restarting it.
    fn same_as(&self, other: &dyn SdConfig) -> bool;
    fn discoverer(&self, options: &DiscovererOptions) -> Box<dyn Discoverer>;
}

/// Implements [`SdConfig::same_as`] for a config type with `PartialEq`.
pub fn same_config<T: PartialEq + 'static>(this: &T, other: &dyn SdConfig) -> bool {
    other.as_any().downcast_ref::<T>() == Some(this)
}

/// The discovery configs of a scrape job: one provider for all its `static_configs`, one per
/// `file_sd_configs` entry, one per `kubernetes_sd_configs` entry.
pub fn sd_configs_for_scrape(scrape: &config::ScrapeConfig) -> Vec<Arc<dyn SdConfig>> {
    let mut configs: Vec<Arc<dyn SdConfig>> = Vec::new();
    if !scrape.static_configs.is_empty() {
        configs.push(Arc::new(StaticSd::new(scrape.static_configs.clone())));
    }
    for file in &scrape.file_sd_configs {
        configs.push(Arc::new(FileSd::new(file.clone())));
    }
    #[cfg(feature = "kubernetes")]
    for kubernetes in &scrape.kubernetes_sd_configs {
        configs.push(Arc::new(KubernetesSd::new(kubernetes.clone())));
    }
    #[cfg(not(feature = "kubernetes"))]
    if !scrape.kubernetes_sd_configs.is_empty() {
        tracing::warn!(
            job = %scrape.job_name,
            "Meridian was built without the `kubernetes` feature; kubernetes_sd_configs give no targets"
        );
    }
    configs
}
