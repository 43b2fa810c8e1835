//! OpenAI's error body.

use serde_json::{Value, json};

/// `{"error": {"message", "type", "param", "code"}}`, the shape OpenAI clients parse.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}
