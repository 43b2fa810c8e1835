//! The browser-facing guards of `tollgate-guard` as the auth helper applies them: refusals
//! answer as the route they stop answers, a page for pages and JSON for `/github/status` and
//! `/health`.

use axum::Json;
use axum::body::Body;
use axum::http::uri::Authority;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tollgate_guard::{GuardLayer, Head, Refusal, Rule};

use crate::pages;

/// `rule` as a layer.
pub(crate) fn layer<R: Rule>(rule: R) -> GuardLayer<R, Body> {
    GuardLayer::new(rule, refuse)
}

fn refuse(refusal: &Refusal, head: &Head<'_>) -> Response {
    let (status, message) = (refusal.status(), refusal.message());
    let path = head.uri.path();
    if path.starts_with("/github/status") {
        let mut response =
            (status, Json(json!({ "state": "error", "message": message }))).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    if path.starts_with("/health") {
        return (status, Json(json!({ "status": "error", "message": message }))).into_response();
    }
    let hint = match refusal {
        Refusal::ForeignHost { .. } => {
            // The port the browser used is this server's, whatever name it came by.
            let port = head.host().and_then(|h| h.parse::<Authority>().ok()?.port_u16());
            Some(match port {
                Some(port) => format!("On this machine, open http://localhost:{port}/github."),
                None => "On this machine, open http://localhost with this port.".to_owned(),
            })
        }
        Refusal::CrossSite { .. } => {
            Some("Open this page by typing or pasting its address into the browser.".to_owned())
        }
        Refusal::NotJson { .. } => None,
    };
    pages::error(status, refusal.title(), &message, hint.as_deref())
}
