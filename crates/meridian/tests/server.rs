//! The `meridian` binary as a user runs it: start-up with a configuration, readiness, its own
//! `/metrics` (checked by the real `promtool`), reload by SIGHUP and by `POST /-/reload` (a bad
//! configuration is reported and the old one stays), `/-/quit`, and `check` subcommands.
//! Every server listens on 127.0.0.1 on a port picked here and is stopped by its PID.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// A free loopback port (bound then released; the race with other processes is negligible here).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Minimal HTTP/1.1 client: returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, dechunk(&body)))
}

/// Undoes chunked transfer encoding when present (axum chunks streamed bodies).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
            return body.to_string();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_string();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(config: &Path, extra: &[&str]) -> Server {
        let addr = free_addr();
        // The data directory sits beside the configuration, inside the test's temporary dir.
        let data = config
            .parent()
            .map_or_else(|| Path::new("data").to_path_buf(), |d| d.join("data"));
        let child = Command::new(BIN)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start meridian");
        let s = Server { child, addr };
        let prefix = extra
            .iter()
            .find_map(|a| a.strip_prefix("--web.route-prefix="))
            .unwrap_or("");
        s.wait_ready_at(&format!("{prefix}/-/ready"));
        s
    }

    fn wait_ready_at(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(self.addr, "GET", path) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("meridian did not become ready on {}", self.addr);
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http(self.addr, "GET", "/metrics").ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// Waits for the process to exit by itself; returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GOOD: &str = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:9090']\n";

#[test]
fn serves_health_and_metrics_that_promtool_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, GOOD).expect("write config");
    let mut s = Server::start(&cfg, &[]);
    let (code, body) = http(s.addr, "GET", "/-/healthy").expect("healthy");
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = http(s.addr, "GET", "/metrics").expect("metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}\n{metrics}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The lifecycle API is off by default.
    assert_eq!(http(s.addr, "POST", "/-/quit").expect("quit").0, 403);
    s.signal("TERM");
    assert_eq!(s.wait_exit(), Some(0));
}

#[test]
fn reloads_keep_the_old_config_when_the_new_one_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, GOOD).expect("write config");
    let mut s = Server::start(&cfg, &["--web.enable-lifecycle"]);
    assert_eq!(
        s.metric("prometheus_config_last_reload_successful"),
        Some(1.0)
    );

    std::fs::write(&cfg, "global:\n  scrape_interval: soon\n").expect("write bad config");
    s.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("prometheus_config_last_reload_successful") != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP reload of a bad config was not reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = http(s.addr, "POST", "/-/reload").expect("reload");
    assert_eq!(code, 500);
    assert!(
        body.contains("prometheus.yml:2"),
        "error should name file and line: {body}"
    );
    assert_eq!(http(s.addr, "GET", "/-/ready").expect("ready").0, 200);

    std::fs::write(&cfg, GOOD).expect("write good config");
    assert_eq!(http(s.addr, "POST", "/-/reload").expect("reload").0, 200);
    assert_eq!(
        s.metric("prometheus_config_last_reload_successful"),
        Some(1.0)
    );

    assert_eq!(http(s.addr, "POST", "/-/quit").expect("quit").0, 200);
    assert_eq!(s.wait_exit(), Some(0));
}

#[test]
fn a_bad_config_at_start_up_fails_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address={}", free_addr()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:3"), "{err}");
    assert!(err.contains("scrape_intervall"), "{err}");
}

#[test]
fn check_config_and_check_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yml");
    std::fs::write(&good, GOOD).expect("write");
    let out = Command::new(BIN)
        .args(["check", "config"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "global:\n  scrape_timeout: 1m\n  scrape_interval: 10s\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["check", "config"])
        .arg(&good)
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));

    let check_metrics = |payload: &str, format: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["check", "metrics"]);
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(payload.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = check_metrics("# TYPE a counter\na_total 1\n# EOF\n", None);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("OpenMetrics"), "{text}");
    let (code, text) = check_metrics("a 1\nb{x=1} 2\n", Some("text"));
    assert_eq!(code, Some(1));
    assert!(text.contains("2:5:"), "{text}");
    let (code, _) = check_metrics("# TYPE a counter\na 1\n# EOF\n", Some("openmetrics"));
    assert_eq!(code, Some(1));
}

#[test]
fn a_corrupt_wal_is_repaired_and_counted_in_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, GOOD).expect("write config");
    // Write a WAL through the storage engine, then damage its tail.
    {
        use storage::Appendable;
        let db =
            tsdb::Db::open(&dir.path().join("data"), tsdb::DbOptions::default()).expect("open");
        for b in 0..50i64 {
            let mut app = db.appender();
            let l = model::labels::Labels::from_static(&[("__name__", "up"), ("job", "x")]);
            app.append(None, &l, b * 1000, 1.0).expect("append");
            app.commit().expect("commit");
        }
    }
    let wal = dir.path().join("data/wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .expect("wal")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    let seg = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 0)
        .expect("segment");
    let mut bytes = std::fs::read(seg).expect("read");
    let n = bytes.len();
    bytes[n - 5] ^= 0xff;
    std::fs::write(seg, &bytes).expect("write");

    let mut s = Server::start(&cfg, &[]);
    assert_eq!(s.metric("prometheus_tsdb_wal_corruptions_total"), Some(1.0));
    assert!(
        s.metric("meridian_tsdb_wal_bytes_dropped_total")
            .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(s.metric("prometheus_tsdb_head_series"), Some(1.0));
    s.signal("TERM");
    assert_eq!(s.wait_exit(), Some(0));
}

#[test]
fn status_config_hides_secrets_and_follows_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: secured\n    basic_auth:\n      username: alice\n      password: Pa55-word-1\n    static_configs:\n      - targets: ['127.0.0.1:1']\n",
    )
    .unwrap();
    let s = Server::start(&cfg, &[]);
    let (code, body) = http(s.addr, "GET", "/api/v1/status/config").unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let yaml = v["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("password: <secret>"), "{yaml}");
    assert!(yaml.contains("username: alice"), "{yaml}");
    assert!(!body.contains("Pa55"), "{body}");
    std::fs::write(&cfg, GOOD.replace("job_name: self", "job_name: renamed")).unwrap();
    s.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http(s.addr, "GET", "/api/v1/status/config").unwrap();
        if body.contains("job_name: renamed") {
            break;
        }
        assert!(Instant::now() < deadline, "reload not shown: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rules_run_and_show_in_the_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("rules.yml");
    std::fs::write(
        &rules_file,
        "groups:\n  - name: demo\n    interval: 1s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels:\n          severity: none\n        annotations:\n          summary: 'value {{ $value }}'\n",
    )
    .unwrap();
    let cfg = dir.path().join("prometheus.yml");
    // The server scrapes itself (its own address is only known once started: use a fixed
    // target that fails; `up` exists either way).
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:\n  - job_name: nothing\n    static_configs:\n      - targets: ['127.0.0.1:1']\n",
            rules_file.display()
        ),
    )
    .unwrap();
    let s = Server::start(&cfg, &["--web.route-prefix=/prom"]);
    // Everything lives under the route prefix.
    assert_eq!(http(s.addr, "GET", "/prom/-/healthy").unwrap().0, 200);
    assert_ne!(http(s.addr, "GET", "/-/healthy").unwrap().0, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http(s.addr, "GET", "/prom/api/v1/query?query=job:up:sum").unwrap();
        if body.contains(r#""job":"nothing""#) {
            break;
        }
        assert!(Instant::now() < deadline, "no recorded series: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = http(s.addr, "GET", "/prom/api/v1/rules").unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = &v["data"]["groups"][0];
    assert_eq!(group["name"], "demo", "{body}");
    assert_eq!(group["rules"][0]["type"], "recording", "{body}");
    assert_eq!(group["rules"][1]["type"], "alerting", "{body}");
    let (_, body) = http(s.addr, "GET", "/prom/api/v1/rules?type=record").unwrap();
    assert!(!body.contains("AlwaysFiring"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http(s.addr, "GET", "/prom/api/v1/alerts").unwrap();
        if body.contains(r#""state":"firing""#) {
            assert!(body.contains(r#""summary":"value 1""#), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no firing alert: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, metrics) = http(s.addr, "GET", "/prom/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("prometheus_rule_group_rules")),
        "{metrics}"
    );
}

#[test]
fn check_rules_agrees_on_good_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(x)\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(x\n",
    )
    .unwrap();
    let run = |f: &Path| {
        Command::new(BIN)
            .args(["check", "rules"])
            .arg(f)
            .output()
            .unwrap()
    };
    assert!(run(&good).status.success());
    let out = run(&bad);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("bad.yml:5:"), "{text}");
}
