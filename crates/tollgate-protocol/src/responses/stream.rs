//! Stream events of the Responses API. Each event's SSE `event:` name is its `type`, and
//! each carries a `sequence_number`, counted from 0 within the stream; the number is added
//! when the event is encoded ([`StreamEvent::to_sse`]) so the types stay reusable for
//! reading upstream streams.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Item, Part, ReasoningPart, ResponseObject};
use crate::wire::{self, deserialize_tagged_or_raw};

/// One event of a Responses stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    /// `response.created`: the response exists, with no output yet.
    #[serde(rename = "response.created")]
    Created(ResponseEvent),
    /// `response.in_progress`.
    #[serde(rename = "response.in_progress")]
    InProgress(ResponseEvent),
    /// `response.completed`: the whole response, with usage.
    #[serde(rename = "response.completed")]
    Completed(ResponseEvent),
    /// `response.incomplete`: the whole response, stopped early.
    #[serde(rename = "response.incomplete")]
    Incomplete(ResponseEvent),
    /// `response.failed`: the response, with its `error`.
    #[serde(rename = "response.failed")]
    Failed(ResponseEvent),
    /// `response.output_item.added`: an item opens, empty.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded(ItemEvent),
    /// `response.output_item.done`: the whole item.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone(ItemEvent),
    /// `response.content_part.added`: a message part opens, empty.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded(PartEvent),
    /// `response.content_part.done`: the whole part.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone(PartEvent),
    /// `response.output_text.delta`.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta(TextDelta),
    /// `response.output_text.done`: the part's whole text.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone(TextDone),
    /// `response.refusal.delta`.
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta(TextDelta),
    /// `response.function_call_arguments.delta`.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta(ArgumentsDelta),
    /// `response.function_call_arguments.done`: the whole arguments.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone(ArgumentsDone),
    /// `response.custom_tool_call_input.delta`.
    #[serde(rename = "response.custom_tool_call_input.delta")]
    CustomToolCallInputDelta(ArgumentsDelta),
    /// `response.custom_tool_call_input.done`: the whole input.
    #[serde(rename = "response.custom_tool_call_input.done")]
    CustomToolCallInputDone(CustomInputDone),
    /// `response.reasoning_summary_part.added`.
    #[serde(rename = "response.reasoning_summary_part.added")]
    ReasoningSummaryPartAdded(SummaryPartEvent),
    /// `response.reasoning_summary_part.done`.
    #[serde(rename = "response.reasoning_summary_part.done")]
    ReasoningSummaryPartDone(SummaryPartEvent),
    /// `response.reasoning_summary_text.delta`.
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta(SummaryTextDelta),
    /// `response.reasoning_summary_text.done`.
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone(SummaryTextDone),
    /// `response.reasoning_text.delta`: raw reasoning, where a provider exposes it.
    #[serde(rename = "response.reasoning_text.delta")]
    ReasoningTextDelta(TextDelta),
    /// `error`: the stream failed.
    #[serde(rename = "error")]
    Error(ErrorEvent),
    /// Any other event, as sent.
    #[serde(untagged)]
    Other(Value),
}

deserialize_tagged_or_raw!(StreamEvent {
    "response.created" => Created,
    "response.in_progress" => InProgress,
    "response.completed" => Completed,
    "response.incomplete" => Incomplete,
    "response.failed" => Failed,
    "response.output_item.added" => OutputItemAdded,
    "response.output_item.done" => OutputItemDone,
    "response.content_part.added" => ContentPartAdded,
    "response.content_part.done" => ContentPartDone,
    "response.output_text.delta" => OutputTextDelta,
    "response.output_text.done" => OutputTextDone,
    "response.refusal.delta" => RefusalDelta,
    "response.function_call_arguments.delta" => FunctionCallArgumentsDelta,
    "response.function_call_arguments.done" => FunctionCallArgumentsDone,
    "response.custom_tool_call_input.delta" => CustomToolCallInputDelta,
    "response.custom_tool_call_input.done" => CustomToolCallInputDone,
    "response.reasoning_summary_part.added" => ReasoningSummaryPartAdded,
    "response.reasoning_summary_part.done" => ReasoningSummaryPartDone,
    "response.reasoning_summary_text.delta" => ReasoningSummaryTextDelta,
    "response.reasoning_summary_text.done" => ReasoningSummaryTextDone,
    "response.reasoning_text.delta" => ReasoningTextDelta,
    "error" => Error,
});

impl StreamEvent {
    /// The event's `type`, which is also its SSE event name.
    pub fn name(&self) -> &str {
        match self {
            Self::Created(_) => "response.created",
            Self::InProgress(_) => "response.in_progress",
            Self::Completed(_) => "response.completed",
            Self::Incomplete(_) => "response.incomplete",
            Self::Failed(_) => "response.failed",
            Self::OutputItemAdded(_) => "response.output_item.added",
            Self::OutputItemDone(_) => "response.output_item.done",
            Self::ContentPartAdded(_) => "response.content_part.added",
            Self::ContentPartDone(_) => "response.content_part.done",
            Self::OutputTextDelta(_) => "response.output_text.delta",
            Self::OutputTextDone(_) => "response.output_text.done",
            Self::RefusalDelta(_) => "response.refusal.delta",
            Self::FunctionCallArgumentsDelta(_) => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone(_) => "response.function_call_arguments.done",
            Self::CustomToolCallInputDelta(_) => "response.custom_tool_call_input.delta",
            Self::CustomToolCallInputDone(_) => "response.custom_tool_call_input.done",
            Self::ReasoningSummaryPartAdded(_) => "response.reasoning_summary_part.added",
            Self::ReasoningSummaryPartDone(_) => "response.reasoning_summary_part.done",
            Self::ReasoningSummaryTextDelta(_) => "response.reasoning_summary_text.delta",
            Self::ReasoningSummaryTextDone(_) => "response.reasoning_summary_text.done",
            Self::ReasoningTextDelta(_) => "response.reasoning_text.delta",
            Self::Error(_) => "error",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The event as SSE bytes, `event: <type>\ndata: <json>\n\n`, its `data` carrying
    /// `sequence_number`.
    pub fn to_sse(&self, sequence_number: u64) -> Bytes {
        let mut data = wire::to_value(self);
        if let Value::Object(map) = &mut data {
            map.insert("sequence_number".to_owned(), Value::from(sequence_number));
        }
        crate::sse::encode(Some(self.name()), &wire::to_string(&data))
    }
}

/// The payload of the lifecycle events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// The response as it stands.
    pub response: ResponseObject,
}

/// `response.output_item.added` and `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemEvent {
    /// The item's position in `output`.
    pub output_index: usize,
    /// The item.
    pub item: Item,
}

/// `response.content_part.added` and `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartEvent {
    /// The message item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `content`.
    pub content_index: usize,
    /// The part.
    pub part: Part,
}

/// A text increment: `response.output_text.delta`, `response.refusal.delta`,
/// `response.reasoning_text.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextDelta {
    /// The item the text belongs to.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's content.
    #[serde(default)]
    pub content_index: usize,
    /// The fragment.
    pub delta: String,
    /// Token log probabilities (output text only); always empty here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<Value>>,
}

/// `response.output_text.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextDone {
    /// The message item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's content.
    pub content_index: usize,
    /// The whole text.
    pub text: String,
    /// Token log probabilities; always empty here.
    #[serde(default)]
    pub logprobs: Vec<Value>,
}

/// `response.function_call_arguments.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgumentsDelta {
    /// The function call item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// A fragment of the arguments JSON text.
    pub delta: String,
}

/// `response.function_call_arguments.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArgumentsDone {
    /// The function call item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The function name.
    #[serde(default)]
    pub name: String,
    /// The whole arguments JSON text.
    pub arguments: String,
}

/// `response.reasoning_summary_part.added` and `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryPartEvent {
    /// The reasoning item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `summary`.
    pub summary_index: usize,
    /// The part.
    pub part: ReasoningPart,
}

/// `response.reasoning_summary_text.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryTextDelta {
    /// The reasoning item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `summary`.
    pub summary_index: usize,
    /// The fragment.
    pub delta: String,
}

/// `response.reasoning_summary_text.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryTextDone {
    /// The reasoning item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `summary`.
    pub summary_index: usize,
    /// The whole text.
    pub text: String,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// A machine-readable code, if any.
    #[serde(default)]
    pub code: Option<String>,
    /// A message for people.
    #[serde(default)]
    pub message: String,
    /// The offending parameter, if any.
    #[serde(default)]
    pub param: Option<String>,
}

/// `response.custom_tool_call_input.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomInputDone {
    /// The call item.
    pub item_id: String,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The whole input.
    pub input: String,
}
