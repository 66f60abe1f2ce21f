use std::process::ExitCode;

use api::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    api::telemetry::init(cli.global.log_format);
    match api::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, no backtrace: the cause chain says what to fix.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
