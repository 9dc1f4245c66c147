//! Comparing an engine result with an `eval`'s expectations (FORMAT.md section 6): value
//! shapes, float and histogram equality, matrix ordering, annotations and expected errors, and
//! the compact renderings used in failure diffs.

use crate::histogram;
use crate::script::{AnnotationExpect, Eval, SeqValue, TextMatch};
use model::labels::Labels;
use model::sample::is_stale_nan;
use promql::engine::{Annotation, AnnotationKind, Series, Value};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt::Write;

const EPSILON: f64 = 1e-6;
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;

/// FORMAT.md 6.4 float equality.
pub fn float_eq(a: f64, b: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Prometheus' `labels.Compare`: name by name, then value; a prefix sorts first.
pub fn compare_labels(a: &Labels, b: &Labels) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let o = x
            .name
            .as_str()
            .cmp(y.name.as_str())
            .then_with(|| x.value.as_str().cmp(y.value.as_str()));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Checks that a matrix is sorted by label set.
pub fn check_sorted(m: &[Series]) -> Result<(), String> {
    for (i, w) in m.windows(2).enumerate() {
        if compare_labels(&w[0].labels, &w[1].labels) == Ordering::Greater {
            return Err(format!(
                "matrix is not sorted by labels: {} (index {}) sorts before {} (index {i})",
                fmt_labels(&w[1].labels),
                i + 1,
                fmt_labels(&w[0].labels)
            ));
        }
    }
    Ok(())
}

/// Compares one value (the kind was already matched).
fn value_eq(exp: &SeqValue, got: &storage::Value) -> Result<(), String> {
    match (exp, got) {
        (SeqValue::Histogram(e), storage::Value::Histogram(g)) => {
            histogram::compare(&e.h, g, e.hint_given, float_eq)
        }
        (SeqValue::Histogram(_), storage::Value::Float(_)) => {
            Err("expected a histogram, got a float".into())
        }
        (_, storage::Value::Histogram(_)) => Err("expected a float, got a histogram".into()),
        (SeqValue::Float(e), storage::Value::Float(g)) => {
            if float_eq(*e, *g) {
                Ok(())
            } else {
                Err(format!("expected {}, got {}", fmt_float(*e), fmt_float(*g)))
            }
        }
        // `_` in an instant expectation is upstream's zero value.
        (SeqValue::Omitted, storage::Value::Float(g)) => {
            if float_eq(0.0, *g) {
                Ok(())
            } else {
                Err(format!("expected 0 (`_`), got {}", fmt_float(*g)))
            }
        }
    }
}

/// FORMAT.md 6.2: compares a result with the eval's expectations. For a matrix, the k-th
/// expected value of a series belongs to `start + k·step` and may not be past `end`.
pub fn compare_value(
    eval: &Eval,
    got: &Value,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(), String> {
    if let Some(exp) = &eval.string {
        return match got {
            Value::String { s, .. } if s == exp => Ok(()),
            _ => Err(format!("expected string {exp:?}, got {}", shape(got))),
        };
    }
    match got {
        Value::Scalar { v, .. } => match eval.scalar {
            Some(e) if float_eq(e, *v) => Ok(()),
            Some(e) => Err(format!(
                "expected scalar {}, got scalar {}",
                fmt_float(e),
                fmt_float(*v)
            )),
            None => Err(format!(
                "expected {}, got scalar {}",
                expected_shape(eval),
                fmt_float(*v)
            )),
        },
        Value::String { s, .. } => Err(format!(
            "expected {}, got string {s:?}",
            expected_shape(eval)
        )),
        Value::Vector(samples) => {
            if let Some(e) = eval.scalar {
                return Err(format!(
                    "expected scalar {}, got {}",
                    fmt_float(e),
                    shape(got)
                ));
            }
            let mut seen = HashSet::new();
            for (k, s) in samples.iter().enumerate() {
                let Some(exp) = eval.series.iter().find(|e| e.labels == s.labels) else {
                    return Err(format!(
                        "unexpected series {} in result with value {}",
                        fmt_labels(&s.labels),
                        fmt_value(&s.value)
                    ));
                };
                if eval.ordered && exp.pos != k + 1 {
                    return Err(format!(
                        "expected {} at position {} but it was at {}",
                        fmt_labels(&s.labels),
                        exp.pos,
                        k + 1
                    ));
                }
                value_eq(&exp.values[0], &s.value)
                    .map_err(|e| format!("{}: {e}", fmt_labels(&s.labels)))?;
                seen.insert(&s.labels);
            }
            if let Some(missing) = eval.series.iter().find(|e| !seen.contains(&e.labels)) {
                return Err(format!(
                    "expected series {} not found in result",
                    fmt_labels(&missing.labels)
                ));
            }
            Ok(())
        }
        Value::Matrix(series) => {
            if let Some(e) = eval.scalar {
                return Err(format!(
                    "expected scalar {}, got {}",
                    fmt_float(e),
                    shape(got)
                ));
            }
            if eval.ordered {
                return Err("expect ordered is not valid for a matrix result".into());
            }
            check_sorted(series)?;
            let mut seen = HashSet::new();
            for s in series {
                let Some(exp) = eval.series.iter().find(|e| e.labels == s.labels) else {
                    return Err(format!(
                        "unexpected series {} in result",
                        fmt_labels(&s.labels)
                    ));
                };
                seen.insert(&s.labels);
                let mut floats = Vec::new();
                let mut hists = Vec::new();
                for (k, v) in exp.values.iter().enumerate() {
                    let t = i64::try_from(k)
                        .ok()
                        .and_then(|k| k.checked_mul(step))
                        .and_then(|o| o.checked_add(start))
                        .unwrap_or(i64::MAX);
                    if t > end {
                        return Err(format!(
                            "script error: {} expected values for {}, but the time range has fewer steps",
                            exp.values.len(),
                            fmt_labels(&exp.labels)
                        ));
                    }
                    match v {
                        SeqValue::Omitted => {}
                        SeqValue::Float(f) => floats.push((t, *f)),
                        SeqValue::Histogram(h) => hists.push((t, h)),
                    }
                }
                let name = fmt_labels(&s.labels);
                if floats.len() != s.floats.len() || hists.len() != s.histograms.len() {
                    return Err(format!(
                        "{name}: expected {} float and {} histogram points, got {} and {}",
                        floats.len(),
                        hists.len(),
                        s.floats.len(),
                        s.histograms.len()
                    ));
                }
                for ((et, ev), (gt, gv)) in floats.iter().zip(&s.floats) {
                    if et != gt {
                        return Err(format!(
                            "{name}: expected a float point at {et}, got one at {gt}"
                        ));
                    }
                    if !float_eq(*ev, *gv) {
                        return Err(format!(
                            "{name} @{et}: expected {}, got {}",
                            fmt_float(*ev),
                            fmt_float(*gv)
                        ));
                    }
                }
                for ((et, eh), (gt, gh)) in hists.iter().zip(&s.histograms) {
                    if et != gt {
                        return Err(format!(
                            "{name}: expected a histogram point at {et}, got one at {gt}"
                        ));
                    }
                    histogram::compare(&eh.h, gh, eh.hint_given, float_eq)
                        .map_err(|e| format!("{name} @{et}: {e}"))?;
                }
            }
            if let Some(missing) = eval.series.iter().find(|e| !seen.contains(&e.labels)) {
                return Err(format!(
                    "expected series {} not found in result",
                    fmt_labels(&missing.labels)
                ));
            }
            Ok(())
        }
    }
}

/// The outcome of the annotation checks.
pub enum AnnotationCheck {
    Ok,
    /// Failed the exact checks, but every type with expectations has at least one annotation
    /// and every `no_*` holds: only the wording or positions differ (6.3's softer category).
    WordingOnly(String),
    Fail(String),
}

/// FORMAT.md 6.3, on the rendered texts (`message (line:col)`).
pub fn check_annotations(eval: &Eval, annotations: &[Annotation], query: &str) -> AnnotationCheck {
    let mut wording = None;
    for (kind, expect, name) in [
        (AnnotationKind::Warning, &eval.warn, "warn"),
        (AnnotationKind::Info, &eval.info, "info"),
    ] {
        let texts: Vec<String> = annotations
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.render(query))
            .collect();
        match expect {
            AnnotationExpect::Unchecked => {}
            AnnotationExpect::Forbidden => {
                if !texts.is_empty() {
                    return AnnotationCheck::Fail(format!(
                        "expected no {name} annotations, got {texts:?}"
                    ));
                }
            }
            AnnotationExpect::Expected(matchers) => {
                if texts.is_empty() {
                    return AnnotationCheck::Fail(format!("expected {name} annotations, got none"));
                }
                let problem = matchers
                    .iter()
                    .find(|m| !texts.iter().any(|t| m.matches(t)))
                    .map(|m| format!("expected {name} annotation {m}, got {texts:?}"))
                    .or_else(|| {
                        texts
                            .iter()
                            .find(|t| !matchers.iter().any(|m| m.matches(t)))
                            .map(|t| format!("unexpected {name} annotation {t:?}"))
                    });
                if let Some(p) = problem {
                    wording.get_or_insert(p);
                }
            }
        }
    }
    match wording {
        Some(p) => AnnotationCheck::WordingOnly(p),
        None => AnnotationCheck::Ok,
    }
}

/// Checks an error against `expect fail [msg:|regex:]`.
pub fn check_error(expected: &TextMatch, error: &str) -> Result<(), String> {
    if expected.matches(error) {
        Ok(())
    } else {
        Err(format!("expected error {expected}, got error {error:?}"))
    }
}

pub fn fmt_float(v: f64) -> String {
    if is_stale_nan(v) {
        "stale".into()
    } else {
        format!("{v}")
    }
}

/// Labels in test-script form: `name{a="b"}`.
pub fn fmt_labels(l: &Labels) -> String {
    let mut s = l.metric_name().unwrap_or_default().to_string();
    let rest: Vec<String> = l
        .iter()
        .filter(|x| x.name.as_str() != "__name__")
        .map(|x| format!("{}={:?}", x.name.as_str(), x.value.as_str()))
        .collect();
    if !rest.is_empty() || s.is_empty() {
        let _ = write!(s, "{{{}}}", rest.join(", "));
    }
    s
}

fn fmt_value(v: &storage::Value) -> String {
    match v {
        storage::Value::Float(f) => fmt_float(*f),
        storage::Value::Histogram(h) => histogram::render(h),
    }
}

fn fmt_seq_value(v: &SeqValue) -> String {
    match v {
        SeqValue::Omitted => "_".into(),
        SeqValue::Float(f) => fmt_float(*f),
        SeqValue::Histogram(h) => histogram::render(&h.h),
    }
}

fn shape(v: &Value) -> String {
    match v {
        Value::Scalar { v, .. } => format!("scalar {}", fmt_float(*v)),
        Value::String { s, .. } => format!("string {s:?}"),
        Value::Vector(v) => format!("vector of {} samples", v.len()),
        Value::Matrix(m) => format!("matrix of {} series", m.len()),
    }
}

fn expected_shape(eval: &Eval) -> String {
    match (&eval.string, eval.scalar) {
        (Some(s), _) => format!("string {s:?}"),
        (_, Some(v)) => format!("scalar {}", fmt_float(v)),
        _ if eval.series.is_empty() => "an empty result".into(),
        _ => format!("{} series", eval.series.len()),
    }
}

/// At most `max` lines, with a note about the rest.
fn clip(lines: Vec<String>, max: usize) -> Vec<String> {
    let n = lines.len();
    let mut out: Vec<String> = lines.into_iter().take(max).collect();
    if n > max {
        out.push(format!("... {} more", n - max));
    }
    out
}

/// The expectation, one line per series, for a failure diff.
pub fn render_expected(eval: &Eval) -> Vec<String> {
    if let Some(s) = &eval.string {
        return vec![format!("string {s:?}")];
    }
    if let Some(v) = eval.scalar {
        return vec![format!("scalar {}", fmt_float(v))];
    }
    if eval.series.is_empty() {
        return vec!["(empty)".into()];
    }
    let lines = eval
        .series
        .iter()
        .map(|s| {
            let values: Vec<String> = s.values.iter().map(fmt_seq_value).collect();
            format!("{} {}", fmt_labels(&s.labels), values.join(" "))
        })
        .collect();
    clip(lines, 12)
}

/// A result, one line per sample or series, for a failure diff.
pub fn render_value(v: &Value) -> Vec<String> {
    let lines = match v {
        Value::Scalar { v, .. } => vec![format!("scalar {}", fmt_float(*v))],
        Value::String { s, .. } => vec![format!("string {s:?}")],
        Value::Vector(samples) if samples.is_empty() => vec!["(empty vector)".into()],
        Value::Vector(samples) => samples
            .iter()
            .map(|s| format!("{} {}", fmt_labels(&s.labels), fmt_value(&s.value)))
            .collect(),
        Value::Matrix(m) if m.is_empty() => vec!["(empty matrix)".into()],
        Value::Matrix(m) => m
            .iter()
            .map(|s| {
                let mut points: Vec<(i64, String)> = s
                    .floats
                    .iter()
                    .map(|(t, v)| (*t, fmt_float(*v)))
                    .chain(s.histograms.iter().map(|(t, h)| (*t, histogram::render(h))))
                    .collect();
                points.sort_by_key(|p| p.0);
                let points: Vec<String> = points
                    .into_iter()
                    .map(|(t, v)| format!("{v}@{t}"))
                    .collect();
                format!("{} {}", fmt_labels(&s.labels), points.join(" "))
            })
            .collect(),
    };
    clip(lines, 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_equality_follows_format_md() {
        let stale = model::sample::stale_nan();
        assert!(float_eq(stale, stale));
        assert!(!float_eq(stale, f64::NAN));
        assert!(float_eq(f64::NAN, f64::NAN));
        assert!(float_eq(f64::INFINITY, f64::INFINITY));
        assert!(!float_eq(f64::INFINITY, 1e300));
        assert!(!float_eq(f64::INFINITY, f64::NEG_INFINITY));
        assert!(float_eq(1.0, 1.0 + 1e-9));
        assert!(!float_eq(1.0, 1.0001));
        assert!(!float_eq(0.0, 1e-300));
    }

    #[test]
    fn labels_sort_like_prometheus() {
        let a = Labels::from_pairs([("a", "1")]).unwrap();
        let ab = Labels::from_pairs([("a", "1"), ("b", "1")]).unwrap();
        let b = Labels::from_pairs([("b", "0")]).unwrap();
        assert_eq!(compare_labels(&a, &ab), Ordering::Less);
        assert_eq!(compare_labels(&ab, &b), Ordering::Less);
        assert_eq!(fmt_labels(&ab), r#"{a="1", b="1"}"#);
    }
}
