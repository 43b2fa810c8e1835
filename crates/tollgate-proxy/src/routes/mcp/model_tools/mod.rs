//! MCP tools on model requests, in LiteLLM's form: a chat completions or messages request
//! whose `tools` hold `{"type": "mcp", "server_url": "litellm_proxy", ...}` gets the tools of
//! those MCP servers as ordinary function tools, and tollgate runs the calls the model makes
//! of them, feeding the results back, until the model answers without one.
//!
//! Which servers an entry names: `server_url` `litellm_proxy/mcp/<server>[,<server>...]`
//! names them; `litellm_proxy` (or `litellm_proxy/mcp`) names the server its `server_label`
//! names when there is one by that name, else every server the caller may use. Only the
//! caller's grant counts, as at `/mcp`, and `x-mcp-servers` narrows it: a server outside
//! either is refused, never dropped. `allowed_tools` narrows an entry's tools (by their
//! names on the server or as listed), and the semantic filter ranks them by the
//! conversation's last user text when configured. Only an entry with
//! `require_approval: "never"` has its calls run here; the others' calls go back to the
//! client, as LiteLLM does.
//!
//! Each step is a model request of its own through the caller's routing (its spend record,
//! limits and fallbacks), and each tool call is admitted and recorded as a `/mcp` call is.
//! Steps run without streaming; a client that asked for a stream gets the last answer as the
//! event stream of its protocol.

mod stream;
mod wire;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tollgate_mcp::{Grant, Scope, View, ViewError};
use tollgate_protocol::Protocol;

pub(in crate::routes) use self::wire::has_mcp_tools;
use self::wire::{Outcome, Requested};
use super::{SERVERS_HEADER, admit_call, filter, grant, header_str};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::relay::{Call, forward};
use crate::request_id::{RequestId, new_request_id};
use crate::state::AppState;

/// What `server_url` must start with: tollgate runs only its own servers' tools.
const GATEWAY_URL: &str = "litellm_proxy";
/// How many model requests the answer took, on every answer of this kind.
const STEPS_HEADER: &str = "x-tollgate-mcp-steps";
/// Set when the step limit stopped the loop.
const LIMIT_HEADER: &str = "x-tollgate-mcp-step-limit";
/// Largest model answer read between steps.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The tools offered to the model, and where the ones tollgate runs live.
struct Offered {
    /// The request's `tools`: the client's own, then the MCP tools.
    tools: Vec<Value>,
    /// One view per MCP entry.
    views: Vec<View>,
    /// Tools tollgate runs itself, by offered name: the view that calls them.
    runs: HashMap<String, usize>,
}

/// The request's `x-mcp-servers` header, which narrows the servers an MCP entry may use.
/// Only this header is read, so a chat request does not copy all of its headers for it.
#[derive(Debug, Default)]
pub(in crate::routes) struct McpServersHeader(Option<String>);

impl McpServersHeader {
    pub(in crate::routes) fn of(headers: &HeaderMap) -> Self {
        Self(header_str(headers, SERVERS_HEADER).map(str::to_owned))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for McpServersHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

/// Answers `call`, whose tools hold MCP entries ([`has_mcp_tools`]).
pub(in crate::routes) async fn answer(
    state: &AppState,
    call: Call,
    servers: &McpServersHeader,
) -> Result<Response, ApiError> {
    let protocol = call.protocol();
    let offered = offer(state, protocol, &call.caller, &call.body, servers).await?;
    let Call { mut body, stream, include_usage, request_id: first_id, .. } = call;
    let template = |body: &Value, request_id: RequestId, first: bool| Call {
        api: call.api,
        operation: call.operation,
        model: call.model.clone(),
        raw: bytes::Bytes::from(body.to_string()),
        body: body.clone(),
        anthropic_version: call.anthropic_version.clone(),
        anthropic_beta: call.anthropic_beta.clone(),
        stream: false,
        include_usage: false,
        request_id,
        caller: call.caller.clone(),
        // Later steps answer tool results: the model's own doing, not the user's.
        initiator_user: first && call.initiator_user,
        vision: call.vision,
        has_thinking: call.has_thinking,
        claude_token: call.claude_token.clone(),
    };
    if let Some(object) = body.as_object_mut() {
        object.remove("stream");
        object.remove("stream_options");
        if offered.tools.is_empty() {
            object.remove("tools");
            object.remove("tool_choice");
        } else {
            object.insert("tools".to_owned(), Value::Array(offered.tools.clone()));
        }
    }
    let limit = state.mcp_max_tool_steps();
    let deliver = |parts, answer, steps, limited| {
        Delivery { protocol, stream, include_usage, steps, limited }.response(parts, answer)
    };
    let mut step = 0;
    loop {
        step += 1;
        let request_id = if step == 1 {
            first_id.clone()
        } else {
            RequestId { id: new_request_id(), client: first_id.client.clone() }
        };
        let response = forward(state, template(&body, request_id, step == 1)).await;
        // A failed step is the answer: it was recorded, and is in the client's protocol.
        if !response.status().is_success() {
            return Ok(response);
        }
        let (parts, bytes) = response.into_parts();
        let bytes = axum::body::to_bytes(bytes, MAX_ANSWER_BYTES).await.map_err(|e| {
            ApiError::new(StatusCode::BAD_GATEWAY, format!("reading the model's answer: {e}"))
        })?;
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(Response::from_parts(parts, Body::from(bytes)));
        };
        let calls = wire::calls(protocol, &answer);
        // A call of the client's own tools (or of one it must approve) is the client's to
        // answer: the whole turn goes back as it is.
        if calls.is_empty() || !calls.iter().all(|c| offered.runs.contains_key(&c.name)) {
            return Ok(deliver(parts, answer, step, false));
        }
        if step >= limit {
            tracing::warn!(
                request_id = %first_id.id,
                steps = step,
                "MCP tool loop stopped at its step limit (mcp_max_tool_steps)"
            );
            return Ok(deliver(parts, answer, step, true));
        }
        let results = join_all(calls.into_iter().map(|c| {
            let view = &offered.views[offered.runs[&c.name]];
            run_tool(state, &call.caller, view, c, &first_id)
        }))
        .await;
        wire::append(protocol, &mut body, &answer, &results);
    }
}

/// Runs one call the model made, admitted and recorded as a `/mcp` `tools/call`; a failure is
/// a result the model reads.
async fn run_tool(
    state: &AppState,
    caller: &Principal,
    view: &View,
    call: Requested,
    first: &RequestId,
) -> (Requested, Outcome) {
    let request_id = RequestId { id: new_request_id(), client: first.client.clone() };
    let params = json!({"name": call.name, "arguments": call.arguments});
    let answer = match admit_call(state, caller, view, &request_id, &params, false).await {
        Ok(accounted) => {
            let answer = state.mcp().handle(view, "tools/call", params, None).await;
            accounted.finish(&answer);
            answer
        }
        Err(refused) => Err(refused),
    };
    (call, wire::outcome(&answer))
}

/// How the last answer goes to the client.
struct Delivery {
    protocol: Protocol,
    stream: bool,
    include_usage: bool,
    steps: u32,
    limited: bool,
}

impl Delivery {
    fn response(self, mut parts: axum::http::response::Parts, mut answer: Value) -> Response {
        if self.limited {
            wire::mark_step_limit(&mut answer, self.steps);
            parts.headers.insert(LIMIT_HEADER, HeaderValue::from_static("reached"));
        }
        parts.headers.insert(STEPS_HEADER, HeaderValue::from(self.steps));
        parts.headers.remove(header::CONTENT_LENGTH);
        if !self.stream {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Response::from_parts(parts, Body::from(answer.to_string()));
        }
        let events: Vec<u8> = stream::events(self.protocol, &answer, self.include_usage).concat();
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Response::from_parts(parts, Body::from(events))
    }
}

/// The request's tools with its MCP entries replaced by their servers' tools.
async fn offer(
    state: &AppState,
    protocol: Protocol,
    caller: &Principal,
    body: &Value,
    servers: &McpServersHeader,
) -> Result<Offered, ApiError> {
    let grant = grant::of(state, caller);
    let only: Option<Vec<String>> = servers.0.as_deref().map(|v| {
        v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    });
    let mut offered = Offered { tools: Vec::new(), views: Vec::new(), runs: HashMap::new() };
    // (tool as listed, its entry's view, whether tollgate runs its calls)
    let mut mcp_tools: Vec<(Value, usize, bool)> = Vec::new();
    let entries = body.get("tools").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, entry) in entries.iter().enumerate() {
        if !wire::is_mcp_entry(entry) {
            offered.tools.push(entry.clone());
            continue;
        }
        let at = format!("tools[{i}]");
        let view = entry_view(state, &grant, entry, only.as_deref(), &at)?;
        if view.servers().next().is_none() {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "This key may use no MCP servers")
                .with_code("mcp_server_not_allowed")
                .with_param(at));
        }
        let listed =
            state.mcp().handle(&view, "tools/list", Value::Null, None).await.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("Listing the tools of the MCP servers failed: {}", e.message),
                )
            })?;
        let allowed: Option<Vec<&str>> = entry
            .get("allowed_tools")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect());
        let auto = entry.get("require_approval").and_then(Value::as_str) == Some("never");
        let index = offered.views.len();
        for tool in listed["tools"].as_array().into_iter().flatten() {
            let Some(name) = tool["name"].as_str() else { continue };
            if allowed.as_ref().is_some_and(|a| !allows(a, name)) {
                continue;
            }
            mcp_tools.push((tool.clone(), index, auto));
        }
        offered.views.push(view);
    }
    if let Some(config) = state.mcp_filter()
        && let Some(query) = wire::last_user_text(body)
    {
        let listed = json!({"tools": mcp_tools.iter().map(|(t, _, _)| t).collect::<Vec<_>>()});
        let kept = filter::apply(state, caller, config, &query, listed).await;
        let kept: Vec<&str> = kept["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        mcp_tools.retain(|(t, _, _)| t["name"].as_str().is_some_and(|n| kept.contains(&n)));
    }
    let mut names: Vec<String> = Vec::new();
    for (tool, index, auto) in mcp_tools {
        let Some(name) = tool["name"].as_str().map(str::to_owned) else { continue };
        // Two entries naming one server offer its tools once.
        if names.contains(&name) {
            continue;
        }
        offered.tools.push(wire::as_tool(protocol, &tool));
        if auto {
            offered.runs.insert(name.clone(), index);
        }
        names.push(name);
    }
    Ok(offered)
}

/// Whether `allowed_tools` lets a tool listed as `name` (`server-tool`) through: either name
/// counts.
fn allows(allowed: &[&str], name: &str) -> bool {
    let own = name.split_once(tollgate_mcp::SEPARATOR).map_or(name, |(_, tool)| tool);
    allowed.iter().any(|a| *a == name || *a == own)
}

/// The servers one MCP entry names, as the caller may use them.
fn entry_view(
    state: &AppState,
    grant: &Grant,
    entry: &Value,
    only: Option<&[String]>,
    at: &str,
) -> Result<View, ApiError> {
    let url = entry.get("server_url").and_then(Value::as_str).unwrap_or_default();
    let bad_url = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`server_url` must be `{GATEWAY_URL}` or `{GATEWAY_URL}/mcp/<server>`: \
                 tollgate runs the tools of its own MCP servers only"
            ),
        )
        .with_code("invalid_mcp_tool")
        .with_param(format!("{at}.server_url"))
    };
    let rest = url.strip_prefix(GATEWAY_URL).ok_or_else(bad_url)?;
    let named: Option<Vec<String>> = match rest {
        "" | "/mcp" | "/mcp/" => entry
            .get("server_label")
            .and_then(Value::as_str)
            .filter(|label| state.mcp().server(label).is_some())
            .map(|label| vec![label.to_owned()]),
        _ => {
            let list = rest.strip_prefix("/mcp/").ok_or_else(bad_url)?;
            Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        }
    };
    let view = match &named {
        Some(names) => {
            // `x-mcp-servers` narrows what an entry names too.
            if let Some(only) = only
                && let Some(outside) = names.iter().find(|n| !only.contains(n))
            {
                Err(ViewError::NotAllowed(outside.clone()))
            } else {
                state.mcp().view(grant, &Scope::All, Some(names))
            }
        }
        None => state.mcp().view(grant, &Scope::All, only),
    };
    view.map_err(|e| {
        let (status, code) = match e {
            ViewError::Unknown(_) => (StatusCode::BAD_REQUEST, "mcp_server_not_found"),
            ViewError::NotAllowed(_) => (StatusCode::FORBIDDEN, "mcp_server_not_allowed"),
        };
        ApiError::new(status, capitalized(&e.to_string())).with_code(code).with_param(at.to_owned())
    })
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_tools_match_either_name() {
        assert!(allows(&["create_entities"], "memory-create_entities"));
        assert!(allows(&["memory-create_entities"], "memory-create_entities"));
        assert!(!allows(&["read_graph"], "memory-create_entities"));
    }
}
