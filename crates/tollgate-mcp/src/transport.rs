//! The three ways to reach an MCP server: a child process's standard input and output,
//! streamable HTTP, and the older HTTP+SSE pair.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tollgate_config::{McpServer, McpTransport};
use tollgate_protocol::sse::{SseEvent, SseFramer};

use crate::link::{Dispatcher, deliver_all};

/// Largest single answer read from an HTTP server.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How long a stopping child process gets after its input closes before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Variables a child process inherits from tollgate's environment; everything else it gets
/// comes from its `env` (tollgate's own secrets never reach it).
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Why a message was not sent, and whether the server may have received it anyway (then a
/// request is not sent again).
#[derive(Debug)]
pub(crate) struct SendError {
    pub message: String,
    pub delivered: bool,
}

impl SendError {
    fn before(message: String) -> Self {
        Self { message, delivered: false }
    }

    fn after(message: String) -> Self {
        Self { message, delivered: true }
    }

    fn of(e: &reqwest::Error) -> Self {
        Self { message: describe(e), delivered: !e.is_connect() }
    }
}

/// A connection's way of sending.
#[derive(Debug)]
pub(crate) enum Transport {
    Stdio(StdioLink),
    Http(Arc<HttpLink>),
    Sse(Arc<SseLink>),
}

impl Transport {
    /// Opens a connection to `server`; what arrives from it goes to `dispatcher`.
    pub async fn open(
        server: &McpServer,
        client: &reqwest::Client,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Self, String> {
        let headers = http_headers(server)?;
        match &server.transport {
            McpTransport::Stdio { command, args, env, cwd } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).env_clear();
                for name in INHERITED_ENV {
                    if let Ok(v) = std::env::var(name) {
                        cmd.env(name, v);
                    }
                }
                for (k, v) in std::env::vars() {
                    if k.starts_with("npm_config_") || k.starts_with("NPM_CONFIG_") {
                        cmd.env(k, v);
                    }
                }
                for (k, v) in env {
                    cmd.env(k, v.expose());
                }
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                StdioLink::start(&server.name, cmd, dispatcher).map(Self::Stdio)
            }
            McpTransport::Http { url } => Ok(Self::Http(Arc::new(HttpLink {
                name: server.name.clone(),
                client: client.clone(),
                url: url.clone(),
                headers,
                session: Mutex::new(None),
                protocol: Mutex::new(None),
                dispatcher,
            }))),
            McpTransport::Sse { url } => {
                SseLink::open(&server.name, client, url, headers, dispatcher).await.map(Self::Sse)
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: Value) -> Result<(), SendError> {
        match self {
            Self::Stdio(link) => link.send(message).map_err(SendError::before),
            Self::Http(link) => link.post(message).await,
            Self::Sse(link) => link.post(message).await,
        }
    }

    /// Remembers the protocol version the server agreed to, for the headers that name it.
    pub fn agreed(&self, version: &str) {
        if let Self::Http(link) = self {
            *lock(&link.protocol) = Some(version.to_owned());
        }
    }

    /// Ends the connection: a child's input is closed (and it is killed if it does not exit),
    /// an HTTP session is deleted.
    pub async fn close(&self) {
        match self {
            Self::Stdio(link) => link.stop(),
            Self::Http(link) => link.end_session().await,
            Self::Sse(link) => link.stop(),
        }
    }
}

fn http_headers(server: &McpServer) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| -> Result<(), String> {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of `{name}` is not valid"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
        Ok(())
    };
    for (name, value) in &server.static_headers {
        put(name, value.expose())?;
    }
    if let Some((name, value)) = server.auth.header() {
        put(name, &value)?;
    }
    Ok(headers)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process.
#[derive(Debug)]
pub(crate) struct StdioLink {
    input: mpsc::UnboundedSender<Value>,
    /// Closes the child's input, then stops it.
    stop: Mutex<Option<(oneshot::Sender<()>, oneshot::Sender<()>)>>,
}

impl StdioLink {
    fn start(
        name: &str,
        mut cmd: tokio::process::Command,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Self, String> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start its command: {e}"))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("its standard streams could not be opened".to_owned());
        };
        let pid = child.id();
        tracing::info!(mcp_server = name, pid, "MCP server started");
        let (input, mut queue) = mpsc::unbounded_channel::<Value>();
        // Writer: one JSON message per line; the child's input closes when the link stops
        // (a server reading stdio exits on that).
        let (close_input, mut input_closed) = oneshot::channel::<()>();
        let writer_name = name.to_owned();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    m = queue.recv() => m,
                    _ = &mut input_closed => None,
                };
                let Some(message) = message else { break };
                let mut line = message.to_string().into_bytes();
                line.push(b'\n');
                if let Err(e) = stdin.write_all(&line).await {
                    tracing::debug!(mcp_server = writer_name, "cannot write to the server: {e}");
                    break;
                }
                let _ = stdin.flush().await;
            }
            drop(stdin);
        });
        // Reader: answers and notifications, and answers to what the server asks.
        let reader_name = name.to_owned();
        let reader_dispatcher = dispatcher.clone();
        let replies = input.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                deliver_all(&reader_dispatcher, &reader_name, line.as_bytes(), &mut |answer| {
                    let _ = replies.send(answer);
                });
            }
            // The exit, with its status, is reported by the waiter; this covers a child that
            // closed its output and kept running.
            tokio::time::sleep(STOP_GRACE).await;
            reader_dispatcher.close(&format!("MCP server `{reader_name}` closed its output"));
        });
        // Its standard error goes to tollgate's log, line by line.
        let err_name = name.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(mcp_server = err_name, "{line}");
            }
        });
        // Waiter: reports the exit, or stops the child when asked.
        let (stop, stopped) = oneshot::channel::<()>();
        let wait_name = name.to_owned();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = stopped => match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        let _ = child.start_kill();
                        child.wait().await
                    }
                },
            };
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            tracing::info!(mcp_server = wait_name, %status, "MCP server exited");
            dispatcher.close(&format!("MCP server `{wait_name}` exited ({status})"));
        });
        Ok(Self { input, stop: Mutex::new(Some((close_input, stop))) })
    }

    fn send(&self, message: Value) -> Result<(), String> {
        self.input.send(message).map_err(|_| "the server's input is closed".to_owned())
    }

    fn stop(&self) {
        if let Some((close_input, stop)) = lock(&self.stop).take() {
            let _ = close_input.send(());
            let _ = stop.send(());
        }
    }
}

/// Streamable HTTP: every message is a POST; answers come back as JSON or as an event stream.
#[derive(Debug)]
pub(crate) struct HttpLink {
    name: String,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    dispatcher: Arc<Dispatcher>,
}

impl HttpLink {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, &self.url).headers(self.headers.clone());
        if let Some(s) = lock(&self.session).clone() {
            r = r.header("mcp-session-id", s);
        }
        if let Some(v) = lock(&self.protocol).clone() {
            r = r.header("mcp-protocol-version", v);
        }
        r
    }

    async fn post(self: &Arc<Self>, message: Value) -> Result<(), SendError> {
        let had_session = lock(&self.session).is_some();
        let response = self
            .request(reqwest::Method::POST)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
            .await
            .map_err(|e| SendError::of(&e))?;
        let status = response.status();
        if let Some(id) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            *lock(&self.session) = Some(id.to_owned());
        }
        if status == reqwest::StatusCode::NOT_FOUND && had_session {
            self.dispatcher.close(&format!("MCP server `{}` ended the session", self.name));
            return Err(SendError::before("the server ended the session".to_owned()));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(SendError::after(format!(
                "answered HTTP {}{}",
                status.as_u16(),
                if body.trim().is_empty() { String::new() } else { format!(": {}", body.trim()) }
            )));
        }
        if status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::NO_CONTENT {
            return Ok(());
        }
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let this = self.clone();
        if is_stream {
            tokio::spawn(async move {
                let body = response.bytes_stream();
                read_events(&this.name, body, &this.dispatcher, SseFramer::new(), |answer| {
                    this.send_back(answer);
                })
                .await;
            });
            return Ok(());
        }
        let body = read_bounded(response).await.map_err(SendError::after)?;
        let mut answers = Vec::new();
        deliver_all(&self.dispatcher, &self.name, &body, &mut |a| answers.push(a));
        for answer in answers {
            self.send_back(answer);
        }
        Ok(())
    }

    /// Answers a request the server sent (its acknowledgement carries nothing to read).
    fn send_back(&self, answer: Value) {
        let request = self
            .request(reqwest::Method::POST)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(answer.to_string());
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }

    async fn end_session(&self) {
        if lock(&self.session).is_none() {
            return;
        }
        let r = self.request(reqwest::Method::DELETE).timeout(Duration::from_secs(2)).send();
        let _ = r.await;
        *lock(&self.session) = None;
    }
}

async fn read_bounded(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| describe(&e))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answered with more than {} MiB", MAX_BODY / 1024 / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads an event stream of JSON-RPC messages until it ends; `reply` sends answers back.
/// `framer` may hold frames already read.
async fn read_events(
    name: &str,
    mut body: impl futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
    dispatcher: &Arc<Dispatcher>,
    mut framer: SseFramer,
    mut reply: impl FnMut(Value),
) {
    loop {
        while let Some(frame) = framer.next_frame() {
            let event = SseEvent::parse(&frame);
            if matches!(event.event.as_deref(), None | Some("message")) && !event.data.is_empty() {
                deliver_all(dispatcher, name, event.data.as_bytes(), &mut reply);
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => framer.push(&chunk),
            _ => break,
        }
    }
}

/// The older HTTP+SSE transport: one event stream for everything the server sends, and an
/// endpoint it names for what the client sends.
#[derive(Debug)]
pub(crate) struct SseLink {
    client: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    reader: tokio::task::AbortHandle,
}

impl SseLink {
    async fn open(
        name: &str,
        client: &reqwest::Client,
        url: &str,
        headers: HeaderMap,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Arc<Self>, String> {
        let response = client
            .get(url)
            .headers(headers.clone())
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if !response.status().is_success() {
            return Err(format!(
                "answered HTTP {} to the event stream",
                response.status().as_u16()
            ));
        }
        let base = response.url().clone();
        let mut body = response.bytes_stream();
        let mut framer = SseFramer::new();
        // The first event names the endpoint.
        let endpoint = loop {
            let Some(chunk) = body.next().await else {
                return Err("the event stream ended before naming its endpoint".to_owned());
            };
            framer.push(&chunk.map_err(|e| describe(&e))?);
            let mut found = None;
            while let Some(frame) = framer.next_frame() {
                let event = SseEvent::parse(&frame);
                if event.event.as_deref() == Some("endpoint") {
                    found = Some(event.data.trim().to_owned());
                    break;
                }
            }
            if let Some(found) = found {
                break base
                    .join(&found)
                    .map_err(|_| format!("named an endpoint that is not a URL: {found:?}"))?;
            }
        };
        if endpoint.origin() != base.origin() {
            return Err(format!("named an endpoint on another origin: {endpoint}"));
        }
        let (answers, mut queue) = mpsc::unbounded_channel::<Value>();
        let reader_name = name.to_owned();
        let reader_dispatcher = dispatcher.clone();
        let reader = tokio::spawn(async move {
            read_events(&reader_name, &mut body, &reader_dispatcher, framer, |a| {
                let _ = answers.send(a);
            })
            .await;
            reader_dispatcher.close(&format!("MCP server `{reader_name}` ended its event stream"));
        })
        .abort_handle();
        let link = Arc::new(Self {
            client: client.clone(),
            endpoint: endpoint.to_string(),
            headers,
            reader,
        });
        let sender = link.clone();
        tokio::spawn(async move {
            while let Some(answer) = queue.recv().await {
                let _ = sender.post(answer).await;
            }
        });
        Ok(link)
    }

    async fn post(&self, message: Value) -> Result<(), SendError> {
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
            .await
            .map_err(|e| SendError::of(&e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SendError::after(format!(
                "answered HTTP {} to a message",
                response.status().as_u16()
            )))
        }
    }

    fn stop(&self) {
        self.reader.abort();
    }
}

/// A transport error in words, without the URL's query (which may hold a session id).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { what.to_owned() } else { format!("{what}: {detail}") }
}
