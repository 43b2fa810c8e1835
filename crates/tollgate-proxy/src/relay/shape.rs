//! How an answer is carried back to the client: passed through when the client and the
//! deployment speak the same protocol, translated when they do not.

use bytes::Bytes;
use serde_json::Value;
use tollgate_protocol::anthropic::StreamUsageObserver;
use tollgate_protocol::openai::{StreamChunkKind, Usage, classify_chunk};
use tollgate_protocol::responses::{ResponsesUsageObserver, response_usage};
use tollgate_protocol::sse::SseEvent;
use tollgate_protocol::translate::{
    AnthropicToOpenAiStream, AnthropicToResponsesStream, ChatToResponsesStream,
    OpenAiToAnthropicStream, ResponsesToAnthropicStream, ResponsesToChatStream,
    anthropic_response_to_openai, anthropic_response_to_responses, chat_response_to_responses,
    openai_response_to_anthropic, responses_response_to_anthropic, responses_response_to_chat,
};

use tollgate_protocol::Protocol;

use crate::error::ApiError;

/// One row of the (client, upstream) protocol pairs, with the state a stream needs between
/// them. Variants are named client first: `MessagesOnChat` is a Messages client answered by
/// a Chat Completions upstream.
pub enum Shape {
    /// Chat Completions on both sides: events pass as they are; the usage-only chunk is
    /// dropped unless the client asked for it.
    ChatPass {
        /// Whether the client asked for the usage chunk.
        include_usage: bool,
        /// Usage seen so far.
        usage: Option<Usage>,
    },
    /// Messages on both sides: events pass as they are, byte for byte.
    MessagesPass(StreamUsageObserver),
    /// A Messages client on a Chat Completions upstream.
    MessagesOnChat(Box<OpenAiToAnthropicStream>),
    /// A Chat Completions client on a Messages upstream.
    ChatOnMessages(Box<AnthropicToOpenAiStream>),
    /// Responses on both sides: events pass as they are, byte for byte.
    ResponsesPass(ResponsesUsageObserver),
    /// A Responses client on a Chat Completions upstream.
    ResponsesOnChat(Box<ChatToResponsesStream>),
    /// A Chat Completions client on a Responses upstream.
    ChatOnResponses(Box<ResponsesToChatStream>),
    /// A Messages client on a Responses upstream (through Chat Completions' shapes).
    MessagesOnResponses(Box<ResponsesToAnthropicStream>),
    /// A Responses client on a Messages upstream (through Chat Completions' shapes).
    ResponsesOnMessages(Box<AnthropicToResponsesStream>),
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ChatPass { .. } => "ChatPass",
            Self::MessagesPass(_) => "MessagesPass",
            Self::MessagesOnChat(_) => "MessagesOnChat",
            Self::ChatOnMessages(_) => "ChatOnMessages",
            Self::ResponsesPass(_) => "ResponsesPass",
            Self::ResponsesOnChat(_) => "ResponsesOnChat",
            Self::ChatOnResponses(_) => "ChatOnResponses",
            Self::MessagesOnResponses(_) => "MessagesOnResponses",
            Self::ResponsesOnMessages(_) => "ResponsesOnMessages",
        })
    }
}

impl Shape {
    /// The client's protocol.
    pub fn client(&self) -> Protocol {
        match self {
            Self::ChatPass { .. } | Self::ChatOnMessages(_) | Self::ChatOnResponses(_) => {
                Protocol::Chat
            }
            Self::MessagesPass(_) | Self::MessagesOnChat(_) | Self::MessagesOnResponses(_) => {
                Protocol::Messages
            }
            Self::ResponsesPass(_) | Self::ResponsesOnChat(_) | Self::ResponsesOnMessages(_) => {
                Protocol::Responses
            }
        }
    }

    /// The upstream's protocol.
    pub fn upstream(&self) -> Protocol {
        match self {
            Self::ChatPass { .. } | Self::MessagesOnChat(_) | Self::ResponsesOnChat(_) => {
                Protocol::Chat
            }
            Self::MessagesPass(_) | Self::ChatOnMessages(_) | Self::ResponsesOnMessages(_) => {
                Protocol::Messages
            }
            Self::ResponsesPass(_) | Self::ChatOnResponses(_) | Self::MessagesOnResponses(_) => {
                Protocol::Responses
            }
        }
    }

    /// Usage reported so far.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            Self::ChatPass { usage, .. } => *usage,
            Self::MessagesPass(o) => o.usage(),
            Self::MessagesOnChat(t) => t.usage(),
            Self::ChatOnMessages(t) => t.usage(),
            Self::ResponsesPass(o) => o.usage(),
            Self::ResponsesOnChat(t) => t.usage(),
            Self::ChatOnResponses(t) => t.usage(),
            Self::MessagesOnResponses(t) => t.usage(),
            Self::ResponsesOnMessages(t) => t.usage(),
        }
    }

    /// One upstream event in, what the client gets out.
    pub fn frame(&mut self, frame: Bytes) -> Vec<Bytes> {
        match self {
            Self::ChatPass { include_usage, usage } => {
                if !mentions(&frame, b"\"usage\"") {
                    return vec![frame];
                }
                match classify_chunk(&SseEvent::parse(&frame).data) {
                    StreamChunkKind::UsageOnly(u) => {
                        *usage = Some(u);
                        if *include_usage { vec![frame] } else { Vec::new() }
                    }
                    StreamChunkKind::WithUsage(u) => {
                        *usage = Some(u);
                        vec![frame]
                    }
                    StreamChunkKind::Done | StreamChunkKind::Other => vec![frame],
                }
            }
            Self::MessagesPass(observer) => {
                if mentions(&frame, b"usage") {
                    observer.observe(&SseEvent::parse(&frame).data);
                }
                vec![frame]
            }
            Self::MessagesOnChat(t) => t.push_chunk(&SseEvent::parse(&frame).data),
            Self::ChatOnMessages(t) => t.push_event(&SseEvent::parse(&frame)),
            Self::ResponsesPass(observer) => {
                if mentions(&frame, b"\"response.") {
                    observer.observe(&SseEvent::parse(&frame).data);
                }
                vec![frame]
            }
            Self::ResponsesOnChat(t) => t.push_chunk(&SseEvent::parse(&frame).data),
            Self::ChatOnResponses(t) => t.push_event(&SseEvent::parse(&frame)),
            Self::MessagesOnResponses(t) => t.push_event(&SseEvent::parse(&frame)),
            Self::ResponsesOnMessages(t) => t.push_event(&SseEvent::parse(&frame)),
        }
    }

    /// The upstream ended cleanly.
    pub fn end(&mut self) -> Vec<Bytes> {
        match self {
            Self::ChatPass { .. } | Self::MessagesPass(_) | Self::ResponsesPass(_) => Vec::new(),
            Self::MessagesOnChat(t) => t.finish(),
            Self::ChatOnMessages(t) => t.finish(),
            Self::ResponsesOnChat(t) => t.finish(),
            Self::ChatOnResponses(t) => t.finish(),
            Self::MessagesOnResponses(t) => t.finish(),
            Self::ResponsesOnMessages(t) => t.finish(),
        }
    }

    /// The upstream failed mid-stream: the client's protocol's error event.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        match self {
            Self::ChatPass { .. } => {
                let body = tollgate_protocol::openai::error_body(
                    message,
                    "api_error",
                    None,
                    Some("upstream_stream_interrupted"),
                );
                vec![tollgate_protocol::sse::encode(None, &body.to_string())]
            }
            Self::MessagesPass(_) => {
                let body = tollgate_protocol::anthropic::error_body("api_error", message);
                vec![tollgate_protocol::sse::encode(Some("error"), &body.to_string())]
            }
            Self::MessagesOnChat(t) => t.fail(message),
            Self::ChatOnMessages(t) => t.fail(message),
            Self::ResponsesPass(_) => {
                let body = serde_json::json!({
                    "type": "error",
                    "code": "upstream_stream_interrupted",
                    "message": message,
                    "param": null,
                });
                vec![tollgate_protocol::sse::encode(Some("error"), &body.to_string())]
            }
            Self::ResponsesOnChat(t) => t.fail(message),
            Self::ChatOnResponses(t) => t.fail(message),
            Self::MessagesOnResponses(t) => t.fail(message),
            Self::ResponsesOnMessages(t) => t.fail(message),
        }
    }

    /// A keep-alive for a quiet upstream, where the client's protocol has one.
    pub fn keepalive(&self) -> Option<Bytes> {
        match self.client() {
            Protocol::Messages => Some(OpenAiToAnthropicStream::ping()),
            Protocol::Chat | Protocol::Responses => None,
        }
    }

    /// A whole (non-streaming) answer: the client's body and the usage it reports.
    pub fn whole(
        &self,
        body: Bytes,
        requested_model: &str,
        created: u64,
    ) -> Result<(Bytes, Usage), ApiError> {
        match self {
            Self::ChatPass { .. } => {
                let usage =
                    tollgate_protocol::openai::response_usage(&body).map_err(bad_upstream)?;
                Ok((body, usage.unwrap_or_default()))
            }
            Self::MessagesPass(_) => {
                let usage =
                    tollgate_protocol::anthropic::response_usage(&body).map_err(bad_upstream)?;
                Ok((body, usage.unwrap_or_default()))
            }
            Self::MessagesOnChat(_) => {
                let usage =
                    tollgate_protocol::openai::usage_from_response(&body).unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out =
                    openai_response_to_anthropic(&v, requested_model).map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
            Self::ChatOnMessages(_) => {
                let usage =
                    tollgate_protocol::anthropic::usage_from_response(&body).unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out = anthropic_response_to_openai(&v, requested_model, created)
                    .map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
            Self::ResponsesPass(_) => {
                let usage = response_usage(&body).map_err(bad_upstream)?;
                Ok((body, usage.unwrap_or_default()))
            }
            Self::ResponsesOnChat(t) => {
                let usage =
                    tollgate_protocol::openai::usage_from_response(&body).unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out = chat_response_to_responses(&v, requested_model, t.custom_tools())
                    .map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
            Self::ChatOnResponses(_) => {
                let usage = response_usage(&body).map_err(bad_upstream)?.unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out = responses_response_to_chat(&v, requested_model).map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
            Self::MessagesOnResponses(_) => {
                let usage = response_usage(&body).map_err(bad_upstream)?.unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out =
                    responses_response_to_anthropic(&v, requested_model).map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
            Self::ResponsesOnMessages(t) => {
                let usage =
                    tollgate_protocol::anthropic::usage_from_response(&body).unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).map_err(bad_upstream)?;
                let out =
                    anthropic_response_to_responses(&v, requested_model, created, t.custom_tools())
                        .map_err(bad_upstream)?;
                Ok((Bytes::from(out.to_string()), usage))
            }
        }
    }
}

/// Whether `needle` occurs in `frame`: a cheap look before parsing an event.
pub(super) fn mentions(frame: &[u8], needle: &[u8]) -> bool {
    frame.windows(needle.len()).any(|w| w == needle)
}

fn bad_upstream(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "upstream answered something that cannot be translated");
    ApiError::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "The upstream provider's answer could not be read.",
    )
    .with_code("upstream_invalid_response")
}
