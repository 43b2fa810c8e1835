//! `POST /v1/embeddings`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use tollgate_protocol::openai::{parse_object, validate_embeddings_request};
use tollgate_providers::Endpoint;

use super::{RequestId, respond};
use crate::auth::{Caller, Principal};
use crate::body::LimitedBody;
use crate::error::{ApiError, Protocol};
use crate::relay::{Call, forward};
use crate::state::AppState;

pub(super) async fn embeddings(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Caller(caller): Caller,
    LimitedBody(body): LimitedBody,
) -> Response {
    respond(handle(&state, request_id, caller, body).await)
}

async fn handle(
    state: &AppState,
    request_id: RequestId,
    caller: Principal,
    raw: bytes::Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object(&raw)?;
    let summary = validate_embeddings_request(&body)?;
    let call = Call {
        api: "embeddings",
        endpoint: Endpoint::Embeddings,
        model: summary.model,
        body,
        raw,
        anthropic_version: None,
        anthropic_beta: Vec::new(),
        stream: false,
        include_usage: false,
        request_id,
        caller,
        protocol: Protocol::OpenAi,
        initiator_user: true,
        vision: false,
        claude_token: None,
        has_thinking: false,
    };
    Ok(forward(state, call).await)
}
