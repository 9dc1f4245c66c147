//! `info(v, {selector})`: enriches each series of `v` with the data labels of the *info
//! series* (`target_info` by default) that share its identifying labels (`instance`, `job`).
//!
//! Semantics follow Prometheus:
//! - `__name__` matchers of the selector choose the info metrics (only negative ones are
//!   narrowed to `.+_info`, none at all means `target_info`); the other matchers constrain the
//!   data labels, and only labels they name are copied (all labels when there are none).
//! - A base series whose own name matches the info-metric matchers is an info series itself
//!   and passes through unchanged.
//! - At each step an info series' value is its newest sample within the lookback of the
//!   reference time the base sample was read at (the first selector's `@` and `offset`, and
//!   those of enclosing subqueries); of two info series with the same identity the newer wins,
//!   two equally new ones are an error.
//! - A base sample without a matching info series is kept unchanged unless a data-label
//!   matcher rejects the empty value, in which case it is dropped.

use super::eval::{Ev, Evaluated, Mat, Point, SeriesData, StepCursor, unwrap_parens};
use super::types::QueryError;
use crate::ast::{AtModifier, Call, Duration, Expr};
use model::labels::{Labels, METRIC_NAME};
use model::matcher::{MatchOp, Matcher};
use model::sample::is_stale_nan;
use std::collections::HashMap;

/// The labels that tie a base series to its info series.
const IDENTIFYING_LABELS: [&str; 2] = ["instance", "job"];

/// The info metric used when the selector names none.
const TARGET_INFO: &str = "target_info";

/// The `@` and `offset` of one selector or subquery on the way to the first selector.
type TimeShift = (Option<AtModifier>, Option<Duration>);

/// The `@`/`offset` modifiers on the path from `e` down to its first vector selector (in
/// Prometheus' pre-order traversal), outermost first; the reference time of a base sample is
/// found by applying them in that order.
fn first_selector_shifts(e: &Expr, out: &mut Vec<TimeShift>) -> bool {
    match e {
        Expr::VectorSelector(vs) => {
            out.push((vs.at, vs.offset.clone()));
            true
        }
        Expr::MatrixSelector(ms) => {
            out.push((ms.selector.at, ms.selector.offset.clone()));
            true
        }
        Expr::Subquery(sq) => {
            out.push((sq.at, sq.offset.clone()));
            if first_selector_shifts(&sq.expr, out) {
                return true;
            }
            out.pop();
            false
        }
        Expr::Paren(p) => first_selector_shifts(&p.expr, out),
        Expr::Unary(u) => first_selector_shifts(&u.expr, out),
        Expr::Binary(b) => first_selector_shifts(&b.lhs, out) || first_selector_shifts(&b.rhs, out),
        Expr::Aggregate(a) => {
            first_selector_shifts(&a.expr, out)
                || a.param
                    .as_ref()
                    .is_some_and(|p| first_selector_shifts(p, out))
        }
        Expr::Call(c) => c.args.iter().any(|a| first_selector_shifts(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => false,
    }
}

/// The effective `__name__` matchers choosing info metrics.
fn effective_name_matchers(mut names: Vec<Matcher>) -> Result<Vec<Matcher>, QueryError> {
    if names
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return Ok(names);
    }
    if names.is_empty() {
        return Ok(vec![Matcher::equal(METRIC_NAME, TARGET_INFO)]);
    }
    // Only exclusions would select every other metric in the store.
    let info_suffix = Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info")
        .map_err(|e| QueryError::Execution(e.to_string()))?;
    names.insert(0, info_suffix);
    Ok(names)
}

/// An info series during the join: its identity and the data labels it offers.
struct InfoSeries {
    name: String,
    identity: Labels,
    labels: Labels,
    samples: Vec<Point>,
}

impl Ev<'_> {
    pub fn eval_info(&mut self, c: &Call) -> Result<Evaluated, QueryError> {
        let base = self.eval_vector(&c.args[0])?;
        let mut name_matchers = Vec::new();
        // Data label name → its matchers, in order of appearance.
        let mut data_matchers: Vec<Matcher> = Vec::new();
        if let Some(sel) = c.args.get(1) {
            let Expr::VectorSelector(vs) = unwrap_parens(sel) else {
                return Err(QueryError::Execution(
                    "info(): the second argument must be a label selector".into(),
                ));
            };
            for m in &vs.matchers {
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                } else {
                    data_matchers.push(m.clone());
                }
            }
        }
        let name_matchers = effective_name_matchers(name_matchers)?;

        // Info series among the input are not enriched.
        let ignored: Vec<bool> = base
            .iter()
            .map(|s| {
                let name = s.labels.get_or_empty(METRIC_NAME);
                name_matchers.iter().all(|m| m.matches(name))
            })
            .collect();

        // The reference time of each step, as the first selector read it.
        let mut shifts = Vec::new();
        first_selector_shifts(&c.args[0], &mut shifts);
        let mut ref_times = Vec::with_capacity(self.steps());
        for i in 0..self.steps() {
            let mut t = self.step_ts(i);
            for (at, offset) in &shifts {
                if let Some(at) = at {
                    t = self.at_time(at);
                }
                if let Some(d) = offset {
                    t -= self.duration_ms(d)?;
                }
            }
            ref_times.push(t);
        }

        let infos =
            self.fetch_info_series(&base, &ignored, &name_matchers, &data_matchers, &ref_times)?;
        self.combine_with_info(base, &ignored, &infos, &data_matchers, &ref_times)
    }

    /// Selects the info series whose identifying labels occur among the base series.
    fn fetch_info_series(
        &mut self,
        base: &Mat,
        ignored: &[bool],
        name_matchers: &[Matcher],
        data_matchers: &[Matcher],
        ref_times: &[i64],
    ) -> Result<Vec<InfoSeries>, QueryError> {
        let mut wanted: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
        for (s, _) in base.iter().zip(ignored).filter(|(_, ig)| !**ig) {
            for l in IDENTIFYING_LABELS {
                if let Some(v) = s.labels.get(l).filter(|v| !v.is_empty()) {
                    wanted.entry(l).or_default().insert(v);
                }
            }
        }
        let (Some(&first), Some(&last)) = (ref_times.iter().min(), ref_times.iter().max()) else {
            return Ok(Vec::new());
        };
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut matchers: Vec<Matcher> = data_matchers.to_vec();
        matchers.extend(name_matchers.iter().cloned());
        let lookback = self.opts.lookback_delta;
        let raw = self.select_matchers(&matchers, first - lookback + 1, last)?;
        let mut out = Vec::new();
        for s in raw {
            // The identifying labels a base series has must match exactly.
            let related = wanted
                .iter()
                .all(|(l, vals)| s.labels.get(l).is_some_and(|v| vals.contains(v)));
            if !related {
                continue;
            }
            out.push(InfoSeries {
                name: s.labels.get_or_empty(METRIC_NAME).to_string(),
                identity: s.labels.keep_only(&IDENTIFYING_LABELS),
                labels: s.labels,
                samples: s.samples,
            });
        }
        Ok(out)
    }

    fn combine_with_info(
        &mut self,
        base: Mat,
        ignored: &[bool],
        infos: &[InfoSeries],
        data_matchers: &[Matcher],
        ref_times: &[i64],
    ) -> Result<Evaluated, QueryError> {
        let lookback = self.opts.lookback_delta;
        let mut info_names: Vec<&str> = Vec::new();
        for s in infos {
            if !info_names.contains(&s.name.as_str()) {
                info_names.push(&s.name);
            }
        }
        let base_identity: Vec<Labels> = base
            .iter()
            .map(|s| s.labels.keep_only(&IDENTIFYING_LABELS))
            .collect();
        let drop_unmatched = data_matchers.iter().any(|m| !m.matches_empty());
        let mut out: Mat = Vec::new();
        let mut out_index: HashMap<(Labels, bool), usize> = HashMap::new();
        let mut cursor = StepCursor::new(&base);
        for (i, &r) in ref_times.iter().enumerate() {
            self.check_deadline()?;
            let ts = self.step_ts(i);
            let mut present: Vec<(usize, &Point)> = Vec::new();
            cursor.at(&base, ts, |si, p| present.push((si, p)));
            if present.is_empty() {
                continue;
            }
            // The info sample of each identity at this step: (series, original timestamp).
            let mut current: HashMap<(&str, &Labels), (usize, i64)> = HashMap::new();
            for (ii, s) in infos.iter().enumerate() {
                let idx = s.samples.partition_point(|p| p.t <= r);
                let Some(p) = idx.checked_sub(1).and_then(|j| s.samples.get(j)) else {
                    continue;
                };
                if p.t <= r - lookback {
                    continue;
                }
                if p.h.is_some() {
                    return Err(QueryError::Execution("info sample should be float".into()));
                }
                if is_stale_nan(p.f) {
                    continue;
                }
                let key = (s.name.as_str(), &s.identity);
                match current.get(&key) {
                    Some(&(other, t)) if t == p.t => {
                        return Err(QueryError::Execution(format!(
                            "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                            infos[other].labels, t, s.labels, p.t
                        )));
                    }
                    Some(&(_, t)) if t > p.t => {}
                    _ => {
                        current.insert(key, (ii, p.t));
                    }
                }
            }
            for (si, p) in present {
                let series = &base[si];
                let labels = if ignored[si] {
                    series.labels.clone()
                } else {
                    let mut added = model::labels::LabelsBuilder::new();
                    let mut matched_any = false;
                    for name in &info_names {
                        let Some(&(ii, _)) = current.get(&(*name, &base_identity[si])) else {
                            continue;
                        };
                        matched_any = true;
                        for l in &infos[ii].labels {
                            let lname = l.name.as_str();
                            if lname == METRIC_NAME {
                                continue;
                            }
                            if !data_matchers.is_empty()
                                && !data_matchers.iter().any(|m| m.name == lname)
                            {
                                continue;
                            }
                            if let Some(v) = added.get(lname)
                                && v != l.value.as_str()
                            {
                                return Err(QueryError::Execution(format!(
                                    "conflicting label: {lname}"
                                )));
                            }
                            if series.labels.has(lname) {
                                continue;
                            }
                            added.set(l.name.clone(), l.value.clone());
                        }
                    }
                    if !matched_any && drop_unmatched {
                        continue;
                    }
                    let mut b = series.labels.builder();
                    for l in added.labels() {
                        b.set(l.name.clone(), l.value.clone());
                    }
                    b.build()
                };
                let key = (labels, series.drop_name);
                let j = match out_index.get(&key) {
                    Some(&j) => {
                        if out[j].points.last().is_some_and(|q| q.t == ts) {
                            return Err(QueryError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        j
                    }
                    None => {
                        out_index.insert(key.clone(), out.len());
                        out.push(SeriesData {
                            labels: key.0,
                            points: Vec::new(),
                            drop_name: key.1,
                        });
                        out.len() - 1
                    }
                };
                out[j].points.push(p.clone());
            }
        }
        let n: usize = out.iter().map(|s| s.points.len()).sum();
        self.add_samples(n)?;
        Ok(Evaluated::Vector(self.merge_if_immediate(out)?))
    }
}
