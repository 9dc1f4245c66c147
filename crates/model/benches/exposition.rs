//! Parse and encode throughput of the exposition formats on two synthetic payloads:
//! a node_exporter-like page of ~10k lines (short label sets) and a page of series with long
//! label sets (Kubernetes-style pod labels). Criterion reports MB/s; the sample counts are
//! printed so that ns per sample can be derived from the time per iteration.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::exposition::{Entry, Format, Parser, TextEncoder};
use std::fmt::Write;
use std::hint::black_box;

/// ~10k lines shaped like node_exporter's output: families with HELP/TYPE, a few labels each.
fn node_exporter_like() -> String {
    let mut s = String::new();
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    writeln!(
        s,
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode."
    )
    .ok();
    writeln!(s, "# TYPE node_cpu_seconds_total counter").ok();
    for cpu in 0..64 {
        for m in modes {
            writeln!(
                s,
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{m}\"}} {}.{}",
                100_000 + cpu * 37,
                cpu * 7 % 100
            )
            .ok();
        }
    }
    for dev in 0..200 {
        for (metric, help) in [
            (
                "node_network_receive_bytes_total",
                "Network device statistic receive_bytes.",
            ),
            (
                "node_network_transmit_bytes_total",
                "Network device statistic transmit_bytes.",
            ),
            (
                "node_network_receive_packets_total",
                "Network device statistic receive_packets.",
            ),
        ] {
            if dev == 0 {
                writeln!(s, "# HELP {metric} {help}").ok();
                writeln!(s, "# TYPE {metric} counter").ok();
            }
            writeln!(
                s,
                "{metric}{{device=\"veth{dev:05x}\"}} {}",
                1.234_567_89e10 + dev as f64
            )
            .ok();
        }
    }
    writeln!(
        s,
        "# HELP node_disk_io_time_seconds_total Total seconds spent doing I/Os."
    )
    .ok();
    writeln!(s, "# TYPE node_disk_io_time_seconds_total counter").ok();
    for i in 0..8000 {
        writeln!(
            s,
            "node_disk_io_time_seconds_total{{device=\"dm-{i}\"}} {}",
            i as f64 * 0.001
        )
        .ok();
    }
    writeln!(
        s,
        "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes."
    )
    .ok();
    writeln!(s, "# TYPE node_filesystem_avail_bytes gauge").ok();
    for i in 0..900 {
        writeln!(s, "node_filesystem_avail_bytes{{device=\"/dev/sd{i}\",fstype=\"ext4\",mountpoint=\"/mnt/data{i}\"}} 4.9873498112e+10").ok();
    }
    s
}

/// Series with ~12 labels of realistic Kubernetes length.
fn long_label_sets() -> String {
    let mut s = String::new();
    writeln!(
        s,
        "# HELP container_memory_working_set_bytes Current working set in bytes."
    )
    .ok();
    writeln!(s, "# TYPE container_memory_working_set_bytes gauge").ok();
    for i in 0..5000 {
        writeln!(
            s,
            "container_memory_working_set_bytes{{cluster=\"prod-eu-west-1\",namespace=\"payments-{n}\",pod=\"checkout-api-7d9f8b6c5d-{i:05x}\",container=\"checkout-api\",image=\"registry.example.com/payments/checkout-api:v1.42.{i}\",node=\"ip-10-0-{a}-{b}.eu-west-1.compute.internal\",app_kubernetes_io_name=\"checkout-api\",app_kubernetes_io_instance=\"checkout-api-{n}\",app_kubernetes_io_version=\"1.42.{i}\",pod_template_hash=\"7d9f8b6c5d\",service=\"kubelet\",job=\"kubernetes-cadvisor\"}} {} 1700000000000",
            1.5e8 + i as f64,
            n = i % 40,
            a = i % 250,
            b = i % 200
        )
        .ok();
    }
    s
}

/// A sample copied out of a payload: name, labels, value, timestamp.
type Flat = (String, Vec<(String, String)>, f64, Option<i64>);

fn count_samples(input: &[u8], format: Format) -> usize {
    let mut p = Parser::new(input, format).expect("utf-8");
    let mut n = 0;
    while let Some(e) = p.next_entry() {
        if let Ok(Entry::Sample(_)) = e {
            n += 1;
        }
    }
    n
}

fn parse(input: &[u8], format: Format, strict: bool) -> f64 {
    let mut p = Parser::new(input, format).expect("utf-8");
    if strict {
        p = p.strict();
    }
    let mut acc = 0.0;
    while let Some(e) = p.next_entry() {
        if let Ok(Entry::Sample(s)) = e {
            acc += s.value + s.labels.len() as f64;
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    for (name, text) in [
        ("node_exporter", node_exporter_like()),
        ("long_labels", long_label_sets()),
    ] {
        let bytes = text.as_bytes();
        let mut om = text.clone();
        om.push_str("# EOF\n");
        let n = count_samples(bytes, Format::Text);
        let lines = text.lines().count();
        eprintln!(
            "payload {name}: {} bytes, {lines} lines, {n} samples",
            bytes.len()
        );

        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("text", |b| {
            b.iter(|| parse(black_box(bytes), Format::Text, false))
        });
        g.bench_function("text_strict", |b| {
            b.iter(|| parse(black_box(bytes), Format::Text, true))
        });
        g.bench_function("openmetrics", |b| {
            b.iter(|| parse(black_box(om.as_bytes()), Format::OpenMetrics, false))
        });
        g.finish();

        // Encode the same samples back (what /federate does per series).
        let mut samples: Vec<Flat> = Vec::new();
        let mut p = Parser::new(bytes, Format::Text).expect("utf-8");
        while let Some(Ok(e)) = p.next_entry() {
            if let Entry::Sample(s) = e {
                samples.push((
                    s.name.to_string(),
                    s.labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    s.value,
                    s.timestamp,
                ));
            }
        }
        let mut g = c.benchmark_group(format!("encode/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len() * 2);
        g.bench_function("text", |b| {
            b.iter(|| {
                out.clear();
                let mut e = TextEncoder::new(&mut out);
                for (name, labels, v, ts) in &samples {
                    e.sample_parts(
                        name,
                        labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                        *v,
                        *ts,
                    );
                }
                black_box(out.len())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
