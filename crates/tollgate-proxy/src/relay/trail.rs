//! The trail of a request through its plan: one entry per step — answered, failed, or passed
//! over because the caller may not use it — kept in the spend record and summed up in the
//! response's headers.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use serde_json::{Value, json};
use tollgate_router::{Route, Step};

use super::attempt::Failure;

/// The deployment that answered, on every proxied response.
pub const SERVED_MODEL: HeaderName = HeaderName::from_static("x-tollgate-served-model");
/// How many attempts the request took.
pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-tollgate-attempts");
/// The model groups the request went through, in order, each with its outcome.
pub const ATTEMPTED: HeaderName = HeaderName::from_static("x-tollgate-attempted");

/// Entries the trail header holds at most; a longer trail ends with `...`.
const HEADER_ENTRIES: usize = 16;

/// Marks a response whose request was accounted (and logged) by its record.
#[derive(Debug, Clone, Copy)]
pub struct Accounted;

/// A step that answered.
pub fn answered(step: &Step, served_model: &str, latency_ms: f64) -> Value {
    json!({
        "model_group": step.route.name(),
        "deployment": step.deployment.label(),
        "served_model": served_model,
        "outcome": "answered",
        "latency_ms": latency_ms,
    })
}

/// A step that failed.
pub fn failed(step: &Step, served_model: &str, failure: &Failure, latency_ms: f64) -> Value {
    json!({
        "model_group": step.route.name(),
        "deployment": step.deployment.label(),
        "served_model": served_model,
        "outcome": failure.kind.as_str(),
        "status": failure.error.status().as_u16(),
        "latency_ms": latency_ms,
    })
}

/// A step passed over without sending anything, because the `units` premium requests it
/// takes would exceed a premium budget of the caller (`outcome` `premium_budget`) or what
/// the Copilot account has left (`premium_quota`).
pub fn passed_for_premium(
    step: &Step,
    served_model: &str,
    units: f64,
    outcome: &'static str,
) -> Value {
    json!({
        "model_group": step.route.name(),
        "served_model": served_model,
        "outcome": outcome,
        "premium_units": units,
    })
}

/// A route the caller may not use, skipped without sending anything.
pub fn not_allowed(route: &Route) -> Value {
    json!({ "model_group": route.name(), "outcome": "not_allowed" })
}

/// How many entries of `trail` were sent upstream.
pub fn sent(trail: &[Value]) -> usize {
    trail.iter().filter(|a| a.get("deployment").is_some()).count()
}

/// The trail as a header value: `primary=server_error, second=not_allowed, third=answered`.
fn header(trail: &[Value]) -> Option<HeaderValue> {
    let mut parts: Vec<String> = trail
        .iter()
        .take(HEADER_ENTRIES)
        .map(|a| {
            let group = a["model_group"].as_str().unwrap_or("?");
            let outcome = a["outcome"].as_str().unwrap_or("?");
            format!("{group}={outcome}")
        })
        .collect();
    if trail.len() > HEADER_ENTRIES {
        parts.push("...".to_owned());
    }
    HeaderValue::from_str(&parts.join(", ")).ok()
}

/// What a proxied response's headers say of its trail, taken before the record is handed on.
#[derive(Debug)]
pub struct Summary {
    served: Option<HeaderValue>,
    attempts: usize,
    attempted: Option<HeaderValue>,
}

impl Summary {
    /// The summary of a trail that ended with `served` answering (or failing last; empty
    /// when nothing was sent).
    pub fn of(served: &str, trail: &[Value]) -> Self {
        Self {
            served: HeaderValue::from_str(served).ok().filter(|v| !v.is_empty()),
            attempts: sent(trail),
            attempted: header(trail),
        }
    }

    /// Adds the served model and the trail to a proxied response.
    pub fn decorate(self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        if let Some(v) = self.served {
            headers.insert(SERVED_MODEL, v);
        }
        headers.insert(ATTEMPTS, HeaderValue::from(self.attempts));
        if let Some(v) = self.attempted {
            headers.insert(ATTEMPTED, v);
        }
        response.extensions_mut().insert(Accounted);
        response
    }
}
