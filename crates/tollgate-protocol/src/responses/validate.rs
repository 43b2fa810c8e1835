//! `/v1/responses` request validation.

use serde_json::Value;

use super::{Item, ItemRole, Part, ResponsesRequest, Tool};
use crate::RequestError;
use crate::wire::{TextOr, view_at};

/// What the gateway needs to know about a valid Responses request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesSummary {
    /// The requested model name.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether any input item carries an image.
    pub has_images: bool,
    /// Whether the last input item is a user message (not a tool result).
    pub last_is_user_text: bool,
}

/// Checks a Responses request and summarises it. Errors name the parameter
/// (`input[2].call_id`); requests that lean on stored state are refused, since tollgate
/// keeps none.
pub fn validate_responses_request(body: &Value) -> Result<ResponsesSummary, RequestError> {
    match body.get("input") {
        None | Some(Value::Null) => {
            // Without stored responses there is nothing to answer but the input itself.
            refuse_stored_fields(body)?;
            return Err(RequestError {
                param: Some("input".to_owned()),
                message: "Missing required parameter: 'input'.".to_owned(),
                code: "missing_required_parameter",
            });
        }
        Some(Value::String(_) | Value::Array(_)) => {}
        Some(_) => {
            return Err(RequestError::invalid_param(
                "input",
                "Invalid value for 'input': it must be a string or a list of input items.",
            ));
        }
    }
    refuse_stored_fields(body)?;
    let req: ResponsesRequest = view_at(body, "")?;
    if req.model.trim().is_empty() {
        return Err(RequestError::invalid_param("model", "'model' must not be empty."));
    }
    let mut has_images = false;
    let items = match &req.input {
        Some(TextOr::List(items)) => items.as_slice(),
        _ => &[],
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        match item {
            Item::Message(m) => {
                for (j, part) in m.content.list().iter().enumerate() {
                    if let Part::InputImage(image) = part {
                        if image.image_url.is_none() && image.file_id.is_none() {
                            return Err(RequestError::invalid_param(
                                format!("{at}.content[{j}].image_url"),
                                format!(
                                    "Missing required parameter: '{at}.content[{j}].image_url'."
                                ),
                            ));
                        }
                        has_images = true;
                    }
                }
            }
            Item::FunctionCallOutput(o) | Item::CustomToolCallOutput(o) => {
                has_images |= o.output.list().iter().any(|p| matches!(p, Part::InputImage(_)));
            }
            Item::Other(Value::Object(_)) if item.kind() == "item_reference" => {
                return Err(RequestError::invalid_param(
                    at.clone(),
                    format!(
                        "'{at}' is an item reference, which is not supported: responses are \
                         not stored here, so send the item itself."
                    ),
                ));
            }
            Item::Other(Value::Object(_))
            | Item::FunctionCall(_)
            | Item::CustomToolCall(_)
            | Item::Reasoning(_) => {}
            Item::Other(_) => {
                return Err(RequestError::invalid_param(
                    at.clone(),
                    format!("Invalid value for '{at}': an input item must be an object."),
                ));
            }
        }
    }
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if let Tool::Other(v) = tool
            && v.get("type").and_then(Value::as_str).is_none()
        {
            return Err(RequestError::invalid_param(
                format!("tools[{i}].type"),
                format!("Missing required parameter: 'tools[{i}].type'."),
            ));
        }
    }
    let last_is_user_text = match &req.input {
        Some(TextOr::Text(_)) => true,
        Some(TextOr::List(items)) => {
            matches!(items.last(), Some(Item::Message(m)) if m.role == ItemRole::User)
        }
        None => false,
    };
    Ok(ResponsesSummary {
        model: req.model,
        stream: req.stream.unwrap_or(false),
        has_images,
        last_is_user_text,
    })
}

/// Refuses the fields of a request body that point at state stored by the provider.
pub(crate) fn refuse_stored_fields(body: &Value) -> Result<(), RequestError> {
    refuse_stored(|name| body.get(name))
}

/// [`refuse_stored_fields`] on a typed request.
pub(crate) fn refuse_stored_state(req: &ResponsesRequest) -> Result<(), RequestError> {
    let previous = req.previous_response_id.clone().map(Value::String);
    refuse_stored(|name| match name {
        "previous_response_id" => previous.as_ref(),
        _ => req.extra.get(name),
    })
}

fn refuse_stored<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> Result<(), RequestError> {
    let set = |name: &str| get(name).is_some_and(|v| !v.is_null());
    if set("previous_response_id") {
        return Err(RequestError::invalid_param(
            "previous_response_id",
            "'previous_response_id' is not supported: responses are not stored here, so send \
             the whole conversation in 'input' instead.",
        ));
    }
    if set("conversation") {
        return Err(RequestError::invalid_param(
            "conversation",
            "'conversation' is not supported: conversations are not stored here, so send the \
             whole conversation in 'input' instead.",
        ));
    }
    if get("background").and_then(Value::as_bool) == Some(true) {
        return Err(RequestError::invalid_param(
            "background",
            "'background' responses are not supported: responses are not stored here, so \
             they cannot be fetched later.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> RequestError {
        validate_responses_request(&body).unwrap_err()
    }

    #[test]
    fn accepts_a_string_and_a_list() {
        let s =
            validate_responses_request(&json!({"model": "gpt-5", "input": "hi", "stream": true}))
                .unwrap();
        assert!(s.stream && s.last_is_user_text && !s.has_images);
        let s = validate_responses_request(&json!({"model": "gpt-5", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "what is this"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"}
        ]}))
        .unwrap();
        assert!(s.has_images && !s.last_is_user_text);
    }

    #[test]
    fn refuses_stored_state_naming_the_field() {
        let e = err(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}));
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        assert!(e.message.contains("'previous_response_id' is not supported"), "{}", e.message);
        let e = err(json!({"model": "m", "previous_response_id": "resp_1"}));
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        let e = err(json!({"model": "m", "input": "x", "conversation": "conv_1"}));
        assert_eq!(e.param.as_deref(), Some("conversation"));
        let e = err(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}));
        assert_eq!(e.param.as_deref(), Some("input[0]"));
        assert!(
            validate_responses_request(
                &json!({"model": "m", "input": "x", "previous_response_id": null})
            )
            .is_ok()
        );
    }

    #[test]
    fn input_must_be_a_string_or_items() {
        let e = err(json!({"model": "m"}));
        assert_eq!((e.param.as_deref(), e.code), (Some("input"), "missing_required_parameter"));
        let e = err(json!({"model": "m", "input": {"role": "user"}}));
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(e.message.contains("a string or a list of input items"), "{}", e.message);
        let e = err(json!({"model": "m", "input": [7]}));
        assert_eq!(e.param.as_deref(), Some("input[0]"));
    }

    #[test]
    fn names_the_parameter_inside_items() {
        let e = err(json!({"model": "m", "input": [
            {"type": "function_call", "name": "f", "arguments": "{}"}]}));
        assert_eq!(e.param.as_deref(), Some("input[0].call_id"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = err(json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("input[0]"));
        let e = err(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_image", "detail": "auto"}]}]}));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].image_url"));
        let e = err(json!({"model": "m", "input": "x", "max_output_tokens": "lots"}));
        assert_eq!(e.param.as_deref(), Some("max_output_tokens"));
        let e = err(json!({"model": "", "input": "x"}));
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = err(json!({"model": "m", "input": "x", "tools": [{"name": "f"}]}));
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
    }
}
