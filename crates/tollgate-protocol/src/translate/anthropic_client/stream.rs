//! An OpenAI chat completion stream as an Anthropic Messages stream.

use bytes::Bytes;
use serde_json::{Map, json};

use super::response::{message_id, usage};
use crate::anthropic::{
    BlockDelta, ContentBlock, DeltaUsage, ErrorDetail, MessageDelta, MessagesResponse, StreamEvent,
    ThinkingBlock, ToolUseBlock, Usage,
};
use crate::openai::types::{ChatCompletionChunk, ChatUsage, ToolCallDelta};
use crate::translate::stop_reason_for;
use crate::translate::tool_calls::PendingCalls;

/// Turns the `data` payloads of an OpenAI chat stream into Anthropic SSE events, in the
/// exact order Anthropic sends them: `message_start`, then per block `content_block_start`,
/// deltas and `content_block_stop` with consecutive indices, then `message_delta` and
/// `message_stop`.
///
/// Reasoning deltas form a thinking block; a `signature_delta` is sent before it closes
/// only when the provider sent `reasoning_opaque` (Copilot), since any other signature
/// would be invented. Each tool call becomes its own `tool_use` block. Anthropic blocks
/// cannot interleave, so when a provider interleaves the argument fragments of several
/// calls, the later calls are held back until the open call's arguments form complete
/// JSON, or the turn ends. (A fragment arriving after its call's block was closed by text
/// in between cannot be sent; no provider is known to do that.) `message_delta` waits for
/// `[DONE]` or [`Self::finish`] because the usage-only chunk arrives after the
/// `finish_reason` chunk.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    model: String,
    message_id: String,
    started: bool,
    done: bool,
    next_index: usize,
    open: Open,
    tools: PendingCalls,
    signature: Option<String>,
    finish_reason: Option<String>,
    usage: Option<ChatUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Thinking(usize),
    Text(usize),
    /// Position in `tools`.
    Tool(usize),
}

impl OpenAiToAnthropicStream {
    /// A translator for one response. `requested_model` is the name the client asked for;
    /// `message_id` the id to give the message, prefixed with `msg_` when it lacks it
    /// (upstream chunk ids arrive too late for `message_start` to wait for them).
    pub fn new(requested_model: &str, message_id: &str) -> Self {
        Self {
            model: requested_model.to_owned(),
            message_id: message_id.to_owned(),
            started: false,
            done: false,
            next_index: 0,
            open: Open::None,
            tools: PendingCalls::default(),
            signature: None,
            finish_reason: None,
            usage: None,
        }
    }

    /// Translates the `data` of one upstream event, `[DONE]` included. Payloads that are
    /// not chunks (comments, keep-alives) produce nothing; an `{"error": ...}` payload ends
    /// the stream with an Anthropic `error` event.
    pub fn push_chunk(&mut self, data: &str) -> Vec<Bytes> {
        let data = data.trim();
        if self.done || data.is_empty() {
            return Vec::new();
        }
        if data == "[DONE]" {
            return encode(self.complete());
        }
        let Ok(chunk) = serde_json::from_str::<ChatCompletionChunk>(data) else {
            return Vec::new();
        };
        if let Some(error) = chunk.extra.get("error") {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("The upstream stream failed.");
            return self.fail(message);
        }
        let mut out = Vec::new();
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        self.start(&mut out);
        for choice in chunk.choices {
            let delta = choice.delta;
            if let Some(r) = delta.reasoning_text() {
                self.thinking(r, &mut out);
            }
            if let Some(s) = delta.reasoning_opaque {
                self.signature = Some(s);
            }
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                self.text(text, &mut out);
            }
            for call in delta.tool_calls.into_iter().flatten() {
                self.tool_call(choice.index, call, &mut out);
            }
            if let Some(reason) = choice.finish_reason {
                // Blocks close now so the client need not wait for the usage chunk.
                self.close_all(&mut out);
                self.finish_reason.get_or_insert(reason);
            }
        }
        encode(out)
    }

    /// The upstream ended. A stream that ended before any `finish_reason` was cut off, and
    /// gets an error event rather than a message that looks complete.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        if self.finish_reason.is_none() {
            return self.fail("The upstream stream ended before the response was complete.");
        }
        encode(self.complete())
    }

    /// The upstream failed mid-stream: an `error` event of type `api_error`, after which
    /// the stream is over.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        encode(vec![StreamEvent::Error {
            error: ErrorDetail { kind: "api_error".to_owned(), message: message.to_owned() },
        }])
    }

    /// A keep-alive event to send while the upstream is quiet.
    pub fn ping() -> Bytes {
        StreamEvent::Ping.to_sse()
    }

    /// The upstream's usage, once a chunk has reported it.
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.usage.as_ref().map(|u| crate::openai::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.cached_tokens(),
        })
    }

    /// Whether the stream has ended, normally or not.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut start_usage = self.usage.as_ref().map(usage).unwrap_or_default();
        start_usage.output_tokens = 0;
        out.push(StreamEvent::MessageStart {
            message: MessagesResponse {
                id: message_id(&self.message_id),
                kind: "message".to_owned(),
                role: "assistant".to_owned(),
                model: self.model.clone(),
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: start_usage,
                extra: Map::new(),
            },
        });
    }

    fn thinking(&mut self, fragment: &str, out: &mut Vec<StreamEvent>) {
        let index = match self.open {
            Open::Thinking(i) => i,
            _ => self.open_block(
                Open::Thinking,
                ContentBlock::Thinking(ThinkingBlock {
                    thinking: String::new(),
                    signature: String::new(),
                }),
                out,
            ),
        };
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::ThinkingDelta { thinking: fragment.to_owned() },
        });
    }

    fn text(&mut self, fragment: String, out: &mut Vec<StreamEvent>) {
        if fragment.is_empty() {
            return;
        }
        let index = match self.open {
            Open::Text(i) => i,
            _ => self.open_block(Open::Text, ContentBlock::text(""), out),
        };
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::TextDelta { text: fragment },
        });
    }

    fn tool_call(&mut self, choice: u32, call: ToolCallDelta, out: &mut Vec<StreamEvent>) {
        self.tools.merge(choice, call);
        self.advance_tools(out);
    }

    /// Streams the open tool call and opens the next waiting one when it may: when no tool
    /// block is open, or when the open call's arguments are complete JSON.
    fn advance_tools(&mut self, out: &mut Vec<StreamEvent>) {
        loop {
            let waiting = self.tools.waiting();
            match self.open {
                Open::Tool(p) => {
                    self.flush_tool(p, out);
                    if waiting.is_none() || !self.tools[p].arguments_complete() {
                        return;
                    }
                    self.close(out);
                }
                _ => match waiting {
                    Some(next) if !self.tools[next].name.is_empty() => self.open_tool(next, out),
                    _ => return,
                },
            }
        }
    }

    fn open_tool(&mut self, pos: usize, out: &mut Vec<StreamEvent>) {
        let fallback_id = format!("call_{}_{pos}", self.message_id);
        let tool = &mut self.tools[pos];
        if tool.id.is_empty() {
            tool.id = fallback_id;
        }
        let block = ContentBlock::ToolUse(ToolUseBlock {
            id: tool.id.clone(),
            name: tool.name.clone(),
            input: json!({}),
            cache_control: None,
            extra: Map::new(),
        });
        let index = self.open_block(|_| Open::Tool(pos), block, out);
        self.tools[pos].opened = Some(index);
        self.flush_tool(pos, out);
    }

    fn flush_tool(&mut self, pos: usize, out: &mut Vec<StreamEvent>) {
        let tool = &mut self.tools[pos];
        if let (Some(index), Some(rest)) = (tool.opened, tool.arguments.get(tool.sent..))
            && !rest.is_empty()
        {
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::InputJsonDelta { partial_json: rest.to_owned() },
            });
            tool.sent = tool.arguments.len();
        }
    }

    /// Closes the open block and starts a new one, returning its index.
    fn open_block(
        &mut self,
        open: impl FnOnce(usize) -> Open,
        content_block: ContentBlock,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = open(index);
        out.push(StreamEvent::ContentBlockStart { index, content_block });
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        let index = match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Thinking(i) => {
                if let Some(signature) = self.signature.take() {
                    out.push(StreamEvent::ContentBlockDelta {
                        index: i,
                        delta: BlockDelta::SignatureDelta { signature },
                    });
                }
                i
            }
            Open::Text(i) => i,
            Open::Tool(p) => match self.tools[p].opened {
                Some(i) => i,
                None => return,
            },
        };
        out.push(StreamEvent::ContentBlockStop { index });
    }

    /// Closes the open block and sends every tool call still waiting, one after another.
    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        if let Open::Tool(p) = self.open {
            self.flush_tool(p, out);
        }
        self.close(out);
        while let Some(next) = self.tools.waiting() {
            self.open_tool(next, out);
            self.close(out);
        }
    }

    fn complete(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close_all(&mut out);
        self.done = true;
        let stop_reason = stop_reason_for(self.finish_reason.as_deref(), !self.tools.is_empty());
        let u: Usage = self.usage.as_ref().map(usage).unwrap_or_default();
        out.push(StreamEvent::MessageDelta {
            delta: MessageDelta { stop_reason: Some(stop_reason.to_owned()), stop_sequence: None },
            usage: Some(DeltaUsage {
                input_tokens: Some(u.input_tokens),
                output_tokens: Some(u.output_tokens),
                cache_creation_input_tokens: u.cache_creation_input_tokens,
                cache_read_input_tokens: u.cache_read_input_tokens,
            }),
        });
        out.push(StreamEvent::MessageStop);
        out
    }
}

fn encode(events: Vec<StreamEvent>) -> Vec<Bytes> {
    events.iter().map(StreamEvent::to_sse).collect()
}
