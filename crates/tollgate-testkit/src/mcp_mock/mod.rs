//! Small but real MCP servers (protocol revision 2025-06-18, JSON-RPC 2.0) for tests of the
//! MCP gateway, which is their client. One server behind three transports:
//!
//! | transport | how | routes |
//! |---|---|---|
//! | streamable HTTP | [`MockMcp::start_http`], [`MockMcp::url`]; `tollgate-mock --mcp-http` | `POST /mcp` (JSON, or SSE with [`McpOptions::sse_responses`] and for `slow` with a progress token), `DELETE /mcp` ends the session, `GET /mcp` → 405 |
//! | HTTP+SSE (2024-11-05) | the same server, [`MockMcp::sse_url`] | `GET /sse` (first event `endpoint`: `/messages?sessionId=…`), `POST /messages?sessionId=…` → 202, answer as an SSE `message` event |
//! | stdio | `tollgate-mock --mcp-stdio` ([`mock_binary`]), [`serve_stdio`] | one JSON-RPC message per line on stdin/stdout; `mock-mcp ready …` on stderr at start |
//!
//! | method | answer |
//! |---|---|
//! | `initialize` | the client's `protocolVersion` when it is one of [`PROTOCOL_VERSIONS`], else the newest; `capabilities` `{tools: {listChanged: false}, resources: {}, prompts: {}}`; `serverInfo` `{name, version}` |
//! | `ping` | `{}` |
//! | `tools/list`, `tools/call` | the tools below (all, or [`McpOptions::only`]); an unknown or hidden tool is error -32602 |
//! | `resources/list`, `resources/read` | one resource, [`GREETING_URI`] (`text/plain`): `hello from <name>` |
//! | `prompts/list`, `prompts/get` | `greet` with argument `name`: one user message `Say hello to <name>` |
//! | anything else | error -32601 |
//! | `notifications/initialized`, `notifications/cancelled` | accepted; a cancellation stops the named request, which then gets no response |
//!
//! | tool | arguments | result |
//! |---|---|---|
//! | `echo` | `text: string` | the text |
//! | `add` | `a, b: number` | the sum, as text |
//! | `fail` | — | a result with `isError: true` |
//! | `slow` | `seconds: number` (0–300) | `waited <seconds> s`, after `notifications/progress` every 100 ms (`progress`/`total` in steps) when `_meta.progressToken` was given; no answer once cancelled |
//! | `crash` | — | stdio: the process exits with status [`CRASH_EXIT_CODE`] without answering; HTTP: error -32603 |
//! | `whoami` | — | HTTP: the request's headers as a JSON object (lowercase names); stdio: the value of `MOCK_MCP_SECRET` (`isError` when unset) |
//!
//! Streamable HTTP follows the specification's session rules: the `initialize` answer carries
//! `Mcp-Session-Id`; any other message without it gets 400, with an unknown (ended,
//! [expired](MockMcp::expire_sessions)) one 404; notifications and responses get 202. A POST
//! must accept both `application/json` and `text/event-stream` (else 406), and an
//! `MCP-Protocol-Version` header, when sent, must name a supported version (else 400). A
//! cancelled request answered as JSON ends with 204 and no body. Every HTTP route first
//! checks [`MockMcp::set_http_failure`] and then [`McpOptions::bearer_token`] (401). Every
//! message received over HTTP is recorded ([`MockMcp::calls`]), refused ones included.
//!
//! ```no_run
//! # async fn demo() {
//! use tollgate_testkit::{McpOptions, MockMcp};
//! let mcp = MockMcp::start_http_with(McpOptions {
//!     bearer_token: Some("s3cret".to_owned()),
//!     ..McpOptions::named("docs")
//! })
//! .await
//! .expect("bind");
//! // configure the gateway with mcp.url() and the token, call a tool through it, then:
//! let call = mcp.calls().into_iter().find(|c| c.tool() == Some("echo")).expect("called");
//! assert_eq!(call.header("authorization"), Some("Bearer s3cret"));
//! # }
//! ```

mod call;
mod http;
mod legacy;
mod server;
mod session;
mod state;
mod stdio;
mod tools;

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    routing::{get, post},
    serve::ListenerExt,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use server::{DEFAULT_NAME, GREETING_URI, PROTOCOL_VERSIONS};
pub use state::{McpCall, McpTransport};
pub use stdio::{CRASH_EXIT_CODE, MOCK_BIN_ENV, StdioExit, mock_binary, serve_stdio};
pub use tools::SECRET_ENV;

use server::Server;
use state::State;

/// Every tool a mock server can offer, in `tools/list` order.
pub const TOOLS: [&str; 6] = ["echo", "add", "fail", "slow", "crash", "whoami"];

/// How to start a [`MockMcp`].
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// `serverInfo.name`, also in the resource's text.
    pub name: String,
    /// Offer only these tools (names from [`TOOLS`]); `None` offers all.
    pub only: Option<Vec<String>>,
    /// Answer every `POST /mcp` request as an SSE stream instead of one JSON body.
    pub sse_responses: bool,
    /// Wait this long before every answer (timeout tests); [`MockMcp::set_delay`] changes it.
    pub delay: Duration,
    /// Require `Authorization: Bearer <token>` on every route; 401 without it.
    pub bearer_token: Option<String>,
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: DEFAULT_NAME.to_owned(),
            only: None,
            sse_responses: false,
            delay: Duration::ZERO,
            bearer_token: None,
        }
    }
}

impl McpOptions {
    /// The defaults with `serverInfo.name` set to `name`.
    pub fn named(name: &str) -> Self {
        Self { name: name.to_owned(), ..Self::default() }
    }

    /// Offers only `tools`.
    #[must_use]
    pub fn only(mut self, tools: &[&str]) -> Self {
        self.only = Some(tools.iter().map(|&t| t.to_owned()).collect());
        self
    }
}

/// A running mock MCP server on HTTP, both transports on one port. Dropping it stops it.
pub struct MockMcp {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MockMcp {
    /// Starts on `127.0.0.1` and a free port with the default options.
    ///
    /// # Panics
    /// When binding a loopback port fails, which means the test machine is broken.
    #[allow(clippy::expect_used)] // a test helper: failing loudly is the useful outcome
    pub async fn start_http() -> Self {
        Self::start_http_with(McpOptions::default())
            .await
            .expect("mock MCP server: bind 127.0.0.1:0")
    }

    /// Starts with `options`; fails when the address cannot be bound or [`McpOptions::only`]
    /// names an unknown tool.
    pub async fn start_http_with(options: McpOptions) -> io::Result<Self> {
        let server = Server::new(&options.name, options.only.as_deref())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(options.addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let state = Arc::new(State::new(
            server,
            options.sse_responses,
            options.bearer_token,
            options.delay,
            stopped.clone(),
        ));
        let listener = listener.tap_io(|tcp| {
            // Progress events are small and must leave at once.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "mock MCP server: cannot set TCP_NODELAY");
            }
        });
        let mut stopped = stopped;
        let server =
            axum::serve(listener, router(Arc::clone(&state))).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
        let task = tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "mock MCP server: server failed");
            }
        });
        Ok(Self { addr, state, shutdown, task: Mutex::new(Some(task)) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, with an unspecified host shown as loopback.
    pub fn origin(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}")
    }

    /// `http://HOST:PORT/mcp`: the streamable HTTP endpoint.
    pub fn url(&self) -> String {
        format!("{}/mcp", self.origin())
    }

    /// `http://HOST:PORT/sse`: the HTTP+SSE transport's stream.
    pub fn sse_url(&self) -> String {
        format!("{}/sse", self.origin())
    }

    /// `serverInfo.name`.
    pub fn name(&self) -> &str {
        self.state.server.name()
    }

    /// Every JSON-RPC message received so far, oldest first.
    pub fn calls(&self) -> Vec<McpCall> {
        self.state.calls()
    }

    /// The received messages whose method is `method`.
    pub fn calls_of(&self, method: &str) -> Vec<McpCall> {
        self.calls().into_iter().filter(|call| call.method.as_deref() == Some(method)).collect()
    }

    /// Forgets the recorded messages.
    pub fn clear_calls(&self) {
        self.state.clear_calls();
    }

    /// Waits `delay` before every answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.state.set_delay(delay);
    }

    /// `Some(status)`: every route answers `status` (e.g. 500) with a text body until
    /// `None` restores normal service. Messages are still recorded.
    pub fn set_http_failure(&self, status: Option<u16>) {
        self.state.set_failure(status);
    }

    /// The streamable-HTTP sessions open now (ids, sorted).
    pub fn sessions(&self) -> Vec<String> {
        self.state.session_ids()
    }

    /// Forgets every streamable-HTTP session, as a restarted server would: their next
    /// request gets 404 and the client must initialize again.
    pub fn expire_sessions(&self) {
        self.state.expire_sessions();
    }

    /// How many `GET /sse` streams are open.
    pub fn sse_streams(&self) -> usize {
        self.state.legacy_count()
    }

    /// Stops the server: open streams end, running requests are dropped, new connections
    /// are refused. Waits until the server has stopped.
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for MockMcp {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for MockMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockMcp")
            .field("addr", &self.addr)
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/mcp", post(http::post).delete(http::delete).get(http::get))
        .route("/sse", get(legacy::open))
        .route("/messages", post(legacy::post))
        .with_state(state)
}
