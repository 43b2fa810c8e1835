//! `/v1/embeddings` request validation.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::view;
use crate::RequestError;

/// What the gateway needs to know about a valid embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsSummary {
    /// The requested model name.
    pub model: String,
}

// `dimensions` and `encoding_format` are read only to check their types.
#[allow(dead_code)]
#[derive(Deserialize)]
struct EmbeddingsView<'a> {
    #[serde(borrow)]
    model: &'a str,
    input: InputView,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default, borrow)]
    encoding_format: Option<&'a str>,
}

/// A string, an array of strings, or tokens: any of OpenAI's input forms.
#[derive(Deserialize)]
#[serde(untagged)]
enum InputView {
    One(String),
    Many(Vec<IgnoredAny>),
}

/// Checks an embeddings request and summarises it.
pub fn validate_embeddings_request(body: &Value) -> Result<EmbeddingsSummary, RequestError> {
    let v: EmbeddingsView<'_> = view(body).map_err(|e| {
        if e.param.as_deref() == Some("input") && e.code == "invalid_type" {
            RequestError::invalid_param(
                "input",
                "Invalid value for 'input': expected a string, an array of strings or an array of token arrays.",
            )
        } else {
            e
        }
    })?;
    if v.model.trim().is_empty() {
        return Err(RequestError::invalid_param("model", "'model' must not be empty."));
    }
    let empty = match &v.input {
        InputView::One(s) => s.is_empty(),
        InputView::Many(items) => items.is_empty(),
    };
    if empty {
        return Err(RequestError::invalid_param("input", "'input' must not be empty."));
    }
    Ok(EmbeddingsSummary { model: v.model.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_string_and_array_inputs() {
        for input in [json!("hi"), json!(["a", "b"]), json!([[1, 2, 3]])] {
            let s = validate_embeddings_request(&json!({"model": "e", "input": input})).unwrap();
            assert_eq!(s.model, "e");
        }
    }

    #[test]
    fn refuses_bad_input() {
        let e = validate_embeddings_request(&json!({"model": "e"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = validate_embeddings_request(&json!({"model": "e", "input": 3})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = validate_embeddings_request(&json!({"model": "e", "input": ""})).unwrap_err();
        assert!(e.message.contains("must not be empty"));
    }
}
