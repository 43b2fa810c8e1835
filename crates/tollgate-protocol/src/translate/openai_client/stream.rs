//! An Anthropic Messages stream as an OpenAI chat completion stream.

use bytes::Bytes;
use serde_json::Map;

use super::response::{chat_usage, completion_id};
use crate::anthropic::{BlockDelta, ContentBlock, StreamEvent, Usage};
use crate::openai::types::{
    ChatCompletionChunk, ChunkChoice, ChunkDelta, FunctionCallDelta, ToolCallDelta,
};
use crate::sse::{self, SseEvent};
use crate::translate::finish_reason_for;
use crate::wire;

/// Turns Anthropic stream events into `data: {chat.completion.chunk}` events: a role chunk
/// first, then content, `reasoning_content` (from thinking) and `tool_calls` deltas (id and
/// name, then argument fragments, indexed per call), a finish chunk, the usage-only chunk
/// when the client asked for `stream_options.include_usage`, and `data: [DONE]`.
/// Pings and signatures have no OpenAI form and are skipped; an Anthropic `error` event
/// becomes `data: {"error": {...}}`, the shape OpenAI clients raise on.
#[derive(Debug)]
pub struct AnthropicToOpenAiStream {
    model: String,
    created: u64,
    include_usage: bool,
    id: String,
    role_sent: bool,
    done: bool,
    /// Anthropic block index → OpenAI tool call index.
    tool_blocks: Vec<(usize, u32)>,
    stop_reason: Option<String>,
    usage: Option<Usage>,
}

impl AnthropicToOpenAiStream {
    /// A translator for one response to a client that asked for `requested_model`.
    /// `created` is the Unix time to report (this crate reads no clocks); `include_usage`
    /// is the client's `stream_options.include_usage`.
    pub fn new(requested_model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            model: requested_model.to_owned(),
            created,
            include_usage,
            id: "chatcmpl-tollgate".to_owned(),
            role_sent: false,
            done: false,
            tool_blocks: Vec::new(),
            stop_reason: None,
            usage: None,
        }
    }

    /// Translates one framed upstream event.
    pub fn push_event(&mut self, event: &SseEvent) -> Vec<Bytes> {
        if event.event.as_deref() == Some("ping") {
            return Vec::new();
        }
        self.push_data(&event.data)
    }

    /// Translates the `data` of one upstream event. Payloads that are not Anthropic events
    /// produce nothing.
    pub fn push_data(&mut self, data: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        let Ok(event) = serde_json::from_str::<StreamEvent>(data) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = completion_id(&message.id);
                self.usage = Some(message.usage);
                self.role(&mut out);
            }
            StreamEvent::ContentBlockStart { index, content_block } => {
                self.block_start(index, content_block, &mut out)
            }
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => self.content(text, &mut out),
                BlockDelta::ThinkingDelta { thinking } => self.reasoning(thinking, &mut out),
                BlockDelta::InputJsonDelta { partial_json } => {
                    self.arguments(index, partial_json, &mut out);
                }
                BlockDelta::SignatureDelta { .. } | BlockDelta::Other(_) => {}
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                if let Some(u) = usage {
                    let total = self.usage.get_or_insert_with(Usage::default);
                    // Counts in message_delta are cumulative: each replaces the earlier one.
                    total.input_tokens = u.input_tokens.unwrap_or(total.input_tokens);
                    total.output_tokens = u.output_tokens.unwrap_or(total.output_tokens);
                    total.cache_creation_input_tokens =
                        u.cache_creation_input_tokens.or(total.cache_creation_input_tokens);
                    total.cache_read_input_tokens =
                        u.cache_read_input_tokens.or(total.cache_read_input_tokens);
                }
            }
            StreamEvent::MessageStop => self.complete(&mut out),
            StreamEvent::Error { error } => return self.error(&error.kind, &error.message),
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping => {}
        }
        out
    }

    /// The upstream ended. Before `message_stop` that means it was cut off: the client gets
    /// an error event rather than a stream that looks complete.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.fail("The upstream stream ended before the response was complete.")
    }

    /// The upstream failed mid-stream: an OpenAI-shaped error event, after which the stream
    /// is over.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        self.error("api_error", message)
    }

    /// The usage reported so far, in the gateway's terms.
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.usage.as_ref().map(|u| crate::openai::Usage {
            prompt_tokens: u.total_input_tokens(),
            completion_tokens: u.output_tokens,
            cached_tokens: u.cache_read_input_tokens.unwrap_or(0),
        })
    }

    /// Whether the stream has ended, normally or not.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn error(&mut self, kind: &str, message: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let body = crate::openai::error_body(message, kind, None, None);
        vec![sse::encode(None, &wire::to_string(&body))]
    }

    fn block_start(&mut self, index: usize, block: ContentBlock, out: &mut Vec<Bytes>) {
        match block {
            ContentBlock::ToolUse(t) => {
                let tool_index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                self.tool_blocks.push((index, tool_index));
                // Streams start tool blocks with `{}`; anything else is input given whole.
                let arguments = match &t.input {
                    serde_json::Value::Object(m) if !m.is_empty() => wire::to_string(&t.input),
                    _ => String::new(),
                };
                self.tool_delta(
                    ToolCallDelta {
                        index: tool_index,
                        id: Some(t.id),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCallDelta {
                            name: Some(t.name),
                            arguments: Some(arguments),
                        }),
                    },
                    out,
                );
            }
            ContentBlock::Text(t) => self.content(t.text, out),
            ContentBlock::Thinking(t) => self.reasoning(t.thinking, out),
            _ => {}
        }
    }

    fn content(&mut self, text: String, out: &mut Vec<Bytes>) {
        if !text.is_empty() {
            self.delta(ChunkDelta { content: Some(text), ..ChunkDelta::default() }, out);
        }
    }

    fn reasoning(&mut self, text: String, out: &mut Vec<Bytes>) {
        if !text.is_empty() {
            self.delta(ChunkDelta { reasoning_content: Some(text), ..ChunkDelta::default() }, out);
        }
    }

    fn arguments(&mut self, block: usize, fragment: String, out: &mut Vec<Bytes>) {
        let Some(&(_, tool_index)) = self.tool_blocks.iter().find(|(b, _)| *b == block) else {
            return;
        };
        if fragment.is_empty() {
            return;
        }
        self.tool_delta(
            ToolCallDelta {
                index: tool_index,
                id: None,
                kind: None,
                function: Some(FunctionCallDelta { name: None, arguments: Some(fragment) }),
            },
            out,
        );
    }

    fn tool_delta(&mut self, call: ToolCallDelta, out: &mut Vec<Bytes>) {
        self.delta(ChunkDelta { tool_calls: Some(vec![call]), ..ChunkDelta::default() }, out);
    }

    fn role(&mut self, out: &mut Vec<Bytes>) {
        if self.role_sent {
            return;
        }
        self.role_sent = true;
        let delta = ChunkDelta {
            role: Some("assistant".to_owned()),
            content: Some(String::new()),
            ..ChunkDelta::default()
        };
        out.push(self.chunk(vec![self.choice(delta, None)], None));
    }

    fn delta(&mut self, delta: ChunkDelta, out: &mut Vec<Bytes>) {
        self.role(out);
        out.push(self.chunk(vec![self.choice(delta, None)], None));
    }

    fn complete(&mut self, out: &mut Vec<Bytes>) {
        self.role(out);
        self.done = true;
        let finish = finish_reason_for(self.stop_reason.as_deref()).to_owned();
        out.push(self.chunk(vec![self.choice(ChunkDelta::default(), Some(finish))], None));
        if self.include_usage {
            let usage = chat_usage(&self.usage.clone().unwrap_or_default());
            out.push(self.chunk(Vec::new(), Some(usage)));
        }
        out.push(sse::encode(None, "[DONE]"));
    }

    fn choice(&self, delta: ChunkDelta, finish_reason: Option<String>) -> ChunkChoice {
        ChunkChoice { index: 0, delta, finish_reason, extra: Map::new() }
    }

    fn chunk(
        &self,
        choices: Vec<ChunkChoice>,
        usage: Option<crate::openai::types::ChatUsage>,
    ) -> Bytes {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
            extra: Map::new(),
        };
        sse::encode(None, &wire::to_string(&chunk))
    }
}
