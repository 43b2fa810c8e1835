//! Errors on the HTTP surface, rendered in the caller's protocol.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tollgate_protocol::{Protocol, RequestError};
use tollgate_providers::UpstreamError;

/// An error answer: status, message and the machine-readable parts every protocol needs.
/// Boxed, so results that carry it stay small on the happy path.
///
/// It is rendered in the protocol of the route that answers it, in one place: a handler,
/// extractor or guard returns it as it is, and the request middleware (`routes::track`)
/// renders it for the route's protocol — see [`ApiError::render`] and [`for_route`].
#[derive(Debug, Clone)]
pub struct ApiError(Box<Repr>);

#[derive(Debug, Clone)]
struct Repr {
    status: StatusCode,
    message: String,
    param: Option<String>,
    code: Option<String>,
    retry_after: Option<u64>,
    /// An upstream's own error body, its content type and its protocol: passed on unchanged
    /// when the caller speaks the same protocol.
    passthrough: Option<(Bytes, String, Protocol)>,
}

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(Box::new(Repr {
            status,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            passthrough: None,
        }))
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.0.code = Some(code.into());
        self
    }

    /// Sets the offending parameter.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.0.param = Some(param.into());
        self
    }

    /// Sets `retry-after` in whole seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.0.retry_after = Some(secs);
        self
    }

    /// Marks an upstream's own error body as being in `upstream`'s protocol, so it passes
    /// unchanged only to clients of that protocol.
    pub fn from_protocol(mut self, upstream: Protocol) -> Self {
        if let Some((_, _, p)) = &mut self.0.passthrough {
            *p = upstream;
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The machine-readable code, if set.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The offending parameter, if named.
    pub fn param(&self) -> Option<&str> {
        self.0.param.as_deref()
    }

    /// 401 for missing or wrong credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message).with_code("invalid_api_key")
    }

    /// 413 for a body over the configured limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than this gateway's limit of {limit} bytes."),
        )
        .with_code("request_too_large")
    }

    /// 404 for a model name that resolves nowhere.
    pub fn unknown_model<'a>(model: &str, available: impl Iterator<Item = &'a str>) -> Self {
        let available: Vec<&str> = available.collect();
        let listing = if available.is_empty() {
            "No models are configured.".to_owned()
        } else {
            format!("Available models: {}.", available.join(", "))
        };
        Self::new(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist on this gateway. {listing}"),
        )
        .with_code("model_not_found")
        .with_param("model")
    }

    /// The OpenAI `type` for this status.
    fn openai_type(&self) -> &'static str {
        match self.0.status.as_u16() {
            400 | 404 | 405 | 409 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            503 => "service_unavailable",
            500..=599 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// The Anthropic `error.type` for this status.
    fn anthropic_type(&self) -> &'static str {
        match self.0.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 | 503 => "overloaded_error",
            500..=599 => "api_error",
            _ => "invalid_request_error",
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        let mut err = Self::new(StatusCode::BAD_REQUEST, e.message).with_code(e.code);
        err.0.param = e.param;
        err
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Connect(detail) => {
                tracing::warn!(%detail, "upstream unreachable");
                Self::new(StatusCode::BAD_GATEWAY, "The upstream provider could not be reached.")
                    .with_code("upstream_unreachable")
            }
            UpstreamError::Timeout(after) => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("The upstream provider did not answer within {}s.", after.as_secs_f64()),
            )
            .with_code("upstream_timeout"),
            UpstreamError::Io(detail) => {
                tracing::warn!(%detail, "upstream connection failed");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "The connection to the upstream provider failed.",
                )
                .with_code("upstream_connection_failed")
            }
            UpstreamError::NotLinked(why) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, why).with_code("copilot_not_linked")
            }
            UpstreamError::Status { status, body, content_type, retry_after } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                let message = upstream_message(&body)
                    .unwrap_or_else(|| format!("The upstream provider answered HTTP {status}."));
                let mut err = Self::new(status, message).with_code("upstream_error");
                err.0.retry_after = retry_after.map(|d| d.as_secs_f64().ceil() as u64);
                if is_json_error_body(&body) {
                    let content_type = content_type.unwrap_or_else(|| "application/json".into());
                    // Assumed Chat Completions' until the caller says otherwise
                    // (`from_protocol`).
                    err.0.passthrough = Some((body, content_type, Protocol::Chat));
                }
                err
            }
        }
    }
}

/// Whether a body is a JSON object with an `error` member, i.e. something the client's own
/// SDK can parse and act on.
fn is_json_error_body(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).ok().is_some_and(|v| v.get("error").is_some())
}

/// The human message inside an upstream error body, in either protocol's shape, or its text.
fn upstream_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let msg =
            v.pointer("/error/message").or_else(|| v.get("message")).or_else(|| v.get("error"));
        if let Some(m) = msg.and_then(|m| m.as_str()) {
            return Some(m.to_owned());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

/// An error response's error, kept so that the request middleware can render it again in the
/// route's protocol.
#[derive(Debug, Clone)]
struct Unrendered(ApiError);

/// Rendered in OpenAI's shape (every route's but the Anthropic ones'), with the error kept
/// for [`for_route`].
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(Protocol::Chat);
        response.extensions_mut().insert(Unrendered(self));
        response
    }
}

/// An answer of a route speaking `protocol`: an error answer rendered in that protocol's
/// shape, keeping the headers and extensions set on it since; any other answer unchanged.
pub fn for_route(mut response: Response, protocol: Protocol) -> Response {
    let Some(Unrendered(error)) = response.extensions_mut().remove::<Unrendered>() else {
        return response;
    };
    if protocol.openai_errors() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (rendered, body) = error.render(protocol).into_parts();
    parts.status = rendered.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &rendered.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

impl ApiError {
    /// The response for a caller speaking `protocol`.
    pub fn render(&self, protocol: Protocol) -> Response {
        let mut response = match (&self.0.passthrough, protocol) {
            // Same protocol as the upstream: its body reaches the client unchanged.
            (Some((body, content_type, upstream)), caller)
                if *upstream == caller || (upstream.openai_errors() && caller.openai_errors()) =>
            {
                let mut r = (self.0.status, body.clone()).into_response();
                if let Ok(v) = HeaderValue::from_str(content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            (_, Protocol::Chat | Protocol::Responses) => {
                let body = tollgate_protocol::openai::error_body(
                    &self.0.message,
                    self.openai_type(),
                    self.0.param.as_deref(),
                    self.0.code.as_deref(),
                );
                (self.0.status, axum::Json(body)).into_response()
            }
            (_, Protocol::Messages) => {
                let body = serde_json::json!({
                    "type": "error",
                    "error": { "type": self.anthropic_type(), "message": self.0.message },
                });
                (self.0.status, axum::Json(body)).into_response()
            }
        };
        if let Some(secs) = self.0.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[derive(Clone)]
    struct Mark;

    #[tokio::test]
    async fn an_error_is_rendered_in_the_route_protocol_keeping_what_was_added_since() {
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "slow down")
            .with_code("rate_limited")
            .with_retry_after(7);
        let mut response = error.into_response();
        response.headers_mut().insert("x-extra", HeaderValue::from_static("kept"));
        response.extensions_mut().insert(Mark);

        let anthropic = for_route(response, Protocol::Messages);
        assert_eq!(anthropic.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(anthropic.headers()["x-extra"], "kept");
        assert_eq!(anthropic.headers()[header::RETRY_AFTER], "7");
        assert!(anthropic.extensions().get::<Mark>().is_some());
        let body = json(anthropic).await;
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], "slow down");
    }

    #[tokio::test]
    async fn openai_routes_and_answers_that_are_not_errors_pass_unchanged() {
        let response = ApiError::unauthorized("no key").into_response();
        let body = json(for_route(response, Protocol::Chat)).await;
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["type"], "authentication_error");

        let ok = (StatusCode::OK, "fine").into_response();
        let ok = for_route(ok, Protocol::Messages);
        let bytes = axum::body::to_bytes(ok.into_body(), 64).await.unwrap();
        assert_eq!(&bytes[..], b"fine");
    }

    #[tokio::test]
    async fn an_upstream_body_passes_only_to_clients_of_its_protocol() {
        let body = Bytes::from_static(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        );
        let upstream = UpstreamError::Status {
            status: 529,
            body: body.clone(),
            content_type: Some("application/json".into()),
            retry_after: None,
        };
        let error = ApiError::from(upstream).from_protocol(Protocol::Messages);
        let same = for_route(error.clone().into_response(), Protocol::Messages);
        let bytes = axum::body::to_bytes(same.into_body(), 1 << 16).await.unwrap();
        assert_eq!(bytes, body);
        let other = json(for_route(error.into_response(), Protocol::Chat)).await;
        assert_eq!(other["error"]["message"], "busy");
        assert_eq!(other["error"]["code"], "upstream_error");
    }
}
