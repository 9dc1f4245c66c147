//! Semantic rules of the exposition formats, checked in strict mode.
//!
//! OpenMetrics 1.0 (all of them): metadata once per family and before its samples; families
//! and the metric points inside them not interleaved; sample names that fit the family's type
//! (`_total`, `_bucket`, `_gcount`, `_info`, ...); no two families that could produce the same
//! sample name; value rules per type (counters non-negative and not NaN, info = 1, stateset
//! 0/1, quantiles in [0, 1]); histograms with increasing `le` buckets ending in `+Inf`,
//! cumulative counts, `_count` equal to the `+Inf` bucket, `_sum` with `_count`, no `_sum` with
//! negative buckets; exemplars only on `_total` and `_bucket` lines with at most 128 characters
//! of labels; units as name suffixes; timestamps of a series never going backwards.
//!
//! Text 0.0.4: the rules Prometheus' strict text parser applies: one HELP and one TYPE per
//! metric name, and TYPE before that family's samples.

use super::{Format, LabelRef, MetricType};
use std::collections::{HashMap, HashSet};

/// Most characters an exemplar's label names and values may have together.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

pub(super) struct Validator {
    format: Format,
    /// Names of every family started so far (the current one included).
    families: HashSet<String>,
    /// Sample names that closed families could produce (for name clashes).
    reserved: HashSet<String>,
    current: Option<Family>,
}

struct Family {
    name: String,
    kind: MetricType,
    has_type: bool,
    has_help: bool,
    unit: Option<String>,
    has_samples: bool,
    /// Metric points (label sets without `le`/`quantile`/state label) already finished.
    finished_points: HashSet<Vec<(String, String)>>,
    point: Option<Point>,
    /// Last timestamp per series; `None` when it had no timestamp.
    series_ts: HashMap<SeriesKey, Option<f64>>,
}

/// The samples of one metric point seen so far.
#[derive(Default)]
struct Point {
    key: Vec<(String, String)>,
    /// (le, value) in input order.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
    /// Which sample names (with `le`/`quantile`) were seen, to detect a repeated point.
    seen: HashSet<(String, String)>,
}

type Check = Result<(), String>;

/// A series within a payload: sample name and sorted label pairs.
type SeriesKey = (String, Vec<(String, String)>);

impl Validator {
    pub(super) fn new(format: Format) -> Self {
        Validator {
            format,
            families: HashSet::new(),
            reserved: HashSet::new(),
            current: None,
        }
    }

    fn om(&self) -> bool {
        self.format == Format::OpenMetrics
    }

    /// Makes `name` the current family for a metadata line, starting it when needed.
    fn family_for_metadata(&mut self, name: &str, what: &str) -> Result<&mut Family, String> {
        let same = self.current.as_ref().is_some_and(|f| f.name == name);
        if same {
            let has_samples = self.current.as_ref().is_some_and(|f| f.has_samples);
            if has_samples {
                return Err(format!("{what} line for {name:?} after its samples"));
            }
        } else {
            self.start_family(name)?;
        }
        self.current
            .as_mut()
            .ok_or_else(|| "internal error: no current family".to_string())
    }

    fn start_family(&mut self, name: &str) -> Check {
        self.close_family()?;
        if self.om() {
            if self.families.contains(name) {
                return Err(format!(
                    "metric family {name:?} appears again after other families (families must not be interleaved)"
                ));
            }
            if self.reserved.contains(name) {
                return Err(format!(
                    "metric family {name:?} clashes with the samples of an earlier family"
                ));
            }
        }
        self.families.insert(name.to_string());
        self.current = Some(Family {
            name: name.to_string(),
            kind: MetricType::Unknown,
            has_type: false,
            has_help: false,
            unit: None,
            has_samples: false,
            finished_points: HashSet::new(),
            point: None,
            series_ts: HashMap::new(),
        });
        Ok(())
    }

    fn close_family(&mut self) -> Check {
        let Some(mut f) = self.current.take() else {
            return Ok(());
        };
        if let Some(p) = f.point.take() {
            check_point(&f, &p)?;
        }
        if self.om() {
            for n in sample_names(&f.name, f.kind) {
                self.reserved.insert(n);
            }
        }
        Ok(())
    }

    pub(super) fn on_help(&mut self, name: &str) -> Check {
        let f = self.family_for_metadata(name, "HELP")?;
        if f.has_help {
            return Err(format!("second HELP line for {name:?}"));
        }
        f.has_help = true;
        Ok(())
    }

    pub(super) fn on_type(&mut self, name: &str, kind: MetricType) -> Check {
        let om = self.om();
        let f = self.family_for_metadata(name, "TYPE")?;
        if f.has_type {
            return Err(format!("second TYPE line for {name:?}"));
        }
        f.has_type = true;
        f.kind = kind;
        if om {
            if f.unit.as_deref().is_some_and(|u| !u.is_empty())
                && matches!(kind, MetricType::Info | MetricType::StateSet)
            {
                return Err(format!("{} metrics cannot have a unit", kind.as_api_str()));
            }
            let clash = sample_names(name, kind)
                .into_iter()
                .find(|n| self.reserved.contains(n) || (n != name && self.families.contains(n)));
            if let Some(n) = clash {
                return Err(format!(
                    "metric family {name:?} of type {} would produce {n:?}, which another family uses",
                    kind.as_api_str()
                ));
            }
        }
        Ok(())
    }

    pub(super) fn on_unit(&mut self, name: &str, unit: &str) -> Check {
        let f = self.family_for_metadata(name, "UNIT")?;
        if f.unit.is_some() {
            return Err(format!("second UNIT line for {name:?}"));
        }
        if !unit.is_empty() {
            if !name.ends_with(&format!("_{unit}")) {
                return Err(format!(
                    "unit {unit:?} is not a suffix of the metric name {name:?}"
                ));
            }
            if matches!(f.kind, MetricType::Info | MetricType::StateSet) {
                return Err(format!(
                    "{} metrics cannot have a unit",
                    f.kind.as_api_str()
                ));
            }
        }
        f.unit = Some(unit.to_string());
        Ok(())
    }

    pub(super) fn on_sample(
        &mut self,
        name: &str,
        labels: &[LabelRef<'_>],
        value: f64,
        ts_secs: Option<f64>,
        exemplar: Option<&[LabelRef<'_>]>,
    ) -> Check {
        let belongs = self
            .current
            .as_ref()
            .and_then(|f| suffix_in_family(&f.name, f.kind, name, self.format));
        let suffix = match belongs {
            Some(s) => s,
            None => {
                if !self.om() {
                    // 0.0.4 only cares about metadata order; a sample of another family just
                    // moves on.
                    if self.current.as_ref().is_none_or(|f| f.name != name) {
                        self.start_family(name)?;
                    }
                    if let Some(f) = self.current.as_mut() {
                        f.has_samples = true;
                    }
                    return Ok(());
                }
                self.start_family(name)?;
                ""
            }
        };
        if !self.om() {
            if let Some(f) = self.current.as_mut() {
                f.has_samples = true;
            }
            return Ok(());
        }
        let Some(f) = self.current.as_mut() else {
            return Err("internal error: no current family".into());
        };
        f.has_samples = true;
        let kind = f.kind;
        check_value(kind, suffix, &f.name, labels, value)?;
        if let Some(ex) = exemplar {
            let allowed = matches!(
                (kind, suffix),
                (MetricType::Counter, "_total")
                    | (
                        MetricType::Histogram | MetricType::GaugeHistogram,
                        "_bucket"
                    )
            );
            if !allowed {
                return Err(format!(
                    "exemplars are only allowed on counter _total and histogram _bucket samples, not on {name:?}"
                ));
            }
            let chars: usize = ex
                .iter()
                .map(|l| l.name.chars().count() + l.value.chars().count())
                .sum();
            if chars > MAX_EXEMPLAR_LABEL_CHARS {
                return Err(format!(
                    "exemplar labels have {chars} characters, more than the {MAX_EXEMPLAR_LABEL_CHARS} allowed"
                ));
            }
        }

        // Series timestamps.
        let mut series_labels: Vec<(String, String)> = labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        series_labels.sort();
        let series_key = (name.to_string(), series_labels.clone());
        if let Some(prev) = f.series_ts.get(&series_key) {
            match (prev, ts_secs) {
                (Some(p), Some(t)) if t < *p => {
                    return Err(format!(
                        "timestamp {t} of {name:?} goes backwards (previous {p})"
                    ));
                }
                (Some(_), Some(_)) => {}
                _ => {
                    return Err(format!(
                        "series {name:?} appears twice without timestamps on both samples"
                    ));
                }
            }
        }
        f.series_ts.insert(series_key, ts_secs);

        // Metric point grouping.
        let point_label = point_label_name(kind, &f.name);
        let key: Vec<(String, String)> = series_labels
            .into_iter()
            .filter(|(n, _)| Some(n.as_str()) != point_label)
            .collect();
        let marker = (
            suffix.to_string(),
            point_label
                .and_then(|pl| labels.iter().find(|l| l.name == pl))
                .map(|l| l.value.to_string())
                .unwrap_or_default(),
        );
        let same_point = f.point.as_ref().is_some_and(|p| p.key == key);
        if !same_point || f.point.as_ref().is_some_and(|p| p.seen.contains(&marker)) {
            if let Some(p) = f.point.take() {
                check_point(f, &p)?;
                if p.key != key {
                    f.finished_points.insert(p.key);
                }
            }
            if !same_point && f.finished_points.contains(&key) {
                return Err(format!(
                    "samples of one metric of {:?} are interleaved with another's",
                    f.name
                ));
            }
            f.point = Some(Point {
                key,
                ..Point::default()
            });
        }
        let Some(p) = f.point.as_mut() else {
            return Err("internal error: no current point".into());
        };
        p.seen.insert(marker);
        match (kind, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                let le = labels.iter().find(|l| l.name == "le").map(|l| &*l.value);
                let le = le.and_then(parse_bound).ok_or_else(|| {
                    format!("histogram bucket of {name:?} needs an \"le\" label with a number")
                })?;
                if let Some((prev, prev_v)) = p.buckets.last() {
                    if le <= *prev {
                        return Err(format!(
                            "histogram buckets of {name:?} are not in increasing \"le\" order"
                        ));
                    }
                    if value < *prev_v {
                        return Err(format!(
                            "histogram bucket counts of {name:?} are not cumulative"
                        ));
                    }
                }
                p.buckets.push((le, value));
            }
            (_, "_count" | "_gcount") => p.count = Some(value),
            (_, "_sum" | "_gsum") => p.sum = Some(value),
            _ => {}
        }
        Ok(())
    }

    /// End of payload.
    pub(super) fn finish(&mut self) -> Check {
        self.close_family()
    }
}

/// The label that distinguishes samples within one metric point.
fn point_label_name(kind: MetricType, family: &str) -> Option<&str> {
    match kind {
        MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
        MetricType::Summary => Some("quantile"),
        MetricType::StateSet => Some(family),
        _ => None,
    }
}

/// Suffixes each type's samples may carry.
fn suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
    }
}

/// Every sample name a family can produce.
fn sample_names(family: &str, kind: MetricType) -> Vec<String> {
    suffixes(kind)
        .iter()
        .map(|s| format!("{family}{s}"))
        .collect()
}

/// The suffix by which `sample` belongs to the family, if it does.
fn suffix_in_family(
    family: &str,
    kind: MetricType,
    sample: &str,
    format: Format,
) -> Option<&'static str> {
    let rest = sample.strip_prefix(family)?;
    let allowed: &[&str] = match format {
        Format::OpenMetrics => suffixes(kind),
        // 0.0.4 has no _total convention and no _created.
        Format::Text => match kind {
            MetricType::Histogram => &["_bucket", "_count", "_sum", ""],
            MetricType::Summary => &["", "_count", "_sum"],
            _ => &[""],
        },
    };
    allowed.iter().find(|s| **s == rest).copied()
}

/// `le` and `quantile` values: a realnumber or exactly `+Inf`/`-Inf`.
fn parse_bound(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => super::float::parse_openmetrics_number(s),
    }
}

fn check_value(
    kind: MetricType,
    suffix: &str,
    family: &str,
    labels: &[LabelRef<'_>],
    v: f64,
) -> Check {
    let counter_like = |what: &str| -> Check {
        if v.is_nan() || v < 0.0 {
            Err(format!(
                "{what} of {family:?} must be a non-negative number, got {v}"
            ))
        } else {
            Ok(())
        }
    };
    match (kind, suffix) {
        (MetricType::Counter, "_total") => counter_like("counter value"),
        (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
            counter_like("bucket count")
        }
        (MetricType::Histogram | MetricType::Summary, "_count") => counter_like("_count"),
        (MetricType::GaugeHistogram, "_gcount") => counter_like("_gcount"),
        (MetricType::Summary, "_sum") => counter_like("_sum"),
        (MetricType::Histogram, "_sum") | (MetricType::GaugeHistogram, "_gsum") => {
            if v.is_nan() {
                Err(format!("sum of {family:?} must not be NaN"))
            } else {
                Ok(())
            }
        }
        (MetricType::Summary, "") => {
            let q = labels
                .iter()
                .find(|l| l.name == "quantile")
                .map(|l| &*l.value);
            match q.and_then(parse_bound) {
                Some(q) if (0.0..=1.0).contains(&q) => Ok(()),
                _ => Err(format!(
                    "summary {family:?} needs a \"quantile\" label between 0 and 1"
                )),
            }
        }
        (MetricType::Info, _) => {
            if v == 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "info metric {family:?} must have the value 1, got {v}"
                ))
            }
        }
        (MetricType::StateSet, _) => {
            if !labels.iter().any(|l| l.name == family) {
                return Err(format!(
                    "stateset {family:?} needs a label named {family:?}"
                ));
            }
            if v == 0.0 || v == 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "stateset {family:?} values must be 0 or 1, got {v}"
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Checks a finished metric point of a histogram.
fn check_point(f: &Family, p: &Point) -> Check {
    let name = &f.name;
    let (hist, gauge_hist) = match f.kind {
        MetricType::Histogram => (true, false),
        MetricType::GaugeHistogram => (false, true),
        _ => return Ok(()),
    };
    let Some((last_le, inf_count)) = p.buckets.last().copied() else {
        return Err(format!(
            "histogram {name:?} has no buckets (a \"+Inf\" bucket is required)"
        ));
    };
    if last_le != f64::INFINITY {
        return Err(format!("histogram {name:?} has no \"+Inf\" bucket"));
    }
    let negative = p.buckets.iter().any(|(le, _)| *le < 0.0);
    let (count_name, sum_name) = if hist {
        ("_count", "_sum")
    } else {
        ("_gcount", "_gsum")
    };
    match (p.count, p.sum) {
        (Some(_), None) | (None, Some(_)) if hist || gauge_hist => {
            return Err(format!(
                "histogram {name:?} must have both {count_name} and {sum_name} or neither"
            ));
        }
        _ => {}
    }
    if let Some(c) = p.count
        && c != inf_count
    {
        return Err(format!(
            "{count_name} of {name:?} ({c}) differs from its \"+Inf\" bucket ({inf_count})"
        ));
    }
    if let Some(s) = p.sum {
        if hist && negative {
            return Err(format!(
                "histogram {name:?} with negative buckets must not have a _sum"
            ));
        }
        if s < 0.0 && !negative {
            return Err(format!(
                "{sum_name} of {name:?} is negative without negative buckets"
            ));
        }
    }
    Ok(())
}
