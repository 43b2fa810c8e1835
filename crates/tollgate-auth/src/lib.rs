//! The auth helper on port 4001, where GitHub accounts are linked to tollgate.
//!
//! `GET /github` starts GitHub's device flow and shows the one-time code; a server-side
//! poller per flow waits for the approval and stores the GitHub OAuth token, sealed with the
//! process's [`tollgate_store::SecretBox`], as a `github_copilot` credential. Its change-feed
//! entry tells every tollgate process to use the account from then on.
//!
//! Who may link what:
//! - the shared account (owner `default`), used by every key without an account of its own:
//!   the admin, i.e. the master key as `?key=`, `Authorization: Bearer`, or the session cookie
//!   a `?key=` visit sets; with no master key configured, any client on the loopback
//!   interface and nobody else;
//! - a virtual key's own account (owner `key:<sha256 of the key>`): whoever holds the key,
//!   presented the same ways, as long as it is not blocked or expired.
//!
//! Browsers reach it only on its own pages or by a typed address: requests from other sites are
//! refused, and so, in local mode, are `Host` names other than this machine's (see [`router`]).
//!
//! Routes: `GET /github`, `POST /github/relink` (link a different account),
//! `GET /github/status?flow=<id>` (JSON for the page's live status), `/health`.
//!
//! The device flows themselves ([`Flows`]) are also what the admin console links accounts
//! with, for its signed-in users: the same polling, the same sealed store, the same audit.

mod access;
mod flows;
mod guard;
pub mod import;
mod link;
mod pages;
mod routes;
mod state;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tollgate_guard::{LocalHostsOnly, SameOriginOnly};

pub use flows::{Flow, FlowState, Flows, start_failure};
pub use import::{find_litellm_token, import_token};
pub use state::AuthState;

/// The auth helper's router. Serve it with connect info (`SocketAddr`) so local mode can
/// tell loopback clients apart; without it nobody is local.
///
/// Its pages refuse cross-site browser requests in every mode (a visit starts a device flow,
/// and a `?key=` visit opens a session). In local mode every route also needs a `Host` that
/// names this machine, so a page on a name rebound to 127.0.0.1 cannot read them.
pub fn router(state: AuthState) -> Router {
    let local_names = state.access().is_open().then(|| state.local_names().clone());
    let app = Router::new()
        .route("/health", get(health))
        .route("/health/liveliness", get(health))
        .merge(routes::routes().route_layer(guard::layer(SameOriginOnly)).with_state(state));
    match local_names {
        Some(names) => app.layer(guard::layer(LocalHostsOnly::new(names))),
        None => app,
    }
}

async fn health() -> Json<Value> {
    Json(
        json!({ "status": "ok", "service": "tollgate-auth", "version": env!("CARGO_PKG_VERSION") }),
    )
}
