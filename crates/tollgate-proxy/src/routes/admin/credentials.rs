//! `/credentials`: named provider credentials, handed over to [`crate::ops::credentials`].

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use super::{Admin, body};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::ops::Actor;
use crate::ops::credentials::{self as ops, CredentialChange, NewCredentialBody};
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(super) async fn create(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: NewCredentialBody = body(&b)?;
    ops::create(&state, &Actor::of(&p), b).await.map(Json)
}

pub(super) async fn list(State(state): State<AppState>, _: Admin) -> Answer {
    ops::list(&state).await.map(Json)
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Answer {
    ops::get(&state, &name).await.map(Json)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(name): Path<String>,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: CredentialChange = body(&b)?;
    ops::update(&state, &Actor::of(&p), &name, b).await.map(Json)
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(name): Path<String>,
) -> Answer {
    ops::delete(&state, &Actor::of(&p), &name).await.map(Json)
}
