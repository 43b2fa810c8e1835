//! Anthropic content blocks, the parts of a message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::{TextOr, deserialize_tagged_or_raw};

/// One content block. Kinds tollgate does not translate (`server_tool_use`,
/// `web_search_tool_result`, `search_result`, `container_upload`, ...) are kept as raw JSON
/// in [`ContentBlock::Other`] so a same-protocol path never loses them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// `text`.
    Text(TextBlock),
    /// `image`.
    Image(ImageBlock),
    /// `document` (PDF, plain text, or nested content).
    Document(DocumentBlock),
    /// `tool_use`: the model calls a tool.
    ToolUse(ToolUseBlock),
    /// `tool_result`: the client answers a tool call.
    ToolResult(ToolResultBlock),
    /// `thinking`: extended thinking with its signature.
    Thinking(ThinkingBlock),
    /// `redacted_thinking`: encrypted thinking.
    RedactedThinking(RedactedThinkingBlock),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Value),
}

deserialize_tagged_or_raw!(ContentBlock {
    "text" => Text,
    "image" => Image,
    "document" => Document,
    "tool_use" => ToolUse,
    "tool_result" => ToolResult,
    "thinking" => Thinking,
    "redacted_thinking" => RedactedThinking,
});

impl ContentBlock {
    /// A text block with nothing else set.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextBlock { text: text.into(), cache_control: None, extra: Map::new() })
    }

    /// The `type` tag of this block.
    pub fn kind(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Document(_) => "document",
            Self::ToolUse(_) => "tool_use",
            Self::ToolResult(_) => "tool_result",
            Self::Thinking(_) => "thinking",
            Self::RedactedThinking(_) => "redacted_thinking",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The block's `cache_control`, if it has one.
    pub fn cache_control(&self) -> Option<&Value> {
        match self {
            Self::Text(b) => b.cache_control.as_ref(),
            Self::Image(b) => b.cache_control.as_ref(),
            Self::Document(b) => b.cache_control.as_ref(),
            Self::ToolUse(b) => b.cache_control.as_ref(),
            Self::ToolResult(b) => b.cache_control.as_ref(),
            Self::Other(v) => v.get("cache_control"),
            Self::Thinking(_) | Self::RedactedThinking(_) => None,
        }
    }
}

/// `{"type": "text", "text"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextBlock {
    /// The text.
    pub text: String,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// `citations` and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "image", "source"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// Where the image comes from.
    pub source: ImageSource,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `source` of an image block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline bytes.
    Base64 {
        /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
        media_type: String,
        /// Base64 without a `data:` prefix.
        data: String,
    },
    /// A URL the provider fetches.
    Url {
        /// The image URL.
        url: String,
    },
    /// Any other kind (`file`, ...), as sent.
    #[serde(untagged)]
    Other(Value),
}

#[derive(Deserialize)]
struct Base64Fields {
    media_type: String,
    data: String,
}

#[derive(Deserialize)]
struct UrlFields {
    url: String,
}

impl<'de> Deserialize<'de> for ImageSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::wire::{tag_of, untagged_fields};
        let v = Value::deserialize(d)?;
        match tag_of(&v).as_deref() {
            Some("base64") => untagged_fields(v)
                .map(|f: Base64Fields| Self::Base64 { media_type: f.media_type, data: f.data }),
            Some("url") => untagged_fields(v).map(|f: UrlFields| Self::Url { url: f.url }),
            _ => Ok(Self::Other(v)),
        }
    }
}

/// `{"type": "document", "source"}`. The source stays raw: its kinds (`base64` PDF, `text`,
/// `content`, `url`, `file`) are only inspected when translating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// The document source object.
    pub source: Value,
    /// An optional title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// `context`, `citations` and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "tool_use", "id", "name", "input"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUseBlock {
    /// The call id the result refers back to.
    pub id: String,
    /// The tool name.
    pub name: String,
    /// The arguments, a JSON object.
    #[serde(default)]
    pub input: Value,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "tool_result", "tool_use_id", "content", "is_error"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResultBlock {
    /// The `tool_use` this answers.
    pub tool_use_id: String,
    /// The result: a string or blocks (text, image, document, search results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<TextOr<ContentBlock>>,
    /// Whether the tool failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "thinking", "thinking", "signature"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingBlock {
    /// The thinking text.
    pub thinking: String,
    /// Anthropic's proof the thinking is unaltered; empty when the text came from elsewhere.
    #[serde(default)]
    pub signature: String,
}

/// `{"type": "redacted_thinking", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedactedThinkingBlock {
    /// Encrypted thinking, opaque to everyone but Anthropic.
    pub data: String,
}
