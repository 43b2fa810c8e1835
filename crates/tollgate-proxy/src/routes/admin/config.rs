//! `POST /config/reload`: re-reads config.yaml, as SIGHUP and `tollgate reload` do.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::Admin;
use crate::error::ApiError;
use crate::ops::Actor;
use crate::state::AppState;

pub(super) async fn reload(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<Value>, ApiError> {
    let answer = crate::ops::reload_config(&state, &Actor::of(&p)).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("config.yaml not reloaded: {e}"))
            .with_code("invalid_config")
    })?;
    Ok(Json(answer))
}
