//! `meridian demo` as a new user runs it: it prints the central server's URL on a line of its
//! own, and within a minute or so the central server's API (HTTPS with the demo's CA, basic
//! auth) holds series from all three clusters with distinct `cluster` labels — two federated,
//! one remote-written — and the example queries return data. SIGTERM stops everything.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_three_clusters_at_the_central_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("demo")
        .arg(format!("--data-dir={}", data.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let central = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| panic!("no `central:` line; printed so far: {printed:#?}"));
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("central: ") {
            break url.trim().to_string();
        }
    };
    assert!(central.starts_with("https://127.0.0.1:"), "{central}");
    let password = std::fs::read_to_string(data.join("password")).unwrap();
    let yaml = format!(
        "scrape_configs:\n  - job_name: t\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: demo\n      password: {password}\n",
        data.join("ca.pem").display()
    );
    let cfg = config::Config::from_str(&yaml, "test").unwrap();
    let client = httpclient::HttpClient::new(&cfg.scrape_configs[0].http_client, "test").unwrap();
    let query = |q: &'static str| {
        let client = client.clone();
        let encoded: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = format!("{central}/api/v1/query?query={encoded}");
        async move {
            let resp = client
                .request(httpclient::reqwest::Method::GET, &url)
                .unwrap()
                .send()
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
            v["data"]["result"].as_array().cloned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let clusters = loop {
        let result = query("count by (cluster) (http_requests_total)")
            .await
            .unwrap_or_default();
        let mut clusters: Vec<String> = result
            .iter()
            .filter_map(|r| r["metric"]["cluster"].as_str().map(str::to_string))
            .collect();
        clusters.sort();
        if clusters.len() == 3 || Instant::now() > deadline {
            break clusters;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(clusters, ["east", "south", "west"], "printed: {printed:#?}");
    // The printed example queries return data for every cluster once rates have two samples.
    let deadline = Instant::now() + Duration::from_secs(60);
    for q in [
        "sum by (cluster) (rate(http_requests_total[1m]))",
        "histogram_quantile(0.9, sum by (cluster, le) (rate(http_request_duration_seconds_bucket[1m])))",
    ] {
        loop {
            let n = query(q).await.map_or(0, |r| r.len());
            if n == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "{q}: {n} results");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    // Ctrl-C / SIGTERM: the demo and its servers stop.
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop on SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let central_port = central.rsplit(':').next().unwrap().to_string();
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{central_port}")).is_err(),
        "the central server still listens after the demo stopped"
    );
}
