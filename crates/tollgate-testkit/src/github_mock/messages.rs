//! `POST /v1/messages`: Copilot's native Anthropic Messages endpoint for Claude models, kept
//! minimal: one text block with the configured text, as JSON or as Anthropic's SSE events.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Json,
    extract::State as Extract,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};

use super::state::State;
use crate::openai_mock::tokens;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Answers with the configured text; usage counts words as the OpenAI engine does.
pub(super) async fn messages(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        let raw = Value::String(String::from_utf8_lossy(&body).into_owned());
        state.engine.record(&method, &uri, &headers, raw);
        return invalid_request("the request body is not valid JSON");
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let input_tokens = input_tokens(&body);
    state.engine.record(&method, &uri, &headers, body);
    let _busy = state.engine.busy();

    let text = state.lock().messages_text.clone();
    let output_tokens = tokens::words(&text).max(1);
    let id = format!("msg_mock{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    if !stream {
        return Json(json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }))
        .into_response();
    }

    let mut events = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            }}),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for range in tokens::split(&text, None) {
        events.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta",
            "index": 0, "delta": {"type": "text_delta", "text": &text[range]}}),
        ));
    }
    events.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        events.concat(),
    )
        .into_response()
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The words of `system` and of every message's text, plus 3 per message.
fn input_tokens(body: &Value) -> u64 {
    let system = match body.get("system") {
        Some(Value::String(text)) => tokens::words(text),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(tokens::words)
            .sum(),
        _ => 0,
    };
    system + tokens::prompt_tokens(body)
}

fn invalid_request(message: &str) -> Response {
    let body =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}
