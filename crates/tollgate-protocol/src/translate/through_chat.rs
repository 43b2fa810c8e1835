//! Anthropic Messages ↔ Responses, as the two translations each side has to and from Chat
//! Completions, one after the other: requests, whole answers and streams. What Chat
//! Completions cannot carry between them (Anthropic's thinking signatures, Responses'
//! built-in tools) is dropped and listed as the single-step translations list it.

use bytes::Bytes;
use serde_json::Value;

use super::{
    AnthropicToOpenAiStream, ChatToResponsesStream, OpenAiToAnthropicStream, ResponsesToChatStream,
    TranslateError, anthropic_request_to_openai, anthropic_response_to_openai,
    chat_request_to_responses, chat_response_to_responses, openai_request_to_anthropic,
    openai_response_to_anthropic, responses_request_to_chat, responses_response_to_chat,
};
use crate::RequestError;
use crate::sse::SseEvent;

/// Merges two dropped-field lists, each name once, in the order first met.
fn both(mut first: Vec<String>, second: Vec<String>) -> Vec<String> {
    for name in second {
        if !first.contains(&name) {
            first.push(name);
        }
    }
    first
}

/// A Messages request for a Responses deployment serving `upstream_model`.
pub fn anthropic_request_to_responses(
    body: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    let (chat, dropped) = anthropic_request_to_openai(body, upstream_model)?;
    let (out, more) = chat_request_to_responses(&chat, upstream_model)?;
    Ok((out, both(dropped, more)))
}

/// A Responses request for a Messages deployment serving `upstream_model`.
pub fn responses_request_to_anthropic(
    body: &Value,
    upstream_model: &str,
) -> Result<(Value, Vec<String>), RequestError> {
    let (chat, dropped) = responses_request_to_chat(body, upstream_model)?;
    let (out, more) = openai_request_to_anthropic(&chat, upstream_model)?;
    // The usage request is how the chat step asks for usage; Anthropic streams always end
    // with it.
    let more = more.into_iter().filter(|d| !d.starts_with("stream_options")).collect();
    Ok((out, both(dropped, more)))
}

/// A Response body as the Message the client asked `requested_model` for.
pub fn responses_response_to_anthropic(
    resp: &Value,
    requested_model: &str,
) -> Result<Value, TranslateError> {
    let chat = responses_response_to_chat(resp, requested_model)?;
    openai_response_to_anthropic(&chat, requested_model)
}

/// A Message body as the Response the client asked `requested_model` for; calls of
/// `custom_tools` become `custom_tool_call` items (see [`chat_response_to_responses`]).
pub fn anthropic_response_to_responses(
    resp: &Value,
    requested_model: &str,
    created: u64,
    custom_tools: &[String],
) -> Result<Value, TranslateError> {
    let chat = anthropic_response_to_openai(resp, requested_model, created)?;
    chat_response_to_responses(&chat, requested_model, custom_tools)
}

/// Feeds each chat event one step produced to the next step.
fn chain(frames: Vec<Bytes>, mut next: impl FnMut(&str) -> Vec<Bytes>) -> Vec<Bytes> {
    frames.iter().flat_map(|f| next(&SseEvent::parse(f).data)).collect()
}

/// A Responses upstream's stream, as a Messages client's.
#[derive(Debug)]
pub struct ResponsesToAnthropicStream {
    to_chat: ResponsesToChatStream,
    to_messages: OpenAiToAnthropicStream,
}

impl ResponsesToAnthropicStream {
    /// A translator for one stream: the model name the client asked for, and the message id
    /// to give it.
    pub fn new(requested_model: &str, message_id: &str) -> Self {
        Self {
            to_chat: ResponsesToChatStream::new(requested_model, 0, true),
            to_messages: OpenAiToAnthropicStream::new(requested_model, message_id),
        }
    }

    /// One upstream event in, the client's events out.
    pub fn push_event(&mut self, event: &SseEvent) -> Vec<Bytes> {
        let chat = self.to_chat.push_event(event);
        chain(chat, |d| self.to_messages.push_chunk(d))
    }

    /// The upstream ended.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let chat = self.to_chat.finish();
        let mut out = chain(chat, |d| self.to_messages.push_chunk(d));
        out.extend(self.to_messages.finish());
        out
    }

    /// The upstream failed mid-stream.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        self.to_messages.fail(message)
    }

    /// The usage the upstream reported.
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.to_chat.usage()
    }
}

/// A Messages upstream's stream, as a Responses client's.
#[derive(Debug)]
pub struct AnthropicToResponsesStream {
    to_chat: AnthropicToOpenAiStream,
    to_responses: ChatToResponsesStream,
}

impl AnthropicToResponsesStream {
    /// A translator for one stream: the model name the client asked for, the response id to
    /// give it, and the Unix time to report.
    pub fn new(requested_model: &str, response_id: &str, created_at: u64) -> Self {
        Self {
            to_chat: AnthropicToOpenAiStream::new(requested_model, created_at, true),
            to_responses: ChatToResponsesStream::new(requested_model, response_id, created_at),
        }
    }

    /// See [`ChatToResponsesStream::with_custom_tools`].
    #[must_use]
    pub fn with_custom_tools(mut self, names: Vec<String>) -> Self {
        self.to_responses = self.to_responses.with_custom_tools(names);
        self
    }

    /// The names given to [`Self::with_custom_tools`].
    pub fn custom_tools(&self) -> &[String] {
        self.to_responses.custom_tools()
    }

    /// One upstream event in, the client's events out.
    pub fn push_event(&mut self, event: &SseEvent) -> Vec<Bytes> {
        let chat = self.to_chat.push_event(event);
        chain(chat, |d| self.to_responses.push_chunk(d))
    }

    /// The upstream ended.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let chat = self.to_chat.finish();
        let mut out = chain(chat, |d| self.to_responses.push_chunk(d));
        out.extend(self.to_responses.finish());
        out
    }

    /// The upstream failed mid-stream.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        self.to_responses.fail(message)
    }

    /// The usage the upstream reported.
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.to_chat.usage()
    }
}
