//! What the mock answers: a [`Reply`] plus the timing and shape modifiers of [`ReplySpec`].

use serde::{Deserialize, Serialize};

/// What every chunk and completion of one response repeats.
pub(super) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
    pub prompt_tokens: u64,
}

/// The text of the initial default reply.
pub const DEFAULT_TEXT: &str = "Hello from the mock upstream.";

/// One programmed answer of the mock upstream.
///
/// Serialized with a `kind` tag so tests in any language can send it as JSON, e.g.
/// `{"kind":"text","text":"hi"}` or `{"kind":"error","status":429,"body":{...},"retry_after":2}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// An assistant message with this text (`finish_reason: "stop"`).
    Text {
        /// The assistant's content.
        text: String,
    },
    /// An assistant message that calls tools (`content: null`, `finish_reason: "tool_calls"`).
    ToolCalls {
        /// The calls, in order; streamed with `index` 0, 1, ...
        calls: Vec<ToolCall>,
    },
    /// An error response: `status` and `body` verbatim, plus `retry-after` when set.
    ///
    /// A JSON string `body` is sent as raw `text/plain`, so HTML or plain-text upstream
    /// failures can be imitated too.
    Error {
        /// HTTP status code; an invalid code becomes 500.
        status: u16,
        /// Response body, sent as-is.
        body: serde_json::Value,
        /// Seconds for the `retry-after` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer; ends only when the client gives up or the mock
    /// shuts down.
    Hang,
}

/// One function call inside [`Reply::ToolCalls`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, e.g. `call_1`.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The JSON-encoded arguments, as OpenAI sends them (a string).
    pub arguments: String,
}

impl ToolCall {
    /// A call of `name` with JSON-encoded `arguments`.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self { id: id.into(), name: name.into(), arguments: arguments.into() }
    }
}

/// A [`Reply`] with its modifiers; this is what the queue and the default hold.
///
/// Every field except `reply` is optional in JSON, and a missing `reply` means the initial
/// default text, so `{"delay_ms": 50}` is a valid spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplySpec {
    /// The answer itself.
    pub reply: Reply,
    /// Wait this long before sending response headers (applies to every kind but `hang`).
    pub delay_ms: u64,
    /// Wait this long between SSE events of a streamed reply.
    pub chunk_interval_ms: u64,
    /// Abort the connection after this many SSE events, without `[DONE]`. For a
    /// non-streamed reply, abort after half of the JSON body.
    pub cut_after_chunks: Option<usize>,
    /// End a streamed reply cleanly after this many SSE events, without `[DONE]`: the body
    /// ends as if complete, which it is not.
    pub end_after_chunks: Option<usize>,
    /// Reasoning text sent as `reasoning_content` before the content; in the Responses API, a
    /// `reasoning` output item whose summary is this text.
    pub reasoning: Option<String>,
    /// How many deltas to split the content (and the reasoning) into; default one per
    /// word. For tool calls: argument fragments per call, default 4.
    pub chunks: Option<usize>,
    /// Overrides `finish_reason` (e.g. `"length"`). In the Responses API, `"length"` and
    /// `"content_filter"` make the response `incomplete` for `max_output_tokens` and
    /// `content_filter`; any other value leaves it `completed`.
    pub finish_reason: Option<String>,
    /// More headers on an error reply, e.g. a `retry-after` that is not a whole number of
    /// seconds; sent after `retry_after`, each as a header of its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Responses API only: the response fails. A stream sends `response.failed` in place
    /// of its event number `after_chunks` and ends; a JSON answer is a Response with
    /// `status: "failed"`. Chat completions ignore it.
    pub failure: Option<ResponseFailure>,
}

/// How a Responses API reply fails (see [`ReplySpec::failure`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFailure {
    /// SSE events sent before `response.failed`, counting `response.created`.
    pub after_chunks: usize,
    /// `error.code` of the failed response, e.g. `server_error`.
    #[serde(default = "ResponseFailure::default_code")]
    pub code: String,
    /// `error.message` of the failed response.
    #[serde(default = "ResponseFailure::default_message")]
    pub message: String,
}

impl ResponseFailure {
    fn default_code() -> String {
        "server_error".to_owned()
    }

    fn default_message() -> String {
        "The mock upstream failed while generating the response.".to_owned()
    }
}

impl Default for ReplySpec {
    fn default() -> Self {
        Self::text(DEFAULT_TEXT)
    }
}

impl From<Reply> for ReplySpec {
    fn from(reply: Reply) -> Self {
        Self {
            reply,
            delay_ms: 0,
            chunk_interval_ms: 0,
            cut_after_chunks: None,
            end_after_chunks: None,
            reasoning: None,
            chunks: None,
            finish_reason: None,
            headers: Vec::new(),
            failure: None,
        }
    }
}

impl ReplySpec {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text { text: text.into() }.into()
    }

    /// A reply with these tool calls.
    pub fn tool_calls(calls: Vec<ToolCall>) -> Self {
        Reply::ToolCalls { calls }.into()
    }

    /// An error reply with `status` and a JSON `body`.
    pub fn error(status: u16, body: serde_json::Value) -> Self {
        Reply::Error { status, body, retry_after: None }.into()
    }

    /// An OpenAI-shaped error: `{"error":{"message","type","code"}}`.
    pub fn openai_error(status: u16, kind: &str, message: &str) -> Self {
        Self::error(
            status,
            serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": kind}}),
        )
    }

    /// A reply that never answers.
    pub fn hang() -> Self {
        Reply::Hang.into()
    }

    /// Sets the `retry-after` seconds of an error reply; no effect on other kinds.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Reply::Error { retry_after, .. } = &mut self.reply {
            *retry_after = Some(seconds);
        }
        self
    }

    /// Adds a header to an error reply (see [`ReplySpec::headers`]).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends [`ReplySpec::headers`] to `headers`, skipping any that are not valid HTTP.
    pub(crate) fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        for (name, value) in &self.headers {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes());
            let value = axum::http::HeaderValue::from_str(value);
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
    }

    /// Sets [`ReplySpec::delay_ms`].
    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// Sets [`ReplySpec::chunk_interval_ms`].
    #[must_use]
    pub fn chunk_interval_ms(mut self, ms: u64) -> Self {
        self.chunk_interval_ms = ms;
        self
    }

    /// Sets [`ReplySpec::cut_after_chunks`].
    #[must_use]
    pub fn cut_after_chunks(mut self, n: usize) -> Self {
        self.cut_after_chunks = Some(n);
        self
    }

    /// Sets [`ReplySpec::end_after_chunks`].
    #[must_use]
    pub fn end_after_chunks(mut self, n: usize) -> Self {
        self.end_after_chunks = Some(n);
        self
    }

    /// Sets [`ReplySpec::reasoning`].
    #[must_use]
    pub fn reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = Some(text.into());
        self
    }

    /// Sets [`ReplySpec::chunks`].
    #[must_use]
    pub fn chunks(mut self, n: usize) -> Self {
        self.chunks = Some(n);
        self
    }

    /// Makes a Responses API reply fail after `n` SSE events with `server_error` (see
    /// [`ReplySpec::failure`]).
    #[must_use]
    pub fn fail_after_chunks(self, n: usize) -> Self {
        self.failure(n, &ResponseFailure::default_code(), &ResponseFailure::default_message())
    }

    /// Makes a Responses API reply fail after `n` SSE events with this error code and message.
    #[must_use]
    pub fn failure(mut self, n: usize, code: &str, message: &str) -> Self {
        self.failure = Some(ResponseFailure {
            after_chunks: n,
            code: code.to_owned(),
            message: message.to_owned(),
        });
        self
    }

    /// Sets [`ReplySpec::finish_reason`].
    #[must_use]
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }
}
