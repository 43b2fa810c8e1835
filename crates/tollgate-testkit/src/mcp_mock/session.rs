//! One client's conversation with the mock server: JSON-RPC framing, the requests in flight
//! and their cancellation. Every transport feeds each message it receives through
//! [`Session::accept`] and runs the requests it gets back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::call::{Caller, Outbox, Outcome, RpcError};
use super::server::Server;

/// How a request ended.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The JSON-RPC response to send.
    Reply(Value),
    /// Cancelled by `notifications/cancelled`: no response is due.
    Cancelled,
    /// The `crash` tool ran: on stdio the process exits without answering; over HTTP this
    /// JSON-RPC error response is sent instead.
    Crash(Value),
}

/// What [`Session::accept`] made of one incoming message.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A notification or a response: it took effect, nothing is answered.
    Noted,
    /// Not a valid JSON-RPC message: send this error response.
    Invalid(Value),
    /// A request, registered as in flight; run it for its answer.
    Request(Work),
}

/// The server state one client shares across its messages.
#[derive(Debug)]
pub(crate) struct Session {
    server: Arc<Server>,
    /// Requests being answered, by [`id_key`], each with the switch that cancels it.
    inflight: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Session {
    pub(crate) fn new(server: Arc<Server>) -> Arc<Self> {
        Arc::new(Self { server, inflight: Mutex::new(HashMap::new()) })
    }

    /// Takes one message. Notifications, cancellation included, take effect before this
    /// returns, and a request is registered before it runs, so a cancellation read right
    /// after it always finds it.
    pub(crate) fn accept(self: &Arc<Self>, message: Value) -> Accepted {
        let Value::Object(mut message) = message else {
            return Accepted::Invalid(invalid(Value::Null, "a JSON-RPC message is an object"));
        };
        let id = message.remove("id");
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Accepted::Invalid(invalid(
                id.unwrap_or(Value::Null),
                "`jsonrpc` must be \"2.0\"",
            ));
        }
        let params = message.remove("params").unwrap_or(Value::Null);
        let method = match message.remove("method") {
            Some(Value::String(method)) => method,
            Some(_) => {
                return Accepted::Invalid(invalid(
                    id.unwrap_or(Value::Null),
                    "`method` must be a string",
                ));
            }
            None if id.is_some()
                && (message.contains_key("result") || message.contains_key("error")) =>
            {
                // A client's answer to a server request; this server sends none, so no one waits.
                return Accepted::Noted;
            }
            None => {
                return Accepted::Invalid(invalid(
                    id.unwrap_or(Value::Null),
                    "`method` is missing",
                ));
            }
        };
        let Some(id) = id else {
            if method == "notifications/cancelled" {
                self.cancel(&params);
            }
            return Accepted::Noted;
        };
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Accepted::Invalid(invalid(Value::Null, "`id` must be a string or an integer"));
        }
        let key = id_key(&id);
        let (switch, cancelled) = watch::channel(false);
        self.lock().insert(key.clone(), switch);
        Accepted::Request(Work { session: Arc::clone(self), key, id, method, params, cancelled })
    }

    /// `notifications/cancelled`: stops the named request if it is still running. Unknown
    /// and malformed ids are ignored, as the specification asks.
    fn cancel(&self, params: &Value) {
        let Some(id) = params.get("requestId") else { return };
        if let Some(switch) = self.lock().get(&id_key(id)) {
            switch.send_replace(true);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<bool>>> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request taken by [`Session::accept`] and not yet answered. Dropping it (a finished or
/// abandoned run) takes it off the in-flight list.
#[derive(Debug)]
pub(crate) struct Work {
    session: Arc<Session>,
    key: String,
    id: Value,
    method: String,
    params: Value,
    cancelled: watch::Receiver<bool>,
}

impl Work {
    /// Whether this is a `tools/call` of `tool`.
    pub(crate) fn calls_tool(&self, tool: &str) -> bool {
        self.method == "tools/call" && self.params.get("name").and_then(Value::as_str) == Some(tool)
    }

    /// The `_meta.progressToken` the request carries, if it is a string or an integer.
    pub(crate) fn progress_token(&self) -> Option<&Value> {
        self.params
            .pointer("/_meta/progressToken")
            .filter(|token| token.is_string() || token.is_i64() || token.is_u64())
    }

    /// Answers the request; notifications it sends on the way go to `out`.
    pub(crate) async fn run(self, caller: &Caller, out: &Outbox) -> Answer {
        let context = super::call::Context {
            caller,
            out,
            progress_token: self.progress_token().cloned(),
            cancelled: self.cancelled.clone(),
        };
        match self.session.server.call(&self.method, &self.params, context).await {
            Outcome::Result(result) => {
                Answer::Reply(json!({"jsonrpc": "2.0", "id": self.id, "result": result}))
            }
            Outcome::Error(error) => Answer::Reply(error_response(self.id.clone(), &error)),
            Outcome::Cancelled => Answer::Cancelled,
            Outcome::Crash => {
                let error = RpcError::internal("the crash tool ran: a stdio server exits here");
                Answer::Crash(error_response(self.id.clone(), &error))
            }
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let mut inflight = self.session.lock();
        // A later request may have reused the id; only this request's own entry goes.
        if inflight
            .get(&self.key)
            .is_some_and(|switch| switch.subscribe().same_channel(&self.cancelled))
        {
            inflight.remove(&self.key);
        }
    }
}

/// A JSON-RPC error response.
pub(crate) fn error_response(id: Value, error: &RpcError) -> Value {
    let mut body = json!({"code": error.code, "message": error.message});
    if let Some(data) = &error.data {
        body["data"] = data.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": body})
}

/// The answer to a body that is not JSON: `-32700 Parse error`, with no id to name.
pub(crate) fn parse_error(error: &serde_json::Error) -> Value {
    error_response(Value::Null, &RpcError::new(-32700, format!("parse error: {error}")))
}

fn invalid(id: Value, reason: &str) -> Value {
    error_response(id, &RpcError::new(-32600, format!("invalid request: {reason}")))
}

/// The in-flight key of a request id: its JSON text, so `1` and `"1"` stay two requests.
fn id_key(id: &Value) -> String {
    id.to_string()
}
