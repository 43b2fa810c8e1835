//! The `tollgate` binary: command line and wiring. Everything else lives in the library crates.

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: a request allocates and frees many small
/// buffers across worker threads, which glibc's malloc serves slowly and with a resident
/// size that keeps growing under sustained load (see bench/results).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            commands::report_error(&anyhow::anyhow!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            commands::report_error(&e);
            ExitCode::FAILURE
        }
    }
}
