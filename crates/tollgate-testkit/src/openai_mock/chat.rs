//! `POST /v1/chat/completions`, and the reply handling every endpoint shares.

use std::{io, sync::Arc, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{
    Shared,
    reply::{Meta, Reply, ReplySpec},
    stream, tokens,
};

/// Answers a chat completion with the next programmed reply.
pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(body) = parse_body(&shared, &method, &uri, &headers, &body) else {
        return invalid_request("the request body is not valid JSON");
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage =
        body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let prompt_tokens = tokens::prompt_tokens(&body);
    shared.record(&method, &uri, &headers, body);

    // Until the response head is ready: the delay and error replies are inside it.
    let _busy = shared.busy();
    let spec = shared.next_reply();
    if let Some(response) = unless_success(&shared, &spec).await {
        return response;
    }
    let meta = Meta {
        id: shared.completion_id(),
        created: unix_now(),
        model,
        include_usage,
        prompt_tokens,
    };
    if stream {
        stream::response(spec, meta, shared.shutdown.clone())
    } else {
        complete(&spec, &meta)
    }
}

/// Parses a JSON request body; records the request as raw text when it is not JSON.
pub(super) fn parse_body(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Value> {
    match serde_json::from_slice(body) {
        Ok(value) => Some(value),
        Err(_) => {
            let raw = Value::String(String::from_utf8_lossy(body).into_owned());
            shared.record(method, uri, headers, raw);
            None
        }
    }
}

/// Applies the delay, then answers error and hang replies; `None` means "send the success".
pub(super) async fn unless_success(shared: &Shared, spec: &ReplySpec) -> Option<Response> {
    if let Reply::Hang = spec.reply {
        let mut shutdown = shared.shutdown.clone();
        // The client giving up drops this future; only a shutdown ends it from our side.
        let _ = shutdown.wait_for(|stopped| *stopped).await;
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    if spec.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(spec.delay_ms)).await;
    }
    let Reply::Error { status, body, retry_after } = &spec.reply else {
        return None;
    };
    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Value::String(text) => {
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.clone())
                .into_response()
        }
        other => (status, Json(other.clone())).into_response(),
    };
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
    }
    spec.add_headers(response.headers_mut());
    Some(response)
}

/// A 200 JSON response, or, when the spec cuts, one that dies halfway through the body.
pub(super) fn json_response(spec: &ReplySpec, value: &Value) -> Response {
    if spec.cut_after_chunks.is_none() {
        return Json(value).into_response();
    }
    let mut bytes = match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let half = bytes.split_to(bytes.len() / 2);
    // State: the half still to send, then the cut, then the end.
    let parts = futures_util::stream::unfold(Some(Some(half)), |state| async move {
        match state? {
            Some(half) => Some((Ok(half), Some(None))),
            None => {
                // Pending once so hyper flushes the half before the error drops the connection.
                tokio::task::yield_now().await;
                let cut = io::Error::new(io::ErrorKind::ConnectionAborted, "mock upstream: cut");
                Some((Err(cut), None))
            }
        }
    });
    let body = Body::from_stream(parts);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn complete(spec: &ReplySpec, meta: &Meta) -> Response {
    let mut message = json!({"role": "assistant", "content": null, "refusal": null});
    match &spec.reply {
        Reply::Text { text } => message["content"] = json!(text),
        Reply::ToolCalls { calls } => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        Reply::Error { .. } | Reply::Hang => {}
    }
    if let Some(reasoning) = &spec.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    let value = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": stream::finish_reason(spec),
        }],
        "usage": tokens::usage(spec, meta.prompt_tokens),
    });
    json_response(spec, &value)
}

/// A 400 in OpenAI's error shape.
pub(super) fn invalid_request(message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": null,
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
