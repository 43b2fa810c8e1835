//! Inputs the fuzz targets (`fuzz/`) found, each of which once panicked or broke what the
//! target checks. Upstreams and clients can send any of them.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use tollgate_protocol::openai::parse_object;
use tollgate_protocol::sse::SseEvent;
use tollgate_protocol::translate::{
    AnthropicToOpenAiStream, anthropic_request_to_openai, anthropic_response_to_openai,
    openai_request_to_anthropic,
};

/// Near `u64::MAX`: adding the cached tokens to the input overflowed (a panic in debug
/// builds, a wrapped, tiny count in release builds).
const HUGE: u64 = 18_446_744_073_709_551_607;

#[test]
fn huge_token_counts_saturate_instead_of_overflowing() {
    let usage = json!({"input_tokens": 80, "output_tokens": 40,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": HUGE});
    let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "usage": usage});

    let u = tollgate_protocol::anthropic::usage_from_response(body.to_string().as_bytes()).unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (u64::MAX, 40, HUGE));

    let chat = anthropic_response_to_openai(&body, "gpt", 0).unwrap();
    assert_eq!(chat["usage"]["prompt_tokens"], u64::MAX);
    assert_eq!(chat["usage"]["total_tokens"], u64::MAX);

    let mut observer = tollgate_protocol::anthropic::StreamUsageObserver::new();
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "c", "content": [], "usage": usage}});
    observer.observe(&start.to_string());
    assert_eq!(observer.usage().unwrap().prompt_tokens, u64::MAX);

    let mut stream = AnthropicToOpenAiStream::new("gpt", 0, true);
    let event = |data: serde_json::Value| SseEvent { event: None, data: data.to_string() };
    stream.push_event(&event(start));
    assert_eq!(stream.usage().unwrap().prompt_tokens, u64::MAX);
    let out = stream.push_event(&event(json!({"type": "message_stop"})));
    let usage_chunk = out.iter().map(|b| SseEvent::parse(b).data).find(|d| d.contains("usage"));
    let chunk: serde_json::Value = serde_json::from_str(&usage_chunk.unwrap()).unwrap();
    assert_eq!(chunk["usage"]["total_tokens"], u64::MAX);
}

/// A number with more digits than an f64 holds must reach the upstream as the f64 nearest
/// to what the client wrote, as the standard library's parser rounds it; serde_json's fast
/// float parsing was one unit in the last place off.
#[test]
fn translated_numbers_keep_the_clients_value() {
    let written = "0.218446744073709551616";
    let exact: f64 = written.parse().unwrap();
    let chat = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"temperature":{written}}}"#
    );
    let (messages, _) =
        openai_request_to_anthropic(&parse_object(chat.as_bytes()).unwrap(), "c").unwrap();
    assert_eq!(messages["temperature"].as_f64(), Some(exact));

    let anthropic = format!(
        r#"{{"model":"m","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}],"top_p":{written}}}"#
    );
    let (chat, _) =
        anthropic_request_to_openai(&parse_object(anthropic.as_bytes()).unwrap(), "g").unwrap();
    assert_eq!(chat["top_p"].as_f64(), Some(exact));
}
