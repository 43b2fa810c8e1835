//! A chat completion as a Response.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai::types::{ChatCompletion, ChatUsage};
use crate::responses::{
    CustomToolCallItem, FunctionCallItem, IncompleteDetails, InputTokensDetails, Item, ItemRole,
    MessageItem, OutputTokensDetails, Part, ReasoningItem, ReasoningPart, ResponseObject,
    ResponsesUsage,
};
use crate::translate::{TranslateError, incomplete_reason_for};
use crate::wire::{self, TextOr};

/// Translates a chat completion body into the Response the client asked `requested_model`
/// for. Calls of the functions named in `custom_tools` (the request's custom tools, see
/// [`crate::responses::custom_tool_names`]) become `custom_tool_call` items.
pub fn chat_response_to_responses(
    resp: &Value,
    requested_model: &str,
    custom_tools: &[String],
) -> Result<Value, TranslateError> {
    let invalid = |detail: String| TranslateError { protocol: "OpenAI chat completion", detail };
    if resp.get("choices").is_none() {
        return Err(invalid(match resp.get("error") {
            Some(e) => format!("it is an error body: {e}"),
            None => "it has no 'choices'".to_owned(),
        }));
    }
    let typed = ChatCompletion::deserialize(resp).map_err(|e| invalid(e.to_string()))?;
    Ok(wire::to_value(&chat_completion_to_response(typed, requested_model, custom_tools)))
}

/// [`chat_response_to_responses`] on typed values.
///
/// Output comes in the order a Responses model produces it: a `reasoning` item (its
/// summary from `reasoning_content`, `reasoning` or `reasoning_text`, its
/// `encrypted_content` from Copilot's `reasoning_opaque`), a `message` item, then one
/// `function_call` (or `custom_tool_call`) item per tool call. Choices are merged, as GitHub Copilot splits one
/// answer over several. `length` and `content_filter` make the response `incomplete`.
/// A refusal is given as text, as the other translations do.
pub fn chat_completion_to_response(
    resp: ChatCompletion,
    requested_model: &str,
    custom_tools: &[String],
) -> ResponseObject {
    let base = id_base(&resp.id);
    let mut reasoning = String::new();
    let mut opaque = None;
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut finish_reason = None;
    for choice in resp.choices {
        let m = choice.message;
        if let Some(r) = m.reasoning_text() {
            reasoning.push_str(r);
        }
        opaque = m.reasoning_opaque.or(opaque);
        for part in [m.content, m.refusal].into_iter().flatten() {
            text.push_str(&part);
        }
        calls.extend(m.tool_calls.into_iter().flatten());
        finish_reason = finish_reason.or(choice.finish_reason);
    }
    let incomplete = incomplete_reason_for(finish_reason.as_deref());
    let status = item_status(incomplete);
    let mut out = ResponseObject::new(response_id(&resp.id), requested_model, resp.created);
    if !reasoning.is_empty() || opaque.is_some() {
        out.output.push(reasoning_item(&base, reasoning, opaque));
    }
    if !text.is_empty() {
        out.output.push(message_item(&base, text, status));
    }
    for call in calls {
        let (name, arguments) = (call.function.name, call.function.arguments);
        out.output.push(call_item(custom_tools, call.id, name, arguments, status));
    }
    finish(&mut out, incomplete, resp.usage.as_ref());
    out
}

/// The output item of a call: a `custom_tool_call` for the functions that stand for custom
/// tools, else a `function_call`.
pub(super) fn call_item(
    custom_tools: &[String],
    call_id: String,
    name: String,
    arguments: String,
    status: &str,
) -> Item {
    let id = Some(function_call_id(&call_id));
    let status = Some(status.to_owned());
    if custom_tools.contains(&name) {
        let input = custom_input(&arguments);
        Item::CustomToolCall(CustomToolCallItem { id, call_id, name, input, status })
    } else {
        Item::FunctionCall(FunctionCallItem { id, call_id, name, arguments, status })
    }
}

/// The input of a custom tool from the arguments of the function it was offered as: the
/// `input` string, or the arguments as they are when the model sent something else.
pub(super) fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut args)) => match args.remove(super::request::CUSTOM_INPUT) {
            Some(Value::String(input)) => input,
            _ => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

/// Sets the final status, its reason and the usage of a response.
pub(super) fn finish(out: &mut ResponseObject, incomplete: Option<&str>, u: Option<&ChatUsage>) {
    out.status = if incomplete.is_some() { "incomplete" } else { "completed" }.to_owned();
    out.incomplete_details = incomplete.map(|r| IncompleteDetails { reason: r.to_owned() });
    out.usage = Some(u.map(usage).unwrap_or_default());
}

/// The status of an output item in a response that stopped for `incomplete`, if it did.
pub(super) fn item_status(incomplete: Option<&str>) -> &'static str {
    if incomplete.is_some() { "incomplete" } else { "completed" }
}

/// A message item holding one `output_text` part.
pub(super) fn message_item(base: &str, text: String, status: &str) -> Item {
    Item::Message(MessageItem {
        id: Some(format!("msg_{base}")),
        role: ItemRole::Assistant,
        content: TextOr::List(vec![Part::output_text(text)]),
        status: Some(status.to_owned()),
        extra: Map::new(),
    })
}

/// A reasoning item whose summary is the provider's reasoning text.
pub(super) fn reasoning_item(base: &str, text: String, opaque: Option<String>) -> Item {
    Item::Reasoning(ReasoningItem {
        id: format!("rs_{base}"),
        summary: if text.is_empty() { Vec::new() } else { vec![ReasoningPart::summary(text)] },
        content: None,
        encrypted_content: opaque,
        status: None,
    })
}

/// `resp_` + the upstream id, so clients that check the prefix are satisfied.
pub(super) fn response_id(upstream_id: &str) -> String {
    format!("resp_{}", id_base(upstream_id))
}

/// The upstream id without a `resp_` prefix, the stem of the item ids.
pub(super) fn id_base(upstream_id: &str) -> String {
    upstream_id.strip_prefix("resp_").unwrap_or(upstream_id).to_owned()
}

/// `fc_` + the call id: unique within the response, and stable across retries of a stream.
pub(super) fn function_call_id(call_id: &str) -> String {
    format!("fc_{}", call_id.strip_prefix("call_").unwrap_or(call_id))
}

/// Chat usage in Responses terms; both count cached input inside the input tokens.
pub(super) fn usage(u: &ChatUsage) -> ResponsesUsage {
    ResponsesUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: Some(InputTokensDetails { cached_tokens: u.cached_tokens() }),
        output_tokens: u.completion_tokens,
        output_tokens_details: Some(OutputTokensDetails {
            reasoning_tokens: u
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }),
        total_tokens: if u.total_tokens > 0 {
            u.total_tokens
        } else {
            u.prompt_tokens.saturating_add(u.completion_tokens)
        },
        extra: Map::new(),
    }
}
