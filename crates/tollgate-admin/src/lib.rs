//! The admin console at `/ui`: server-rendered pages (askama templates in
//! `templates/admin/`) for the team admin — dashboard, keys, users,
//! teams, linked Copilot accounts, models and named credentials, MCP servers, logs, audit, settings.
//! Every action is the same operation the JSON management API performs
//! (`tollgate_proxy::ops`); pages read the store's rollups and pages of records, never one
//! query per row. No JavaScript is needed: forms post, then redirect.

// Handlers answer refusals as pages: an early `Err(Response)` is the natural shape here.
#![allow(clippy::result_large_err)]

mod copilot;
mod credentials;
mod dashboard;
mod keys;
mod lists;
mod logs;
mod mcp;
mod mcp_form;
mod model;
mod model_form;
mod models;
mod page;
mod session;
mod settings;
mod signin;
mod svg;
mod teams;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::routing::{get, post};
use tollgate_proxy::AppState;

pub use session::{COOKIE, IDLE, LONGEST, Role};

/// What the console keeps in memory: failed sign-ins, and device flows under way.
#[derive(Debug, Default)]
pub struct Console {
    throttle: signin::Throttle,
    links: copilot::link::Links,
}

/// The console's routes, at `/ui` (the proxy puts them under `SERVER_ROOT_PATH`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(dashboard::page))
        .route("/ui/", get(dashboard::page))
        .route("/ui/login", get(signin::form).post(signin::submit))
        .route("/ui/logout", post(signin::logout))
        .route("/ui/keys", get(keys::list).post(keys::create))
        .route("/ui/keys/{hash}", get(keys::detail))
        .route("/ui/keys/{hash}/{action}", post(keys::act))
        .route("/ui/models", get(models::list).post(models::create))
        .route("/ui/models/test", post(models::test))
        .route("/ui/models/{id}", get(model::detail))
        .route("/ui/models/{id}/{action}", post(model::act))
        .route("/ui/credentials", get(credentials::list).post(credentials::create))
        .route("/ui/credentials/{name}", get(credentials::detail))
        .route("/ui/credentials/{name}/{action}", post(credentials::act))
        .route("/ui/mcp", get(mcp::list).post(mcp::create))
        .route("/ui/mcp/{name}", get(mcp::detail))
        .route("/ui/mcp/{name}/{action}", post(mcp::act))
        .route("/ui/users", get(users::list).post(users::create))
        .route("/ui/users/{id}", get(users::detail))
        .route("/ui/users/{id}/{action}", post(users::act))
        .route("/ui/teams", get(teams::list).post(teams::create))
        .route("/ui/teams/{id}", get(teams::detail))
        .route("/ui/teams/{id}/{action}", post(teams::act))
        .route("/ui/copilot", get(copilot::page))
        .route("/ui/copilot/unlink", post(copilot::unlink))
        .route("/ui/copilot/link", post(copilot::link::start))
        .route("/ui/copilot/link/{flow}", get(copilot::link::status))
        .route("/ui/logs", get(logs::list))
        .route("/ui/logs/{request_id}", get(logs::detail))
        .route("/ui/audit", get(logs::audit))
        .route("/ui/settings", get(settings::page))
        .layer(Extension(Arc::new(Console::default())))
}
