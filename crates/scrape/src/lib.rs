//! Scraping, as Prometheus does it: targets from discovery and relabeling, one loop per
//! target, HTTP scrapes, the scrape cache, staleness markers, the synthetic series, and the
//! [`ScrapeManager`] that applies configurations and reports targets.
//!
//! - [`target`]: target labels (`__address__`, `__scheme__`, `__metrics_path__`,
//!   `__scrape_interval__`, `__scrape_timeout__`, `__param_*`, `instance`, `job`), URLs,
//!   identity and offsets.
//! - [`http`]: the scrape request and response (content negotiation, gzip, limits, auth, TLS).
//! - `cache`, `append`: turning a body into samples with the scrape cache on the hot path.
//! - `scrape_loop`: one target's loop, its status and its synthetic series.
//! - [`manager`]: the [`ScrapeManager`].
//! - [`metrics`]: the `prometheus_target_*` self-metrics.
//!
//! Wiring: `ScrapeManager::new(appendable, ScrapeOptions::default())` inside the tokio
//! runtime, `apply_config(&config).await` at start-up and on every reload (an error leaves
//! the running configuration in place), `targets().await` and `targets_metadata().await`
//! for the API, `write_metrics` for `/metrics`, `stop().await` at
//! shutdown (before the storage is closed).

mod append;
mod cache;
pub mod http;
pub mod manager;
pub mod metrics;
mod scrape_loop;
pub mod target;

pub use append::AppendStats;
pub use cache::{MetadataStore, ScrapeCache, SharedMetadata};
pub use manager::{
    ApplyError, DroppedTarget, ScrapeManager, ScrapeOptions, TargetInfo, TargetMetadata,
    TargetsReport,
};
pub use scrape_loop::{TargetHealth, TargetStatus};
pub use target::Target;
