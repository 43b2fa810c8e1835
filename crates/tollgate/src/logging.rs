//! Log output: human-readable lines or JSON, on stderr.

use std::fmt;
use std::io::IsTerminal;

use tollgate_config::LogFormat;
use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

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
        LogFormat::Human => {
            builder.with_target(false).with_ansi(colours()).fmt_fields(Escaped).init()
        }
    }
    LogGuard { _worker: guard }
}

/// Colours only for a person at a terminal: a log file or a collector gets plain text.
/// `NO_COLOR` (any non-empty value) turns them off everywhere.
fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Human-format fields with control characters escaped: a model name, path or header a
/// client chose cannot start a line of its own and pass for one the gateway wrote. (JSON
/// lines escape them already.)
#[derive(Debug, Clone, Copy)]
pub struct Escaped;

impl<'a> MakeVisitor<Writer<'a>> for Escaped {
    type Visitor = EscapedFields<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> Self::Visitor {
        EscapedFields { writer, first: true, result: Ok(()) }
    }
}

/// Writes one event's fields as `message name=value ...`.
pub struct EscapedFields<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapedFields<'_> {
    fn put(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if !self.first {
            self.result = self.writer.write_char(' ');
        }
        self.first = false;
        if name != "message" && self.result.is_ok() {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = write!(self.writer, "{name}=");
        }
        for c in value.chars() {
            if self.result.is_err() {
                return;
            }
            self.result = if c.is_control() {
                write!(self.writer, "{}", c.escape_default())
            } else {
                self.writer.write_char(c)
            };
        }
    }
}

impl Visit for EscapedFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, &format!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapedFields<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedFields<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_newline_in_a_field_cannot_start_a_forged_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(Escaped)
            .finish();
        let model = "gpt-4o\n2026-12-01T00:00:00Z  INFO request status=200 key=admin\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(model = %model, status = 404, "request");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("request model=gpt-4o\\n2026-12-01"), "{text}");
        assert!(text.contains("\\u{1b}[2J status=404"), "{text}");
    }
}
