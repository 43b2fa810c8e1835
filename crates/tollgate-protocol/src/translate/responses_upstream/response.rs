//! A Response as a chat completion.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai::types::{
    ChatCompletion, ChatUsage, Choice, CompletionTokensDetails, FunctionCall, PromptTokensDetails,
    ResponseMessage, ToolCall,
};
use crate::responses::{Item, Part, ResponseObject, ResponsesUsage};
use crate::translate::{TranslateError, finish_reason_for_status};
use crate::wire::{self, TextOr};

/// Translates a Response body into the chat completion the client asked `requested_model`
/// for. Error bodies and failed responses are not answers and are refused.
pub fn responses_response_to_chat(
    resp: &Value,
    requested_model: &str,
) -> Result<Value, TranslateError> {
    let invalid = |detail: String| TranslateError { protocol: "OpenAI response", detail };
    if resp.get("output").is_none() {
        return Err(invalid(match resp.get("error") {
            Some(e) => format!("it is an error body: {e}"),
            None => "it has no 'output'".to_owned(),
        }));
    }
    let typed = ResponseObject::deserialize(resp).map_err(|e| invalid(e.to_string()))?;
    if typed.status == "failed" {
        let detail = typed.error.map(|e| e.message).unwrap_or_default();
        return Err(invalid(format!("the response failed: {detail}")));
    }
    Ok(wire::to_value(&response_to_chat_completion(typed, requested_model)))
}

/// [`responses_response_to_chat`] on typed values: `output_text` parts join into
/// `content`, refusals into `refusal`, reasoning summaries (or reasoning text) into
/// `reasoning_content`, `function_call` items become `tool_calls`. Built-in tool items have
/// no chat form and are left out.
pub fn response_to_chat_completion(resp: ResponseObject, requested_model: &str) -> ChatCompletion {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut reasoning = Vec::new();
    let mut calls = Vec::new();
    for item in resp.output {
        match item {
            Item::Message(m) => {
                for part in m.content.list() {
                    match part {
                        Part::OutputText(t) => text.push_str(&t.text),
                        Part::Refusal(r) => refusal.push_str(&r.refusal),
                        _ => {}
                    }
                }
                if let TextOr::Text(s) = m.content {
                    text.push_str(&s);
                }
            }
            Item::FunctionCall(call) => calls.push(ToolCall {
                id: call.call_id,
                kind: "function".to_owned(),
                function: FunctionCall { name: call.name, arguments: call.arguments },
            }),
            Item::Reasoning(r) => {
                let t = r.text();
                if !t.is_empty() {
                    reasoning.push(t);
                }
            }
            // A chat client declares no custom tools, so none is called.
            Item::FunctionCallOutput(_)
            | Item::CustomToolCall(_)
            | Item::CustomToolCallOutput(_)
            | Item::Other(_) => {}
        }
    }
    let finish = finish_reason_for_status(
        &resp.status,
        resp.incomplete_details.as_ref().map(|d| d.reason.as_str()),
        !calls.is_empty(),
    );
    let message = ResponseMessage {
        role: Some("assistant".to_owned()),
        content: (!text.is_empty() || (calls.is_empty() && refusal.is_empty())).then_some(text),
        reasoning_content: (!reasoning.is_empty()).then(|| reasoning.join("\n\n")),
        refusal: (!refusal.is_empty()).then_some(refusal),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ResponseMessage::default()
    };
    ChatCompletion {
        id: completion_id(&resp.id),
        object: "chat.completion".to_owned(),
        created: resp.created_at,
        model: requested_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish.to_owned()),
            extra: Map::new(),
        }],
        usage: Some(chat_usage(&resp.usage.unwrap_or_default())),
        extra: Map::new(),
    }
}

/// `chatcmpl-` + the response id, which stays recognisable in client logs.
pub(super) fn completion_id(response_id: &str) -> String {
    format!("chatcmpl-{response_id}")
}

/// Responses usage in chat terms; both count cached input inside the input tokens.
pub(super) fn chat_usage(u: &ResponsesUsage) -> ChatUsage {
    ChatUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: if u.total_tokens > 0 {
            u.total_tokens
        } else {
            u.input_tokens.saturating_add(u.output_tokens)
        },
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: Some(u.cached_tokens()),
            extra: Map::new(),
        }),
        completion_tokens_details: Some(CompletionTokensDetails {
            reasoning_tokens: Some(u.reasoning_tokens()),
            extra: Map::new(),
        }),
        extra: Map::new(),
    }
}
