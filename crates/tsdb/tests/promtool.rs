//! Interoperability with Prometheus 2.42's own tools (Debian package `prometheus`):
//!
//! - a block written by Meridian is read by `promtool tsdb analyze` and `promtool tsdb dump`,
//!   which must report exactly the series and samples written;
//! - a block written by `promtool tsdb create-blocks-from openmetrics` is read by Meridian,
//!   which must return exactly the samples given to promtool.
//!
//! These tests fail (never skip) when promtool is missing.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use model::labels::Labels;
use model::matcher::{MatchOp, Matcher};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use storage::Querier;
use tsdb::block::{Block, BlockSpec, ChunkData, write_block};
use tsdb::chunkenc::{ENCODING_XOR, SAMPLES_PER_CHUNK, XorAppender};

/// (labels as Prometheus prints them) → samples (t, value bits).
type Expected = BTreeMap<String, Vec<(i64, u64)>>;

fn prom_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|p| format!("{}=\"{}\"", p.name, p.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool must be installed (Debian package `prometheus`)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A realistic 2h block: counters and gauges scraped every 15 s with a little jitter-free
/// alignment, cut into chunks of 120 samples.
fn synthetic_series() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let t0: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;
    let mut out = Vec::new();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for inst in 0..10 {
        for (metric, kind) in [
            ("http_requests_total", 0),
            ("process_resident_memory_bytes", 1),
            ("node_load1", 2),
        ] {
            for code in ["200", "500"] {
                if kind != 0 && code == "500" {
                    continue;
                }
                let mut pairs = vec![
                    ("__name__", metric.to_string()),
                    ("instance", format!("host-{inst}:9100")),
                    ("job", "node".to_string()),
                ];
                if kind == 0 {
                    pairs.push(("code", code.to_string()));
                }
                let labels = Labels::from_pairs(pairs).unwrap();
                let mut samples = Vec::new();
                let mut counter = 0.0;
                for i in 0..480i64 {
                    let t = t0 + i * 15_000;
                    let v = match kind {
                        0 => {
                            counter += (rand() % 50) as f64;
                            counter
                        }
                        1 => (200_000_000 + (rand() % 1_000_000) * 4096) as f64,
                        _ => (rand() % 400) as f64 / 100.0,
                    };
                    samples.push((t, v));
                }
                out.push((labels, samples));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn encode_chunks(samples: &[(i64, f64)]) -> Vec<ChunkData<'static>> {
    samples
        .chunks(usize::from(SAMPLES_PER_CHUNK))
        .map(|c| {
            let mut b = Vec::new();
            let mut a = XorAppender::new();
            for (t, v) in c {
                a.append(&mut b, *t, *v);
            }
            ChunkData {
                encoding: ENCODING_XOR,
                data: Cow::Owned(b),
                min_t: c[0].0,
                max_t: c[c.len() - 1].0,
            }
        })
        .collect()
}

/// Compares two sample sets, reporting the first differences compactly.
/// promtool prints every NaN as `NaN`, so the payload bits of NaNs (Go's `math.NaN()` is
/// `0x7ff8000000000001`, the staleness marker `0x7ff0000000000002`) cannot be compared through
/// its text output: both sides are compared with NaNs made canonical.
fn canonical_nans(e: &Expected) -> Expected {
    e.iter()
        .map(|(k, v)| {
            let v = v
                .iter()
                .map(|(t, b)| {
                    (
                        *t,
                        if f64::from_bits(*b).is_nan() {
                            f64::NAN.to_bits()
                        } else {
                            *b
                        },
                    )
                })
                .collect();
            (k.clone(), v)
        })
        .collect()
}

fn assert_same(got: &Expected, want: &Expected, what: &str) {
    let (got, want) = (&canonical_nans(got), &canonical_nans(want));
    if got == want {
        return;
    }
    let mut report = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            None => report.push(format!("missing {k} ({} samples)", w.len())),
            Some(g) if g != w => {
                let first = g.iter().zip(w).position(|(a, b)| a != b);
                report.push(format!(
                    "{k}: got {} samples, want {}; first difference at {first:?}: got {:?} want {:?}; got first/last {:?}/{:?} want {:?}/{:?}",
                    g.len(), w.len(),
                    first.and_then(|i| g.get(i)), first.and_then(|i| w.get(i)),
                    g.first(), g.last(), w.first(), w.last()
                ))
            }
            _ => {}
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) {
            report.push(format!("unexpected {k}"));
        }
    }
    let n = report.len();
    report.truncate(5);
    panic!("{what}: {n} series differ:\n{}", report.join("\n"));
}

fn parse_dump(text: &str) -> Expected {
    let mut got: Expected = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (rest, ts) = line.rsplit_once(' ').unwrap();
        let (labels, value) = rest.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap();
        got.entry(labels.to_string())
            .or_default()
            .push((ts.parse().unwrap(), v.to_bits()));
    }
    got
}

#[test]
fn promtool_reads_meridian_block() {
    let dir = tempfile::tempdir().unwrap();
    let series = synthetic_series();
    let labels: Vec<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
    let min_t = series[0].1[0].0;
    let spec = BlockSpec {
        min_time: min_t,
        max_time: min_t + 7_200_000,
        level: 1,
        ..Default::default()
    };
    let meta = write_block(dir.path(), &spec, &labels, |i, out| {
        out.extend(encode_chunks(&series[i].1));
        Ok(())
    })
    .unwrap()
    .unwrap();
    // promtool 2.42 opens the directory as a database and insists on a WAL directory.
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    let d = dir.path().to_str().unwrap();

    let analyze = promtool(&["tsdb", "analyze", d]);
    let total_samples: usize = series.iter().map(|(_, s)| s.len()).sum();
    assert!(
        analyze.contains(&format!("Block ID: {}", meta.ulid)),
        "{analyze}"
    );
    assert!(
        analyze.contains(&format!("Series: {}\n", series.len())),
        "{analyze}"
    );
    assert!(analyze.contains("Label names: 4\n"), "{analyze}");
    // __name__ (3) + instance (10) + job (1) + code (2).
    assert!(
        analyze.contains("Postings (unique label pairs): 16\n"),
        "{analyze}"
    );
    let pairs: usize = labels.iter().map(Labels::len).sum();
    assert!(
        analyze.contains(&format!("Postings entries (total label pairs): {pairs}\n")),
        "{analyze}"
    );

    let dump = promtool(&["tsdb", "dump", d]);
    let got = parse_dump(&dump);
    let want: Expected = series
        .iter()
        .map(|(l, s)| {
            (
                prom_string(l),
                s.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "promtool dump returns exactly the samples written"
    );
    println!(
        "promtool agreement: {} series, {} samples identical",
        got.len(),
        total_samples
    );
}

/// Samples of every series in a Meridian block, keyed like promtool prints them.
fn read_block(dir: &Path) -> Expected {
    let b = Arc::new(Block::open(dir).unwrap());
    let q = b.querier(i64::MIN, i64::MAX);
    let mut got: Expected = BTreeMap::new();
    for s in q
        .select(
            true,
            None,
            &[Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()],
        )
        .unwrap()
    {
        let s = s.unwrap();
        let mut it = s.samples;
        let e = got.entry(prom_string(&s.labels)).or_default();
        while it.next().is_some() {
            let (t, v) = it.at();
            e.push((t, v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    got
}

#[test]
fn meridian_reads_promtool_block() {
    let dir = tempfile::tempdir().unwrap();
    let series = synthetic_series();
    let mut om = String::new();
    // OpenMetrics wants a metric family's samples together; timestamps are in seconds.
    let mut last_name = String::new();
    for (l, samples) in &series {
        let name = l.get("__name__").unwrap();
        if name != last_name {
            om.push_str(&format!("# TYPE {name} gauge\n"));
            last_name = name.to_string();
        }
        let lbls: Vec<String> = l
            .iter()
            .filter(|p| &*p.name != "__name__")
            .map(|p| format!("{}=\"{}\"", p.name, p.value))
            .collect();
        for (t, v) in samples {
            om.push_str(&format!(
                "{name}{{{}}} {v:?} {}.{:03}\n",
                lbls.join(","),
                t / 1000,
                t % 1000
            ));
        }
    }
    om.push_str("# EOF\n");
    let input = dir.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.path().join("out");
    promtool(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let mut blocks: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    blocks.sort();
    assert!(!blocks.is_empty());
    let mut got: Expected = BTreeMap::new();
    for b in &blocks {
        for (k, mut v) in read_block(b) {
            got.entry(k).or_default().append(&mut v);
        }
    }
    for v in got.values_mut() {
        v.sort_unstable();
    }
    let want: Expected = series
        .iter()
        .map(|(l, s)| {
            (
                prom_string(l),
                s.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
            )
        })
        .collect();
    assert_eq!(got, want, "Meridian reads exactly what promtool wrote");
    println!(
        "read {} promtool blocks: {} series identical",
        blocks.len(),
        got.len()
    );
}

/// Every sample of a Meridian database, keyed like promtool prints them.
fn read_db(db: &tsdb::Db) -> Expected {
    use storage::Queryable;
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut got: Expected = BTreeMap::new();
    for s in q
        .select(
            true,
            None,
            &[Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()],
        )
        .unwrap()
    {
        let s = s.unwrap();
        let mut it = s.samples;
        let e = got.entry(prom_string(&s.labels)).or_default();
        while it.next().is_some() {
            let (t, v) = it.at();
            e.push((t, v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    got
}

#[test]
fn promtool_reads_meridian_data_directory() {
    use storage::Appendable;
    let dir = tempfile::tempdir().unwrap();
    let series = synthetic_series();
    let mut opts = tsdb::DbOptions::default();
    opts.head.chunk_range = 1_800_000; // 30 min blocks so that 2h of data yields several
    let want = {
        let db = tsdb::Db::open(dir.path(), opts.clone()).unwrap();
        let n = series[0].1.len();
        for k in 0..n {
            let mut app = db.appender();
            for (l, s) in &series {
                app.append(None, l, s[k].0, s[k].1).unwrap();
            }
            app.commit().unwrap();
            if k % 40 == 0 {
                db.compact().unwrap();
            }
        }
        db.compact().unwrap();
        assert!(db.blocks().len() >= 2);
        assert!(
            db.head().time_range().is_some(),
            "part of the data stays in the head/WAL"
        );
        // Delete one series' samples over the last block and the head: a block tombstones
        // file and a WAL tombstones record, both of which Prometheus must honour.
        let (head_min, head_max) = db.head().time_range().unwrap();
        let del = (head_min - 600_000, head_min + (head_max - head_min) / 2);
        let victim = series[5].0.clone();
        let n = db
            .delete_series(
                del.0,
                del.1,
                &victim
                    .iter()
                    .map(|p| Matcher::equal(p.name.to_string(), p.value.to_string()))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(n, 2, "one block and the head");
        let mut want: Expected = series
            .iter()
            .map(|(l, s)| {
                (
                    prom_string(l),
                    s.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
                )
            })
            .collect();
        want.get_mut(&prom_string(&victim))
            .unwrap()
            .retain(|(t, _)| *t < del.0 || *t > del.1);
        assert_eq!(read_db(&db), want);
        db.close().unwrap();
        want
    };
    let d = dir.path().to_str().unwrap();
    // promtool reads the blocks, the WAL checkpoint and the WAL segments (and the head chunk
    // files) the way Prometheus would on start-up.
    let got = parse_dump(&promtool(&["tsdb", "dump", d]));
    assert_eq!(
        got, want,
        "promtool sees exactly Meridian's samples (blocks + WAL)"
    );
    let analyze = promtool(&["tsdb", "analyze", d]);
    assert!(
        analyze.contains(&format!("Series: {}\n", series.len())),
        "{analyze}"
    );
}

/// Stops a child process by its id (SIGTERM, then SIGKILL after 10 s) and reaps it.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn meridian_opens_a_prometheus_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address={addr}"))
        // Tiny blocks so that a few seconds of self-scraping leave blocks and a WAL.
        .args([
            "--storage.tsdb.min-block-duration=2s",
            "--storage.tsdb.max-block-duration=2s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus must be installed (Debian package `prometheus`)");
    let reaper = Reaper(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let blocks = std::fs::read_dir(&data)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join("meta.json").exists())
                    .count()
            })
            .unwrap_or(0);
        if blocks >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus wrote no blocks"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(reaper); // graceful shutdown: WAL synced, lock released

    let d = data.to_str().unwrap();
    let want = parse_dump(&promtool(&["tsdb", "dump", d]));
    assert!(
        want.len() > 50,
        "prometheus scraped itself ({} series)",
        want.len()
    );
    let db = tsdb::Db::open(&data, tsdb::DbOptions::default()).unwrap();
    assert!(!db.blocks().is_empty());
    let got = read_db(&db);
    assert_same(
        &got,
        &want,
        "Meridian reads Prometheus' blocks and WAL exactly as promtool does",
    );
    let samples: usize = got.values().map(Vec::len).sum();
    println!(
        "prometheus data dir: {} blocks, {} series, {samples} samples identical",
        db.blocks().len(),
        got.len()
    );
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn prometheus_serves_a_meridian_data_directory() {
    use storage::Appendable;
    let dir = tempfile::tempdir().unwrap();
    let series = synthetic_series();
    let mdir = dir.path().join("meridian");
    let mut opts = tsdb::DbOptions::default();
    opts.head.chunk_range = 1_800_000;
    {
        let db = tsdb::Db::open(&mdir, opts).unwrap();
        for k in 0..series[0].1.len() {
            let mut app = db.appender();
            for (l, s) in &series {
                app.append(None, l, s[k].0, s[k].1).unwrap();
            }
            app.commit().unwrap();
            db.compact().unwrap();
        }
        assert!(db.blocks().len() >= 2);
    }
    // Prometheus starts on a copy (it rewrites the head chunks and may compact).
    let pdir = dir.path().join("prometheus");
    copy_tree(&mdir, &pdir);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\nscrape_configs: []\n").unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", pdir.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus must be installed (Debian package `prometheus`)");
    let _reaper = Reaper(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(&addr, "/-/ready").map(|r| r.0) != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus did not become ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // A range selector in an instant query returns the raw samples.
    let end = series[0].1.last().unwrap().0;
    let path = format!(
        "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D%5B3h%5D&time={}.{:03}",
        end / 1000,
        end % 1000
    );
    let (code, body) = http_get(&addr, &path).unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got: Expected = BTreeMap::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let mut pairs: Vec<(String, String)> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        pairs.sort();
        let key = format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let samples = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                (t, v.to_bits())
            })
            .collect();
        got.insert(key, samples);
    }
    let want: Expected = series
        .iter()
        .map(|(l, s)| {
            (
                prom_string(l),
                s.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
            )
        })
        .collect();
    assert_same(
        &got,
        &want,
        "Prometheus answers from Meridian's data directory",
    );
    println!(
        "prometheus on a Meridian data directory: {} series, {} samples identical",
        got.len(),
        got.values().map(Vec::len).sum::<usize>()
    );
}

/// Exemplar records are Prometheus' exactly: Prometheus 2.42 (with exemplar storage) starts on
/// a Meridian data directory whose WAL holds exemplars and serves them, `promtool tsdb dump`
/// still reads that WAL, and Meridian restores the exemplars Prometheus wrote to its own WAL
/// while scraping an OpenMetrics target.
#[test]
fn exemplar_records_are_shared_with_prometheus() {
    use std::io::{Read, Write};
    use storage::{Appendable, Exemplar};
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("meridian");
    let now = model::sample::now_ms() / 1000 * 1000;
    let series = |i: u32| {
        Labels::from_pairs([
            ("__name__", "req_total".to_string()),
            ("instance", format!("h{i}")),
        ])
        .unwrap()
    };
    {
        let mut opts = tsdb::DbOptions::default();
        opts.head.max_exemplars = 100;
        let db = tsdb::Db::open(&mdir, opts).unwrap();
        for k in 0..3i64 {
            let mut app = db.appender();
            for i in 0..2 {
                let t = now - 60_000 + k * 15_000;
                let r = app.append(None, &series(i), t, k as f64).unwrap();
                let e = Exemplar {
                    labels: Labels::from_pairs([("trace_id", format!("m{i}-{k}"))]).unwrap(),
                    value: 0.25 * k as f64,
                    ts: t - 5,
                };
                app.append_exemplar(Some(r), &series(i), &e).unwrap();
            }
            app.commit().unwrap();
        }
        db.close().unwrap();
    }
    let dump = promtool(&["tsdb", "dump", mdir.to_str().unwrap()]);
    assert_eq!(
        dump.lines().filter(|l| l.starts_with("{")).count(),
        6,
        "{dump}"
    );

    // Prometheus serves Meridian's exemplars from its WAL.
    let pdir = dir.path().join("prometheus");
    copy_tree(&mdir, &pdir);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // An OpenMetrics target for the other direction, scraped by that same Prometheus.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let body = "# TYPE om counter\nom_total 1 # {trace_id=\"p1\",span=\"x\"} 0.5 1700000000.123\n# EOF\n";
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: om\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", pdir.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--enable-feature=exemplar-storage")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus must be installed (Debian package `prometheus`)");
    let reaper = Reaper(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(&addr, "/-/ready").map(|r| r.0) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "prometheus not ready");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, body) = http_get(&addr, "/api/v1/query_exemplars?query=req_total").unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got: Vec<(String, String, i64)> = Vec::new();
    for s in v["data"].as_array().unwrap() {
        for e in s["exemplars"].as_array().unwrap() {
            got.push((
                s["seriesLabels"]["instance"].as_str().unwrap().to_string(),
                e["labels"]["trace_id"].as_str().unwrap().to_string(),
                (e["timestamp"].as_f64().unwrap() * 1000.0).round() as i64,
            ));
        }
    }
    got.sort();
    let mut want = Vec::new();
    for i in 0..2 {
        for k in 0..3i64 {
            want.push((
                format!("h{i}"),
                format!("m{i}-{k}"),
                now - 60_000 + k * 15_000 - 5,
            ));
        }
    }
    want.sort();
    assert_eq!(got, want, "Prometheus replayed Meridian's exemplar records");
    // Wait for Prometheus to have scraped (and logged) the target's exemplar.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = http_get(&addr, "/api/v1/query_exemplars?query=om_total").unwrap();
        if body.contains("p1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus stored no exemplar: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(reaper); // graceful shutdown: WAL written and synced

    // Meridian restores every exemplar of Prometheus' WAL (its own and the scraped one).
    let mut opts = tsdb::DbOptions::default();
    opts.head.max_exemplars = 100;
    let db = tsdb::Db::open(&pdir, opts).unwrap();
    let all = [vec![
        Matcher::new(MatchOp::RegexMatch, "__name__", "req_total|om_total").unwrap(),
    ]];
    let found =
        storage::ExemplarQueryable::select_exemplars(&db, i64::MIN, i64::MAX, &all).unwrap();
    let om = found
        .iter()
        .find(|r| r.series_labels.get("__name__") == Some("om_total"))
        .expect("the exemplar Prometheus scraped");
    assert_eq!(om.exemplars[0].ts, 1_700_000_000_123);
    assert_eq!(om.exemplars[0].value, 0.5);
    assert_eq!(
        om.exemplars[0].labels,
        Labels::from_static(&[("span", "x"), ("trace_id", "p1")])
    );
    let ours: usize = found
        .iter()
        .filter(|r| r.series_labels.get("__name__") == Some("req_total"))
        .map(|r| r.exemplars.len())
        .sum();
    assert_eq!(
        ours, 6,
        "Meridian's own records are still read after Prometheus ran on the directory"
    );
    println!("exemplar records: read both ways between Prometheus 2.42 and Meridian");
}
