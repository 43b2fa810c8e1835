//! `POST /v1/messages/count_tokens`: forwarded to Anthropic-format upstreams, which count
//! exactly; estimated here with OpenAI's `o200k_base` tokenizer for everything else.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tollgate_protocol::json_edit::set_top_level;
use tollgate_protocol::openai::parse_object;
use tollgate_providers::{CallContext, Endpoint, Wire};

use super::RequestId;
use super::messages::anthropic_headers;
use crate::auth::{Caller, Principal};
use crate::body::LimitedBody;
use crate::error::{ApiError, Protocol};
use crate::state::AppState;

/// Tokens an image is counted as when estimating: Anthropic's figure for a ~1.2-megapixel
/// picture, the size clients usually send.
const IMAGE_TOKENS: u64 = 1600;

pub(super) async fn count_tokens(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Caller(caller): Caller,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Response {
    match handle(&state, request_id, caller, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.in_protocol(Protocol::Anthropic).into_response(),
    }
}

async fn handle(
    state: &AppState,
    request_id: String,
    caller: Principal,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object(&raw)?;
    let Some(model) = body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) else {
        return Err(tollgate_protocol::RequestError::invalid_param(
            "model",
            "Missing required parameter: 'model'.",
        )
        .into());
    };
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(tollgate_protocol::RequestError::invalid_param(
            "messages",
            "Missing required parameter: 'messages'.",
        )
        .into());
    }
    let router = state.router();
    let mut plan = router
        .plan(model)
        .ok_or_else(|| ApiError::unknown_model(model, router.catalog().model_names()))?;
    let step = plan
        .first(std::time::Instant::now())
        .ok_or_else(|| ApiError::unknown_model(model, router.catalog().model_names()))?;
    let entry = &step.deployment.entry;
    let upstream_model = step.route.upstream_model(&step.deployment);
    let owner = caller.copilot_owner();
    let wire = state
        .providers()
        .terms(entry, Endpoint::Messages, &upstream_model, owner.as_deref())
        .await
        .wire;
    if wire == Wire::Anthropic && entry.provider == tollgate_config::ProviderKind::Anthropic {
        let (anthropic_version, anthropic_beta) = anthropic_headers(headers);
        let model_json = serde_json::to_string(&upstream_model).unwrap_or_default();
        let forwarded = set_top_level(&raw, "model", &model_json).map(Bytes::from).unwrap_or(raw);
        let ctx = CallContext {
            request_id,
            anthropic_version,
            anthropic_beta,
            account_owner: owner,
            ..Default::default()
        };
        let timeout = entry.timeout.unwrap_or(state.settings().request_timeout);
        let upstream = state
            .providers()
            .send(entry, Endpoint::CountTokens, forwarded, &ctx, timeout)
            .await
            .map_err(|e| ApiError::from(e).from_protocol(Protocol::Anthropic))?;
        let status = upstream.status();
        let bytes = upstream.bytes().await.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "The upstream answer could not be read.",
            )
        })?;
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let tokens = estimate(&body, &|text| {
        tiktoken_rs::o200k_base_singleton().encode_with_special_tokens(text).len()
    });
    let mut response = axum::Json(json!({ "input_tokens": tokens })).into_response();
    response
        .headers_mut()
        .insert("x-tollgate-token-count", axum::http::HeaderValue::from_static("estimated"));
    Ok(response)
}

/// Estimates the input tokens of an Anthropic request: every text the model reads (system,
/// messages, tool calls and results, tool definitions) counted with `count`, plus the
/// framing OpenAI charges per message, and a flat figure per image.
pub fn estimate(body: &Value, count: &dyn Fn(&str) -> usize) -> u64 {
    let mut total: u64 = 3;
    let mut text = |s: &str| total += count(s) as u64;
    match body.get("system") {
        Some(Value::String(s)) => text(s),
        Some(Value::Array(blocks)) => {
            blocks.iter().filter_map(|b| b["text"].as_str()).for_each(&mut text)
        }
        _ => {}
    }
    let mut images = 0u64;
    let mut messages = 0u64;
    for m in body["messages"].as_array().into_iter().flatten() {
        messages += 1;
        match &m["content"] {
            Value::String(s) => text(s),
            Value::Array(blocks) => {
                for b in blocks {
                    match b["type"].as_str() {
                        Some("text") => text(b["text"].as_str().unwrap_or_default()),
                        Some("image") => images += 1,
                        Some("tool_use") => {
                            text(b["name"].as_str().unwrap_or_default());
                            text(&b["input"].to_string());
                        }
                        Some("tool_result") => match &b["content"] {
                            Value::String(s) => text(s),
                            Value::Array(parts) => {
                                for p in parts {
                                    if p["type"] == "image" {
                                        images += 1;
                                    } else if let Some(s) = p["text"].as_str() {
                                        text(s);
                                    }
                                }
                            }
                            _ => {}
                        },
                        Some("thinking") => text(b["thinking"].as_str().unwrap_or_default()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        text(tool["name"].as_str().unwrap_or_default());
        text(tool["description"].as_str().unwrap_or_default());
        if let Some(schema) = tool.get("input_schema") {
            text(&schema.to_string());
        }
    }
    total + messages * 3 + images * IMAGE_TOKENS
}
