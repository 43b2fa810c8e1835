//! `/model/*`, `/model_group/info`, `/health/test_connection`: models at runtime, in LiteLLM's
//! paths and shapes. Each handler parses and hands over to [`crate::ops::models`].

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;

use super::{Admin, bad, body};
use crate::access::Access;
use crate::auth::Principal;
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::{Caller, Query};
use crate::ops::Actor;
use crate::ops::models::{self as ops, Merge, ModelChange, NewModelBody, TestConnection};
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(super) async fn new(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: NewModelBody = body(&b)?;
    ops::create(&state, &Actor::of(&p), b).await.map(Json)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: ModelChange = body(&b)?;
    let id = b
        .model_info
        .as_ref()
        .and_then(|i| i.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad("model_info.id", "names the model to update and is required"))?;
    ops::update(&state, &Actor::of(&p), &id, b, Merge::Replace).await.map(Json)
}

pub(super) async fn patch(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: ModelChange = body(&b)?;
    ops::update(&state, &Actor::of(&p), &id, b, Merge::Patch).await.map(Json)
}

#[derive(Debug, Deserialize)]
struct DeleteBody {
    id: String,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: DeleteBody = body(&b)?;
    ops::delete(&state, &Actor::of(&p), &b.id).await.map(Json)
}

#[derive(Debug, Deserialize)]
pub(super) struct InfoQuery {
    #[serde(default)]
    litellm_model_id: Option<String>,
}

/// Which model names a caller may see: every one for the admin, those its key may use else.
fn visibility(state: &AppState, caller: &Principal) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
    if caller.is_admin(state.directory()) {
        return Box::new(|_| true);
    }
    let Some(key) = caller.key() else { return Box::new(|_| true) };
    let access = Access::of(state.directory(), key);
    let router = state.router();
    Box::new(move |name| router.catalog().resolve(name).is_some_and(|r| access.allows(&r)))
}

pub(super) async fn info(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<InfoQuery>,
) -> Json<Value> {
    let visible = visibility(&state, &caller);
    Json(ops::info(&state, &*visible, q.litellm_model_id.as_deref()).await)
}

pub(super) async fn group_info(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Json<Value> {
    let visible = visibility(&state, &caller);
    Json(ops::group_info(&state, &*visible).await)
}

pub(super) async fn test_connection(
    State(state): State<AppState>,
    _: Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: TestConnection = body(&b)?;
    ops::test_connection(&state, b).await.map(Json)
}
