//! `/__mock/*`: drive the mock over HTTP from tests that are not written in Rust.
//! These calls are never recorded and never take a reply from the queue.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{RecordedRequest, ReplySpec, Shared};

/// `POST /__mock/enqueue`: appends a reply; answers `{"queued": n}`.
pub(super) async fn enqueue(
    State(shared): State<Arc<Shared>>,
    Json(spec): Json<ReplySpec>,
) -> Response {
    let queued = shared.enqueue(spec);
    Json(json!({"queued": queued})).into_response()
}

/// `POST /__mock/default`: replaces the reply used when the queue is empty.
pub(super) async fn set_default(
    State(shared): State<Arc<Shared>>,
    Json(spec): Json<ReplySpec>,
) -> StatusCode {
    shared.set_default(spec);
    StatusCode::NO_CONTENT
}

/// `POST /__mock/models`: replaces the model ids listed by `/v1/models`.
pub(super) async fn set_models(
    State(shared): State<Arc<Shared>>,
    Json(models): Json<Vec<String>>,
) -> StatusCode {
    shared.set_models(models);
    StatusCode::NO_CONTENT
}

/// `GET /__mock/requests`: the recorded requests, oldest first.
pub(super) async fn requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RecordedRequest>> {
    Json(shared.requests())
}

/// `POST /__mock/reset`: back to the state the mock started in.
pub(super) async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}
