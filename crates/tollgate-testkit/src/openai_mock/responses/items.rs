//! The pieces of a Responses API answer: the output items a reply becomes and the Response
//! object around them, shared by the JSON answer and the SSE events.

use serde_json::{Value, json};

use crate::openai_mock::{
    extras::base64,
    reply::{Reply, ReplySpec, ToolCall},
    tokens,
};

/// What every event of one response repeats, taken from the request.
pub(super) struct Outline {
    /// Numbers the response and its items: `resp_mock7`, `msg_mock7_1`.
    pub serial: u64,
    pub created_at: u64,
    pub model: String,
    /// Request fields the Response repeats, or what it says when the request left them out.
    pub echo: Vec<(&'static str, Value)>,
    pub input_tokens: u64,
    /// Whether `include` asked for `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
}

impl Outline {
    pub fn new(serial: u64, created_at: u64, body: &Value) -> Self {
        let defaults = [
            ("instructions", Value::Null),
            ("max_output_tokens", Value::Null),
            ("metadata", json!({})),
            ("parallel_tool_calls", json!(true)),
            ("previous_response_id", Value::Null),
            ("reasoning", json!({"effort": null, "summary": null})),
            ("store", json!(true)),
            ("temperature", json!(1.0)),
            ("text", json!({"format": {"type": "text"}})),
            ("tool_choice", json!("auto")),
            ("tools", json!([])),
            ("top_p", json!(1.0)),
            ("truncation", json!("disabled")),
            ("user", Value::Null),
        ];
        let echo = defaults
            .into_iter()
            .map(|(field, default)| (field, body.get(field).cloned().unwrap_or(default)))
            .collect();
        let encrypted_reasoning = body
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|asked| asked.iter().any(|v| v == "reasoning.encrypted_content"));
        Self {
            serial,
            created_at,
            model: body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
            echo,
            input_tokens: tokens::input_tokens(body),
            encrypted_reasoning,
        }
    }

    pub fn id(&self) -> String {
        format!("resp_mock{}", self.serial)
    }
}

/// One output item of a reply, in output order.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item {
    Reasoning,
    Message,
    /// The call at this index of [`Reply::ToolCalls`].
    Call(usize),
}

/// How the response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    Completed,
    /// `incomplete`, with this `incomplete_details.reason`.
    Incomplete(&'static str),
    Failed,
}

impl Ending {
    pub fn of(spec: &ReplySpec) -> Self {
        if spec.failure.is_some() {
            return Self::Failed;
        }
        match spec.finish_reason.as_deref() {
            Some("length") => Self::Incomplete("max_output_tokens"),
            Some("content_filter") => Self::Incomplete("content_filter"),
            _ => Self::Completed,
        }
    }

    /// `status` of the Response and of its finished message and call items.
    pub fn status(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Incomplete(_) => "incomplete",
            Self::Failed => "failed",
        }
    }

    /// The type of the stream's last event.
    pub fn event(self) -> &'static str {
        match self {
            Self::Completed => "response.completed",
            Self::Incomplete(_) => "response.incomplete",
            Self::Failed => "response.failed",
        }
    }
}

/// The output items of a reply: reasoning first when there is any, then the message or the
/// calls.
pub(super) fn layout(spec: &ReplySpec) -> Vec<Item> {
    let mut items = Vec::new();
    if spec.reasoning.is_some() {
        items.push(Item::Reasoning);
    }
    match &spec.reply {
        Reply::Text { .. } => items.push(Item::Message),
        Reply::ToolCalls { calls } => items.extend((0..calls.len()).map(Item::Call)),
        Reply::Error { .. } | Reply::Hang => {}
    }
    items
}

pub(super) fn item_id(outline: &Outline, output_index: usize, item: Item) -> String {
    let prefix = match item {
        Item::Reasoning => "rs",
        Item::Message => "msg",
        Item::Call(_) => "fc",
    };
    format!("{prefix}_mock{}_{output_index}", outline.serial)
}

/// An item as `response.output_item.added` announces it: nothing generated yet.
pub(super) fn opened(spec: &ReplySpec, outline: &Outline, index: usize, item: Item) -> Value {
    let id = item_id(outline, index, item);
    match item {
        Item::Reasoning => json!({"id": id, "type": "reasoning", "summary": []}),
        Item::Message => json!({
            "id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": [],
        }),
        Item::Call(i) => {
            let call = &calls(spec)[i];
            json!({
                "id": id, "type": "function_call", "status": "in_progress",
                "call_id": call.id, "name": call.name, "arguments": "",
            })
        }
    }
}

/// An item with everything generated, as `response.output_item.done` and the final Response
/// carry it.
pub(super) fn finished(
    spec: &ReplySpec,
    outline: &Outline,
    index: usize,
    item: Item,
    ending: Ending,
) -> Value {
    let id = item_id(outline, index, item);
    match item {
        Item::Reasoning => {
            let text = reasoning(spec);
            let mut value = json!({"id": id, "type": "reasoning", "summary": [summary_text(text)]});
            if outline.encrypted_reasoning {
                value["encrypted_content"] = json!(encrypted_reasoning(text));
            }
            value
        }
        Item::Message => json!({
            "id": id, "type": "message", "status": ending.status(), "role": "assistant",
            "content": [output_text(text(spec))],
        }),
        Item::Call(i) => {
            let call = &calls(spec)[i];
            json!({
                "id": id, "type": "function_call", "status": ending.status(),
                "call_id": call.id, "name": call.name, "arguments": call.arguments,
            })
        }
    }
}

/// The Response object; `output`, `usage` and `error` as the moment calls for.
pub(super) fn response(
    outline: &Outline,
    status: &str,
    output: Vec<Value>,
    usage: Value,
    error: Value,
) -> Value {
    let mut value = json!({
        "id": outline.id(),
        "object": "response",
        "created_at": outline.created_at,
        "status": status,
        "error": error,
        "incomplete_details": null,
        "model": outline.model,
        "output": output,
        "usage": usage,
    });
    for (field, echoed) in &outline.echo {
        value[*field] = echoed.clone();
    }
    value
}

/// The Response once the reply has been generated in full (or has failed).
pub(super) fn final_response(spec: &ReplySpec, outline: &Outline) -> Value {
    let ending = Ending::of(spec);
    if ending == Ending::Failed {
        return response(outline, ending.status(), Vec::new(), Value::Null, failure(spec));
    }
    let output = layout(spec)
        .into_iter()
        .enumerate()
        .map(|(index, item)| finished(spec, outline, index, item, ending))
        .collect();
    let usage = tokens::response_usage(spec, outline.input_tokens);
    let mut value = response(outline, ending.status(), output, usage, Value::Null);
    if let Ending::Incomplete(reason) = ending {
        value["incomplete_details"] = json!({"reason": reason});
    }
    value
}

/// The `error` of a failed Response.
pub(super) fn failure(spec: &ReplySpec) -> Value {
    spec.failure.as_ref().map_or(Value::Null, |f| json!({"code": f.code, "message": f.message}))
}

/// What the mock sends as `encrypted_content` for reasoning `text`: opaque to a client, but
/// the same text always gives the same value, so a test can check it was sent back.
pub fn encrypted_reasoning(text: &str) -> String {
    base64(format!("tollgate-mock-reasoning:{text}").as_bytes())
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

pub(super) fn text(spec: &ReplySpec) -> &str {
    match &spec.reply {
        Reply::Text { text } => text,
        _ => "",
    }
}

pub(super) fn reasoning(spec: &ReplySpec) -> &str {
    spec.reasoning.as_deref().unwrap_or_default()
}

pub(super) fn calls(spec: &ReplySpec) -> &[ToolCall] {
    match &spec.reply {
        Reply::ToolCalls { calls } => calls,
        _ => &[],
    }
}
