//! The JSON `data` of `/api/v1/rules` and `/api/v1/alerts`, in Prometheus' shapes, built
//! from the manager's snapshots (the web crate wraps them in `{"status":"success",...}`).

use serde_json::{Map, Value, json};

use crate::manager::{AlertStatus, GroupStatus, RuleStatus};
use crate::rule::RuleKindView;

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as alert values are shown.
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

/// RFC 3339 with milliseconds; Go's zero time when `ms` is 0 (never).
pub fn format_time(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    model::time::Utc::from_unix_ms(ms).rfc3339_millis()
}

fn labels_json(labels: &model::labels::Labels) -> Value {
    let m: Map<String, Value> = labels
        .iter()
        .map(|l| (l.name.as_str().to_owned(), l.value.as_str().into()))
        .collect();
    Value::Object(m)
}

/// One alert object.
pub fn alert_json(a: &AlertStatus) -> Value {
    let mut o = json!({
        "labels": labels_json(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": format_time(a.active_at),
        "value": format_float_e(a.value),
    });
    if a.keep_firing_since != 0
        && let Some(m) = o.as_object_mut()
    {
        m.insert(
            "keepFiringSince".into(),
            format_time(a.keep_firing_since).into(),
        );
    }
    o
}

fn rule_json(r: &RuleStatus, exclude_alerts: bool) -> Value {
    let mut o = Map::new();
    if r.kind == RuleKindView::Alerting {
        o.insert("state".into(), r.state.as_str().into());
    }
    o.insert("name".into(), r.name.clone().into());
    o.insert("query".into(), r.query.clone().into());
    if r.kind == RuleKindView::Alerting {
        o.insert("duration".into(), json!(r.duration_seconds));
        o.insert("keepFiringFor".into(), json!(r.keep_firing_for_seconds));
    }
    o.insert("labels".into(), json!(r.labels));
    if r.kind == RuleKindView::Alerting {
        o.insert("annotations".into(), json!(r.annotations));
        if !exclude_alerts {
            o.insert(
                "alerts".into(),
                Value::Array(r.alerts.iter().map(alert_json).collect()),
            );
        }
    }
    o.insert("health".into(), r.health.as_str().into());
    if let Some(e) = &r.last_error {
        o.insert("lastError".into(), e.clone().into());
    }
    o.insert(
        "evaluationTime".into(),
        json!(r.evaluation_time.as_secs_f64()),
    );
    o.insert(
        "lastEvaluation".into(),
        format_time(r.last_evaluation).into(),
    );
    o.insert("type".into(), r.kind.as_str().into());
    Value::Object(o)
}

/// `data` of `/api/v1/rules`: `{"groups":[...]}`. `kind` filters by `type=alert|record`;
/// `exclude_alerts` (`exclude_alerts=true`) leaves out the alerts of alerting rules. Filters
/// by `rule_name[]`, `rule_group[]` and `file[]` are applied by the caller on `groups`
/// (dropping groups left without rules, as Prometheus does).
pub fn rules_json(
    groups: &[GroupStatus],
    kind: Option<RuleKindView>,
    exclude_alerts: bool,
) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let rules: Vec<Value> = g
                .rules
                .iter()
                .filter(|r| kind.is_none_or(|k| k == r.kind))
                .map(|r| rule_json(r, exclude_alerts))
                .collect();
            json!({
                "name": g.name,
                "file": g.file,
                "rules": rules,
                "interval": g.interval_seconds,
                "limit": g.limit,
                "evaluationTime": g.evaluation_time.as_secs_f64(),
                "lastEvaluation": format_time(g.last_evaluation),
            })
        })
        .collect();
    json!({ "groups": groups })
}

/// `data` of `/api/v1/alerts`: `{"alerts":[...]}`.
pub fn alerts_json(alerts: &[AlertStatus]) -> Value {
    json!({ "alerts": alerts.iter().map(alert_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_e_format() {
        assert_eq!(format_float_e(1.0), "1e+00");
        assert_eq!(format_float_e(1234.5), "1.2345e+03");
        assert_eq!(format_float_e(0.001), "1e-03");
    }
}
