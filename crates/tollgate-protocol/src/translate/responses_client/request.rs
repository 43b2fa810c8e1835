//! A Responses request as a chat completions request.

use serde_json::{Map, Value, json};

use crate::RequestError;
use crate::openai::types::{
    ChatMessage, ChatRequest, ChatRole, ChatTool, ChatToolChoice, ContentPart, FunctionCall,
    FunctionDef, ImageUrl, ImageUrlPart, NamedFunction, NamedToolChoice, StreamOptions, ToolCall,
};
use crate::responses::{
    CustomTool, FunctionCallOutputItem, Item, ItemRole, MessageItem, Part, ResponsesRequest,
    TextConfig, Tool, ToolChoice,
};
use crate::translate::anthropic_client::content::collapse;
use crate::translate::{Dropped, schema};
use crate::wire::{self, TextOr};

/// Translates a Responses request body for a chat-completions deployment serving
/// `upstream_model`. Returns the chat request body and the fields it had to drop.
/// Requests that refer to stored state (`previous_response_id`, `conversation`,
/// `background`) are refused: the chat upstream would answer them without their history.
pub fn responses_request_to_chat(
    body: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    crate::responses::refuse_stored_fields(body)?;
    let typed: ResponsesRequest = wire::view_at(body, "")?;
    let (chat, dropped) = responses_to_chat_request(typed, upstream_model)?;
    Ok((wire::to_value(&chat), dropped))
}

/// [`responses_request_to_chat`] on typed values.
///
/// - `instructions` becomes the first system message; system and developer items become
///   system messages where they are (`developer` is not understood by every
///   OpenAI-compatible server, `system` is).
/// - An assistant message and the `function_call` items after it form one assistant
///   message with `tool_calls`; each `function_call_output` becomes a `tool` message, its
///   images following in a user message, since tool messages carry text only.
/// - A `custom` tool (free-form input, such as Codex's `apply_patch`) becomes a function
///   taking one string, `input`, with the tool's grammar in its description; its
///   `custom_tool_call` and `custom_tool_call_output` items travel as that function's calls
///   and results. The answer's translation turns such calls back (see
///   [`crate::responses::custom_tool_names`]).
/// - `reasoning` items are dropped: a chat upstream cannot take reasoning back.
/// - `max_output_tokens` becomes `max_tokens`, which every OpenAI-compatible server
///   understands (see `messages_request_to_chat`).
/// - `text.format` becomes `response_format`; `reasoning.effort`, `reasoning_effort`.
pub fn responses_to_chat_request(
    req: ResponsesRequest,
    upstream_model: &str,
) -> Result<(ChatRequest, Vec<String>), RequestError> {
    crate::responses::refuse_stored_state(&req)?;
    let mut dropped = Dropped::default();
    let mut out = ChatRequest { model: upstream_model.to_owned(), ..ChatRequest::default() };
    if let Some(instructions) = req.instructions.filter(|s| !s.is_empty()) {
        out.messages.push(ChatMessage::text(ChatRole::System, instructions));
    }
    match req.input {
        Some(TextOr::Text(s)) => out.messages.push(ChatMessage::text(ChatRole::User, s)),
        Some(TextOr::List(items)) => push_items(items, &mut out.messages, &mut dropped),
        None => {}
    }
    let tools = convert_tools(req.tools.unwrap_or_default(), &mut dropped);
    if tools.is_empty() {
        if req.tool_choice.is_some() {
            dropped.add("tool_choice");
        }
        if req.parallel_tool_calls.is_some() {
            // OpenAI refuses `parallel_tool_calls` without tools.
            dropped.add("parallel_tool_calls");
        }
    } else {
        out.tool_choice = req.tool_choice.and_then(|c| convert_tool_choice(c, &mut dropped));
        out.parallel_tool_calls = req.parallel_tool_calls;
        out.tools = Some(tools);
    }
    out.max_tokens = req.max_output_tokens;
    out.temperature = req.temperature;
    out.top_p = req.top_p;
    if let Some(reasoning) = req.reasoning {
        out.reasoning_effort = reasoning.effort;
        if reasoning.summary.is_some() {
            dropped.add("reasoning.summary");
        }
        dropped.add_keys("reasoning", &reasoning.extra);
    }
    if let Some(text) = req.text {
        out.response_format = response_format(text, &mut dropped);
    }
    if req.stream == Some(true) {
        out.stream = Some(true);
        // Responses streams end with usage; chat streams only do when asked.
        out.stream_options =
            Some(StreamOptions { include_usage: Some(true), ..StreamOptions::default() });
    }
    if req.store == Some(true) {
        dropped.add("store");
    }
    out.user = req.user;
    dropped.add_keys("", &req.extra);
    Ok((out, dropped.into_vec()))
}

fn push_items(items: Vec<Item>, out: &mut Vec<ChatMessage>, dropped: &mut Dropped) {
    // Images returned by tools, waiting for the tool messages of their turn to end.
    let mut attachments: Vec<ContentPart> = Vec::new();
    for item in items {
        if !matches!(item, Item::FunctionCallOutput(_) | Item::CustomToolCallOutput(_)) {
            flush_attachments(&mut attachments, out);
        }
        match item {
            Item::Message(m) => push_message(m, out, dropped),
            Item::FunctionCall(call) => push_call(call.call_id, call.name, call.arguments, out),
            Item::CustomToolCall(call) => {
                let arguments = wire::to_string(&json!({ CUSTOM_INPUT: call.input }));
                push_call(call.call_id, call.name, arguments, out);
            }
            Item::FunctionCallOutput(result) | Item::CustomToolCallOutput(result) => {
                let (tool, images) = tool_message(result, dropped);
                out.push(tool);
                attachments.extend(images);
            }
            Item::Reasoning(_) => dropped.add("input.reasoning"),
            Item::Other(_) => dropped.add(format!("input.{}", item.kind())),
        }
    }
    flush_attachments(&mut attachments, out);
}

/// The one parameter of the function a custom tool is offered as.
pub(crate) const CUSTOM_INPUT: &str = "input";

/// Adds a call to the assistant message being built, or opens one.
fn push_call(id: String, name: String, arguments: String, out: &mut Vec<ChatMessage>) {
    let call =
        ToolCall { id, kind: "function".to_owned(), function: FunctionCall { name, arguments } };
    match out.last_mut() {
        Some(last) if last.role == ChatRole::Assistant => {
            last.tool_calls.get_or_insert_with(Vec::new).push(call);
        }
        _ => {
            let mut msg = ChatMessage::new(ChatRole::Assistant, None);
            msg.tool_calls = Some(vec![call]);
            out.push(msg);
        }
    }
}

fn flush_attachments(attachments: &mut Vec<ContentPart>, out: &mut Vec<ChatMessage>) {
    if !attachments.is_empty() {
        let parts = std::mem::take(attachments);
        out.push(ChatMessage::new(ChatRole::User, Some(TextOr::List(parts))));
    }
}

fn push_message(m: MessageItem, out: &mut Vec<ChatMessage>, dropped: &mut Dropped) {
    dropped.add_keys("input", &m.extra);
    let role = match m.role {
        ItemRole::User => ChatRole::User,
        ItemRole::Assistant => ChatRole::Assistant,
        ItemRole::System | ItemRole::Developer => ChatRole::System,
    };
    let parts = match m.content {
        TextOr::Text(s) => {
            out.push(ChatMessage::text(role, s));
            return;
        }
        TextOr::List(parts) => parts,
    };
    let mut converted = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::InputText(t) => converted.push(ContentPart::text(t.text)),
            Part::OutputText(t) => converted.push(ContentPart::text(t.text)),
            Part::Refusal(r) => converted.push(ContentPart::text(r.refusal)),
            Part::InputImage(_) | Part::Other(_) if role != ChatRole::User => {
                dropped.add(format!("input.content.{}", part.kind()));
            }
            other => converted.extend(media_part(other, dropped)),
        }
    }
    if converted.is_empty() {
        return;
    }
    out.push(ChatMessage::new(role, Some(collapse(converted))));
}

/// An image or file part as a chat part. Uploaded file ids refer to the client's provider
/// account and mean nothing to the upstream, so they are dropped.
fn media_part(part: Part, dropped: &mut Dropped) -> Option<ContentPart> {
    match part {
        Part::InputImage(image) => match image.image_url {
            Some(url) => Some(ContentPart::ImageUrl(ImageUrlPart {
                image_url: ImageUrl { url, detail: image.detail },
            })),
            None => {
                dropped.add("input.content.input_image.file_id");
                None
            }
        },
        Part::Other(v) if v.get("type").and_then(Value::as_str) == Some("input_file") => {
            match v.get("file_data").and_then(Value::as_str) {
                Some(data) => {
                    let filename =
                        v.get("filename").and_then(Value::as_str).unwrap_or("document.pdf");
                    Some(ContentPart::Other(json!({
                        "type": "file",
                        "file": { "filename": filename, "file_data": data }
                    })))
                }
                None => {
                    dropped.add("input.content.input_file.file_id");
                    None
                }
            }
        }
        other => {
            dropped.add(format!("input.content.{}", other.kind()));
            None
        }
    }
}

/// A function call output as a `tool` message, plus the images it held, which follow in a
/// user message as `tool_message` does for Anthropic tool results.
fn tool_message(
    result: FunctionCallOutputItem,
    dropped: &mut Dropped,
) -> (ChatMessage, Vec<ContentPart>) {
    let mut texts = Vec::new();
    let mut media = Vec::new();
    match result.output {
        TextOr::Text(s) => texts.push(s),
        TextOr::List(parts) => {
            for part in parts {
                match part {
                    Part::InputText(t) => texts.push(t.text),
                    Part::OutputText(t) => texts.push(t.text),
                    other => media.extend(media_part(other, dropped)),
                }
            }
        }
    }
    let mut text = texts.join("\n\n");
    if !media.is_empty() {
        let note = format!("[{} attachment(s) returned; see the next user message]", media.len());
        text = if text.is_empty() { note } else { format!("{text}\n\n{note}") };
        media.insert(
            0,
            ContentPart::text(format!("Attachments returned by tool call {}:", result.call_id)),
        );
    }
    let mut msg = ChatMessage::text(ChatRole::Tool, text);
    msg.tool_call_id = Some(result.call_id);
    (msg, media)
}

fn convert_tools(tools: Vec<Tool>, dropped: &mut Dropped) -> Vec<ChatTool> {
    let mut out = Vec::with_capacity(tools.len());
    for tool in tools {
        match tool {
            Tool::Function(f) => out.push(ChatTool {
                kind: "function".to_owned(),
                function: Some(FunctionDef {
                    name: f.name,
                    description: f.description,
                    parameters: Some(schema::tool_parameters(f.parameters.unwrap_or(Value::Null))),
                    // A missing value means strict to the Responses API but not to chat;
                    // sending `true` would make schemas written for lax mode fail upstream,
                    // so only an explicit choice travels.
                    strict: f.strict,
                }),
                extra: Map::new(),
            }),
            Tool::Custom(c) => out.push(custom_function(c)),
            Tool::Other(_) => dropped.add(format!("tools.{}", tool.kind())),
        }
    }
    out
}

/// A custom tool as a function of one string, `input`. The description says so (a custom
/// tool's own may tell the model not to wrap its input in JSON) and carries the grammar the
/// input must match, where the model reads it.
fn custom_function(tool: CustomTool) -> ChatTool {
    let mut description = tool.description.unwrap_or_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(&format!(
        "Call this function with the tool's raw input as its one argument, `{CUSTOM_INPUT}` (a string)."
    ));
    let format = tool.format.unwrap_or(Value::Null);
    if let Some(definition) = format.get("definition").and_then(Value::as_str) {
        let syntax = format.get("syntax").and_then(Value::as_str).unwrap_or("grammar");
        description.push_str(&format!(" It must match this {syntax} grammar:\n{definition}"));
    }
    let parameters = json!({
        "type": "object",
        "properties": {
            CUSTOM_INPUT: {"type": "string", "description": "The tool's input, as raw text."}
        },
        "required": [CUSTOM_INPUT],
        "additionalProperties": false,
    });
    ChatTool {
        kind: "function".to_owned(),
        function: Some(FunctionDef {
            name: tool.name,
            description: Some(description),
            parameters: Some(parameters),
            strict: None,
        }),
        extra: Map::new(),
    }
}

fn convert_tool_choice(choice: ToolChoice, dropped: &mut Dropped) -> Option<ChatToolChoice> {
    match choice {
        ToolChoice::Mode(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Some(ChatToolChoice::Mode(mode))
        }
        ToolChoice::Named { kind, name } if kind == "function" || kind == "custom" => {
            Some(ChatToolChoice::Named(NamedToolChoice {
                kind: "function".to_owned(),
                function: NamedFunction { name },
            }))
        }
        _ => {
            dropped.add("tool_choice");
            None
        }
    }
}

/// `text.format` as `response_format`: the json_schema fields move under `json_schema`.
fn response_format(text: TextConfig, dropped: &mut Dropped) -> Option<Value> {
    dropped.add_keys("text", &text.extra);
    let format = text.format?;
    match format.get("type").and_then(Value::as_str) {
        Some("text") => None,
        Some("json_object") => Some(json!({"type": "json_object"})),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.to_owned(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => {
            dropped.add("text.format");
            None
        }
    }
}
