//! `POST /chat/completions` and `POST /responses` as Copilot serves them: a model the catalog
//! lists is answered only on the endpoints its `supported_endpoints` names, with the 400
//! Copilot gives otherwise; models the catalog does not list, or lists without
//! `supported_endpoints`, are answered anywhere. The answer itself is the OpenAI engine's.

use std::sync::Arc;

use axum::{
    Json,
    extract::State as Extract,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};

use super::state::State;
use crate::openai_mock::{chat_completions, create_response};

/// The `supported_endpoints` entry of chat completions.
pub const CHAT_ENDPOINT: &str = "/chat/completions";
/// The `supported_endpoints` entry of the Responses API.
pub const RESPONSES_ENDPOINT: &str = "/responses";

/// Chat completions, refused for models the catalog serves elsewhere.
pub(super) async fn chat(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(model) = unsupported(&state, &body, CHAT_ENDPOINT) {
        let message =
            format!("model \"{model}\" is not accessible via the /chat/completions endpoint");
        return refuse(&state, &method, &uri, &headers, &body, &message);
    }
    chat_completions(axum::extract::State(Arc::clone(&state.engine)), method, uri, headers, body)
        .await
}

/// The Responses API, refused for models the catalog does not serve on it.
pub(super) async fn responses(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(model) = unsupported(&state, &body, RESPONSES_ENDPOINT) {
        // As reported by Copilot users; unlike the chat refusal it does not quote the model.
        let message = format!("model {model} is not supported via Responses API.");
        return refuse(&state, &method, &uri, &headers, &body, &message);
    }
    create_response(axum::extract::State(Arc::clone(&state.engine)), method, uri, headers, body)
        .await
}

/// The requested model, when the catalog lists it with endpoints that leave `endpoint` out.
fn unsupported(state: &State, body: &Bytes, endpoint: &str) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let model = body.get("model")?.as_str()?;
    let models = Arc::clone(&state.lock().models);
    let entry = models.iter().find(|m| m.get("id").and_then(Value::as_str) == Some(model))?;
    let endpoints = entry.get("supported_endpoints")?.as_array()?;
    let served = endpoints.iter().any(|e| e.as_str() == Some(endpoint));
    (!served).then(|| model.to_owned())
}

/// Records the call and answers Copilot's `unsupported_api_for_model`.
fn refuse(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    message: &str,
) -> Response {
    let recorded = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    state.engine.record(method, uri, headers, recorded);
    let error = json!({"error": {"message": message, "code": "unsupported_api_for_model"}});
    (StatusCode::BAD_REQUEST, Json(error)).into_response()
}
