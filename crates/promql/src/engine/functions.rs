//! PromQL functions: those over instant vectors (applied per point), those over range vectors
//! (a window slid over each series' samples), and the special ones that rewrite labels or
//! look at the selector itself (`label_replace`, `absent`, `timestamp`, ...).
//!
//! Numerics follow Prometheus: sums use Kahan–Neumaier compensation, averages switch to an
//! incremental mean only when the running sum would overflow, `rate` extrapolates towards the
//! window edges by at most half an average sample interval (and never below zero for
//! counters), quantiles interpolate linearly between ranks, and classic-histogram quantiles
//! coalesce equal bounds and force monotonic bucket counts (with an info annotation).

use super::eval::{
    Ev, Evaluated, Mat, Point, RawSeries, SeriesData, unsupported_histograms, unwrap_parens,
};
use super::histogram_range::{HistOut, HistRangeFn, HistWindow};
use super::types::QueryError;
use crate::ast::{Call, Expr, Span};
use model::exposition::float_to_string;
use model::labels::{Labels, METRIC_NAME};
use model::matcher::MatchOp;

/// `sum, c` ← `sum + inc` with Kahan–Neumaier compensation `c`.
pub(super) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The φ-quantile of `values` (sorted here), interpolating between ranks; NaN sorts first.
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Mean with Kahan summation, switching to an incremental mean when the sum overflows.
pub(super) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut it = values;
    let first = it.next()?;
    let (mut sum, mut c, mut count) = (first, 0.0, 1.0);
    let (mut mean, mut incremental) = (0.0, false);
    for f in it {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        let (m, nc) = kahan_inc(f / count, q * mean, q * c);
        mean = m;
        c = nc;
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

/// Population variance with Kahan-compensated Welford updates.
fn variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &f in values {
        count += 1.0;
        let delta = f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Least-squares slope and intercept (at `intercept_t`) of `(t, f)` points.
fn linear_regression(points: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].1;
    let mut const_y = true;
    for (i, &(t, f)) in points.iter().enumerate() {
        if const_y && i > 0 && f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(f, sy, cy);
        (sxy, cxy) = kahan_inc(x * f, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// What a range function computes from one window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    FirstOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    MadOverTime,
    PresentOverTime,
    AbsentOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
    TsOfLastOverTime,
    TsOfFirstOverTime,
    DoubleExponentialSmoothing,
}

impl RangeFn {
    fn from_name(name: &str) -> Option<RangeFn> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "resets" => RangeFn::Resets,
            "changes" => RangeFn::Changes,
            "avg_over_time" => RangeFn::AvgOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "first_over_time" => RangeFn::FirstOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "mad_over_time" => RangeFn::MadOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "absent_over_time" => RangeFn::AbsentOverTime,
            "ts_of_min_over_time" => RangeFn::TsOfMinOverTime,
            "ts_of_max_over_time" => RangeFn::TsOfMaxOverTime,
            "ts_of_last_over_time" => RangeFn::TsOfLastOverTime,
            "ts_of_first_over_time" => RangeFn::TsOfFirstOverTime,
            "double_exponential_smoothing" => RangeFn::DoubleExponentialSmoothing,
            _ => return None,
        })
    }

    /// Functions that pass values through unchanged work on histograms too.
    fn value_agnostic(self) -> bool {
        matches!(
            self,
            RangeFn::CountOverTime
                | RangeFn::LastOverTime
                | RangeFn::FirstOverTime
                | RangeFn::PresentOverTime
                | RangeFn::AbsentOverTime
                | RangeFn::TsOfLastOverTime
                | RangeFn::TsOfFirstOverTime
        )
    }
}

/// Per-step context of a range function call.
struct Window<'w> {
    samples: &'w [Point],
    /// The step's evaluation time.
    ts: i64,
    /// The window is `(range_end - range, range_end]`.
    range_end: i64,
    range: i64,
    /// Scalar arguments at this step, in argument order (the range argument excluded).
    params: &'w [f64],
    anchored: bool,
    smoothed: bool,
}

/// The result of a range function for one window.
enum Out {
    None,
    Float(f64),
    Point(Point),
}

impl Ev<'_> {
    pub fn eval_call(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let name = c.func.name;
        if let Some(f) = RangeFn::from_name(name) {
            return self.eval_range_function(c, f);
        }
        let steps = self.steps();
        match name {
            "time" => Ok(Evaluated::Scalar(
                (0..steps)
                    .map(|i| self.step_ts(i) as f64 / 1000.0)
                    .collect(),
            )),
            "pi" => Ok(Evaluated::Scalar(vec![std::f64::consts::PI; steps])),
            "start" => Ok(Evaluated::Scalar(vec![
                self.query_start as f64 / 1000.0;
                steps
            ])),
            "end" => Ok(Evaluated::Scalar(vec![
                self.query_end as f64 / 1000.0;
                steps
            ])),
            "range" => Ok(Evaluated::Scalar(vec![
                (self.query_end - self.query_start)
                    as f64
                    / 1000.0;
                steps
            ])),
            "step" => {
                let step = if self.query_start == self.query_end {
                    0
                } else {
                    self.interval
                };
                Ok(Evaluated::Scalar(vec![step as f64 / 1000.0; steps]))
            }
            "min_of" | "max_of" => {
                let a = self.eval_scalar(&c.args[0])?;
                let b = self.eval_scalar(&c.args[1])?;
                let pick = if name == "min_of" { go_min } else { go_max };
                Ok(Evaluated::Scalar(
                    a.iter().zip(&b).map(|(x, y)| pick(*x, *y)).collect(),
                ))
            }
            "vector" => {
                let v = self.eval_scalar(&c.args[0])?;
                let points = v
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Point::float(self.step_ts(i), *f))
                    .collect();
                Ok(Evaluated::Vector(vec![SeriesData {
                    labels: Labels::empty(),
                    points,
                    drop_name: false,
                }]))
            }
            "scalar" => {
                let mat = self.eval_vector(&c.args[0])?;
                let mut out = vec![f64::NAN; steps];
                let mut count = vec![0u32; steps];
                for s in &mat {
                    for p in s.points.iter().filter(|p| p.h.is_none()) {
                        let i = self.step_of(p.t);
                        count[i] += 1;
                        out[i] = p.f;
                    }
                }
                for (o, n) in out.iter_mut().zip(count) {
                    if n != 1 {
                        *o = f64::NAN;
                    }
                }
                Ok(Evaluated::Scalar(out))
            }
            "timestamp" => {
                // Parentheses do not hide the selector (Prometheus unwraps them).
                let mut arg = &c.args[0];
                while let Expr::Paren(p) = arg {
                    arg = &p.expr;
                }
                let mut mat = match arg {
                    Expr::VectorSelector(vs) => self.eval_selector_timestamps(vs)?,
                    other => {
                        let mut m = self.eval_vector(other)?;
                        for s in &mut m {
                            for p in &mut s.points {
                                p.f = p.t as f64 / 1000.0;
                                p.h = None;
                            }
                        }
                        m
                    }
                };
                for s in &mut mat {
                    self.drop_name(s);
                }
                Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
            }
            "info" => self.eval_info(c),
            "label_replace" => self.label_replace(c),
            "label_join" => self.label_join(c),
            "absent" => self.absent(c),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => self.sort(c),
            "histogram_quantile" => self.histogram_quantile(c),
            "histogram_quantiles" => self.histogram_quantiles(c),
            "histogram_fraction" => self.histogram_fraction(c),
            "histogram_stddev" => self.histogram_spread(c, true),
            "histogram_stdvar" => self.histogram_spread(c, false),
            "histogram_count" | "histogram_sum" | "histogram_avg" => {
                let mut mat = self.eval_vector(&c.args[0])?;
                for s in &mut mat {
                    s.points.retain_mut(|p| match p.h.take() {
                        Some(h) => {
                            p.f = match name {
                                "histogram_count" => h.count,
                                "histogram_sum" => h.sum,
                                _ => h.sum / h.count,
                            };
                            true
                        }
                        None => false,
                    });
                    self.drop_name(s);
                }
                mat.retain(|s| !s.points.is_empty());
                Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut mat = self.eval_vector(&c.args[0])?;
                let lo = if name == "clamp_max" {
                    vec![f64::NEG_INFINITY; steps]
                } else {
                    self.eval_scalar(&c.args[1])?
                };
                let hi = match name {
                    "clamp" => self.eval_scalar(&c.args[2])?,
                    "clamp_max" => self.eval_scalar(&c.args[1])?,
                    _ => vec![f64::INFINITY; steps],
                };
                self.map_floats(&mut mat, |i, f| {
                    if hi[i] < lo[i] {
                        None
                    } else {
                        Some(go_max(lo[i], go_min(hi[i], f)))
                    }
                });
                Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
            }
            "round" => {
                let mut mat = self.eval_vector(&c.args[0])?;
                let to = if c.args.len() > 1 {
                    self.eval_scalar(&c.args[1])?
                } else {
                    vec![1.0; steps]
                };
                self.map_floats(&mut mat, |i, f| {
                    let inv = 1.0 / to[i];
                    Some((f * inv + 0.5).floor() / inv)
                });
                Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
            }
            "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour"
            | "minute" | "month" | "year" => {
                let part = date_part(name);
                if c.args.is_empty() {
                    let points = (0..steps)
                        .map(|i| {
                            Point::float(self.step_ts(i), part(self.step_ts(i).div_euclid(1000)))
                        })
                        .collect();
                    return Ok(Evaluated::Vector(vec![SeriesData {
                        labels: Labels::empty(),
                        points,
                        drop_name: false,
                    }]));
                }
                let mut mat = self.eval_vector(&c.args[0])?;
                self.map_floats(&mut mat, |_, f| Some(part(go_float_to_int(f))));
                Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
            }
            _ => {
                if let Some(f) = simple_math(name) {
                    let mut mat = self.eval_vector(&c.args[0])?;
                    self.map_floats(&mut mat, |_, v| Some(f(v)));
                    return Ok(Evaluated::Vector(self.merge_if_immediate(mat)?));
                }
                Err(QueryError::Execution(format!(
                    "function {name}() is not supported yet"
                )))
            }
        }
    }

    /// Applies `f(step index, value)` to every float point (histogram points are dropped, as
    /// Prometheus' float functions ignore them) and drops the metric name.
    fn map_floats(&self, mat: &mut Mat, f: impl Fn(usize, f64) -> Option<f64>) {
        for s in mat.iter_mut() {
            let start = self.start;
            let interval = self.interval;
            s.points.retain_mut(|p| {
                if p.h.is_some() {
                    return false;
                }
                let i = ((p.t - start) / interval) as usize;
                match f(i, p.f) {
                    Some(v) => {
                        p.f = v;
                        true
                    }
                    None => false,
                }
            });
            self.drop_name(s);
        }
        mat.retain(|s| !s.points.is_empty());
    }

    fn eval_range_function(&mut self, c: &Call, f: RangeFn) -> Result<Evaluated, QueryError> {
        let Some(matrix_idx) = c.args.iter().position(|a| {
            matches!(
                unwrap_parens(a),
                Expr::MatrixSelector(_) | Expr::Subquery(_)
            )
        }) else {
            return Err(QueryError::Execution(format!(
                "{}() needs a range vector argument",
                c.func.name
            )));
        };
        // Scalar arguments (evaluated once over all steps).
        let mut scalar_args: Vec<Vec<f64>> = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != matrix_idx {
                scalar_args.push(self.eval_scalar(a)?);
            }
        }
        let arg = unwrap_parens(&c.args[matrix_idx]);
        let (mut anchored, mut smoothed) = (false, false);
        let (series, range, at, offset) = match arg {
            Expr::MatrixSelector(ms) => {
                (anchored, smoothed) = (ms.selector.anchored, ms.selector.smoothed);
                let name = c.func.name;
                if anchored && !ANCHORED_SAFE.contains(&name) {
                    return Err(QueryError::Execution(format!(
                        "anchored modifier can only be used with: {} - not with {name}",
                        ANCHORED_SAFE.join(", ")
                    )));
                }
                if smoothed && !SMOOTHED_SAFE.contains(&name) {
                    return Err(QueryError::Execution(format!(
                        "smoothed modifier can only be used with: {} - not with {name}",
                        SMOOTHED_SAFE.join(", ")
                    )));
                }
                let range = self.duration_ms(&ms.range)?;
                let (at, offset) = self.selector_times(&ms.selector)?;
                (self.load_range(&ms.selector, range)?, range, at, offset)
            }
            Expr::Subquery(sq) => self.eval_subquery(sq)?,
            _ => return Err(QueryError::Execution("range argument expected".into())),
        };
        let arg_span = arg.span();
        let steps = self.steps();
        let keep_name = matches!(f, RangeFn::LastOverTime | RangeFn::FirstOverTime);
        if f == RangeFn::DoubleExponentialSmoothing {
            for (which, vals) in [("smoothing", &scalar_args[0]), ("trend", &scalar_args[1])] {
                if let Some(v) = vals.iter().find(|v| !(**v > 0.0 && **v < 1.0)) {
                    let short = if which == "smoothing" { "sf" } else { "tf" };
                    return Err(QueryError::Execution(format!(
                        "invalid {which} factor. Expected: 0 < {short} < 1, got: {v:.6}"
                    )));
                }
            }
        }
        let mut out: Mat = Vec::with_capacity(series.len());
        let mut covered = vec![false; steps];
        let mut params = vec![0.0; scalar_args.len()];
        // Reused for every window: the floats of the window.
        let mut scratch: Vec<(i64, f64)> = Vec::new();
        for RawSeries {
            labels,
            samples,
            drop_name,
        } in series
        {
            self.check_deadline()?;
            let mut points = Vec::new();
            let (mut lo, mut hi) = (0usize, 0usize);
            for i in 0..steps {
                let r = self.ref_time(i, at, offset);
                // Anchored windows reach back one lookback further for the sample that anchors
                // the start; smoothed ones also reach past the end to interpolate it.
                let lookback = self.opts.lookback_delta;
                let (back, ahead) = match (anchored, smoothed) {
                    (true, _) => (lookback, 0),
                    (_, true) => (lookback, lookback),
                    _ => (0, 0),
                };
                while hi < samples.len() && samples[hi].t <= r + ahead {
                    hi += 1;
                }
                while lo < hi && samples[lo].t <= r - range - back {
                    lo += 1;
                }
                // With @ every step sees the same window; pointers never move backwards.
                if lo > hi {
                    lo = hi;
                }
                let window = &samples[lo..hi];
                if window.is_empty() {
                    continue;
                }
                covered[i] = true;
                for (p, a) in params.iter_mut().zip(&scalar_args) {
                    *p = a[i];
                }
                let w = Window {
                    samples: window,
                    ts: self.step_ts(i),
                    range_end: r,
                    range,
                    params: &params,
                    anchored,
                    smoothed,
                };
                match self.apply_range_fn(f, &w, &labels, arg_span, &mut scratch)? {
                    Out::None => {}
                    Out::Float(v) => points.push(Point::float(w.ts, v)),
                    Out::Point(mut p) => {
                        p.t = w.ts;
                        points.push(p);
                    }
                }
            }
            if matches!(f, RangeFn::Rate | RangeFn::Increase)
                && !points.is_empty()
                && samples.iter().any(|p| p.h.is_none())
                && let Some(name) = labels.metric_name()
                && !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|s| name.ends_with(s))
            {
                self.info(
                    format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"),
                    arg_span,
                );
            }
            if points.is_empty() || f == RangeFn::AbsentOverTime {
                continue;
            }
            self.add_samples(points.len())?;
            let mut s = SeriesData {
                labels,
                points,
                drop_name,
            };
            if !keep_name {
                self.drop_name(&mut s);
            }
            out.push(s);
        }
        if f == RangeFn::AbsentOverTime {
            let points: Vec<Point> = (0..steps)
                .filter(|i| !covered[*i])
                .map(|i| Point::float(self.step_ts(i), 1.0))
                .collect();
            if points.is_empty() {
                return Ok(Evaluated::Vector(Vec::new()));
            }
            let mut s = SeriesData {
                labels: absent_labels(arg),
                points,
                drop_name: false,
            };
            self.drop_name(&mut s);
            return Ok(Evaluated::Vector(vec![s]));
        }
        if !self.opts.delayed_name_removal {
            let mut seen = std::collections::HashSet::new();
            if !out.iter().all(|s| seen.insert(s.labels.clone())) {
                return Err(QueryError::Execution(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
        }
        Ok(Evaluated::Vector(out))
    }

    fn apply_range_fn(
        &mut self,
        f: RangeFn,
        w: &Window<'_>,
        labels: &Labels,
        span: Span,
        scratch: &mut Vec<(i64, f64)>,
    ) -> Result<Out, QueryError> {
        let has_hist = w.samples.iter().any(|p| p.h.is_some());
        let hist_fn = match f {
            RangeFn::Rate => Some(HistRangeFn::Rate),
            RangeFn::Increase => Some(HistRangeFn::Increase),
            RangeFn::Delta => Some(HistRangeFn::Delta),
            RangeFn::Irate => Some(HistRangeFn::Irate),
            RangeFn::Idelta => Some(HistRangeFn::Idelta),
            RangeFn::Resets => Some(HistRangeFn::Resets),
            RangeFn::Changes => Some(HistRangeFn::Changes),
            RangeFn::SumOverTime => Some(HistRangeFn::SumOverTime),
            RangeFn::AvgOverTime => Some(HistRangeFn::AvgOverTime),
            _ => None,
        };
        if has_hist
            && !w.anchored
            && !w.smoothed
            && let Some(hf) = hist_fn
        {
            let hw = HistWindow {
                samples: w.samples,
                range_start: w.range_end - w.range,
                range_end: w.range_end,
                range: w.range,
            };
            return Ok(match self.histogram_range_fn(hf, &hw, labels, span)? {
                HistOut::None => Out::None,
                HistOut::Float(v) => Out::Float(v),
                HistOut::Histogram(h) => Out::Point(Point {
                    t: w.ts,
                    f: 0.0,
                    h: Some(std::sync::Arc::new(h)),
                }),
            });
        }
        if has_hist && !f.value_agnostic() {
            let has_float = w.samples.iter().any(|p| p.h.is_none());
            if has_float
                && matches!(
                    f,
                    RangeFn::Rate
                        | RangeFn::Increase
                        | RangeFn::Delta
                        | RangeFn::SumOverTime
                        | RangeFn::AvgOverTime
                )
            {
                let name = labels.metric_name().unwrap_or("");
                self.warn(
                    format!("encountered a mix of histograms and floats for metric name {name:?}"),
                    span,
                );
                return Ok(Out::None);
            }
            let float_only = matches!(
                f,
                RangeFn::MinOverTime
                    | RangeFn::MaxOverTime
                    | RangeFn::QuantileOverTime
                    | RangeFn::StddevOverTime
                    | RangeFn::StdvarOverTime
                    | RangeFn::MadOverTime
                    | RangeFn::Deriv
                    | RangeFn::PredictLinear
                    | RangeFn::DoubleExponentialSmoothing
                    | RangeFn::TsOfMinOverTime
                    | RangeFn::TsOfMaxOverTime
            );
            if !float_only {
                return Err(unsupported_histograms(&format!("{f:?}")));
            }
            // These functions look at floats only: histograms in a mixed range are ignored
            // (with an info), a range of only histograms gives no result.
            if !has_float {
                return Ok(Out::None);
            }
            let name = labels.metric_name().unwrap_or("");
            self.info(
                format!("ignored histograms in a range containing both floats and histograms for metric name {name:?}"),
                span,
            );
        }
        scratch.clear();
        scratch.extend(
            w.samples
                .iter()
                .filter(|p| p.h.is_none())
                .map(|p| (p.t, p.f)),
        );
        let floats: &[(i64, f64)] = scratch;
        let vals = || floats.iter().map(|(_, v)| *v);
        Ok(match f {
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta if w.anchored || w.smoothed => {
                let is_counter = f != RangeFn::Delta;
                let is_rate = f == RangeFn::Rate;
                let (start, end) = (w.range_end - w.range, w.range_end);
                match extended_rate(floats, start, end, w.range, w.smoothed, is_counter, is_rate) {
                    Some(v) => Out::Float(v),
                    None => Out::None,
                }
            }
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta => {
                let is_counter = f != RangeFn::Delta;
                let is_rate = f == RangeFn::Rate;
                match extrapolated_rate(
                    floats,
                    w.range_end - w.range,
                    w.range_end,
                    w.range,
                    is_counter,
                    is_rate,
                ) {
                    Some(v) => Out::Float(v),
                    None => Out::None,
                }
            }
            RangeFn::Irate | RangeFn::Idelta => {
                if floats.len() < 2 {
                    return Ok(Out::None);
                }
                let (t0, v0) = floats[floats.len() - 2];
                let (t1, v1) = floats[floats.len() - 1];
                let interval = t1 - t0;
                if interval == 0 {
                    return Ok(Out::None);
                }
                let is_rate = f == RangeFn::Irate;
                let mut v = if is_rate && v1 < v0 { v1 } else { v1 - v0 };
                if is_rate {
                    v /= interval as f64 / 1000.0;
                }
                Out::Float(v)
            }
            RangeFn::Deriv => {
                if floats.len() < 2 {
                    return Ok(Out::None);
                }
                Out::Float(linear_regression(floats, floats[0].0).0)
            }
            RangeFn::PredictLinear => {
                if floats.len() < 2 {
                    return Ok(Out::None);
                }
                let (slope, intercept) = linear_regression(floats, w.ts);
                Out::Float(slope * w.params[0] + intercept)
            }
            RangeFn::Resets | RangeFn::Changes => {
                let mut pts = floats;
                if w.anchored {
                    // Count from the last sample at or before the window start.
                    let start = w.range_end - w.range;
                    if pts.last().is_none_or(|p| p.0 <= start) {
                        return Ok(Out::None);
                    }
                    let first = pts[..pts.len() - 1]
                        .partition_point(|p| p.0 <= start)
                        .saturating_sub(1);
                    pts = &pts[first..];
                }
                let n = if f == RangeFn::Resets {
                    pts.windows(2).filter(|p| p[1].1 < p[0].1).count()
                } else {
                    pts.windows(2)
                        .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
                        .count()
                };
                Out::Float(n as f64)
            }
            RangeFn::AvgOverTime => mean(vals()).map_or(Out::None, Out::Float),
            RangeFn::SumOverTime => {
                let (mut s, mut c) = (0.0, 0.0);
                for v in vals() {
                    (s, c) = kahan_inc(v, s, c);
                }
                Out::Float(if s.is_infinite() { s } else { s + c })
            }
            RangeFn::MinOverTime
            | RangeFn::MaxOverTime
            | RangeFn::TsOfMinOverTime
            | RangeFn::TsOfMaxOverTime => {
                let Some(&(t0, v0)) = floats.first() else {
                    return Ok(Out::None);
                };
                let (mut best, mut best_t) = (v0, t0);
                for &(t, v) in floats {
                    let better = match f {
                        RangeFn::MaxOverTime => v > best || best.is_nan(),
                        RangeFn::MinOverTime => v < best || best.is_nan(),
                        RangeFn::TsOfMaxOverTime => v >= best || best.is_nan(),
                        _ => v <= best || best.is_nan(),
                    };
                    if better {
                        best = v;
                        best_t = t;
                    }
                }
                Out::Float(match f {
                    RangeFn::MaxOverTime | RangeFn::MinOverTime => best,
                    _ => best_t as f64 / 1000.0,
                })
            }
            RangeFn::CountOverTime => Out::Float(w.samples.len() as f64),
            RangeFn::PresentOverTime | RangeFn::AbsentOverTime => Out::Float(1.0),
            RangeFn::LastOverTime => w
                .samples
                .last()
                .map_or(Out::None, |p| Out::Point(p.clone())),
            RangeFn::FirstOverTime => w
                .samples
                .first()
                .map_or(Out::None, |p| Out::Point(p.clone())),
            RangeFn::TsOfLastOverTime => w
                .samples
                .last()
                .map_or(Out::None, |p| Out::Float(p.t as f64 / 1000.0)),
            RangeFn::TsOfFirstOverTime => w
                .samples
                .first()
                .map_or(Out::None, |p| Out::Float(p.t as f64 / 1000.0)),
            RangeFn::QuantileOverTime => {
                if floats.is_empty() {
                    return Ok(Out::None);
                }
                let q = w.params[0];
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    self.warn(
                        format!(
                            "quantile value should be between 0 and 1, got {}",
                            float_to_string(q)
                        ),
                        span,
                    );
                }
                let mut v: Vec<f64> = vals().collect();
                Out::Float(quantile(q, &mut v))
            }
            RangeFn::StddevOverTime | RangeFn::StdvarOverTime => {
                if floats.is_empty() {
                    return Ok(Out::None);
                }
                let v: Vec<f64> = vals().collect();
                let var = variance(&v);
                Out::Float(if f == RangeFn::StddevOverTime {
                    var.sqrt()
                } else {
                    var
                })
            }
            RangeFn::MadOverTime => {
                if floats.is_empty() {
                    return Ok(Out::None);
                }
                if vals().any(f64::is_nan) {
                    // A NaN makes the deviation undefined rather than being skipped.
                    return Ok(Out::Float(f64::NAN));
                }
                let mut v: Vec<f64> = vals().collect();
                let median = quantile(0.5, &mut v);
                let mut dev: Vec<f64> = vals().map(|x| (x - median).abs()).collect();
                Out::Float(quantile(0.5, &mut dev))
            }
            RangeFn::DoubleExponentialSmoothing => {
                if floats.len() < 2 {
                    return Ok(Out::None);
                }
                let (sf, tf) = (w.params[0], w.params[1]);
                let (mut s0, mut s1) = (0.0, floats[0].1);
                let mut b = floats[1].1 - floats[0].1;
                for (i, &(_, v)) in floats.iter().enumerate().skip(1) {
                    let x = sf * v;
                    // The trend at the previous point (the first trend is the initial slope).
                    if i > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let y = (1.0 - sf) * (s1 + b);
                    s0 = s1;
                    s1 = x + y;
                }
                Out::Float(s1)
            }
        })
    }

    fn label_replace(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let s = |i: usize| string_arg(&c.args[i]);
        let (dst, repl, src, regex) = (s(1)?, s(2)?, s(3)?, s(4)?);
        let re = model::regex::CapturingRegex::new(&regex).map_err(|_| {
            QueryError::Execution(format!(
                "invalid regular expression in label_replace(): {regex}"
            ))
        })?;
        if dst.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut mat = self.eval_vector(&c.args[0])?;
        for series in &mut mat {
            let src_val = series.labels.get_or_empty(&src).to_string();
            if let Some(caps) = re.regex().captures(&src_val) {
                let mut value = String::new();
                caps.expand(&repl, &mut value);
                let mut b = series.labels.builder();
                b.set(dst.as_str(), value);
                series.labels = b.build();
                if dst == METRIC_NAME {
                    series.drop_name = false;
                }
            }
        }
        Ok(Evaluated::Vector(super::eval::merge_same_labels(mat)?))
    }

    fn label_join(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let dst = string_arg(&c.args[1])?;
        let sep = string_arg(&c.args[2])?;
        let mut srcs = Vec::new();
        for a in &c.args[3..] {
            let s = string_arg(a)?;
            if s.is_empty() {
                return Err(QueryError::Execution(format!(
                    "invalid source label name in label_join(): {s}"
                )));
            }
            srcs.push(s);
        }
        if dst.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut mat = self.eval_vector(&c.args[0])?;
        for series in &mut mat {
            let joined = srcs
                .iter()
                .map(|s| series.labels.get_or_empty(s))
                .collect::<Vec<_>>()
                .join(&sep);
            let mut b = series.labels.builder();
            b.set(dst.as_str(), joined);
            series.labels = b.build();
            if dst == METRIC_NAME {
                series.drop_name = false;
            }
        }
        Ok(Evaluated::Vector(super::eval::merge_same_labels(mat)?))
    }

    fn absent(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let mat = self.eval_vector(&c.args[0])?;
        let mut present = vec![false; self.steps()];
        for s in &mat {
            for p in &s.points {
                present[self.step_of(p.t)] = true;
            }
        }
        let points: Vec<Point> = present
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| Point::float(self.step_ts(i), 1.0))
            .collect();
        if points.is_empty() {
            return Ok(Evaluated::Vector(Vec::new()));
        }
        Ok(Evaluated::Vector(vec![SeriesData {
            labels: absent_labels(&c.args[0]),
            points,
            drop_name: false,
        }]))
    }

    fn sort(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let mut mat = self.eval_vector(&c.args[0])?;
        if self.start != self.end {
            self.warn(
                "sort is ineffective for range queries since results are always ordered by labels"
                    .into(),
                c.span,
            );
            return Ok(Evaluated::Vector(mat));
        }
        let name = c.func.name;
        let value = |s: &SeriesData| s.points.first().map_or(f64::NAN, |p| p.f);
        match name {
            "sort" | "sort_desc" => {
                mat.retain(|s| s.points.first().is_some_and(|p| p.h.is_none()));
                let desc = name == "sort_desc";
                mat.sort_by(|a, b| {
                    let (x, y) = (value(a), value(b));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            _ => {
                let mut keys = Vec::new();
                for a in &c.args[1..] {
                    keys.push(string_arg(a)?);
                }
                let desc = name == "sort_by_label_desc";
                mat.sort_by(|a, b| {
                    for k in &keys {
                        let (x, y) = (a.labels.get_or_empty(k), b.labels.get_or_empty(k));
                        if x != y {
                            let o = natural_cmp(x, y);
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc { o.reverse() } else { o }
                });
            }
        }
        Ok(Evaluated::Vector(mat))
    }
}

/// Functions that accept `anchored` / `smoothed` range selectors.
const ANCHORED_SAFE: [&str; 5] = ["changes", "delta", "increase", "rate", "resets"];
const SMOOTHED_SAFE: [&str; 3] = ["delta", "increase", "rate"];

/// Rate over an anchored or smoothed window: the difference between the values at the window
/// edges (the last sample before the start, or interpolated when smoothed), corrected for
/// counter resets, without extrapolation.
fn extended_rate(
    f: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if f.is_empty() {
        return None;
    }
    let mut last = f.len() - 1;
    let mut first = f[..last]
        .partition_point(|p| p.0 <= range_start)
        .saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.0 < range_end);
    }
    // No result when all the data lies before or after the window.
    if f[last].0 <= range_start || f[first].0 > range_end {
        return None;
    }
    let interp = super::eval::interpolate;
    let left = if smoothed && f[first].0 < range_start && first + 1 < f.len() {
        interp(f[first], f[first + 1], range_start, is_counter)
    } else {
        f[first].1
    };
    let right = if smoothed && last > 0 && f[last].0 > range_end {
        interp(f[last - 1], f[last], range_end, is_counter)
    } else {
        f[last].1
    };
    let mut result = right - left;
    if is_counter {
        if f[first].0 <= range_start {
            first += 1;
        }
        let end = if f[last].0 >= range_end {
            last
        } else {
            last + 1
        };
        let mut correction = 0.0;
        let mut prev = left;
        for p in f.get(first..end).unwrap_or(&[]) {
            if p.1 < prev {
                correction += prev;
            }
            prev = p.1;
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

/// Prometheus' extrapolated rate over `(range_start, range_end]`.
fn extrapolated_rate(
    f: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if f.len() < 2 {
        return None;
    }
    let (first_t, first_v) = f[0];
    let (last_t, last_v) = f[f.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        for w in f.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg = sampled / (f.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// The quantile of classic buckets `(upper bound, cumulative count)`; also whether counts had to
/// be forced monotonic.
pub(super) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Coalesce equal bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(b, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b => last.1 += c,
            _ => merged.push((b, c)),
        }
    }
    // Force monotonicity; ignore tiny floating-point wobbles silently.
    let mut forced = false;
    let mut prev = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if merged.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = merged.len();
    let b = merged[..n - 1].partition_point(|x| x.1 < rank);
    if b == n - 1 {
        return (merged[n - 2].0, forced);
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return (merged[0].0, forced);
    }
    let (mut bucket_start, bucket_end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    (
        bucket_start + (bucket_end - bucket_start) * (rank / count),
        forced,
    )
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// The labels `absent()` reports: the selector's equality matchers (a name matched twice is
/// left out), without the metric name.
fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(ms) => &ms.selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = model::labels::LabelsBuilder::new();
    let mut has = std::collections::HashSet::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name) {
            b.set(m.name.as_str(), m.value.as_str());
            has.insert(m.name.clone());
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// A string argument; label names and values must be UTF-8 (Go escapes can produce other
/// bytes, which Prometheus rejects as invalid label names).
fn string_arg(e: &Expr) -> Result<String, QueryError> {
    match e {
        Expr::StringLiteral(s) => match s.as_str() {
            Some(v) => Ok(v.to_string()),
            None => Err(QueryError::Execution(format!(
                "invalid label name {:?}",
                s.to_string_lossy()
            ))),
        },
        Expr::Paren(p) => string_arg(&p.expr),
        other => Err(QueryError::Execution(format!(
            "expected a string literal, got {other}"
        ))),
    }
}

/// Functions that map one float to another.
fn simple_math(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's float64 → int64 conversion as used by the date functions (saturating here).
fn go_float_to_int(f: f64) -> i64 {
    if f.is_nan() { i64::MIN } else { f as i64 }
}

/// A calendar function of Unix seconds (UTC).
fn date_part(name: &str) -> fn(i64) -> f64 {
    match name {
        "days_in_month" => |s| {
            let (y, m, _) = civil(s);
            days_in_month(y, m) as f64
        },
        "day_of_month" => |s| civil(s).2 as f64,
        "day_of_week" => |s| (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil(s);
            ((1..m).map(|mm| days_in_month(y, mm)).sum::<u32>() + d) as f64
        },
        "hour" => |s| (s.rem_euclid(86_400) / 3600) as f64,
        "minute" => |s| (s.rem_euclid(3600) / 60) as f64,
        "month" => |s| civil(s).1 as f64,
        _ => |s| civil(s).0 as f64,
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Unix seconds to (year, month, day), proleptic Gregorian.
fn civil(secs: i64) -> (i64, u32, u32) {
    model::time::civil_from_days(secs.div_euclid(86_400))
}

/// Natural order: digit runs compare by number, everything else byte-wise.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (
                a[si..i].trim_start_matches('0'),
                b[sj..j].trim_start_matches('0'),
            );
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(951_782_400), (2000, 2, 29));
        assert_eq!(date_part("day_of_week")(0), 4.0);
        assert_eq!(date_part("day_of_year")(951_782_400), 60.0);
        assert_eq!(date_part("days_in_month")(951_782_400), 29.0);
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn quantiles_and_buckets() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, 3.0, 4.0]), 1.75);
        let mut b = vec![(0.1, 1.0), (0.2, 3.0), (f64::INFINITY, 4.0)];
        assert!((bucket_quantile(0.5, &mut b).0 - 0.15).abs() < 1e-12);
        let mut b = vec![(0.1, 2.0), (0.2, 1.0), (f64::INFINITY, 4.0)];
        assert!(bucket_quantile(0.5, &mut b).1, "forced monotonicity");
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("a10", "a10"), std::cmp::Ordering::Equal);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
    }
}
