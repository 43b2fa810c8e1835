//! The `/v1/messages` request body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ContentBlock;
use crate::wire::TextOr;

/// A Messages API request. Fields tollgate does not model (`context_management`,
/// `output_config`, `container`, `mcp_servers`, `service_tier`, ...) land in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The system prompt: a string or text blocks (which may carry `cache_control`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<TextOr<ContentBlock>>,
    /// Output token limit. Anthropic requires it; tollgate accepts its absence because
    /// OpenAI-format deployments do not need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Sampling temperature, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Whether to stream server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Request metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model must use tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// A string or content blocks.
    pub content: TextOr<ContentBlock>,
}

/// A message role. `system` is not in Anthropic's documented API, but Claude Code has been
/// seen sending system-role messages inside `messages`, so they are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (and tool results).
    User,
    /// The model (and its tool calls).
    Assistant,
    /// Instructions placed mid-conversation.
    System,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque end-user id. Claude Code puts a JSON string with device and session ids here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool definition: a custom tool with a JSON schema, or one of Anthropic's server/beta
/// tools (`web_search_20250305`, `bash_20250124`, ...) kept as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Tool {
    /// A client tool described by a JSON schema.
    Custom(CustomTool),
    /// A typed Anthropic tool, as sent.
    Other(Value),
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        // Custom tools carry no `type`, or `"custom"`; every typed tool has a versioned name.
        match crate::wire::tag_of(&v).as_deref() {
            None | Some("custom") => crate::wire::untagged_fields(v).map(Self::Custom),
            Some(_) => Ok(Self::Other(v)),
        }
    }
}

/// A client tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomTool {
    /// The tool name.
    pub name: String,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema of the input object.
    #[serde(default)]
    pub input_schema: Value,
    /// Prompt-caching breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Beta fields (`defer_loading`, `input_examples`, `strict`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// At most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool to call.
        name: String,
        /// At most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must not call tools.
    None,
}

impl ToolChoice {
    /// Whether parallel tool use was switched off.
    pub fn disables_parallel_tool_use(&self) -> bool {
        match self {
            Self::Auto { disable_parallel_tool_use }
            | Self::Any { disable_parallel_tool_use }
            | Self::Tool { disable_parallel_tool_use, .. } => {
                disable_parallel_tool_use.unwrap_or(false)
            }
            Self::None => false,
        }
    }
}

/// `thinking`: `{"type": "enabled", "budget_tokens"}`, `{"type": "disabled"}` or newer kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// `enabled`, `disabled`, `adaptive`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Token budget for thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
