use std::process::ExitCode;

use api::cli::Cli;
use clap::Parser;

/// mimalloc rather than the system allocator: a coverage answer makes a few dozen small
/// allocations, and a CPU profile under load showed glibc's malloc and free at about 6% of the
/// server's time (tests/bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
