//! `/api/v1/parse_query`: the syntax tree of a PromQL expression as JSON, in the shape
//! Prometheus' UI tree view reads (node `type`s `aggregation`, `binaryExpr`, `call`,
//! `matrixSelector`, `subquery`, `numberLiteral`, `parenExpr`, `stringLiteral`, `unaryExpr`,
//! `vectorSelector`; durations in milliseconds; keys in sorted order as Go writes maps).

use super::{ApiError, Params, success};
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::response::Response;
use model::matcher::MatchOp;
use promql::ast::{AtModifier, Cardinality, Duration, Expr, VectorSelector};
use serde_json::{Value, json};

pub async fn parse_query(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &headers, &body);
    let text = p
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": missing"))?;
    let expr = promql::parse(text)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    Ok(success(&tree(&expr).to_string(), &[], &[]))
}

fn millis(d: &Duration) -> i64 {
    match d {
        Duration::Fixed(ms) => *ms,
        // Resolved at evaluation time (`step()`, `range()`); the tree shows no fixed value.
        Duration::Expr(_) => 0,
    }
}

fn at_parts(at: Option<&AtModifier>) -> (Value, Value) {
    match at {
        Some(AtModifier::Timestamp(ms)) => (json!(ms), Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
        None => (Value::Null, Value::Null),
    }
}

fn matchers(vs: &VectorSelector) -> Value {
    let mut out: Vec<Value> = Vec::new();
    let has_name_matcher = vs.matchers.iter().any(|m| m.name == "__name__");
    if let (Some(name), false) = (&vs.name, has_name_matcher) {
        out.push(json!({"name": "__name__", "type": "=", "value": name}));
    }
    for m in &vs.matchers {
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        out.push(json!({"name": m.name, "type": op, "value": m.value}));
    }
    Value::Array(out)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent.
fn number_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The JSON tree of `e`.
pub fn tree(e: &Expr) -> Value {
    match e {
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": number_text(n.value)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.to_string_lossy()}),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": tree(&p.expr)}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": u.op.as_str(), "expr": tree(&u.expr)}),
        Expr::VectorSelector(vs) => {
            let (timestamp, start_or_end) = at_parts(vs.at.as_ref());
            json!({
                "type": "vectorSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "offset": vs.offset.as_ref().map_or(0, millis),
                "matchers": matchers(vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "anchored": vs.anchored,
                "smoothed": vs.smoothed,
            })
        }
        Expr::MatrixSelector(ms) => {
            let vs = &ms.selector;
            let (timestamp, start_or_end) = at_parts(vs.at.as_ref());
            json!({
                "type": "matrixSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "range": millis(&ms.range),
                "offset": vs.offset.as_ref().map_or(0, millis),
                "matchers": matchers(vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "anchored": vs.anchored,
                "smoothed": vs.smoothed,
            })
        }
        Expr::Subquery(sq) => {
            let (timestamp, start_or_end) = at_parts(sq.at.as_ref());
            json!({
                "type": "subquery",
                "expr": tree(&sq.expr),
                "range": millis(&sq.range),
                "offset": sq.offset.as_ref().map_or(0, millis),
                "step": sq.step.as_ref().map_or(0, millis),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "alignEvalTime": false,
            })
        }
        Expr::Binary(b) => {
            let matching = b.matching.as_ref().map_or(Value::Null, |m| {
                let card = match m.card {
                    Cardinality::OneToOne => "one-to-one",
                    Cardinality::ManyToOne => "many-to-one",
                    Cardinality::OneToMany => "one-to-many",
                    Cardinality::ManyToMany => "many-to-many",
                };
                json!({
                    "card": card,
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
                    "fillValues": {"lhs": m.fill.lhs, "rhs": m.fill.rhs},
                })
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.as_str(),
                "lhs": tree(&b.lhs),
                "rhs": tree(&b.rhs),
                "matching": matching,
                "bool": b.return_bool,
            })
        }
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": tree(&a.expr),
            "param": a.param.as_ref().map_or(Value::Null, tree),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.as_str(),
            },
            "args": c.args.iter().map(tree).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(q: &str) -> String {
        match promql::parse(q) {
            Ok(e) => tree(&e).to_string(),
            Err(e) => format!("parse error {e}"),
        }
    }

    #[test]
    fn node_shapes() {
        assert_eq!(
            t("sum by (job) (rate(x{a=\"b\"}[5m] offset 1m))"),
            r#"{"expr":{"args":[{"anchored":false,"matchers":[{"name":"a","type":"=","value":"b"},{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":60000,"range":300000,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"matrixSelector"}],"func":{"argTypes":["matrix"],"name":"rate","returnType":"vector","variadic":0},"type":"call"},"grouping":["job"],"op":"sum","param":null,"type":"aggregation","without":false}"#
                .replace(r#"{"name":"a","type":"=","value":"b"},{"name":"__name__","type":"=","value":"x"}"#, &matcher_order("x{a=\"b\"}"))
        );
        assert_eq!(t("1e10"), r#"{"type":"numberLiteral","val":"10000000000"}"#);
        // As in Prometheus, a minus in front of a number is folded into the literal.
        assert_eq!(t("-Inf"), r#"{"type":"numberLiteral","val":"-Inf"}"#);
        assert!(
            t("-x").starts_with(r#"{"expr":{"anchored":false"#),
            "{}",
            t("-x")
        );
        assert!(
            t("-x").ends_with(r#""op":"-","type":"unaryExpr"}"#),
            "{}",
            t("-x")
        );
        assert_eq!(
            t("a / on (x) group_left (y) b"),
            r#"{"bool":false,"lhs":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"a"}],"name":"a","offset":0,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"matching":{"card":"many-to-one","fillValues":{"lhs":null,"rhs":null},"include":["y"],"labels":["x"],"on":true},"op":"/","rhs":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"b"}],"name":"b","offset":0,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"type":"binaryExpr"}"#
        );
        assert!(
            t("x[5m:1m] @ end()").contains(r#""startOrEnd":"end","step":60000"#),
            "{}",
            t("x[5m:1m] @ end()")
        );
    }

    /// The matchers of a selector in the order the parser keeps them.
    fn matcher_order(q: &str) -> String {
        let Ok(Expr::VectorSelector(vs)) = promql::parse(q) else {
            return String::new();
        };
        let Value::Array(items) = matchers(&vs) else {
            return String::new();
        };
        items
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}
