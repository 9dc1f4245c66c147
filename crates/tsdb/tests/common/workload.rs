//! A realistic scrape workload for size measurements: per target, node-exporter-like counters
//! (CPU seconds, network bytes, requests, rarely moving error counters), gauges (memory,
//! load, temperatures, filesystem free, scrape duration), classic histogram buckets, and
//! constant series (`up`, build info, filesystem sizes), scraped every
//! 15 s with timestamps aligned to the scrape interval (as Meridian's scrape loop does).
//!
//! Shared by the bytes-per-sample test and example.

#![allow(dead_code)]

use model::labels::Labels;

pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `targets` scrape targets, samples every `interval_ms` over `[start, start + duration)`;
/// `jitter_ms` > 0 adds uniform timestamp jitter (to show its cost).
pub fn generate(
    targets: usize,
    start: i64,
    duration: i64,
    interval_ms: i64,
    jitter_ms: i64,
) -> Vec<Series> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let n = (duration / interval_ms) as usize;
    let mut out = Vec::new();
    for t in 0..targets {
        let inst = format!("10.0.{}.{}:9100", t / 250, t % 250);
        let base = |name: &str, extra: &[(&str, String)]| {
            let mut pairs = vec![
                ("__name__", name.to_string()),
                ("instance", inst.clone()),
                ("job", "node".to_string()),
            ];
            for (k, v) in extra {
                pairs.push((k, v.clone()));
            }
            Labels::from_pairs(pairs).unwrap_or_default()
        };
        let mut kinds: Vec<(Labels, u8)> = Vec::new();
        for cpu in 0..4 {
            for mode in ["idle", "user", "system", "iowait"] {
                kinds.push((
                    base(
                        "node_cpu_seconds_total",
                        &[("cpu", cpu.to_string()), ("mode", mode.to_string())],
                    ),
                    0,
                ));
            }
        }
        for dev in ["eth0", "lo"] {
            kinds.push((
                base(
                    "node_network_receive_bytes_total",
                    &[("device", dev.into())],
                ),
                1,
            ));
            kinds.push((
                base(
                    "node_network_transmit_bytes_total",
                    &[("device", dev.into())],
                ),
                1,
            ));
        }
        for code in ["200", "404", "500"] {
            kinds.push((base("http_requests_total", &[("code", code.into())]), 2));
        }
        kinds.push((base("node_memory_MemAvailable_bytes", &[]), 3));
        kinds.push((base("node_memory_Cached_bytes", &[]), 3));
        kinds.push((base("node_load1", &[]), 4));
        kinds.push((base("node_load5", &[]), 4));
        for zone in 0..2 {
            kinds.push((
                base("node_thermal_zone_temp", &[("zone", zone.to_string())]),
                5,
            ));
        }
        kinds.push((
            base("node_filesystem_avail_bytes", &[("mountpoint", "/".into())]),
            3,
        ));
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
        ] {
            kinds.push((
                base("http_request_duration_seconds_bucket", &[("le", le.into())]),
                2,
            ));
        }
        kinds.push((base("http_request_duration_seconds_sum", &[]), 6));
        kinds.push((base("http_request_duration_seconds_count", &[]), 2));
        for dev in ["eth0", "lo"] {
            for what in ["errs", "drop"] {
                for dir in ["receive", "transmit"] {
                    let name = format!("node_network_{dir}_{what}_total");
                    kinds.push((base(&name, &[("device", dev.into())]), 8));
                }
            }
        }
        for mp in ["/", "/boot", "/var"] {
            kinds.push((
                base("node_filesystem_size_bytes", &[("mountpoint", mp.into())]),
                9,
            ));
            kinds.push((
                base("node_filesystem_files", &[("mountpoint", mp.into())]),
                9,
            ));
        }
        kinds.push((base("scrape_duration_seconds", &[]), 10));
        kinds.push((base("scrape_samples_scraped", &[]), 9));
        kinds.push((base("up", &[]), 7));
        kinds.push((
            base("node_exporter_build_info", &[("version", "1.7.0".into())]),
            7,
        ));
        for (labels, kind) in kinds {
            let mut v: f64 = match kind {
                3 => 4_000_000_000.0 + rng.below(1 << 30) as f64,
                9 => (rng.below(1 << 20) * 4096) as f64,
                5 => 45.0,
                _ => 0.0,
            };
            let mut samples = Vec::with_capacity(n);
            for i in 0..n {
                let mut ts = start + i as i64 * interval_ms;
                if jitter_ms > 0 {
                    ts += rng.below(jitter_ms as u64 * 2 + 1) as i64 - jitter_ms;
                }
                v = match kind {
                    // CPU seconds: 15 s of wall time spread over modes, 2 decimals.
                    0 => ((v + rng.below(1500) as f64 / 100.0) * 100.0).round() / 100.0,
                    1 => v + rng.below(2_000_000) as f64,
                    2 => v + rng.below(30) as f64,
                    3 => {
                        let d = rng.below(1 << 22) as f64 - (1 << 21) as f64;
                        ((v + d) / 4096.0).round() * 4096.0
                    }
                    4 => rng.below(400) as f64 / 100.0,
                    5 => 40.0 + rng.below(100) as f64 / 10.0,
                    6 => v + rng.below(3000) as f64 / 1000.0,
                    8 => v + if rng.below(200) == 0 { 1.0 } else { 0.0 },
                    9 => v,
                    10 => rng.below(1 << 20) as f64 / 1e8,
                    _ => 1.0,
                };
                samples.push((ts, v));
            }
            out.push(Series { labels, samples });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// The series as OpenMetrics text (for `promtool tsdb create-blocks-from openmetrics`).
pub fn openmetrics(series: &[Series]) -> String {
    let mut om = String::new();
    let mut last = String::new();
    for s in series {
        let name = s.labels.get("__name__").unwrap_or_default();
        if name != last {
            om.push_str(&format!("# TYPE {name} gauge\n"));
            last = name.to_string();
        }
        let lbls: Vec<String> = s
            .labels
            .iter()
            .filter(|p| &*p.name != "__name__")
            .map(|p| format!("{}=\"{}\"", p.name, p.value))
            .collect();
        let lbls = lbls.join(",");
        for (t, v) in &s.samples {
            om.push_str(&format!(
                "{name}{{{lbls}}} {v:?} {}.{:03}\n",
                t.div_euclid(1000),
                t.rem_euclid(1000)
            ));
        }
    }
    om.push_str("# EOF\n");
    om
}
