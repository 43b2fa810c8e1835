//! The proxy's HTTP surface.

pub mod admin;
mod chat;
pub mod count_tokens;
mod embeddings;
mod health;
mod mcp;
mod messages;
mod models;
mod responses;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tollgate_guard::{LocalHostsOnly, LocalNames, SameOriginOnly};

use tollgate_protocol::Protocol;

use crate::error::{self, ApiError};
use crate::guard;
use crate::relay::Accounted;
pub use crate::request_id::RequestId;
use crate::state::AppState;

/// The proxy's router with every route and the request middleware.
pub fn router(state: AppState) -> Router {
    router_with_ui(state, None)
}

/// [`router`], with the admin console's routes (under `/ui`; the proxy cannot depend on the
/// console's crate, which is built on its operations), and every route under
/// `SERVER_ROOT_PATH` when one is set.
pub fn router_with_ui(state: AppState, ui: Option<Router<AppState>>) -> Router {
    let routes = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(messages::messages))
        .route("/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(count_tokens::count_tokens))
        .route("/messages/count_tokens", post(count_tokens::count_tokens))
        .route("/v1/responses", post(responses::responses))
        .route("/responses", post(responses::responses))
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
        .merge(mcp::routes())
        .merge(admin::router());
    let routes = match ui {
        Some(ui) => routes.merge(ui),
        None => routes,
    };
    let prefix = state.settings().server_root_path.clone();
    let routes = if prefix.is_empty() { routes } else { Router::new().nest(&prefix, routes) };
    let routes = routes.fallback(not_found).method_not_allowed_fallback(method_not_allowed);
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
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}.", req.method(), req.uri().path()),
    )
    .with_code("method_not_allowed")
}

/// Assigns the request's ids, renders an error answer in the route's protocol, counts the
/// request, and writes its log line unless its record already did. (tower-http's request-id layers carry one id in one header; a request here has
/// two, and only a well-formed client id may be echoed.)
async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::from_headers(req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let path = req.uri().path();
    let protocol = Protocol::for_path(
        path.strip_prefix(state.settings().server_root_path.as_str()).unwrap_or(path),
    );
    req.extensions_mut().insert(id.clone());

    let mut response = error::for_route(next.run(req).await, protocol);

    let status = response.status().as_u16();
    crate::metrics::record_http(&route, &method, status);
    if response.extensions().get::<Accounted>().is_none() && route != "/metrics" {
        tracing::info!(
            request_id = %id.id,
            client_request_id = id.client.as_deref(),
            method = %method,
            route = %route,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    if let Ok(v) = HeaderValue::from_str(id.shown()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Turns a handler result into a response.
pub(crate) fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}
