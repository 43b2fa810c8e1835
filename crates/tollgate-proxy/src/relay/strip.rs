//! Removing reasoning from answers of models configured with `strip_thinking: true`, so a
//! conversation can move on to a provider that would refuse another's reasoning blocks.
//! Works on the upstream's own format, before any translation.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;
use tollgate_protocol::sse::{SseEvent, encode};

/// Reasoning fields OpenAI-format upstreams use.
const OPENAI_REASONING: [&str; 4] =
    ["reasoning_content", "reasoning", "reasoning_text", "reasoning_opaque"];

/// State for stripping one stream.
#[derive(Debug, Default)]
pub struct Strip {
    /// Upstream block index → index the client sees; `None` for dropped blocks.
    blocks: HashMap<u64, Option<u64>>,
    kept: u64,
}

impl Strip {
    /// One OpenAI chunk without reasoning fields.
    pub fn openai_frame(&mut self, frame: Bytes) -> Bytes {
        if !frame.windows(9).any(|w| w == b"reasoning") {
            return frame;
        }
        let event = SseEvent::parse(&frame);
        let Ok(mut v) = serde_json::from_str::<Value>(&event.data) else { return frame };
        for choice in v["choices"].as_array_mut().into_iter().flatten() {
            if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                OPENAI_REASONING.iter().for_each(|k| {
                    delta.remove(*k);
                });
            }
        }
        encode(event.event.as_deref(), &v.to_string())
    }

    /// One Anthropic event, or nothing when it belongs to a thinking block; later blocks are
    /// renumbered so the client sees consecutive indices.
    pub fn anthropic_frame(&mut self, frame: Bytes) -> Option<Bytes> {
        let event = SseEvent::parse(&frame);
        let kind = event.event.as_deref().unwrap_or_default();
        if !matches!(kind, "content_block_start" | "content_block_delta" | "content_block_stop") {
            return Some(frame);
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&event.data) else { return Some(frame) };
        let index = v["index"].as_u64().unwrap_or_default();
        if kind == "content_block_start" {
            let thinking = matches!(
                v["content_block"]["type"].as_str(),
                Some("thinking" | "redacted_thinking")
            );
            let target = (!thinking).then(|| {
                self.kept += 1;
                self.kept - 1
            });
            self.blocks.insert(index, target);
        }
        let target = (*self.blocks.get(&index).unwrap_or(&Some(index)))?;
        if target == index {
            return Some(frame);
        }
        v["index"] = Value::from(target);
        Some(encode(event.event.as_deref(), &v.to_string()))
    }
}

/// A whole OpenAI response without reasoning fields.
pub fn openai_whole(body: Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    for choice in v["choices"].as_array_mut().into_iter().flatten() {
        if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
            OPENAI_REASONING.iter().for_each(|k| {
                message.remove(*k);
            });
        }
    }
    Bytes::from(v.to_string())
}

/// A whole Anthropic message without thinking blocks.
pub fn anthropic_whole(body: Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    if let Some(content) = v["content"].as_array_mut() {
        content.retain(|b| !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")));
    }
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_thinking_blocks_and_renumbers() {
        let mut s = Strip::default();
        let ev = |kind: &str, data: &str| Bytes::from(format!("event: {kind}\ndata: {data}\n\n"));
        assert!(s.anthropic_frame(ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#)).is_none());
        assert!(s.anthropic_frame(ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"x"}}"#)).is_none());
        assert!(
            s.anthropic_frame(ev(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#
            ))
            .is_none()
        );
        let start = s.anthropic_frame(ev("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#)).unwrap();
        assert!(String::from_utf8_lossy(&start).contains(r#""index":0"#));
        let stop = s.anthropic_frame(ev("message_stop", r#"{"type":"message_stop"}"#)).unwrap();
        assert!(String::from_utf8_lossy(&stop).contains("message_stop"));
    }

    #[test]
    fn drops_openai_reasoning() {
        let mut s = Strip::default();
        let out = s.openai_frame(Bytes::from(
            r#"data: {"choices":[{"index":0,"delta":{"reasoning_content":"hmm","content":"hi"}}]}"#
                .to_owned()
                + "\n\n",
        ));
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("reasoning") && text.contains(r#""content":"hi""#), "{text}");
        let whole = openai_whole(Bytes::from(
            r#"{"choices":[{"message":{"content":"a","reasoning_content":"b"}}]}"#,
        ));
        assert!(!String::from_utf8_lossy(&whole).contains("reasoning"));
        let msg = anthropic_whole(Bytes::from(
            r#"{"content":[{"type":"thinking","thinking":"x"},{"type":"text","text":"y"}]}"#,
        ));
        assert_eq!(String::from_utf8_lossy(&msg), r#"{"content":[{"text":"y","type":"text"}]}"#);
    }
}
