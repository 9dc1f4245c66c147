//! The functions over histograms: `histogram_quantile`, `histogram_quantiles` and
//! `histogram_fraction` (classic bucket series and native histograms alike),
//! `histogram_stddev` and `histogram_stdvar`.
//!
//! Classic buckets are grouped per step by their labels without `le`; a native histogram
//! whose labels equal such a group's is a conflict (both are dropped with a warning), as in
//! Prometheus. Native quantiles and fractions interpolate linearly in custom and zero
//! buckets and exponentially (on a log scale) in exponential buckets.

use super::eval::{Ev, Evaluated, Point, SeriesData, StepCursor};
use super::functions::{bucket_quantile, kahan_inc};
use super::types::QueryError;
use crate::ast::{Call, Expr, Span};
use model::exposition::float_to_string;
use model::histogram::FloatHistogram;
use model::labels::Labels;
use std::collections::HashMap;

/// Which bucket function is evaluated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BucketFn {
    Quantile,
    Quantiles,
    Fraction,
}

/// A NaN-observation note from a native quantile or fraction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NanNote {
    None,
    /// The quantile fell among the NaN observations.
    ResultNaN,
    /// NaN observations pushed the quantile up.
    Skewed,
    /// NaN observations were left out of a fraction.
    Excluded,
}

/// The φ-quantile of a native histogram.
pub(super) fn native_quantile(q: f64, h: &FloatHistogram) -> (f64, NanNote) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, NanNote::None);
    }
    if q > 1.0 {
        return (f64::INFINITY, NanNote::None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, NanNote::None);
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let mut buckets = h.all_buckets();
    if !forward {
        buckets.reverse();
    }
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut pos = 0;
    let mut bucket = None;
    while pos < buckets.len() {
        let b = buckets[pos];
        pos += 1;
        bucket = Some(b);
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            break;
        }
    }
    // Without any bucket Prometheus goes on with an empty one at zero.
    let mut bucket = bucket.unwrap_or(model::histogram::Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
        index: 0,
    });
    let custom = h.uses_custom_buckets();
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return (bucket.upper, NanNote::None);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return (bucket.lower, NanNote::None);
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            return (f64::NAN, NanNote::ResultNaN);
        }
        return (bucket.upper, NanNote::None);
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    let mut note = NanNote::None;
    if h.sum.is_nan() {
        let rest: f64 = buckets[pos..].iter().map(|b| b.count).sum();
        if count + rest < h.count {
            note = NanNote::Skewed;
        }
    }
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (
            bucket.lower + (bucket.upper - bucket.lower) * fraction,
            note,
        );
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        return (
            (log_lower + (log_upper - log_lower) * fraction).exp2(),
            note,
        );
    }
    (
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2(),
        note,
    )
}

/// The fraction of a native histogram's observations between `lower` and `upper`.
pub(super) fn native_fraction(lower: f64, upper: f64, h: &FloatHistogram) -> (f64, NanNote) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, NanNote::None);
    }
    if lower >= upper {
        return (0.0, NanNote::None);
    }
    let custom = h.uses_custom_buckets();
    let buckets = h.all_buckets();
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for b in &buckets {
        let mut b = *b;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let linear = |v: f64| {
            if b.lower == f64::NEG_INFINITY {
                b.count
            } else {
                rank + b.count * (v - b.lower) / (b.upper - b.lower)
            }
        };
        let exponential = |v: f64| {
            let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let fraction = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - ((lv - lu) / (ll - lu))
            };
            rank + b.count * fraction
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = if custom || zero_bucket {
                linear(lower)
            } else {
                exponential(lower)
            };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = if custom || zero_bucket {
                linear(upper)
            } else {
                exponential(upper)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    let mut note = NanNote::None;
    let mut count = h.count;
    if h.sum.is_nan() {
        let in_buckets: f64 = buckets.iter().map(|b| b.count).sum();
        if in_buckets < h.count {
            note = NanNote::Excluded;
            count = in_buckets;
        }
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, note)
}

/// The fraction of classic buckets' observations between `lower` and `upper`.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(b, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b => last.1 += c,
            _ => merged.push((b, c)),
        }
    }
    let count = merged[merged.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    // Buckets starting above zero are taken to hold positive observations only.
    let mut lower_bound = if merged[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(upper_bound, cumulative)) in merged.iter().enumerate() {
        if i > 0 {
            lower_bound = merged[i - 1].0;
        }
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                cumulative
            } else {
                rank + (cumulative - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cumulative;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// The estimated variance of a native histogram's observations: each bucket stands for its
/// arithmetic (custom buckets), zero (zero bucket) or geometric (exponential) mean.
pub(super) fn histogram_variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut variance, mut c) = (0.0, 0.0);
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let delta = val - mean;
        (variance, c) = kahan_inc(b.count * delta * delta, variance, c);
    }
    (variance + c) / h.count
}

/// Prometheus' OpenMetrics float form (`1.0`, `0.25`, `NaN`, `+Inf`): label values of
/// `histogram_quantiles`.
fn open_metrics_float(f: f64) -> String {
    let s = float_to_string(f);
    if f.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

impl Ev<'_> {
    pub fn histogram_quantile(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        self.histogram_bucket_fn(c, BucketFn::Quantile)
    }

    pub fn histogram_quantiles(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        self.histogram_bucket_fn(c, BucketFn::Quantiles)
    }

    pub fn histogram_fraction(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        self.histogram_bucket_fn(c, BucketFn::Fraction)
    }

    fn quantile_warning(&mut self, values: &[f64], span: Span) {
        for &q in values.iter().take(1) {
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
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

    fn histogram_bucket_fn(&mut self, c: &Call, kind: BucketFn) -> Result<Evaluated, QueryError> {
        // Scalar parameters per step, and the vector argument.
        let (params, vec_arg, label): (Vec<Vec<f64>>, &Expr, Option<String>) = match kind {
            BucketFn::Quantile => (vec![self.eval_scalar(&c.args[0])?], &c.args[1], None),
            BucketFn::Fraction => (
                vec![self.eval_scalar(&c.args[0])?, self.eval_scalar(&c.args[1])?],
                &c.args[2],
                None,
            ),
            BucketFn::Quantiles => {
                let label = match super::eval::unwrap_parens(&c.args[1]) {
                    Expr::StringLiteral(s) => s.to_string_lossy(),
                    _ => {
                        return Err(QueryError::Execution(
                            "histogram_quantiles needs a label name".into(),
                        ));
                    }
                };
                let mut ps = Vec::new();
                for a in &c.args[2..] {
                    ps.push(self.eval_scalar(a)?);
                }
                (ps, &c.args[0], Some(label))
            }
        };
        match kind {
            BucketFn::Quantile => self.quantile_warning(&params[0], c.args[0].span()),
            BucketFn::Quantiles => {
                for (p, a) in params.iter().zip(&c.args[2..]) {
                    self.quantile_warning(p, a.span());
                }
            }
            BucketFn::Fraction => {}
        }
        let mat = self.eval_vector(vec_arg)?;
        let v_span = vec_arg.span();
        // NaN-observation and monotonicity infos point at the histogram argument.
        let nan_span = v_span;
        let monotonic_span = v_span;
        let delayed = self.opts.delayed_name_removal;

        // Classic bucket groups: labels without `le`.
        let mut group_of: Vec<Option<usize>> = Vec::with_capacity(mat.len());
        let mut bounds: Vec<f64> = Vec::with_capacity(mat.len());
        let mut groups: Vec<(Labels, bool)> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        // For native series: the classic group with the same labels, if any.
        let mut native_conflict: Vec<Option<usize>> = vec![None; mat.len()];
        for s in &mat {
            if s.points.iter().all(|p| p.h.is_some()) {
                group_of.push(None);
                bounds.push(f64::NAN);
                continue;
            }
            let le = s.labels.get_or_empty("le");
            match model::exposition::parse_text_value(le) {
                Some(b) => {
                    let key = s.labels.drop_names(&["le"]);
                    let g = *index.entry(key.clone()).or_insert_with(|| {
                        groups.push((key, false));
                        groups.len() - 1
                    });
                    groups[g].1 |= s.drop_name;
                    group_of.push(Some(g));
                    bounds.push(b);
                }
                None => {
                    let name = if delayed {
                        s.labels.metric_name().unwrap_or("")
                    } else {
                        ""
                    };
                    self.warn(format!("bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"), v_span);
                    group_of.push(None);
                    bounds.push(f64::NAN);
                }
            }
        }
        for (si, s) in mat.iter().enumerate() {
            if s.points.iter().any(|p| p.h.is_some()) {
                native_conflict[si] = index.get(&s.labels).copied();
            }
        }

        let n_out = if kind == BucketFn::Quantiles {
            params.len()
        } else {
            1
        };
        // Output series: (native series or classic group, parameter index).
        #[derive(Hash, PartialEq, Eq, Clone, Copy)]
        enum Source {
            Native(usize),
            Classic(usize),
        }
        let mut out_index: HashMap<(Source, usize), usize> = HashMap::new();
        let mut out: Vec<SeriesData> = Vec::new();
        let mut cursor = StepCursor::new(&mat);
        let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
        // Steps index the per-step parameters as well as the time.
        #[allow(clippy::needless_range_loop)]
        for i in 0..self.steps() {
            let ts = self.step_ts(i);
            for b in buckets.iter_mut() {
                b.clear();
            }
            let mut natives: Vec<usize> = Vec::new();
            cursor.at(&mat, ts, |si, p| {
                if p.h.is_some() {
                    natives.push(si);
                } else if let Some(g) = group_of[si] {
                    buckets[g].push((bounds[si], p.f));
                }
            });
            // A native histogram and classic buckets with the same labels: neither counts.
            let mut conflicted = vec![false; groups.len()];
            natives.retain(|&si| match native_conflict[si] {
                Some(g) if !buckets[g].is_empty() => {
                    conflicted[g] = true;
                    false
                }
                _ => true,
            });
            for (g, hit) in conflicted.iter().enumerate() {
                if *hit {
                    let name = if delayed {
                        groups[g].0.metric_name().unwrap_or("")
                    } else {
                        ""
                    };
                    self.warn(
                        format!("vector contains a mix of classic and native histograms for metric name {name:?}"),
                        v_span,
                    );
                    buckets[g].clear();
                }
            }
            let mut push = |this: &mut Self, src: Source, pi: usize, v: f64| {
                let j = *out_index.entry((src, pi)).or_insert_with(|| {
                    let (labels, drop) = match src {
                        Source::Native(si) => (mat[si].labels.clone(), mat[si].drop_name),
                        Source::Classic(g) => groups[g].clone(),
                    };
                    let mut s = SeriesData {
                        labels,
                        points: Vec::new(),
                        drop_name: drop,
                    };
                    this.drop_name(&mut s);
                    if let Some(l) = &label {
                        let mut b = s.labels.builder();
                        b.set(l.as_str(), open_metrics_float(params[pi][i]));
                        s.labels = b.build();
                    }
                    out.push(s);
                    out.len() - 1
                });
                out[j].points.push(Point::float(ts, v));
            };
            for pi in 0..n_out {
                for &si in &natives {
                    let Some(h) = mat[si]
                        .points
                        .iter()
                        .find(|p| p.t == ts)
                        .and_then(|p| p.h.clone())
                    else {
                        continue;
                    };
                    let (v, note) = match kind {
                        BucketFn::Fraction => native_fraction(params[0][i], params[1][i], &h),
                        _ => native_quantile(params[pi][i], &h),
                    };
                    if note != NanNote::None {
                        let name = if delayed {
                            mat[si].labels.metric_name().unwrap_or("")
                        } else {
                            ""
                        };
                        let what = match note {
                            NanNote::ResultNaN => {
                                "input to histogram_quantile has NaN observations, result is NaN"
                            }
                            NanNote::Skewed => {
                                "input to histogram_quantile has NaN observations, result is skewed higher"
                            }
                            _ => {
                                "input to histogram_fraction has NaN observations, which are excluded from all fractions"
                            }
                        };
                        self.info(format!("{what} for metric name {name:?}"), nan_span);
                    }
                    push(self, Source::Native(si), pi, v);
                }
                for g in 0..groups.len() {
                    if buckets[g].is_empty() {
                        continue;
                    }
                    let v = match kind {
                        BucketFn::Fraction => {
                            bucket_fraction(params[0][i], params[1][i], &mut buckets[g])
                        }
                        _ => {
                            let (v, forced) = bucket_quantile(params[pi][i], &mut buckets[g]);
                            if forced {
                                let name = if delayed {
                                    groups[g].0.metric_name().unwrap_or("")
                                } else {
                                    ""
                                };
                                self.info(
                                    format!(
                                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
                                    ),
                                    monotonic_span,
                                );
                            }
                            v
                        }
                    };
                    push(self, Source::Classic(g), pi, v);
                }
            }
        }
        out.retain(|s| !s.points.is_empty());
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
        }
        Ok(Evaluated::Vector(self.merge_if_immediate(out)?))
    }

    /// `histogram_stddev` / `histogram_stdvar` of native histograms (floats are skipped).
    pub fn histogram_spread(&mut self, c: &Call, stddev: bool) -> Result<Evaluated, QueryError> {
        let mut mat = self.eval_vector(&c.args[0])?;
        for s in &mut mat {
            s.points.retain_mut(|p| match p.h.take() {
                Some(h) => {
                    let var = histogram_variance(&h);
                    p.f = if stddev { var.sqrt() } else { var };
                    true
                }
                None => false,
            });
            self.drop_name(s);
        }
        mat.retain(|s| !s.points.is_empty());
        Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
    }
}
