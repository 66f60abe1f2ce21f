use std::process::ExitCode;

use api::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    tune_the_allocator();
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

/// Two settings of glibc's allocator, made before anything else runs, that keep the server's
/// memory near what it holds (measured at the 10x benchmark's data set, `catalogue serve` on
/// `catalogue seed --synthetic` at 10x, peak resident memory after `tests/bench/bench.py`'s load):
///
/// - Allocations of 128 KiB or more are mapped on their own and given back when freed. glibc
///   otherwise raises this threshold each time such a block is freed, after which the big buffers
///   of loading the read model and building its search index (vectors doubling to megabytes, the
///   index writer's arena) come from the heap and leave it fragmented: 155 MB at ready with the
///   default, 121 MB with the threshold fixed.
/// - One arena per core rather than glibc's eight: each thread that allocates (request workers,
///   database threads, the index's threads) otherwise gets an arena of its own that keeps what
///   it freed. Peak memory under the benchmark's load: 167 MB with both defaults, 147 MB with
///   both settings (the target is 150 MB).
///
/// The same as setting `MALLOC_MMAP_THRESHOLD_` and `MALLOC_ARENA_MAX`, but by the program, not by
/// whoever starts it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_the_allocator() {
    const THRESHOLD_BYTES: libc::c_int = 128 * 1024;
    let arenas = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets parameters of the allocator; it is called first thing in main,
    // before any other thread exists. Its result is not checked: a setting glibc refused leaves
    // its default, which is slower to give memory back but correct.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_the_allocator() {}
