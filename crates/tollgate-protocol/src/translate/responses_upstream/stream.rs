//! A Responses stream as a chat completion stream.

use bytes::Bytes;
use serde_json::Map;

use super::response::{chat_usage, completion_id};
use crate::openai::types::{
    ChatCompletionChunk, ChatUsage, ChunkChoice, ChunkDelta, FunctionCallDelta, ToolCallDelta,
};
use crate::responses::{Item, ResponseObject, ResponsesUsage, StreamEvent};
use crate::sse::{self, SseEvent};
use crate::translate::finish_reason_for_status;
use crate::wire;

/// Turns Responses stream events into `data: {chat.completion.chunk}` events: a role chunk
/// first, then `content` (from `output_text` deltas), `refusal`, `reasoning_content` (from
/// reasoning summary or reasoning text deltas) and `tool_calls` deltas (id and name when a
/// `function_call` item is added, then argument fragments, indexed per call), a finish
/// chunk when `response.completed` or `response.incomplete` arrives, the usage-only chunk
/// when the client asked for `stream_options.include_usage`, and `data: [DONE]`.
/// `response.failed` and `error` events become `data: {"error": {...}}`, the shape OpenAI
/// clients raise on.
#[derive(Debug)]
pub struct ResponsesToChatStream {
    model: String,
    created: u64,
    include_usage: bool,
    id: String,
    role_sent: bool,
    done: bool,
    /// Function call item id → (chat tool call index, argument bytes sent).
    tools: Vec<(String, u32, usize)>,
    usage: Option<ResponsesUsage>,
}

impl ResponsesToChatStream {
    /// A translator for one response to a client that asked for `requested_model`.
    /// `created` is the Unix time to report until the upstream gives its own;
    /// `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(requested_model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            model: requested_model.to_owned(),
            created,
            include_usage,
            id: "chatcmpl-tollgate".to_owned(),
            role_sent: false,
            done: false,
            tools: Vec::new(),
            usage: None,
        }
    }

    /// Translates one framed upstream event.
    pub fn push_event(&mut self, event: &SseEvent) -> Vec<Bytes> {
        self.push_data(&event.data)
    }

    /// Translates the `data` of one upstream event. Payloads that are not Responses events,
    /// and events with no chat counterpart, produce nothing.
    pub fn push_data(&mut self, data: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        let Ok(event) = serde_json::from_str::<StreamEvent>(data) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match event {
            StreamEvent::Created(e) | StreamEvent::InProgress(e) => {
                self.identify(&e.response);
                self.role(&mut out);
            }
            StreamEvent::OutputItemAdded(e) => {
                if let Item::FunctionCall(call) = e.item {
                    let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    let item_id = call.id.unwrap_or_else(|| call.call_id.clone());
                    self.tools.push((item_id, index, call.arguments.len()));
                    self.tool_delta(
                        index,
                        Some(call.call_id),
                        Some(call.name),
                        call.arguments,
                        &mut out,
                    );
                }
            }
            StreamEvent::FunctionCallArgumentsDelta(d) => {
                if let Some(tool) = self.tools.iter_mut().find(|t| t.0 == d.item_id) {
                    tool.2 += d.delta.len();
                    let index = tool.1;
                    self.tool_delta(index, None, None, d.delta, &mut out);
                }
            }
            StreamEvent::OutputItemDone(e) => {
                // Arguments given whole, without deltas, are sent now.
                if let Item::FunctionCall(call) = e.item {
                    let item_id = call.id.unwrap_or_else(|| call.call_id.clone());
                    if let Some(tool) = self.tools.iter_mut().find(|t| t.0 == item_id)
                        && let Some(rest) = call.arguments.get(tool.2..)
                        && !rest.is_empty()
                    {
                        tool.2 = call.arguments.len();
                        let (index, rest) = (tool.1, rest.to_owned());
                        self.tool_delta(index, None, None, rest, &mut out);
                    }
                }
            }
            StreamEvent::OutputTextDelta(d) => {
                self.delta(
                    ChunkDelta { content: Some(d.delta), ..ChunkDelta::default() },
                    &mut out,
                );
            }
            StreamEvent::RefusalDelta(d) => {
                self.delta(
                    ChunkDelta { refusal: Some(d.delta), ..ChunkDelta::default() },
                    &mut out,
                );
            }
            StreamEvent::ReasoningSummaryTextDelta(d) => self.reasoning(d.delta, &mut out),
            StreamEvent::ReasoningTextDelta(d) => self.reasoning(d.delta, &mut out),
            StreamEvent::Completed(e) | StreamEvent::Incomplete(e) => {
                self.complete(e.response, &mut out);
            }
            StreamEvent::Failed(e) => {
                let error = e.response.error.unwrap_or_default();
                let message = if error.message.is_empty() {
                    "The upstream response failed.".to_owned()
                } else {
                    error.message
                };
                return self.error("api_error", &message);
            }
            StreamEvent::Error(e) => {
                let kind = e.code.as_deref().unwrap_or("api_error").to_owned();
                return self.error(&kind, &e.message);
            }
            _ => {}
        }
        out
    }

    /// The upstream ended. Before `response.completed` that means it was cut off: the
    /// client gets an error event rather than a stream that looks complete.
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
        self.usage.as_ref().map(crate::openai::Usage::from)
    }

    /// Whether the stream has ended, normally or not.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn identify(&mut self, response: &ResponseObject) {
        if !response.id.is_empty() {
            self.id = completion_id(&response.id);
        }
        if response.created_at > 0 {
            self.created = response.created_at;
        }
    }

    fn error(&mut self, kind: &str, message: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let body = crate::openai::error_body(message, kind, None, None);
        vec![sse::encode(None, &wire::to_string(&body))]
    }

    fn reasoning(&mut self, text: String, out: &mut Vec<Bytes>) {
        if !text.is_empty() {
            self.delta(ChunkDelta { reasoning_content: Some(text), ..ChunkDelta::default() }, out);
        }
    }

    fn tool_delta(
        &mut self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<Bytes>,
    ) {
        let first = id.is_some();
        if !first && arguments.is_empty() {
            return;
        }
        let call = ToolCallDelta {
            index,
            id,
            kind: first.then(|| "function".to_owned()),
            function: Some(FunctionCallDelta { name, arguments: Some(arguments) }),
        };
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
        out.push(self.chunk(vec![choice(delta, None)], None));
    }

    fn delta(&mut self, delta: ChunkDelta, out: &mut Vec<Bytes>) {
        if delta.content.as_deref() == Some("") {
            return;
        }
        self.role(out);
        out.push(self.chunk(vec![choice(delta, None)], None));
    }

    fn complete(&mut self, response: ResponseObject, out: &mut Vec<Bytes>) {
        self.identify(&response);
        self.role(out);
        self.done = true;
        let has_calls = !self.tools.is_empty()
            || response.output.iter().any(|i| matches!(i, Item::FunctionCall(_)));
        let finish = finish_reason_for_status(
            &response.status,
            response.incomplete_details.as_ref().map(|d| d.reason.as_str()),
            has_calls,
        );
        self.usage = response.usage.or(self.usage.take());
        out.push(self.chunk(vec![choice(ChunkDelta::default(), Some(finish.to_owned()))], None));
        if self.include_usage {
            let usage = chat_usage(&self.usage.clone().unwrap_or_default());
            out.push(self.chunk(Vec::new(), Some(usage)));
        }
        out.push(sse::encode(None, "[DONE]"));
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<ChatUsage>) -> Bytes {
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

fn choice(delta: ChunkDelta, finish_reason: Option<String>) -> ChunkChoice {
    ChunkChoice { index: 0, delta, finish_reason, extra: Map::new() }
}
