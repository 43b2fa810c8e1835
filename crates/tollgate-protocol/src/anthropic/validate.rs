//! `/v1/messages` request validation.
//!
//! Like chat requests, Messages requests travel as the JSON the client sent. Validation reads
//! borrowed views of the parts tollgate knows, block by block, so errors name the parameter
//! (`messages[2].content[0].source.data`) and unknown block kinds pass untouched.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::RequestError;
use crate::wire::{TextOr, view_at};

/// What the gateway needs to know about a valid Messages request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesSummary {
    /// The requested model name.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether any message (or tool result) carries an image.
    pub has_images: bool,
    /// Whether the last message is the user's and holds something besides tool results.
    pub last_is_user_text: bool,
    /// Whether the history holds `thinking` or `redacted_thinking` blocks, which only an
    /// Anthropic upstream can verify.
    pub has_thinking_blocks: bool,
}

// Several fields are read only to check their types: the values travel in the forwarded body.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "MessagesRequest")]
struct TopView<'a> {
    #[serde(borrow)]
    model: &'a str,
    messages: Vec<MessageHead>,
    #[serde(default)]
    system: Option<TextOr<IgnoredAny>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default, borrow)]
    stop_sequences: Option<Vec<&'a str>>,
    #[serde(default, borrow)]
    metadata: Option<MetadataView<'a>>,
    #[serde(default)]
    tools: Option<Vec<IgnoredAny>>,
    #[serde(default, borrow)]
    tool_choice: Option<ToolChoiceView<'a>>,
    #[serde(default, borrow)]
    thinking: Option<ThinkingView<'a>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "Message")]
struct MessageHead {
    role: Role,
    content: TextOr<IgnoredAny>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
    System,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct MetadataView<'a> {
    #[serde(default, borrow)]
    user_id: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolChoiceKind {
    Auto,
    Any,
    Tool,
    None,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct ToolChoiceView<'a> {
    #[serde(rename = "type")]
    kind: ToolChoiceKind,
    #[serde(default, borrow)]
    name: Option<&'a str>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct ThinkingView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename = "ContentBlock")]
struct BlockHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "TextBlock")]
struct TextView<'a> {
    #[serde(borrow)]
    text: &'a str,
}

#[derive(Deserialize)]
#[serde(rename = "ImageBlock")]
struct ImageView<'a> {
    #[serde(borrow)]
    source: SourceView<'a>,
}

#[derive(Deserialize)]
#[serde(rename = "DocumentBlock")]
struct DocumentView<'a> {
    #[serde(borrow)]
    source: SourceView<'a>,
}

#[derive(Deserialize)]
#[serde(rename = "Source")]
struct SourceView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    media_type: Option<&'a str>,
    #[serde(default, borrow)]
    data: Option<&'a str>,
    #[serde(default, borrow)]
    url: Option<&'a str>,
    #[serde(default, borrow)]
    file_id: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "ToolUseBlock")]
struct ToolUseView<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    name: &'a str,
    input: IgnoredAny,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "ToolResultBlock")]
struct ToolResultView<'a> {
    #[serde(borrow)]
    tool_use_id: &'a str,
    #[serde(default)]
    content: Option<TextOr<IgnoredAny>>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "ThinkingBlock")]
struct ThinkingBlockView<'a> {
    #[serde(borrow)]
    thinking: &'a str,
    #[serde(default, borrow)]
    signature: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "RedactedThinkingBlock")]
struct RedactedView<'a> {
    #[serde(borrow)]
    data: &'a str,
}

#[derive(Deserialize)]
#[serde(rename = "Tool")]
struct ToolHead<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "Tool")]
struct CustomToolView<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(default, borrow)]
    description: Option<&'a str>,
    input_schema: IgnoredAny,
}

/// What the block walk found.
#[derive(Default)]
struct Findings {
    has_images: bool,
    has_thinking_blocks: bool,
}

/// Checks a Messages request and summarises it.
pub fn validate_messages_request(body: &Value) -> Result<MessagesSummary, RequestError> {
    let v: TopView<'_> = view_at(body, "")?;
    if v.model.trim().is_empty() {
        return Err(RequestError::invalid_param("model", "'model' must not be empty."));
    }
    if v.messages.is_empty() {
        return Err(RequestError::invalid_param(
            "messages",
            "'messages' must contain at least one message.",
        ));
    }
    if let Some(ToolChoiceView { kind: ToolChoiceKind::Tool, name: None, .. }) = v.tool_choice {
        return Err(missing("tool_choice.name"));
    }
    let mut found = Findings::default();
    if let Some(TextOr::List(_)) = &v.system {
        for (k, block) in items(body.get("system")).iter().enumerate() {
            let at = format!("system[{k}]");
            let head: BlockHead<'_> = view_at(block, &at)?;
            if head.kind != "text" {
                return Err(RequestError::invalid_param(
                    format!("{at}.type"),
                    format!("Invalid value for '{at}.type': system blocks must be 'text'."),
                ));
            }
            check_block(block, &at, &mut found)?;
        }
    }
    let messages = items(body.get("messages"));
    let mut last_is_user_text = false;
    for (i, m) in v.messages.iter().enumerate() {
        let mut has_non_result = matches!(m.content, TextOr::Text(_));
        if let TextOr::List(_) = m.content {
            let blocks = items(messages.get(i).and_then(|m| m.get("content")));
            for (j, block) in blocks.iter().enumerate() {
                let kind = check_block(block, &format!("messages[{i}].content[{j}]"), &mut found)?;
                has_non_result |= kind != "tool_result";
            }
        }
        // System messages (Claude Code appends reminders after the user's turn) do not
        // change who spoke last.
        if m.role != Role::System {
            last_is_user_text = m.role == Role::User && has_non_result;
        }
    }
    for (i, tool) in items(body.get("tools")).iter().enumerate() {
        let at = format!("tools[{i}]");
        let head: ToolHead<'_> = view_at(tool, &at)?;
        if matches!(head.kind, None | Some("custom")) {
            let _: CustomToolView<'_> = view_at(tool, &at)?;
            if !tool.get("input_schema").is_some_and(Value::is_object) {
                return Err(invalid(
                    &format!("{at}.input_schema"),
                    "expected a JSON schema object",
                ));
            }
        }
    }
    Ok(MessagesSummary {
        model: v.model.to_owned(),
        stream: v.stream.unwrap_or(false),
        has_images: found.has_images,
        last_is_user_text,
        has_thinking_blocks: found.has_thinking_blocks,
    })
}

/// Checks one content block at `at` and returns its kind.
fn check_block<'a>(
    block: &'a Value,
    at: &str,
    found: &mut Findings,
) -> Result<&'a str, RequestError> {
    let head: BlockHead<'a> = view_at(block, at)?;
    match head.kind {
        "text" => {
            let _: TextView<'_> = view_at(block, at)?;
        }
        "image" => {
            let image: ImageView<'_> = view_at(block, at)?;
            check_source(&image.source, &format!("{at}.source"), true)?;
            found.has_images = true;
        }
        "document" => {
            let doc: DocumentView<'_> = view_at(block, at)?;
            check_source(&doc.source, &format!("{at}.source"), false)?;
        }
        "tool_use" => {
            let _: ToolUseView<'_> = view_at(block, at)?;
            if !block.get("input").is_some_and(Value::is_object) {
                return Err(invalid(&format!("{at}.input"), "expected an object"));
            }
        }
        "tool_result" => {
            let result: ToolResultView<'_> = view_at(block, at)?;
            if let Some(TextOr::List(_)) = result.content {
                for (k, inner) in items(block.get("content")).iter().enumerate() {
                    check_block(inner, &format!("{at}.content[{k}]"), found)?;
                }
            }
        }
        "thinking" => {
            let _: ThinkingBlockView<'_> = view_at(block, at)?;
            found.has_thinking_blocks = true;
        }
        "redacted_thinking" => {
            let _: RedactedView<'_> = view_at(block, at)?;
            found.has_thinking_blocks = true;
        }
        _ => {}
    }
    Ok(head.kind)
}

/// Checks that an image or document source has the fields its kind needs.
fn check_source(source: &SourceView<'_>, at: &str, image: bool) -> Result<(), RequestError> {
    let required: &[(&str, bool)] = match source.kind {
        "base64" => &[("media_type", source.media_type.is_some()), ("data", source.data.is_some())],
        "url" => &[("url", source.url.is_some())],
        "file" => &[("file_id", source.file_id.is_some())],
        "text" | "content" if !image => &[],
        _ => {
            let kinds = if image {
                "'base64', 'url' or 'file'"
            } else {
                "'base64', 'text', 'content', 'url' or 'file'"
            };
            return Err(invalid(&format!("{at}.type"), &format!("expected {kinds}")));
        }
    };
    match required.iter().find(|(_, present)| !present) {
        Some((field, _)) => Err(missing(&format!("{at}.{field}"))),
        None => Ok(()),
    }
}

/// The elements of a JSON array, or none.
fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn missing(param: &str) -> RequestError {
    RequestError {
        param: Some(param.to_owned()),
        message: format!("Missing required parameter: '{param}'."),
        code: "missing_required_parameter",
    }
}

fn invalid(param: &str, detail: &str) -> RequestError {
    RequestError {
        param: Some(param.to_owned()),
        message: format!("Invalid value for '{param}': {detail}."),
        code: "invalid_type",
    }
}
