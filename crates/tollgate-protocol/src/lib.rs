//! Wire types of the OpenAI (Chat Completions and Responses) and Anthropic APIs, the SSE
//! codec, and translation between them. Pure: no I/O, no clocks, so every rule is testable
//! with recorded fixtures.

pub mod anthropic;
pub mod api;
pub mod error;
pub mod json_edit;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod translate;
mod wire;

pub use api::{Operation, Protocol};
pub use error::RequestError;
pub use wire::TextOr;
