//! An OpenAI chat completion as an Anthropic message.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::anthropic::{ContentBlock, MessagesResponse, ThinkingBlock, ToolUseBlock, Usage};
use crate::openai::types::{ChatCompletion, ChatUsage};
use crate::translate::{TranslateError, stop_reason_for, tool_input};
use crate::wire;

/// Translates a chat completion body into the Messages response the client asked
/// `requested_model` for.
pub fn openai_response_to_anthropic(
    resp: &Value,
    requested_model: &str,
) -> Result<Value, TranslateError> {
    let invalid = |detail: String| TranslateError { protocol: "OpenAI chat completion", detail };
    if resp.get("choices").is_none() {
        return Err(invalid(match resp.get("error") {
            Some(e) => format!("it is an error body: {e}"),
            None => "it has no 'choices'".to_owned(),
        }));
    }
    let typed: ChatCompletion =
        ChatCompletion::deserialize(resp).map_err(|e| invalid(e.to_string()))?;
    Ok(wire::to_value(&chat_completion_to_message(typed, requested_model)))
}

/// [`openai_response_to_anthropic`] on typed values.
///
/// Content comes out as Anthropic orders it: thinking (from `reasoning_content`,
/// `reasoning` or `reasoning_text`, signed with `reasoning_opaque` when the provider sent
/// one, else an empty signature), then text, then tool calls. All choices are merged,
/// because GitHub Copilot returns text and tool calls as separate choices of one answer.
/// Tool arguments that are not a JSON object are kept as `{"_raw": "<arguments>"}` so the
/// client sees what the model produced. `stop_sequence` is never set: OpenAI does not say
/// which sequence matched, so a stop is reported as `end_turn`.
pub fn chat_completion_to_message(resp: ChatCompletion, requested_model: &str) -> MessagesResponse {
    let mut thinking = String::new();
    let mut signature = String::new();
    let mut text = String::new();
    let mut tools = Vec::new();
    let mut finish_reason = None;
    for choice in resp.choices {
        let m = choice.message;
        if let Some(r) = m.reasoning_text() {
            thinking.push_str(r);
        }
        if let Some(s) = m.reasoning_opaque {
            signature = s;
        }
        for part in [m.content, m.refusal].into_iter().flatten() {
            text.push_str(&part);
        }
        for call in m.tool_calls.into_iter().flatten() {
            tools.push(ContentBlock::ToolUse(ToolUseBlock {
                id: call.id,
                name: call.function.name,
                input: tool_input(&call.function.arguments),
                cache_control: None,
                extra: Map::new(),
            }));
        }
        finish_reason = finish_reason.or(choice.finish_reason);
    }
    let mut content = Vec::with_capacity(tools.len() + 2);
    if !thinking.is_empty() {
        content.push(ContentBlock::Thinking(ThinkingBlock { thinking, signature }));
    }
    if !text.is_empty() {
        content.push(ContentBlock::text(text));
    }
    let stop_reason = stop_reason_for(finish_reason.as_deref(), !tools.is_empty());
    content.extend(tools);
    MessagesResponse {
        id: message_id(&resp.id),
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        model: requested_model.to_owned(),
        content,
        stop_reason: Some(stop_reason.to_owned()),
        stop_sequence: None,
        usage: resp.usage.as_ref().map(usage).unwrap_or_default(),
        extra: Map::new(),
    }
}

/// `msg_` + the upstream id, so clients that check the prefix are satisfied.
pub(super) fn message_id(upstream_id: &str) -> String {
    if upstream_id.starts_with("msg_") {
        upstream_id.to_owned()
    } else {
        format!("msg_{upstream_id}")
    }
}

/// OpenAI usage in Anthropic terms: Anthropic's `input_tokens` leaves out cached input.
pub(super) fn usage(u: &ChatUsage) -> Usage {
    let cached = u.cached_tokens();
    Usage {
        input_tokens: u.prompt_tokens.saturating_sub(cached),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: Some(0),
        cache_read_input_tokens: Some(cached),
        extra: Map::new(),
    }
}
