//! `/mcp` (and `/mcp/`, never a redirect) and `/{server}/mcp`: the team's MCP servers for any
//! MCP client, over the streamable HTTP transport, authenticated with the same keys and
//! headers as the model APIs.
//!
//! Each POST carries one JSON-RPC message. A request is answered with JSON, or with an event
//! stream when the client accepts one and asked for progress (its notifications then precede
//! the answer); notifications and responses get 202. `initialize` opens a session whose id any
//! replica accepts ([`session`]); tollgate sends nothing unprompted, so GET (a stream of server
//! messages) is 405, and so is DELETE: a session holds nothing to free. A client's
//! `notifications/cancelled` stops the request it names, and a client that goes away cancels
//! its request upstream.

mod call;
mod filter;
mod grant;
pub(super) mod model_tools;
mod session;

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tollgate_guard::SameOriginOnly;
use tollgate_mcp::rpc::{self, INVALID_PARAMS, INVALID_REQUEST, Kind, PARSE_ERROR, REFUSED};
use tollgate_mcp::{PROTOCOL_VERSIONS, Progress, RpcError, Scope, View, ViewError};

use self::call::{Asked, ToolCall};
use self::session::Session;
use crate::auth::{Denied, Principal};
use crate::body::PendingBody;
use crate::extract::ModelCaller;
use crate::guard;
use crate::record::Refusal;
use crate::relay::Accounted;
use crate::request_id::RequestId;
use crate::state::AppState;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Narrows `/mcp` to some of the caller's servers (comma-separated names).
const SERVERS_HEADER: &str = "x-mcp-servers";
/// The revision assumed when a client says none (the spec's rule for a missing header).
const ASSUMED_VERSION: &str = "2025-03-26";

/// The MCP routes. A page of another site may not call them (`Origin` checked: the spec's
/// defence against DNS rebinding, on top of the key every call needs).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mcp", post(all).get(no_stream).delete(no_delete))
        .route("/mcp/", post(all).get(no_stream).delete(no_delete))
        .route("/{server}/mcp", post(one).get(no_stream).delete(no_delete))
        .layer(guard::layer(SameOriginOnly))
}

async fn all(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    headers: HeaderMap,
    body: PendingBody,
) -> Response {
    serve(&state, request_id, caller, &headers, Scope::All, body).await
}

async fn one(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: PendingBody,
) -> Response {
    serve(&state, request_id, caller, &headers, Scope::One(server), body).await
}

async fn no_stream() -> Response {
    not_allowed("tollgate sends no messages of its own: POST requests to this endpoint")
}

async fn no_delete() -> Response {
    not_allowed("a session holds nothing on the server, so there is nothing to end")
}

fn not_allowed(why: &str) -> Response {
    let mut r = failure(StatusCode::METHOD_NOT_ALLOWED, Value::Null, INVALID_REQUEST, why);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// A JSON-RPC message as an HTTP answer.
fn answer(status: StatusCode, message: &Value) -> Response {
    let mut r = (status, message.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON-RPC error as an HTTP answer with `status`.
fn failure(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> Response {
    answer(status, &rpc::error(id, &RpcError::new(code, message)))
}

/// What the client's `Accept` lets tollgate answer with.
#[derive(Debug, Clone, Copy)]
struct Accepts {
    json: bool,
    stream: bool,
}

impl Accepts {
    fn of(headers: &HeaderMap) -> Self {
        let values: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.split(';').next().unwrap_or_default().trim())
            .collect();
        if values.is_empty() {
            return Self { json: true, stream: false };
        }
        let any = values.contains(&"*/*");
        Self {
            json: any || values.iter().any(|v| *v == "application/json" || *v == "application/*"),
            stream: values.contains(&"text/event-stream"),
        }
    }
}

/// Who the caller is, for sessions and cancellations: a credential's identity, never the
/// credential itself.
fn identity(caller: &Principal) -> String {
    match caller {
        Principal::VirtualKey(k) => format!("key:{}", k.record.token_hash),
        Principal::Master => "master".to_owned(),
        Principal::StaticToken => "static".to_owned(),
        Principal::Local => "local".to_owned(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

async fn serve(
    state: &AppState,
    request_id: RequestId,
    caller: Result<Principal, Denied>,
    headers: &HeaderMap,
    scope: Scope,
    body: PendingBody,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(denied) => {
            Refusal {
                request_id: &request_id,
                api: call::API,
                requested_model: "",
                model_group: "",
                key: denied.key.as_ref(),
                stream: false,
                started_at: chrono::Utc::now(),
            }
            .record(state.sink(), &denied.error);
            let mut r =
                failure(denied.error.status(), Value::Null, REFUSED, denied.error.message());
            if denied.error.status() == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return r;
        }
    };
    let accepts = Accepts::of(headers);
    if !accepts.json && !accepts.stream {
        return failure(
            StatusCode::NOT_ACCEPTABLE,
            Value::Null,
            INVALID_REQUEST,
            "Accept must allow application/json or text/event-stream",
        );
    }
    if let Some(v) = header_str(headers, VERSION_HEADER)
        && !PROTOCOL_VERSIONS.contains(&v)
    {
        return failure(
            StatusCode::BAD_REQUEST,
            Value::Null,
            INVALID_REQUEST,
            format!(
                "Unsupported MCP-Protocol-Version `{v}`; tollgate speaks {}",
                PROTOCOL_VERSIONS.join(", ")
            ),
        );
    }
    let raw = match body.read().await {
        Ok(raw) => raw,
        Err(e) => return failure(e.status(), Value::Null, INVALID_REQUEST, e.message()),
    };
    let message: Value = match serde_json::from_slice(&raw) {
        Ok(m) => m,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: {e}"),
            );
        }
    };
    if message.is_array() {
        return failure(
            StatusCode::BAD_REQUEST,
            Value::Null,
            INVALID_REQUEST,
            "Send one JSON-RPC message per request: batches are not part of MCP since 2025-06-18",
        );
    }
    let who = identity(&caller);
    let is_initialize = matches!(rpc::kind(&message), Kind::Request { method: "initialize", .. });
    // A session another key began, or one sealed with another secret, is unknown here: the
    // client starts a new one (the spec's answer to an expired session).
    let session = match header_str(headers, SESSION_HEADER) {
        Some(id) if !is_initialize => match session::open(state.secret_box(), &who, id) {
            Some(s) => Some((id.to_owned(), s)),
            None => {
                let id = message.get("id").cloned().unwrap_or(Value::Null);
                return failure(
                    StatusCode::NOT_FOUND,
                    id,
                    INVALID_REQUEST,
                    "Session not found: send initialize to start a new one",
                );
            }
        },
        _ => None,
    };
    let caller_key = match &session {
        Some((id, _)) => format!("{who}/{id}"),
        None => who.clone(),
    };

    match rpc::kind(&message) {
        Kind::Invalid => failure(
            StatusCode::BAD_REQUEST,
            message.get("id").cloned().unwrap_or(Value::Null),
            INVALID_REQUEST,
            "Not a JSON-RPC 2.0 request, notification or response",
        ),
        // Answers to requests tollgate never sends, and notifications it needs not act on.
        Kind::Response { .. } => StatusCode::ACCEPTED.into_response(),
        Kind::Notification { method } => {
            if method == "notifications/cancelled"
                && let Some(id) = message.get("params").and_then(|p| p.get("requestId"))
            {
                state.mcp_calls().cancel(&caller_key, id);
            }
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Request { id, method } => {
            let grant = grant::of(state, &caller);
            let only: Option<Vec<String>> = header_str(headers, SERVERS_HEADER).map(|v| {
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            });
            let view = match state.mcp().view(&grant, &scope, only.as_deref()) {
                Ok(view) => view,
                Err(e) => {
                    let status = match e {
                        ViewError::Unknown(_) => StatusCode::NOT_FOUND,
                        ViewError::NotAllowed(_) => StatusCode::FORBIDDEN,
                    };
                    return failure(status, id.clone(), REFUSED, e.to_string());
                }
            };
            let request = Request {
                id: id.clone(),
                method: method.to_owned(),
                params: message.get("params").cloned().unwrap_or(Value::Null),
                caller_key,
                request_id,
            };
            let mut response = if is_initialize {
                initialize(state, &who, view, request).await
            } else {
                respond(state, &caller, view, request, accepts).await
            };
            if let Some((id, _)) = session
                && let Ok(v) = HeaderValue::from_str(&id)
            {
                response.headers_mut().insert(SESSION_HEADER, v);
            }
            response
        }
    }
}

/// A client's request, read.
struct Request {
    id: Value,
    method: String,
    params: Value,
    caller_key: String,
    request_id: RequestId,
}

/// `initialize`: the gateway's own answer, and a new session.
async fn initialize(state: &AppState, who: &str, view: View, request: Request) -> Response {
    let answer_value = state.mcp().handle(&view, "initialize", request.params, None).await;
    match answer_value {
        Ok(result) => {
            let version = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(ASSUMED_VERSION)
                .to_owned();
            let mut r = answer(StatusCode::OK, &rpc::result(request.id, result));
            if let Some(id) = session::issue(state.secret_box(), who, &Session { version })
                && let Ok(v) = HeaderValue::from_str(&id)
            {
                r.headers_mut().insert(SESSION_HEADER, v);
            }
            r
        }
        Err(e) => answer(StatusCode::OK, &rpc::error(request.id, &e)),
    }
}

/// Any other request: a tool call admitted and accounted, the rest answered as they are.
async fn respond(
    state: &AppState,
    caller: &Principal,
    view: View,
    request: Request,
    accepts: Accepts,
) -> Response {
    let token = rpc::progress_token(&request.params).cloned();
    // JSON when the client takes it, unless progress was asked for and can be streamed.
    let stream = accepts.stream && (token.is_some() || !accepts.json);
    if request.method == "tools/list"
        && let Some(filter) = state.mcp_filter()
        && let Some(query) = filter::query(&request.params)
    {
        let query = query.to_owned();
        let message = match state.mcp().handle(&view, "tools/list", Value::Null, None).await {
            Ok(listed) => {
                rpc::result(request.id, filter::apply(state, caller, filter, &query, listed).await)
            }
            Err(e) => rpc::error(request.id, &e),
        };
        return if stream { one_event(&message) } else { answer(StatusCode::OK, &message) };
    }
    let call = if request.method == "tools/call" {
        match admit_call(state, caller, &view, &request.request_id, &request.params, stream).await {
            Ok(call) => Some(call),
            Err(e) => return answer(StatusCode::OK, &rpc::error(request.id, &e)),
        }
    } else {
        None
    };
    let accounted = call.is_some();
    let mut response = if stream {
        streamed(state, view, request, token, call)
    } else {
        whole(state, view, request, call).await
    };
    if accounted {
        response.extensions_mut().insert(Accounted);
    }
    response
}

/// Finds the server and tool a `tools/call` names and admits it: a tool the caller cannot
/// see, or one its server does not list, is refused without asking the server.
async fn admit_call(
    state: &AppState,
    caller: &Principal,
    view: &View,
    request_id: &RequestId,
    params: &Value,
    stream: bool,
) -> Result<ToolCall, RpcError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
    let unknown = || RpcError::new(INVALID_PARAMS, format!("Unknown tool: {name}"));
    let (server, tool) = view.resolve_tool(name).ok_or_else(unknown)?;
    let listed = server.tools().await;
    let asked = Asked { request_id, server: server.name(), tool: &tool, stream };
    let arguments = params.get("arguments");
    match listed {
        Ok(listed) => {
            if !listed.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(tool.as_str()))
            {
                return Err(unknown());
            }
            ToolCall::admit(state, caller, asked, arguments).await
        }
        // A server that cannot be reached is a call that failed, and recorded as one.
        Err(e) => {
            ToolCall::admit(state, caller, asked, arguments).await?.finish(&Err(e.clone()));
            Err(e)
        }
    }
}

/// The answer as one JSON body. If the client goes away first, this future is dropped: the
/// request is cancelled upstream and the call recorded as abandoned.
async fn whole(state: &AppState, view: View, request: Request, call: Option<ToolCall>) -> Response {
    let pending = state.mcp_calls().begin(&request.caller_key, &request.id);
    let work = state.mcp().handle(&view, &request.method, request.params, None);
    let answered = tokio::select! {
        answered = work => Some(answered),
        () = pending.cancelled() => None,
    };
    match answered {
        Some(answered) => answer(StatusCode::OK, &settle(request.id, answered, call)),
        None => {
            if let Some(call) = call {
                call.cancelled();
            }
            let cancelled = RpcError::new(tollgate_mcp::rpc::CANCELLED, "Request cancelled");
            answer(StatusCode::OK, &rpc::error(request.id, &cancelled))
        }
    }
}

/// The answer as an event stream: the request's progress notifications, then its answer.
/// The work runs beside the response body and stops when the client goes away.
fn streamed(
    state: &AppState,
    view: View,
    request: Request,
    token: Option<Value>,
    call: Option<ToolCall>,
) -> Response {
    let (events, mut out) = mpsc::channel::<Bytes>(32);
    let gateway = state.mcp().clone();
    let pending = state.mcp_calls().begin(&request.caller_key, &request.id);
    tokio::spawn(async move {
        let (notes, mut progress) = mpsc::unbounded_channel();
        let sink = token.map(|token| Progress { token, sink: notes });
        let work = gateway.handle(&view, &request.method, request.params, sink);
        tokio::pin!(work);
        let answered = loop {
            tokio::select! {
                answered = &mut work => break Some(answered),
                Some(note) = progress.recv() => {
                    if events.send(event(&note)).await.is_err() {
                        break None;
                    }
                }
                () = events.closed() => break None,
                () = pending.cancelled() => {
                    if let Some(call) = call {
                        call.cancelled();
                    }
                    return;
                }
            }
        };
        // Dropping `call` unfinished records the call as abandoned by its client.
        let Some(answered) = answered else { return };
        while let Ok(note) = progress.try_recv() {
            let _ = events.send(event(&note)).await;
        }
        let _ = events.send(event(&settle(request.id, answered, call))).await;
    });
    let body = futures_util::stream::poll_fn(move |cx| {
        out.poll_recv(cx).map(|next| next.map(Ok::<Bytes, Infallible>))
    });
    let mut r = Response::new(Body::from_stream(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// The response to request `id`, once its tool call (if it was one) is recorded.
fn settle(id: Value, answered: Result<Value, RpcError>, call: Option<ToolCall>) -> Value {
    if let Some(call) = call {
        call.finish(&answered);
    }
    match answered {
        Ok(result) => rpc::result(id, result),
        Err(e) => rpc::error(id, &e),
    }
}

/// An event stream of one message.
fn one_event(message: &Value) -> Response {
    let mut r = Response::new(Body::from(event(message)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r
}

/// One message as a server-sent event.
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Accepts {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        Accepts::of(&h)
    }

    #[test]
    fn accept_says_json_stream_or_both() {
        let both = accept("application/json, text/event-stream");
        assert!(both.json && both.stream);
        let stream = accept("text/event-stream");
        assert!(!stream.json && stream.stream);
        assert!(accept("*/*").json);
        assert!(accept("application/json;q=0.9").json);
        let neither = accept("text/html");
        assert!(!neither.json && !neither.stream);
        let missing = Accepts::of(&HeaderMap::new());
        assert!(missing.json && !missing.stream);
    }
}
