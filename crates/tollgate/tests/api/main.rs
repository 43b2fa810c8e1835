//! Black-box tests: tollgate on port 0 in front of mock upstreams, driven over HTTP.

// Shared helpers are not `#[test]` functions, which the workspace's test allowances cover.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod auth;
mod browsers;
mod chat;
mod copilot;
mod copilot_load;
mod errors;
mod fallbacks;
mod helpers;
mod keys;
mod mcp;
mod mcp_model_tools;
mod mcp_servers;
mod messages;
mod models_runtime;
mod object_permission;
mod ops;
mod premium;
mod reasoning;
mod replicas;
mod request_ids;
mod resilience;
mod responses;
mod responses_fallbacks;
mod shared_configs;
mod spend_logs;
mod streaming;
