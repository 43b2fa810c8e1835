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
use tollgate_providers::{CallContext, Endpoint};

use super::RequestId;
use super::messages::{anthropic_headers, passthrough_token};
use crate::access::Access;
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::{ApiError, Protocol};
use crate::extract::ModelCaller;
use crate::metrics::RequestLabels;
use crate::record::{Outcome, RecordGuard, Refusal, RequestRecord};
use crate::relay::{Accounted, denied};
use crate::state::AppState;

const API: &str = "count_tokens";

/// Tokens an image is counted as when estimating: Anthropic's figure for a ~1.2-megapixel
/// picture, the size clients usually send.
const IMAGE_TOKENS: u64 = 1600;

pub(super) async fn count_tokens(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    headers: HeaderMap,
    body: PendingBody,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(d) => return denied(&state, API, Protocol::Anthropic, &request_id, body, d).await,
    };
    match handle(&state, request_id, caller, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.in_protocol(Protocol::Anthropic).into_response(),
    }
}

async fn handle(
    state: &AppState,
    request_id: RequestId,
    caller: Principal,
    headers: &HeaderMap,
    body: PendingBody,
) -> Result<Response, ApiError> {
    let raw = body.read().await?;
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
    let unknown = || ApiError::unknown_model(model, router.catalog().model_names());
    let mut plan = router.plan(model).ok_or_else(unknown)?;
    // The same model access as the request it is counting for; counting costs nothing, so
    // budgets and rate limits are left alone.
    if let Some(key) = caller.key() {
        let access = Access::of(state.directory(), key);
        let primary = &plan.routes()[0];
        if let Err(e) = access.check_model(primary) {
            let refusal = Refusal {
                request_id: &request_id,
                api: API,
                requested_model: model,
                model_group: &primary.group.name,
                key: Some(key),
                stream: false,
                started_at: chrono::Utc::now(),
            };
            refusal.record(state.sink(), &e);
            return Err(e);
        }
        plan.restrict(move |route| access.allows(route));
    }
    let started = std::time::Instant::now();
    let step = plan.first(started).ok_or_else(unknown)?;
    let entry = &step.deployment.entry;
    let upstream_model = step.route.upstream_model(&step.deployment);
    let record = RequestRecord {
        request_id: request_id.clone(),
        labels: RequestLabels {
            api: API,
            model_group: step.route.group.shared_name(),
            deployment: step.deployment.shared_label(),
        },
        requested_model: model.to_owned(),
        served_model: step.route.served_model(&step.deployment),
        provider: entry.provider.prefix(),
        stream: false,
        started,
        started_at: chrono::Utc::now(),
        ttft: None,
        usage: Default::default(),
        price: None,
        key: caller.key().cloned(),
        admitted: None,
        request_body: None,
        response_body: None,
        transcript: None,
        attempts: Vec::new(),
        premium_units: 0.0,
        slot: None,
        // Counting is not spend: metrics and the log line, no spend record.
        sink: None,
    };
    if entry.provider == tollgate_config::ProviderKind::Anthropic {
        let (anthropic_version, anthropic_beta) = anthropic_headers(headers);
        let model_json = serde_json::to_string(&upstream_model).unwrap_or_default();
        let forwarded = set_top_level(&raw, "model", &model_json)
            .map(Bytes::from)
            .unwrap_or_else(|| raw.clone());
        let claude_token = passthrough_token(state, headers);
        let ctx = CallContext {
            request_id: request_id.shown().to_owned(),
            anthropic_version,
            anthropic_beta,
            credential: crate::relay::passthrough_credential(claude_token.as_deref(), entry),
            account_owner: caller.copilot_owner(),
            ..Default::default()
        };
        let timeout = entry.timeout.unwrap_or(state.settings().request_timeout);
        let sent =
            state.providers().send(entry, Endpoint::CountTokens, forwarded, &ctx, timeout).await;
        match counted_upstream(sent).await {
            Ok((status, bytes)) => {
                RecordGuard::new(record).finish(status.as_u16(), Outcome::Success);
                let mut response = (status, bytes).into_response();
                response.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                response.extensions_mut().insert(Accounted);
                return Ok(response);
            }
            Err(Counted::Refused(e)) => {
                let e = e.from_protocol(Protocol::Anthropic);
                RecordGuard::new(record)
                    .finish(e.status().as_u16(), Outcome::UpstreamFailed("status_4xx"));
                return Err(e);
            }
            // The upstream cannot count now; an estimate serves the client better than an error.
            Err(Counted::Unavailable(reason)) => {
                record.labels.record_upstream_error(reason);
                tracing::debug!(reason, "count_tokens upstream unavailable; estimating");
            }
        }
    }
    let tokens = estimate(&body, &count_text);
    RecordGuard::new(record).finish(200, Outcome::Success);
    let mut response = axum::Json(json!({ "input_tokens": tokens })).into_response();
    response
        .headers_mut()
        .insert("x-tollgate-token-count", axum::http::HeaderValue::from_static("estimated"));
    response.extensions_mut().insert(Accounted);
    Ok(response)
}

/// What an Anthropic-format upstream made of a count.
enum Counted {
    /// It refused the request (4xx): the client hears it in the upstream's words.
    Refused(ApiError),
    /// It could not be reached or failed; the reason for metrics.
    Unavailable(&'static str),
}

async fn counted_upstream(
    sent: Result<reqwest::Response, tollgate_providers::UpstreamError>,
) -> Result<(axum::http::StatusCode, Bytes), Counted> {
    use tollgate_providers::UpstreamError;
    let upstream = match sent {
        Ok(r) => r,
        Err(e @ UpstreamError::Status { status: 400..=428 | 430..=499, .. }) => {
            return Err(Counted::Refused(ApiError::from(e)));
        }
        Err(e) => return Err(Counted::Unavailable(e.reason())),
    };
    let status = upstream.status();
    let bytes = upstream.bytes().await.map_err(|_| Counted::Unavailable("io"))?;
    match tollgate_protocol::json_edit::object::<serde::de::IgnoredAny>(&bytes) {
        Ok(_) => Ok((status, bytes)),
        Err(_) => Err(Counted::Unavailable("invalid_response")),
    }
}

/// Tokens of one text with OpenAI's `o200k_base`, in pieces so that a huge text never needs
/// the tokenizer's working memory for all of it at once.
fn count_text(text: &str) -> usize {
    const PIECE: usize = 64 * 1024;
    let bpe = tiktoken_rs::o200k_base_singleton();
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        // Cut at white space (tokens rarely span it) on a character boundary.
        if end < rest.len() {
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            if let Some(space) = rest[..end].rfind(char::is_whitespace).filter(|i| *i > 0) {
                end = space;
            }
        }
        total += bpe.encode_with_special_tokens(&rest[..end]).len();
        rest = &rest[end..];
    }
    total
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
