//! A mock Anthropic-format upstream (`/v1/messages`, `/v1/messages/count_tokens`) answering
//! the same programmable [`ReplySpec`]s as the OpenAI mock, rendered the way Anthropic
//! renders them: content blocks as JSON, or the `message_start` … `message_stop` events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::openai_mock::tokens;
use crate::{RecordedRequest, Reply, ReplySpec, ToolCall};

#[derive(Default)]
struct MockState {
    queue: VecDeque<ReplySpec>,
    default: Option<ReplySpec>,
    requests: Vec<RecordedRequest>,
    raw: Vec<Vec<u8>>,
}

type Shared = Arc<Mutex<MockState>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, MockState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running mock Anthropic API; dropping it stops the server.
#[derive(Debug)]
pub struct MockAnthropic {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("queued", &self.queue.len()).finish_non_exhaustive()
    }
}

impl MockAnthropic {
    /// Starts on 127.0.0.1 and a free port.
    pub async fn start() -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot bind the mock Anthropic upstream");
                std::process::abort();
            }
        };
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let shared: Shared = Arc::default();
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The `api_base` to configure: requests go to `{api_base}/v1/messages`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the answer to the next request.
    pub fn enqueue(&self, spec: impl Into<ReplySpec>) {
        lock(&self.shared).queue.push_back(spec.into());
    }

    /// The answer when nothing is queued.
    pub fn set_default(&self, spec: impl Into<ReplySpec>) {
        lock(&self.shared).default = Some(spec.into());
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The latest request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared).requests.last().cloned()
    }

    /// The latest request's body exactly as received.
    pub fn last_raw_body(&self) -> Option<Vec<u8>> {
        lock(&self.shared).raw.last().cloned()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        lock(&self.shared).requests.len()
    }
}

impl Drop for MockAnthropic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(shared: &Shared, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Value {
    let body: Value = serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()));
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    lock(shared).requests.push(RecordedRequest {
        method: "POST".to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: body.clone(),
    });
    lock(shared).raw.push(raw.to_vec());
    body
}

async fn count_tokens(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body = record(&shared, &uri, &headers, &raw);
    axum::Json(json!({ "input_tokens": tokens::prompt_tokens(&body) })).into_response()
}

async fn messages(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body = record(&shared, &uri, &headers, &raw);
    let spec = {
        let mut s = lock(&shared);
        s.queue.pop_front().or_else(|| s.default.clone()).unwrap_or_default()
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let input_tokens = tokens::prompt_tokens(&body);
    if spec.delay_ms > 0 && !matches!(spec.reply, Reply::Hang) {
        tokio::time::sleep(Duration::from_millis(spec.delay_ms)).await;
    }
    match &spec.reply {
        Reply::Hang => std::future::pending().await,
        Reply::Error { status, body, retry_after } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = (status, axum::Json(body.clone())).into_response();
            if let Some(s) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*s));
            }
            spec.add_headers(r.headers_mut());
            r
        }
        Reply::Text { .. } | Reply::ToolCalls { .. } if stream => {
            stream_response(&spec, &model, input_tokens)
        }
        Reply::Text { .. } | Reply::ToolCalls { .. } => {
            axum::Json(message(&spec, &model, input_tokens)).into_response()
        }
    }
}

fn stop_reason(spec: &ReplySpec) -> &'static str {
    match (&spec.reply, spec.finish_reason.as_deref()) {
        (_, Some("length")) => "max_tokens",
        (Reply::ToolCalls { .. }, _) => "tool_use",
        _ => "end_turn",
    }
}

fn calls(spec: &ReplySpec) -> &[ToolCall] {
    match &spec.reply {
        Reply::ToolCalls { calls } => calls,
        _ => &[],
    }
}

fn message(spec: &ReplySpec, model: &str, input_tokens: u64) -> Value {
    let mut content = Vec::new();
    if let Some(r) = &spec.reasoning {
        content.push(json!({"type": "thinking", "thinking": r, "signature": "sig-mock-anthropic"}));
    }
    if let Reply::Text { text } = &spec.reply {
        content.push(json!({"type": "text", "text": text}));
    }
    for c in calls(spec) {
        let input: Value = serde_json::from_str(&c.arguments).unwrap_or(json!({}));
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
    }
    json!({
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(spec),
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": tokens::completion_tokens(spec)}
    })
}

fn event(kind: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

fn stream_response(spec: &ReplySpec, model: &str, input_tokens: u64) -> Response {
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    if let Some(r) = &spec.reasoning {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        for range in tokens::split(r, spec.chunks) {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": &r[range]}})));
        }
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig-mock-anthropic"}})));
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Reply::Text { text } = &spec.reply {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        events.push(event("ping", json!({"type": "ping"})));
        for range in tokens::split(text, spec.chunks) {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": &text[range]}})));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for c in calls(spec) {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}})));
        for range in tokens::split_arguments(&c.arguments, spec.chunks) {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": &c.arguments[range]}})));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(spec), "stop_sequence": null},
            "usage": {"output_tokens": tokens::completion_tokens(spec)}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));

    let interval = Duration::from_millis(spec.chunk_interval_ms);
    let cut = spec.cut_after_chunks;
    let stream =
        futures_util::stream::unfold((events.into_iter(), 0usize), move |(mut it, n)| async move {
            if cut.is_some_and(|c| n >= c) {
                // A pause so what was sent reaches the client, then an abrupt end.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Some((Err(std::io::Error::other("cut by the mock")), (it, n + 1)))
                    .filter(|_| n == cut.unwrap_or(usize::MAX));
            }
            let next = it.next()?;
            if n > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            Some((Ok::<_, std::io::Error>(next), (it, n + 1)))
        });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r
}
