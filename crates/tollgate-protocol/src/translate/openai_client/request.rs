//! An OpenAI chat request as an Anthropic Messages request.

use serde_json::{Map, Value, json};

use crate::RequestError;
use crate::anthropic::{
    ContentBlock, CustomTool, DocumentBlock, ImageBlock, ImageSource, Message, MessagesRequest,
    Metadata, Role, Tool, ToolChoice, ToolResultBlock, ToolUseBlock,
};
use crate::openai::types::{
    ChatMessage, ChatRequest, ChatRole, ChatTool, ChatToolChoice, ContentPart, Stop,
};
use crate::translate::{Dropped, schema, tool_input};
use crate::wire::{self, TextOr};

/// Anthropic requires `max_tokens`; OpenAI clients often leave it out.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Translates a chat request body for an Anthropic-format deployment serving
/// `upstream_model`. Returns the Messages request body and the fields it had to drop.
pub fn openai_request_to_anthropic(
    body: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    let typed: ChatRequest = wire::view_at(body, "")?;
    let (req, dropped) = chat_request_to_messages(typed, upstream_model)?;
    Ok((wire::to_value(&req), dropped))
}

/// [`openai_request_to_anthropic`] on typed values.
///
/// - System and developer messages, wherever they are, join the top-level `system` in
///   order: Anthropic has no other place for instructions.
/// - Tool messages become `tool_result` blocks; consecutive messages of one Anthropic role
///   merge into one message, so the results of a turn share the user message that must
///   follow the tool calls.
/// - `max_completion_tokens`, else `max_tokens`, else 4096 becomes `max_tokens`.
/// - `temperature` is clamped to Anthropic's 0..=1.
/// - `n` above 1 is refused: Anthropic returns one answer per request.
pub fn chat_request_to_messages(
    req: ChatRequest,
    upstream_model: &str,
) -> Result<(MessagesRequest, Vec<String>), RequestError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(RequestError::invalid_param(
            "n",
            "'n' greater than 1 is not supported by this model's provider.",
        ));
    }
    let mut dropped = Dropped::default();
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for message in req.messages {
        if matches!(message.role, ChatRole::System | ChatRole::Developer) {
            system.extend(text_blocks(message.content, &mut dropped));
            continue;
        }
        let Some(converted) = convert_message(message, &mut dropped) else {
            continue;
        };
        match messages.last_mut() {
            Some(last) if last.role == converted.role => append(last, converted.content),
            _ => messages.push(converted),
        }
    }
    let tools: Vec<Tool> = req
        .tools
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| convert_tool(t, &mut dropped))
        .collect();
    let mut tool_choice = None;
    if !tools.is_empty() {
        let parallel_off = req.parallel_tool_calls == Some(false);
        tool_choice = match req.tool_choice {
            Some(choice) => convert_tool_choice(choice, parallel_off, &mut dropped),
            None if parallel_off => {
                Some(ToolChoice::Auto { disable_parallel_tool_use: Some(true) })
            }
            None => None,
        };
    } else if req.tool_choice.is_some() {
        dropped.add("tool_choice");
    }
    let stop_sequences = match req.stop {
        Some(Stop::One(s)) => Some(vec![s]),
        Some(Stop::Many(v)) if !v.is_empty() => Some(v),
        _ => None,
    };
    if req.response_format.is_some() {
        dropped.add("response_format");
    }
    if req.reasoning_effort.is_some() {
        dropped.add("reasoning_effort");
    }
    dropped.add_keys("", &req.extra);
    let out = MessagesRequest {
        model: upstream_model.to_owned(),
        messages,
        system: match system.len() {
            0 => None,
            _ => Some(TextOr::List(system)),
        },
        max_tokens: Some(
            req.max_completion_tokens.or(req.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
        ),
        stop_sequences,
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        stream: req.stream.filter(|s| *s),
        metadata: req.user.map(|user_id| Metadata { user_id: Some(user_id), extra: Map::new() }),
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        thinking: None,
        extra: Map::new(),
    };
    Ok((out, dropped.into_vec()))
}

fn convert_message(message: ChatMessage, dropped: &mut Dropped) -> Option<Message> {
    if message.name.is_some() {
        dropped.add("messages.name");
    }
    dropped.add_keys("messages", &message.extra);
    match message.role {
        ChatRole::User => {
            let blocks = content_blocks(message.content, dropped);
            (!blocks.is_empty())
                .then_some(Message { role: Role::User, content: TextOr::List(blocks) })
        }
        ChatRole::Assistant => {
            if message.reasoning_content.is_some() {
                // Anthropic accepts thinking back only with its own signature.
                dropped.add("messages.reasoning_content");
            }
            let mut blocks = content_blocks(message.content, dropped);
            for call in message.tool_calls.into_iter().flatten() {
                blocks.push(ContentBlock::ToolUse(ToolUseBlock {
                    id: call.id,
                    name: call.function.name,
                    input: tool_input(&call.function.arguments),
                    cache_control: None,
                    extra: Map::new(),
                }));
            }
            (!blocks.is_empty())
                .then_some(Message { role: Role::Assistant, content: TextOr::List(blocks) })
        }
        ChatRole::Tool => {
            let text: Vec<String> = text_blocks(message.content, dropped)
                .into_iter()
                .filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t.text),
                    _ => None,
                })
                .collect();
            Some(Message {
                role: Role::User,
                content: TextOr::List(vec![ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id: message.tool_call_id.unwrap_or_default(),
                    // Anthropic takes a result without content, not always an empty one.
                    content: Some(text.join("\n\n")).filter(|t| !t.is_empty()).map(TextOr::Text),
                    is_error: None,
                    cache_control: None,
                    extra: Map::new(),
                })]),
            })
        }
        // The caller has already moved these into `system`.
        ChatRole::System | ChatRole::Developer => None,
        ChatRole::Function => {
            dropped.add("messages.function");
            None
        }
    }
}

/// Appends content to a message of the same role.
fn append(last: &mut Message, content: TextOr<ContentBlock>) {
    let into_blocks = |c: TextOr<ContentBlock>| match c {
        TextOr::Text(s) => vec![ContentBlock::text(s)],
        TextOr::List(blocks) => blocks,
    };
    let mut blocks = into_blocks(std::mem::replace(&mut last.content, TextOr::List(Vec::new())));
    blocks.extend(into_blocks(content));
    last.content = TextOr::List(blocks);
}

/// Content as text blocks only (system, developer and tool messages).
fn text_blocks(content: Option<TextOr<ContentPart>>, dropped: &mut Dropped) -> Vec<ContentBlock> {
    content_blocks(content, dropped)
        .into_iter()
        .filter(|b| {
            let keep = matches!(b, ContentBlock::Text(_));
            if !keep {
                dropped.add(format!("messages.content.{}", b.kind()));
            }
            keep
        })
        .collect()
}

/// Content as blocks. Anthropic rejects empty text blocks, so those are left out.
fn content_blocks(
    content: Option<TextOr<ContentPart>>,
    dropped: &mut Dropped,
) -> Vec<ContentBlock> {
    let parts = match content {
        None => return Vec::new(),
        Some(TextOr::Text(s)) if s.is_empty() => return Vec::new(),
        Some(TextOr::Text(s)) => return vec![ContentBlock::text(s)],
        Some(TextOr::List(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            ContentPart::Text(t) if t.text.is_empty() => {}
            ContentPart::Text(t) => blocks.push(ContentBlock::text(t.text)),
            ContentPart::Refusal(r) => blocks.push(ContentBlock::text(r.refusal)),
            ContentPart::ImageUrl(i) => {
                // Anthropic sizes images itself; OpenAI's `detail` has no counterpart.
                if i.image_url.detail.is_some() {
                    dropped.add("messages.content.image_url.detail");
                }
                blocks.push(ContentBlock::Image(ImageBlock {
                    source: image_source(i.image_url.url),
                    cache_control: None,
                    extra: Map::new(),
                }));
            }
            ContentPart::Other(v) => match pdf_document(&v) {
                Some(doc) => blocks.push(doc),
                None => {
                    let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                    dropped.add(format!("messages.content.{kind}"));
                }
            },
        }
    }
    blocks
}

/// `data:<media type>;base64,<data>` becomes an inline source; anything else is a URL.
fn image_source(url: String) -> ImageSource {
    match parse_data_url(&url) {
        Some((media_type, data)) => {
            ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() }
        }
        None => ImageSource::Url { url },
    }
}

fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// A `file` part holding an inline PDF, as a document block.
fn pdf_document(part: &Value) -> Option<ContentBlock> {
    if part.get("type").and_then(Value::as_str) != Some("file") {
        return None;
    }
    let file = part.get("file")?;
    let (media_type, data) = parse_data_url(file.get("file_data")?.as_str()?)?;
    Some(ContentBlock::Document(DocumentBlock {
        source: json!({ "type": "base64", "media_type": media_type, "data": data }),
        title: file.get("filename").and_then(Value::as_str).map(str::to_owned),
        cache_control: None,
        extra: Map::new(),
    }))
}

fn convert_tool(tool: ChatTool, dropped: &mut Dropped) -> Option<Tool> {
    match (tool.kind.as_str(), tool.function) {
        ("function", Some(f)) => {
            if f.strict.is_some() {
                dropped.add("tools.function.strict");
            }
            Some(Tool::Custom(CustomTool {
                name: f.name,
                description: f.description,
                input_schema: schema::tool_parameters(f.parameters.unwrap_or(Value::Null)),
                cache_control: None,
                extra: Map::new(),
            }))
        }
        (kind, _) => {
            dropped.add(format!("tools.{kind}"));
            None
        }
    }
}

fn convert_tool_choice(
    choice: ChatToolChoice,
    parallel_off: bool,
    dropped: &mut Dropped,
) -> Option<ToolChoice> {
    let disable_parallel_tool_use = parallel_off.then_some(true);
    match choice {
        ChatToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => Some(ToolChoice::Auto { disable_parallel_tool_use }),
            "required" => Some(ToolChoice::Any { disable_parallel_tool_use }),
            "none" => Some(ToolChoice::None),
            _ => {
                dropped.add("tool_choice");
                None
            }
        },
        ChatToolChoice::Named(named) => {
            Some(ToolChoice::Tool { name: named.function.name, disable_parallel_tool_use })
        }
    }
}
