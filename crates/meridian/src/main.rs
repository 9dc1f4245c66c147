//! The `meridian` binary: parses the command line and hands off to a subcommand.
//!
//! `server` is the default, so `meridian --config.file=x.yml` behaves like
//! `prometheus --config.file=x.yml`. Flag names are Prometheus' own.

mod agent;
mod check;
mod cli;
mod demo;
mod logging;
mod server;
mod tsdb_metrics;

use mimalloc::MiMalloc;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse_with_default_subcommand(std::env::args_os());
    match args.command {
        cli::Command::Server(opts) => {
            logging::init(&opts.log);
            server::run(*opts)
        }
        cli::Command::Check(cli::CheckCommand::Config { files }) => check::config(&files),
        cli::Command::Check(cli::CheckCommand::Rules { files }) => check::rules(&files),
        cli::Command::Check(cli::CheckCommand::Metrics { format }) => check::metrics(format),
        cli::Command::Demo(opts) => demo::run(opts),
    }
}
