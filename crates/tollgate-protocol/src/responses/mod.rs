//! The OpenAI Responses API (`POST /v1/responses`): wire types, stream events and the
//! request check.
//!
//! Nothing in tollgate stores responses, so the parts of the API that refer to stored state
//! (`previous_response_id`, `conversation`, `item_reference` items) are refused by
//! [`validate_responses_request`] with a message naming the field: a conversation that
//! silently lost its history would be worse than an error.

mod items;
mod request;
mod response;
mod stream;
mod usage;
mod validate;

pub use items::{CustomToolCallItem, InputImage, OutputText, ReasoningItem, ReasoningPart};
pub use items::{FunctionCallItem, FunctionCallOutputItem, Item, ItemRole, MessageItem, Part};
pub use request::{
    CustomTool, FunctionTool, ReasoningConfig, ResponsesRequest, TextConfig, Tool, ToolChoice,
    custom_tool_names,
};
pub use response::{
    IncompleteDetails, InputTokensDetails, OutputTokensDetails, ResponseError, ResponseObject,
    ResponsesUsage,
};
pub use stream::{
    ArgumentsDelta, ArgumentsDone, CustomInputDone, ErrorEvent, ItemEvent, PartEvent,
    ResponseEvent, StreamEvent, SummaryPartEvent, SummaryTextDelta, SummaryTextDone, TextDelta,
    TextDone,
};
pub use usage::{ResponsesUsageObserver, response_usage};
pub use validate::{ResponsesSummary, validate_responses_request};
pub(crate) use validate::{refuse_stored_fields, refuse_stored_state};
