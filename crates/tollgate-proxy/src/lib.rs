//! The proxy on port 4000: the OpenAI-compatible API, authentication, accounting, metrics and
//! health. Handlers are thin: they extract, call one function, and map the result.

pub mod access;
pub mod auth;
pub mod body;
pub mod copilot;
pub mod error;
pub mod gateway;
mod guard;
pub mod metrics;
pub mod record;
pub mod redact;
pub mod relay;
pub mod routes;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

pub use error::{ApiError, Protocol};
pub use gateway::{Gateway, GatewayOptions, migrate_with_retry};
pub use routes::router;
pub use state::AppState;

/// Serves `app` on `listener` until `shutdown` completes, with TCP_NODELAY and the peer
/// address available to handlers (local-only mode needs it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Small SSE events must leave as soon as they are written.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
