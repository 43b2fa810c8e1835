//! The Anthropic Messages API: wire types, request validation, usage and errors.

mod content;
mod request;
mod response;
mod usage;
mod validate;

pub use content::{
    ContentBlock, DocumentBlock, ImageBlock, ImageSource, RedactedThinkingBlock, TextBlock,
    ThinkingBlock, ToolResultBlock, ToolUseBlock,
};
pub use request::{
    CustomTool, Message, MessagesRequest, Metadata, Role, ThinkingConfig, Tool, ToolChoice,
};
pub use response::{
    BlockDelta, DeltaUsage, ErrorDetail, MessageDelta, MessagesResponse, StreamEvent, Usage,
};
pub use usage::{StreamUsageObserver, response_usage, usage_from_response};
pub use validate::{MessagesSummary, validate_messages_request};

use serde_json::{Value, json};

/// `{"type": "error", "error": {"type", "message"}}`, the shape Anthropic clients parse.
/// `kind` is one of Anthropic's error types: `invalid_request_error`, `authentication_error`,
/// `permission_error`, `not_found_error`, `rate_limit_error`, `api_error`, `overloaded_error`.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}
