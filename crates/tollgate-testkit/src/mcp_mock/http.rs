//! The streamable HTTP transport (`/mcp`), and the checks and SSE framing both HTTP
//! transports share.

use std::{convert::Infallible, future::Future, sync::Arc};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State as Extract,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{
    call::Caller,
    server::PROTOCOL_VERSIONS,
    session::{Accepted, Answer, parse_error},
    state::{McpTransport, State, header_list},
};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// `POST /mcp`: one JSON-RPC message per request, answered with one JSON body or an SSE
/// stream (notifications, then the response).
pub(super) async fn post(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body);
    let session_id = text_header(&headers, SESSION_HEADER).map(str::to_owned);
    state.record(
        McpTransport::StreamableHttp,
        session_id.clone(),
        parsed.as_ref().map_err(|_| &body[..]),
        &headers,
    );
    if let Some(refusal) = gate(&state, &headers) {
        return refusal;
    }
    if !(accepts(&headers, "application/json") && accepts(&headers, "text/event-stream")) {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: the client must accept both application/json and text/event-stream",
        );
    }
    let message = match parsed {
        Ok(message) => message,
        Err(error) => return (StatusCode::BAD_REQUEST, Json(parse_error(&error))).into_response(),
    };
    if let Some(version) = text_header(&headers, VERSION_HEADER)
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        let reason = format!("Bad Request: unsupported MCP-Protocol-Version {version}");
        return plain(StatusCode::BAD_REQUEST, &reason);
    }
    let initialize = message.get("method").and_then(Value::as_str) == Some("initialize")
        && message.get("id").is_some();
    let (session, new_session) = if initialize {
        let (id, session) = state.open_session();
        (session, Some(id))
    } else {
        let Some(id) = session_id else {
            return plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: Mcp-Session-Id header is required",
            );
        };
        let Some(session) = state.session(&id) else {
            return plain(StatusCode::NOT_FOUND, "Not Found: no such session");
        };
        (session, None)
    };
    if until_stopped(&state.shutdown, tokio::time::sleep(state.delay())).await.is_none() {
        return stopping();
    }
    let work = match session.accept(message) {
        Accepted::Noted => return StatusCode::ACCEPTED.into_response(),
        Accepted::Invalid(error) => return (StatusCode::BAD_REQUEST, Json(error)).into_response(),
        Accepted::Request(work) => work,
    };
    let caller = Caller::Http(header_list(&headers));
    let stream =
        state.sse_responses || (work.calls_tool("slow") && work.progress_token().is_some());
    let mut response = if stream {
        let (out, rx) = mpsc::unbounded_channel();
        let shutdown = state.shutdown.clone();
        tokio::spawn(async move {
            // The stream ends when `out` goes: after the answer, or with none when cancelled.
            // A client that disconnects has not cancelled, so the work goes on regardless.
            match until_stopped(&shutdown, work.run(&caller, &out)).await {
                Some(Answer::Reply(reply) | Answer::Crash(reply)) => {
                    let _ = out.send(reply);
                }
                Some(Answer::Cancelled) | None => {}
            }
        });
        let frames = UnboundedReceiverStream::new(rx).map(|message| Ok(message_event(&message)));
        event_stream(frames)
    } else {
        // Progress has nowhere to go in a single JSON body; the receiver is dropped at once.
        let (out, _) = mpsc::unbounded_channel();
        match until_stopped(&state.shutdown, work.run(&caller, &out)).await {
            Some(Answer::Reply(reply) | Answer::Crash(reply)) => Json(reply).into_response(),
            // Cancelled: no JSON-RPC response is due, and a request still needs an HTTP one.
            Some(Answer::Cancelled) => StatusCode::NO_CONTENT.into_response(),
            None => stopping(),
        }
    };
    if let Some(id) = new_session
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// `DELETE /mcp`: ends the session the header names.
pub(super) async fn delete(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = gate(&state, &headers) {
        return refusal;
    }
    match text_header(&headers, SESSION_HEADER) {
        None => plain(StatusCode::BAD_REQUEST, "Bad Request: Mcp-Session-Id header is required"),
        Some(id) if state.end_session(id) => StatusCode::OK.into_response(),
        Some(_) => plain(StatusCode::NOT_FOUND, "Not Found: no such session"),
    }
}

/// `GET /mcp`: this server offers no stream of its own, which the specification allows.
pub(super) async fn get(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = gate(&state, &headers) {
        return refusal;
    }
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
    response
}

/// What every route checks first: a configured failure, then the bearer token.
pub(super) fn gate(state: &State, headers: &HeaderMap) -> Option<Response> {
    if let Some(status) = state.failure() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(plain(status, "mock MCP server: failing on purpose"));
    }
    let expected = state.bearer_token.as_deref()?;
    let given = text_header(headers, header::AUTHORIZATION.as_str())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if given == Some(expected) {
        return None;
    }
    let mut response =
        plain(StatusCode::UNAUTHORIZED, "Unauthorized: missing or wrong bearer token");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(response)
}

/// Runs `work` unless the mock stops first.
pub(super) async fn until_stopped<F: Future>(
    shutdown: &watch::Receiver<bool>,
    work: F,
) -> Option<F::Output> {
    let mut shutdown = shutdown.clone();
    tokio::select! {
        output = work => Some(output),
        _ = shutdown.wait_for(|stop| *stop) => None,
    }
}

/// One SSE `message` event carrying a JSON-RPC message.
pub(super) fn message_event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// A `text/event-stream` response of `frames`.
pub(super) fn event_stream(
    frames: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let headers =
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    (headers, Body::from_stream(frames)).into_response()
}

pub(super) fn plain(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.to_owned()).into_response()
}

fn stopping() -> Response {
    plain(StatusCode::SERVICE_UNAVAILABLE, "mock MCP server: stopping")
}

pub(super) fn text_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// Whether any `Accept` header lists `media` (parameters such as `q` ignored).
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(media)))
}
