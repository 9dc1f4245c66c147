//! `check_files` against `promtool check rules` (Prometheus 2.42, Debian): a corpus of good
//! and bad rule files must pass or fail the same way, with the same rule counts. Fails when
//! promtool is not installed.

use std::path::PathBuf;
use std::process::Command;

const CORPUS: &[(&str, &str)] = &[
    (
        "good_basic",
        "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels:\n      team: infra\n  - alert: InstanceDown\n    expr: up == 0\n    for: 5m\n    labels:\n      severity: page\n    annotations:\n      summary: 'Instance {{ $labels.instance }} down'\n      description: '{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes (value {{ $value }}).'\n",
    ),
    ("good_empty_groups", "groups: []\n"),
    ("good_empty_file", "# nothing here\n"),
    (
        "good_templates",
        "groups:\n- name: t\n  rules:\n  - alert: HighLatency\n    expr: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5\n    annotations:\n      value: '{{ humanize $value }} {{ humanizeDuration $value }} {{ humanizePercentage $value }}'\n      fmt: '{{ printf \"%.2f\" $value }} {{ $value | printf \"%.1f\" }}'\n      cond: '{{ if gt $value 1.0 }}high{{ else if lt $value 0.1 }}low{{ else }}mid{{ end }}'\n      words: '{{ title \"a b\" }} {{ toUpper $labels.job }} {{ toLower \"X\" }}'\n      ext: '{{ $externalLabels.cluster }} {{ $externalURL }}'\n      loop: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}'\n      trim: '{{- $labels.job -}}'\n",
    ),
    (
        "good_keep_firing",
        "groups:\n- name: k\n  limit: 10\n  rules:\n  - alert: Flappy\n    expr: up == 0\n    for: 1m\n    keep_firing_for: 10m\n",
    ),
    (
        "good_multiline",
        "groups:\n- name: m\n  rules:\n  - record: instance:cpu:rate5m\n    expr: |\n      sum without (cpu, mode) (\n        rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])\n      )\n- name: n\n  rules:\n  - alert: A\n    expr: vector(1)\n  - alert: A\n    expr: vector(2)\n",
    ),
    (
        "good_query_templates",
        "groups:\n- name: q\n  rules:\n  - alert: Q\n    expr: up == 0\n    annotations:\n      a: '{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}'\n      b: '{{ range query \"up\" }}{{ .Labels.instance }} {{ end }}'\n      c: '{{ with $v := $value }}{{ $v }}{{ else }}none{{ end }}'\n      d: '{{ $labels.instance | reReplaceAll \":.*\" \"\" }} {{ stripPort $labels.instance }} {{ tableLink \"up\" }}'\n",
    ),
    (
        "good_group_limit_only",
        "groups:\n- name: l\n  limit: 0\n  rules:\n  - record: x:y\n    expr: '1'\n",
    ),
    (
        "bad_template_else",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ else }}'\n",
    ),
    (
        "good_template_trailing_pipe",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ $value | }}'\n",
    ),
    (
        "probe_nested_field",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ $labels.x.y }}\"\n",
    ),
    (
        "probe_two_literals",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ 1 2 }}\"\n",
    ),
    (
        "probe_dot_field",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ .Foo }}\"\n",
    ),
    (
        "probe_func_no_args",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ humanize }}\"\n",
    ),
    (
        "probe_leading_pipe",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ | $value }}\"\n",
    ),
    (
        "probe_empty_action",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ }}\"\n",
    ),
    (
        "probe_comment_trim",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{- /* c */ -}}x\"\n",
    ),
    (
        "probe_bad_comment",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{/* c }}\"\n",
    ),
    (
        "probe_define",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ define \"x\" }}a{{ end }}{{ template \"x\" }}'\n",
    ),
    (
        "probe_else_with",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ with $value }}a{{ else with $labels }}b{{ end }}\"\n",
    ),
    (
        "probe_break",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ range $labels }}{{ break }}{{ end }}\"\n",
    ),
    (
        "probe_unclosed_paren",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ (humanize $value }}\"\n",
    ),
    (
        "probe_number_forms",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ 0x10 }} {{ 1e3 }} {{ -2 }} {{ 'a' }}\"\n",
    ),
    (
        "probe_assign_undeclared",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ $x = 1 }}\"\n",
    ),
    (
        "probe_var_scope",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}\"\n",
    ),
    (
        "probe_raw_string",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ `raw` }}\"\n",
    ),
    (
        "probe_nil",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ nil }}\"\n",
    ),
    (
        "probe_bad_char",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: \"{{ $value # }}\"\n",
    ),
    (
        "bad_unknown_rule_field",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    bogus: 1\n",
    ),
    (
        "bad_unknown_group_field",
        "groups:\n- name: g\n  evaluation: 1m\n  rules: []\n",
    ),
    ("bad_unknown_top_field", "groupz:\n- name: g\n"),
    (
        "bad_record_and_alert",
        "groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n",
    ),
    (
        "bad_neither",
        "groups:\n- name: g\n  rules:\n  - expr: up\n",
    ),
    (
        "bad_missing_expr",
        "groups:\n- name: g\n  rules:\n  - record: a\n",
    ),
    (
        "bad_expr",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: sum(rate(x[5m])\n",
    ),
    (
        "bad_expr_type",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: rate(x)\n",
    ),
    (
        "bad_record_annotations",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    annotations:\n      x: y\n",
    ),
    (
        "bad_record_for",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 5m\n",
    ),
    (
        "bad_record_name",
        "groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: up\n",
    ),
    (
        "bad_label_name",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    labels:\n      bad-label: x\n",
    ),
    (
        "bad_label_metric_name",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    labels:\n      __name__: x\n",
    ),
    (
        "bad_annotation_name",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      'bad name': x\n",
    ),
    (
        "bad_duplicate_group",
        "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
    ),
    ("bad_empty_group_name", "groups:\n- name: ''\n  rules: []\n"),
    (
        "bad_template_unclosed",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ $labels.x '\n",
    ),
    (
        "bad_template_function",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ nosuchfunction $value }}'\n",
    ),
    (
        "bad_template_variable",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    labels:\n      s: '{{ $nope }}'\n",
    ),
    (
        "bad_template_end",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    annotations:\n      s: '{{ if true }}x'\n",
    ),
    (
        "bad_duplicate_key",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    expr: down\n",
    ),
    (
        "bad_duration",
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    for: 5x\n",
    ),
    (
        "bad_interval",
        "groups:\n- name: g\n  interval: often\n  rules: []\n",
    ),
    (
        "bad_yaml",
        "groups:\n- name: g\n  rules:\n  - record: a\n   expr: up\n",
    ),
    ("bad_not_a_list", "groups:\n  name: g\n"),
];

#[test]
fn check_rules_agrees_with_promtool() {
    let promtool = Command::new("promtool").arg("--version").output();
    assert!(
        promtool.is_ok_and(|o| o.status.success()),
        "promtool is not installed (apt-get install prometheus)"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut disagreements = Vec::new();
    let mut good = 0;
    for (name, text) in CORPUS {
        let path: PathBuf = dir.path().join(format!("{name}.yml"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let theirs_ok = out.status.success();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let theirs_count = stdout
            .split("SUCCESS: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok());
        let report = rules::check_files(std::slice::from_ref(&path));
        let ours_count = report.rules[0].1;
        let lint = String::from_utf8_lossy(&out.stderr).contains("duplicate rule");
        if lint != report.output.contains("duplicate rule") {
            disagreements.push(format!("{name}: duplicate-rule lint differs"));
        }
        if theirs_ok != report.ok || (theirs_ok && !lint && theirs_count != ours_count) {
            disagreements.push(format!(
                "{name}: promtool ok={theirs_ok} count={theirs_count:?} ({}{}) vs ours ok={} count={ours_count:?} ({})",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim(),
                report.ok,
                report.output.trim()
            ));
        }
        if theirs_ok {
            good += 1;
        }
        // `probe_*` files check agreement only; `good_*`/`bad_*` also check the corpus.
        assert!(
            name.starts_with("probe") || name.starts_with("good") == theirs_ok,
            "corpus label of {name} is wrong: {stdout}"
        );
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    eprintln!(
        "promtool agreement: {} files ({good} good, {} bad)",
        CORPUS.len(),
        CORPUS.len() - good
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("r.yml");
    std::fs::write(
        &path,
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: sum(x\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = rules::check_files(std::slice::from_ref(&path));
    assert!(!report.ok);
    let expected = format!("{}:5:11: groups[0].rules[0].expr:", path.display());
    assert!(report.output.contains(&expected), "{}", report.output);
}
