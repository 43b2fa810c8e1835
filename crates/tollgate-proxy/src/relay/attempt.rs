//! One attempt: a request to one deployment, until its answer has begun.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use tollgate_config::ModelEntry;
use tollgate_protocol::anthropic::StreamUsageObserver;
use tollgate_protocol::json_edit::set_top_level;
use tollgate_protocol::responses::{ResponsesUsageObserver, custom_tool_names};
use tollgate_protocol::translate::{
    AnthropicToOpenAiStream, AnthropicToResponsesStream, ChatToResponsesStream,
    OpenAiToAnthropicStream, ResponsesToAnthropicStream, ResponsesToChatStream,
    anthropic_request_to_openai, anthropic_request_to_responses, chat_request_to_responses,
    openai_request_to_anthropic, responses_request_to_anthropic, responses_request_to_chat,
};
use tollgate_protocol::{Operation, Protocol, RequestError};
use tollgate_providers::{CallContext, CallTerms, UpstreamError};
use tollgate_router::{FailureKind, Step};

use tollgate_protocol::openai::Usage;

use super::shape::Shape;
use super::stream::OpenStream;
use super::{Call, strip};
use crate::error::ApiError;
use crate::state::AppState;

/// What a deployment answered, and how to carry it back to the client.
#[derive(Debug)]
pub enum Answer {
    /// A complete non-streaming body, already in the client's protocol.
    Whole {
        /// The upstream's (success) status.
        status: StatusCode,
        /// The body for the client.
        body: Bytes,
        /// The usage the upstream reported.
        usage: Usage,
    },
    /// A stream whose first event has arrived, and whether its reasoning is removed.
    Stream(OpenStream, Shape, bool),
}

/// Why an attempt failed, before anything reached the client.
#[derive(Debug)]
pub struct Failure {
    /// What routing makes of it.
    pub kind: FailureKind,
    /// How long the upstream asked to wait.
    pub retry_after: Option<Duration>,
    /// The answer for the client if nothing else works.
    pub error: ApiError,
    /// A metric label.
    pub reason: &'static str,
}

impl Failure {
    /// A failure from an upstream speaking `protocol`: its own error body reaches clients of
    /// the same protocol unchanged.
    fn upstream(e: UpstreamError, protocol: Protocol) -> Self {
        let mut f = Self::from(e);
        f.error = f.error.from_protocol(protocol);
        f
    }

    /// A request this deployment cannot take (e.g. a translation it cannot express).
    fn unsupported(error: ApiError) -> Self {
        Self { kind: FailureKind::BadRequest, retry_after: None, error, reason: "unsupported" }
    }

    /// A success status with an answer that is not one (not JSON, not a stream): the
    /// deployment is broken, and the next step of the plan may do better.
    fn invalid_answer(error: ApiError) -> Self {
        Self { kind: FailureKind::Broken, retry_after: None, error, reason: "invalid_response" }
    }
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        let (kind, retry_after) = match &e {
            UpstreamError::Connect(_) | UpstreamError::NotLinked(_) => (FailureKind::Connect, None),
            UpstreamError::Timeout(_) => (FailureKind::Timeout, None),
            UpstreamError::Io(_) => (FailureKind::Broken, None),
            UpstreamError::Status { status, body, retry_after, .. } => {
                (FailureKind::from_status(*status, body), *retry_after)
            }
        };
        let reason = e.reason();
        Self { kind, retry_after, error: ApiError::from(e), reason }
    }
}

/// The upstream timeout for a deployment: `stream_timeout` for streams when set, else
/// `timeout`, else the global default. For streams it bounds the wait for the first event
/// and every later gap between chunks.
fn timeout_for(state: &AppState, e: &ModelEntry, stream: bool) -> Duration {
    if stream { e.stream_timeout.or(e.timeout) } else { e.timeout }
        .unwrap_or(state.settings().request_timeout)
}

/// The body for the deployment, the operation to call and the shape of the answer, by the
/// row of the (client, upstream) protocol pair: the client's own bytes with only `model`
/// changed when the protocols match (and, for Chat Completions streams, a request for the
/// usage chunk so the request can be accounted), a translation when they differ.
fn prepare(
    call: &Call,
    upstream: Protocol,
    upstream_model: &str,
) -> Result<(Operation, Bytes, Shape), Failure> {
    let model = serde_json::to_string(upstream_model).unwrap_or_default();
    let splice = |raw: &[u8], key: &str, value: &str| {
        set_top_level(raw, key, value)
            .map(Bytes::from)
            .unwrap_or_else(|| Bytes::copy_from_slice(raw))
    };
    match (call.protocol(), upstream) {
        (Protocol::Chat, Protocol::Chat) => {
            let mut body = splice(&call.raw, "model", &model);
            if call.stream && !call.include_usage {
                let mut options = call.body.get("stream_options").cloned().unwrap_or(Value::Null);
                if !options.is_object() {
                    options = Value::Object(Default::default());
                }
                options["include_usage"] = Value::Bool(true);
                body = splice(&body, "stream_options", &options.to_string());
            }
            let shape = Shape::ChatPass { include_usage: call.include_usage, usage: None };
            Ok((call.operation, body, shape))
        }
        (Protocol::Messages, Protocol::Messages) => {
            let mut body = if call.model == upstream_model {
                call.raw.clone()
            } else {
                splice(&call.raw, "model", &model)
            };
            if let Some(messages) =
                call.has_thinking.then(|| unsigned_thinking_removed(&call.body)).flatten()
            {
                tracing::debug!(request_id = %call.request_id, "thinking blocks without a signature were dropped");
                body = splice(&body, "messages", &messages.to_string());
            }
            Ok((call.operation, body, Shape::MessagesPass(StreamUsageObserver::new())))
        }
        (Protocol::Messages, Protocol::Chat) => {
            let body = translated(
                call,
                upstream,
                anthropic_request_to_openai(&call.body, upstream_model),
            )?;
            let id = format!("msg_{}", call.request_id.id.replace('-', ""));
            let shape =
                Shape::MessagesOnChat(Box::new(OpenAiToAnthropicStream::new(&call.model, &id)));
            Ok((Operation::Generate(upstream), body, shape))
        }
        (Protocol::Chat, Protocol::Messages) => {
            if call.operation == Operation::Embeddings {
                return Err(no_embeddings(call));
            }
            let body = translated(
                call,
                upstream,
                openai_request_to_anthropic(&call.body, upstream_model),
            )?;
            let created = unix_now();
            let shape = Shape::ChatOnMessages(Box::new(AnthropicToOpenAiStream::new(
                &call.model,
                created,
                call.include_usage,
            )));
            Ok((Operation::Generate(upstream), body, shape))
        }
        (Protocol::Responses, Protocol::Responses) => {
            let body = splice(&call.raw, "model", &model);
            Ok((call.operation, body, Shape::ResponsesPass(ResponsesUsageObserver::new())))
        }
        (Protocol::Responses, Protocol::Chat) => {
            let body =
                translated(call, upstream, responses_request_to_chat(&call.body, upstream_model))?;
            let id = format!("resp_{}", call.request_id.id.replace('-', ""));
            let created = unix_now();
            let shape = Shape::ResponsesOnChat(Box::new(
                ChatToResponsesStream::new(&call.model, &id, created)
                    .with_custom_tools(custom_tool_names(&call.body)),
            ));
            Ok((Operation::Generate(upstream), body, shape))
        }
        (Protocol::Chat, Protocol::Responses) => {
            if call.operation == Operation::Embeddings {
                return Err(no_embeddings(call));
            }
            let body =
                translated(call, upstream, chat_request_to_responses(&call.body, upstream_model))?;
            let created = unix_now();
            let shape = Shape::ChatOnResponses(Box::new(ResponsesToChatStream::new(
                &call.model,
                created,
                call.include_usage,
            )));
            Ok((Operation::Generate(upstream), body, shape))
        }
        (Protocol::Messages, Protocol::Responses) => {
            let body = translated(
                call,
                upstream,
                anthropic_request_to_responses(&call.body, upstream_model),
            )?;
            let id = format!("msg_{}", call.request_id.id.replace('-', ""));
            let shape = Shape::MessagesOnResponses(Box::new(ResponsesToAnthropicStream::new(
                &call.model,
                &id,
            )));
            Ok((Operation::Generate(upstream), body, shape))
        }
        (Protocol::Responses, Protocol::Messages) => {
            let body = translated(
                call,
                upstream,
                responses_request_to_anthropic(&call.body, upstream_model),
            )?;
            let id = format!("resp_{}", call.request_id.id.replace('-', ""));
            let created = unix_now();
            let shape = Shape::ResponsesOnMessages(Box::new(
                AnthropicToResponsesStream::new(&call.model, &id, created)
                    .with_custom_tools(custom_tool_names(&call.body)),
            ));
            Ok((Operation::Generate(upstream), body, shape))
        }
    }
}

/// A request translated for an upstream speaking `upstream`, as bytes; the fields the
/// translation had to drop are logged at debug, a request it cannot express refused.
fn translated(
    call: &Call,
    upstream: Protocol,
    translation: Result<(Value, Vec<String>), RequestError>,
) -> Result<Bytes, Failure> {
    let (body, dropped) = translation.map_err(|e| Failure::unsupported(e.into()))?;
    if !dropped.is_empty() {
        tracing::debug!(request_id = %call.request_id, dropped = ?dropped, upstream = ?upstream, "fields the upstream cannot take were dropped");
    }
    Ok(Bytes::from(body.to_string()))
}

/// Seconds since the Unix epoch, for the `created` of translated answers.
fn unix_now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// The refusal of an embeddings request by a deployment that only generates.
fn no_embeddings(call: &Call) -> Failure {
    Failure::unsupported(
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("The model `{}` does not serve embeddings.", call.model),
        )
        .with_code("model_not_supported")
        .with_param("model"),
    )
}

/// The history without thinking blocks that carry no signature: they were produced by
/// another provider (translated from its reasoning) and an Anthropic-format upstream would
/// refuse them. `None` when there are none.
fn unsigned_thinking_removed(body: &Value) -> Option<Value> {
    let mut messages = body.get("messages")?.clone();
    let mut removed = false;
    for m in messages.as_array_mut()? {
        if let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) {
            let before = blocks.len();
            blocks.retain(|b| {
                b["type"] != "thinking" || b["signature"].as_str().is_some_and(|s| !s.is_empty())
            });
            removed |= blocks.len() != before;
        }
    }
    removed.then_some(messages)
}

/// The client's own Claude token, for Anthropic deployments without a key of their own when
/// pass-through is on — and for no other upstream, ever.
pub fn passthrough_credential(claude_token: Option<&str>, entry: &ModelEntry) -> Option<String> {
    let anthropic_keyless =
        entry.provider == tollgate_config::ProviderKind::Anthropic && entry.api_key.is_none();
    if anthropic_keyless { claude_token.map(str::to_owned) } else { None }
}

/// Sends the call to the step's deployment on the attempt's `terms` and waits until its
/// answer has begun: the whole body, or a stream's first event.
pub async fn send(
    state: &AppState,
    call: &Call,
    step: &Step,
    upstream_model: &str,
    terms: &CallTerms,
) -> Result<Answer, Failure> {
    let entry = &step.deployment.entry;
    let timeout = timeout_for(state, entry, call.stream);
    let deadline = tokio::time::Instant::now() + timeout;
    let owner = call.account_owner();
    let upstream = terms.protocol;
    let (operation, body, shape) = prepare(call, upstream, upstream_model)?;
    let ctx = CallContext {
        request_id: call.request_id.shown().to_owned(),
        stream: call.stream,
        anthropic_version: call.anthropic_version.clone(),
        anthropic_beta: call.anthropic_beta.clone(),
        credential: passthrough_credential(call.claude_token.as_deref(), entry),
        account_owner: owner,
        initiator_user: call.initiator_user,
        vision: call.vision,
    };
    let fail = |e: UpstreamError| Failure::upstream(e, upstream);
    let answer =
        state.providers().send(entry, operation, body, &ctx, timeout).await.map_err(fail)?;
    if call.stream {
        let open = OpenStream::open(answer, deadline, timeout).await.map_err(fail)?;
        return Ok(Answer::Stream(open, shape, entry.strip_thinking));
    }
    let status = answer.status();
    let body = match tokio::time::timeout_at(deadline, answer.bytes()).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return Err(fail(UpstreamError::Io(e.without_url().to_string()))),
        Err(_) => return Err(fail(UpstreamError::Timeout(timeout))),
    };
    let body = match (entry.strip_thinking, upstream) {
        (false, _) => body,
        (true, Protocol::Messages) => strip::anthropic_whole(body),
        (true, Protocol::Chat) => strip::openai_whole(body),
        (true, Protocol::Responses) => body,
    };
    let created = unix_now();
    let (body, usage) = shape.whole(body, &call.model, created).map_err(Failure::invalid_answer)?;
    Ok(Answer::Whole { status, body, usage })
}
