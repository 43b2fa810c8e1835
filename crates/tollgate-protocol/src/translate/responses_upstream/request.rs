//! A chat completions request as a Responses request.

use serde_json::{Map, Value, json};

use crate::RequestError;
use crate::openai::types::{
    ChatMessage, ChatRequest, ChatRole, ChatTool, ChatToolChoice, ContentPart,
};
use crate::responses::{
    FunctionCallItem, FunctionCallOutputItem, FunctionTool, InputImage, Item, ItemRole,
    MessageItem, Part, ReasoningConfig, ResponsesRequest, TextConfig, Tool, ToolChoice,
};
use crate::translate::{Dropped, schema};
use crate::wire::{self, TextOr};

/// Translates a chat request body for a Responses deployment serving `upstream_model`.
/// Returns the Responses request body and the fields it had to drop.
pub fn chat_request_to_responses(
    body: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    let typed: ChatRequest = wire::view_at(body, "")?;
    let (req, dropped) = chat_to_responses_request(typed, upstream_model)?;
    Ok((wire::to_value(&req), dropped))
}

/// [`chat_request_to_responses`] on typed values.
///
/// - System and developer messages before the first other message join into
///   `instructions`; later ones stay where they are, as message items of their role.
/// - Assistant messages become a `message` item with `output_text` and one
///   `function_call` item per tool call; tool messages become `function_call_output`.
/// - `max_completion_tokens`, else `max_tokens`, becomes `max_output_tokens`.
/// - `store` is always `false`: nothing here keeps the response for later turns.
/// - `n` above 1 is refused: a Response holds one answer.
pub fn chat_to_responses_request(
    req: ChatRequest,
    upstream_model: &str,
) -> Result<(ResponsesRequest, Vec<String>), RequestError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(RequestError::invalid_param(
            "n",
            "'n' greater than 1 is not supported by this model's provider.",
        ));
    }
    let mut dropped = Dropped::default();
    let mut instructions = Vec::new();
    let mut items = Vec::new();
    for message in req.messages {
        let leading = items.is_empty();
        if leading && matches!(message.role, ChatRole::System | ChatRole::Developer) {
            let parts = parts(message.content, ItemRole::System, &mut dropped);
            instructions.extend(parts.into_iter().filter_map(|p| match p {
                Part::InputText(t) => Some(t.text),
                _ => None,
            }));
            continue;
        }
        push_message(message, &mut items, &mut dropped);
    }
    let tools: Vec<Tool> = req
        .tools
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| convert_tool(t, &mut dropped))
        .collect();
    let mut out = ResponsesRequest {
        model: upstream_model.to_owned(),
        input: Some(TextOr::List(items)),
        instructions: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stream: req.stream.filter(|s| *s),
        store: Some(false),
        user: req.user,
        ..ResponsesRequest::default()
    };
    if tools.is_empty() {
        if req.tool_choice.is_some() {
            dropped.add("tool_choice");
        }
    } else {
        out.tool_choice = req.tool_choice.and_then(|c| convert_tool_choice(c, &mut dropped));
        out.parallel_tool_calls = req.parallel_tool_calls;
        out.tools = Some(tools);
    }
    out.reasoning = req
        .reasoning_effort
        .map(|effort| ReasoningConfig { effort: Some(effort), ..ReasoningConfig::default() });
    if let Some(format) = req.response_format {
        out.text = text_format(format, &mut dropped)
            .map(|format| TextConfig { format: Some(format), extra: Map::new() });
    }
    if req.stop.is_some() {
        dropped.add("stop");
    }
    if let Some(options) = req.stream_options {
        // `include_usage` is honoured by the stream translation; Responses streams always
        // end with usage.
        dropped.add_keys("stream_options", &options.extra);
    }
    dropped.add_keys("", &req.extra);
    Ok((out, dropped.into_vec()))
}

fn push_message(message: ChatMessage, items: &mut Vec<Item>, dropped: &mut Dropped) {
    if message.name.is_some() {
        dropped.add("messages.name");
    }
    dropped.add_keys("messages", &message.extra);
    let role = match message.role {
        ChatRole::User => ItemRole::User,
        ChatRole::Assistant => ItemRole::Assistant,
        ChatRole::System => ItemRole::System,
        ChatRole::Developer => ItemRole::Developer,
        ChatRole::Tool => {
            let text: Vec<String> = parts(message.content, ItemRole::System, dropped)
                .into_iter()
                .filter_map(|p| match p {
                    Part::InputText(t) => Some(t.text),
                    _ => None,
                })
                .collect();
            items.push(Item::FunctionCallOutput(FunctionCallOutputItem {
                id: None,
                call_id: message.tool_call_id.unwrap_or_default(),
                output: TextOr::Text(text.join("\n\n")),
                status: None,
            }));
            return;
        }
        ChatRole::Function => {
            dropped.add("messages.function");
            return;
        }
    };
    if message.reasoning_content.is_some() {
        // A Responses upstream takes reasoning back only as its own encrypted items.
        dropped.add("messages.reasoning_content");
    }
    let content = parts(message.content, role, dropped);
    if !content.is_empty() {
        items.push(Item::Message(MessageItem {
            id: None,
            role,
            content: TextOr::List(content),
            status: None,
            extra: Map::new(),
        }));
    }
    for call in message.tool_calls.into_iter().flatten() {
        items.push(Item::FunctionCall(FunctionCallItem {
            id: None,
            call_id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
            status: None,
        }));
    }
}

/// Chat content as parts of a message of `role`: assistant text is `output_text`, other
/// text `input_text`; images and files are kept for user messages only, as the Responses
/// API takes them nowhere else. Empty text is left out.
fn parts(content: Option<TextOr<ContentPart>>, role: ItemRole, dropped: &mut Dropped) -> Vec<Part> {
    let text = |t: String| match role {
        ItemRole::Assistant => Part::output_text(t),
        _ => Part::input_text(t),
    };
    let list = match content {
        None => return Vec::new(),
        Some(TextOr::Text(s)) if s.is_empty() => return Vec::new(),
        Some(TextOr::Text(s)) => return vec![text(s)],
        Some(TextOr::List(parts)) => parts,
    };
    let mut out = Vec::with_capacity(list.len());
    for part in list {
        match part {
            ContentPart::Text(t) if t.text.is_empty() => {}
            ContentPart::Text(t) => out.push(text(t.text)),
            ContentPart::Refusal(r) if role == ItemRole::Assistant => {
                out.push(Part::refusal(r.refusal))
            }
            ContentPart::Refusal(r) => out.push(text(r.refusal)),
            ContentPart::ImageUrl(i) if role == ItemRole::User => {
                out.push(Part::InputImage(InputImage {
                    image_url: Some(i.image_url.url),
                    file_id: None,
                    detail: Some(i.image_url.detail.unwrap_or_else(|| "auto".to_owned())),
                }));
            }
            ContentPart::Other(v) if role == ItemRole::User && is_inline_file(&v) => {
                let file = &v["file"];
                let mut part = Map::new();
                part.insert("type".to_owned(), json!("input_file"));
                for key in ["filename", "file_data"] {
                    if let Some(value) = file.get(key) {
                        part.insert(key.to_owned(), value.clone());
                    }
                }
                out.push(Part::Other(Value::Object(part)));
            }
            ContentPart::ImageUrl(_) => dropped.add("messages.content.image_url"),
            ContentPart::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                dropped.add(format!("messages.content.{kind}"));
            }
        }
    }
    out
}

/// A `file` part with inline data; file ids belong to the client's provider account.
fn is_inline_file(part: &Value) -> bool {
    part.get("type").and_then(Value::as_str) == Some("file")
        && part.get("file").and_then(|f| f.get("file_data")).is_some_and(Value::is_string)
}

fn convert_tool(tool: ChatTool, dropped: &mut Dropped) -> Option<Tool> {
    match (tool.kind.as_str(), tool.function) {
        ("function", Some(f)) => Some(Tool::Function(FunctionTool {
            name: f.name,
            description: f.description,
            parameters: Some(schema::tool_parameters(f.parameters.unwrap_or(Value::Null))),
            // The Responses API reads a missing `strict` as true, which would reject the
            // loose schemas chat clients write; chat's default is false.
            strict: Some(f.strict.unwrap_or(false)),
        })),
        (kind, _) => {
            dropped.add(format!("tools.{kind}"));
            None
        }
    }
}

fn convert_tool_choice(choice: ChatToolChoice, dropped: &mut Dropped) -> Option<ToolChoice> {
    match choice {
        ChatToolChoice::Mode(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Some(ToolChoice::Mode(mode))
        }
        ChatToolChoice::Named(named) => {
            Some(ToolChoice::Named { kind: "function".to_owned(), name: named.function.name })
        }
        ChatToolChoice::Mode(_) => {
            dropped.add("tool_choice");
            None
        }
    }
}

/// `response_format` as `text.format`: the `json_schema` object's fields move up a level.
fn text_format(format: Value, dropped: &mut Dropped) -> Option<Value> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Some(json!({"type": "text"})),
        Some("json_object") => Some(json!({"type": "json_object"})),
        Some("json_schema") => {
            let mut out = Map::new();
            out.insert("type".to_owned(), json!("json_schema"));
            if let Some(Value::Object(schema)) = format.get("json_schema") {
                for (key, value) in schema {
                    out.insert(key.clone(), value.clone());
                }
            }
            Some(Value::Object(out))
        }
        _ => {
            dropped.add("response_format");
            None
        }
    }
}
