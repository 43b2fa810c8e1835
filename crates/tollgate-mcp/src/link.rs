//! A live connection to one MCP server, whatever carries it: answers are matched to requests
//! by id, progress is routed to whoever asked for it, and requests the server sends back
//! (`ping`, `roots/list`) are answered here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::rpc::{self, CONNECTION_CLOSED, Kind, METHOD_NOT_FOUND, RpcError};

/// Where a request's progress notifications go: the caller's own token, and its channel.
pub(crate) type ProgressSink = (Value, mpsc::UnboundedSender<Value>);

/// What a connection's reader hands over: answers, notifications and the server's requests.
#[derive(Debug, Default)]
pub(crate) struct Dispatcher {
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>,
    progress: Mutex<HashMap<String, ProgressSink>>,
    closed: AtomicBool,
    why_closed: Mutex<Option<String>>,
    /// Set when the server says its tools changed.
    pub tools_changed: AtomicBool,
}

impl Dispatcher {
    /// Registers a request about to be sent; `None` once the connection has closed.
    pub fn expect(&self, id: u64) -> Option<oneshot::Receiver<Result<Value, RpcError>>> {
        let (tx, rx) = oneshot::channel();
        let mut pending = lock(&self.pending);
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        pending.insert(id, tx);
        Some(rx)
    }

    /// Forgets a request that will not be answered (it timed out or was cancelled).
    pub fn forget(&self, id: u64) {
        lock(&self.pending).remove(&id);
    }

    /// Routes the progress of `token` (ours, as sent upstream) to `sink`.
    pub fn watch_progress(&self, token: String, sink: ProgressSink) {
        lock(&self.progress).insert(token, sink);
    }

    /// Stops routing `token`.
    pub fn unwatch_progress(&self, token: &str) {
        lock(&self.progress).remove(token);
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why it closed.
    pub fn why_closed(&self) -> Option<String> {
        lock(&self.why_closed).clone()
    }

    /// Marks the connection closed and fails every request still waiting.
    pub fn close(&self, why: &str) {
        let waiting: Vec<_> = {
            let mut pending = lock(&self.pending);
            if self.closed.swap(true, Ordering::AcqRel) {
                return;
            }
            *lock(&self.why_closed) = Some(why.to_owned());
            pending.drain().map(|(_, tx)| tx).collect()
        };
        for tx in waiting {
            let _ = tx.send(Err(RpcError::new(CONNECTION_CLOSED, why.to_owned())));
        }
        lock(&self.progress).clear();
    }

    /// Handles one message from the server; returns the answer to send back, if it was a
    /// request.
    pub fn deliver(&self, server: &str, message: Value) -> Option<Value> {
        match rpc::kind(&message) {
            Kind::Response { id } => {
                let id = id.as_u64()?;
                let tx = lock(&self.pending).remove(&id)?;
                let answer = match message.get("error") {
                    Some(e) => Err(RpcError::from_value(e)),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(answer);
                None
            }
            Kind::Notification { method } => {
                match method {
                    "notifications/progress" => self.route_progress(message),
                    "notifications/tools/list_changed" => {
                        self.tools_changed.store(true, Ordering::Release);
                    }
                    "notifications/message" => {
                        let params = message.get("params").cloned().unwrap_or(Value::Null);
                        tracing::info!(mcp_server = server, level = %params["level"], data = %params["data"], "MCP server log");
                    }
                    _ => {}
                }
                None
            }
            Kind::Request { id, method } => Some(match method {
                "ping" => rpc::result(id.clone(), json!({})),
                "roots/list" => rpc::result(id.clone(), json!({"roots": []})),
                other => rpc::error(
                    id.clone(),
                    &RpcError::new(
                        METHOD_NOT_FOUND,
                        format!("the gateway does not offer `{other}` to MCP servers"),
                    ),
                ),
            }),
            Kind::Invalid => {
                tracing::debug!(mcp_server = server, "ignored a message that is not JSON-RPC");
                None
            }
        }
    }

    fn route_progress(&self, mut message: Value) {
        let Some(token) = message.pointer("/params/progressToken").map(token_key) else { return };
        let progress = lock(&self.progress);
        let Some((theirs, sink)) = progress.get(&token) else { return };
        if let Some(t) = message.pointer_mut("/params/progressToken") {
            *t = theirs.clone();
        }
        let _ = sink.send(message);
    }
}

/// A progress token as a map key (tokens are strings or numbers).
pub(crate) fn token_key(token: &Value) -> String {
    match token {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends each message of `messages` to `dispatcher` and writes any answer to `reply`.
pub(crate) fn deliver_all(
    dispatcher: &Arc<Dispatcher>,
    server: &str,
    body: &[u8],
    reply: &mut dyn FnMut(Value),
) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        tracing::debug!(mcp_server = server, "ignored a message that is not JSON");
        return;
    };
    let messages = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    for m in messages {
        if let Some(answer) = dispatcher.deliver(server, m) {
            reply(answer);
        }
    }
}
