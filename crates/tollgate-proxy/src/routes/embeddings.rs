//! `POST /v1/embeddings`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
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
    let call = Call::embeddings(summary.model, body, raw, request_id, caller);
    Ok(forward(state, call).await)
}
