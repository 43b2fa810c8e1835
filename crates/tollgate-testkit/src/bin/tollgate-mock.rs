//! `tollgate-mock`: the mock OpenAI-compatible upstream as a process, for benchmarks and
//! tests that are not written in Rust. Drive it through the `/__mock/*` endpoints. With
//! `--github`, the GitHub stand-in instead: the device flow, the Copilot token exchange and
//! the Copilot API (`POST /__mock/approve` approves the latest device flow; `/__mock/models`,
//! `/__mock/enqueue`, `/__mock/error` and `/__mock/requests` program and observe the API).

use std::{
    io::Write,
    net::{IpAddr, SocketAddr},
};

use anyhow::Context;
use clap::{Parser, builder::PossibleValuesParser};
use tollgate_testkit::MockGitHub;
use tollgate_testkit::mcp_mock::{
    CRASH_EXIT_CODE, DEFAULT_NAME, McpOptions, MockMcp, StdioExit, TOOLS, serve_stdio,
};
use tollgate_testkit::openai_mock::{
    DEFAULT_RECORD_LIMIT, DEFAULT_TEXT, MockConfig, MockOpenAi, ReplySpec,
};

/// Serve a mock OpenAI-compatible API until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "tollgate-mock", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one (read it from the READY line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Default reply: milliseconds before the response headers (with --mcp-http: before
    /// every answer).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Default reply: milliseconds between SSE chunks.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Default reply: number of content deltas (default: one per word).
    #[arg(long)]
    chunks: Option<usize>,
    /// Default reply: the assistant's text.
    #[arg(long, default_value = DEFAULT_TEXT)]
    text: String,
    /// Model ids listed by /v1/models (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "gpt-4o-mini,gpt-4o")]
    models: Vec<String>,
    /// Recent requests kept for /__mock/requests (with --github: Copilot API calls); 0 keeps
    /// none (benchmarks).
    #[arg(long, default_value_t = DEFAULT_RECORD_LIMIT)]
    record_limit: usize,
    /// Serve the GitHub stand-in (device flow, token exchange, Copilot API) instead.
    #[arg(long)]
    github: bool,
    /// With --github: the URL clients reach it by (`http://github-mock:9000`), when that is
    /// not the address it listens on; the Copilot API base it hands out is this plus
    /// `/copilot`.
    #[arg(long, requires = "github")]
    public_url: Option<String>,
    /// Serve a mock MCP server on stdin/stdout instead; exits when stdin closes (status 3
    /// after the `crash` tool).
    #[arg(long, conflicts_with_all = ["github", "mcp_http"])]
    mcp_stdio: bool,
    /// Serve a mock MCP server over HTTP instead: `/mcp` (streamable HTTP) and `/sse`.
    #[arg(long, conflicts_with = "github")]
    mcp_http: bool,
    /// MCP: the server's name (`serverInfo.name`).
    #[arg(long, default_value = DEFAULT_NAME)]
    name: String,
    /// MCP: offer only these tools (comma-separated, e.g. `echo,add`).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(TOOLS))]
    only: Option<Vec<String>>,
    /// With --mcp-http: require `Authorization: Bearer <token>`.
    #[arg(long, requires = "mcp_http", conflicts_with = "mcp_stdio")]
    bearer_token: Option<String>,
    /// With --mcp-http: answer every request as an SSE stream.
    #[arg(long, requires = "mcp_http", conflicts_with = "mcp_stdio")]
    sse_responses: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mcp_stdio {
        return mcp_stdio(&args).await;
    }
    if args.mcp_http {
        let options = McpOptions {
            addr: SocketAddr::new(args.host, args.port),
            name: args.name,
            only: args.only,
            sse_responses: args.sse_responses,
            delay: std::time::Duration::from_millis(args.delay_ms),
            bearer_token: args.bearer_token,
        };
        let addr = options.addr;
        let mock = MockMcp::start_http_with(options)
            .await
            .with_context(|| format!("cannot start the mock MCP server on {addr}"))?;
        announce(mock.addr())?;
        wait_for_signal().await?;
        mock.stop().await;
        return Ok(());
    }
    if args.github {
        let addr = SocketAddr::new(args.host, args.port);
        let mock = MockGitHub::start_with_options(addr, args.public_url, args.record_limit)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        announce(mock.addr())?;
        wait_for_signal().await?;
        mock.shutdown().await;
        return Ok(());
    }
    let mut reply = ReplySpec::text(args.text)
        .delay_ms(args.delay_ms)
        .chunk_interval_ms(args.chunk_interval_ms);
    reply.chunks = args.chunks;
    let config = MockConfig {
        addr: SocketAddr::new(args.host, args.port),
        default_reply: reply,
        models: args.models,
        record_limit: args.record_limit,
    };
    let mock = MockOpenAi::start_with(config)
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    announce(mock.addr())?;
    wait_for_signal().await?;
    mock.shutdown().await;
    Ok(())
}

/// Serves MCP on stdio; stderr carries the log, and the first line says it is ready.
async fn mcp_stdio(args: &Args) -> anyhow::Result<()> {
    let tools = args.only.as_ref().map_or_else(|| "all".to_owned(), |only| only.join(","));
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "mock-mcp ready: name={} tools={tools}", args.name)?;
    drop(stderr);
    let exit =
        serve_stdio(&args.name, args.only.as_deref(), tokio::io::stdin(), tokio::io::stdout())
            .await
            .context("mock MCP server on stdio")?;
    if exit == StdioExit::Crashed {
        let _ = writeln!(std::io::stderr(), "mock-mcp: crash tool called, exiting");
        // At once: the blocked stdin reader would hold up an orderly runtime shutdown.
        std::process::exit(CRASH_EXIT_CODE);
    }
    Ok(())
}

/// The READY line is this program's interface: scripts wait for it and read the URL.
#[allow(clippy::print_stdout)] // stdout is the protocol with the parent process here
fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY http://{addr}")?;
    stdout.flush()?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("cannot listen for Ctrl-C")?;
    Ok(())
}
