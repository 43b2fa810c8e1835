//! `POST /v1/chat/completions`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use tollgate_protocol::openai::{parse_object, validate_chat_request};
use tollgate_protocol::{Operation, Protocol};

use super::mcp::model_tools::{self, McpServersHeader};
use super::{RequestId, respond};
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::extract::ModelCaller;
use crate::relay::{Call, denied, forward};
use crate::state::AppState;

pub(super) async fn chat_completions(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    servers: McpServersHeader,
    body: PendingBody,
) -> Response {
    match caller {
        Ok(caller) => respond(handle(&state, request_id, caller, &servers, body).await),
        Err(d) => denied(&state, "chat_completions", &request_id, body, d).await,
    }
}

async fn handle(
    state: &AppState,
    request_id: RequestId,
    caller: Principal,
    servers: &McpServersHeader,
    body: PendingBody,
) -> Result<Response, ApiError> {
    let raw = body.read().await?;
    let body = parse_object(&raw)?;
    let summary = validate_chat_request(&body)?;
    let call = Call {
        api: "chat_completions",
        operation: Operation::Generate(Protocol::Chat),
        model: summary.model,
        body,
        raw,
        anthropic_version: None,
        anthropic_beta: Vec::new(),
        stream: summary.stream,
        include_usage: summary.include_usage,
        request_id,
        caller,
        initiator_user: summary.last_is_user_text,
        vision: summary.has_images,
        claude_token: None,
        has_thinking: false,
    };
    if model_tools::has_mcp_tools(&call.body) {
        return model_tools::answer(state, call, servers).await;
    }
    Ok(forward(state, call).await)
}
