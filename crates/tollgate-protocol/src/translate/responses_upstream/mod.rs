//! Chat completions clients served by Responses-only deployments: the request goes chat →
//! Responses, the response and stream come back Responses → chat.

mod request;
mod response;
mod stream;

pub use request::{chat_request_to_responses, chat_to_responses_request};
pub use response::{response_to_chat_completion, responses_response_to_chat};
pub use stream::ResponsesToChatStream;
