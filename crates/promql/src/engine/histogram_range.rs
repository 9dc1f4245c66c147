//! Range functions over native histograms: `rate`, `increase`, `delta`, `irate`, `idelta`,
//! `resets`, `changes`, `sum_over_time` and `avg_over_time`, with Prometheus' annotations
//! (gauge histograms in counter functions and the reverse, mixed floats and histograms,
//! mixed exponential and custom buckets, reconciled custom bounds, conflicting resets).
//!
//! Counter semantics: a rate is the last histogram minus the first (at the coarsest schema
//! seen), plus every histogram that precedes a detected counter reset; a reset between the
//! first and second sample makes the first one count as empty.

use super::eval::{Ev, Point};
use super::types::QueryError;
use crate::ast::Span;
use model::histogram::{CounterResetHint, FloatHistogram};
use model::labels::Labels;
use std::sync::Arc;

/// The range functions this module evaluates on windows holding histograms.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum HistRangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Resets,
    Changes,
    SumOverTime,
    AvgOverTime,
}

/// One window of a range function.
pub(super) struct HistWindow<'w> {
    pub samples: &'w [Point],
    pub range_start: i64,
    pub range_end: i64,
    pub range: i64,
}

/// The result of a function over one window.
pub(super) enum HistOut {
    None,
    Float(f64),
    Histogram(FloatHistogram),
}

impl Ev<'_> {
    /// Evaluates `f` over a window that contains at least one histogram.
    pub(super) fn histogram_range_fn(
        &mut self,
        f: HistRangeFn,
        w: &HistWindow<'_>,
        labels: &Labels,
        span: Span,
    ) -> Result<HistOut, QueryError> {
        let name = labels.metric_name().unwrap_or("").to_string();
        let has_float = w.samples.iter().any(|p| p.h.is_none());
        let hists: Vec<&Arc<FloatHistogram>> =
            w.samples.iter().filter_map(|p| p.h.as_ref()).collect();
        let mixed_warning = |ev: &mut Self| {
            ev.warn(
                format!("encountered a mix of histograms and floats for metric name {name:?}"),
                span,
            )
        };
        match f {
            HistRangeFn::Rate | HistRangeFn::Increase | HistRangeFn::Delta => {
                if has_float {
                    mixed_warning(self);
                    return Ok(HistOut::None);
                }
                if hists.len() < 2 {
                    return Ok(HistOut::None);
                }
                let is_counter = f != HistRangeFn::Delta;
                let Some(mut h) = self.histogram_rate(&hists, is_counter, &name, span) else {
                    return Ok(HistOut::None);
                };
                let first_t = w.samples[0].t;
                let last_t = w.samples[w.samples.len() - 1].t;
                let mut to_start = (first_t - w.range_start) as f64 / 1000.0;
                let mut to_end = (w.range_end - last_t) as f64 / 1000.0;
                let sampled = (last_t - first_t) as f64 / 1000.0;
                let avg = sampled / (hists.len() - 1) as f64;
                let threshold = avg * 1.1;
                if to_start >= threshold {
                    to_start = avg / 2.0;
                }
                if to_end >= threshold {
                    to_end = avg / 2.0;
                }
                let mut factor = (sampled + to_start + to_end) / sampled;
                if f == HistRangeFn::Rate {
                    factor /= w.range as f64 / 1000.0;
                }
                h.mul(factor);
                Ok(HistOut::Histogram(h))
            }
            HistRangeFn::Irate | HistRangeFn::Idelta => {
                let is_rate = f == HistRangeFn::Irate;
                // The last two samples, whatever their kind.
                let n = w.samples.len();
                if n < 2 {
                    return Ok(HistOut::None);
                }
                let (prev, last) = (&w.samples[n - 2], &w.samples[n - 1]);
                let (Some(ph), Some(lh)) = (&prev.h, &last.h) else {
                    if prev.h.is_some() || last.h.is_some() {
                        mixed_warning(self);
                        return Ok(HistOut::None);
                    }
                    // Two floats after histograms: the float rule.
                    let v = if is_rate && last.f < prev.f {
                        last.f
                    } else {
                        last.f - prev.f
                    };
                    let interval = last.t - prev.t;
                    if interval == 0 {
                        return Ok(HistOut::None);
                    }
                    return Ok(HistOut::Float(if is_rate {
                        v / (interval as f64 / 1000.0)
                    } else {
                        v
                    }));
                };
                let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
                if is_rate && (gauge(ph) || gauge(lh)) {
                    self.warn(
                        format!("this native histogram metric is not a counter: {name:?}"),
                        span,
                    );
                }
                if !is_rate && (!gauge(ph) || !gauge(lh)) {
                    self.warn(
                        format!("this native histogram metric is not a gauge: {name:?}"),
                        span,
                    );
                }
                let mut res = (**lh).clone();
                if !is_rate || !lh.detect_reset(ph) {
                    match res.sub(ph) {
                        Err(_) => {
                            self.mixed_schemas_warning(&name, span);
                            return Ok(HistOut::None);
                        }
                        Ok(o) if o.custom_bounds_reconciled => self.info(
                            "mismatched custom buckets were reconciled during subtraction".into(),
                            span,
                        ),
                        Ok(_) => {}
                    }
                }
                res.counter_reset_hint = CounterResetHint::Gauge;
                res.compact();
                if is_rate {
                    res.div((last.t - prev.t) as f64 / 1000.0);
                }
                Ok(HistOut::Histogram(res))
            }
            HistRangeFn::Resets | HistRangeFn::Changes => {
                let mut n = 0usize;
                for pair in w.samples.windows(2) {
                    let (prev, curr) = (&pair[0], &pair[1]);
                    let hit = match (&prev.h, &curr.h) {
                        (None, None) => {
                            if f == HistRangeFn::Resets {
                                curr.f < prev.f
                            } else {
                                curr.f != prev.f && !(curr.f.is_nan() && prev.f.is_nan())
                            }
                        }
                        (Some(p), Some(c)) => {
                            if f == HistRangeFn::Resets {
                                c.detect_reset(p)
                            } else {
                                !c.equals(p)
                            }
                        }
                        _ => true,
                    };
                    n += usize::from(hit);
                }
                Ok(HistOut::Float(n as f64))
            }
            HistRangeFn::SumOverTime | HistRangeFn::AvgOverTime => {
                if has_float {
                    mixed_warning(self);
                    return Ok(HistOut::None);
                }
                let Some(first) = hists.first() else {
                    return Ok(HistOut::None);
                };
                let mut total = (***first).clone();
                let (mut collision, mut reconciled) = (false, false);
                for h in &hists[1..] {
                    match total.add(h) {
                        Err(_) => {
                            self.mixed_schemas_warning(&name, span);
                            return Ok(HistOut::None);
                        }
                        Ok(o) => {
                            collision |= o.counter_reset_collision;
                            reconciled |= o.custom_bounds_reconciled;
                        }
                    }
                }
                if collision {
                    self.warn(
                        "conflicting counter resets during histogram aggregation".into(),
                        span,
                    );
                }
                if reconciled {
                    self.info(
                        "mismatched custom buckets were reconciled during aggregation".into(),
                        span,
                    );
                }
                if f == HistRangeFn::AvgOverTime {
                    total.div(hists.len() as f64);
                }
                total.compact();
                Ok(HistOut::Histogram(total))
            }
        }
    }

    fn mixed_schemas_warning(&mut self, name: &str, span: Span) {
        self.warn(
            format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"),
            span,
        );
    }

    /// The increase from the first to the last histogram, corrected for counter resets
    /// (`is_counter`), as a gauge histogram; `None` when the histograms cannot be combined.
    fn histogram_rate(
        &mut self,
        points: &[&Arc<FloatHistogram>],
        is_counter: bool,
        name: &str,
        span: Span,
    ) -> Option<FloatHistogram> {
        let (first, last) = (points[0], points[points.len() - 1]);
        let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
        if is_counter && (gauge(first) || gauge(last)) {
            self.warn(
                format!("this native histogram metric is not a counter: {name:?}"),
                span,
            );
        }
        let mut prev: FloatHistogram = (**first).clone();
        // A reset right after the first sample: the first one counts as empty, and its
        // layout no longer matters.
        if is_counter
            && let Some(second) = points.get(1)
            && second.detect_reset(&prev)
        {
            prev = FloatHistogram {
                schema: second.schema,
                custom_values: second.custom_values.clone(),
                ..FloatHistogram::default()
            };
        }
        let custom = prev.uses_custom_buckets();
        if last.uses_custom_buckets() != custom {
            self.mixed_schemas_warning(name, span);
            return None;
        }
        let mut min_schema = prev.schema.min(last.schema);
        for h in &points[1..points.len() - 1] {
            if !is_counter {
                continue;
            }
            if gauge(h) {
                self.warn(
                    format!("this native histogram metric is not a counter: {name:?}"),
                    span,
                );
            }
            min_schema = min_schema.min(h.schema);
            if h.uses_custom_buckets() != custom {
                self.mixed_schemas_warning(name, span);
                return None;
            }
        }
        let mut h = last.copy_to_schema(min_schema);
        match h.sub(&prev) {
            Err(_) => {
                self.mixed_schemas_warning(name, span);
                return None;
            }
            Ok(o) if o.custom_bounds_reconciled => self.info(
                "mismatched custom buckets were reconciled during subtraction".into(),
                span,
            ),
            Ok(_) => {}
        }
        if is_counter {
            let mut prev_ref: &FloatHistogram = &prev;
            for curr in &points[1..] {
                if curr.detect_reset(prev_ref) {
                    match h.add(prev_ref) {
                        Err(_) => {
                            self.mixed_schemas_warning(name, span);
                            return None;
                        }
                        Ok(o) if o.custom_bounds_reconciled => self.info(
                            "mismatched custom buckets were reconciled during addition".into(),
                            span,
                        ),
                        Ok(_) => {}
                    }
                }
                prev_ref = curr;
            }
        } else if !gauge(first) || !gauge(last) {
            self.warn(
                format!("this native histogram metric is not a gauge: {name:?}"),
                span,
            );
        }
        h.counter_reset_hint = CounterResetHint::Gauge;
        h.compact();
        Some(h)
    }
}
