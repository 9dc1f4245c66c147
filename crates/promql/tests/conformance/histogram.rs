//! Native-histogram helpers the runner needs and `model` does not (yet) provide: the addition
//! behind `{{A}}+{{B}}xN`, comparison after compaction (FORMAT.md 6.4), the classic→NHCB
//! conversion of `load_with_nhcb` (3.5), the counter-reset hints Prometheus' TSDB reports on
//! read-back of loaded histograms, and the test-literal rendering used in failure diffs.

use model::histogram::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, Span};
use model::labels::Labels;
use model::sample::is_stale_nan;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// `(bucket index, count)` of every bucket the spans describe, in index order.
pub fn buckets(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i32 = 0;
    let mut k = 0;
    for s in spans {
        idx = idx.saturating_add(s.offset);
        for _ in 0..s.length {
            out.push((idx, counts.get(k).copied().unwrap_or(f64::NAN)));
            idx = idx.saturating_add(1);
            k += 1;
        }
    }
    out
}

/// Spans and counts for a set of buckets (consecutive indexes share a span).
fn from_buckets(map: &BTreeMap<i32, f64>) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::with_capacity(map.len());
    let mut next: Option<i64> = None;
    for (&idx, &c) in map {
        let idx = i64::from(idx);
        match (next, spans.last_mut()) {
            (Some(n), Some(last)) if n == idx => last.length += 1,
            _ => spans.push(Span {
                offset: i32::try_from(next.map_or(idx, |n| idx - n)).unwrap_or(i32::MAX),
                length: 1,
            }),
        }
        next = Some(idx + 1);
        counts.push(c);
    }
    (spans, counts)
}

/// The upper bound of exponential bucket `idx` at `schema`.
fn upper_bound(idx: i32, schema: i32) -> f64 {
    (f64::from(idx) * (-f64::from(schema)).exp2()).exp2()
}

/// Bucket index at a coarser schema (Prometheus' `targetIdx`).
fn reduce_index(idx: i32, from: i32, to: i32) -> i32 {
    let shift = from.saturating_sub(to).clamp(0, 31);
    (idx.saturating_sub(1) >> shift).saturating_add(1)
}

/// `a + b` (or `a − b` when `negate`), as Prometheus' `FloatHistogram.Add`/`Sub` do it: the
/// result has the coarser schema and the wider zero bucket.
pub fn add(a: &FloatHistogram, b: &FloatHistogram, negate: bool) -> Result<FloatHistogram, String> {
    let sign = if negate { -1.0 } else { 1.0 };
    let custom = a.schema == CUSTOM_BUCKETS_SCHEMA || b.schema == CUSTOM_BUCKETS_SCHEMA;
    if custom && (a.schema != b.schema || a.custom_values != b.custom_values) {
        return Err("cannot add histograms with different custom bucket layouts".into());
    }
    let schema = a.schema.min(b.schema);
    let threshold = a.zero_threshold.max(b.zero_threshold);
    let mut zero_count = a.zero_count + sign * b.zero_count;
    let mut pos = BTreeMap::new();
    let mut neg = BTreeMap::new();
    for (h, factor) in [(a, 1.0), (b, sign)] {
        for (spans, counts, map) in [
            (&h.positive_spans, &h.positive_buckets, &mut pos),
            (&h.negative_spans, &h.negative_buckets, &mut neg),
        ] {
            for (idx, c) in buckets(spans, counts) {
                let idx = if custom {
                    idx
                } else {
                    reduce_index(idx, h.schema, schema)
                };
                if !custom && threshold > h.zero_threshold && upper_bound(idx, schema) <= threshold
                {
                    zero_count += factor * c;
                    continue;
                }
                *map.entry(idx).or_insert(0.0) += factor * c;
            }
        }
    }
    let (positive_spans, positive_buckets) = from_buckets(&pos);
    let (negative_spans, negative_buckets) = from_buckets(&neg);
    use CounterResetHint::*;
    let counter_reset_hint = match (a.counter_reset_hint, b.counter_reset_hint) {
        (x, y) if x == y => x,
        (Gauge, _) | (_, Gauge) => Gauge,
        _ => Unknown,
    };
    Ok(FloatHistogram {
        counter_reset_hint,
        schema,
        zero_threshold: threshold,
        zero_count,
        count: a.count + sign * b.count,
        sum: a.sum + sign * b.sum,
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: a.custom_values.clone(),
    })
}

/// The non-empty buckets: what is left after `Compact(0)`.
fn compacted(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut b = buckets(spans, counts);
    b.retain(|(_, c)| *c != 0.0);
    b
}

/// FORMAT.md 6.4: compares `got` with the expected histogram after compaction; the hint only
/// when `check_hint`. `Err` says what differs.
pub fn compare(
    exp: &FloatHistogram,
    got: &FloatHistogram,
    check_hint: bool,
    eq: impl Fn(f64, f64) -> bool,
) -> Result<(), String> {
    let layout_ok = |name: &str, e: &[(i32, f64)], g: &[(i32, f64)]| -> Result<(), String> {
        if e.len() != g.len() || e.iter().zip(g).any(|(a, b)| a.0 != b.0) {
            return Err(format!("{name} bucket layouts differ"));
        }
        if e.iter().zip(g).any(|(a, b)| !eq(a.1, b.1)) {
            return Err(format!("{name} bucket counts differ"));
        }
        Ok(())
    };
    if exp.schema != got.schema {
        return Err(format!("schema {} != {}", exp.schema, got.schema));
    }
    if !eq(exp.count, got.count) {
        return Err("counts differ".into());
    }
    if !eq(exp.sum, got.sum) {
        return Err("sums differ".into());
    }
    if exp.schema == CUSTOM_BUCKETS_SCHEMA && exp.custom_values != got.custom_values {
        return Err("custom bucket bounds differ".into());
    }
    if exp.zero_threshold != got.zero_threshold {
        return Err("zero thresholds differ".into());
    }
    if !eq(exp.zero_count, got.zero_count) {
        return Err("zero counts differ".into());
    }
    layout_ok(
        "negative",
        &compacted(&exp.negative_spans, &exp.negative_buckets),
        &compacted(&got.negative_spans, &got.negative_buckets),
    )?;
    layout_ok(
        "positive",
        &compacted(&exp.positive_spans, &exp.positive_buckets),
        &compacted(&got.positive_spans, &got.positive_buckets),
    )?;
    if check_hint && exp.counter_reset_hint != got.counter_reset_hint {
        return Err(format!(
            "counter reset hints differ: expected {}, got {}",
            hint_name(exp.counter_reset_hint),
            hint_name(got.counter_reset_hint)
        ));
    }
    Ok(())
}

fn hint_name(h: CounterResetHint) -> &'static str {
    match h {
        CounterResetHint::Unknown => "unknown",
        CounterResetHint::CounterReset => "reset",
        CounterResetHint::NotCounterReset => "not_reset",
        CounterResetHint::Gauge => "gauge",
    }
}

/// Renders a histogram as a test-script literal (without the redundant defaults).
pub fn render(h: &FloatHistogram) -> String {
    let mut s = String::from("{{");
    let list = |v: &[f64]| {
        let items: Vec<String> = v.iter().map(|c| format!("{c}")).collect();
        format!("[{}]", items.join(" "))
    };
    let _ = write!(s, "schema:{} count:{} sum:{}", h.schema, h.count, h.sum);
    if h.zero_count != 0.0 || h.zero_threshold != 0.0 {
        let _ = write!(
            s,
            " z_bucket:{} z_bucket_w:{}",
            h.zero_count, h.zero_threshold
        );
    }
    for (name, spans, counts) in [
        ("", &h.positive_spans, &h.positive_buckets),
        ("n_", &h.negative_spans, &h.negative_buckets),
    ] {
        let b = buckets(spans, counts);
        if b.is_empty() {
            continue;
        }
        let contiguous = spans.iter().skip(1).all(|s| s.offset == 0);
        if contiguous {
            if b[0].0 != 0 {
                let _ = write!(s, " {name}offset:{}", b[0].0);
            }
            let counts: Vec<f64> = b.iter().map(|x| x.1).collect();
            let _ = write!(s, " {name}buckets:{}", list(&counts));
        } else {
            let items: Vec<String> = b.iter().map(|(i, c)| format!("{i}:{c}")).collect();
            let _ = write!(s, " {name}buckets(idx:count):[{}]", items.join(" "));
        }
    }
    if !h.custom_values.is_empty() {
        let _ = write!(s, " custom_values:{}", list(&h.custom_values));
    }
    if h.counter_reset_hint != CounterResetHint::Unknown {
        let _ = write!(s, " counter_reset_hint:{}", hint_name(h.counter_reset_hint));
    }
    s.push_str("}}");
    s
}

/// Prometheus' `convertnhcb.TempHistogram` for one timestamp.
#[derive(Default)]
struct TempHistogram {
    /// `(le, cumulative count)`, sorted by `le`; a repeated `le` keeps the first value.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
}

impl TempHistogram {
    fn set_bucket(&mut self, le: f64, count: f64) {
        match self.buckets.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            Ok(_) => {}
            Err(i) => self.buckets.insert(i, (le, count)),
        }
    }

    fn convert(mut self) -> FloatHistogram {
        if self.count.is_none() {
            self.count = self.buckets.last().map(|b| b.1);
        }
        let count = self.count.unwrap_or(0.0);
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            self.buckets.push((f64::INFINITY, count));
        }
        let mut prev = 0.0;
        let mut counts = Vec::with_capacity(self.buckets.len());
        let mut custom_values = Vec::new();
        for (le, c) in &self.buckets {
            counts.push(c - prev);
            prev = *c;
            if *le != f64::INFINITY {
                custom_values.push(*le);
            }
        }
        FloatHistogram {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: CUSTOM_BUCKETS_SCHEMA,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count,
            sum: self.sum,
            positive_spans: vec![Span {
                offset: 0,
                length: u32::try_from(counts.len()).unwrap_or(u32::MAX),
            }],
            negative_spans: Vec::new(),
            positive_buckets: counts,
            negative_buckets: Vec::new(),
            custom_values,
        }
    }
}

/// `load_with_nhcb`: the NHCB series derived from the classic histograms (`_bucket` with a
/// numeric `le`, `_count`, `_sum`) among a block's float samples.
pub fn classic_to_nhcb(
    series: &[(Labels, Vec<(i64, f64)>)],
) -> Vec<(Labels, Vec<(i64, FloatHistogram)>)> {
    let mut groups: BTreeMap<Labels, BTreeMap<i64, TempHistogram>> = BTreeMap::new();
    for (labels, samples) in series {
        let Some(name) = labels.metric_name() else {
            continue;
        };
        enum Part {
            Bucket(f64),
            Count,
            Sum,
        }
        let (base, part) = if let Some(base) = name.strip_suffix("_bucket") {
            let Some(le) = labels.get("le").and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            (base, Part::Bucket(le))
        } else if let Some(base) = name.strip_suffix("_count") {
            (base, Part::Count)
        } else if let Some(base) = name.strip_suffix("_sum") {
            (base, Part::Sum)
        } else {
            continue;
        };
        let mut b = labels.builder();
        b.set("__name__", base);
        b.del("le");
        let by_time = groups.entry(b.build()).or_default();
        for &(t, v) in samples {
            let h = by_time.entry(t).or_default();
            match part {
                Part::Bucket(le) => h.set_bucket(le, v),
                Part::Count => h.count = Some(v),
                Part::Sum => h.sum = v,
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, by_time)| {
            let samples = by_time.into_iter().map(|(t, h)| (t, h.convert())).collect();
            (labels, samples)
        })
        .collect()
}

/// What Prometheus' head chunk appender decides for a counter histogram following `prev` in
/// the same chunk: `(fits in the chunk, is a counter reset)`.
fn appendable(prev: &FloatHistogram, h: &FloatHistogram) -> (bool, bool) {
    if h.counter_reset_hint == CounterResetHint::CounterReset {
        return (false, true);
    }
    if h.count < prev.count {
        return (false, true);
    }
    if h.schema != prev.schema || h.zero_threshold != prev.zero_threshold {
        return (false, false);
    }
    if h.schema == CUSTOM_BUCKETS_SCHEMA && h.custom_values != prev.custom_values {
        return (false, true);
    }
    if h.zero_count < prev.zero_count {
        return (false, true);
    }
    for (ps, pc, hs, hc) in [
        (
            &prev.positive_spans,
            &prev.positive_buckets,
            &h.positive_spans,
            &h.positive_buckets,
        ),
        (
            &prev.negative_spans,
            &prev.negative_buckets,
            &h.negative_spans,
            &h.negative_buckets,
        ),
    ] {
        let new: BTreeMap<i32, f64> = buckets(hs, hc).into_iter().collect();
        for (idx, old) in buckets(ps, pc) {
            match new.get(&idx) {
                Some(c) if *c < old => return (false, true),
                None if old != 0.0 => return (false, true),
                _ => {}
            }
        }
    }
    (true, false)
}

/// Rewrites the counter-reset hints of one series' histogram samples (in time order) to what
/// Prometheus' TSDB returns when the series is read back, which the upstream scripts observe:
/// gauge histograms read as `gauge`; a counter histogram that continues the current chunk
/// reads as `not_reset`; one that starts a chunk reads as `reset` if it was written with that
/// hint or is a detected counter reset, else `unknown`. A chunk starts at the first histogram,
/// after a float sample or a staleness marker, and at a reset or layout change. (Chunks cut for
/// size or time are not modelled: they only turn a `not_reset` into `unknown`.)
pub fn apply_tsdb_hints(samples: &mut [(i64, storage::Value)]) {
    // The previous sample when it is a counter histogram in an open chunk.
    let mut prev: Option<Arc<FloatHistogram>> = None;
    // Whether the series is currently in a histogram chunk (for staleness markers).
    let mut in_histogram_chunk = false;
    let mut after_stale = false;
    for (_, v) in samples.iter_mut() {
        match v {
            storage::Value::Float(f) => {
                if is_stale_nan(*f) && in_histogram_chunk {
                    after_stale = true;
                } else {
                    in_histogram_chunk = false;
                    after_stale = false;
                }
                prev = None;
            }
            storage::Value::Histogram(h) => {
                let written = h.counter_reset_hint;
                let read = if written == CounterResetHint::Gauge {
                    prev = None;
                    CounterResetHint::Gauge
                } else {
                    let (fits, reset) = match (&prev, after_stale) {
                        (Some(p), false) => appendable(p, h),
                        _ => (false, written == CounterResetHint::CounterReset),
                    };
                    if fits {
                        CounterResetHint::NotCounterReset
                    } else if reset {
                        CounterResetHint::CounterReset
                    } else {
                        CounterResetHint::Unknown
                    }
                };
                in_histogram_chunk = true;
                after_stale = false;
                if read != h.counter_reset_hint {
                    Arc::make_mut(h).counter_reset_hint = read;
                }
                if read != CounterResetHint::Gauge {
                    prev = Some(h.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(schema: i32, offset: i32, counts: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: counts.iter().sum(),
            positive_spans: vec![Span {
                offset,
                length: counts.len() as u32,
            }],
            positive_buckets: counts.to_vec(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn addition_merges_layouts_and_schemas() {
        let a = hist(0, 1, &[1.0]);
        let b = hist(0, 3, &[2.0]);
        let s = add(&a, &b, false).unwrap();
        assert_eq!(
            buckets(&s.positive_spans, &s.positive_buckets),
            vec![(1, 1.0), (3, 2.0)]
        );
        assert_eq!(s.count, 3.0);
        // Schema 0 buckets 1 and 2 fall into schema -1 bucket 1.
        let low = hist(-1, 1, &[1.0]);
        let s = add(&low, &hist(0, 1, &[2.0, 2.0]), false).unwrap();
        assert_eq!(s.schema, -1);
        assert_eq!(
            buckets(&s.positive_spans, &s.positive_buckets),
            vec![(1, 5.0)]
        );
    }

    #[test]
    fn comparison_ignores_empty_buckets() {
        let eq = |a: f64, b: f64| a == b;
        let a = hist(0, 0, &[0.0, 1.0, 0.0, 2.0]);
        let mut b = hist(0, 1, &[1.0]);
        b.positive_spans.push(Span {
            offset: 1,
            length: 1,
        });
        b.positive_buckets.push(2.0);
        b.count = 3.0;
        assert!(compare(&a, &b, false, eq).is_ok());
        assert!(compare(&a, &hist(0, 1, &[1.0, 2.0]), false, eq).is_err());
    }

    #[test]
    fn nhcb_conversion_decumulates() {
        let l = |name: &str, le: &str| {
            Labels::from_pairs([("__name__", name), ("le", le), ("job", "a")]).unwrap()
        };
        let series = vec![
            (l("h_bucket", "1"), vec![(0, 1.0)]),
            (l("h_bucket", "+Inf"), vec![(0, 4.0)]),
            (l("h_bucket", "0.5"), vec![(0, 0.0)]),
            (l("h_sum", ""), vec![(0, 7.0)]),
        ];
        let out = classic_to_nhcb(&series);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.metric_name(), Some("h"));
        let h = &out[0].1[0].1;
        assert_eq!(h.custom_values, vec![0.5, 1.0]);
        assert_eq!(h.positive_buckets, vec![0.0, 1.0, 3.0]);
        assert_eq!((h.count, h.sum), (4.0, 7.0));
    }

    #[test]
    fn tsdb_hints() {
        let v = |h: FloatHistogram| storage::Value::Histogram(Arc::new(h));
        let mut s = vec![
            (0, v(hist(0, 0, &[1.0]))),
            (1, v(hist(0, 0, &[2.0]))),
            (2, v(hist(0, 0, &[1.0]))),
            (3, storage::Value::Float(1.0)),
            (4, v(hist(0, 0, &[5.0]))),
        ];
        apply_tsdb_hints(&mut s);
        let hints: Vec<CounterResetHint> = s
            .iter()
            .filter_map(|(_, v)| match v {
                storage::Value::Histogram(h) => Some(h.counter_reset_hint),
                storage::Value::Float(_) => None,
            })
            .collect();
        use CounterResetHint::*;
        assert_eq!(hints, vec![Unknown, NotCounterReset, CounterReset, Unknown]);
    }
}
