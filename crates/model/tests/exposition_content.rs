//! What the exposition parser yields, field by field: names, labels with escapes resolved,
//! values, timestamps (OpenMetrics seconds to milliseconds), exemplars, metadata, and error
//! positions. The conformance corpus only says accept/reject; these pin the content.

use model::exposition::{Entry, Format, MetricType, Parser};

type Pairs = Vec<(String, String)>;

#[derive(Debug, PartialEq)]
enum Item {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Sample(
        String,
        Pairs,
        f64,
        Option<i64>,
        Option<(Pairs, f64, Option<i64>)>,
    ),
}

fn items(input: &str, format: Format) -> Result<Vec<Item>, String> {
    let mut p = Parser::new(input.as_bytes(), format)
        .map_err(|e| e.to_string())?
        .strict();
    let mut out = Vec::new();
    let pairs = |l: &[model::exposition::LabelRef<'_>]| -> Vec<(String, String)> {
        l.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    };
    while let Some(e) = p.next_entry() {
        out.push(match e.map_err(|e| e.to_string())? {
            Entry::Help { name, text } => Item::Help(name.into(), text.into()),
            Entry::Type { name, kind } => Item::Type(name.into(), kind),
            Entry::Unit { name, unit } => Item::Unit(name.into(), unit.into()),
            Entry::Sample(s) => Item::Sample(
                s.name.to_string(),
                pairs(s.labels),
                s.value,
                s.timestamp,
                s.exemplar.map(|x| (pairs(x.labels), x.value, x.timestamp)),
            ),
        });
    }
    Ok(out)
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn label_and_help_escapes() {
    let got = items(
        "# HELP a he\\\\l\\np \\q\na{x=\"b\\\"a\\nr\",y=\"b\\\\a\\z\"} 1\n",
        Format::Text,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            Item::Help("a".into(), "he\\l\np \\q".into()),
            Item::Sample(
                "a".into(),
                l(&[("x", "b\"a\nr"), ("y", "b\\a\\z")]),
                1.0,
                None,
                None
            ),
        ]
    );
}

#[test]
fn openmetrics_help_escapes_quotes_like_label_values() {
    // OpenMetrics escapes HELP as label values (`\"` too); 0.0.4 only `\\` and `\n`.
    let om = items(
        "# HELP a say \\\"hi\\\" \\\\ \\n\n# EOF\n",
        Format::OpenMetrics,
    )
    .unwrap();
    assert_eq!(om, vec![Item::Help("a".into(), "say \"hi\" \\ \n".into())]);
    let text = items("# HELP a say \\\"hi\\\"\n", Format::Text).unwrap();
    assert_eq!(text, vec![Item::Help("a".into(), "say \\\"hi\\\"".into())]);
}

#[test]
fn openmetrics_timestamps_exemplars_and_units() {
    let got = items(
        "# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\n# HELP foo_seconds Help.\n\
         foo_seconds_total{a=\"1\"} 17 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879606.5\n\
         foo_seconds_created{a=\"1\"} 1520430000.123\n# EOF\n",
        Format::OpenMetrics,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            Item::Type("foo_seconds".into(), MetricType::Counter),
            Item::Unit("foo_seconds".into(), "seconds".into()),
            Item::Help("foo_seconds".into(), "Help.".into()),
            Item::Sample(
                "foo_seconds_total".into(),
                l(&[("a", "1")]),
                17.0,
                Some(1_520_879_607_789),
                Some((
                    l(&[("trace_id", "KOO5S4vxi0o")]),
                    0.67,
                    Some(1_520_879_606_500)
                ))
            ),
            Item::Sample(
                "foo_seconds_created".into(),
                l(&[("a", "1")]),
                1520430000.123,
                None,
                None
            ),
        ]
    );
}

#[test]
fn text_values_and_timestamps() {
    let got = items("a +Inf 1700000000000\nb -Inf\nc 1e3 -5\n", Format::Text).unwrap();
    assert_eq!(
        got,
        vec![
            Item::Sample(
                "a".into(),
                vec![],
                f64::INFINITY,
                Some(1_700_000_000_000),
                None
            ),
            Item::Sample("b".into(), vec![], f64::NEG_INFINITY, None, None),
            Item::Sample("c".into(), vec![], 1000.0, Some(-5), None),
        ]
    );
    let nan = items("a NaN\n", Format::Text).unwrap();
    assert!(matches!(&nan[0], Item::Sample(_, _, v, _, _) if v.is_nan()));
}

#[test]
fn quoted_utf8_names() {
    let got = items(
        "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"service.name\"=\"x\",b=\"y\"} 1\n",
        Format::Text,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            Item::Type("my.metric".into(), MetricType::Gauge),
            Item::Sample(
                "my.metric".into(),
                l(&[("service.name", "x"), ("b", "y")]),
                1.0,
                None,
                None
            ),
        ]
    );
}

#[test]
fn errors_name_line_column_and_reason() {
    let e = items("a 1\nb{x=1} 2\n", Format::Text).unwrap_err();
    assert_eq!(e, "2:5: expected quoted label value, found '1'");
    let e = items("a 1\n# EOF\nx", Format::OpenMetrics).unwrap_err();
    assert_eq!(e, "3:1: unexpected text after # EOF");
    let e = items("a 1\n", Format::OpenMetrics).unwrap_err();
    assert_eq!(e, "2:1: expected \"# EOF\" at the end of the input");
    let e = items("# TYPE a counter\na_total -1\n# EOF\n", Format::OpenMetrics).unwrap_err();
    assert!(
        e.starts_with("2:1: counter value of \"a\" must be a non-negative number"),
        "{e}"
    );
    let e = Parser::new(b"a 1\nb{x=\"\xff\"} 1\n", Format::Text)
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "2:6: invalid UTF-8");
}

#[test]
fn hostile_inputs_end_cleanly() {
    // Deep or long structures never recurse or blow up: each of these ends with Ok or Err.
    let long_labels = format!(
        "a{{{}}} 1\n",
        (0..20_000)
            .map(|i| format!("l{i}=\"v\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let open_brace = "a{".repeat(100_000);
    let quotes = format!("a{{x=\"{}", "\\\"".repeat(100_000));
    for input in [
        long_labels.as_str(),
        open_brace.as_str(),
        quotes.as_str(),
        "\0\0\0",
        "{",
        "{}",
        "{\"\"}",
    ] {
        for f in [Format::Text, Format::OpenMetrics] {
            let _ = items(input, f);
        }
    }
    assert!(items(&long_labels, Format::Text).is_ok());
}
