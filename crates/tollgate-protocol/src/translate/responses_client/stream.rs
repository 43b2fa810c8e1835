//! A chat completion stream as a Responses stream.

use bytes::Bytes;
use serde_json::Map;

use super::response::{call_item, finish, function_call_id, id_base, item_status, usage};
use crate::openai::types::{ChatCompletionChunk, ChatUsage, ToolCallDelta};
use crate::responses::{
    ArgumentsDelta, ArgumentsDone, CustomInputDone, CustomToolCallItem, FunctionCallItem, Item,
    ItemEvent, ItemRole, MessageItem, Part, PartEvent, ReasoningItem, ReasoningPart, ResponseError,
    ResponseEvent, ResponseObject, StreamEvent, SummaryPartEvent, SummaryTextDelta,
    SummaryTextDone, TextDelta, TextDone,
};
use crate::translate::incomplete_reason_for;
use crate::translate::tool_calls::PendingCalls;
use crate::wire::TextOr;

/// Turns the `data` payloads of a chat stream into Responses SSE events:
/// `response.created` and `response.in_progress`, then per output item
/// `response.output_item.added`, its part and delta events and `response.output_item.done`
/// carrying the whole item, and last `response.completed` (or `response.incomplete`)
/// carrying the whole response with usage. Every event has a `sequence_number`.
///
/// Reasoning deltas form a `reasoning` item whose summary streams as
/// `response.reasoning_summary_text.delta`; Copilot's `reasoning_opaque` becomes its
/// `encrypted_content`. Text forms a `message` item with one `output_text` part; each tool
/// call a `function_call` item. Items are sent one after another, never interleaved, so
/// interleaved argument fragments of several calls are held back as
/// `OpenAiToAnthropicStream` does. Calls of the functions that stand for the request's
/// custom tools ([`Self::with_custom_tools`]) are `custom_tool_call` items instead, their
/// input sent whole when the call is complete, as it is JSON-encoded in the arguments until
/// then. The stream always ends with a terminal event: a chat
/// error payload, a cut-off stream or [`Self::fail`] give `response.failed`, which clients
/// such as the Codex CLI need to stop waiting.
#[derive(Debug)]
pub struct ChatToResponsesStream {
    response: ResponseObject,
    base: String,
    sequence: u64,
    started: bool,
    done: bool,
    open: Open,
    reasoning: String,
    summary_open: bool,
    opaque: Option<String>,
    text: String,
    tools: PendingCalls,
    finish_reason: Option<String>,
    usage: Option<ChatUsage>,
    custom_tools: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    /// Output index.
    Reasoning(usize),
    /// Output index.
    Text(usize),
    /// Position in `tools`.
    Tool(usize),
}

impl ChatToResponsesStream {
    /// A translator for one response. `requested_model` is the name the client asked for,
    /// `response_id` the id to give the response (`resp_` is added when missing), and
    /// `created_at` the Unix time to report: this crate reads no clocks.
    pub fn new(requested_model: &str, response_id: &str, created_at: u64) -> Self {
        let base = id_base(response_id);
        Self {
            response: ResponseObject::new(format!("resp_{base}"), requested_model, created_at),
            base,
            sequence: 0,
            started: false,
            done: false,
            open: Open::None,
            reasoning: String::new(),
            summary_open: false,
            opaque: None,
            text: String::new(),
            tools: PendingCalls::default(),
            finish_reason: None,
            usage: None,
            custom_tools: Vec::new(),
        }
    }

    /// Names the functions that stand for custom tools (see
    /// [`crate::responses::custom_tool_names`]): their calls become `custom_tool_call`s.
    #[must_use]
    pub fn with_custom_tools(mut self, names: Vec<String>) -> Self {
        self.custom_tools = names;
        self
    }

    /// The names given to [`Self::with_custom_tools`], for translating a whole answer.
    pub fn custom_tools(&self) -> &[String] {
        &self.custom_tools
    }

    /// Translates the `data` of one upstream event, `[DONE]` included. Payloads that are
    /// not chunks produce nothing; an `{"error": ...}` payload ends the stream with
    /// `response.failed`.
    pub fn push_chunk(&mut self, data: &str) -> Vec<Bytes> {
        let data = data.trim();
        if self.done || data.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if data == "[DONE]" {
            self.complete(&mut out);
            return out;
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
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        self.start(&mut out);
        for choice in chunk.choices {
            let delta = choice.delta;
            if let Some(r) = delta.reasoning_text() {
                self.reasoning_delta(r, &mut out);
            }
            if let Some(s) = delta.reasoning_opaque {
                if !matches!(self.open, Open::Reasoning(_)) {
                    self.open_reasoning(&mut out);
                }
                self.opaque = Some(s);
            }
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                self.text_delta(text, &mut out);
            }
            for call in delta.tool_calls.into_iter().flatten() {
                self.tool_call(choice.index, call, &mut out);
            }
            if let Some(reason) = choice.finish_reason {
                // Items close now, with their final status, without waiting for usage.
                self.finish_reason.get_or_insert(reason);
                self.close_all(&mut out);
            }
        }
        out
    }

    /// The upstream ended. A stream that ended before any `finish_reason` was cut off and
    /// ends with `response.failed` rather than a response that looks complete.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        if self.finish_reason.is_none() {
            return self.fail("The upstream stream ended before the response was complete.");
        }
        let mut out = Vec::new();
        self.complete(&mut out);
        out
    }

    /// The upstream failed mid-stream: `response.failed` with a `server_error`, carrying
    /// the items finished so far, after which the stream is over.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.start(&mut out);
        self.done = true;
        self.response.status = "failed".to_owned();
        self.response.error =
            Some(ResponseError { code: "server_error".to_owned(), message: message.to_owned() });
        self.response.usage = self.usage.as_ref().map(usage);
        let response = self.response.clone();
        self.emit(StreamEvent::Failed(ResponseEvent { response }), &mut out);
        out
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

    fn emit(&mut self, event: StreamEvent, out: &mut Vec<Bytes>) {
        out.push(event.to_sse(self.sequence));
        self.sequence += 1;
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response.clone();
        self.emit(StreamEvent::Created(ResponseEvent { response: response.clone() }), out);
        self.emit(StreamEvent::InProgress(ResponseEvent { response }), out);
    }

    fn next_index(&self) -> usize {
        self.response.output.len()
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}_{index}", self.base)
    }

    fn open_reasoning(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.close(out);
        let output_index = self.next_index();
        self.open = Open::Reasoning(output_index);
        let item = Item::Reasoning(ReasoningItem {
            id: self.item_id("rs", output_index),
            ..ReasoningItem::default()
        });
        self.emit(StreamEvent::OutputItemAdded(ItemEvent { output_index, item }), out);
        output_index
    }

    fn reasoning_delta(&mut self, fragment: &str, out: &mut Vec<Bytes>) {
        let output_index = match self.open {
            Open::Reasoning(i) => i,
            _ => self.open_reasoning(out),
        };
        let item_id = self.item_id("rs", output_index);
        if !self.summary_open {
            self.summary_open = true;
            let part = ReasoningPart::summary("");
            let event =
                SummaryPartEvent { item_id: item_id.clone(), output_index, summary_index: 0, part };
            self.emit(StreamEvent::ReasoningSummaryPartAdded(event), out);
        }
        self.reasoning.push_str(fragment);
        let delta = SummaryTextDelta {
            item_id,
            output_index,
            summary_index: 0,
            delta: fragment.to_owned(),
        };
        self.emit(StreamEvent::ReasoningSummaryTextDelta(delta), out);
    }

    fn text_delta(&mut self, fragment: String, out: &mut Vec<Bytes>) {
        if fragment.is_empty() {
            return;
        }
        let output_index = match self.open {
            Open::Text(i) => i,
            _ => {
                self.close(out);
                let output_index = self.next_index();
                self.open = Open::Text(output_index);
                let item_id = self.item_id("msg", output_index);
                let item = Item::Message(MessageItem {
                    id: Some(item_id.clone()),
                    role: ItemRole::Assistant,
                    content: TextOr::List(Vec::new()),
                    status: Some("in_progress".to_owned()),
                    extra: Map::new(),
                });
                self.emit(StreamEvent::OutputItemAdded(ItemEvent { output_index, item }), out);
                let part = Part::output_text("");
                let event = PartEvent { item_id, output_index, content_index: 0, part };
                self.emit(StreamEvent::ContentPartAdded(event), out);
                output_index
            }
        };
        let item_id = self.item_id("msg", output_index);
        self.text.push_str(&fragment);
        let delta = TextDelta {
            item_id,
            output_index,
            content_index: 0,
            delta: fragment,
            logprobs: Some(Vec::new()),
        };
        self.emit(StreamEvent::OutputTextDelta(delta), out);
    }

    fn tool_call(&mut self, choice: u32, call: ToolCallDelta, out: &mut Vec<Bytes>) {
        self.tools.merge(choice, call);
        self.advance_tools(out);
    }

    /// Streams the open call and opens the next waiting one when it may: when no call is
    /// open, or when the open call's arguments are complete JSON.
    fn advance_tools(&mut self, out: &mut Vec<Bytes>) {
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

    fn open_tool(&mut self, pos: usize, out: &mut Vec<Bytes>) {
        self.close(out);
        let output_index = self.next_index();
        let fallback = format!("call_{}_{output_index}", self.base);
        let tool = &mut self.tools[pos];
        if tool.id.is_empty() {
            tool.id = fallback;
        }
        tool.opened = Some(output_index);
        let (id, call_id, name) =
            (Some(function_call_id(&tool.id)), tool.id.clone(), tool.name.clone());
        let status = Some("in_progress".to_owned());
        let item = if self.custom_tools.contains(&name) {
            Item::CustomToolCall(CustomToolCallItem {
                id,
                call_id,
                name,
                input: String::new(),
                status,
            })
        } else {
            Item::FunctionCall(FunctionCallItem {
                id,
                call_id,
                name,
                arguments: String::new(),
                status,
            })
        };
        self.open = Open::Tool(pos);
        self.emit(StreamEvent::OutputItemAdded(ItemEvent { output_index, item }), out);
        self.flush_tool(pos, out);
    }

    fn flush_tool(&mut self, pos: usize, out: &mut Vec<Bytes>) {
        if self.custom_tools.contains(&self.tools[pos].name) {
            return;
        }
        let tool = &mut self.tools[pos];
        let (Some(output_index), Some(rest)) = (tool.opened, tool.arguments.get(tool.sent..))
        else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        let delta = ArgumentsDelta {
            item_id: function_call_id(&tool.id),
            output_index,
            delta: rest.to_owned(),
        };
        tool.sent = tool.arguments.len();
        self.emit(StreamEvent::FunctionCallArgumentsDelta(delta), out);
    }

    /// Closes the open item: its closing events, then `response.output_item.done` with the
    /// whole item, which joins the response's output.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        let status = item_status(incomplete_reason_for(self.finish_reason.as_deref()));
        let (output_index, item) = match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Reasoning(output_index) => {
                let item_id = self.item_id("rs", output_index);
                let text = std::mem::take(&mut self.reasoning);
                let mut summary = Vec::new();
                if std::mem::take(&mut self.summary_open) {
                    let done = SummaryTextDone {
                        item_id: item_id.clone(),
                        output_index,
                        summary_index: 0,
                        text: text.clone(),
                    };
                    self.emit(StreamEvent::ReasoningSummaryTextDone(done), out);
                    let part = ReasoningPart::summary(text);
                    summary.push(part.clone());
                    let event = SummaryPartEvent {
                        item_id: item_id.clone(),
                        output_index,
                        summary_index: 0,
                        part,
                    };
                    self.emit(StreamEvent::ReasoningSummaryPartDone(event), out);
                }
                let item = Item::Reasoning(ReasoningItem {
                    id: item_id,
                    summary,
                    content: None,
                    encrypted_content: self.opaque.take(),
                    status: None,
                });
                (output_index, item)
            }
            Open::Text(output_index) => {
                let item_id = self.item_id("msg", output_index);
                let text = std::mem::take(&mut self.text);
                let done = TextDone {
                    item_id: item_id.clone(),
                    output_index,
                    content_index: 0,
                    text: text.clone(),
                    logprobs: Vec::new(),
                };
                self.emit(StreamEvent::OutputTextDone(done), out);
                let part = Part::output_text(text);
                let event = PartEvent {
                    item_id: item_id.clone(),
                    output_index,
                    content_index: 0,
                    part: part.clone(),
                };
                self.emit(StreamEvent::ContentPartDone(event), out);
                let item = Item::Message(MessageItem {
                    id: Some(item_id),
                    role: ItemRole::Assistant,
                    content: TextOr::List(vec![part]),
                    status: Some(status.to_owned()),
                    extra: Map::new(),
                });
                (output_index, item)
            }
            Open::Tool(pos) => {
                self.flush_tool(pos, out);
                let tool = &self.tools[pos];
                let Some(output_index) = tool.opened else {
                    return;
                };
                let item_id = function_call_id(&tool.id);
                let (name, arguments) = (tool.name.clone(), tool.arguments.clone());
                let item = call_item(&self.custom_tools, tool.id.clone(), name, arguments, status);
                match &item {
                    Item::CustomToolCall(call) => {
                        let input = call.input.clone();
                        let delta = ArgumentsDelta {
                            item_id: item_id.clone(),
                            output_index,
                            delta: input.clone(),
                        };
                        self.emit(StreamEvent::CustomToolCallInputDelta(delta), out);
                        let done = CustomInputDone { item_id, output_index, input };
                        self.emit(StreamEvent::CustomToolCallInputDone(done), out);
                    }
                    _ => {
                        let done = ArgumentsDone {
                            item_id,
                            output_index,
                            name: tool.name.clone(),
                            arguments: tool.arguments.clone(),
                        };
                        self.emit(StreamEvent::FunctionCallArgumentsDone(done), out);
                    }
                }
                (output_index, item)
            }
        };
        self.response.output.push(item.clone());
        self.emit(StreamEvent::OutputItemDone(ItemEvent { output_index, item }), out);
    }

    /// Closes the open item and sends every call still waiting, one after another.
    fn close_all(&mut self, out: &mut Vec<Bytes>) {
        self.close(out);
        while let Some(next) = self.tools.waiting() {
            self.open_tool(next, out);
            self.close(out);
        }
    }

    fn complete(&mut self, out: &mut Vec<Bytes>) {
        self.start(out);
        self.close_all(out);
        self.done = true;
        let incomplete = incomplete_reason_for(self.finish_reason.as_deref());
        finish(&mut self.response, incomplete, self.usage.as_ref());
        let event = ResponseEvent { response: self.response.clone() };
        let event = match incomplete {
            Some(_) => StreamEvent::Incomplete(event),
            None => StreamEvent::Completed(event),
        };
        self.emit(event, out);
    }
}
