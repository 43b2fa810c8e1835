//! `POST /v1/embeddings`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use tollgate_protocol::Operation;
use tollgate_protocol::openai::{parse_object, validate_embeddings_request};

use super::{RequestId, respond};
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::extract::ModelCaller;
use crate::relay::{Call, denied, forward};
use crate::state::AppState;

pub(super) async fn embeddings(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    body: PendingBody,
) -> Response {
    match caller {
        Ok(caller) => respond(handle(&state, request_id, caller, body).await),
        Err(d) => denied(&state, "embeddings", &request_id, body, d).await,
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
    let summary = validate_embeddings_request(&body)?;
    let call = Call {
        api: "embeddings",
        operation: Operation::Embeddings,
        model: summary.model,
        body,
        raw,
        anthropic_version: None,
        anthropic_beta: Vec::new(),
        stream: false,
        include_usage: false,
        request_id,
        caller,
        initiator_user: true,
        vision: false,
        claude_token: None,
        has_thinking: false,
    };
    Ok(forward(state, call).await)
}
