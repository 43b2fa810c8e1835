//! Usage of Responses answers passed through unchanged: read from a whole Response, or from
//! the terminal event of a stream, without translating anything.

use serde::Deserialize;

use super::ResponsesUsage;
use crate::openai::Usage;

impl From<&ResponsesUsage> for Usage {
    fn from(u: &ResponsesUsage) -> Self {
        Usage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            cached_tokens: u.cached_tokens(),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

/// The usage of a whole Response body, checking on the way that the body is one JSON object.
pub fn response_usage(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    Ok(crate::json_edit::object::<WithUsage>(body)?.usage.as_ref().map(Usage::from))
}

/// Watches a passed-through Responses stream for its usage, which the terminal event
/// (`response.completed`, `response.incomplete` or `response.failed`) carries in its
/// `response`.
#[derive(Debug, Default)]
pub struct ResponsesUsageObserver {
    usage: Option<Usage>,
    done: bool,
}

#[derive(Deserialize)]
struct Terminal {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    response: Option<WithUsage>,
}

impl ResponsesUsageObserver {
    /// A new observer.
    pub fn new() -> Self {
        Self::default()
    }

    /// One event's `data`.
    pub fn observe(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<Terminal>(data) else { return };
        if matches!(
            event.kind.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        ) {
            self.done = true;
            if let Some(u) = event.response.and_then(|r| r.usage) {
                self.usage = Some(Usage::from(&u));
            }
        }
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the terminal event has passed.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn usage_is_read_from_a_whole_response_and_from_the_terminal_event() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed","output":[],
            "usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},
                     "output_tokens":7,"total_tokens":19}}"#;
        let u = response_usage(body).unwrap().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (12, 7, 4));
        assert!(response_usage(b"[1]").is_err());

        let mut o = ResponsesUsageObserver::new();
        o.observe(
            r#"{"type":"response.output_text.delta","delta":"hi","usage":{"input_tokens":99}}"#,
        );
        assert_eq!(o.usage(), None);
        assert!(!o.is_done());
        o.observe(r#"{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}}"#);
        assert!(o.is_done());
        assert_eq!(o.usage().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((3, 2)));
    }
}
