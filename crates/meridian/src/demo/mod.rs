//! `meridian demo`: the multi-cluster topology of the seeds, on loopback, in one command.
//!
//! Three simulated clusters (`east`, `west`, `south`), each with synthetic application pods
//! ([`pods`]) found through file discovery (pods come and go) and a cluster-local Meridian
//! scraping them with `cluster` as external label; a central Meridian that federates from
//! `east` and `west` (`/federate` with `match[]`, honor_labels) and receives `remote_write`
//! from `south`, whose Meridian runs in agent mode (scrape and remote-write only). Every server speaks HTTPS with certificates from a CA made at start-up
//! ([`pki`]) and asks for basic auth. The servers are child processes of this one (the same
//! binary, `server` subcommand); Ctrl-C stops them and removes the data directory unless one
//! was given.

mod pki;
mod pods;

use crate::cli::DemoOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Pods per cluster, and how often one of them is replaced by a new one.
const PODS_PER_CLUSTER: usize = 4;
const POD_TURNOVER: Duration = Duration::from_secs(20);
const USER: &str = "demo";

/// One server of the topology.
struct Node {
    name: &'static str,
    addr: SocketAddr,
    child: Option<Child>,
}

impl Node {
    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// Everything that must be stopped or removed at the end.
struct Demo {
    nodes: Vec<Node>,
    dir: PathBuf,
    remove_dir: bool,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                // SIGTERM first so each server shuts down cleanly, then make sure.
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub fn run(opts: DemoOptions) -> ExitCode {
    match run_inner(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(opts: DemoOptions) -> Result<(), String> {
    let (dir, remove_dir) = match &opts.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            (d.clone(), false)
        }
        None => {
            let d = std::env::temp_dir().join(format!("meridian-demo-{}", std::process::id()));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            (d, true)
        }
    };
    let mut demo = Demo {
        nodes: Vec::new(),
        dir: dir.clone(),
        remove_dir,
    };
    let password = pki::random_token();
    let files = pki::write_all(&dir, USER, &password)?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the meridian binary: {e}"))?;

    // Synthetic pods of each cluster, published through file discovery.
    let clusters = ["east", "west", "south"];
    let mut fleets = Vec::new();
    for (i, c) in clusters.iter().enumerate() {
        let sd = dir.join(format!("{c}-pods.json"));
        fleets.push(pods::Fleet::start(c, i as u64, PODS_PER_CLUSTER, &sd)?);
    }

    let central_addr = free_addr().map_err(|e| e.to_string())?;
    let mut addrs = Vec::new();
    for _ in clusters {
        addrs.push(free_addr().map_err(|e| e.to_string())?);
    }
    for (i, c) in clusters.iter().enumerate() {
        let remote_write = if *c == "south" {
            format!(
                "remote_write:\n  - url: https://{central_addr}/api/v1/write\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: {USER}\n      password_file: {pw}\n    queue_config:\n      batch_send_deadline: 1s\n",
                ca = files.ca.display(),
                pw = files.password.display(),
            )
        } else {
            String::new()
        };
        let config = format!(
            "# Cluster-local server of the simulated cluster {c}.\nglobal:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n  external_labels:\n    cluster: {c}\nscrape_configs:\n  - job_name: app\n    file_sd_configs:\n      - files: ['{sd}']\n        refresh_interval: 5s\n{remote_write}",
            sd = dir.join(format!("{c}-pods.json")).display(),
        );
        let node = start_node(
            &exe,
            &dir,
            clusters[i],
            addrs[i],
            &config,
            &files.web_config,
            if *c == "south" {
                Mode::Agent
            } else {
                Mode::Server
            },
        )?;
        demo.nodes.push(node);
    }
    let mut federate = String::new();
    for (i, c) in clusters.iter().enumerate().take(2) {
        federate.push_str(&format!(
            "  - job_name: federate-{c}\n    honor_labels: true\n    track_timestamps_staleness: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"app\"}}']\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: {USER}\n      password_file: {pw}\n    static_configs:\n      - targets: ['{addr}']\n",
            ca = files.ca.display(),
            pw = files.password.display(),
            addr = addrs[i],
        ));
    }
    let central_config = format!(
        "# Central server: federates east and west, receives remote_write from south.\nglobal:\n  scrape_interval: 5s\n  evaluation_interval: 5s\nscrape_configs:\n{federate}"
    );
    let central = start_node(
        &exe,
        &dir,
        "central",
        central_addr,
        &central_config,
        &files.web_config,
        Mode::Receiver,
    )?;
    demo.nodes.push(central);

    let client = pki::client(&files, USER, &password)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        for n in &demo.nodes {
            wait_ready(&client, n).await?;
        }
        Ok::<(), String>(())
    })?;

    let central_url = demo.nodes[3].url();
    println!("Meridian demo: three simulated clusters and a central server on 127.0.0.1.");
    println!("Data and configurations: {}", dir.display());
    for (i, c) in clusters.iter().enumerate() {
        let role = if *c == "south" {
            "agent mode: scrapes and remote-writes to central"
        } else {
            "federated by central"
        };
        println!("cluster {c}: {} ({role})", demo.nodes[i].url());
    }
    println!("central: {central_url}");
    println!("Credentials: user {USER}, password {password}");
    println!("CA certificate: {}", files.ca.display());
    println!("Try, once a few scrapes have happened (about 30 s):");
    for q in [
        "sum by (cluster) (rate(http_requests_total[1m]))",
        "histogram_quantile(0.9, sum by (cluster, le) (rate(http_request_duration_seconds_bucket[1m])))",
        "count by (cluster) (up{job=\"app\"} == 1)",
    ] {
        println!(
            "  curl -s --cacert {} -u {USER}:{password} {central_url}/api/v1/query --data-urlencode '{}'",
            files.ca.display(),
            format_args!("query={q}")
        );
    }
    println!(
        "Ctrl-C stops everything{}.",
        if remove_dir {
            " and removes the data"
        } else {
            ""
        }
    );

    // Pods come and go until the demo is stopped.
    rt.block_on(async {
        let mut turnover = tokio::time::interval(POD_TURNOVER);
        turnover.tick().await;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = turnover.tick() => {
                    for f in &mut fleets {
                        if let Err(e) = f.replace_one() {
                            eprintln!("meridian demo: replacing a pod: {e}");
                        }
                    }
                }
                _ = watch_children(&mut demo.nodes) => {
                    return Err("a server of the demo stopped; see its log in the data directory".to_string());
                }
            }
        }
        Ok(())
    })?;
    println!("Stopping the demo...");
    drop(fleets);
    drop(demo);
    Ok(())
}

/// Resolves when one of the servers has exited.
async fn watch_children(nodes: &mut [Node]) {
    loop {
        for n in nodes.iter_mut() {
            if let Some(c) = n.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a server of the demo runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A cluster-local server (federated by the central one).
    Server,
    /// A cluster-local agent (`--agent`): scrapes and remote-writes only.
    Agent,
    /// The central server, which also receives remote write.
    Receiver,
}

fn start_node(
    exe: &Path,
    dir: &Path,
    name: &'static str,
    addr: SocketAddr,
    config: &str,
    web_config: &Path,
    mode: Mode,
) -> Result<Node, String> {
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let log_path = dir.join(format!("{name}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    let data = dir.join(format!("{name}-data"));
    cmd.arg("server")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(match mode {
            Mode::Agent => format!("--storage.agent.path={}", data.display()),
            Mode::Server | Mode::Receiver => format!("--storage.tsdb.path={}", data.display()),
        })
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--web.config.file={}", web_config.display()))
        .arg("--web.enable-lifecycle")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    match mode {
        Mode::Receiver => {
            cmd.arg("--web.enable-remote-write-receiver");
        }
        Mode::Agent => {
            cmd.arg("--agent");
        }
        Mode::Server => {}
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting the {name} server: {e}"))?;
    Ok(Node {
        name,
        addr,
        child: Some(child),
    })
}

async fn wait_ready(client: &httpclient::HttpClient, n: &Node) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{}/-/ready", n.url());
    loop {
        if let Ok(req) = client.request(httpclient::reqwest::Method::GET, &url)
            && let Ok(resp) = req.send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the {} server did not become ready (see {}.log in the data directory)",
                n.name, n.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
