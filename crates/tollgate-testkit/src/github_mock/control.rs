//! `/__mock/*` for the Copilot API, for tests that drive the stand-in from outside the process
//! (`tollgate-mock --github`). These calls are never recorded and need no token.

use std::sync::Arc;

use axum::{
    Json,
    extract::State as Extract,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::State;
use crate::ReplySpec;

/// `POST /__mock/models`: an array replaces the `/models` catalog; one object is added, or
/// replaces the entry with its `id`. Answers `{"models": n}`.
pub(super) async fn models(
    Extract(state): Extract<Arc<State>>,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = state.lock();
    match body {
        Value::Array(models) => inner.models = models.into(),
        model @ Value::Object(_) => inner.add_model(model),
        _ => {
            let error = json!({"error": "a model object or an array of them"});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    }
    Json(json!({"models": inner.models.len()})).into_response()
}

/// `POST /__mock/enqueue`: queues a reply for chat, responses and embeddings, as
/// [`crate::MockGitHub::enqueue`]. Answers `{"queued": n}`.
pub(super) async fn enqueue(
    Extract(state): Extract<Arc<State>>,
    Json(spec): Json<ReplySpec>,
) -> Response {
    let queued = state.engine.enqueue(spec);
    Json(json!({"queued": queued})).into_response()
}

/// The body of `POST /__mock/error`.
#[derive(Debug, Deserialize)]
pub(super) struct QueuedError {
    status: u16,
    body: Value,
}

/// `POST /__mock/error` `{"status": 402, "body": {...}}`: queues an error for the next model
/// call, as [`crate::MockGitHub::enqueue_error`].
pub(super) async fn error(
    Extract(state): Extract<Arc<State>>,
    Json(queued): Json<QueuedError>,
) -> StatusCode {
    state.lock().errors.push_back((queued.status, queued.body));
    StatusCode::NO_CONTENT
}

/// `GET /__mock/requests`: the recorded Copilot API calls, oldest first, as
/// [`crate::MockGitHub::requests`].
pub(super) async fn requests(
    Extract(state): Extract<Arc<State>>,
) -> Json<Vec<crate::RecordedRequest>> {
    Json(state.engine.requests())
}
