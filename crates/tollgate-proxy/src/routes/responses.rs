//! `POST /v1/responses`: OpenAI's Responses API, for the Codex CLI and `client.responses`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use tollgate_protocol::openai::parse_object;
use tollgate_protocol::responses::validate_responses_request;
use tollgate_protocol::{Operation, Protocol};

use super::{RequestId, respond};
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::extract::ModelCaller;
use crate::relay::{Call, denied, forward};
use crate::state::AppState;

pub(super) async fn responses(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    body: PendingBody,
) -> Response {
    match caller {
        Ok(caller) => respond(handle(&state, request_id, caller, body).await),
        Err(d) => denied(&state, "responses", &request_id, body, d).await,
    }
}

async fn handle(
    state: &AppState,
    request_id: RequestId,
    caller: Principal,
    body: PendingBody,
) -> Result<Response, ApiError> {
    let raw = body.read().await?;
    let body = parse_object(&raw)?;
    let summary = validate_responses_request(&body)?;
    let call = Call {
        api: "responses",
        operation: Operation::Generate(Protocol::Responses),
        model: summary.model,
        body,
        raw,
        anthropic_version: None,
        anthropic_beta: Vec::new(),
        stream: summary.stream,
        // A Responses stream always ends with the whole response, usage included.
        include_usage: true,
        request_id,
        caller,
        initiator_user: summary.last_is_user_text,
        vision: summary.has_images,
        claude_token: None,
        has_thinking: false,
    };
    Ok(forward(state, call).await)
}
