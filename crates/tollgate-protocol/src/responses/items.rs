//! Items, the units of a Responses conversation: what a request's `input` lists and what a
//! response's `output` holds. One type serves both, as in the API, so history sent back by a
//! client reads like the output it came from.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::{self, TextOr, deserialize_tagged_or_raw};

/// One item. Kinds tollgate does not translate (`web_search_call`, `local_shell_call`,
/// `item_reference`, ...) are kept as raw JSON in [`Item::Other`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// `message`: text and images from a role.
    Message(MessageItem),
    /// `function_call`: the model calls a function.
    FunctionCall(FunctionCallItem),
    /// `function_call_output`: the client answers a call.
    FunctionCallOutput(FunctionCallOutputItem),
    /// `reasoning`: the model's reasoning, summarised and possibly encrypted.
    Reasoning(ReasoningItem),
    /// `custom_tool_call`: the model calls a custom (free-form input) tool.
    CustomToolCall(CustomToolCallItem),
    /// `custom_tool_call_output`: the client answers a custom tool call.
    CustomToolCallOutput(FunctionCallOutputItem),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Value),
}

// Written by hand for one reason: a message may leave out its `type` (the API's "easy input
// message", `{"role": "user", "content": "hi"}`).
impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match wire::tag_of(&v).as_deref() {
            Some("message") => wire::untagged_fields(v).map(Self::Message),
            None if v.get("role").is_some() => wire::untagged_fields(v).map(Self::Message),
            Some("function_call") => wire::untagged_fields(v).map(Self::FunctionCall),
            Some("function_call_output") => wire::untagged_fields(v).map(Self::FunctionCallOutput),
            Some("reasoning") => wire::untagged_fields(v).map(Self::Reasoning),
            Some("custom_tool_call") => wire::untagged_fields(v).map(Self::CustomToolCall),
            Some("custom_tool_call_output") => {
                wire::untagged_fields(v).map(Self::CustomToolCallOutput)
            }
            _ => Ok(Self::Other(v)),
        }
    }
}

impl Item {
    /// The `type` tag of this item.
    pub fn kind(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::FunctionCall(_) => "function_call",
            Self::FunctionCallOutput(_) => "function_call_output",
            Self::Reasoning(_) => "reasoning",
            Self::CustomToolCall(_) => "custom_tool_call",
            Self::CustomToolCallOutput(_) => "custom_tool_call_output",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

/// A message item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    /// Output messages have an id; input messages may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Who speaks.
    pub role: ItemRole,
    /// A string (input only) or parts.
    pub content: TextOr<Part>,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The role of a message item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemRole {
    /// The user.
    User,
    /// The model.
    Assistant,
    /// System instructions.
    System,
    /// Developer instructions.
    Developer,
}

/// One part of a message's content. `input_file`, `input_audio` and unknown kinds are kept
/// as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// `input_text`, in input messages.
    InputText(TextBody),
    /// `input_image`, in input messages.
    InputImage(InputImage),
    /// `output_text`, in assistant messages.
    OutputText(OutputText),
    /// `refusal`, in assistant messages.
    Refusal(RefusalBody),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Value),
}

deserialize_tagged_or_raw!(Part {
    "input_text" => InputText,
    "input_image" => InputImage,
    "output_text" => OutputText,
    "refusal" => Refusal,
});

impl Part {
    /// An `input_text` part.
    pub fn input_text(text: impl Into<String>) -> Self {
        Self::InputText(TextBody { text: text.into() })
    }

    /// An `output_text` part without annotations.
    pub fn output_text(text: impl Into<String>) -> Self {
        Self::OutputText(OutputText { text: text.into(), annotations: Vec::new() })
    }

    /// A `refusal` part.
    pub fn refusal(refusal: impl Into<String>) -> Self {
        Self::Refusal(RefusalBody { refusal: refusal.into() })
    }

    /// The `type` tag of this part.
    pub fn kind(&self) -> &str {
        match self {
            Self::InputText(_) => "input_text",
            Self::InputImage(_) => "input_image",
            Self::OutputText(_) => "output_text",
            Self::Refusal(_) => "refusal",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

/// The body of an `input_text` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextBody {
    /// The text.
    pub text: String,
}

/// The body of a `refusal` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalBody {
    /// The refusal text.
    pub refusal: String,
}

/// The body of an `input_image` part: a URL (`https:` or `data:`) or an uploaded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputImage {
    /// The image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// An uploaded file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The body of an `output_text` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputText {
    /// The text.
    pub text: String,
    /// Citations and file references; always present in output, often empty.
    #[serde(default)]
    pub annotations: Vec<Value>,
}

/// A function call item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// The item id (`fc_...`); output items always have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id a `function_call_output` answers (`call_...`).
    pub call_id: String,
    /// The function name.
    pub name: String,
    /// The arguments as JSON text.
    #[serde(default)]
    pub arguments: String,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A custom tool call item: like a function call, with free-form text for arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallItem {
    /// The item id (`ctc_...`); output items always have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id a `custom_tool_call_output` answers (`call_...`).
    pub call_id: String,
    /// The tool name.
    pub name: String,
    /// The input, in the tool's format (e.g. a patch for Codex's `apply_patch`).
    #[serde(default)]
    pub input: String,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A function call output item; a `custom_tool_call_output` has the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    /// The item id, if the client kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call this answers.
    pub call_id: String,
    /// A string, or parts (`input_text`, `input_image`, `input_file`).
    pub output: TextOr<Part>,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A reasoning item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    /// The item id (`rs_...`).
    #[serde(default)]
    pub id: String,
    /// Summary parts (`summary_text`); present, possibly empty, in output.
    #[serde(default)]
    pub summary: Vec<ReasoningPart>,
    /// The reasoning itself (`reasoning_text`), where a provider exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ReasoningPart>>,
    /// Opaque reasoning state to send back in later turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    /// `in_progress`, `completed` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl ReasoningItem {
    /// The reasoning as one text: the summary parts, or else the content parts, joined by
    /// blank lines.
    pub fn text(&self) -> String {
        let summary: Vec<&str> = self.summary.iter().map(|p| p.text.as_str()).collect();
        let parts = if summary.iter().any(|s| !s.is_empty()) {
            summary
        } else {
            self.content.iter().flatten().map(|p| p.text.as_str()).collect()
        };
        parts.join("\n\n")
    }
}

/// A `summary_text` or `reasoning_text` part of a reasoning item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningPart {
    /// `summary_text` or `reasoning_text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    #[serde(default)]
    pub text: String,
}

impl ReasoningPart {
    /// A `summary_text` part.
    pub fn summary(text: impl Into<String>) -> Self {
        Self { kind: "summary_text".to_owned(), text: text.into() }
    }
}
