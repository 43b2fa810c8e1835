//! Log output: human-readable lines or JSON, on stderr.

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
        LogFormat::Human => builder.with_target(false).init(),
    }
}
