//! `/v1/mcp/server*`: MCP servers at runtime, on LiteLLM's paths. Each handler parses and
//! hands over to [`crate::ops::mcp_servers`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::{Admin, MAX_FREE_FORM_BYTES};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::ops::Actor;
use crate::ops::mcp_servers as ops;
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

/// A server's body: a JSON object in config.yaml's shape, bounded as a whole (a credential
/// can be a long token, so strings are not bounded one by one).
fn entry_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.len() > MAX_FREE_FORM_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("An MCP server is at most {MAX_FREE_FORM_BYTES} bytes of JSON."),
        )
        .with_code("value_too_long"));
    }
    match tollgate_protocol::openai::parse_object(bytes)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::new(StatusCode::BAD_REQUEST, "The request body must be a JSON object.")
            .with_code("invalid_request")),
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b = entry_body(&b)?;
    ops::create(&state, &Actor::of(&p), b).await.map(Json)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b = entry_body(&b)?;
    ops::update(&state, &Actor::of(&p), b).await.map(Json)
}

pub(super) async fn list(State(state): State<AppState>, _: Admin) -> Json<Value> {
    Json(ops::list(&state))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Answer {
    ops::get(&state, &name).await.map(Json)
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(name): Path<String>,
) -> Answer {
    ops::delete(&state, &Actor::of(&p), &name).await.map(Json)
}

pub(super) async fn tools(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Answer {
    ops::tools(&state, &name).await.map(Json)
}
