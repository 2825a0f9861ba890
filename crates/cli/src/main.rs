//! The `silt` binary: parse flags, run, map the error to one line and an exit code.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod failure;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    failure::init_tracing(matches!(cli.command, args::Command::Serve { .. }));
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
