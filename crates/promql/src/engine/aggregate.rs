//! Aggregation operators: `sum avg count min max group stddev stdvar quantile` (one output
//! series per group), `topk bottomk limitk limit_ratio` (a selection of the input series), and
//! `count_values` (one series per group and distinct value).
//!
//! The group of each input series is computed once; each step then folds the series that have
//! a point into per-group accumulators, so no label sets are built per step.

use super::eval::{Ev, Evaluated, Mat, Point, SeriesData, StepCursor, unsupported_histograms};
use super::functions::{kahan_inc, quantile};
use super::types::QueryError;
use crate::ast::{Aggregate, AggregateOp, Expr};
use model::exposition::float_to_string;
use model::histogram::FloatHistogram;
use model::labels::{Labels, METRIC_NAME};
use std::collections::HashMap;

/// Per-group state at one step.
#[derive(Clone, Default)]
struct Acc {
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
    drop_name: bool,
    /// Selected input series (topk and friends): (value, series index).
    heap: Vec<(f64, usize)>,
    /// Sum of the histograms of the group (`sum`, `avg`).
    hist: Option<FloatHistogram>,
    hist_count: f64,
    /// Floats seen (a group mixing floats and histograms has no result).
    floats: usize,
    /// Histograms with exponential and custom buckets were mixed.
    incompatible: bool,
}

/// The hash Prometheus uses for label sets (xxhash64 of `name 0xff value 0xff ...`), needed
/// for `limit_ratio`'s deterministic sampling.
fn prometheus_label_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(256);
    for label in l {
        buf.extend_from_slice(label.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(label.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// The group labels of a series.
fn grouping_labels(l: &Labels, grouping: &[&str], without: bool) -> Labels {
    if without {
        let mut names: Vec<&str> = grouping.to_vec();
        names.push(METRIC_NAME);
        l.drop_names(&names)
    } else {
        l.keep_only(grouping)
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent.
fn format_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

impl Ev<'_> {
    pub fn eval_aggregate(&mut self, a: &Aggregate) -> Result<Evaluated, QueryError> {
        let grouping: Vec<&str> = a.grouping.iter().map(String::as_str).collect();
        if a.op == AggregateOp::CountValues {
            return self.count_values(a, &grouping);
        }
        let param = match (&a.param, a.op.has_param()) {
            (Some(p), true) => Some(self.eval_scalar(p)?),
            _ => None,
        };
        let input = self.eval_vector(&a.expr)?;
        let steps = self.steps();

        // Groups, in order of first appearance.
        let mut group_of = Vec::with_capacity(input.len());
        let mut group_labels: Vec<Labels> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in &input {
            let key = grouping_labels(&s.labels, &grouping, a.without);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                group_labels.push(key);
                group_labels.len() - 1
            });
            group_of.push(g);
        }
        let selecting = matches!(
            a.op,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        );
        if let Some(p) = &param {
            let span = a.param.as_ref().map_or(a.span, Expr::span);
            match a.op {
                AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                    if p.iter().any(|v| v.is_nan()) {
                        return Err(QueryError::Execution("Parameter value is NaN".into()));
                    }
                    if let Some(v) = p.iter().find(|v| **v <= i64::MIN as f64) {
                        return Err(QueryError::Execution(format!(
                            "Scalar value {} underflows int64",
                            float_to_string(*v)
                        )));
                    }
                    if let Some(v) = p.iter().find(|v| **v >= i64::MAX as f64) {
                        return Err(QueryError::Execution(format!(
                            "Scalar value {} overflows int64",
                            float_to_string(*v)
                        )));
                    }
                }
                AggregateOp::LimitRatio => {
                    if p.iter().any(|v| v.is_nan()) {
                        return Err(QueryError::Execution("Ratio value is NaN".into()));
                    }
                    let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let min = p.iter().copied().fold(f64::INFINITY, f64::min);
                    if max > 1.0 {
                        self.warn(
                            format!(
                                "ratio value should be between -1 and 1, got {}, capping to 1",
                                float_to_string(max)
                            ),
                            span,
                        );
                    }
                    if min < -1.0 {
                        self.warn(
                            format!(
                                "ratio value should be between -1 and 1, got {}, capping to -1",
                                float_to_string(min)
                            ),
                            span,
                        );
                    }
                }
                AggregateOp::Quantile => {
                    let mut reported = std::collections::HashSet::new();
                    for &q in p {
                        if (q.is_nan() || !(0.0..=1.0).contains(&q)) && reported.insert(q.to_bits())
                        {
                            self.warn(
                                format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    float_to_string(q)
                                ),
                                span,
                            );
                        }
                    }
                }
                _ => {}
            }
        }

        let mut cursor = StepCursor::new(&input);
        let mut accs: Vec<Acc> = vec![Acc::default(); group_labels.len()];
        let mut out_points: Vec<Vec<Point>> = vec![
            Vec::new();
            if selecting {
                input.len()
            } else {
                group_labels.len()
            }
        ];
        let mut out_drop: Vec<bool> = vec![false; out_points.len()];
        // For instant queries the selection keeps its order (topk descending, ...).
        let mut instant_order: Vec<usize> = Vec::new();
        let ratio_hash: Vec<f64> = if a.op == AggregateOp::LimitRatio {
            input
                .iter()
                .map(|s| prometheus_label_hash(&s.labels) as f64 / u64::MAX as f64)
                .collect()
        } else {
            Vec::new()
        };
        for i in 0..steps {
            self.check_deadline()?;
            let ts = self.step_ts(i);
            for acc in accs.iter_mut() {
                acc.seen = false;
                acc.heap.clear();
                acc.values.clear();
            }
            let p = param.as_ref().map_or(f64::NAN, |p| p[i]);
            let k = if matches!(
                a.op,
                AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk
            ) {
                (p as i64).min(input.len() as i64)
            } else {
                0
            };
            let mut error: Option<QueryError> = None;
            let mut ignored_histogram = false;
            let (mut collision, mut reconciled) = (false, false);
            cursor.at(&input, ts, |si, point| {
                if error.is_some() {
                    return;
                }
                let acc = &mut accs[group_of[si]];
                if let Some(h) = &point.h
                    && matches!(a.op, AggregateOp::Sum | AggregateOp::Avg)
                {
                    if !acc.seen {
                        *acc = Acc {
                            seen: true,
                            drop_name: input[si].drop_name,
                            heap: std::mem::take(&mut acc.heap),
                            values: std::mem::take(&mut acc.values),
                            ..Acc::default()
                        };
                    }
                    acc.drop_name |= input[si].drop_name;
                    acc.hist_count += 1.0;
                    match &mut acc.hist {
                        None => acc.hist = Some((**h).clone()),
                        Some(total) => match total.add(h) {
                            Err(_) => acc.incompatible = true,
                            Ok(o) => {
                                collision |= o.counter_reset_collision;
                                reconciled |= o.custom_bounds_reconciled;
                            }
                        },
                    }
                    return;
                }
                if point.h.is_none() {
                    acc.floats += 1;
                }
                if point.h.is_some() {
                    match a.op {
                        AggregateOp::Count
                        | AggregateOp::Group
                        | AggregateOp::Limitk
                        | AggregateOp::LimitRatio => {}
                        // Prometheus skips histograms in these, with an info annotation.
                        AggregateOp::Min
                        | AggregateOp::Max
                        | AggregateOp::Topk
                        | AggregateOp::Bottomk
                        | AggregateOp::Quantile
                        | AggregateOp::Stddev
                        | AggregateOp::Stdvar => {
                            ignored_histogram = true;
                            return;
                        }
                        _ => {
                            error = Some(unsupported_histograms(a.op.as_str()));
                            return;
                        }
                    }
                }
                let f = point.f;
                let drop = input[si].drop_name;
                if !acc.seen {
                    *acc = Acc {
                        seen: true,
                        value: f,
                        mean: f,
                        count: 1.0,
                        drop_name: drop,
                        floats: 1,
                        heap: std::mem::take(&mut acc.heap),
                        values: std::mem::take(&mut acc.values),
                        ..Acc::default()
                    };
                    match a.op {
                        AggregateOp::Stddev | AggregateOp::Stdvar => {
                            acc.value = if f.is_nan() || f.is_infinite() {
                                f64::NAN
                            } else {
                                0.0
                            };
                        }
                        AggregateOp::Quantile => acc.values.push(f),
                        AggregateOp::Group => acc.value = 1.0,
                        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk
                            if k >= 1 =>
                        {
                            acc.heap.push((f, si));
                        }
                        AggregateOp::LimitRatio if ratio_selects(p, ratio_hash[si]) => {
                            acc.heap.push((f, si));
                        }
                        _ => {}
                    }
                    return;
                }
                acc.drop_name |= drop;
                match a.op {
                    AggregateOp::Sum => {
                        (acc.value, acc.kahan_c) = kahan_inc(f, acc.value, acc.kahan_c);
                    }
                    AggregateOp::Avg => {
                        acc.count += 1.0;
                        if !acc.incremental_mean {
                            let (nv, nc) = kahan_inc(f, acc.value, acc.kahan_c);
                            if !nv.is_infinite() {
                                acc.value = nv;
                                acc.kahan_c = nc;
                                return;
                            }
                            acc.incremental_mean = true;
                            acc.mean = acc.value / (acc.count - 1.0);
                            acc.kahan_c /= acc.count - 1.0;
                        }
                        let q = (acc.count - 1.0) / acc.count;
                        (acc.mean, acc.kahan_c) =
                            kahan_inc(f / acc.count, q * acc.mean, q * acc.kahan_c);
                    }
                    AggregateOp::Max => {
                        if acc.value < f || acc.value.is_nan() {
                            acc.value = f;
                        }
                    }
                    AggregateOp::Min => {
                        if acc.value > f || acc.value.is_nan() {
                            acc.value = f;
                        }
                    }
                    AggregateOp::Count => acc.count += 1.0,
                    AggregateOp::Group => {}
                    AggregateOp::Stddev | AggregateOp::Stdvar => {
                        acc.count += 1.0;
                        let delta = f - acc.mean;
                        acc.mean += delta / acc.count;
                        acc.value += delta * (f - acc.mean);
                    }
                    AggregateOp::Quantile => acc.values.push(f),
                    AggregateOp::Topk => {
                        if (acc.heap.len() as i64) < k {
                            acc.heap.push((f, si));
                        } else if let Some(min_i) = min_index(&acc.heap, true)
                            && (acc.heap[min_i].0 < f
                                || (acc.heap[min_i].0.is_nan() && !f.is_nan()))
                        {
                            acc.heap[min_i] = (f, si);
                        }
                    }
                    AggregateOp::Bottomk => {
                        if (acc.heap.len() as i64) < k {
                            acc.heap.push((f, si));
                        } else if let Some(max_i) = min_index(&acc.heap, false)
                            && (acc.heap[max_i].0 > f
                                || (acc.heap[max_i].0.is_nan() && !f.is_nan()))
                        {
                            acc.heap[max_i] = (f, si);
                        }
                    }
                    AggregateOp::Limitk => {
                        if (acc.heap.len() as i64) < k {
                            acc.heap.push((f, si));
                        }
                    }
                    AggregateOp::LimitRatio => {
                        if ratio_selects(p, ratio_hash[si]) {
                            acc.heap.push((f, si));
                        }
                    }
                    AggregateOp::CountValues => {}
                }
            });
            if let Some(e) = error {
                return Err(e);
            }
            if collision {
                self.warn(
                    "conflicting counter resets during histogram aggregation".into(),
                    a.expr.span(),
                );
            }
            if reconciled {
                self.info(
                    "mismatched custom buckets were reconciled during aggregation".into(),
                    a.expr.span(),
                );
            }
            if ignored_histogram {
                let span = if selecting { a.span } else { a.expr.span() };
                self.info(
                    format!("ignored histogram in {} aggregation", a.op.as_str()),
                    span,
                );
            }
            for (g, acc) in accs.iter_mut().enumerate() {
                if !acc.seen {
                    continue;
                }
                if selecting {
                    match a.op {
                        AggregateOp::Topk => acc.heap.sort_by(|x, y| nan_last(x.0, y.0, true)),
                        AggregateOp::Bottomk => acc.heap.sort_by(|x, y| nan_last(x.0, y.0, false)),
                        _ => {}
                    }
                    for &(v, si) in &acc.heap {
                        let mut pt = input[si]
                            .points
                            .iter()
                            .find(|pt| pt.t == ts)
                            .cloned()
                            .unwrap_or_else(|| Point::float(ts, v));
                        pt.t = ts;
                        out_points[si].push(pt);
                        out_drop[si] = input[si].drop_name;
                        if self.start == self.end {
                            instant_order.push(si);
                        }
                    }
                    continue;
                }
                if let Some(mut h) = acc.hist.take() {
                    if acc.floats > 0 {
                        self.warn(
                            "encountered a mix of histograms and floats for aggregation".into(),
                            a.expr.span(),
                        );
                        continue;
                    }
                    if acc.incompatible {
                        self.warn(
                            "vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\"".into(),
                            a.expr.span(),
                        );
                        continue;
                    }
                    if a.op == AggregateOp::Avg {
                        h.div(acc.hist_count);
                    }
                    h.compact();
                    out_points[g].push(Point {
                        t: ts,
                        f: 0.0,
                        h: Some(std::sync::Arc::new(h)),
                    });
                    out_drop[g] |= acc.drop_name;
                    continue;
                }
                let v = match a.op {
                    AggregateOp::Sum => acc.value + acc.kahan_c,
                    AggregateOp::Avg => {
                        if acc.incremental_mean {
                            acc.mean + acc.kahan_c
                        } else {
                            acc.value / acc.count + acc.kahan_c / acc.count
                        }
                    }
                    AggregateOp::Count => acc.count,
                    AggregateOp::Stdvar => acc.value / acc.count,
                    AggregateOp::Stddev => (acc.value / acc.count).sqrt(),
                    AggregateOp::Quantile => quantile(p, &mut acc.values),
                    _ => acc.value,
                };
                out_points[g].push(Point::float(ts, v));
                out_drop[g] |= acc.drop_name;
            }
        }

        let mut out: Mat = Vec::new();
        if selecting {
            let order: Vec<usize> = if self.start == self.end {
                instant_order
            } else {
                (0..input.len()).collect()
            };
            let mut points = out_points;
            for si in order {
                let pts = std::mem::take(&mut points[si]);
                if pts.is_empty() {
                    continue;
                }
                out.push(SeriesData {
                    labels: input[si].labels.clone(),
                    points: pts,
                    drop_name: out_drop[si],
                });
            }
            return Ok(Evaluated::Vector(out));
        }
        for ((labels, points), drop_name) in group_labels.into_iter().zip(out_points).zip(out_drop)
        {
            if points.is_empty() {
                continue;
            }
            self.add_samples(points.len())?;
            out.push(SeriesData {
                labels,
                points,
                drop_name,
            });
        }
        Ok(Evaluated::Vector(out))
    }

    fn count_values(&mut self, a: &Aggregate, grouping: &[&str]) -> Result<Evaluated, QueryError> {
        let label = match a.param.as_ref().map(super::eval::unwrap_parens) {
            Some(Expr::StringLiteral(s)) => match s.as_str() {
                Some(l) => l.to_string(),
                None => {
                    return Err(QueryError::Execution(format!(
                        "invalid label name {:?}",
                        s.to_string_lossy()
                    )));
                }
            },
            _ => {
                return Err(QueryError::Execution(
                    "count_values needs a string parameter".into(),
                ));
            }
        };
        if label.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid label name {label:?}"
            )));
        }
        let input = self.eval_vector(&a.expr)?;
        let mut grouping: Vec<&str> = grouping.to_vec();
        if !a.without {
            grouping.push(&label);
        }
        let mut cursor = StepCursor::new(&input);
        let mut out: Mat = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for i in 0..self.steps() {
            let ts = self.step_ts(i);
            let mut counts: Vec<(Labels, f64)> = Vec::new();
            let mut pos: HashMap<Labels, usize> = HashMap::new();
            cursor.at(&input, ts, |si, p| {
                let mut b = input[si].labels.builder();
                let value = match &p.h {
                    Some(h) => h.to_string(),
                    None => format_plain(p.f),
                };
                b.set(label.as_str(), value);
                let key = grouping_labels(&b.build(), &grouping, a.without);
                match pos.get(&key) {
                    Some(&j) => counts[j].1 += 1.0,
                    None => {
                        pos.insert(key.clone(), counts.len());
                        counts.push((key, 1.0));
                    }
                }
            });
            for (labels, n) in counts {
                let j = *index.entry(labels.clone()).or_insert_with(|| {
                    out.push(SeriesData {
                        labels,
                        points: Vec::new(),
                        drop_name: false,
                    });
                    out.len() - 1
                });
                out[j].points.push(Point::float(ts, n));
            }
        }
        Ok(Evaluated::Vector(out))
    }
}

/// Index of the smallest (`lowest`) or largest value, NaN counting as the lowest.
fn min_index(heap: &[(f64, usize)], lowest: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, (v, _)) in heap.iter().enumerate() {
        best = match best {
            None => Some(i),
            Some(b) => {
                let bv = heap[b].0;
                let better = if lowest {
                    v.is_nan() && !bv.is_nan() || (!v.is_nan() && !bv.is_nan() && *v < bv)
                } else {
                    // For bottomk the "worst" kept element is the largest; NaN is worst of all.
                    (v.is_nan() && !bv.is_nan()) || (!v.is_nan() && !bv.is_nan() && *v > bv)
                };
                if better { Some(i) } else { Some(b) }
            }
        };
    }
    best
}

/// Order of topk (descending) and bottomk (ascending) output, NaN last in both.
fn nan_last(a: f64, b: f64, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ if descending => b.partial_cmp(&a).unwrap_or(Equal),
        _ => a.partial_cmp(&b).unwrap_or(Equal),
    }
}

/// `limit_ratio`'s sampling: a series is kept when its hash position falls in the ratio.
fn ratio_selects(r: f64, offset: f64) -> bool {
    let r = r.clamp(-1.0, 1.0);
    (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
}
