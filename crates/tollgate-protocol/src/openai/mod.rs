//! The OpenAI API: request validation, usage, errors and stream chunks.

mod chat;
mod embeddings;
mod error;
pub mod types;
mod usage;

pub use chat::{ChatSummary, validate_chat_request};
pub use embeddings::{EmbeddingsSummary, validate_embeddings_request};
pub use error::error_body;
pub use usage::{StreamChunkKind, Usage, classify_chunk, response_usage, usage_from_response};

use serde_json::Value;

use crate::RequestError;

/// Parses a request body that must be a JSON object, the form in which it is forwarded.
pub fn parse_object(body: &[u8]) -> Result<Value, RequestError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(RequestError {
            param: None,
            message: "The request body must be a JSON object.".to_owned(),
            code: "invalid_request",
        }),
        Err(e) => Err(RequestError::invalid_json(e)),
    }
}

/// Deserializes a typed view of `value`, turning failures into errors that name the parameter.
pub(crate) fn view<'a, T: serde::Deserialize<'a>>(value: &'a Value) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().clone();
        RequestError::from_serde(&path, e.inner())
    })
}
