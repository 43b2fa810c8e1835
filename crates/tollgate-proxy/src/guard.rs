//! The browser-facing guards of `tollgate-guard` as the proxy applies them: refusals answer in
//! the protocol of the route they stop (rendered by the request middleware).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use tollgate_guard::{GuardLayer, Head, Refusal, Rule};

use crate::error::ApiError;

/// `rule` as a layer.
pub(crate) fn layer<R: Rule>(rule: R) -> GuardLayer<R, Body> {
    GuardLayer::new(rule, refuse)
}

fn refuse(refusal: &Refusal, _head: &Head<'_>) -> Response {
    ApiError::new(refusal.status(), refusal.message()).with_code(refusal.code()).into_response()
}
