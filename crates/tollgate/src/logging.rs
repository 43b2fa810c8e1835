//! Log output: human-readable lines or JSON, on stderr.

use std::io::IsTerminal;

use tollgate_config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` (or `TOLLGATE_LOG`) sets levels.
pub fn init(format: LogFormat) {
    let filter = std::env::var("TOLLGATE_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,hyper=warn,reqwest=warn,h2=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Human => builder.with_target(false).with_ansi(colours()).init(),
    }
}

/// Colours only for a person at a terminal: a log file or a collector gets plain text.
/// `NO_COLOR` (any non-empty value) turns them off everywhere.
fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
