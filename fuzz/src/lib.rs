//! What the fuzz targets check beyond "no panic": the SSE a translator emits is well formed
//! and follows its protocol's event order.

use serde_json::Value;
use tollgate_protocol::sse::{SseEvent, SseFramer};

/// Splits upstream bytes into events the way the relay does: frame by frame, then the
/// unterminated rest.
pub fn frames(bytes: &[u8]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new();
    framer.push(bytes);
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame() {
        out.push(SseEvent::parse(&frame));
    }
    out.extend(framer.finish().map(|f| SseEvent::parse(&f)));
    out
}

/// One emitted piece of SSE: exactly one complete event whose data is JSON (or `[DONE]`).
/// Returns the event name and the data.
pub fn decode_one(bytes: &[u8]) -> (Option<String>, Value) {
    let mut framer = SseFramer::new();
    framer.push(bytes);
    let frame = framer.next_frame().expect("an emitted event lacks its terminating blank line");
    assert_eq!(frame.len(), bytes.len(), "one emitted piece holds more than one event");
    assert!(framer.finish().is_none());
    let event = SseEvent::parse(&frame);
    let data = if event.data == "[DONE]" {
        Value::String(event.data.clone())
    } else {
        serde_json::from_str(&event.data).unwrap_or_else(|e| {
            panic!("emitted data is not JSON ({e}): {:?}", event.data);
        })
    };
    (event.event, data)
}

/// Anthropic's Messages stream order: `message_start`; blocks opened with consecutive
/// indices, one at a time, deltas of the block's own kind only to the open block; then
/// `message_delta` and `message_stop`. An `error` may come at any point and ends the stream.
#[derive(Debug, Default)]
pub struct AnthropicOrder {
    started: bool,
    ended: bool,
    delta_seen: bool,
    next_index: u64,
    open: Option<(u64, String)>,
}

impl AnthropicOrder {
    /// Checks one emitted event.
    pub fn check(&mut self, bytes: &[u8]) {
        let (name, data) = decode_one(bytes);
        let kind = data["type"].as_str().unwrap_or_default().to_owned();
        assert_eq!(name.as_deref(), Some(kind.as_str()), "event name differs from data.type");
        assert!(!self.ended, "{kind} after the stream ended");
        let index = data["index"].as_u64();
        match kind.as_str() {
            "error" => self.ended = true,
            "ping" => {}
            "message_start" => {
                assert!(!self.started, "second message_start");
                self.started = true;
            }
            _ => assert!(self.started, "{kind} before message_start"),
        }
        match kind.as_str() {
            "content_block_start" => {
                assert!(self.open.is_none(), "a block opens while another is open");
                assert!(!self.delta_seen, "a block opens after message_delta");
                assert_eq!(index, Some(self.next_index), "block indices are not consecutive");
                let block = data["content_block"]["type"].as_str().unwrap_or_default();
                self.open = Some((self.next_index, block.to_owned()));
                self.next_index += 1;
            }
            "content_block_delta" => {
                let (open, block) = self.open.as_ref().expect("a delta to no open block");
                assert_eq!(index, Some(*open), "a delta to a block that is not open");
                let delta = data["delta"]["type"].as_str().unwrap_or_default();
                let fits = match block.as_str() {
                    "text" => delta == "text_delta",
                    "thinking" => matches!(delta, "thinking_delta" | "signature_delta"),
                    "tool_use" => delta == "input_json_delta",
                    _ => false,
                };
                assert!(fits, "a {delta} in a {block} block");
            }
            "content_block_stop" => {
                let (open, _) = self.open.take().expect("a stop of no open block");
                assert_eq!(index, Some(open), "a stop of a block that is not open");
            }
            "message_delta" => {
                assert!(self.open.is_none(), "message_delta while a block is open");
                self.delta_seen = true;
            }
            "message_stop" => {
                assert!(self.delta_seen, "message_stop without message_delta");
                self.ended = true;
            }
            "message_start" | "ping" | "error" => {}
            other => panic!("unknown event {other}"),
        }
    }

    /// Whether the stream was closed with `message_stop` or `error`.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// OpenAI's chat stream: `data: {chunk}` events, then `data: [DONE]`; an error object ends the
/// stream instead.
#[derive(Debug, Default)]
pub struct OpenAiOrder {
    ended: bool,
}

impl OpenAiOrder {
    /// Checks one emitted event.
    pub fn check(&mut self, bytes: &[u8]) {
        let (name, data) = decode_one(bytes);
        assert_eq!(name, None, "OpenAI events carry no event name");
        assert!(!self.ended, "an event after the stream ended: {data}");
        if data == "[DONE]" || data.get("error").is_some() {
            self.ended = true;
        } else {
            assert_eq!(data["object"], "chat.completion.chunk", "not a chunk: {data}");
            assert!(data["choices"].is_array(), "a chunk without choices: {data}");
        }
    }

    /// Whether the stream was closed with `[DONE]` or an error.
    pub fn ended(&self) -> bool {
        self.ended
    }
}
