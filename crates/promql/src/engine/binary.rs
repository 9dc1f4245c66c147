//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`, and the set
//! operators `and`, `or`, `unless`, between scalars and instant vectors.
//!
//! Vector matching: each series' match signature (its `on` labels, or all labels but the
//! `ignoring` ones and the metric name) is computed once; each step builds a map of the "one"
//! side by signature and looks the "many" side up in it. The result labels of a pair are
//! cached. Errors are Prometheus' own: duplicate series on the "one" side, one-to-one
//! matching that needs `group_left`/`group_right`, and grouping labels that do not make
//! results unique.

use super::eval::{Ev, Evaluated, Mat, Point, SeriesData, StepCursor, drop_metadata};
use super::types::QueryError;
use crate::ast::Span;
use crate::ast::{Binary, BinaryOp, Cardinality, VectorMatching};
use model::histogram::{CounterResetHint, FloatHistogram};
use model::labels::{Labels, METRIC_NAME};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Applies a float operator; `None` when a comparison is false (the element is filtered).
fn apply(op: BinaryOp, l: f64, r: f64) -> Option<f64> {
    Some(match op {
        BinaryOp::Add => l + r,
        BinaryOp::Sub => l - r,
        BinaryOp::Mul => l * r,
        BinaryOp::Div => l / r,
        BinaryOp::Pow => l.powf(r),
        BinaryOp::Mod => l % r,
        BinaryOp::Atan2 => l.atan2(r),
        BinaryOp::Eql => return (l == r).then_some(l),
        BinaryOp::Neq => return (l != r).then_some(l),
        BinaryOp::Gtr => return (l > r).then_some(l),
        BinaryOp::Lss => return (l < r).then_some(l),
        BinaryOp::Gte => return (l >= r).then_some(l),
        BinaryOp::Lte => return (l <= r).then_some(l),
        // Trim operators only apply to histograms; on floats nothing is kept.
        _ => return None,
    })
}

/// A value during binary evaluation: a float or a histogram.
type Val = (f64, Option<Arc<FloatHistogram>>);

/// What applying an operator to one pair of values gave.
struct ElemOut {
    f: f64,
    h: Option<Arc<FloatHistogram>>,
    /// False when a comparison filtered the pair out (or the pair is unsupported).
    keep: bool,
    /// The pair produces no output at all (an unsupported combination or a failed
    /// histogram operation), whatever `bool` says.
    skip: bool,
    note: Option<Note>,
}

/// An annotation raised by one element of a binary operation.
enum Note {
    Info(String),
    Warn(String),
}

fn type_name(h: &Option<Arc<FloatHistogram>>) -> &'static str {
    if h.is_some() { "histogram" } else { "float" }
}

/// Prometheus' `vectorElemBinop`: the operator on one pair, floats and histograms alike.
fn elem_binop(op: BinaryOp, l: &Val, r: &Val) -> ElemOut {
    let out = |f: f64, h: Option<FloatHistogram>, keep: bool| ElemOut {
        f,
        h: h.map(Arc::new),
        keep,
        skip: false,
        note: None,
    };
    let incompatible = || ElemOut {
        f: 0.0,
        h: None,
        keep: false,
        skip: true,
        note: Some(Note::Info(format!(
            "incompatible sample types encountered for binary operator {:?}: {} {} {}",
            op.as_str(),
            type_name(&l.1),
            op.as_str(),
            type_name(&r.1)
        ))),
    };
    match (&l.1, &r.1) {
        (None, None) => {
            if matches!(op, BinaryOp::TrimUpper | BinaryOp::TrimLower) {
                return incompatible();
            }
            match apply(op, l.0, r.0) {
                Some(v) => out(if op.is_comparison() { l.0 } else { v }, None, true),
                None => out(l.0, None, false),
            }
        }
        (None, Some(h)) => {
            if op != BinaryOp::Mul {
                return incompatible();
            }
            let mut res = (**h).clone();
            res.mul(l.0);
            res.compact();
            out(0.0, Some(res), true)
        }
        (Some(h), None) => {
            let mut res = (**h).clone();
            match op {
                BinaryOp::Mul => res.mul(r.0),
                BinaryOp::Div => res.div(r.0),
                BinaryOp::TrimUpper => res = res.trim_buckets(r.0, true),
                BinaryOp::TrimLower => res = res.trim_buckets(r.0, false),
                _ => return incompatible(),
            }
            res.compact();
            out(0.0, Some(res), true)
        }
        (Some(hl), Some(hr)) => match op {
            BinaryOp::Add | BinaryOp::Sub => {
                let mut res = (**hl).clone();
                let result = if op == BinaryOp::Add {
                    res.add(hr)
                } else {
                    res.sub(hr)
                };
                let what = if op == BinaryOp::Add {
                    "addition"
                } else {
                    "subtraction"
                };
                match result {
                    Err(_) => ElemOut {
                        f: 0.0,
                        h: None,
                        keep: false,
                        skip: true,
                        note: Some(Note::Warn(format!(
                            "incompatible bucket layout encountered for binary operator {}",
                            op.as_str()
                        ))),
                    },
                    Ok(o) if o.counter_reset_collision => ElemOut {
                        f: 0.0,
                        h: None,
                        keep: false,
                        skip: true,
                        note: Some(Note::Warn(format!(
                            "conflicting counter resets during histogram {what}"
                        ))),
                    },
                    Ok(o) => {
                        if op == BinaryOp::Sub {
                            res.counter_reset_hint = CounterResetHint::Gauge;
                        }
                        res.compact();
                        let mut e = out(0.0, Some(res), true);
                        if o.custom_bounds_reconciled {
                            e.note = Some(Note::Info(format!(
                                "mismatched custom buckets were reconciled during {what}"
                            )));
                        }
                        e
                    }
                }
            }
            BinaryOp::Eql | BinaryOp::Neq => {
                let eq = hl.equals(hr);
                ElemOut {
                    f: 0.0,
                    h: Some(hl.clone()),
                    keep: if op == BinaryOp::Eql { eq } else { !eq },
                    skip: false,
                    note: None,
                }
            }
            _ => incompatible(),
        },
    }
}

/// Arithmetic drops the metric name; comparisons keep it (unless `bool`).
fn changes_metric(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Atan2
    )
}

impl Ev<'_> {
    pub fn eval_binary(&mut self, b: &Binary) -> Result<Evaluated, QueryError> {
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Evaluated::Scalar(l), Evaluated::Scalar(r)) => Ok(Evaluated::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(x, y)| {
                        if b.op.is_comparison() {
                            if apply(b.op, *x, *y).is_some() {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            apply(b.op, *x, *y).unwrap_or(f64::NAN)
                        }
                    })
                    .collect(),
            )),
            (Evaluated::Vector(v), Evaluated::Scalar(s)) => self.vector_scalar(b, v, &s, false),
            (Evaluated::Scalar(s), Evaluated::Vector(v)) => self.vector_scalar(b, v, &s, true),
            (Evaluated::Vector(l), Evaluated::Vector(r)) => {
                let default_matching = VectorMatching {
                    card: if b.op.is_set_operator() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    labels: Vec::new(),
                    on: false,
                    include: Vec::new(),
                    fill: Default::default(),
                };
                let matching = b.matching.as_ref().unwrap_or(&default_matching);
                match b.op {
                    BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => {
                        Ok(Evaluated::Vector(self.set_op(b.op, l, r, matching)?))
                    }
                    _ => Ok(Evaluated::Vector(self.vector_vector(b, l, r, matching)?)),
                }
            }
            _ => Err(QueryError::Execution(format!(
                "invalid operand types for binary operator {}",
                b.op.as_str()
            ))),
        }
    }

    fn vector_scalar(
        &mut self,
        b: &Binary,
        mut v: Mat,
        s: &[f64],
        scalar_left: bool,
    ) -> Result<Evaluated, QueryError> {
        let start = self.start;
        let interval = self.interval;
        let mut notes: Vec<Note> = Vec::new();
        for series in &mut v {
            series.points.retain_mut(|p| {
                let sv = s[((p.t - start) / interval) as usize];
                let vector_val: Val = (p.f, p.h.take());
                let scalar_val: Val = (sv, None);
                let e = if scalar_left {
                    elem_binop(b.op, &scalar_val, &vector_val)
                } else {
                    elem_binop(b.op, &vector_val, &scalar_val)
                };
                if let Some(n) = e.note {
                    let skip = matches!(n, Note::Info(_));
                    notes.push(n);
                    // Prometheus drops the element on an info, never on a warning.
                    if skip {
                        return false;
                    }
                }
                if e.skip {
                    return false;
                }
                if b.return_bool {
                    p.f = if e.keep { 1.0 } else { 0.0 };
                    p.h = None;
                    return true;
                }
                if !e.keep {
                    return false;
                }
                if b.op.is_comparison() {
                    // A comparison keeps the vector element's own value.
                    p.f = vector_val.0;
                    p.h = vector_val.1;
                } else {
                    p.f = e.f;
                    p.h = e.h;
                }
                true
            });
            if changes_metric(b.op) || b.return_bool {
                self.drop_name(series);
            }
        }
        self.report_notes(notes, b.span);
        v.retain(|s| !s.points.is_empty());
        Ok(Evaluated::Vector(self.merge_if_immediate(v)?))
    }

    /// Turns the notes of a binary operation into annotations (Prometheus keeps only the
    /// last one of a step; one of each kind is enough after deduplication).
    fn report_notes(&mut self, notes: Vec<Note>, span: Span) {
        for n in notes {
            match n {
                Note::Info(m) => self.info(m, span),
                Note::Warn(m) => self.warn(m, span),
            }
        }
    }

    /// The match signature of a label set.
    fn signature(labels: &Labels, m: &VectorMatching) -> Labels {
        let names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        if m.on {
            labels.keep_only(&names)
        } else {
            let mut names = names;
            names.push(METRIC_NAME);
            labels.drop_names(&names)
        }
    }

    fn set_op(
        &mut self,
        op: BinaryOp,
        l: Mat,
        r: Mat,
        m: &VectorMatching,
    ) -> Result<Mat, QueryError> {
        let lsig: Vec<Labels> = l.iter().map(|s| Self::signature(&s.labels, m)).collect();
        let rsig: Vec<Labels> = r.iter().map(|s| Self::signature(&s.labels, m)).collect();
        let mut lc = StepCursor::new(&l);
        let mut rc = StepCursor::new(&r);
        let mut l_out: Vec<Vec<Point>> = vec![Vec::new(); l.len()];
        let mut r_out: Vec<Vec<Point>> = vec![Vec::new(); r.len()];
        for i in 0..self.steps() {
            let ts = self.step_ts(i);
            let mut rset: HashSet<&Labels> = HashSet::new();
            let mut rpts: Vec<(usize, &Point)> = Vec::new();
            rc.at(&r, ts, |si, p| {
                rset.insert(&rsig[si]);
                rpts.push((si, p));
            });
            let mut lset: HashSet<&Labels> = HashSet::new();
            lc.at(&l, ts, |si, p| {
                let keep = match op {
                    BinaryOp::And => rset.contains(&lsig[si]),
                    BinaryOp::Unless => !rset.contains(&lsig[si]),
                    _ => true,
                };
                if keep {
                    l_out[si].push(p.clone());
                }
                lset.insert(&lsig[si]);
            });
            if op == BinaryOp::Or {
                for (si, p) in rpts {
                    if !lset.contains(&rsig[si]) {
                        r_out[si].push(p.clone());
                    }
                }
            }
        }
        let mut out: Mat = Vec::new();
        for (s, pts) in l.into_iter().zip(l_out) {
            if !pts.is_empty() {
                out.push(SeriesData { points: pts, ..s });
            }
        }
        for (s, pts) in r.into_iter().zip(r_out) {
            if !pts.is_empty() {
                out.push(SeriesData { points: pts, ..s });
            }
        }
        merge_or_fail(out)
    }

    fn vector_vector(
        &mut self,
        b: &Binary,
        l: Mat,
        r: Mat,
        m: &VectorMatching,
    ) -> Result<Mat, QueryError> {
        // One-to-many is many-to-one with the sides swapped.
        let swapped = m.card == Cardinality::OneToMany;
        let (many, one) = if swapped { (r, l) } else { (l, r) };
        // Prometheus applies `fill_right` to a missing "one" side and `fill_left` to a missing
        // "many" side after the group_right swap, so the fill values are not swapped.
        let (fill_many, fill_one) = (m.fill.lhs, m.fill.rhs);
        let many_sig: Vec<Labels> = many.iter().map(|s| Self::signature(&s.labels, m)).collect();
        let one_sig: Vec<Labels> = one.iter().map(|s| Self::signature(&s.labels, m)).collect();
        let mut many_c = StepCursor::new(&many);
        let mut one_c = StepCursor::new(&one);
        let mut out: Mat = Vec::new();
        let mut out_index: HashMap<Labels, usize> = HashMap::new();
        let mut metric_cache: HashMap<(Option<usize>, Option<usize>), Labels> = HashMap::new();
        let side = if swapped { "left" } else { "right" };
        for i in 0..self.steps() {
            self.check_deadline()?;
            let ts = self.step_ts(i);
            let mut by_sig: HashMap<&Labels, (usize, Val)> = HashMap::new();
            let mut dup: Option<QueryError> = None;
            one_c.at(&one, ts, |si, p| {
                if let Some((other, _)) = by_sig.get(&one_sig[si]) {
                    if dup.is_none() {
                        dup = Some(QueryError::Execution(format!(
                            "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                            one_sig[si], one[si].labels, one[*other].labels
                        )));
                    }
                    return;
                }
                by_sig.insert(&one_sig[si], (si, (p.f, p.h.clone())));
            });
            if let Some(e) = dup {
                return Err(e);
            }
            let mut many_pts: Vec<(usize, Val)> = Vec::new();
            many_c.at(&many, ts, |si, p| many_pts.push((si, (p.f, p.h.clone()))));
            let mut matched: HashMap<&Labels, HashSet<Labels>> = HashMap::new();
            let mut results: Vec<(Labels, Val, bool)> = Vec::new();
            let mut notes: Vec<Note> = Vec::new();
            // (many index, one index, many value, one value, signature); an index is `None` where
            // a fill value stands in for a missing series.
            let mut pairs: Vec<Pair<'_>> = Vec::new();
            for (si, f) in &many_pts {
                let sig = &many_sig[*si];
                match by_sig.get(sig) {
                    Some((oi, of)) => {
                        pairs.push((Some(*si), Some(*oi), f.clone(), of.clone(), sig))
                    }
                    None => {
                        if let Some(fv) = fill_one {
                            pairs.push((Some(*si), None, f.clone(), (fv, None), sig));
                        }
                    }
                }
            }
            if let Some(fv) = fill_many {
                let many_sigs: HashSet<&Labels> =
                    many_pts.iter().map(|(si, _)| &many_sig[*si]).collect();
                for (sig, (oi, of)) in &by_sig {
                    if !many_sigs.contains(sig) {
                        pairs.push((None, Some(*oi), (fv, None), of.clone(), sig));
                    }
                }
            }
            for (mi, oi, mf, of, sig) in pairs {
                let (lf, rf) = if swapped { (of, mf) } else { (mf, of) };
                let e = elem_binop(b.op, &lf, &rf);
                if let Some(n) = e.note {
                    notes.push(n);
                }
                if e.skip {
                    continue;
                }
                let keep = e.keep;
                let value: Val = if b.return_bool {
                    (if keep { 1.0 } else { 0.0 }, None)
                } else {
                    (e.f, e.h)
                };
                let metric = match metric_cache.get(&(mi, oi)) {
                    Some(l) => l.clone(),
                    None => {
                        let many_labels = match mi {
                            Some(i) => many[i].labels.clone(),
                            None => sig.clone(),
                        };
                        let one_labels = match oi {
                            Some(i) => one[i].labels.clone(),
                            None => sig.clone(),
                        };
                        let l = result_metric(&many_labels, &one_labels, b.op, m);
                        metric_cache.insert((mi, oi), l.clone());
                        l
                    }
                };
                let seen = matched.entry(sig).or_default();
                if m.card == Cardinality::OneToOne {
                    if !seen.is_empty() {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    seen.insert(Labels::empty());
                } else if !seen.insert(metric.clone()) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                if !keep && !b.return_bool {
                    continue;
                }
                // A filtering comparison keeps the labels (and a pending name drop) of the side
                // its labels come from.
                let carried = mi.is_some_and(|i| many[i].drop_name);
                results.push((
                    metric,
                    value,
                    b.return_bool || (carried && !changes_metric(b.op)),
                ));
            }
            self.report_notes(notes, b.span);
            for (metric, value, drop) in results {
                let idx = match out_index.get(&metric) {
                    Some(&j) => {
                        if out[j].points.last().is_some_and(|p| p.t == ts) {
                            return Err(QueryError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        j
                    }
                    None => {
                        out_index.insert(metric.clone(), out.len());
                        out.push(SeriesData {
                            labels: metric,
                            points: Vec::new(),
                            drop_name: false,
                        });
                        out.len() - 1
                    }
                };
                out[idx].points.push(Point {
                    t: ts,
                    f: value.0,
                    h: value.1,
                });
                if drop {
                    out[idx].drop_name = true;
                }
            }
        }
        for s in &mut out {
            if s.drop_name && !self.opts.delayed_name_removal {
                s.labels = drop_metadata(&s.labels);
                s.drop_name = false;
            }
        }
        self.merge_if_immediate(out)
    }
}

type Pair<'s> = (Option<usize>, Option<usize>, Val, Val, &'s Labels);

/// The labels of a result: the "many" side's labels (without the metric name for arithmetic),
/// restricted by `on`/`ignoring` for one-to-one matching, plus the `group_x` labels taken from
/// the "one" side.
fn result_metric(many: &Labels, one: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut l = if changes_metric(op) {
        drop_metadata(many)
    } else {
        many.clone()
    };
    if m.card == Cardinality::OneToOne {
        let names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        l = if m.on {
            l.keep_only(&names)
        } else {
            l.drop_names(&names)
        };
    }
    if !m.include.is_empty() {
        let mut b = l.builder();
        for name in &m.include {
            match one.get(name) {
                Some(v) => b.set(name.as_str(), v),
                None => b.del(name),
            };
        }
        l = b.build();
    }
    l
}

/// Set operators never create new label sets but may combine series with equal labels (after
/// delayed name removal flags); merge them.
fn merge_or_fail(mat: Mat) -> Result<Mat, QueryError> {
    super::eval::merge_same_labels(mat)
}
