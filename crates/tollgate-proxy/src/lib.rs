//! The proxy on port 4000: the OpenAI-compatible API, authentication, accounting, metrics and
//! health. Handlers are thin: they extract, call one function, and map the result.

pub mod access;
pub mod auth;
pub mod body;
pub mod copilot;
pub mod counters;
pub mod error;
pub mod extract;
pub mod gateway;
mod guard;
pub mod kept;
pub mod mcp_servers;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod record;
pub mod redact;
pub mod relay;
pub mod request_id;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tokens;

pub use error::ApiError;
pub use gateway::{Gateway, GatewayOptions, migrate_until_done, migrate_with_retry};
pub use routes::{router, router_with_ui};
pub use serve::{ServeLimits, serve};
pub use state::AppState;
pub use tollgate_protocol::Protocol;
