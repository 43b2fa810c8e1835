//! The HTTP mock's shared state: sessions of both transports, the recorded messages and
//! the knobs a test turns. One `std` mutex guards it, never held across an await.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::watch;

use super::{call::Outbox, server::Server, session::Session};

/// Which HTTP transport a message came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpTransport {
    /// `POST /mcp`.
    StreamableHttp,
    /// `POST /messages?sessionId=…`, answered on the `GET /sse` stream.
    Sse,
}

/// One JSON-RPC message the mock received over HTTP, as the client sent it. Every message
/// is recorded, also those then refused (401, 400, 404, a configured failure).
#[derive(Debug, Clone, PartialEq)]
pub struct McpCall {
    /// The transport it arrived on.
    pub transport: McpTransport,
    /// The `Mcp-Session-Id` header, or the `sessionId` query parameter of the SSE transport.
    pub session: Option<String>,
    /// The request id; `None` for notifications.
    pub id: Option<Value>,
    /// `tools/call`, `notifications/initialized`, …; `None` for responses and bodies that
    /// are not JSON-RPC.
    pub method: Option<String>,
    /// `params`, `null` when absent.
    pub params: Value,
    /// The whole message; a JSON string holding the body when it was not JSON.
    pub message: Value,
    /// The HTTP request headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl McpCall {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// For `tools/call`: the tool's name.
    pub fn tool(&self) -> Option<&str> {
        (self.method.as_deref() == Some("tools/call"))
            .then(|| self.params.get("name").and_then(Value::as_str))
            .flatten()
    }
}

/// An open `GET /sse` stream and the session its POSTs go to.
pub(super) struct LegacySession {
    pub session: Arc<Session>,
    pub out: Outbox,
}

pub(super) struct State {
    pub server: Arc<Server>,
    /// Answer every request as an SSE stream rather than one JSON body.
    pub sse_responses: bool,
    /// Required `Authorization: Bearer` token.
    pub bearer_token: Option<String>,
    /// Turns `true` when the mock stops; waits and streams watch it.
    pub shutdown: watch::Receiver<bool>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Arc<Session>>,
    legacy: HashMap<String, LegacySession>,
    calls: Vec<McpCall>,
    delay: Duration,
    failure: Option<u16>,
}

impl State {
    pub(super) fn new(
        server: Server,
        sse_responses: bool,
        bearer_token: Option<String>,
        delay: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let inner = Inner { delay, ..Inner::default() };
        Self {
            server: Arc::new(server),
            sse_responses,
            bearer_token,
            shutdown,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a received body: `message` is the parsed JSON, or the parse failure's raw text.
    pub(super) fn record(
        &self,
        transport: McpTransport,
        session: Option<String>,
        message: Result<&Value, &[u8]>,
        headers: &HeaderMap,
    ) {
        let message = message.map_or_else(
            |raw| Value::String(String::from_utf8_lossy(raw).into_owned()),
            Value::clone,
        );
        let field = |name: &str| message.get(name).cloned();
        let call = McpCall {
            transport,
            session,
            id: field("id"),
            method: field("method").and_then(|m| m.as_str().map(str::to_owned)),
            params: field("params").unwrap_or(Value::Null),
            headers: header_list(headers),
            message,
        };
        self.lock().calls.push(call);
    }

    pub(super) fn calls(&self) -> Vec<McpCall> {
        self.lock().calls.clone()
    }

    pub(super) fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    pub(super) fn delay(&self) -> Duration {
        self.lock().delay
    }

    pub(super) fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub(super) fn failure(&self) -> Option<u16> {
        self.lock().failure
    }

    pub(super) fn set_failure(&self, status: Option<u16>) {
        self.lock().failure = status;
    }

    /// Starts a streamable-HTTP session; returns its id.
    pub(super) fn open_session(&self) -> (String, Arc<Session>) {
        let id = new_id();
        let session = Session::new(Arc::clone(&self.server));
        self.lock().sessions.insert(id.clone(), Arc::clone(&session));
        (id, session)
    }

    pub(super) fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().sessions.get(id).cloned()
    }

    /// Ends a streamable-HTTP session; whether it existed.
    pub(super) fn end_session(&self, id: &str) -> bool {
        self.lock().sessions.remove(id).is_some()
    }

    pub(super) fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self.lock().sessions.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub(super) fn expire_sessions(&self) {
        self.lock().sessions.clear();
    }

    /// Opens an SSE-transport session whose messages go to `out`; returns its id.
    pub(super) fn open_legacy(&self, out: Outbox) -> String {
        let id = new_id();
        let session = Session::new(Arc::clone(&self.server));
        self.lock().legacy.insert(id.clone(), LegacySession { session, out });
        id
    }

    pub(super) fn legacy(&self, id: &str) -> Option<(Arc<Session>, Outbox)> {
        self.lock().legacy.get(id).map(|l| (Arc::clone(&l.session), l.out.clone()))
    }

    pub(super) fn close_legacy(&self, id: &str) {
        self.lock().legacy.remove(id);
    }

    pub(super) fn legacy_count(&self) -> usize {
        self.lock().legacy.len()
    }
}

/// Header names (lowercase, as `http` stores them) and values, in arrival order.
pub(super) fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect()
}

/// A session id: 128 random bits in hex, visible ASCII as the specification requires.
fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
