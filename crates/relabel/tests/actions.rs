//! Table-driven tests of every relabel action with Prometheus' semantics, including empty
//! values and missing labels. Rules are written as YAML and loaded through `config`, so the
//! defaults (separator `;`, regex `(.*)`, replacement `$1`) are the ones users get.

use model::labels::Labels;
use relabel::{Rule, process};

struct Case {
    name: &'static str,
    /// The `metric_relabel_configs` list, as YAML.
    rules: &'static str,
    input: &'static [(&'static str, &'static str)],
    /// `None`: the set is dropped.
    output: Option<&'static [(&'static str, &'static str)]>,
}

fn compile(rules_yaml: &str) -> Vec<Rule> {
    let mut yaml = String::from("scrape_configs:\n- job_name: t\n  metric_relabel_configs:\n");
    for line in rules_yaml.lines() {
        yaml.push_str("  ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    let config = match config::Config::from_str(&yaml, "test.yml") {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{yaml}"),
    };
    let scrape = &config.scrape_configs[0];
    match relabel::compile(
        &scrape.metric_relabel_configs,
        scrape.metric_name_validation_scheme,
    ) {
        Ok(rules) => rules,
        Err(e) => panic!("{e}"),
    }
}

fn run(cases: &[Case]) {
    for case in cases {
        let rules = compile(case.rules);
        let got = process(&Labels::from_static(case.input), &rules);
        let want = case.output.map(Labels::from_static);
        assert_eq!(got, want, "case {:?}", case.name);
    }
}

#[test]
fn replace() {
    run(&[
        Case {
            name: "capture groups into a new label",
            rules: "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}\n",
            input: &[("a", "foo"), ("b", "bar")],
            output: Some(&[("a", "foo"), ("b", "bar"), ("d", "choo-choo")]),
        },
        Case {
            name: "several sources joined with the separator",
            rules: "- source_labels: [a, b]\n  regex: f(.*);(.*)r\n  target_label: a\n  replacement: b${1}${2}m\n",
            input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            output: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz")]),
        },
        Case {
            name: "no match leaves the set alone",
            rules: "- source_labels: [a]\n  regex: x(.*)\n  target_label: d\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "regex is anchored",
            rules: "- source_labels: [a]\n  regex: o\n  target_label: d\n  replacement: hit\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "missing source label is the empty string",
            rules: "- source_labels: [missing]\n  target_label: d\n  replacement: set\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo"), ("d", "set")]),
        },
        Case {
            name: "empty replacement deletes the target",
            rules: "- source_labels: [a]\n  target_label: b\n  replacement: ''\n",
            input: &[("a", "foo"), ("b", "bar")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "default replacement copies an empty value, deleting the target",
            rules: "- source_labels: [missing]\n  target_label: b\n",
            input: &[("a", "foo"), ("b", "bar")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "target label from a capture group",
            rules: "- source_labels: [a]\n  regex: (.*)=(.*)\n  target_label: ${1}\n  replacement: ${2}\n",
            input: &[("a", "key=value")],
            output: Some(&[("a", "key=value"), ("key", "value")]),
        },
        Case {
            name: "an invalid expanded target name is skipped",
            rules: "- source_labels: [a]\n  regex: (.*)\n  target_label: ${1}\n",
            input: &[("a", "")],
            output: Some(&[]),
        },
        Case {
            name: "unknown group expands to nothing",
            rules: "- source_labels: [a]\n  regex: (f)(.*)\n  target_label: d\n  replacement: x${3}y\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo"), ("d", "xy")]),
        },
        Case {
            name: "$$ is a literal dollar",
            rules: "- source_labels: [a]\n  target_label: d\n  replacement: $$1\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo"), ("d", "$1")]),
        },
        Case {
            name: "dot matches newline",
            rules: "- source_labels: [a]\n  regex: (.*)\n  target_label: d\n",
            input: &[("a", "x\ny")],
            output: Some(&[("a", "x\ny"), ("d", "x\ny")]),
        },
        Case {
            name: "custom separator",
            rules: "- source_labels: [a, b]\n  separator: '-'\n  target_label: d\n",
            input: &[("a", "1"), ("b", "2")],
            output: Some(&[("a", "1"), ("b", "2"), ("d", "1-2")]),
        },
    ]);
}

#[test]
fn keep_and_drop() {
    run(&[
        Case {
            name: "keep on match",
            rules: "- source_labels: [a]\n  regex: f.*\n  action: keep\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "keep drops on no match",
            rules: "- source_labels: [a]\n  regex: f.*\n  action: keep\n",
            input: &[("a", "bar")],
            output: None,
        },
        Case {
            name: "keep on a missing label matches the empty string",
            rules: "- source_labels: [missing]\n  regex: ''\n  action: keep\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "keep with a non-empty regex drops a missing label",
            rules: "- source_labels: [missing]\n  regex: .+\n  action: keep\n",
            input: &[("a", "foo")],
            output: None,
        },
        Case {
            name: "drop on match",
            rules: "- source_labels: [a]\n  regex: f.*\n  action: drop\n",
            input: &[("a", "foo")],
            output: None,
        },
        Case {
            name: "drop keeps on no match",
            rules: "- source_labels: [a]\n  regex: f.*\n  action: drop\n",
            input: &[("a", "bar")],
            output: Some(&[("a", "bar")]),
        },
        Case {
            name: "drop by default regex drops everything",
            rules: "- source_labels: [missing]\n  action: drop\n",
            input: &[("a", "foo")],
            output: None,
        },
    ]);
}

#[test]
fn keepequal_and_dropequal() {
    run(&[
        Case {
            name: "keepequal keeps equal values",
            rules: "- source_labels: [a]\n  target_label: b\n  action: keepequal\n",
            input: &[("a", "x"), ("b", "x")],
            output: Some(&[("a", "x"), ("b", "x")]),
        },
        Case {
            name: "keepequal drops different values",
            rules: "- source_labels: [a]\n  target_label: b\n  action: keepequal\n",
            input: &[("a", "x"), ("b", "y")],
            output: None,
        },
        Case {
            name: "keepequal: two missing labels are equal",
            rules: "- source_labels: [m1]\n  target_label: m2\n  action: keepequal\n",
            input: &[("a", "x")],
            output: Some(&[("a", "x")]),
        },
        Case {
            name: "dropequal drops equal values",
            rules: "- source_labels: [a]\n  target_label: b\n  action: dropequal\n",
            input: &[("a", "x"), ("b", "x")],
            output: None,
        },
        Case {
            name: "dropequal keeps when one is missing",
            rules: "- source_labels: [a]\n  target_label: missing\n  action: dropequal\n",
            input: &[("a", "x")],
            output: Some(&[("a", "x")]),
        },
    ]);
}

#[test]
fn hashmod() {
    run(&[
        Case {
            // Value from Prometheus' relabel_test.go.
            name: "md5 bucket",
            rules: "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n",
            input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        },
        Case {
            // Prometheus' relabel_test.go: "hashmod of a missing label is the hash of ''".
            name: "missing source",
            rules: "- source_labels: [missing]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "foo"), ("d", "958")]),
        },
    ]);
}

#[test]
fn labelmap() {
    run(&[
        Case {
            name: "copies matching names under the replacement",
            rules: "- regex: __meta_(.*)\n  action: labelmap\n",
            input: &[("__meta_pod", "p"), ("__meta_ns", "n"), ("a", "x")],
            output: Some(&[
                ("__meta_ns", "n"),
                ("__meta_pod", "p"),
                ("a", "x"),
                ("ns", "n"),
                ("pod", "p"),
            ]),
        },
        Case {
            name: "replacement template",
            rules: "- regex: (b.*)\n  replacement: ${1}_x\n  action: labelmap\n",
            input: &[("a", "1"), ("bar", "2")],
            output: Some(&[("a", "1"), ("bar", "2"), ("bar_x", "2")]),
        },
        Case {
            name: "a mapped label overwrites an existing one",
            rules: "- regex: m_(.*)\n  action: labelmap\n",
            input: &[("a", "old"), ("m_a", "new")],
            output: Some(&[("a", "new"), ("m_a", "new")]),
        },
        Case {
            name: "works on a snapshot: mapped names are not mapped again",
            rules: "- regex: (.*)\n  replacement: x${1}\n  action: labelmap\n",
            input: &[("a", "1")],
            output: Some(&[("a", "1"), ("xa", "1")]),
        },
    ]);
}

#[test]
fn labeldrop_and_labelkeep() {
    run(&[
        Case {
            name: "labeldrop",
            rules: "- regex: a.*\n  action: labeldrop\n",
            input: &[("a", "1"), ("ab", "2"), ("b", "3")],
            output: Some(&[("b", "3")]),
        },
        Case {
            name: "labeldrop is anchored",
            rules: "- regex: b\n  action: labeldrop\n",
            input: &[("ab", "1"), ("b", "2")],
            output: Some(&[("ab", "1")]),
        },
        Case {
            name: "labelkeep",
            rules: "- regex: a.*\n  action: labelkeep\n",
            input: &[("a", "1"), ("ab", "2"), ("b", "3")],
            output: Some(&[("a", "1"), ("ab", "2")]),
        },
        Case {
            name: "labelkeep of nothing leaves an empty set",
            rules: "- regex: zzz\n  action: labelkeep\n",
            input: &[("a", "1")],
            output: Some(&[]),
        },
    ]);
}

#[test]
fn lowercase_and_uppercase() {
    run(&[
        Case {
            name: "lowercase",
            rules: "- source_labels: [a, b]\n  target_label: c\n  action: lowercase\n",
            input: &[("a", "FoO"), ("b", "ÄB")],
            output: Some(&[("a", "FoO"), ("b", "ÄB"), ("c", "foo;äb")]),
        },
        Case {
            name: "uppercase",
            rules: "- source_labels: [a]\n  target_label: a\n  action: uppercase\n",
            input: &[("a", "foo")],
            output: Some(&[("a", "FOO")]),
        },
        Case {
            name: "lowercase of a missing label deletes the target",
            rules: "- source_labels: [missing]\n  target_label: a\n  action: lowercase\n",
            input: &[("a", "foo")],
            output: Some(&[]),
        },
    ]);
}

#[test]
fn rules_apply_in_order() {
    run(&[Case {
        name: "replace then keep on the new label",
        rules: "- source_labels: [a]\n  target_label: b\n  replacement: x\n- source_labels: [b]\n  regex: x\n  action: keep\n- regex: a\n  action: labeldrop\n",
        input: &[("a", "1")],
        output: Some(&[("b", "x")]),
    }]);
}
