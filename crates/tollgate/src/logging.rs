//! Log output: human-readable lines or JSON, on stderr.

use std::io::IsTerminal;

use tollgate_config::LogFormat;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Bytes of formatted lines the log thread gathers before writing them in one system call.
const WRITE_BUFFER: usize = 64 * 1024;

/// Lines that may wait for the log thread. The queue's slots are allocated up front, so this
/// is kept well below the library's default (128k lines, ~4 MB resident at idle).
const QUEUED_LINES: usize = 8192;

/// Keeps the log thread running; dropping it writes out every line logged before.
#[must_use = "logs stop being written when the guard is dropped"]
pub struct LogGuard {
    _worker: WorkerGuard,
}

/// Installs the global subscriber. `RUST_LOG` (or `TOLLGATE_LOG`) sets levels.
///
/// Lines are formatted where they are logged and written by a thread of their own, which
/// writes whatever has queued up in one go and flushes whenever the queue is empty: under
/// load one write to stderr carries many lines instead of one each. Nothing is dropped; a
/// full queue makes the logging code wait.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = std::env::var("TOLLGATE_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,hyper=warn,reqwest=warn,h2=warn"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("tollgate-log")
        .finish(std::io::BufWriter::with_capacity(WRITE_BUFFER, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Human => builder.with_target(false).with_ansi(colours()).init(),
    }
    LogGuard { _worker: guard }
}

/// Colours only for a person at a terminal: a log file or a collector gets plain text.
/// `NO_COLOR` (any non-empty value) turns them off everywhere.
fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
