//! Responses API clients served by chat-completions deployments: the request goes
//! Responses → chat, the response and stream come back chat → Responses.

mod request;
mod response;
mod stream;

pub use request::{responses_request_to_chat, responses_to_chat_request};
pub use response::{chat_completion_to_response, chat_response_to_responses};
pub use stream::ChatToResponsesStream;
