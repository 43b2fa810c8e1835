//! The proxy's HTTP surface.

pub mod admin;
mod chat;
pub mod count_tokens;
mod embeddings;
mod health;
mod messages;
mod models;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tollgate_guard::{LocalHostsOnly, LocalNames, SameOriginOnly};

use crate::error::{ApiError, Protocol};
use crate::guard;
use crate::relay::Accounted;
use crate::state::AppState;

/// The request id of the current request, from `x-request-id` when the client sent a usable
/// one, else generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The proxy's router with every route and the request middleware.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(messages::messages))
        .route("/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(count_tokens::count_tokens))
        .route("/messages/count_tokens", post(count_tokens::count_tokens))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/models/{*model}", get(models::get))
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/liveness", get(health::liveliness))
        .route("/health/readiness", get(health::readiness))
        .route("/metrics", get(health::metrics))
        .route("/copilot/quota", get(health::copilot_quota))
        .route("/", get(health::root).head(health::root_head))
        .merge(admin::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = if state.auth().is_open() {
        // Every caller on this machine is the admin and spends the shared Copilot quota: no
        // page of another site may call any route, nor a page on a name rebound to 127.0.0.1.
        let names = LocalNames::of_this_machine(state.settings().host.as_deref());
        routes.layer(guard::layer(SameOriginOnly)).layer(guard::layer(LocalHostsOnly::new(names)))
    } else {
        routes
    };
    routes.layer(middleware::from_fn_with_state(state.clone(), track)).with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No route for {} {}.", req.method(), req.uri().path()),
    )
    .with_code("not_found")
    .in_protocol(Protocol::for_path(req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}.", req.method(), req.uri().path()),
    )
    .with_code("method_not_allowed")
    .in_protocol(Protocol::for_path(req.uri().path()))
}

/// A UUIDv7 (time-ordered) request id. Its random part comes from the thread-local CSPRNG
/// rather than a `getrandom` system call per request, which `Uuid::now_v7` makes.
fn new_request_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string()
}

/// Assigns the request id, counts the request, and writes its log line unless its record
/// already did.
async fn track(State(_): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));

    let mut response = next.run(req).await;

    let status = response.status().as_u16();
    crate::metrics::record_http(&route, &method, status);
    if response.extensions().get::<Accounted>().is_none() && route != "/metrics" {
        tracing::info!(
            request_id = %id,
            method = %method,
            route = %route,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Turns a handler result into a response.
pub(crate) fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn request_ids_are_distinct_time_ordered_uuids() {
        let (a, b) = (super::new_request_id(), super::new_request_id());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(now.as_secs().abs_diff(secs) < 5);
    }
}
