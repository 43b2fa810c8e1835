//! The `/v1/messages` response body and its stream events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ContentBlock;
use crate::wire::deserialize_tagged_or_raw;

/// A complete message, the non-streaming response (and the `message` of `message_start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// `msg_...`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type", default = "message_kind")]
    pub kind: String,
    /// Always `assistant`.
    #[serde(default = "assistant_role")]
    pub role: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// What the model produced.
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`, ...;
    /// null in `message_start`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched, if one did.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token counts.
    #[serde(default)]
    pub usage: Usage,
    /// `container` and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn message_kind() -> String {
    "message".to_owned()
}

fn assistant_role() -> String {
    "assistant".to_owned()
}

/// Token counts of a message. `input_tokens` excludes cached input, unlike OpenAI's
/// `prompt_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens, thinking included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `server_tool_use`, `service_tier`, `cache_creation` breakdown, ...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    /// All input tokens, cached ones included: OpenAI's `prompt_tokens`. Saturating, because
    /// the counts are whatever the upstream sent.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
    }
}

/// The usage of `message_delta`: cumulative counts, each present only when reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Uncached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// One event of a Messages stream; the SSE `event:` name equals [`StreamEvent::name`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message envelope, with empty content.
    MessageStart {
        /// The message so far.
        message: MessagesResponse,
    },
    /// A block opens at `index`.
    ContentBlockStart {
        /// Block position in `content`.
        index: usize,
        /// The block with empty text/input.
        content_block: ContentBlock,
    },
    /// More of the block at `index`.
    ContentBlockDelta {
        /// Block position in `content`.
        index: usize,
        /// The increment.
        delta: BlockDelta,
    },
    /// The block at `index` is complete.
    ContentBlockStop {
        /// Block position in `content`.
        index: usize,
    },
    /// Top-level changes: stop reason and cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDelta,
        /// Cumulative usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<DeltaUsage>,
    },
    /// The end of the message.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// A failure after the stream began.
    Error {
        /// What went wrong.
        error: ErrorDetail,
    },
}

impl StreamEvent {
    /// The SSE event name, which Anthropic sets to the `type` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }

    /// The event as SSE bytes: `event: <type>\ndata: <json>\n\n`.
    pub fn to_sse(&self) -> bytes::Bytes {
        crate::sse::encode(Some(self.name()), &crate::wire::to_string(self))
    }
}

/// The `delta` of `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text fragment.
        text: String,
    },
    /// A fragment of a tool call's input JSON.
    InputJsonDelta {
        /// The JSON fragment.
        partial_json: String,
    },
    /// More thinking.
    ThinkingDelta {
        /// The thinking fragment.
        thinking: String,
    },
    /// The thinking block's signature, sent just before it stops.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// Any other kind (`citations_delta`, ...), as sent.
    #[serde(untagged)]
    Other(Value),
}

#[derive(Deserialize)]
struct TextDeltaFields {
    text: String,
}
#[derive(Deserialize)]
struct InputJsonFields {
    partial_json: String,
}
#[derive(Deserialize)]
struct ThinkingFields {
    thinking: String,
}
#[derive(Deserialize)]
struct SignatureFields {
    signature: String,
}

/// Field-struct wrappers so the shared tagged-or-raw deserializer can build struct variants.
enum DeltaFields {
    Text(TextDeltaFields),
    InputJson(InputJsonFields),
    Thinking(ThinkingFields),
    Signature(SignatureFields),
    Other(Value),
}

deserialize_tagged_or_raw!(DeltaFields {
    "text_delta" => Text,
    "input_json_delta" => InputJson,
    "thinking_delta" => Thinking,
    "signature_delta" => Signature,
});

impl<'de> Deserialize<'de> for BlockDelta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match DeltaFields::deserialize(d)? {
            DeltaFields::Text(f) => Self::TextDelta { text: f.text },
            DeltaFields::InputJson(f) => Self::InputJsonDelta { partial_json: f.partial_json },
            DeltaFields::Thinking(f) => Self::ThinkingDelta { thinking: f.thinking },
            DeltaFields::Signature(f) => Self::SignatureDelta { signature: f.signature },
            DeltaFields::Other(v) => Self::Other(v),
        })
    }
}

/// The `delta` of `message_delta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the message ended.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// `{"type", "message"}` inside an error body or event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `overloaded_error`, `api_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// A message for people.
    pub message: String,
}
