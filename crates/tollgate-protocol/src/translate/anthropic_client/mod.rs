//! Anthropic clients served by OpenAI-format deployments: the request goes Anthropic →
//! OpenAI, the response and stream come back OpenAI → Anthropic.

pub(super) mod content;
mod request;
mod response;
mod stream;

pub use request::{anthropic_request_to_openai, messages_request_to_chat};
pub use response::{chat_completion_to_message, openai_response_to_anthropic};
pub use stream::OpenAiToAnthropicStream;
