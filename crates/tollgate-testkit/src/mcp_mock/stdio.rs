//! The stdio transport: newline-delimited JSON-RPC on the process's stdin and stdout
//! (`tollgate-mock --mcp-stdio`), and how tests find that binary.

use std::{io, path::PathBuf};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
    task::JoinSet,
};

use super::{
    call::Caller,
    server::Server,
    session::{Accepted, Answer, Session, parse_error},
};

/// The exit status of `tollgate-mock --mcp-stdio` after the `crash` tool.
pub const CRASH_EXIT_CODE: i32 = 3;

/// Names the `tollgate-mock` binary for [`mock_binary`], overriding the search.
pub const MOCK_BIN_ENV: &str = "TOLLGATE_MOCK_BIN";

/// Why [`serve_stdio`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioExit {
    /// The input ended; requests still running were abandoned.
    InputClosed,
    /// The `crash` tool ran; the caller exits with [`CRASH_EXIT_CODE`] without answering it.
    Crashed,
}

/// Serves one client on `input` and `output` until the input ends or `crash` is called.
/// Requests run concurrently, so a `notifications/cancelled` line reaches a running `slow`.
/// `only` limits the tools offered, as [`super::McpOptions::only`].
pub async fn serve_stdio<R, W>(
    name: &str,
    only: Option<&[String]>,
    input: R,
    output: W,
) -> io::Result<StdioExit>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let server =
        Server::new(name, only).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let session = Session::new(server.into());
    let (out, messages) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(write_lines(messages, output));
    let mut running = JoinSet::new();
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        while running.try_join_next().is_some() {}
        if line.trim().is_empty() {
            continue;
        }
        let message = match serde_json::from_str::<Value>(&line) {
            Ok(message) => message,
            Err(error) => {
                let _ = out.send(parse_error(&error));
                continue;
            }
        };
        match session.accept(message) {
            Accepted::Noted => {}
            Accepted::Invalid(error) => {
                let _ = out.send(error);
            }
            // Inline, so no later line (or the end of input) can overtake the crash.
            Accepted::Request(work) if work.calls_tool("crash") => {
                match work.run(&Caller::Stdio, &out).await {
                    Answer::Crash(_) => return Ok(StdioExit::Crashed),
                    Answer::Reply(reply) => {
                        let _ = out.send(reply);
                    }
                    Answer::Cancelled => {}
                }
            }
            Accepted::Request(work) => {
                let out = out.clone();
                running.spawn(async move {
                    // Only `crash` crashes, and it runs above.
                    if let Answer::Reply(reply) = work.run(&Caller::Stdio, &out).await {
                        let _ = out.send(reply);
                    }
                });
            }
        }
    }
    running.shutdown().await;
    drop(out);
    writer.await.map_err(io::Error::other)??;
    Ok(StdioExit::InputClosed)
}

/// Writes each message as one line, flushed at once: the client waits on it.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut messages: mpsc::UnboundedReceiver<Value>,
    mut output: W,
) -> io::Result<()> {
    while let Some(message) = messages.recv().await {
        let mut line = message.to_string();
        line.push('\n');
        output.write_all(line.as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}

/// The `tollgate-mock` binary, for tests that start a stdio MCP server as a child process:
/// [`MOCK_BIN_ENV`] when set, else `tollgate-mock` in the cargo target directory the
/// running test was built in. Tests of this crate can use `env!("CARGO_BIN_EXE_tollgate-mock")`
/// instead; other crates' tests need the binary built first (a workspace test run builds it).
pub fn mock_binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(MOCK_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let file = format!("tollgate-mock{}", std::env::consts::EXE_SUFFIX);
    // Test binaries live in `target/<profile>/deps`, binaries one level up.
    let found = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&file))
        .find(|candidate| candidate.is_file());
    found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "tollgate-mock is not built next to {}: run `cargo build -p tollgate-testkit \
                 --bin tollgate-mock` or set {MOCK_BIN_ENV}",
                exe.display()
            ),
        )
    })
}
