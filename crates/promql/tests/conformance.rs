//! PromQL evaluation conformance: runs Prometheus' test scripts (`*.test`, format described in
//! `shared/conformance/promql/FORMAT.md`) against `promql::engine` over an in-memory storage.
//!
//! `cargo test -p promql --test conformance -- --nocapture` runs every `*.test` file of
//! `MERIDIAN_PROMQL_CORPUS` (default `../../../shared/conformance/promql` from this crate; a
//! missing default directory fails unless `MERIDIAN_ALLOW_MISSING_CORPUS=1`), then the repo's
//! own `tests/testdata/*.test`. Each eval is reported as pass, fail (with `file:line`, the
//! expression and a short expected-vs-got diff), error (the engine failed where success was
//! expected, or panicked) or skipped(<reason>); then one line per file and a final
//! `N passed, M failed`.
//!
//! The test fails only when an eval listed in `conformance_expected_pass.txt` does not pass;
//! `MERIDIAN_PROMQL_UPDATE_EXPECTED=1` rewrites that list with the evals passing now. Other
//! knobs: `MERIDIAN_PROMQL_FILTER=functions.test,at_modifier.test:12` (run only those files or
//! evals), `MERIDIAN_PROMQL_QUIET=1` (no per-eval lines), `MERIDIAN_PROMQL_RAW_HINTS=1` (store
//! histogram counter-reset hints as written instead of as Prometheus' TSDB reads them back).
//!
//! Besides each eval as written, every instant eval is re-run as upstream does (FORMAT.md 7):
//! as a range query around its time (7.1) and pinned with `@ T` at five other times (7.2).
//! An eval counts as a *histogram eval* when native histograms are in the data it runs on
//! (a `{{…}}` literal or a `load_with_nhcb` conversion since the last `clear`) or in its
//! expectations. An eval that does not pass while the loaded data has `@st` start-timestamp
//! lines (which this runner ignores) is counted as skipped(start_timestamps).
//!
//! The helpers live in `conformance/`: `script.rs` (parsing), `check.rs` (comparison),
//! `histogram.rs` (histogram arithmetic, NHCB conversion, TSDB hints) and `at_rewrite.rs`.

#![allow(clippy::unwrap_used)]

#[path = "conformance/at_rewrite.rs"]
mod at_rewrite;
#[path = "conformance/check.rs"]
mod check;
#[path = "conformance/histogram.rs"]
mod histogram;
#[path = "conformance/script.rs"]
mod script;

use check::{AnnotationCheck, compare_value, render_expected, render_value};
use model::labels::Labels;
use promql::ParserOptions;
use promql::engine::{Engine, EngineOptions, QueryError, QueryResult, Sample, Value};
use script::{Command, Eval, EvalKind, Load, SeqValue};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use storage::memory::MemStorage;

const EXPECTED_PASS_FILE: &str = "conformance_expected_pass.txt";
/// Prefix of the case ids of the repo's own scripts.
const OWN_PREFIX: &str = "testdata/";

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    corpus: PathBuf,
    /// The corpus is the default one (its case ids are those of the expected-pass list).
    corpus_is_default: bool,
    filter: Vec<String>,
    quiet: bool,
    raw_hints: bool,
    update: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

impl Config {
    fn from_env() -> Config {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let default = manifest.join("../../../shared/conformance/promql");
        let corpus = std::env::var_os("MERIDIAN_PROMQL_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| default.clone());
        let corpus_is_default = match (corpus.canonicalize(), default.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => corpus == default,
        };
        let filter = std::env::var("MERIDIAN_PROMQL_FILTER")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Config {
            corpus,
            corpus_is_default,
            filter,
            quiet: env_flag("MERIDIAN_PROMQL_QUIET"),
            raw_hints: env_flag("MERIDIAN_PROMQL_RAW_HINTS"),
            update: env_flag("MERIDIAN_PROMQL_UPDATE_EXPECTED"),
        }
    }

    /// Whether the eval with this id is selected by `MERIDIAN_PROMQL_FILTER`.
    fn selects(&self, id: &str) -> bool {
        let file = id.rsplit_once(':').map_or(id, |(f, _)| f);
        self.filter.is_empty()
            || self
                .filter
                .iter()
                .any(|f| f == id || (!f.contains(':') && file.contains(f.as_str())))
    }
}

/// The engine as FORMAT.md section 5 configures it.
#[allow(clippy::needless_update)]
fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta: 5 * 60 * 1000,
        default_subquery_step: 60 * 1000,
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        delayed_name_removal: true,
        parser: ParserOptions::all_enabled(),
        ..EngineOptions::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Panics

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records, instead of printing, panics raised inside
/// [`guarded`]; other panics go to the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string().replace('\n', " ")));
            } else {
                previous(info);
            }
        }));
    });
}

enum RunError {
    Query(QueryError),
    Panic(String),
}

/// Runs one engine call, turning a panic into [`RunError::Panic`].
fn guarded(f: impl FnOnce() -> Result<QueryResult, QueryError>) -> Result<QueryResult, RunError> {
    CATCHING.with(|c| c.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(RunError::Query(e)),
        Err(payload) => {
            let recorded = LAST_PANIC.with(|p| p.borrow_mut().take());
            let msg = recorded.unwrap_or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into())
            });
            Err(RunError::Panic(msg))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes and tallies

enum Outcome {
    Pass,
    /// Wrong result. `wording_only`: only the annotation texts were wrong (6.3's softer
    /// category).
    Fail {
        detail: String,
        wording_only: bool,
    },
    /// The engine failed (or panicked) where success was expected.
    Error(String),
}

#[derive(Default, Clone)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Of `failed`: engine errors and panics where success was expected.
    errors: usize,
    hist_passed: usize,
    hist_failed: usize,
    skipped: BTreeMap<&'static str, usize>,
    wording_only: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.errors += o.errors;
        self.hist_passed += o.hist_passed;
        self.hist_failed += o.hist_failed;
        self.wording_only += o.wording_only;
        for (k, v) in &o.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
    }

    fn line(&self, name: &str) -> String {
        let mut s = format!(
            "{name}: {} passed, {} failed ({} histogram evals: {} passed, {} failed)",
            self.passed,
            self.failed,
            self.hist_passed + self.hist_failed,
            self.hist_passed,
            self.hist_failed
        );
        for (reason, n) in &self.skipped {
            let _ = write!(s, ", {n} skipped({reason})");
        }
        s
    }
}

#[derive(Default)]
struct Report {
    files: Vec<(String, Tally)>,
    script_errors: Vec<String>,
    /// Case id → passed.
    results: HashMap<String, bool>,
    /// Per-eval lines (failures, errors, skips).
    details: String,
}

// ---------------------------------------------------------------------------------------------
// Running scripts

struct Runner<'a> {
    config: &'a Config,
    engine: Engine,
    storage: MemStorage,
    /// Everything loaded since the last `clear`, as written (before TSDB hints).
    loaded: HashMap<Labels, BTreeMap<i64, storage::Value>>,
    has_histograms: bool,
    has_start_timestamps: bool,
    /// Engine calls made (instant and range, re-checks included).
    queries: Cell<usize>,
}

impl<'a> Runner<'a> {
    fn new(config: &'a Config) -> Self {
        Runner {
            config,
            engine: engine(),
            storage: MemStorage::new(),
            loaded: HashMap::new(),
            has_histograms: false,
            has_start_timestamps: false,
            queries: Cell::new(0),
        }
    }

    /// Runs one engine call under [`guarded`], counting it.
    fn query(
        &self,
        f: impl FnOnce(&Engine, &MemStorage) -> Result<QueryResult, QueryError>,
    ) -> Result<QueryResult, RunError> {
        self.queries.set(self.queries.get() + 1);
        guarded(|| f(&self.engine, &self.storage))
    }

    fn clear(&mut self) {
        self.storage.clear();
        self.loaded.clear();
        self.has_histograms = false;
        self.has_start_timestamps = false;
    }

    /// Runs one script file; `id_prefix` + `name` + `:line` identifies its evals.
    fn run_file(&mut self, id_prefix: &str, name: &str, text: &str, report: &mut Report) {
        self.clear();
        let parsed = script::parse_script(text);
        for e in &parsed.errors {
            report
                .script_errors
                .push(format!("{id_prefix}{name}:{}: {}", e.line, e.message));
        }
        for command in &parsed.commands {
            if let Command::Eval(e) = command {
                for msg in &e.errors {
                    let at = format!("{id_prefix}{name}:{}", e.line);
                    report.script_errors.push(format!("{at}: {msg}"));
                }
            }
        }
        let mut tally = Tally::default();
        for command in &parsed.commands {
            match command {
                Command::Clear => self.clear(),
                Command::Load(load) => self.load(load),
                Command::Eval(eval) => {
                    let id = format!("{id_prefix}{name}:{}", eval.line);
                    if !self.config.selects(&id) {
                        continue;
                    }
                    self.record(&id, eval, &mut tally, report);
                }
            }
        }
        if tally.passed + tally.failed + tally.skipped.values().sum::<usize>() > 0
            || !parsed.errors.is_empty()
        {
            report.files.push((format!("{id_prefix}{name}"), tally));
        }
    }

    fn record(&self, id: &str, eval: &Eval, tally: &mut Tally, report: &mut Report) {
        let histogram = self.has_histograms || eval.mentions_histograms;
        let outcome = self.run_eval(eval);
        let passed = matches!(outcome, Outcome::Pass);
        report.results.insert(id.to_string(), passed);
        if passed {
            tally.passed += 1;
            if histogram {
                tally.hist_passed += 1;
            }
            return;
        }
        let (kind, detail, wording_only) = match outcome {
            Outcome::Pass => unreachable!(),
            Outcome::Fail {
                detail,
                wording_only,
            } => ("FAIL", detail, wording_only),
            Outcome::Error(detail) => ("ERROR", detail, false),
        };
        let quiet = self.config.quiet;
        if self.has_start_timestamps {
            *tally.skipped.entry("start_timestamps").or_default() += 1;
            if !quiet {
                let _ = writeln!(
                    report.details,
                    "SKIP(start_timestamps) {id}: {} [{kind}: {}]",
                    eval.expr,
                    detail.lines().next().unwrap_or_default()
                );
            }
            return;
        }
        tally.failed += 1;
        if kind == "ERROR" {
            tally.errors += 1;
        }
        if histogram {
            tally.hist_failed += 1;
        }
        if wording_only {
            tally.wording_only += 1;
        }
        if !quiet {
            let tag = if wording_only {
                " (annotation wording only)"
            } else {
                ""
            };
            let _ = writeln!(report.details, "{kind}{tag} {id}: {}", eval.expr);
            for line in detail.lines() {
                let _ = writeln!(report.details, "    {line}");
            }
        }
    }

    fn load(&mut self, load: &Load) {
        self.has_start_timestamps |= load.has_start_timestamps;
        let mut touched: Vec<Labels> = Vec::new();
        let mut floats: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        for (labels, values) in &load.series {
            let series = self.loaded.entry(labels.clone()).or_default();
            let mut series_floats = Vec::new();
            for (k, v) in values.iter().enumerate() {
                let t = i64::try_from(k)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(load.interval);
                match v {
                    SeqValue::Omitted => {}
                    SeqValue::Float(f) => {
                        series.insert(t, storage::Value::Float(*f));
                        series_floats.push((t, *f));
                    }
                    SeqValue::Histogram(h) => {
                        self.has_histograms = true;
                        series.insert(t, storage::Value::Histogram(Arc::new(h.h.clone())));
                    }
                }
            }
            touched.push(labels.clone());
            if load.nhcb {
                floats.push((labels.clone(), series_floats));
            }
        }
        for (labels, samples) in histogram::classic_to_nhcb(&floats) {
            let series = self.loaded.entry(labels.clone()).or_default();
            for (t, h) in samples {
                self.has_histograms = true;
                series.insert(t, storage::Value::Histogram(Arc::new(h)));
            }
            touched.push(labels);
        }
        let mut done = HashSet::new();
        for labels in touched {
            if !done.insert(labels.clone()) {
                continue;
            }
            let mut samples: Vec<(i64, storage::Value)> = self.loaded[&labels]
                .iter()
                .map(|(t, v)| (*t, v.clone()))
                .collect();
            if !self.config.raw_hints {
                histogram::apply_tsdb_hints(&mut samples);
            }
            self.storage.insert_samples(&labels, samples);
        }
    }

    fn run_eval(&self, eval: &Eval) -> Outcome {
        if !eval.errors.is_empty() {
            return Outcome::Fail {
                detail: format!("script error: {}", eval.errors.join("; ")),
                wording_only: false,
            };
        }
        let expr = match self.engine.parse(&eval.expr) {
            Ok(e) => e,
            Err(err) => {
                return match &eval.fail {
                    Some(m) => match check::check_error(m, &err.to_string()) {
                        Ok(()) => Outcome::Pass,
                        Err(e) => fail(e),
                    },
                    None => Outcome::Error(format!("does not parse: {err}")),
                };
            }
        };
        let mut wording = None;
        let result = match eval.kind {
            EvalKind::Range { start, end, step } => {
                let r = self.query(|e, s| e.range_query_expr(s, &expr, start, end, step, None));
                self.check_result(eval, r, (start, end, step), "", &mut wording)
                    .map(|_| ())
            }
            EvalKind::Instant { at } => self.run_instant(eval, &expr, at, &mut wording),
        };
        match (result, wording) {
            (Err(o), _) => o,
            (Ok(()), None) => Outcome::Pass,
            (Ok(()), Some(detail)) => Outcome::Fail {
                detail,
                wording_only: true,
            },
        }
    }

    /// The instant eval, its range-mode re-check and its `@` re-checks.
    fn run_instant(
        &self,
        eval: &Eval,
        expr: &promql::Expr,
        at: i64,
        wording: &mut Option<String>,
    ) -> Result<(), Outcome> {
        let (t, cmp) = match eval.range_vector {
            Some((s, e, d)) => (e, (s, e, d)),
            None => (at, (at, at, 0)),
        };
        self.instant_once(eval, expr, t, cmp, "", wording)?;
        if at_rewrite::calls_at_unsafe_function(expr) {
            return Ok(());
        }
        let mut pinned = expr.clone();
        at_rewrite::pin_to(&mut pinned, t);
        for t2 in at_rewrite::recheck_times(t) {
            let label = format!("[pinned @ {t}ms, evaluated at {t2}ms (7.2)] ");
            self.instant_once(eval, &pinned, t2, cmp, &label, wording)?;
        }
        Ok(())
    }

    /// One instant query at `t` and, where FORMAT.md 7.1 applies, its range-mode twin.
    fn instant_once(
        &self,
        eval: &Eval,
        expr: &promql::Expr,
        t: i64,
        cmp: (i64, i64, i64),
        label: &str,
        wording: &mut Option<String>,
    ) -> Result<(), Outcome> {
        let r = self.query(|e, s| e.instant_query_expr(s, expr, t, None));
        let Some(value) = self.check_result(eval, r, cmp, label, wording)? else {
            return Ok(());
        };
        let text = &eval.expr;
        let time_dependent = ["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| text.contains(f));
        if eval.ordered || eval.range_vector.is_some() || eval.string.is_some() || time_dependent {
            return Ok(());
        }
        let label = format!(
            "{label}[as range query {}..{} step 1m (7.1)] ",
            t - 60_000,
            t + 60_000
        );
        let r =
            self.query(|e, s| e.range_query_expr(s, expr, t - 60_000, t + 60_000, 60_000, None));
        let result = match r {
            Ok(res) => res,
            Err(RunError::Query(e)) => return Err(Outcome::Error(format!("{label}{e}"))),
            Err(RunError::Panic(p)) => {
                return Err(Outcome::Error(format!("{label}engine panicked: {p}")));
            }
        };
        let Value::Matrix(matrix) = &result.value else {
            return Err(fail(format!(
                "{label}a range query returned a non-matrix: {}",
                render_value(&result.value).join("; ")
            )));
        };
        check::check_sorted(matrix).map_err(|e| fail(format!("{label}{e}")))?;
        let mut vector = Vec::new();
        for s in matrix {
            if let Some((_, v)) = s.floats.iter().find(|p| p.0 == t) {
                vector.push(Sample {
                    labels: s.labels.clone(),
                    t,
                    value: storage::Value::Float(*v),
                });
            }
            if let Some((_, h)) = s.histograms.iter().find(|p| p.0 == t) {
                vector.push(Sample {
                    labels: s.labels.clone(),
                    t,
                    value: storage::Value::Histogram(h.clone()),
                });
            }
        }
        let picked = if matches!(value, Value::Scalar { .. }) {
            match vector.first() {
                Some(Sample {
                    value: storage::Value::Float(v),
                    ..
                }) => Value::Scalar { t, v: *v },
                _ => {
                    return Err(fail(format!(
                        "{label}no float point at {t} for the scalar result: {}",
                        render_value(&result.value).join("; ")
                    )));
                }
            }
        } else {
            Value::Vector(vector)
        };
        compare_value(eval, &picked, cmp.0, cmp.1, cmp.2)
            .map_err(|e| fail_diff(eval, &format!("{label}{e}"), &picked))?;
        Ok(())
    }

    /// Checks one query's outcome against the eval: the expected failure, else annotations and
    /// value. `Ok(None)`: failed as expected; `Ok(Some(value))`: succeeded and matched.
    fn check_result(
        &self,
        eval: &Eval,
        r: Result<QueryResult, RunError>,
        (start, end, step): (i64, i64, i64),
        label: &str,
        wording: &mut Option<String>,
    ) -> Result<Option<Value>, Outcome> {
        let res = match (r, &eval.fail) {
            (Err(RunError::Panic(p)), _) => {
                return Err(Outcome::Error(format!("{label}engine panicked: {p}")));
            }
            (Err(RunError::Query(e)), Some(m)) => {
                return check::check_error(m, &e.to_string())
                    .map(|()| None)
                    .map_err(|e| fail(format!("{label}{e}")));
            }
            (Err(RunError::Query(e)), None) => {
                return Err(Outcome::Error(format!("{label}{e}")));
            }
            (Ok(res), Some(_)) => {
                return Err(fail_diff(
                    eval,
                    &format!("{label}expected the query to fail, but it succeeded"),
                    &res.value,
                ));
            }
            (Ok(res), None) => res,
        };
        match check::check_annotations(eval, &res.annotations, &eval.expr) {
            AnnotationCheck::Ok => {}
            AnnotationCheck::WordingOnly(p) => {
                wording.get_or_insert_with(|| format!("{label}{p}"));
            }
            AnnotationCheck::Fail(p) => return Err(fail(format!("{label}{p}"))),
        }
        // Range queries and `expect range vector` evals (the only ones with a step) must
        // return a matrix.
        if step > 0 && !matches!(res.value, Value::Matrix(_)) {
            let msg = format!("{label}expected a matrix result");
            return Err(fail_diff(eval, &msg, &res.value));
        }
        compare_value(eval, &res.value, start, end, step)
            .map_err(|e| fail_diff(eval, &format!("{label}{e}"), &res.value))?;
        Ok(Some(res.value))
    }
}

fn fail(detail: String) -> Outcome {
    Outcome::Fail {
        detail,
        wording_only: false,
    }
}

/// A failure with the expectation and the result side by side.
fn fail_diff(eval: &Eval, msg: &str, got: &Value) -> Outcome {
    let mut detail = msg.to_string();
    detail.push_str("\nexpected:");
    let expected = match &eval.fail {
        Some(m) => vec![format!("an error ({m})")],
        None => render_expected(eval),
    };
    for l in expected {
        let _ = write!(detail, "\n    {l}");
    }
    detail.push_str("\ngot:");
    for l in render_value(got) {
        let _ = write!(detail, "\n    {l}");
    }
    fail(detail)
}

// ---------------------------------------------------------------------------------------------
// The expected-pass list

/// Sort key of a case id: file, then line number.
fn id_key(id: &str) -> (String, u64) {
    match id.rsplit_once(':') {
        Some((file, line)) => (file.to_string(), line.parse().unwrap_or(u64::MAX)),
        None => (id.to_string(), 0),
    }
}

fn read_expected(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn write_expected(path: &Path, report: &Report) {
    let mut passing: Vec<&String> = report
        .results
        .iter()
        .filter(|(_, p)| **p)
        .map(|(id, _)| id)
        .collect();
    passing.sort_by_key(|id| id_key(id));
    let mut text = String::new();
    text.push_str(
        "# PromQL conformance: evals that must keep passing, as `<file>:<line of the eval header>`\n\
         # (`testdata/...` = crates/promql/tests/testdata, the rest = shared/conformance/promql).\n\
         # A listed eval that does not pass fails `cargo test -p promql --test conformance`;\n\
         # unlisted evals never fail it.\n",
    );
    let _ = writeln!(
        text,
        "# Generated by `MERIDIAN_PROMQL_UPDATE_EXPECTED=1 cargo test -p promql --test conformance`:\n\
         # {} of {} evals passing.",
        passing.len(),
        report.results.len()
    );
    for id in passing {
        text.push_str(id);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// The test

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "test"))
        .collect();
    files.sort();
    files
}

fn run_dir(runner: &mut Runner, dir: &Path, id_prefix: &str, report: &mut Report) {
    for file in test_files(dir) {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(&file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                // A bug in the runner itself must not end the whole run either.
                let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                    runner.run_file(id_prefix, &name, &text, report);
                }));
                if let Err(payload) = caught {
                    let msg = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    report
                        .script_errors
                        .push(format!("{id_prefix}{name}: runner panicked: {msg}"));
                }
            }
            Err(e) => report
                .script_errors
                .push(format!("{id_prefix}{name}: cannot read: {e}")),
        }
    }
}

#[test]
fn promql_conformance() {
    install_panic_hook();
    let started = Instant::now();
    let config = Config::from_env();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = Report::default();
    let mut runner = Runner::new(&config);

    let corpus_available = config.corpus.is_dir();
    if corpus_available {
        run_dir(&mut runner, &config.corpus, "", &mut report);
    } else if config.corpus_is_default && env_flag("MERIDIAN_ALLOW_MISSING_CORPUS") {
        println!(
            "corpus {} not found: skipped (MERIDIAN_ALLOW_MISSING_CORPUS=1)",
            config.corpus.display()
        );
    } else {
        panic!(
            "PromQL corpus not found at {} (set MERIDIAN_PROMQL_CORPUS, or MERIDIAN_ALLOW_MISSING_CORPUS=1 to skip it)",
            config.corpus.display()
        );
    }
    let own = manifest.join("tests/testdata");
    if own.is_dir() {
        run_dir(&mut runner, &own, OWN_PREFIX, &mut report);
    }

    // The report: per-eval details, then per-file lines, then the totals.
    print!("{}", report.details);
    println!("== PromQL conformance ({}) ==", config.corpus.display());
    let mut total = Tally::default();
    for (name, tally) in &report.files {
        println!("{}", tally.line(name));
        total.add(tally);
    }
    println!(
        "engine errors: {} of the failed evals failed with an engine error or panic",
        total.errors
    );
    println!(
        "histogram evals: {} passed, {} failed",
        total.hist_passed, total.hist_failed
    );
    println!(
        "annotation wording only: {} of the failed evals differ only in annotation texts (presence checks pass)",
        total.wording_only
    );
    for (reason, n) in &total.skipped {
        println!("skipped({reason}): {n}");
    }
    if !report.script_errors.is_empty() {
        println!("script errors: {}", report.script_errors.len());
        for e in &report.script_errors {
            println!("    {e}");
        }
    }
    println!(
        "time: {:.1}s, {} engine queries",
        started.elapsed().as_secs_f64(),
        runner.queries.get()
    );
    println!("{} passed, {} failed", total.passed, total.failed);

    let expected_path = manifest.join("tests").join(EXPECTED_PASS_FILE);
    if config.update {
        assert!(
            config.filter.is_empty() && config.corpus_is_default && corpus_available,
            "MERIDIAN_PROMQL_UPDATE_EXPECTED=1 needs the default corpus and no MERIDIAN_PROMQL_FILTER"
        );
        write_expected(&expected_path, &report);
        println!("rewrote {}", expected_path.display());
        return;
    }
    let mut regressions = Vec::new();
    for id in read_expected(&expected_path) {
        match report.results.get(&id) {
            Some(true) => {}
            Some(false) => regressions.push(format!("{id}: listed as passing, but did not pass")),
            None => {
                let relevant =
                    id.starts_with(OWN_PREFIX) || (config.corpus_is_default && corpus_available);
                if relevant && config.filter.is_empty() {
                    regressions.push(format!(
                        "{id}: listed as passing, but there is no such eval (corpus changed? regenerate with MERIDIAN_PROMQL_UPDATE_EXPECTED=1)"
                    ));
                }
            }
        }
    }
    assert!(
        regressions.is_empty(),
        "{} regressions against {EXPECTED_PASS_FILE}:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}
