//! Differential test of `meridian check config` against the real `promtool check config`
//! (Debian's Prometheus 2.42 build, which must be installed: the test fails without it).
//!
//! The corpus is `tests/data/check_config/` (cases named `good_*` are valid Prometheus 3.x
//! configurations, `bad_*` invalid ones; `files/` holds the rule, credential, target and scrape
//! config files they refer to) plus every Prometheus configuration found in the seed documents
//! (`shared/seeds/`, beside the repository) with its `{{PLACEHOLDERS}}` filled, written to a
//! temporary directory that is removed afterwards.
//!
//! Both tools are run on every case and must give the same verdict (exit status success or
//! failure). The only exceptions are listed in [`INTENDED_DIFFERENCES`], each with its reason:
//! Prometheus 3.x behaviour that 2.42 does not have, what Debian's build leaves out, the checks
//! promtool makes beyond loading (referenced files, static targets) that `meridian check config`
//! does not (yet), and Meridian bugs this test found in code outside its change. An entry whose
//! case agrees again fails the test, so the list cannot go stale.
//!
//! Besides the verdicts: every `bad_*` case Meridian rejects must be reported as
//! `file:line:column: field: message`; a case may pin Meridian's message with a
//! `# meridian error: <text>` comment line, which the cases that promtool rejects only because
//! 2.42 does not know a field must have (otherwise their agreement would prove nothing).

#[path = "../../config/tests/support/seed_blocks.rs"]
mod seed_blocks;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seed_blocks::{BlockKind, seed_blocks, seed_files, seeds_dir};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");
const PROMTOOL: &str = "promtool";

/// Why Meridian's verdict differs from promtool 2.42's on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Prometheus 3.x accepts or rejects it differently from 2.42 (new fields, new defaults,
    /// removed features); Meridian follows 3.x.
    Prometheus3,
    /// Debian builds Prometheus 2.42 without some service discoveries (Kubernetes among them),
    /// so its promtool does not know their fields.
    DebianBuild,
    /// promtool checks more than the configuration loader: the files a configuration refers to
    /// (rule files parse, client certificate, key and credentials files exist, file_sd files
    /// parse) and the static targets after relabeling. `meridian check config` validates the
    /// configuration itself only. Meridian accepts, promtool rejects.
    PromtoolChecks,
    /// Meridian implements static, file and Kubernetes discovery only and rejects the other
    /// service discoveries by name, rather than accept a job that would find no targets.
    /// Meridian rejects, promtool accepts.
    MeridianScope,
    /// A Meridian bug found by this test and not fixed here because the code is outside the
    /// config crate's loader this test's change may touch; Meridian's verdict is wrong.
    KnownBug,
}

impl Why {
    /// Whether Meridian's verdict differs from Prometheus 3.x's (the case's `good_`/`bad_`).
    fn meridian_differs_from_prometheus3(self) -> bool {
        matches!(
            self,
            Why::PromtoolChecks | Why::MeridianScope | Why::KnownBug
        )
    }

    fn label(self) -> &'static str {
        match self {
            Why::Prometheus3 => "Prometheus 3.x",
            Why::DebianBuild => "Debian 2.42 build",
            Why::PromtoolChecks => "promtool-only checks",
            Why::MeridianScope => "Meridian by design",
            Why::KnownBug => "known Meridian bug",
        }
    }
}

/// Cases whose verdicts are meant to differ: (case, why, one-line reason). A case is a file
/// name of the corpus, or `seed:<seed file>:<line of the block>`.
const INTENDED_DIFFERENCES: &[(&str, Why, &str)] = &[
    (
        "good_scrape_protocols.yml",
        Why::Prometheus3,
        "scrape_protocols (global and per job) arrived in 2.49",
    ),
    (
        "good_fallback_scrape_protocol.yml",
        Why::Prometheus3,
        "fallback_scrape_protocol arrived in 3.0",
    ),
    (
        "good_metric_name_validation_scheme.yml",
        Why::Prometheus3,
        "metric_name_validation_scheme and metric_name_escaping_scheme arrived in 2.5x/3.0",
    ),
    (
        "good_new_scrape_fields.yml",
        Why::Prometheus3,
        "enable_compression, track_timestamps_staleness, keep_dropped_targets, \
         always_scrape_classic_histograms, native_histogram_bucket_limit are newer than 2.42",
    ),
    (
        "good_limits.yml",
        Why::Prometheus3,
        "global body_size_limit and sample_limit arrived in 2.45",
    ),
    (
        "good_otlp_runtime.yml",
        Why::Prometheus3,
        "the otlp and runtime sections are newer than 2.42",
    ),
    (
        "good_scrape_config_files.yml",
        Why::Prometheus3,
        "scrape_config_files arrived in 2.43",
    ),
    (
        "good_utf8_label_names.yml",
        Why::Prometheus3,
        "3.x validates label names as UTF-8 by default; 2.42 rejects `cluster.name`",
    ),
    (
        "bad_alerting_api_v1.yml",
        Why::Prometheus3,
        "Alertmanager API v1 was removed in 3.0; 2.42 still accepts it",
    ),
    (
        "good_http_headers.yml",
        Why::Prometheus3,
        "http_headers (prometheus/common 0.50) is newer than 2.42",
    ),
    (
        "good_labelmap_utf8_replacement.yml",
        Why::Prometheus3,
        "with UTF-8 names a labelmap replacement need not be a legacy label name",
    ),
    (
        "good_regex_angle_named_group.yml",
        Why::Prometheus3,
        "(?<name>...) needs Go 1.22's regexp; Debian's promtool is built with Go 1.19",
    ),
    (
        "good_newer_http_and_global_fields.yml",
        Why::Prometheus3,
        "rule_query_offset, scrape_failure_log_file, no_proxy, basic_auth.username_file \
         are newer than 2.42",
    ),
    (
        "good_kubernetes_sd.yml",
        Why::DebianBuild,
        "Debian's 2.42 has no kubernetes_sd_configs at all",
    ),
    (
        "seed:000_42f62937f18cbc11.txt:129",
        Why::DebianBuild,
        "a kubernetes_sd_configs job (Debian's 2.42 has no Kubernetes SD)",
    ),
    (
        "seed:001_f482a4da9cab8ec0.txt:121",
        Why::DebianBuild,
        "a kubernetes_sd_configs job (Debian's 2.42 has no Kubernetes SD)",
    ),
    (
        "bad_empty_target.yml",
        Why::PromtoolChecks,
        "promtool builds the static targets; an empty address fails there",
    ),
    (
        "bad_url_target_after_relabel.yml",
        Why::PromtoolChecks,
        "promtool relabels static targets and rejects a URL left in __address__",
    ),
    (
        "bad_missing_rule_file.yml",
        Why::PromtoolChecks,
        "promtool requires an explicitly named rule file to exist",
    ),
    (
        "bad_invalid_rule_file.yml",
        Why::PromtoolChecks,
        "promtool parses the rule files and their PromQL",
    ),
    (
        "bad_missing_cert_files.yml",
        Why::PromtoolChecks,
        "promtool requires tls_config cert_file and key_file to exist",
    ),
    (
        "bad_missing_credentials_file.yml",
        Why::PromtoolChecks,
        "promtool requires authorization.credentials_file to exist",
    ),
    (
        "bad_missing_bearer_token_file.yml",
        Why::PromtoolChecks,
        "promtool requires bearer_token_file (an authorization credentials file) to exist",
    ),
    (
        "bad_file_sd_invalid_content.yml",
        Why::PromtoolChecks,
        "promtool parses the file_sd files that exist",
    ),
    (
        "good_other_service_discovery.yml",
        Why::MeridianScope,
        "dns_sd_configs, http_sd_configs (and other SDs) are rejected by name, not implemented",
    ),
    (
        "good_remote_write_loose_urls.yml",
        Why::KnownBug,
        "config/src/remote.rs requires a non-empty absolute http(s) URL; Prometheus only \
         url.Parses it",
    ),
    (
        "good_remote_write_negative_shards.yml",
        Why::KnownBug,
        "config/src/remote.rs reads queue_config counts as unsigned; Prometheus has Go ints",
    ),
];

/// Fields that Debian's promtool 2.42 does not know. When promtool rejects a `bad_*` case only
/// because of one of them, the verdicts agree by accident: such a case must pin Meridian's
/// reason with a `# meridian error:` line.
const UNKNOWN_TO_PROMTOOL: &[&str] = &[
    "kubernetes_sd_configs",
    "scrape_config_files",
    "scrape_protocols",
    "fallback_scrape_protocol",
    "metric_name_validation_scheme",
    "metric_name_escaping_scheme",
    "enable_compression",
    "track_timestamps_staleness",
    "keep_dropped_targets",
    "always_scrape_classic_histograms",
    "native_histogram_bucket_limit",
    "otlp",
    "runtime",
];

/// Cases Meridian rejects without naming a field: the error is about the document as a whole.
const NO_FIELD_ERRORS: &[&str] = &["bad_top_level_list.yml"];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check_config")
}

/// One configuration to check with both tools.
struct Case {
    /// File name in the corpus, or `seed:<file>:<line>`.
    name: String,
    path: PathBuf,
    /// The verdict of Prometheus 3.x, when the case says (corpus files do, seeds do not).
    valid_in_prometheus3: Option<bool>,
}

/// Runs `program check config FILES...`; panics when the program cannot be run.
fn check_config(program: &str, files: &[&Path]) -> Output {
    match Command::new(program)
        .args(["check", "config"])
        .args(files)
        .output()
    {
        Ok(output) => output,
        Err(e) if program == PROMTOOL => panic!(
            "cannot run promtool ({e}): this test compares against the real promtool; \
             install Debian's `prometheus` package (apt-get install prometheus)"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

/// Success or failure; any other exit (a usage error, a crash) is a broken harness.
fn verdict(program: &str, case: &str, output: &Output) -> bool {
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "{program} on {case}: unexpected exit {other:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn both_outputs(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn corpus_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = fs::read_dir(data_dir())
        .expect("the corpus directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let valid = if name.starts_with("good_") {
                true
            } else if name.starts_with("bad_") {
                false
            } else {
                panic!("corpus file {name} must be named good_* or bad_*");
            };
            Case {
                name,
                path,
                valid_in_prometheus3: Some(valid),
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// The Prometheus configs of the seed documents, written to `dir` (line-aligned with the seed,
/// so that error lines match it). Empty when there is no seeds directory.
fn seed_cases(dir: &Path) -> Vec<Case> {
    let seeds = seeds_dir(env!("CARGO_MANIFEST_DIR"));
    let Some(files) = seed_files(&seeds) else {
        eprintln!("no seeds directory at {}: no seed configs", seeds.display());
        return Vec::new();
    };
    let mut cases = Vec::new();
    for file in files {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for seed in seed_blocks(&file_name, &text) {
            let BlockKind::Config(yaml) = &seed.kind else {
                continue;
            };
            let path = dir.join(format!("{}-{}.yml", file_name, seed.block.first_line));
            fs::write(&path, yaml).expect("write a seed config");
            cases.push(Case {
                name: format!("seed:{}", seed.location()),
                path,
                valid_in_prometheus3: None,
            });
        }
    }
    assert!(
        !cases.is_empty(),
        "the seeds directory {} exists but holds no Prometheus config",
        seeds.display()
    );
    cases
}

/// The text of a case's `# meridian error: <text>` line, if any.
fn pinned_error(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("# meridian error: "))
        .map(|s| s.trim().to_owned())
}

/// Whether every error promtool lists (`line N: ...` under "unmarshal errors") is about a
/// field of [`UNKNOWN_TO_PROMTOOL`]: then it rejects the case only for not knowing a field.
fn rejected_for_unknown_field(promtool_output: &str) -> bool {
    let errors: Vec<&str> = promtool_output
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("line "))
        .collect();
    !errors.is_empty()
        && errors.iter().all(|error| {
            UNKNOWN_TO_PROMTOOL
                .iter()
                .any(|field| error.contains(&format!("field {field} not found")))
        })
}

/// Whether Meridian's error names a file of the case, a line and column, and (unless exempt)
/// a field: `FILE:LINE:COLUMN: FIELD: message`.
fn error_is_located(case: &Case, stderr: &str) -> Result<(), String> {
    let line = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("FAILED: "))
        .ok_or("no `FAILED:` line")?;
    // The file is the case itself or one it includes (scrape_config_files): a path that exists.
    let file_end = line.find(".yml:").ok_or("no file name")? + ".yml".len();
    let (file, rest) = line.split_at(file_end);
    if !Path::new(file).is_file() {
        return Err(format!("{file:?} is not a file"));
    }
    let mut parts = rest.splitn(4, ':');
    let (_, line_no, column, after) = (parts.next(), parts.next(), parts.next(), parts.next());
    let numeric =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    if !numeric(line_no) || !numeric(column) {
        return Err("no line:column after the file".to_owned());
    }
    let after = after.ok_or("no message")?;
    if NO_FIELD_ERRORS.contains(&case.name.as_str()) {
        return Ok(());
    }
    // ` field.path: message`: a field path has no spaces and is followed by `: `.
    match after.trim_start().split_once(": ") {
        Some((field, _)) if !field.is_empty() && !field.contains(' ') => Ok(()),
        _ => Err("no field named".to_owned()),
    }
}

#[derive(Default)]
struct Tally {
    agree: usize,
    /// Of `agree`: promtool rejected for a field it does not know.
    agree_by_unknown_field: usize,
    intended: Vec<(String, Why)>,
    rows: Vec<String>,
    failures: Vec<String>,
}

fn run_case(case: &Case, tally: &mut Tally) {
    let promtool = check_config(PROMTOOL, &[&case.path]);
    let meridian = check_config(BIN, &[&case.path]);
    let promtool_ok = verdict(PROMTOOL, &case.name, &promtool);
    let meridian_ok = verdict("meridian", &case.name, &meridian);
    let promtool_text = both_outputs(&promtool);
    let meridian_stderr = String::from_utf8_lossy(&meridian.stderr).into_owned();
    let show = |ok: bool| if ok { "valid" } else { "invalid" };
    let intended = INTENDED_DIFFERENCES
        .iter()
        .find(|(name, _, _)| *name == case.name);

    let outcome = match (promtool_ok == meridian_ok, intended) {
        (true, None) => {
            tally.agree += 1;
            if !promtool_ok && rejected_for_unknown_field(&promtool_text) {
                tally.agree_by_unknown_field += 1;
                if pinned_error(&case.path).is_none() && case.valid_in_prometheus3.is_some() {
                    tally.failures.push(format!(
                        "{}: promtool rejects it only for a field 2.42 does not know; \
                         pin Meridian's reason with a `# meridian error:` line",
                        case.name
                    ));
                }
                "agree (promtool: unknown field)".to_owned()
            } else {
                "agree".to_owned()
            }
        }
        (false, Some((_, why, _))) => {
            tally.intended.push((case.name.clone(), *why));
            format!("intended difference ({})", why.label())
        }
        (true, Some(_)) => {
            tally.failures.push(format!(
                "{}: listed in INTENDED_DIFFERENCES but both tools say {}: remove the entry",
                case.name,
                show(promtool_ok)
            ));
            "agree, but listed as a difference".to_owned()
        }
        (false, None) => {
            tally.failures.push(format!(
                "{}: promtool says {}, meridian says {}\n  promtool: {}\n  meridian: {}",
                case.name,
                show(promtool_ok),
                show(meridian_ok),
                promtool_text.trim().replace('\n', "\n            "),
                meridian_stderr.trim()
            ));
            "DISAGREE".to_owned()
        }
    };

    // Meridian against the Prometheus 3.x verdict the case's name gives.
    if let Some(valid) = case.valid_in_prometheus3 {
        let differs = intended.is_some_and(|(_, why, _)| why.meridian_differs_from_prometheus3());
        let expected = valid != differs;
        if meridian_ok != expected {
            tally.failures.push(format!(
                "{}: meridian says {}, expected {}: {}",
                case.name,
                show(meridian_ok),
                show(expected),
                meridian_stderr.trim()
            ));
        }
    }
    if !meridian_ok {
        if let Err(why) = error_is_located(case, &meridian_stderr) {
            tally.failures.push(format!(
                "{}: meridian's error does not name file, line and field ({why}): {}",
                case.name,
                meridian_stderr.trim()
            ));
        }
        if let Some(pinned) = pinned_error(&case.path)
            && !meridian_stderr.contains(&pinned)
        {
            tally.failures.push(format!(
                "{}: meridian's error should contain {pinned:?}: {}",
                case.name,
                meridian_stderr.trim()
            ));
        }
    }
    tally.rows.push(format!(
        "{:<55} promtool {:<7} meridian {:<7} {outcome}",
        case.name,
        show(promtool_ok),
        show(meridian_ok)
    ));
}

#[test]
fn check_config_agrees_with_promtool() {
    match Command::new(PROMTOOL).arg("--version").output() {
        Ok(output) => eprintln!(
            "{}",
            both_outputs(&output).lines().next().unwrap_or_default()
        ),
        Err(e) => panic!(
            "cannot run promtool ({e}): this test compares against the real promtool; \
             install Debian's `prometheus` package (apt-get install prometheus)"
        ),
    }

    let seed_dir = tempfile::tempdir().expect("temporary directory");
    let mut cases = corpus_cases();
    assert!(
        cases.len() >= 40,
        "the corpus should hold at least 40 cases, has {}",
        cases.len()
    );
    cases.extend(seed_cases(seed_dir.path()));

    let mut tally = Tally::default();
    for case in &cases {
        run_case(case, &mut tally);
    }
    for (name, _, _) in INTENDED_DIFFERENCES {
        if !cases.iter().any(|case| case.name == *name) {
            tally.failures.push(format!(
                "INTENDED_DIFFERENCES names {name}, which is not a case"
            ));
        }
    }

    let mut report = String::new();
    for row in &tally.rows {
        let _ = writeln!(report, "{row}");
    }
    let _ = writeln!(report, "\nintended differences:");
    for (name, why, reason) in INTENDED_DIFFERENCES {
        let _ = writeln!(report, "  {name} [{}]: {reason}", why.label());
    }
    let disagree = tally
        .rows
        .iter()
        .filter(|r| r.ends_with("DISAGREE"))
        .count();
    let by_why = [
        Why::Prometheus3,
        Why::DebianBuild,
        Why::PromtoolChecks,
        Why::MeridianScope,
        Why::KnownBug,
    ]
    .map(|why| {
        let n = tally.intended.iter().filter(|(_, w)| *w == why).count();
        format!("{n} {}", why.label())
    })
    .join(", ");
    let _ = writeln!(
        report,
        "\ncheck config vs promtool: {} agree ({} of them only because promtool 2.42 does not \
         know a field), {} intended differences ({by_why}), {disagree} disagree",
        tally.agree,
        tally.agree_by_unknown_field,
        tally.intended.len()
    );
    eprintln!("{report}");
    assert!(
        tally.failures.is_empty(),
        "{} problem(s):\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    drop(seed_dir);
}

/// Several files in one invocation: the verdict is the conjunction, for both tools.
#[test]
fn several_files_fail_together() {
    let data = data_dir();
    let good = data.join("good_minimal.yml");
    let also_good = data.join("good_relabel_actions.yml");
    let bad = data.join("bad_duplicate_job_names.yml");
    for program in [PROMTOOL, BIN] {
        let all_good = check_config(program, &[&good, &also_good]);
        assert!(verdict(program, "two good files", &all_good), "{program}");
        let mixed = check_config(program, &[&good, &bad, &also_good]);
        assert!(!verdict(program, "good, bad, good", &mixed), "{program}");
    }
    let mixed = check_config(BIN, &[&good, &bad, &also_good]);
    let stdout = String::from_utf8_lossy(&mixed.stdout);
    // Every file is checked, not only those before the first failure.
    assert_eq!(stdout.matches("SUCCESS").count(), 2, "{stdout}");
}
