//! `meridian server`: loads the configuration, serves HTTP, and runs the control loop that
//! handles reloads (SIGHUP, `POST /-/reload`) and shutdown (SIGTERM, SIGINT, `POST /-/quit`).
//!
//! In agent mode (`--agent`) the storage is the agent's WAL under `--storage.agent.path`
//! instead of the database, the configuration may not hold rules, alerting or remote read,
//! and the API refuses reads of local data (see `agent.rs`).
//!
//! A configuration that fails to load at start-up stops the server with exit code 1; at a
//! reload it is reported and the running configuration stays, as in Prometheus. The storage
//! (`--storage.tsdb.path`) is opened, and its WAL replayed, before the server reports ready;
//! then the scrape manager starts on the configuration's `scrape_configs`, and every reload
//! goes to it too (a reload it rejects keeps the old configuration everywhere).
//!
//! Exemplars are stored when `--enable-feature=exemplar-storage` is given or the configuration
//! has `storage.exemplars` (see `ServerOptions::max_exemplars`); a reload resizes the storage.
//! Remote write gets metric metadata from the scrape manager (created before the queues).
//!
//! HTTP is served by `web::serve::HttpServer`: TLS, client certificates and basic auth from
//! `--web.config.file` (which must load at start-up; later changes to it and to the
//! certificates it names apply to new connections without a reload), with connection limits.

use crate::cli::ServerOptions;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};
use web::{LifecycleRequest, SelfMetrics, WebOptions, WebState};

/// How often the WAL is forced to the device (see the fsync policy in ARCHITECTURE.md).
const WAL_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How often the head is checked for a block to cut, blocks for merges, and retention.
const COMPACTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub fn run(opts: ServerOptions) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(err = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve(opts))
}

/// `global.external_labels` as a label set.
fn external_labels(c: &config::Config) -> model::labels::Labels {
    model::labels::Labels::from_pairs(
        c.global
            .external_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .unwrap_or_default()
}

/// Starts, keeps or stops remote-write queues to match `c.remote_write`.
async fn apply_remote_write(rw: &remote::RemoteStorage, c: &config::Config) -> Result<(), String> {
    rw.apply_config(
        &c.remote_write,
        &c.global.external_labels,
        c.global.metric_name_validation_scheme,
    )
    .await
}

/// Removes the saved positions of queues no longer in the configuration (a `remote_write`
/// removed while the server was down), so that they do not hold the WAL back forever.
fn forget_unconfigured_queues(queues_dir: &std::path::Path, c: &config::Config) {
    let wanted: std::collections::BTreeSet<String> = c
        .remote_write
        .iter()
        .map(|r| remote::queue_id(&r.name, r.url.expose().as_ref()))
        .collect();
    let Ok(entries) = std::fs::read_dir(queues_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !wanted.contains(&name) {
            info!(queue = %name, "forgetting the position of a remote-write queue no longer configured");
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                error!(dir = %e.path().display(), err = %err, "cannot remove a remote-write queue directory");
            }
        }
    }
}

/// `--web.external-url`, or this machine's address when unset (as Prometheus derives it).
fn external_url(opts: &ServerOptions) -> String {
    if !opts.external_url.is_empty() {
        return opts.external_url.trim_end_matches('/').to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("http://{host}:{}", opts.listen_address.port())
}

/// The rule manager's metrics (`prometheus_rule_*`, `prometheus_notifications_*`).
struct RuleMetrics(Arc<rules::RuleManager>);

impl web::MetricsSource for RuleMetrics {
    fn write_metrics(&self, e: &mut model::exposition::TextEncoder<'_>) {
        // The rule manager's state sits behind async locks; /metrics runs on the
        // multi-threaded runtime, where waiting in place is allowed.
        let mut text = String::new();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| {
                handle.block_on(self.0.render_metrics(&mut text));
            });
        }
        e.raw(&text);
    }
}

/// The remote-write queues' metrics on `/metrics`.
struct RemoteWriteMetrics(Arc<remote::RemoteStorage>);

impl web::MetricsSource for RemoteWriteMetrics {
    fn write_metrics(&self, e: &mut model::exposition::TextEncoder<'_>) {
        self.0.write_metrics(e)
    }
}

/// The scrape manager's targets' metadata, for remote write (Prometheus' metadata watcher).
struct ScrapeMetadata(scrape::ScrapeManager);

impl remote::metadata::MetadataSource for ScrapeMetadata {
    fn metadata(&self) -> remote::metadata::MetadataFuture<'_> {
        Box::pin(async move {
            self.0
                .targets_metadata(None)
                .await
                .into_iter()
                .map(|t| remote::metadata::TargetMetadata {
                    target: t.labels,
                    metadata: t.metadata,
                })
                .collect()
        })
    }
}

/// The scrape manager's `prometheus_target_*` and its discovery's `prometheus_sd_*` families
/// on `/metrics`.
struct ScrapeMetrics(scrape::ScrapeManager);

impl web::MetricsSource for ScrapeMetrics {
    fn write_metrics(&self, e: &mut model::exposition::TextEncoder<'_>) {
        self.0.write_metrics(e);
    }
}

/// What the server stores samples in: the database, or in agent mode the WAL-only storage.
#[derive(Clone)]
enum Store {
    Db(Arc<tsdb::Db>),
    Agent(tsdb::AgentDb),
}

impl Store {
    /// Opens the storage the flags select, replaying its WAL.
    fn open(opts: &ServerOptions, max_exemplars: usize) -> Result<Store, String> {
        if opts.is_agent() {
            tsdb::AgentDb::open(&opts.storage_agent_path, opts.agent_options())
                .map(Store::Agent)
                .map_err(|e| e.to_string())
        } else {
            let mut db_options = opts.db_options();
            db_options.head.max_exemplars = max_exemplars;
            tsdb::Db::open(&opts.storage_tsdb_path, db_options)
                .map(|db| Store::Db(Arc::new(db)))
                .map_err(|e| e.to_string())
        }
    }

    fn appendable(&self) -> Arc<dyn storage::Appendable> {
        match self {
            Store::Db(db) => db.clone(),
            Store::Agent(a) => Arc::new(a.clone()),
        }
    }

    /// What rules read: the database, or (agent mode, where rules are refused by the
    /// configuration check) a storage that answers no reads.
    fn queryable(&self) -> Arc<dyn storage::Queryable> {
        match self {
            Store::Db(db) => db.clone(),
            Store::Agent(a) => Arc::new(crate::agent::AgentStorage(a.clone())),
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        match self {
            Store::Db(db) => db.sync(),
            Store::Agent(a) => a.sync(),
        }
    }

    fn close(&self) -> Result<(), String> {
        match self {
            Store::Db(db) => db.close().map_err(|e| e.to_string()),
            Store::Agent(a) => a.close().map_err(|e| e.to_string()),
        }
    }

    fn set_wal_floor(&self, floor: tsdb::head::WalFloor) {
        match self {
            Store::Db(db) => db.head().set_wal_floor(floor),
            Store::Agent(a) => a.set_wal_floor(floor),
        }
    }

    /// Resizes the exemplar storage (the agent keeps none in memory: its exemplars go to
    /// the WAL for the queues); returns how many exemplars were kept.
    fn set_max_exemplars(&self, n: usize) -> usize {
        match self {
            Store::Db(db) => db.head().set_max_exemplars(n),
            Store::Agent(_) => 0,
        }
    }

    /// The periodic upkeep: compaction, retention and WAL truncation for the database; WAL
    /// truncation for the agent.
    fn maintain(&self) -> Result<(), String> {
        match self {
            Store::Db(db) => db.compact().map(|_| ()).map_err(|e| e.to_string()),
            Store::Agent(a) => a.truncate().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// The configuration file with secrets hidden, for `/api/v1/status/config`.
fn shown_config(opts: &ServerOptions) -> String {
    std::fs::read_to_string(&opts.config_file)
        .map_err(|e| e.to_string())
        .and_then(|text| config::redacted_yaml(&text))
        .unwrap_or_else(|e| format!("# the configuration could not be shown: {e}\n"))
}

fn load_config(opts: &ServerOptions) -> Result<Arc<config::Config>, String> {
    let cfg = config::Config::load(&opts.config_file).map_err(|e| e.to_string())?;
    if opts.is_agent() {
        crate::agent::check_config(&cfg)
            .map_err(|e| format!("{}: {e}", opts.config_file.display()))?;
    }
    info!(filename = %opts.config_file.display(), "Completed loading of configuration file");
    Ok(Arc::new(cfg))
}

async fn serve(opts: ServerOptions) -> ExitCode {
    info!(version = env!("CARGO_PKG_VERSION"), "Starting Meridian");
    let metrics = Arc::new(SelfMetrics::new());
    let mut current = match load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            error!(filename = %opts.config_file.display(), err = %e, "Error loading config");
            return ExitCode::FAILURE;
        }
    };
    metrics.config_loaded(true);

    // The web configuration (TLS, authentication) must load before anything is served.
    let http_server = match web::serve::HttpServer::new(web::serve::ServeOptions {
        web_config_file: opts.web_config_file.clone(),
        max_connections: opts.web_max_connections,
        idle_timeout: opts.web_read_timeout.as_std(),
        ..web::serve::ServeOptions::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            error!(err = %e, "Error loading the web configuration");
            return ExitCode::FAILURE;
        }
    };
    metrics.add_source(http_server.metrics());
    let tls = http_server.is_tls();
    let listener = match tokio::net::TcpListener::bind(opts.listen_address).await {
        Ok(l) => l,
        Err(e) => {
            error!(address = %opts.listen_address, err = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let (lifecycle_tx, mut lifecycle_rx) = mpsc::channel(8);
    let engine = promql::engine::Engine::new(promql::engine::EngineOptions {
        lookback_delta: opts.query_lookback_delta.as_millis() as i64,
        default_subquery_step: current.global.evaluation_interval.as_millis() as i64,
        max_samples: opts.query_max_samples,
        timeout: opts.query_timeout.as_std(),
        max_concurrency: opts.query_max_concurrency,
        ..Default::default()
    });
    let api = web::api::ApiState::new(
        engine.clone(),
        web::api::ApiOptions {
            external_labels: external_labels(&current),
            remote_write_receiver: opts.enable_remote_write_receiver,
            flags: opts.flag_values(),
        },
    );
    api.set_federate_max_series(opts.federate_max_series);
    api.set_config_yaml(shown_config(&opts));
    api.set_admin_enabled(opts.enable_admin_api);
    let state = WebState::new(
        WebOptions {
            enable_lifecycle: opts.enable_lifecycle,
        },
        lifecycle_tx,
        metrics.clone(),
        api,
    );
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = web::router(state.clone());
    // `--web.route-prefix` (or the path of `--web.external-url`): everything moves under it.
    let prefix = opts.route_prefix();
    let app = if prefix.is_empty() {
        app
    } else {
        axum::Router::new().nest(&prefix, app)
    };
    if !opts.enable_feature.is_empty() {
        info!(features = %opts.enable_feature.join(","), "Feature flags are accepted for compatibility; of them only exemplar-storage changes Meridian's behaviour");
    }
    let mut max_exemplars = opts.max_exemplars(&current);
    if max_exemplars > 0 {
        info!(max_exemplars, "Exemplar storage enabled");
    }
    let server = tokio::spawn(http_server.serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    info!(address = %opts.listen_address, tls, "Listening");

    let signals = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    let (mut hup, mut term, mut int) = match signals {
        (Ok(h), Ok(t), Ok(i)) => (h, t, i),
        _ => {
            error!("cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    // The database replays its WAL before the server reports ready (HTTP is already up so
    // that /-/healthy answers during a long replay, as in Prometheus).
    let open_opts = opts.clone();
    let store =
        match tokio::task::spawn_blocking(move || Store::open(&open_opts, max_exemplars)).await {
            Ok(Ok(store)) => store,
            Ok(Err(e)) => {
                error!(err = %e, "Opening storage failed");
                let _ = stop_tx.send(());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                error!(err = %e, "Opening storage failed");
                let _ = stop_tx.send(());
                return ExitCode::FAILURE;
            }
        };
    let data_dir = if opts.is_agent() {
        opts.storage_agent_path.clone()
    } else {
        opts.storage_tsdb_path.clone()
    };
    match &store {
        Store::Db(db) => {
            metrics.add_source(Arc::new(crate::tsdb_metrics::TsdbMetrics(db.clone())));
            state
                .api()
                .set_storage(Arc::new(crate::tsdb_metrics::ApiDb(db.clone())));
        }
        Store::Agent(a) => {
            info!("Running in agent mode: scraping and remote write only");
            state.api().set_agent(true);
            metrics.add_source(Arc::new(crate::agent::AgentMetrics(a.clone())));
            state
                .api()
                .set_storage(Arc::new(crate::agent::AgentStorage(a.clone())));
        }
    }
    // fsync policy: commits reach the kernel before they return (a crash of this process loses
    // nothing); the WAL is synced to the device every WAL_SYNC_INTERVAL and at shutdown, so a
    // power loss can cost at most that much of acknowledged data.
    let syncer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WAL_SYNC_INTERVAL);
            loop {
                tick.tick().await;
                let store = store.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.sync()).await {
                    error!(err = %e, "WAL sync failed");
                }
            }
        })
    };
    // Remote write reads the WAL; its queues start before compaction may truncate the WAL,
    // and truncation keeps every segment a queue (running, or saved on disk) still needs.
    let mut rw_options = remote::RemoteWriteOptions::new(
        &data_dir,
        &format!("Meridian/{}", env!("CARGO_PKG_VERSION")),
    );
    rw_options.flush_deadline = opts.remote_flush_deadline.as_std();
    let remote_write = Arc::new(remote::RemoteStorage::new(rw_options));
    // The scrape manager exists (without targets) before the queues so that they can read its
    // metadata; it starts scraping once remote write runs.
    let scrapes = scrape::ScrapeManager::new(store.appendable(), scrape::ScrapeOptions::default());
    remote_write.set_metadata_source(Arc::new(ScrapeMetadata(scrapes.clone())));
    metrics.add_source(Arc::new(ScrapeMetrics(scrapes.clone())));
    forget_unconfigured_queues(&data_dir.join("remote"), &current);
    if let Err(e) = apply_remote_write(&remote_write, &current).await {
        error!(filename = %opts.config_file.display(), err = %e, "Error loading config");
        syncer.abort();
        let _ = store.close();
        let _ = stop_tx.send(());
        return ExitCode::FAILURE;
    }
    {
        let rw = remote_write.clone();
        let queues_dir = data_dir.join("remote");
        store.set_wal_floor(Arc::new(move || {
            [
                rw.lowest_needed(),
                remote::lowest_saved_segment(&queues_dir),
            ]
            .into_iter()
            .flatten()
            .min()
        }));
    }
    metrics.add_source(Arc::new(RemoteWriteMetrics(remote_write.clone())));
    // Compaction (head → blocks, block merges, retention) runs every minute, as in
    // Prometheus; the agent truncates its WAL every --storage.agent.wal-truncate-frequency.
    let compactor = {
        let store = store.clone();
        let every = match &store {
            Store::Db(_) => COMPACTION_INTERVAL,
            Store::Agent(_) => opts
                .agent_truncate_frequency
                .as_std()
                .max(std::time::Duration::from_secs(1)),
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.maintain()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => error!(err = %e, "compaction failed"),
                    Err(e) => error!(err = %e, "compaction task failed"),
                }
            }
        })
    };
    // Scraping starts once the storage is open; a configuration the scrape manager cannot
    // apply (an HTTP client it cannot build) stops start-up, as it does in Prometheus.
    if let Err(e) = scrapes.apply_config(&current).await {
        error!(filename = %opts.config_file.display(), err = %e, "Error loading config");
        syncer.abort();
        compactor.abort();
        let _ = store.close();
        let _ = stop_tx.send(());
        return ExitCode::FAILURE;
    }
    state.api().set_scrape_manager(scrapes.clone());
    // Rules evaluate against the database and write their results into it.
    let mut rule_opts =
        rules::RuleManagerOptions::new(engine.clone(), store.queryable(), store.appendable());
    rule_opts.external_url = external_url(&opts);
    rule_opts.resend_delay = opts.rules_resend_delay.as_std();
    rule_opts.outage_tolerance = opts.rules_for_outage_tolerance.as_std();
    rule_opts.for_grace_period = opts.rules_for_grace_period.as_std();
    rule_opts.notification_queue_capacity = opts.notification_queue_capacity;
    let rule_manager = rules::RuleManager::new(rule_opts);
    if let Err(e) = rule_manager.apply_config(&current).await {
        error!(filename = %opts.config_file.display(), err = %e, "Error loading rules");
        scrapes.stop().await;
        syncer.abort();
        compactor.abort();
        let _ = store.close();
        let _ = stop_tx.send(());
        return ExitCode::FAILURE;
    }
    state.api().set_rule_manager(rule_manager.clone());
    metrics.add_source(Arc::new(RuleMetrics(rule_manager.clone())));
    state.set_ready(true);
    info!("Server is ready to receive web requests.");

    loop {
        let reload_reply = tokio::select! {
            _ = hup.recv() => None,
            _ = term.recv() => { info!("Received SIGTERM, exiting gracefully..."); break; }
            _ = int.recv() => { info!("Received SIGINT, exiting gracefully..."); break; }
            req = lifecycle_rx.recv() => match req {
                Some(LifecycleRequest::Reload(reply)) => Some(reply),
                Some(LifecycleRequest::Quit) | None => { info!("Received termination request via web service, exiting gracefully..."); break; }
            },
        };
        let outcome = match load_config(&opts) {
            Ok(c) => match async {
                // Remote write first: its errors are configuration errors, found before
                // anything changes; then scraping.
                apply_remote_write(&remote_write, &c).await?;
                scrapes.apply_config(&c).await.map_err(|e| e.to_string())?;
                rule_manager.apply_config(&c).await
            }
            .await
            {
                Ok(()) => {
                    let wanted = opts.max_exemplars(&c);
                    if wanted != max_exemplars {
                        let kept = store.set_max_exemplars(wanted);
                        info!(
                            from = max_exemplars,
                            to = wanted,
                            kept,
                            "Exemplar storage resized"
                        );
                        max_exemplars = wanted;
                    }
                    state.api().set_external_labels(external_labels(&c));
                    state.api().set_config_yaml(shown_config(&opts));
                    current = c;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        metrics.config_loaded(outcome.is_ok());
        if let Err(e) = &outcome {
            error!(filename = %opts.config_file.display(), err = %e, "Error reloading config");
        }
        if let Some(reply) = reload_reply {
            let _ = reply.send(outcome);
        }
    }

    state.set_ready(false);
    // Scrapes stop before the storage closes (no stale markers at shutdown, as in Prometheus).
    scrapes.stop().await;
    // Rule groups stop; queued notifications are still sent.
    rule_manager.stop().await;
    // Queues flush what they can within the flush deadline; the rest stays in the WAL.
    remote_write.stop().await;
    syncer.abort();
    // Closing waits for a compaction in progress.
    compactor.abort();
    if let Err(e) = store.close() {
        error!(err = %e, "Closing storage failed");
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(err = %e, "HTTP server stopped with an error"),
        Err(e) => error!(err = %e, "HTTP server task failed"),
    }
    drop(current);
    info!("See you next time!");
    ExitCode::SUCCESS
}
