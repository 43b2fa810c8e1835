//! Translation between Anthropic Messages, OpenAI Chat Completions and the OpenAI Responses
//! API, for the paths where the client's protocol differs from the deployment's: each
//! `*_client` module serves that client on a chat (or, for OpenAI clients, Anthropic)
//! deployment, and `responses_upstream` serves chat clients on a Responses deployment.
//! Pure functions and state machines over JSON and SSE payloads: no I/O, no clocks.
//!
//! Requests come back with the list of fields the target protocol cannot take. They are
//! dropped deliberately (the caller logs them at debug) rather than forwarded to fail
//! upstream. The names are dotted paths without indices (`thinking`, `cache_control`,
//! `messages.content.thinking`, `tools.web_search_20250305`), each listed once.

mod anthropic_client;
mod openai_client;
mod responses_client;
mod responses_upstream;
mod schema;
mod through_chat;
mod tool_calls;

pub use anthropic_client::{
    OpenAiToAnthropicStream, anthropic_request_to_openai, chat_completion_to_message,
    messages_request_to_chat, openai_response_to_anthropic,
};
pub use openai_client::{
    AnthropicToOpenAiStream, anthropic_response_to_openai, chat_request_to_messages,
    message_to_chat_completion, openai_request_to_anthropic,
};
pub use responses_client::{
    ChatToResponsesStream, chat_completion_to_response, chat_response_to_responses,
    responses_request_to_chat, responses_to_chat_request,
};
pub use responses_upstream::{
    ResponsesToChatStream, chat_request_to_responses, chat_to_responses_request,
    response_to_chat_completion, responses_response_to_chat,
};
pub use through_chat::{
    AnthropicToResponsesStream, ResponsesToAnthropicStream, anthropic_request_to_responses,
    anthropic_response_to_responses, responses_request_to_anthropic,
    responses_response_to_anthropic,
};

/// An upstream response that cannot be translated. The gateway answers it as a bad gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the upstream response is not a valid {protocol} response: {detail}")]
pub struct TranslateError {
    /// `OpenAI chat completion` or `Anthropic message`.
    pub protocol: &'static str,
    /// What was wrong with it.
    pub detail: String,
}

/// Field names a translation left out, each once, in the order first met.
#[derive(Debug, Default)]
pub(crate) struct Dropped(Vec<String>);

impl Dropped {
    pub(crate) fn add(&mut self, name: impl AsRef<str>) {
        let name = name.as_ref();
        if !self.0.iter().any(|n| n == name) {
            self.0.push(name.to_owned());
        }
    }

    /// Lists every key of `extra` whose value is set, under `prefix` (`""` for top level).
    pub(crate) fn add_keys(
        &mut self,
        prefix: &str,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) {
        for (key, value) in extra {
            if !value.is_null() {
                if prefix.is_empty() {
                    self.add(key);
                } else {
                    self.add(format!("{prefix}.{key}"));
                }
            }
        }
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`. Tool calls win over the reason
/// given because some OpenAI-compatible servers report `stop` after tool calls, and agent
/// loops (Claude Code) only run tools on `tool_use`. `content_filter` becomes `refusal`,
/// which Anthropic clients already present as a policy stop.
pub(crate) fn stop_reason_for(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        _ if has_tool_calls => "tool_use",
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Tool-call arguments (JSON text) as the object Anthropic's `input` must be. Arguments
/// that are not a JSON object are kept as `{"_raw": "<arguments>"}`, so the client sees
/// what the model produced instead of a silently empty call.
pub(crate) fn tool_input(arguments: &str) -> serde_json::Value {
    if arguments.trim().is_empty() {
        return serde_json::json!({});
    }
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => serde_json::json!({ "_raw": arguments }),
    }
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
pub(crate) fn finish_reason_for(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// The Responses API's `incomplete_details.reason` for a chat `finish_reason`, when the
/// answer stopped early; `None` for an answer that completed.
pub(crate) fn incomplete_reason_for(finish_reason: Option<&str>) -> Option<&'static str> {
    match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    }
}

/// A chat `finish_reason` for a Response's `status` and `incomplete_details.reason`. Tool
/// calls win over a completed status: the Responses API has no stop reason of its own for
/// them, and chat clients run tools only on `tool_calls`.
pub(crate) fn finish_reason_for_status(
    status: &str,
    incomplete_reason: Option<&str>,
    has_tool_calls: bool,
) -> &'static str {
    match (status, incomplete_reason) {
        ("incomplete", Some("content_filter")) => "content_filter",
        ("incomplete", _) => "length",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}
