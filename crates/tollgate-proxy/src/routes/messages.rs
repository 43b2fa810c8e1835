//! `POST /v1/messages`: Anthropic's Messages API, for Claude Code and the `anthropic` SDK.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use tollgate_protocol::anthropic::validate_messages_request;
use tollgate_protocol::openai::parse_object;
use tollgate_protocol::{Operation, Protocol};

use super::mcp::model_tools;
use super::{RequestId, respond};
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::extract::ModelCaller;
use crate::relay::{Call, denied, forward};
use crate::state::AppState;

pub(super) async fn messages(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    headers: HeaderMap,
    body: PendingBody,
) -> Response {
    match caller {
        Ok(caller) => respond(handle(&state, request_id, caller, &headers, body).await),
        Err(d) => denied(&state, "messages", &request_id, body, d).await,
    }
}

/// The client's `anthropic-version` and `anthropic-beta` headers, forwarded as sent to
/// Anthropic-format upstreams.
pub(super) fn anthropic_headers(headers: &HeaderMap) -> (Option<String>, Vec<String>) {
    let version = headers.get("anthropic-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let betas = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect();
    (version, betas)
}

/// The client's own Claude token when pass-through applies: `CLAUDE_TOKEN_MODE=passthrough`,
/// or `x-claude-token-mode: passthrough` on the request (`rotate` turns it off).
pub(super) fn passthrough_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let asked = headers.get("x-claude-token-mode").and_then(|v| v.to_str().ok()).map(str::trim);
    let on = match asked {
        Some(m) if m.eq_ignore_ascii_case("passthrough") => true,
        Some(m) if m.eq_ignore_ascii_case("rotate") => false,
        _ => state.settings().claude_passthrough,
    };
    if on { crate::auth::claude_token(headers).map(str::to_owned) } else { None }
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
    let summary = validate_messages_request(&body)?;
    let (anthropic_version, anthropic_beta) = anthropic_headers(headers);
    let call = Call {
        api: "messages",
        operation: Operation::Generate(Protocol::Messages),
        model: summary.model,
        body,
        raw,
        anthropic_version,
        anthropic_beta,
        stream: summary.stream,
        // Anthropic streams always end with their usage.
        include_usage: true,
        request_id,
        caller,
        initiator_user: summary.last_is_user_text,
        vision: summary.has_images,
        claude_token: passthrough_token(state, headers),
        has_thinking: summary.has_thinking_blocks,
    };
    if model_tools::has_mcp_tools(&call.body) {
        return model_tools::answer(state, call, &model_tools::McpServersHeader::of(headers)).await;
    }
    Ok(forward(state, call).await)
}
