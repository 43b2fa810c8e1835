//! JSON-RPC 2.0 as MCP uses it: messages are kept as JSON values so that whatever a server or
//! client adds (`_meta`, fields of a newer revision) passes through untouched.

use serde_json::{Map, Value, json};

/// The connection to the server closed, or it could not be reached (the code the MCP SDKs use
/// for a closed connection).
pub const CONNECTION_CLOSED: i64 = -32000;
/// The server did not answer in time (the SDKs' request-timeout code).
pub const REQUEST_TIMEOUT: i64 = -32001;
/// Not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid JSON-RPC message.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters, including a tool, prompt or resource the caller cannot see.
pub const INVALID_PARAMS: i64 = -32602;
/// The caller's key may not do this now (rate limit, budget, blocked key).
pub const REFUSED: i64 = -32003;
/// The request was cancelled before it was answered.
pub const CANCELLED: i64 = -32800;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// Its code.
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
    /// More detail, if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// With data.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// From an error object a peer sent; a malformed one still yields an error.
    pub fn from_value(v: &Value) -> Self {
        Self {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the server answered with an error")
                .to_owned(),
            data: v.get("data").cloned(),
        }
    }

    /// As an error object.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("code".into(), self.code.into());
        o.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.data {
            o.insert("data".into(), d.clone());
        }
        Value::Object(o)
    }
}

/// A response carrying `result`.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A response carrying `error`.
pub fn error(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.to_value()})
}

/// A request.
pub fn request(id: Value, method: &str, params: Value) -> Value {
    let mut o = Map::new();
    o.insert("jsonrpc".into(), "2.0".into());
    o.insert("id".into(), id);
    o.insert("method".into(), method.into());
    if !params.is_null() {
        o.insert("params".into(), params);
    }
    Value::Object(o)
}

/// A notification.
pub fn notification(method: &str, params: Value) -> Value {
    let mut o = Map::new();
    o.insert("jsonrpc".into(), "2.0".into());
    o.insert("method".into(), method.into());
    if !params.is_null() {
        o.insert("params".into(), params);
    }
    Value::Object(o)
}

/// What a message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    /// A request: it has a method and an id.
    Request { id: &'a Value, method: &'a str },
    /// A notification: a method and no id.
    Notification { method: &'a str },
    /// A response: an id and a result or an error.
    Response { id: &'a Value },
    /// None of those.
    Invalid,
}

/// Classifies a message.
pub fn kind(message: &Value) -> Kind<'_> {
    let Some(o) = message.as_object() else { return Kind::Invalid };
    let id = o.get("id").filter(|id| id.is_string() || id.is_number());
    match (o.get("method").and_then(Value::as_str), id) {
        (Some(method), Some(id)) => Kind::Request { id, method },
        (Some(method), None) if !o.contains_key("id") => Kind::Notification { method },
        (None, Some(id)) if o.contains_key("result") || o.contains_key("error") => {
            Kind::Response { id }
        }
        _ => Kind::Invalid,
    }
}

/// `params._meta.progressToken`, if the request asked for progress.
pub fn progress_token(params: &Value) -> Option<&Value> {
    params.get("_meta")?.get("progressToken").filter(|t| t.is_string() || t.is_number())
}

/// Sets (or replaces) `params._meta.progressToken`.
pub fn set_progress_token(params: &mut Value, token: Value) {
    if !params.is_object() {
        *params = Value::Object(Map::new());
    }
    if let Some(o) = params.as_object_mut() {
        let meta = o.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Some(m) = meta.as_object_mut() {
            m.insert("progressToken".into(), token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        assert!(matches!(kind(&json!({"id": 1, "method": "ping"})), Kind::Request { .. }));
        assert!(matches!(
            kind(&json!({"method": "notifications/initialized"})),
            Kind::Notification { .. }
        ));
        assert!(matches!(kind(&json!({"id": "a", "result": {}})), Kind::Response { .. }));
        assert_eq!(kind(&json!({"id": null, "method": "x"})), Kind::Invalid);
        assert_eq!(kind(&json!([1])), Kind::Invalid);
    }

    #[test]
    fn a_progress_token_is_replaced_keeping_the_rest_of_meta() {
        let mut p = json!({"name": "t", "_meta": {"progressToken": 7, "other": true}});
        assert_eq!(progress_token(&p), Some(&json!(7)));
        set_progress_token(&mut p, json!("g-1"));
        assert_eq!(p["_meta"], json!({"progressToken": "g-1", "other": true}));
        let mut empty = Value::Null;
        set_progress_token(&mut empty, json!(1));
        assert_eq!(empty, json!({"_meta": {"progressToken": 1}}));
    }
}
