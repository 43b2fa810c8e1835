//! A tool call's accounting: admitted under the caller's rate limits and budgets like a model
//! request, and recorded exactly once — answered, failed, refused, cancelled or abandoned by
//! its client — as a spend record (api `mcp`, the server as model group, no tokens), a log
//! line and metrics per server and tool.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use metrics::{counter, histogram};
use serde_json::{Value, json};
use tollgate_mcp::RpcError;
use tollgate_mcp::rpc::{CONNECTION_CLOSED, REQUEST_TIMEOUT};
use tollgate_store::SpendRecord;

use crate::access::{Access, Admitted, KeyEntry};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metrics::{MCP_TOOL_CALL_DURATION, MCP_TOOL_CALLS};
use crate::record::{Outcome, Refusal, SpendSink};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The `api` of an MCP tool call's spend record.
pub(super) const API: &str = "mcp";

/// How a tool call ended, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The server answered (a tool's own `isError` result is an answer too).
    Answered,
    /// The server failed, timed out or could not be reached.
    Failed,
    /// The client cancelled it.
    Cancelled,
    /// The client went away before the answer.
    Abandoned,
}

/// A tool call being answered.
#[derive(Debug)]
pub(super) struct ToolCall {
    request_id: RequestId,
    server: String,
    tool: String,
    key: Option<Arc<KeyEntry>>,
    admitted: Option<Admitted>,
    started: Instant,
    started_at: DateTime<Utc>,
    stream: bool,
    keep_bodies: bool,
    arguments: Option<Value>,
    sink: Option<SpendSink>,
}

/// What the caller asked to call, for a refusal's record.
pub(super) struct Asked<'a> {
    pub request_id: &'a RequestId,
    pub server: &'a str,
    pub tool: &'a str,
    pub stream: bool,
}

impl ToolCall {
    /// Admits a call of `server`'s `tool` by `caller`: its key's (and user's and team's)
    /// budgets, rpm and parallel limits, as for a model request; or the refusal, recorded.
    pub(super) async fn admit(
        state: &AppState,
        caller: &Principal,
        asked: Asked<'_>,
        arguments: Option<&Value>,
    ) -> Result<Self, RpcError> {
        let key = caller.key().cloned();
        let admitted = match &key {
            Some(key) => {
                match Access::of(state.directory(), key).admit(0.0, state.counters()).await {
                    Ok(a) => Some(a),
                    Err(e) => return Err(refuse(state, &asked, Some(key), &e)),
                }
            }
            None => None,
        };
        let keep = state.settings().store_prompts;
        Ok(Self {
            request_id: asked.request_id.clone(),
            server: asked.server.to_owned(),
            tool: asked.tool.to_owned(),
            key,
            admitted,
            started: Instant::now(),
            started_at: Utc::now(),
            stream: asked.stream,
            keep_bodies: keep,
            arguments: keep.then(|| {
                let mut args = arguments.cloned().unwrap_or(Value::Null);
                crate::redact::redact(&mut args);
                args
            }),
            sink: Some(state.sink().clone()),
        })
    }

    /// Records how the call ended.
    pub(super) fn finish(mut self, answer: &Result<Value, RpcError>) {
        let ended = match answer {
            Ok(_) => Ended::Answered,
            Err(e) if e.code == tollgate_mcp::rpc::CANCELLED => Ended::Cancelled,
            Err(_) => Ended::Failed,
        };
        self.record(ended, answer.as_ref().ok(), answer.as_ref().err());
    }

    /// Records a call its client cancelled.
    pub(super) fn cancelled(mut self) {
        self.record(Ended::Cancelled, None, None);
    }

    fn record(&mut self, ended: Ended, result: Option<&Value>, error: Option<&RpcError>) {
        let Some(sink) = self.sink.take() else { return };
        let latency = self.started.elapsed();
        let tool_error =
            result.and_then(|r| r.get("isError")).and_then(Value::as_bool) == Some(true);
        let (status, outcome) = match ended {
            Ended::Answered => (200, Outcome::Success.as_str()),
            Ended::Failed => match error.map(|e| e.code) {
                Some(REQUEST_TIMEOUT) => (504, Outcome::UpstreamFailed("timeout").as_str()),
                Some(CONNECTION_CLOSED) => (502, Outcome::UpstreamFailed("connect").as_str()),
                // The server answered with an error of its own.
                _ => (200, "tool_failed"),
            },
            Ended::Cancelled => (499, "cancelled"),
            Ended::Abandoned => (0, Outcome::ClientDisconnected.as_str()),
        };
        let ms = latency.as_secs_f64() * 1000.0;
        counter!(
            MCP_TOOL_CALLS,
            "server" => self.server.clone(),
            "tool" => self.tool.clone(),
            "outcome" => outcome
        )
        .increment(1);
        histogram!(MCP_TOOL_CALL_DURATION, "server" => self.server.clone(), "tool" => self.tool.clone())
            .record(latency.as_secs_f64());
        let record = self.key.as_ref().map(|k| &k.record);
        tracing::info!(
            request_id = %self.request_id.id,
            client_request_id = self.request_id.client.as_deref(),
            api = API,
            mcp_server = %self.server,
            tool = %self.tool,
            key = record.map(|k| k.key_name.as_str()),
            status,
            outcome,
            tool_error,
            latency_ms = ms,
            error = error.map(|e| e.message.as_str()),
            "tool call finished"
        );
        let mut attempt = json!({
            "mcp_server": self.server,
            "tool": self.tool,
            "outcome": outcome,
            "latency_ms": ms,
        });
        if tool_error {
            attempt["tool_error"] = Value::Bool(true);
        }
        if let Some(e) = error {
            attempt["error"] = json!({"code": e.code, "message": e.message});
        }
        let row = SpendRecord {
            request_id: self.request_id.id.clone(),
            client_request_id: self.request_id.client.clone(),
            started_at: self.started_at,
            ended_at: Utc::now(),
            token_hash: record.map(|k| k.token_hash.clone()),
            user_id: record.and_then(|k| k.user_id.clone()),
            team_id: record.and_then(|k| k.team_id.clone()),
            api: API.to_owned(),
            requested_model: self.tool.clone(),
            model_group: self.server.clone(),
            served_model: format!("{}/{}", self.server, self.tool),
            provider: API.to_owned(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cost: 0.0,
            premium_units: 0.0,
            latency_ms: ms,
            ttft_ms: None,
            status,
            outcome: outcome.to_owned(),
            attempts: Value::Array(vec![attempt]),
            stream: self.stream,
            request_body: self.arguments.take(),
            response_body: self.keep_bodies.then(|| {
                let mut body = result.cloned().unwrap_or(Value::Null);
                crate::redact::redact(&mut body);
                body
            }),
        };
        sink.directory.charge(&row);
        // Slots and reservations go once the call is counted.
        drop(self.admitted.take());
        sink.writer.record(row);
    }
}

impl Drop for ToolCall {
    fn drop(&mut self) {
        if self.sink.is_some() {
            self.record(Ended::Abandoned, None, None);
        }
    }
}

/// Records a refused call (of an existing key) and the error its client gets.
pub(super) fn refuse(
    state: &AppState,
    asked: &Asked<'_>,
    key: Option<&Arc<KeyEntry>>,
    error: &ApiError,
) -> RpcError {
    Refusal {
        request_id: asked.request_id,
        api: API,
        requested_model: asked.tool,
        model_group: asked.server,
        key,
        stream: asked.stream,
        started_at: Utc::now(),
    }
    .record(state.sink(), error);
    RpcError::new(tollgate_mcp::rpc::REFUSED, error.message().to_owned())
        .with_data(json!({"status": error.status().as_u16(), "code": error.code()}))
}
