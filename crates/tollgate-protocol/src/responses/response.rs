//! The Response object: the non-streaming answer, and the `response` of the stream's
//! lifecycle events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Item;

/// A Response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `resp_...`.
    #[serde(default)]
    pub id: String,
    /// Always `response`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete`, `failed`, `cancelled` or `queued`.
    #[serde(default)]
    pub status: String,
    /// Why a failed response failed; null otherwise.
    #[serde(default)]
    pub error: Option<ResponseError>,
    /// Why an incomplete response stopped; null otherwise.
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// What the model produced, in order.
    #[serde(default)]
    pub output: Vec<Item>,
    /// Token counts; null until the response is done.
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
    /// `instructions`, `tools`, `metadata` and the other echoed settings, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponseObject {
    /// A response with only its identity and status set.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created_at: u64) -> Self {
        Self {
            id: id.into(),
            object: "response".to_owned(),
            created_at,
            status: "in_progress".to_owned(),
            model: model.into(),
            ..Self::default()
        }
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// `server_error`, `rate_limit_exceeded`, `invalid_prompt`, ...
    #[serde(default)]
    pub code: String,
    /// A message for people.
    #[serde(default)]
    pub message: String,
}

/// `incomplete_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    #[serde(default)]
    pub reason: String,
}

/// Token counts of a response. `input_tokens` includes cached input, as chat's
/// `prompt_tokens` does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    /// Input tokens, cached ones included.
    #[serde(default)]
    pub input_tokens: u64,
    /// Input breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Output tokens, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Output breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// Anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponsesUsage {
    /// Input tokens served from the prompt cache.
    pub fn cached_tokens(&self) -> u64 {
        self.input_tokens_details.as_ref().map_or(0, |d| d.cached_tokens)
    }

    /// Output tokens spent on reasoning.
    pub fn reasoning_tokens(&self) -> u64 {
        self.output_tokens_details.as_ref().map_or(0, |d| d.reasoning_tokens)
    }
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Output tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}
