//! `/v1/chat/completions` request validation.
//!
//! Requests are forwarded as the JSON objects clients sent, so fields tollgate does not know
//! reach the upstream unchanged. Validation deserializes a borrowed view of the fields it does
//! know, which yields errors that name the parameter, and a summary the gateway routes by.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::view;
use crate::RequestError;

/// What the gateway needs to know about a valid chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    /// The requested model name.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for a usage chunk at the end of the stream.
    pub include_usage: bool,
    /// Whether any message carries an image.
    pub has_images: bool,
    /// Whether the last message is the user's own text (not a tool result).
    pub last_is_user_text: bool,
}

// Several fields are read only to check their types: the values travel in the forwarded body.
#[allow(dead_code)]
#[derive(Deserialize)]
struct ChatView<'a> {
    #[serde(borrow)]
    model: &'a str,
    #[serde(borrow)]
    messages: Vec<MessageView<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptionsView>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, borrow)]
    user: Option<&'a str>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default, borrow)]
    stop: Option<StopView<'a>>,
    #[serde(default, borrow)]
    tools: Option<Vec<ToolView<'a>>>,
}

#[derive(Deserialize)]
struct StreamOptionsView {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct MessageView<'a> {
    role: Role,
    #[serde(default, borrow)]
    content: Option<ContentView<'a>>,
    #[serde(default, borrow)]
    tool_call_id: Option<&'a str>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallView<'a>>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct ToolCallView<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    function: FunctionCallView<'a>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct FunctionCallView<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow)]
    arguments: &'a str,
}

#[derive(Deserialize)]
struct ToolView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    function: Option<FunctionDefView<'a>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct FunctionDefView<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(default)]
    parameters: Option<serde::de::IgnoredAny>,
}

/// `content`: a string or an array of parts.
enum ContentView<'a> {
    Text,
    Parts(Vec<PartView<'a>>),
}

#[derive(Deserialize)]
struct PartView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    text: Option<&'a str>,
    #[serde(default, borrow)]
    image_url: Option<ImageUrlView<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrlView<'a> {
    Object {
        #[serde(borrow)]
        url: &'a str,
    },
    Url(&'a str),
}

/// `stop`: a string or an array of strings.
#[allow(dead_code)]
enum StopView<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ContentView<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ContentView::Text)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(ContentView::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StopView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StopView<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(StopView::One(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element()? {
                    all.push(s);
                }
                Ok(StopView::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks a chat completion request and summarises it.
pub fn validate_chat_request(body: &Value) -> Result<ChatSummary, RequestError> {
    let v: ChatView<'_> = view(body)?;
    if v.model.trim().is_empty() {
        return Err(RequestError::invalid_param("model", "'model' must not be empty."));
    }
    if v.messages.is_empty() {
        return Err(RequestError::invalid_param(
            "messages",
            "'messages' must contain at least one message.",
        ));
    }
    let mut has_images = false;
    for (i, m) in v.messages.iter().enumerate() {
        if m.role == Role::Tool && m.tool_call_id.is_none() {
            return Err(RequestError::invalid_param(
                format!("messages[{i}].tool_call_id"),
                format!("Missing required parameter: 'messages[{i}].tool_call_id'."),
            ));
        }
        if let Some(ContentView::Parts(parts)) = &m.content {
            for (j, p) in parts.iter().enumerate() {
                let at = format!("messages[{i}].content[{j}]");
                match p.kind {
                    "text" if p.text.is_none() => {
                        return Err(RequestError::invalid_param(
                            format!("{at}.text"),
                            format!("Missing required parameter: '{at}.text'."),
                        ));
                    }
                    "image_url" => match &p.image_url {
                        Some(ImageUrlView::Object { url } | ImageUrlView::Url(url))
                            if !url.is_empty() =>
                        {
                            has_images = true;
                        }
                        _ => {
                            return Err(RequestError::invalid_param(
                                format!("{at}.image_url"),
                                format!("Missing required parameter: '{at}.image_url.url'."),
                            ));
                        }
                    },
                    _ => {}
                }
            }
        }
    }
    for (i, t) in v.tools.iter().flatten().enumerate() {
        if t.kind == "function" && t.function.is_none() {
            return Err(RequestError::invalid_param(
                format!("tools[{i}].function"),
                format!("Missing required parameter: 'tools[{i}].function'."),
            ));
        }
    }
    // System and developer messages placed after a turn do not change who spoke last.
    let last_speaker =
        v.messages.iter().rev().find(|m| !matches!(m.role, Role::System | Role::Developer));
    let last_is_user_text = last_speaker.is_some_and(|m| {
        m.role == Role::User
            && match &m.content {
                Some(ContentView::Parts(parts)) => parts.iter().any(|p| p.kind != "tool_result"),
                _ => true,
            }
    });
    let stream = v.stream.unwrap_or(false);
    Ok(ChatSummary {
        model: v.model.to_owned(),
        stream,
        include_usage: stream && v.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
        has_images,
        last_is_user_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> RequestError {
        validate_chat_request(&body).unwrap_err()
    }

    #[test]
    fn accepts_a_plain_request() {
        let s = validate_chat_request(&json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "stream": true, "stream_options": {"include_usage": true}, "extra_field": [1, 2]
        }))
        .unwrap();
        assert_eq!(s.model, "gpt-4o");
        assert!(s.stream && s.include_usage && s.last_is_user_text && !s.has_images);
    }

    #[test]
    fn names_missing_fields() {
        let e = err(json!({"messages": []}));
        assert_eq!(e.param.as_deref(), Some("model"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = err(json!({"model": "m"}));
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = err(json!({"model": "m", "messages": []}));
        assert!(e.message.contains("at least one"));
    }

    #[test]
    fn names_wrong_types() {
        let e = err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
        );
        assert_eq!(e.param.as_deref(), Some("stream"));
        assert!(e.message.contains("expected a boolean"), "{}", e.message);
        let e = err(json!({"model": 5, "messages": []}));
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = err(json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = err(json!({"model": "m", "messages": [{"role": "user", "content": 7}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let e = err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
        );
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn trailing_system_messages_do_not_change_who_spoke_last() {
        let s = validate_chat_request(&json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "<system-reminder>"}]}))
        .unwrap();
        assert!(s.last_is_user_text);
    }

    #[test]
    fn tool_messages_need_an_id() {
        let e = err(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].tool_call_id"));
    }

    #[test]
    fn detects_images_and_tool_results() {
        let s = validate_chat_request(&json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ]}))
        .unwrap();
        assert!(s.has_images);
        assert!(!s.last_is_user_text);
    }
}
