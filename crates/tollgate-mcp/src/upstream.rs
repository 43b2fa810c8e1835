//! One upstream MCP server: connected on first use, initialized once per connection, and
//! connected again (a child process restarted) when the connection is gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tollgate_config::McpServer;

use crate::link::{Dispatcher, token_key};
use crate::rpc::{self, CANCELLED, CONNECTION_CLOSED, REQUEST_TIMEOUT, RpcError};
use crate::transport::Transport;

/// Protocol revisions tollgate speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The revision tollgate asks upstream servers for.
const ASKED_VERSION: &str = "2025-06-18";
/// Most pages of a list read from one server.
const MAX_PAGES: usize = 100;

/// Where a request's progress goes: the caller's own progress token, and the channel that
/// carries `notifications/progress` messages (already carrying that token) back to it.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The caller's token.
    pub token: Value,
    /// Where the notifications go.
    pub sink: mpsc::UnboundedSender<Value>,
}

/// What an admin sees of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    /// Connected and initialized now.
    pub connected: bool,
    /// Times a lost connection was opened again (a stdio server restarted).
    pub restarts: u64,
    /// The last failure, if the server has not answered since.
    pub last_error: Option<String>,
    /// The server's name and version as it gave them.
    pub server_info: Option<Value>,
}

/// A server and its connection.
#[derive(Debug)]
pub struct Upstream {
    config: McpServer,
    client: reqwest::Client,
    state: tokio::sync::Mutex<Option<Arc<Session>>>,
    restarts: AtomicU64,
    last_error: Mutex<Option<String>>,
    server_info: Mutex<Option<Value>>,
    closing: AtomicBool,
    next_token: AtomicU64,
}

#[derive(Debug)]
struct Session {
    transport: Transport,
    dispatcher: Arc<Dispatcher>,
    next_id: AtomicU64,
    capabilities: std::sync::OnceLock<Value>,
    tools: Mutex<Option<Arc<Vec<Value>>>>,
}

/// Why a request failed: before anything reached the server, or after.
enum Failure {
    NotSent(RpcError),
    Sent(RpcError),
}

impl Upstream {
    /// A server, not connected yet.
    pub fn new(config: McpServer, client: reqwest::Client) -> Self {
        Self {
            config,
            client,
            state: tokio::sync::Mutex::new(None),
            restarts: AtomicU64::new(0),
            last_error: Mutex::new(None),
            server_info: Mutex::new(None),
            closing: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &McpServer {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// What an admin sees of it.
    pub fn status(&self) -> ServerStatus {
        let connected = self
            .state
            .try_lock()
            .map(|s| s.as_ref().is_some_and(|s| !s.dispatcher.is_closed()))
            .unwrap_or(true);
        ServerStatus {
            connected,
            restarts: self.restarts.load(Ordering::Relaxed),
            last_error: lock(&self.last_error).clone(),
            server_info: lock(&self.server_info).clone(),
        }
    }

    /// Sends a request and waits (at most the server's `timeout`) for its answer. A request
    /// that could not be sent because the connection had just gone (a child that exited, an
    /// HTTP session the server ended, a refused connection) is sent once more on a new
    /// connection; one the server may have received is never repeated.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, RpcError> {
        let mut tried_again = false;
        loop {
            let session = self.session().await?;
            match self.call(&session, method, params.clone(), progress.clone()).await {
                Ok(v) => {
                    *lock(&self.last_error) = None;
                    return Ok(v);
                }
                Err(Failure::NotSent(e)) if !tried_again => {
                    tried_again = true;
                    tracing::debug!(
                        mcp_server = self.name(),
                        "sending again on a new connection: {e}"
                    );
                }
                Err(Failure::NotSent(e) | Failure::Sent(e)) => {
                    if e.code == CONNECTION_CLOSED || e.code == REQUEST_TIMEOUT {
                        *lock(&self.last_error) = Some(e.message.clone());
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Every tool the server lists (all pages), as it describes them; read once per
    /// connection and again when the server says they changed.
    pub async fn tools(&self) -> Result<Arc<Vec<Value>>, RpcError> {
        let session = self.session().await?;
        let changed = session.dispatcher.tools_changed.swap(false, Ordering::AcqRel);
        if !changed && let Some(tools) = lock(&session.tools).clone() {
            return Ok(tools);
        }
        let tools = Arc::new(self.list("tools/list", "tools").await?);
        *lock(&session.tools) = Some(tools.clone());
        Ok(tools)
    }

    /// Whether the server offers `capability` (`tools`, `resources`, `prompts`).
    pub async fn offers(&self, capability: &str) -> Result<bool, RpcError> {
        let session = self.session().await?;
        Ok(session.capabilities.get().and_then(|c| c.get(capability)).is_some_and(|c| !c.is_null()))
    }

    /// Every item of a paginated list (`resources/list` → `resources`, ...).
    pub async fn list(&self, method: &str, field: &str) -> Result<Vec<Value>, RpcError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request(method, params, None).await?;
            if let Some(Value::Array(more)) = page.get(field) {
                items.extend(more.iter().cloned());
            }
            match page.get("nextCursor") {
                Some(c) if !c.is_null() && Some(c) != cursor.as_ref() => cursor = Some(c.clone()),
                _ => return Ok(items),
            }
        }
        Ok(items)
    }

    /// Closes the connection for good (a child process is stopped).
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::Release);
        if let Some(session) = self.state.lock().await.take() {
            session.transport.close().await;
            session.dispatcher.close("tollgate is stopping");
        }
    }

    async fn session(&self) -> Result<Arc<Session>, RpcError> {
        let mut state = self.state.lock().await;
        if let Some(s) = state.as_ref()
            && !s.dispatcher.is_closed()
        {
            return Ok(s.clone());
        }
        if let Some(old) = state.take() {
            self.restarts.fetch_add(1, Ordering::Relaxed);
            let why = old.dispatcher.why_closed().unwrap_or_default();
            tracing::warn!(mcp_server = self.name(), "connecting again: {why}");
            old.transport.close().await;
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(self.unavailable("tollgate is stopping"));
        }
        let connect = self.connect();
        let session = match tokio::time::timeout(self.config.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                *lock(&self.last_error) = Some(e.clone());
                return Err(self.unavailable(&e));
            }
            Err(_) => {
                let e = format!("did not finish starting within {}", secs(self.config.timeout));
                *lock(&self.last_error) = Some(e.clone());
                return Err(self.unavailable(&e));
            }
        };
        *state = Some(session.clone());
        Ok(session)
    }

    fn unavailable(&self, why: &str) -> RpcError {
        RpcError::new(
            CONNECTION_CLOSED,
            format!("MCP server `{}` is unavailable: {why}", self.name()),
        )
    }

    async fn connect(&self) -> Result<Arc<Session>, String> {
        let dispatcher = Arc::new(Dispatcher::default());
        let transport = Transport::open(&self.config, &self.client, dispatcher.clone()).await?;
        let session = Arc::new(Session {
            transport,
            dispatcher,
            next_id: AtomicU64::new(1),
            capabilities: std::sync::OnceLock::new(),
            tools: Mutex::new(None),
        });
        let params = json!({
            "protocolVersion": ASKED_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "tollgate", "version": env!("CARGO_PKG_VERSION")},
        });
        let init = match self.call(&session, "initialize", params, None).await {
            Ok(v) => v,
            Err(Failure::NotSent(e) | Failure::Sent(e)) => {
                session.transport.close().await;
                return Err(e.message);
            }
        };
        let version = init.get("protocolVersion").and_then(Value::as_str).unwrap_or(ASKED_VERSION);
        if !PROTOCOL_VERSIONS.contains(&version) {
            session.transport.close().await;
            return Err(format!(
                "it speaks MCP protocol version {version:?}, which tollgate does not"
            ));
        }
        session.transport.agreed(version);
        let _ = session.capabilities.set(init.get("capabilities").cloned().unwrap_or(Value::Null));
        *lock(&self.server_info) = init.get("serverInfo").cloned();
        let initialized = rpc::notification("notifications/initialized", Value::Null);
        session.transport.send(initialized).await.map_err(|e| e.message)?;
        tracing::info!(mcp_server = self.name(), protocol = version, "MCP server initialized");
        Ok(session)
    }

    async fn call(
        &self,
        session: &Arc<Session>,
        method: &str,
        mut params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, Failure> {
        let id = session.next_id.fetch_add(1, Ordering::Relaxed);
        let Some(answer) = session.dispatcher.expect(id) else {
            let why = session.dispatcher.why_closed().unwrap_or_else(|| "closed".to_owned());
            return Err(Failure::NotSent(self.unavailable(&why)));
        };
        let mut guard = Pending { session: session.clone(), id, token: None, armed: true };
        if let Some(p) = progress {
            let ours = format!("tollgate-{}", self.next_token.fetch_add(1, Ordering::Relaxed));
            rpc::set_progress_token(&mut params, Value::String(ours.clone()));
            session
                .dispatcher
                .watch_progress(token_key(&Value::String(ours.clone())), (p.token, p.sink));
            guard.token = Some(ours);
        }
        // Over HTTP the answer may come with the POST's own response, so the wait for it
        // counts from before the send.
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let sent = session.transport.send(rpc::request(json!(id), method, params));
        match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.delivered => return Err(Failure::Sent(self.unavailable(&e.message))),
            Ok(Err(e)) => {
                guard.armed = false;
                return Err(Failure::NotSent(self.unavailable(&e.message)));
            }
            Err(_) => return Err(Failure::Sent(self.too_slow(method))),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Ok(v))) => {
                guard.armed = false;
                Ok(v)
            }
            Ok(Ok(Err(e))) => {
                guard.armed = false;
                Err(Failure::Sent(e))
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(Failure::Sent(RpcError::new(CANCELLED, "the request was dropped")))
            }
            Err(_) => Err(Failure::Sent(self.too_slow(method))),
        }
    }

    fn too_slow(&self, method: &str) -> RpcError {
        RpcError::new(
            REQUEST_TIMEOUT,
            format!(
                "MCP server `{}` did not answer `{method}` within {}",
                self.name(),
                secs(self.config.timeout)
            ),
        )
    }
}

/// A request in flight. Dropped before its answer (timed out, or the caller went away), it
/// tells the server the request is cancelled.
struct Pending {
    session: Arc<Session>,
    id: u64,
    token: Option<String>,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.session.dispatcher.forget(self.id);
        if let Some(t) = &self.token {
            self.session.dispatcher.unwatch_progress(t);
        }
        if self.armed && !self.session.dispatcher.is_closed() {
            let cancel = rpc::notification(
                "notifications/cancelled",
                json!({"requestId": self.id, "reason": "the client went away or the request timed out"}),
            );
            let session = self.session.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = session.transport.send(cancel).await;
                });
            }
        }
    }
}

fn secs(d: std::time::Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
