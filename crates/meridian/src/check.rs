//! `meridian check config` and `meridian check metrics`, promtool's checks.

use crate::cli::MetricsFormat;
use model::exposition::{Entry, Format, Parser};
use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Loads each configuration file; exit code 1 when any fails.
pub fn config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match config::Config::load(f) {
            Ok(_) => println!(
                "  SUCCESS: {} is valid prometheus config file syntax",
                f.display()
            ),
            Err(e) => {
                failed = true;
                eprintln!("  FAILED: {e}");
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Parses standard input strictly; exit code 1 with `line:column: reason` when invalid.
pub fn metrics(format: Option<MetricsFormat>) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("error reading standard input: {e}");
        return ExitCode::FAILURE;
    }
    let (format, detected) = match format {
        Some(MetricsFormat::Text) => (Format::Text, false),
        Some(MetricsFormat::Openmetrics) => (Format::OpenMetrics, false),
        None => (Format::detect(&input), true),
    };
    let name = match format {
        Format::Text => "text format 0.0.4",
        Format::OpenMetrics => "OpenMetrics 1.0",
    };
    match check_payload(&input, format) {
        Ok((families, samples)) => {
            println!("valid {name}: {families} metric families, {samples} samples");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            if detected {
                eprintln!("(read as {name}; choose the format with --format text|openmetrics)");
            }
            ExitCode::FAILURE
        }
    }
}

fn check_payload(
    input: &[u8],
    format: Format,
) -> Result<(usize, usize), model::exposition::ParseError> {
    let mut p = Parser::new(input, format)?.strict();
    let mut families = HashSet::new();
    let mut samples = 0;
    while let Some(entry) = p.next_entry() {
        match entry? {
            Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                families.insert(name.to_string());
            }
            Entry::Sample(_) => samples += 1,
        }
    }
    Ok((families.len(), samples))
}

/// `meridian check rules FILE...`: exit 0 when every file is valid; otherwise 1, with each
/// error's file, line and field, as `promtool check rules` reports.
pub fn rules(files: &[PathBuf]) -> ExitCode {
    let report = rules::check_files(files);
    print!("{}", report.output);
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
