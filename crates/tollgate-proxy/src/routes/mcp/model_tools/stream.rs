//! A whole answer as the event stream a client that asked for `stream: true` expects: the
//! events a provider would have sent for it, all at once. The tool loop can only know an
//! answer is the last once it is complete, so the last answer is told, not streamed.

use bytes::Bytes;
use serde_json::{Value, json};
use tollgate_protocol::Protocol;
use tollgate_protocol::sse::encode;

/// The events of `answer` (a chat completion or an Anthropic message).
pub(super) fn events(protocol: Protocol, answer: &Value, include_usage: bool) -> Vec<Bytes> {
    match protocol {
        Protocol::Messages => messages_events(answer),
        _ => chat_chunks(answer, include_usage),
    }
}

fn chat_chunks(answer: &Value, include_usage: bool) -> Vec<Bytes> {
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": answer["id"],
            "object": "chat.completion.chunk",
            "created": answer["created"],
            "model": answer["model"],
            "choices": choices,
        });
        if let Some(fp) = answer.get("system_fingerprint") {
            c["system_fingerprint"] = fp.clone();
        }
        c
    };
    let sse = |c: Value| encode(None, &c.to_string());
    let mut out = Vec::new();
    let choices = answer["choices"].as_array().cloned().unwrap_or_default();
    for (position, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(position));
        let message = &choice["message"];
        let mut delta = json!({"role": "assistant", "content": message["content"]});
        if let Some(calls) = message["tool_calls"].as_array() {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut c = c.clone();
                    c["index"] = json!(i);
                    c
                })
                .collect();
            delta["tool_calls"] = Value::Array(calls);
        }
        if let Some(r) = message.get("reasoning_content") {
            delta["reasoning_content"] = r.clone();
        }
        out.push(sse(chunk(json!([{"index": index, "delta": delta, "finish_reason": null}]))));
        out.push(sse(chunk(json!([{
            "index": index, "delta": {}, "finish_reason": choice["finish_reason"],
        }]))));
    }
    if include_usage && let Some(usage) = answer.get("usage") {
        let mut last = chunk(json!([]));
        last["usage"] = usage.clone();
        out.push(sse(last));
    }
    out.push(encode(None, "[DONE]"));
    out
}

fn messages_events(answer: &Value) -> Vec<Bytes> {
    let event = |v: Value| {
        let name = v["type"].as_str().unwrap_or("message").to_owned();
        encode(Some(&name), &v.to_string())
    };
    let usage = &answer["usage"];
    let mut start = answer.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["stop_sequence"] = Value::Null;
    let mut out = vec![event(json!({"type": "message_start", "message": start}))];
    let blocks = answer["content"].as_array().cloned().unwrap_or_default();
    for (index, block) in blocks.iter().enumerate() {
        let (opening, deltas) = match block["type"].as_str() {
            Some("text") => (
                json!({"type": "text", "text": ""}),
                vec![json!({"type": "text_delta", "text": block["text"]})],
            ),
            Some("tool_use") => (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                vec![
                    json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
                ],
            ),
            Some("thinking") => {
                let mut deltas =
                    vec![json!({"type": "thinking_delta", "thinking": block["thinking"]})];
                if let Some(sig) = block.get("signature") {
                    deltas.push(json!({"type": "signature_delta", "signature": sig}));
                }
                (json!({"type": "thinking", "thinking": ""}), deltas)
            }
            // Blocks without deltas of their own (redacted thinking, server tool results)
            // arrive whole in their start event, as Anthropic sends them.
            _ => (block.clone(), Vec::new()),
        };
        out.push(event(
            json!({"type": "content_block_start", "index": index, "content_block": opening}),
        ));
        for delta in deltas {
            out.push(event(json!({"type": "content_block_delta", "index": index, "delta": delta})));
        }
        out.push(event(json!({"type": "content_block_stop", "index": index})));
    }
    out.push(event(json!({
        "type": "message_delta",
        "delta": {"stop_reason": answer["stop_reason"], "stop_sequence": answer["stop_sequence"]},
        "usage": {"output_tokens": usage["output_tokens"]},
    })));
    out.push(event(json!({"type": "message_stop"})));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[Bytes]) -> Vec<Value> {
        events
            .iter()
            .filter_map(|e| {
                let text = std::str::from_utf8(e).ok()?;
                let line = text.lines().find_map(|l| l.strip_prefix("data: "))?;
                serde_json::from_str(line).ok()
            })
            .collect()
    }

    #[test]
    fn a_chat_completion_becomes_its_chunks() {
        let answer = json!({"id": "c", "created": 1, "model": "m", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
        let events = events(Protocol::Chat, &answer, true);
        assert_eq!(events.last().unwrap().as_ref(), b"data: [DONE]\n\n");
        let chunks = data(&events);
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "hi");
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[2]["usage"]["total_tokens"], 2);
        assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
        assert_eq!(data(&super::events(Protocol::Chat, &answer, false)).len(), 2);
    }

    #[test]
    fn a_message_becomes_its_events() {
        let answer = json!({"id": "msg", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "hi"},
                        {"type": "tool_use", "id": "t", "name": "own", "input": {"a": 1}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 3, "output_tokens": 2}});
        let all = data(&events(Protocol::Messages, &answer, true));
        let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(all[0]["message"]["content"], json!([]));
        assert_eq!(all[2]["delta"]["text"], "hi");
        assert_eq!(all[5]["delta"]["partial_json"], "{\"a\":1}");
        assert_eq!(all[7]["delta"]["stop_reason"], "tool_use");
        assert_eq!(all[7]["usage"]["output_tokens"], 2);
    }
}
