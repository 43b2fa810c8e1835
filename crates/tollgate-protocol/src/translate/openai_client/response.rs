//! An Anthropic message as an OpenAI chat completion.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::anthropic::{ContentBlock, MessagesResponse, Usage};
use crate::openai::types::{
    ChatCompletion, ChatUsage, Choice, FunctionCall, PromptTokensDetails, ResponseMessage, ToolCall,
};
use crate::translate::{TranslateError, finish_reason_for};
use crate::wire;

/// Translates a Messages response body into the chat completion the client asked
/// `requested_model` for. `created` is the Unix time to report: this crate reads no clocks.
pub fn anthropic_response_to_openai(
    resp: &Value,
    requested_model: &str,
    created: u64,
) -> Result<Value, TranslateError> {
    let invalid = |detail: String| TranslateError { protocol: "Anthropic message", detail };
    if resp.get("type").and_then(Value::as_str) == Some("error") {
        return Err(invalid(format!("it is an error body: {resp}")));
    }
    let typed = MessagesResponse::deserialize(resp).map_err(|e| invalid(e.to_string()))?;
    Ok(wire::to_value(&message_to_chat_completion(typed, requested_model, created)))
}

/// [`anthropic_response_to_openai`] on typed values: text joins into `content`, thinking
/// into `reasoning_content` (the field most OpenAI-compatible clients read), `tool_use`
/// blocks become `tool_calls`; server-tool and redacted blocks have no OpenAI form and are
/// left out.
pub fn message_to_chat_completion(
    resp: MessagesResponse,
    requested_model: &str,
    created: u64,
) -> ChatCompletion {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for block in resp.content {
        match block {
            ContentBlock::Text(t) => text.push_str(&t.text),
            ContentBlock::Thinking(t) => thinking.push_str(&t.thinking),
            ContentBlock::ToolUse(t) => calls.push(ToolCall {
                id: t.id,
                kind: "function".to_owned(),
                function: FunctionCall { name: t.name, arguments: wire::to_string(&t.input) },
            }),
            _ => {}
        }
    }
    let message = ResponseMessage {
        role: Some("assistant".to_owned()),
        content: (!text.is_empty() || calls.is_empty()).then_some(text),
        reasoning_content: (!thinking.is_empty()).then_some(thinking),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ResponseMessage::default()
    };
    ChatCompletion {
        id: completion_id(&resp.id),
        object: "chat.completion".to_owned(),
        created,
        model: requested_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason_for(resp.stop_reason.as_deref()).to_owned()),
            extra: Map::new(),
        }],
        usage: Some(chat_usage(&resp.usage)),
        extra: Map::new(),
    }
}

/// `chatcmpl-` + the Anthropic id, which stays recognisable in client logs.
pub(super) fn completion_id(message_id: &str) -> String {
    format!("chatcmpl-{message_id}")
}

/// Anthropic usage in OpenAI terms: OpenAI's `prompt_tokens` includes cached input.
pub(super) fn chat_usage(u: &Usage) -> ChatUsage {
    let cache_read = u.cache_read_input_tokens.unwrap_or(0);
    let prompt = u.total_input_tokens();
    ChatUsage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt.saturating_add(u.output_tokens),
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: Some(cache_read),
            extra: Map::new(),
        }),
        completion_tokens_details: None,
        extra: Map::new(),
    }
}
