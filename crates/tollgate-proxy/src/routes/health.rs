//! Liveness, readiness, the root and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::access::Source;
use crate::counters::SharedStatus;
use crate::state::AppState;

pub(super) async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

/// Ready (200) whenever virtual keys can be checked: `healthy`, or `degraded` with the
/// reasons while the database is unavailable or keys come from the snapshot — the proxy still
/// serves then, so a load balancer must keep it. 503 `starting` only while no keys are known
/// at all (no database answer yet and no snapshot), when virtual keys would be refused.
pub(super) async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let directory = state.directory();
    let writer = state.sink().writer.stats();
    let source = directory.source();
    let db_ok = source == Source::Database && directory.store_reachable() && writer.database_ok;
    let mut reasons = Vec::new();
    match source {
        Source::Nothing => reasons.push(
            "waiting for the database: no virtual keys are known yet and there is no snapshot \
             of them"
                .to_owned(),
        ),
        Source::Snapshot(at) => reasons.push(format!(
            "the database has not answered since start: virtual keys, users and teams come \
             from the snapshot of {}",
            at.to_rfc3339()
        )),
        Source::Database => {}
    }
    if !db_ok {
        reasons.push(
            "the database is unavailable: spend records are kept on disk until it returns, \
             and management calls fail"
                .to_owned(),
        );
    }
    let shared = state.counters().status();
    if shared == SharedStatus::Unavailable {
        reasons.push(
            "Redis is not answering: rate limits and cooldowns are counted by each replica \
             until it does"
                .to_owned(),
        );
    }
    let (code, status) = match source {
        Source::Nothing => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
        _ if db_ok && shared != SharedStatus::Unavailable => (StatusCode::OK, "healthy"),
        _ => (StatusCode::OK, "degraded"),
    };
    let body = json!({
        "status": status,
        "reasons": reasons,
        "version": env!("CARGO_PKG_VERSION"),
        "db": if db_ok { "connected" } else { "unavailable" },
        "backend": format!("{:?}", state.store().backend()).to_lowercase(),
        "redis": shared.as_str(),
        "keys_loaded": directory.is_loaded(),
        "keys_from": match source {
            Source::Nothing => "none",
            Source::Snapshot(_) => "snapshot",
            Source::Database => "database",
        },
        "model_groups": state.router().catalog().group_names().count(),
        "spend_writer": {
            "queued": writer.queued,
            "pending": writer.in_memory_pending,
            "spooled": writer.spool_pending,
            "written": writer.written,
        },
    });
    (code, Json(body))
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
/// account, each with the premium requests its keys and users used this month; a virtual
/// key sees the one serving it.
pub(super) async fn copilot_quota(
    State(state): State<AppState>,
    crate::extract::Caller(caller): crate::extract::Caller,
) -> Json<Value> {
    let service = state.providers().copilot();
    let admin = caller.is_admin(state.directory());
    let owners: Vec<String> = if admin {
        let mut all = service.owners();
        all.sort();
        all
    } else {
        let own = caller.copilot_owner();
        service.account_for(own.as_deref()).map(|a| a.id.clone()).into_iter().collect()
    };
    // Who used what is for admins; without the database the quota alone is answered.
    let usage = if admin {
        crate::copilot::premium_use(state.store(), state.directory(), service)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "premium use per key not read"))
            .ok()
    } else {
        None
    };
    Json(state.quota().report(service, &owners, usage.as_ref()).await)
}
