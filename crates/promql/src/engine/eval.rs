//! The evaluator: walks the tree once over all steps of the query.
//!
//! Every node yields an [`Evaluated`]: a scalar per step, a string, or an instant vector over
//! the steps held series-major ([`SeriesData`]: labels plus one point per step where the series
//! has a value). Selectors read each series once for the whole query range and pick the
//! sample for each step with a moving cursor; range functions slide a window over that buffer
//! (`functions.rs`); binary operators (`binary.rs`) and aggregations (`aggregate.rs`) combine
//! the inputs step by step.
//!
//! Time model: steps are `start, start+interval, …, end` (an instant query has one step). The
//! `@` modifier pins a selector or subquery to one time for every step; `offset` shifts it.
//! Instant selectors look back `lookback_delta` in a left-open window `(t-δ, t]`; range
//! selectors select `(t-r, t]`; staleness markers end a series.
//!
//! Name removal: with `delayed_name_removal` a series only gets a `drop_name` flag where an
//! operation would drop `__name__`, and the names go at the very end; otherwise they go at
//! once. Either way series that end up with the same labels are merged, and colliding at one
//! step is the error "vector cannot contain metrics with the same labelset".

use super::types::{Annotation, AnnotationKind, QueryError, QueryResult, Sample, Series, Value};
use super::{CancelFlag, EngineOptions};
use crate::ast::{AtModifier, Duration, Expr, Span, Subquery, UnaryOp, VectorSelector};
use model::histogram::FloatHistogram;
use model::labels::{Labels, METRIC_NAME};
use model::sample::is_stale_nan;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use storage::{Queryable, SelectHints, ValueKind};

/// One value of a series at one step (or one raw sample in a range window).
#[derive(Debug, Clone)]
pub(super) struct Point {
    pub t: i64,
    pub f: f64,
    pub h: Option<Arc<FloatHistogram>>,
}

impl Point {
    pub fn float(t: i64, f: f64) -> Point {
        Point { t, f, h: None }
    }
}

/// A series during evaluation.
#[derive(Debug, Clone)]
pub(super) struct SeriesData {
    pub labels: Labels,
    /// Sorted by time; at most one per step.
    pub points: Vec<Point>,
    /// `__name__` (and the other metadata labels) must go at the end of evaluation.
    pub drop_name: bool,
}

pub(super) type Mat = Vec<SeriesData>;

/// The value of a node over all steps.
#[derive(Debug, Clone)]
pub(super) enum Evaluated {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// An instant vector over the steps.
    Vector(Mat),
    /// A range vector (raw samples), only as a whole instant query's result.
    Range(Mat),
}

/// Labels that go away with the metric name (Prometheus' metadata labels).
pub(super) const METADATA_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

pub(super) fn drop_metadata(l: &Labels) -> Labels {
    if METADATA_LABELS.iter().any(|n| l.has(n)) {
        l.drop_names(&METADATA_LABELS)
    } else {
        l.clone()
    }
}

/// The evaluator of one query (or of a subquery's inner expression).
pub(super) struct Ev<'a> {
    pub opts: &'a EngineOptions,
    pub storage: &'a dyn Queryable,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    /// The outermost query's range, for `@ start()` / `@ end()`.
    pub query_start: i64,
    pub query_end: i64,
    pub annotations: Vec<Annotation>,
    deadline: Instant,
    cancel: Option<CancelFlag>,
    /// Samples held by the evaluation so far (bounded by `max_samples`).
    samples: usize,
}

/// Runs a whole query.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    opts: &EngineOptions,
    storage: &dyn Queryable,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
    cancel: Option<CancelFlag>,
) -> Result<QueryResult, QueryError> {
    let mut ev = Ev {
        opts,
        storage,
        start,
        end,
        interval: if instant { 1 } else { step },
        query_start: start,
        query_end: end,
        annotations: Vec::new(),
        deadline: Instant::now() + opts.timeout,
        cancel,
        samples: 0,
    };
    if !instant {
        match expr.value_type() {
            crate::ValueType::Scalar | crate::ValueType::Vector => {}
            other => {
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    other.documented()
                )));
            }
        }
    }
    let value = ev.eval(expr)?;
    let value = match value {
        Evaluated::Scalar(v) if instant => Value::Scalar {
            t: start,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Evaluated::Scalar(v) => Value::Matrix(vec![Series {
            labels: Labels::empty(),
            floats: v
                .iter()
                .enumerate()
                .map(|(i, f)| (start + i as i64 * step, *f))
                .collect(),
            histograms: Vec::new(),
        }]),
        Evaluated::String(s) => Value::String { t: start, s },
        Evaluated::Vector(mat) => {
            let mat = ev.finish_names(mat)?;
            if instant {
                Value::Vector(
                    mat.into_iter()
                        .filter_map(|s| {
                            let p = s.points.into_iter().next()?;
                            Some(Sample {
                                labels: s.labels,
                                t: p.t,
                                value: match p.h {
                                    Some(h) => storage::Value::Histogram(h),
                                    None => storage::Value::Float(p.f),
                                },
                            })
                        })
                        .collect(),
                )
            } else {
                Value::Matrix(to_matrix(mat))
            }
        }
        Evaluated::Range(mat) => {
            let mat = ev.finish_names(mat)?;
            Value::Matrix(to_matrix(mat))
        }
    };
    let mut seen = std::collections::HashSet::new();
    let annotations = ev
        .annotations
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect();
    Ok(QueryResult { value, annotations })
}

/// Series sorted by labels, floats and histograms split.
fn to_matrix(mat: Mat) -> Vec<Series> {
    let mut out: Vec<Series> = mat
        .into_iter()
        .map(|s| {
            let mut series = Series {
                labels: s.labels,
                floats: Vec::new(),
                histograms: Vec::new(),
            };
            for p in s.points {
                match p.h {
                    Some(h) => series.histograms.push((p.t, h)),
                    None => series.floats.push((p.t, p.f)),
                }
            }
            series
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

impl<'a> Ev<'a> {
    /// An evaluator for a subquery's inner grid, sharing limits and annotations' destination.
    fn child(&self, start: i64, end: i64, interval: i64) -> Ev<'a> {
        Ev {
            opts: self.opts,
            storage: self.storage,
            start,
            end,
            interval,
            query_start: self.query_start,
            query_end: self.query_end,
            annotations: Vec::new(),
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            samples: self.samples,
        }
    }

    pub fn steps(&self) -> usize {
        ((self.end - self.start) / self.interval + 1) as usize
    }

    pub fn step_ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    pub fn step_of(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    pub fn warn(&mut self, message: String, span: Span) {
        self.annotations.push(Annotation {
            kind: AnnotationKind::Warning,
            message: format!("PromQL warning: {message}"),
            span,
        });
    }

    pub fn info(&mut self, message: String, span: Span) {
        self.annotations.push(Annotation {
            kind: AnnotationKind::Info,
            message: format!("PromQL info: {message}"),
            span,
        });
    }

    /// Fails when the query ran out of time or was canceled.
    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(QueryError::Canceled("expression evaluation"));
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout("expression evaluation"));
        }
        Ok(())
    }

    /// Accounts `n` more samples held in memory.
    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Marks that a series lost its name: now, or at the end with delayed name removal.
    pub fn drop_name(&self, s: &mut SeriesData) {
        if self.opts.delayed_name_removal {
            s.drop_name = true;
        } else {
            s.labels = drop_metadata(&s.labels);
        }
    }

    /// After an operation that may have made label sets equal: merges equal series, failing
    /// when two have a point at the same step. (Deferred to the end with delayed removal.)
    pub fn merge_if_immediate(&self, mat: Mat) -> Result<Mat, QueryError> {
        if self.opts.delayed_name_removal {
            return Ok(mat);
        }
        merge_same_labels(mat)
    }

    /// End of evaluation: apply delayed name removal and merge.
    fn finish_names(&self, mut mat: Mat) -> Result<Mat, QueryError> {
        if !self.opts.delayed_name_removal {
            return Ok(mat);
        }
        for s in &mut mat {
            if s.drop_name {
                s.labels = drop_metadata(&s.labels);
                s.drop_name = false;
            }
        }
        merge_same_labels(mat)
    }

    /// A duration in milliseconds (expressions see the query's step and range).
    pub fn duration_ms(&self, d: &Duration) -> Result<i64, QueryError> {
        match d {
            Duration::Fixed(ms) => Ok(*ms),
            Duration::Expr(e) => {
                let step = (self.query_step_ms() as f64) / 1000.0;
                let range = ((self.query_end - self.query_start) as f64) / 1000.0;
                let secs = e.evaluate_seconds(step, range);
                let ms = secs * 1000.0;
                if !ms.is_finite() || ms.abs() > (i64::MAX / 2) as f64 {
                    return Err(QueryError::Execution(format!(
                        "duration expression out of range: {secs}"
                    )));
                }
                Ok(ms.round() as i64)
            }
        }
    }

    fn query_step_ms(&self) -> i64 {
        if self.query_start == self.query_end {
            0
        } else {
            self.interval
        }
    }

    /// The time an `@` modifier pins to.
    pub fn at_time(&self, at: &AtModifier) -> i64 {
        match at {
            AtModifier::Timestamp(t) => *t,
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
        }
    }

    /// The reference time of step `i` for a selector with `at`/`offset`.
    pub fn ref_time(&self, i: usize, at: Option<i64>, offset: i64) -> i64 {
        at.unwrap_or_else(|| self.step_ts(i)) - offset
    }

    pub fn eval(&mut self, expr: &Expr) -> Result<Evaluated, QueryError> {
        self.check_deadline()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Evaluated::Scalar(vec![n.value; self.steps()])),
            Expr::StringLiteral(s) => Ok(Evaluated::String(s.to_string_lossy())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => {
                let v = self.eval(&u.expr)?;
                match (u.op, v) {
                    (UnaryOp::Neg, Evaluated::Scalar(v)) => {
                        Ok(Evaluated::Scalar(v.into_iter().map(|x| -x).collect()))
                    }
                    (UnaryOp::Neg, Evaluated::Vector(mut mat)) => {
                        for s in &mut mat {
                            for p in &mut s.points {
                                if let Some(h) = &p.h {
                                    let mut neg = (**h).clone();
                                    neg.mul(-1.0);
                                    p.h = Some(Arc::new(neg));
                                }
                                p.f = -p.f;
                            }
                            self.drop_name(s);
                        }
                        Ok(Evaluated::Vector(self.merge_if_immediate(mat)?))
                    }
                    (_, v) => Ok(v),
                }
            }
            Expr::VectorSelector(vs) => Ok(Evaluated::Vector(self.eval_vector_selector(vs)?)),
            Expr::MatrixSelector(ms) => {
                if self.start != self.end {
                    return Err(QueryError::Execution(
                        "cannot do range evaluation of matrix selector".into(),
                    ));
                }
                // An instant query's matrix result: exactly the window (with synthetic edge
                // points for anchored and smoothed selectors).
                let range = self.duration_ms(&ms.range)?;
                let (at, offset) = self.selector_times(&ms.selector)?;
                let r = self.ref_time(0, at, offset);
                let raw = self.load_range(&ms.selector, range)?;
                let vs = &ms.selector;
                let mat = raw
                    .into_iter()
                    .map(|s| {
                        let points = if vs.anchored || vs.smoothed {
                            extend_floats(&s.samples, r - range, r, vs.smoothed)
                        } else {
                            s.samples
                                .into_iter()
                                .filter(|p| p.t > r - range && p.t <= r)
                                .collect()
                        };
                        SeriesData {
                            labels: s.labels,
                            points,
                            drop_name: false,
                        }
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                Ok(Evaluated::Range(mat))
            }
            Expr::Subquery(sq) => {
                if self.start != self.end {
                    return Err(QueryError::Execution(
                        "cannot do range evaluation of a subquery".into(),
                    ));
                }
                let (raw, range, at, offset) = self.eval_subquery(sq)?;
                let r = self.ref_time(0, at, offset);
                let mat = raw
                    .into_iter()
                    .map(|s| SeriesData {
                        labels: s.labels,
                        points: s
                            .samples
                            .into_iter()
                            .filter(|p| p.t > r - range && p.t <= r)
                            .collect(),
                        drop_name: s.drop_name,
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                Ok(Evaluated::Range(mat))
            }
            Expr::Call(c) => self.eval_call(c),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Binary(b) => self.eval_binary(b),
        }
    }

    /// Evaluates an expression that must be a scalar (function arguments, parameters).
    pub fn eval_scalar(&mut self, expr: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr)? {
            Evaluated::Scalar(v) => Ok(v),
            _ => Err(QueryError::Execution(format!(
                "expected a scalar, got {expr}"
            ))),
        }
    }

    pub fn eval_vector(&mut self, expr: &Expr) -> Result<Mat, QueryError> {
        match self.eval(expr)? {
            Evaluated::Vector(m) => Ok(m),
            _ => Err(QueryError::Execution(format!(
                "expected an instant vector, got {expr}"
            ))),
        }
    }

    /// Reads the series a selector matches with their samples in `[mint, maxt]`.
    fn select(
        &mut self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        range: i64,
        keep_stale: bool,
    ) -> Result<Vec<RawSeries>, QueryError> {
        self.select_raw(&vs.matchers, mint, maxt, range, keep_stale)
    }

    /// The series `matchers` select with all their samples in `[mint, maxt]`, staleness
    /// markers included (for lookups that apply the lookback themselves).
    pub fn select_matchers(
        &mut self,
        matchers: &[model::matcher::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>, QueryError> {
        self.select_raw(matchers, mint, maxt, 0, true)
    }

    fn select_raw(
        &mut self,
        matchers: &[model::matcher::Matcher],
        mint: i64,
        maxt: i64,
        range: i64,
        keep_stale: bool,
    ) -> Result<Vec<RawSeries>, QueryError> {
        let q = self.storage.querier(mint, maxt)?;
        let hints = SelectHints {
            start: mint,
            end: maxt,
            step: self.interval,
            range,
            func: None,
        };
        let mut out = Vec::new();
        for s in q.select(false, Some(&hints), matchers)? {
            self.check_deadline()?;
            let s = s?;
            let mut it = s.samples;
            let mut samples = Vec::new();
            while let Some(kind) = it.next() {
                match kind {
                    ValueKind::Float => {
                        let (t, f) = it.at();
                        if !keep_stale && is_stale_nan(f) {
                            continue;
                        }
                        samples.push(Point::float(t, f));
                    }
                    ValueKind::Histogram => {
                        if let Some((t, h)) = it.at_histogram() {
                            if !keep_stale && is_stale_nan(h.sum) {
                                continue;
                            }
                            samples.push(Point {
                                t,
                                f: 0.0,
                                h: Some(h),
                            });
                        }
                    }
                }
            }
            if let Some(e) = it.err() {
                return Err(e.into());
            }
            self.add_samples(samples.len())?;
            out.push(RawSeries {
                labels: s.labels,
                samples,
                drop_name: false,
            });
        }
        Ok(out)
    }

    /// Offset and `@` of a selector.
    pub fn selector_times(&self, vs: &VectorSelector) -> Result<(Option<i64>, i64), QueryError> {
        let offset = match &vs.offset {
            Some(d) => self.duration_ms(d)?,
            None => 0,
        };
        Ok((vs.at.as_ref().map(|a| self.at_time(a)), offset))
    }

    /// The first and last reference times over all steps.
    pub fn ref_range(&self, at: Option<i64>, offset: i64) -> (i64, i64) {
        (
            self.ref_time(0, at, offset),
            self.ref_time(self.steps() - 1, at, offset),
        )
    }

    /// An instant vector selector over all steps.
    pub fn eval_vector_selector(&mut self, vs: &VectorSelector) -> Result<Mat, QueryError> {
        if vs.smoothed {
            return self.eval_smoothed_selector(vs);
        }
        let (at, offset) = self.selector_times(vs)?;
        let lookback = self.opts.lookback_delta;
        let (first, last) = self.ref_range(at, offset);
        let raw = self.select(vs, first - lookback + 1, last, 0, true)?;
        let steps = self.steps();
        let mut out = Vec::with_capacity(raw.len());
        for s in raw {
            let mut points = Vec::new();
            let mut j = 0usize;
            for i in 0..steps {
                let r = self.ref_time(i, at, offset);
                // Newest sample at or before r.
                while j + 1 < s.samples.len() && s.samples[j + 1].t <= r {
                    j += 1;
                }
                let Some(p) = s.samples.get(j) else { break };
                if p.t > r || p.t <= r - lookback {
                    continue;
                }
                let stale = match &p.h {
                    Some(h) => is_stale_nan(h.sum),
                    None => is_stale_nan(p.f),
                };
                if stale {
                    continue;
                }
                points.push(Point {
                    t: self.step_ts(i),
                    f: p.f,
                    h: p.h.clone(),
                });
            }
            if !points.is_empty() {
                self.add_samples(points.len())?;
                out.push(SeriesData {
                    labels: s.labels,
                    points,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }

    /// `timestamp(selector)`: the timestamps of the samples the selector picks.
    pub fn eval_selector_timestamps(&mut self, vs: &VectorSelector) -> Result<Mat, QueryError> {
        let (at, offset) = self.selector_times(vs)?;
        let lookback = self.opts.lookback_delta;
        let (first, last) = self.ref_range(at, offset);
        let raw = self.select(vs, first - lookback + 1, last, 0, true)?;
        let mut out = Vec::new();
        for s in raw {
            let mut points = Vec::new();
            let mut j = 0usize;
            for i in 0..self.steps() {
                let r = self.ref_time(i, at, offset);
                while j + 1 < s.samples.len() && s.samples[j + 1].t <= r {
                    j += 1;
                }
                let Some(p) = s.samples.get(j) else { break };
                if p.t > r || p.t <= r - lookback || p.h.is_none() && is_stale_nan(p.f) {
                    continue;
                }
                points.push(Point::float(self.step_ts(i), p.t as f64 / 1000.0));
            }
            if !points.is_empty() {
                out.push(SeriesData {
                    labels: s.labels,
                    points,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }

    /// Raw samples (stale markers removed) of a range selector, covering the windows of all
    /// steps.
    pub fn load_range(
        &mut self,
        vs: &VectorSelector,
        range: i64,
    ) -> Result<Vec<RawSeries>, QueryError> {
        let (at, offset) = self.selector_times(vs)?;
        let (first, last) = self.ref_range(at, offset);
        let lookback = self.opts.lookback_delta;
        // Anchored and smoothed windows also see the sample before the window (and, smoothed,
        // the one after it) to anchor or interpolate the edges.
        let (before, after) = match (vs.anchored, vs.smoothed) {
            (true, _) => (lookback, 0),
            (_, true) => (lookback, lookback),
            _ => (0, 0),
        };
        let raw = self.select(vs, first - range - before + 1, last + after, range, false)?;
        if (vs.anchored || vs.smoothed)
            && raw.iter().any(|s| s.samples.iter().any(|p| p.h.is_some()))
        {
            return Err(QueryError::Execution(
                "smoothed and anchored modifiers do not work with native histograms".into(),
            ));
        }
        Ok(raw)
    }

    /// `x smoothed`: at each step, the value interpolated between the samples around it
    /// (within the lookback), or the last value when there is none after it.
    fn eval_smoothed_selector(&mut self, vs: &VectorSelector) -> Result<Mat, QueryError> {
        let (at, offset) = self.selector_times(vs)?;
        let lookback = self.opts.lookback_delta;
        let (first, last) = self.ref_range(at, offset);
        let raw = self.select(vs, first - lookback + 1, last + lookback, 0, false)?;
        let mut out = Vec::new();
        for s in raw {
            if s.samples.iter().any(|p| p.h.is_some()) {
                return Err(QueryError::Execution(
                    "smoothed and anchored modifiers do not work with native histograms".into(),
                ));
            }
            let mut points = Vec::new();
            for i in 0..self.steps() {
                let r = self.ref_time(i, at, offset);
                let window: Vec<&Point> = s
                    .samples
                    .iter()
                    .filter(|p| p.t > r - lookback && p.t <= r + lookback)
                    .collect();
                let idx = window.partition_point(|p| p.t < r);
                let v = match (
                    window.get(idx),
                    idx.checked_sub(1).and_then(|j| window.get(j)),
                ) {
                    (Some(next), _) if next.t == r => Some(next.f),
                    (Some(next), Some(prev)) => {
                        Some(interpolate((prev.t, prev.f), (next.t, next.f), r, false))
                    }
                    (None, Some(prev)) => Some(prev.f),
                    _ => None,
                };
                if let Some(v) = v {
                    points.push(Point::float(self.step_ts(i), v));
                }
            }
            if !points.is_empty() {
                out.push(SeriesData {
                    labels: s.labels,
                    points,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a subquery's inner expression on its own grid. Returns the inner series (points
    /// at grid times), the range, `@` and offset, for the caller to window per step.
    pub fn eval_subquery(
        &mut self,
        sq: &Subquery,
    ) -> Result<(Vec<RawSeries>, i64, Option<i64>, i64), QueryError> {
        let range = self.duration_ms(&sq.range)?;
        let step = match &sq.step {
            Some(d) => self.duration_ms(d)?,
            None => self.opts.default_subquery_step,
        };
        if step <= 0 {
            return Err(QueryError::Execution(
                "zero or negative subquery step".into(),
            ));
        }
        let offset = match &sq.offset {
            Some(d) => self.duration_ms(d)?,
            None => 0,
        };
        let at = sq.at.as_ref().map(|a| self.at_time(a));
        let (first, last) = self.ref_range(at, offset);
        // First grid time strictly after the earliest window start, aligned to the step.
        let lower = first - range;
        let inner_start = (lower.div_euclid(step) + 1) * step;
        let inner_end = last;
        if inner_end < inner_start {
            return Ok((Vec::new(), range, at, offset));
        }
        let steps = (inner_end - inner_start) / step + 1;
        self.add_samples(0)?;
        if steps as u64 > self.opts.max_samples as u64 {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let mut child = self.child(inner_start, inner_end, step);
        let value = child.eval(&sq.expr)?;
        self.annotations.append(&mut child.annotations);
        self.samples = child.samples;
        let mat = match value {
            Evaluated::Vector(m) => m,
            Evaluated::Scalar(v) => vec![SeriesData {
                labels: Labels::empty(),
                points: v
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Point::float(inner_start + i as i64 * step, *f))
                    .collect(),
                drop_name: false,
            }],
            _ => {
                return Err(QueryError::Execution(
                    "subquery of a non-vector expression".into(),
                ));
            }
        };
        Ok((
            mat.into_iter()
                .map(|s| RawSeries {
                    labels: s.labels,
                    samples: s.points,
                    drop_name: s.drop_name,
                })
                .collect(),
            range,
            at,
            offset,
        ))
    }
}

/// Linear interpolation at `t` between two samples; for counters a drop means a reset, so the
/// line starts from zero.
pub(super) fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && p2.1 < p1.1 { 0.0 } else { p1.1 };
    y1 + (p2.1 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// The samples of an anchored or smoothed window `(mint, maxt]`: a point at `mint` carrying
/// the value at the window start (the last earlier sample, or interpolated when smoothed), the
/// samples strictly inside, and a point at `maxt` with the value at the end.
pub(super) fn extend_floats(samples: &[Point], mint: i64, maxt: i64, smoothed: bool) -> Vec<Point> {
    if samples.is_empty() {
        return Vec::new();
    }
    let mut last = samples.len() - 1;
    let mut first = samples[..last]
        .partition_point(|p| p.t <= mint)
        .saturating_sub(1);
    if smoothed {
        last = samples[..last].partition_point(|p| p.t < maxt);
    }
    if samples[last].t <= mint {
        return Vec::new();
    }
    let f = |p: &Point| (p.t, p.f);
    let left = if smoothed && samples[first].t < mint && first + 1 < samples.len() {
        interpolate(f(&samples[first]), f(&samples[first + 1]), mint, false)
    } else {
        samples[first].f
    };
    let right = if smoothed && last > 0 && samples[last].t > maxt {
        interpolate(f(&samples[last - 1]), f(&samples[last]), maxt, false)
    } else {
        samples[last].f
    };
    if samples[first].t <= mint {
        first += 1;
    }
    let mut out = vec![Point::float(mint, left)];
    let inner_end = if samples[last].t >= maxt {
        last
    } else {
        last + 1
    };
    if first < inner_end {
        out.extend(samples[first..inner_end].iter().cloned());
    }
    out.push(Point::float(maxt, right));
    out
}

/// The expression inside any number of parentheses (which never change a value's type).
pub(super) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// A series with the raw samples a range function windows over.
pub(super) struct RawSeries {
    pub labels: Labels,
    pub samples: Vec<Point>,
    pub drop_name: bool,
}

/// Merges series with equal labels; a collision at one time is an error.
pub(super) fn merge_same_labels(mat: Mat) -> Result<Mat, QueryError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(mat.len());
    let mut out: Mat = Vec::with_capacity(mat.len());
    let mut merged_any = false;
    for s in mat {
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                merged_any = true;
                let target = &mut out[i];
                target.drop_name |= s.drop_name;
                target.points.extend(s.points);
            }
        }
    }
    if merged_any {
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(QueryError::Execution(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn unsupported_histograms(what: &str) -> QueryError {
    QueryError::Execution(format!("native histograms are not supported yet in {what}"))
}

/// Per-step access to a matrix: yields, for each step in order, the series that have a point.
pub(super) struct StepCursor {
    pos: Vec<usize>,
}

impl StepCursor {
    pub fn new(mat: &Mat) -> Self {
        StepCursor {
            pos: vec![0; mat.len()],
        }
    }

    /// Calls `f(series index, point)` for every series with a point at `t`; steps must be
    /// visited in increasing order.
    pub fn at<'m>(&mut self, mat: &'m Mat, t: i64, mut f: impl FnMut(usize, &'m Point)) {
        for (i, s) in mat.iter().enumerate() {
            let p = &mut self.pos[i];
            while *p < s.points.len() && s.points[*p].t < t {
                *p += 1;
            }
            if let Some(pt) = s.points.get(*p)
                && pt.t == t
            {
                f(i, pt);
            }
        }
    }
}
