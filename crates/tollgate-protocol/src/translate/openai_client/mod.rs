//! OpenAI clients served by Anthropic-format deployments: the request goes OpenAI →
//! Anthropic, the response and stream come back Anthropic → OpenAI.

mod request;
mod response;
mod stream;

pub use request::{chat_request_to_messages, openai_request_to_anthropic};
pub use response::{anthropic_response_to_openai, message_to_chat_completion};
pub use stream::AnthropicToOpenAiStream;
