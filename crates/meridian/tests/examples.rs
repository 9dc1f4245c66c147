//! Every configuration in `examples/` loads: the Prometheus configurations through
//! `config::Config::load` and `meridian check config`, the web configurations (`*web*.yml`,
//! for `--web.config.file`) through `config::WebConfig::load`. Each file opens with a comment
//! naming its role and the command line that runs it, and the files that command line names
//! exist. No network, nothing started but `meridian check config`.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The `*.yml` files of `examples/`, in name order.
fn example_files() -> Vec<PathBuf> {
    let dir = examples_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Web configuration files are named `*web*.yml` (`--web.config.file`).
fn is_web_config(path: &Path) -> bool {
    file_name(path).contains("web")
}

/// The leading comment block of a file.
fn header(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .collect()
}

/// `examples/...yml` paths a header mentions (in its command lines).
fn mentioned_examples(header: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for line in header {
        let mut rest = *line;
        while let Some(start) = rest.find("examples/") {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
                .unwrap_or(tail.len());
            let name = tail[..end].trim_end_matches('.');
            if name.ends_with(".yml") {
                found.push(name.to_owned());
            }
            rest = &tail[end..];
        }
    }
    found
}

#[test]
fn every_example_loads() {
    let files = example_files();
    assert!(
        files.len() >= 10,
        "expected the topology examples in {}, found {files:?}",
        examples_dir().display()
    );
    assert!(
        files.iter().any(|f| file_name(f) == "prometheus.yml"),
        "examples/prometheus.yml is gone"
    );
    let repo = examples_dir().join("..");
    let mut failures = Vec::new();
    for path in &files {
        let name = file_name(path);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{name}: cannot read: {e}"));
                continue;
            }
        };
        let header = header(&text);
        if header.is_empty() {
            failures.push(format!("{name}: does not start with a comment"));
        } else if !header.iter().any(|line| line.contains("meridian")) {
            failures.push(format!(
                "{name}: its opening comment names no `meridian` command line"
            ));
        }
        for mentioned in mentioned_examples(&header) {
            if !repo.join(&mentioned).is_file() {
                failures.push(format!(
                    "{name}: its opening comment names {mentioned}, which does not exist"
                ));
            }
        }
        if is_web_config(path) {
            if let Err(e) = config::WebConfig::load(path) {
                failures.push(format!("{name}: WebConfig::load: {e}"));
            }
        } else if let Err(e) = config::Config::load(path) {
            failures.push(format!("{name}: Config::load: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "examples that fail:\n{}",
        failures.join("\n")
    );
}

#[test]
fn meridian_check_config_accepts_every_prometheus_example() {
    let mut failures = Vec::new();
    for path in example_files().iter().filter(|p| !is_web_config(p)) {
        let name = file_name(path);
        match Command::new(BIN)
            .args(["check", "config"])
            .arg(path)
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => failures.push(format!(
                "{name}: meridian check config exited with {}:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => failures.push(format!("{name}: cannot run {BIN}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "meridian check config rejects:\n{}",
        failures.join("\n")
    );
}

#[test]
fn header_paths_are_found() {
    let header = [
        "# Run: meridian --config.file=examples/a-b.yml --web.config.file=examples/web.yml.",
        "# and examples/x.txt",
    ];
    assert_eq!(
        mentioned_examples(&header),
        vec!["examples/a-b.yml".to_owned(), "examples/web.yml".to_owned()]
    );
}
