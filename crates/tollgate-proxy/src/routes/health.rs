//! Liveness, readiness, the root and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::AppState;

pub(super) async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

/// Ready once keys are loaded. A database outage is reported but does not make the proxy
/// unready: it keeps serving cached keys and queues spend records meanwhile.
pub(super) async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let loaded = state.directory().is_loaded();
    let writer = state.sink().writer.stats();
    let db = if writer.database_ok && loaded { "connected" } else { "unavailable" };
    let status = if loaded { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if loaded { "healthy" } else { "starting" },
        "version": env!("CARGO_PKG_VERSION"),
        "db": db,
        "backend": format!("{:?}", state.store().backend()).to_lowercase(),
        "keys_loaded": loaded,
        "model_groups": state.catalog().group_names().count(),
        "spend_writer": {
            "queued": writer.queued,
            "pending": writer.in_memory_pending,
            "spooled": writer.spool_pending,
            "written": writer.written,
        },
    });
    (status, Json(body))
}

pub(super) async fn root() -> Json<Value> {
    Json(json!({ "name": "tollgate", "version": env!("CARGO_PKG_VERSION") }))
}

pub(super) async fn root_head() {}

pub(super) async fn metrics() -> impl IntoResponse {
    let body = crate::metrics::install().render();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// `GET /copilot/quota`: premium requests left per linked account. Admins see every
/// account; a virtual key sees the one serving it.
pub(super) async fn copilot_quota(
    State(state): State<AppState>,
    crate::auth::Caller(caller): crate::auth::Caller,
) -> Json<Value> {
    let service = state.providers().copilot();
    let owners: Vec<String> = if caller.is_admin(state.directory()) {
        let mut all = service.owners();
        all.sort();
        all
    } else {
        let own = caller.copilot_owner();
        service.account_for(own.as_deref()).map(|a| a.id.clone()).into_iter().collect()
    };
    Json(state.quota().report(service, &owners).await)
}
