//! The `/v1/responses` request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Item;
use crate::wire::{TextOr, deserialize_tagged_or_raw};

/// A `/v1/responses` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The model name.
    pub model: String,
    /// The conversation: a user message as a string, or items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TextOr<Item>>,
    /// System (developer) instructions for this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model must use tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Output token limit, reasoning included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Reasoning settings for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    /// Output format and verbosity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// Whether to stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether the provider may store the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// A stored response to continue from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `include`, `metadata`, `truncation`, `service_tier` and anything newer, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `reasoning`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    /// `minimal`, `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `auto`, `concise` or `detailed`: whether and how to summarise reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// `{"type": "text"}`, `{"type": "json_object"}` or
    /// `{"type": "json_schema", "name", "schema", "description", "strict"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// `verbosity` and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool definition. Built-in tools (`web_search`, `file_search`, `computer_use_preview`,
/// `code_interpreter`, `local_shell`, `mcp`, ...) are kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    /// `{"type": "function", "name", "description", "parameters", "strict"}`.
    Function(FunctionTool),
    /// `{"type": "custom", "name", "description", "format"}`: a tool whose input is free
    /// text (Codex's `apply_patch`).
    Custom(CustomTool),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Value),
}

deserialize_tagged_or_raw!(Tool { "function" => Function, "custom" => Custom });

impl Tool {
    /// The `type` tag of this tool.
    pub fn kind(&self) -> &str {
        match self {
            Self::Function(_) => "function",
            Self::Custom(_) => "custom",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

/// A custom tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomTool {
    /// The tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"type": "text"}`, or `{"type": "grammar", "syntax": "lark" | "regex", "definition"}`
    /// that the input must match; absent means free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
}

/// The names of the custom tools a Responses request body declares: a translation through
/// Chat Completions offers them as functions and must turn their calls back into
/// `custom_tool_call` items.
pub fn custom_tool_names(body: &Value) -> Vec<String> {
    let tools = body.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("custom"))
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// A function tool: the chat API's `function` object, flattened into the tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    /// The function name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Strict schema adherence. The Responses API treats a missing value as `true`, the chat
    /// API as `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"`, a named function, or another kind
/// (`allowed_tools`, built-in tools), kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `auto`, `none` or `required`.
    Mode(String),
    /// `{"type": "function", "name"}` (or `custom` with a name).
    Named {
        /// `function`.
        #[serde(rename = "type")]
        kind: String,
        /// The tool to call.
        name: String,
    },
    /// Anything else.
    Other(Value),
}
