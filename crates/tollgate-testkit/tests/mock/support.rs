//! HTTP and SSE helpers shared by the tests.

use std::time::Instant;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

pub fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider; plain http still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there friend"}
        ],
    });
    if stream {
        body["stream"] = json!(true);
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
    }
    body
}

/// (2 + 3) + (3 + 3) for `chat_body`'s two messages.
pub const PROMPT_TOKENS: u64 = 11;

pub async fn post_chat(mock: &MockOpenAi, body: &Value) -> reqwest::Response {
    client().post(format!("{}/chat/completions", mock.base_url())).json(body).send().await.unwrap()
}

pub async fn chat_json(mock: &MockOpenAi, body: &Value) -> Value {
    let response = post_chat(mock, body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub struct Sse {
    /// Each `data:` payload with the time it arrived.
    pub events: Vec<(Instant, String)>,
    /// Whether the body ended in a transport error rather than a clean end.
    pub failed: bool,
}

impl Sse {
    pub fn json(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|(_, data)| data != "[DONE]")
            .map(|(_, data)| serde_json::from_str(data).unwrap())
            .collect()
    }

    pub fn last(&self) -> &str {
        &self.events.last().unwrap().1
    }
}

pub async fn read_sse(response: reqwest::Response) -> Sse {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let mut failed = false;
    while let Some(item) = body.next().await {
        let Ok(bytes) = item else {
            failed = true;
            break;
        };
        buffer.push_str(std::str::from_utf8(&bytes).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data = event.trim_end().strip_prefix("data: ").unwrap().to_owned();
            events.push((Instant::now(), data));
        }
    }
    Sse { events, failed }
}

pub fn delta_texts(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c.pointer(&format!("/choices/0/delta/{field}")).and_then(Value::as_str))
        .collect()
}

/// One named SSE event of a Responses API stream.
pub struct Named {
    pub event: String,
    pub data: Value,
    pub at: Instant,
}

/// Reads a stream of `event:` + `data:` pairs; the flag says whether it ended in a transport
/// error. Panics when an event's name and its `data.type` differ.
pub async fn read_named(response: reqwest::Response) -> (Vec<Named>, bool) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(item) = body.next().await {
        let Ok(bytes) = item else {
            return (events, true);
        };
        buffer.push_str(std::str::from_utf8(&bytes).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (name, data) = frame.trim_end().split_once('\n').unwrap();
            let event = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event.as_str());
            events.push(Named { event, data, at: Instant::now() });
        }
    }
    (events, false)
}

/// The event names, in order.
pub fn names(events: &[Named]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

/// The `delta`s of events named `name`, joined.
pub fn deltas(events: &[Named], name: &str) -> String {
    events.iter().filter(|e| e.event == name).map(|e| e.data["delta"].as_str().unwrap()).collect()
}

pub async fn post_responses(mock: &MockOpenAi, body: &Value) -> reqwest::Response {
    client().post(format!("{}/responses", mock.base_url())).json(body).send().await.unwrap()
}

/// A Responses API request: instructions and one user message, 2 + 3 and 3 + 3 tokens.
pub fn responses_body(stream: bool) -> Value {
    json!({
        "model": "gpt-5.4",
        "instructions": "be brief",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello there friend"}]}],
        "stream": stream,
    })
}

/// `input_tokens` of `responses_body`.
pub const INPUT_TOKENS: u64 = 11;
