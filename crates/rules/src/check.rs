//! `meridian check rules FILE...`: validates rule files and reports like `promtool check
//! rules` (`Checking FILE`, `  SUCCESS: N rules found` or `  FAILED:` and the errors).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::file::load_file;

/// What checking files found: the text to print, and whether every file passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub output: String,
    pub ok: bool,
    /// Rules found per file (`None` for a file that failed).
    pub rules: Vec<(PathBuf, Option<usize>)>,
}

/// Checks each file; the CLI prints `output` (to stderr when not `ok`) and exits 1 when
/// not `ok`.
pub fn check_files(paths: &[PathBuf]) -> CheckReport {
    let mut output = String::new();
    let mut ok = true;
    let mut rules = Vec::new();
    for path in paths {
        let _ = writeln!(output, "Checking {}", path.display());
        match load_file(path) {
            Ok(f) => {
                let n: usize = f.groups.iter().map(|g| g.rules.len()).sum();
                let duplicates = duplicate_rules(&f);
                if duplicates.is_empty() {
                    let _ = writeln!(output, "  SUCCESS: {n} rules found");
                } else {
                    // A lint, not a failure (promtool's `--lint=duplicate-rules`).
                    let _ = writeln!(
                        output,
                        "  FAILED:\nlint error {} duplicate rule(s) found.",
                        duplicates.len()
                    );
                    for (name, labels) in duplicates {
                        let _ = writeln!(output, "Metric: {name}\nLabel(s):");
                        for (k, v) in labels {
                            let _ = writeln!(output, "\t{k}: {v}");
                        }
                    }
                    let _ = writeln!(
                        output,
                        "Might cause inconsistency while recording expressions"
                    );
                }
                rules.push((path.clone(), Some(n)));
            }
            Err(errors) => {
                ok = false;
                let _ = writeln!(output, "  FAILED:");
                for e in errors {
                    let _ = writeln!(output, "{e}");
                }
                rules.push((path.clone(), None));
            }
        }
        output.push('\n');
    }
    CheckReport { output, ok, rules }
}

/// Rules of a file sharing their name and labels (promtool's duplicate-rules lint).
fn duplicate_rules(
    f: &crate::file::RuleFile,
) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
    let mut seen = std::collections::HashMap::new();
    for g in &f.groups {
        for r in &g.rules {
            *seen
                .entry((r.name().to_owned(), r.labels.clone()))
                .or_insert(0usize) += 1;
        }
    }
    let mut out: Vec<_> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    out.sort();
    out
}
