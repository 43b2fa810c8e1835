//! The Copilot API under the base URL the token exchange hands out: a guard that checks the
//! Copilot token and editor headers and serves enqueued errors, `/models`, and the router
//! that puts them together with the OpenAI engine's chat, responses and embeddings handlers.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::{Request, State as Extract},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::{endpoints, messages, state::State};
use crate::openai_mock::{Shared, embeddings};

/// Large enough for image-bearing requests.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The Copilot API routes, relative to the API base.
pub(super) fn router(state: &Arc<State>, engine: &Arc<Shared>) -> Router {
    let engine_routes =
        Router::new().route("/embeddings", post(embeddings)).with_state(Arc::clone(engine));
    let own_routes = Router::new()
        .route("/chat/completions", post(endpoints::chat))
        .route("/responses", post(endpoints::responses))
        .route("/models", get(models))
        .route("/v1/messages", post(messages::messages))
        .with_state(Arc::clone(state));
    engine_routes.merge(own_routes).layer(middleware::from_fn_with_state(Arc::clone(state), guard))
}

/// Runs before every API call: a valid Copilot token, then (when required) the editor
/// headers, then the next enqueued error for model calls. A rejected call is recorded here;
/// an accepted one by its handler.
async fn guard(Extract(state): Extract<Arc<State>>, request: Request, next: Next) -> Response {
    let rejection = {
        let mut inner = state.lock();
        let token = bearer(request.headers());
        if !token.is_some_and(|t| inner.token_valid(t)) {
            Some(unauthorized())
        } else if inner.require_editor_headers && !request.headers().contains_key("editor-version")
        {
            // What Copilot answers calls that do not identify an editor integration.
            Some(
                (
                    StatusCode::BAD_REQUEST,
                    "bad request: missing Editor-Version header for IDE auth",
                )
                    .into_response(),
            )
        } else if request.method() == Method::POST {
            inner.errors.pop_front().map(|(status, body)| error_response(status, body))
        } else {
            None
        }
    };
    let Some(response) = rejection else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        if bytes.is_empty() {
            Value::Null
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        }
    });
    state.engine.record(&parts.method, &parts.uri, &parts.headers, body);
    response
}

/// `GET /models`: the configured catalog.
async fn models(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.engine.record(&method, &uri, &headers, Value::Null);
    let (models, delay) = {
        let inner = state.lock();
        (Arc::clone(&inner.models), inner.models_delay)
    };
    // Outside the lock: a slow catalog must not hold up the rest of the stand-in.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Json(json!({"object": "list", "data": &*models})).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn unauthorized() -> Response {
    let body = json!({"error": {"message": "unauthorized: token expired", "code": "unauthorized"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// `status` with `body`: JSON, or `text/plain` when `body` is a JSON string.
fn error_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        Value::String(text) => {
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(text))
                .into_response()
        }
        other => (status, Json(other)).into_response(),
    }
}
