//! A bare MCP client over reqwest and an SSE reader, so the tests speak the wire format
//! themselves rather than trusting a client library.

use std::time::Duration;

use futures_util::{StreamExt, stream::BoxStream};
use serde_json::{Value, json};

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

pub fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider; plain http still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

pub fn call_tool(id: impl Into<Value>, name: &str, arguments: Value) -> Value {
    request(id, "tools/call", json!({"name": name, "arguments": arguments}))
}

pub fn initialize_params(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "tollgate-tests", "version": "0"},
    })
}

/// The text of a tool result's first content block.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

/// A streamable-HTTP client session, as the specification has clients behave.
pub struct Session {
    pub http: reqwest::Client,
    pub url: String,
    pub id: Option<String>,
    pub token: Option<String>,
}

impl Session {
    pub fn new(url: String) -> Self {
        Self { http: client(), url, id: None, token: None }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub async fn post(&self, message: &Value) -> reqwest::Response {
        let mut builder = self.http.post(&self.url).header("accept", ACCEPT_BOTH).json(message);
        if let Some(id) = &self.id {
            builder =
                builder.header("mcp-session-id", id).header("mcp-protocol-version", "2025-06-18");
        }
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        builder.send().await.unwrap()
    }

    /// `initialize`, keeping the session id, then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Value {
        let response = self.post(&request(0, "initialize", initialize_params("2025-06-18"))).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        self.id = Some(id);
        let ack = self.post(&notification("notifications/initialized", json!({}))).await;
        assert_eq!(ack.status(), 202);
        body["result"].clone()
    }

    /// Sends a request that is answered as one JSON body; returns the JSON-RPC response.
    pub async fn rpc(&self, message: &Value) -> Value {
        let response = self.post(message).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        response.json().await.unwrap()
    }
}

/// Reads `event:`/`data:` frames off a streaming body one at a time.
pub struct SseReader {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

/// One SSE event: its name (`message` when unnamed) and data.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { body: response.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next event, or `None` when the stream ends; panics after 10 s of silence.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event { name: "message".to_owned(), data: String::new() };
                for line in frame.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event.name = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data.push_str(data);
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE event within 10 s");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap()),
                None => return None,
            }
        }
    }

    /// Every remaining event's JSON, until the stream ends.
    pub async fn rest(&mut self) -> Vec<Value> {
        let mut all = Vec::new();
        while let Some(event) = self.next().await {
            assert_eq!(event.name, "message");
            all.push(event.json());
        }
        all
    }
}
