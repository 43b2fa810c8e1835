//! An Anthropic Messages request as an OpenAI chat request.

use serde_json::Value;

use super::content::{collapse, document_parts, image_part, tool_message};
use crate::RequestError;
use crate::anthropic::{ContentBlock, Message, MessagesRequest, Role, Tool, ToolChoice};
use crate::openai::types::{
    ChatMessage, ChatRequest, ChatRole, ChatTool, ChatToolChoice, ContentPart, FunctionCall,
    FunctionDef, NamedFunction, NamedToolChoice, Stop, StreamOptions, ToolCall,
};
use crate::translate::{Dropped, schema};
use crate::wire::{self, TextOr};

/// OpenAI takes at most four stop sequences.
const MAX_STOP: usize = 4;
/// OpenAI rejects longer `user` values; Claude Code's user ids (JSON with device and
/// session ids) are longer, so they are dropped rather than cut into a false identity.
const MAX_USER_LEN: usize = 64;
/// The first system block Claude Code sends. It is meant for Anthropic's billing, means
/// nothing to another model, and its per-session suffix would defeat the upstream's
/// prefix cache, so it is dropped.
const BILLING_HEADER: &str = "x-anthropic-billing-header:";

/// Translates a Messages request body for an OpenAI-format deployment serving
/// `upstream_model`. Returns the chat request body and the fields it had to drop.
pub fn anthropic_request_to_openai(
    req: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    let typed: MessagesRequest = wire::view_at(req, "")?;
    let (chat, dropped) = messages_request_to_chat(typed, upstream_model);
    Ok((wire::to_value(&chat), dropped))
}

/// [`anthropic_request_to_openai`] on typed values.
///
/// - `system` (string or blocks) becomes the first system message; system-role messages
///   stay system messages where they are.
/// - `tool_result` blocks become `tool` messages, in order, ahead of the rest of their
///   user turn; see `tool_message` for errors and images.
/// - Text blocks join with blank lines into a string unless images or files need parts.
/// - `max_tokens` stays `max_tokens`: `max_completion_tokens` is not understood by every
///   OpenAI-compatible server, while OpenAI still accepts `max_tokens` for chat models.
pub fn messages_request_to_chat(
    req: MessagesRequest,
    upstream_model: &str,
) -> (ChatRequest, Vec<String>) {
    let mut dropped = Dropped::default();
    let mut out = ChatRequest { model: upstream_model.to_owned(), ..ChatRequest::default() };
    if let Some(system) = req.system {
        let text = system_text(system, "system", &mut dropped);
        if !text.is_empty() {
            out.messages.push(ChatMessage::text(ChatRole::System, text));
        }
    }
    for message in req.messages {
        push_message(message, &mut out.messages, &mut dropped);
    }
    let tools = convert_tools(req.tools.unwrap_or_default(), &mut dropped);
    if tools.is_empty() {
        if req.tool_choice.is_some() {
            dropped.add("tool_choice");
        }
    } else {
        if let Some(choice) = req.tool_choice {
            if choice.disables_parallel_tool_use() {
                out.parallel_tool_calls = Some(false);
            }
            out.tool_choice = Some(convert_tool_choice(choice));
        }
        out.tools = Some(tools);
    }
    if let Some(mut stops) = req.stop_sequences.filter(|s| !s.is_empty()) {
        if stops.len() > MAX_STOP {
            stops.truncate(MAX_STOP);
            dropped.add("stop_sequences");
        }
        out.stop = Some(Stop::Many(stops));
    }
    out.max_tokens = req.max_tokens;
    out.temperature = req.temperature;
    out.top_p = req.top_p;
    if req.top_k.is_some() {
        dropped.add("top_k");
    }
    if req.thinking.is_some() {
        dropped.add("thinking");
    }
    if let Some(metadata) = req.metadata {
        match metadata.user_id {
            Some(id) if id.len() <= MAX_USER_LEN => out.user = Some(id),
            Some(_) => dropped.add("metadata.user_id"),
            None => {}
        }
        dropped.add_keys("metadata", &metadata.extra);
    }
    if req.stream == Some(true) {
        out.stream = Some(true);
        // Anthropic streams end with usage; OpenAI streams only do when asked.
        out.stream_options =
            Some(StreamOptions { include_usage: Some(true), ..StreamOptions::default() });
    }
    dropped.add_keys("", &req.extra);
    (out, dropped.into_vec())
}

/// The text of a system prompt or system-role message; non-text blocks are dropped.
fn system_text(content: TextOr<ContentBlock>, at: &str, dropped: &mut Dropped) -> String {
    match content {
        TextOr::Text(s) => s,
        TextOr::List(blocks) => {
            let mut texts = Vec::new();
            for block in blocks {
                if block.cache_control().is_some() {
                    dropped.add("cache_control");
                }
                match block {
                    ContentBlock::Text(t) if t.text.starts_with(BILLING_HEADER) => {
                        dropped.add("system.x-anthropic-billing-header");
                    }
                    ContentBlock::Text(t) => texts.push(t.text),
                    other => dropped.add(format!("{at}.{}", other.kind())),
                }
            }
            texts.join("\n\n")
        }
    }
}

fn push_message(message: Message, out: &mut Vec<ChatMessage>, dropped: &mut Dropped) {
    match message.role {
        Role::System => {
            let text = system_text(message.content, "messages.content", dropped);
            out.push(ChatMessage::text(ChatRole::System, text));
        }
        Role::User => push_user(message.content, out, dropped),
        Role::Assistant => out.extend(assistant_message(message.content, dropped)),
    }
}

fn push_user(content: TextOr<ContentBlock>, out: &mut Vec<ChatMessage>, dropped: &mut Dropped) {
    let blocks = match content {
        TextOr::Text(s) => {
            out.push(ChatMessage::text(ChatRole::User, s));
            return;
        }
        TextOr::List(blocks) => blocks,
    };
    let mut attachments = Vec::new();
    let mut parts = Vec::new();
    for block in blocks {
        if block.cache_control().is_some() {
            dropped.add("cache_control");
        }
        match block {
            ContentBlock::ToolResult(result) => {
                let (tool, images) = tool_message(result, dropped);
                out.push(tool);
                attachments.extend(images);
            }
            ContentBlock::Text(t) => parts.push(ContentPart::text(t.text)),
            ContentBlock::Image(i) => parts.extend(image_part(i.source, dropped)),
            ContentBlock::Document(d) => parts.extend(document_parts(d, dropped)),
            other => dropped.add(format!("messages.content.{}", other.kind())),
        }
    }
    attachments.extend(parts);
    if !attachments.is_empty() {
        out.push(ChatMessage::new(ChatRole::User, Some(collapse(attachments))));
    }
}

/// An assistant turn: text and tool calls. Thinking is dropped because an OpenAI upstream
/// cannot take it back, and without it nothing is lost that the upstream could verify.
fn assistant_message(content: TextOr<ContentBlock>, dropped: &mut Dropped) -> Option<ChatMessage> {
    let blocks = match content {
        TextOr::Text(s) => return Some(ChatMessage::text(ChatRole::Assistant, s)),
        TextOr::List(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        if block.cache_control().is_some() {
            dropped.add("cache_control");
        }
        match block {
            ContentBlock::Text(t) => texts.push(t.text),
            ContentBlock::ToolUse(t) => {
                let arguments = match t.input {
                    Value::Null => "{}".to_owned(),
                    input => wire::to_string(&input),
                };
                calls.push(ToolCall {
                    id: t.id,
                    kind: "function".to_owned(),
                    function: FunctionCall { name: t.name, arguments },
                });
            }
            other => dropped.add(format!("messages.content.{}", other.kind())),
        }
    }
    if texts.is_empty() && calls.is_empty() {
        return None;
    }
    let content = (!texts.is_empty()).then(|| TextOr::Text(texts.join("\n\n")));
    let mut msg = ChatMessage::new(ChatRole::Assistant, content);
    msg.tool_calls = (!calls.is_empty()).then_some(calls);
    Some(msg)
}

fn convert_tools(tools: Vec<Tool>, dropped: &mut Dropped) -> Vec<ChatTool> {
    let mut out = Vec::with_capacity(tools.len());
    for tool in tools {
        match tool {
            Tool::Custom(t) => {
                if t.cache_control.is_some() {
                    dropped.add("cache_control");
                }
                dropped.add_keys("tools", &t.extra);
                out.push(ChatTool {
                    kind: "function".to_owned(),
                    function: Some(FunctionDef {
                        name: t.name,
                        description: t.description,
                        parameters: Some(schema::tool_parameters(t.input_schema)),
                        strict: None,
                    }),
                    extra: serde_json::Map::new(),
                });
            }
            Tool::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                dropped.add(format!("tools.{kind}"));
            }
        }
    }
    out
}

fn convert_tool_choice(choice: ToolChoice) -> ChatToolChoice {
    match choice {
        ToolChoice::Auto { .. } => ChatToolChoice::Mode("auto".to_owned()),
        ToolChoice::Any { .. } => ChatToolChoice::Mode("required".to_owned()),
        ToolChoice::None => ChatToolChoice::Mode("none".to_owned()),
        ToolChoice::Tool { name, .. } => ChatToolChoice::Named(NamedToolChoice {
            kind: "function".to_owned(),
            function: NamedFunction { name },
        }),
    }
}
