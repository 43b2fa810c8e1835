//! Token usage in OpenAI responses and stream chunks.

use serde::Deserialize;

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_tokens: u64,
}

#[derive(Deserialize)]
struct UsageView {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageView>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

impl From<UsageView> for Usage {
    fn from(u: UsageView) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
            cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
        }
    }
}

/// The usage of a non-streaming response body, if it reports one.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body).ok()?.usage.map(Usage::from)
}

/// The usage of a non-streaming response body, checking on the way that the body is one JSON
/// object: anything else is not an answer, whatever its status said.
pub fn response_usage(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    Ok(crate::json_edit::object::<WithUsage>(body)?.usage.map(Usage::from))
}

/// What one stream event is, as far as accounting and relaying care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamChunkKind {
    /// `data: [DONE]`.
    Done,
    /// A chunk with `usage` and no choices: the trailing usage-only chunk.
    UsageOnly(Usage),
    /// A chunk that carries choices and also usage.
    WithUsage(Usage),
    /// Any other event.
    Other,
}

/// Classifies the `data` of one OpenAI stream event. Cheap for ordinary deltas: JSON is only
/// parsed when the text mentions usage.
pub fn classify_chunk(data: &str) -> StreamChunkKind {
    let data = data.trim();
    if data == "[DONE]" {
        return StreamChunkKind::Done;
    }
    if !data.contains("\"usage\"") {
        return StreamChunkKind::Other;
    }
    match serde_json::from_str::<WithUsage>(data) {
        Ok(WithUsage { usage: Some(u), choices }) => {
            if choices.is_none_or(|c| c.is_empty()) {
                StreamChunkKind::UsageOnly(u.into())
            } else {
                StreamChunkKind::WithUsage(u.into())
            }
        }
        _ => StreamChunkKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_with_cached_tokens() {
        let u = usage_from_response(
            br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        )
        .unwrap();
        assert_eq!(u, Usage { prompt_tokens: 10, completion_tokens: 3, cached_tokens: 4 });
        assert_eq!(usage_from_response(br#"{"choices":[]}"#), None);
    }

    #[test]
    fn classifies_chunks() {
        assert_eq!(classify_chunk("[DONE]"), StreamChunkKind::Done);
        assert_eq!(
            classify_chunk(r#"{"choices":[{"delta":{"content":"hi"}}]}"#),
            StreamChunkKind::Other
        );
        assert_eq!(
            classify_chunk(r#"{"choices":[{"delta":{}}],"usage":null}"#),
            StreamChunkKind::Other
        );
        assert!(matches!(
            classify_chunk(r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#),
            StreamChunkKind::UsageOnly(Usage { prompt_tokens: 1, completion_tokens: 2, .. })
        ));
        assert!(matches!(
            classify_chunk(r#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}"#),
            StreamChunkKind::WithUsage(_)
        ));
    }
}
