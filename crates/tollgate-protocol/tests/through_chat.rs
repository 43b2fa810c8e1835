//! Anthropic Messages ↔ Responses through Chat Completions: the recorded upstream streams of
//! the single-step tests, fed one event at a time, come out as complete client streams.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use tollgate_protocol::anthropic::validate_messages_request;
use tollgate_protocol::responses::validate_responses_request;
use tollgate_protocol::translate::{
    AnthropicToResponsesStream, ResponsesToAnthropicStream, anthropic_request_to_responses,
    anthropic_response_to_responses, responses_request_to_anthropic,
    responses_response_to_anthropic,
};

#[test]
fn a_responses_stream_reaches_a_messages_client_whole() {
    let mut t = ResponsesToAnthropicStream::new("claude-sonnet-4-5", "msg_1");
    let mut out = Vec::new();
    for event in common::frames(common::text("streams/responses_tools.sse").as_bytes()) {
        out.extend(t.push_event(&event));
    }
    out.extend(t.finish());
    let events = common::decode_output(&out);
    let kinds: Vec<&str> = events.iter().filter_map(|(k, _)| k.as_deref()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"message_stop"), "{kinds:?}");
    let tools: Vec<&Value> = events
        .iter()
        .filter(|(k, d)| {
            k.as_deref() == Some("content_block_start") && d["content_block"]["type"] == "tool_use"
        })
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert!(!tools.is_empty(), "no tool_use block in {kinds:?}");
    let stop = events.iter().find(|(k, _)| k.as_deref() == Some("message_delta")).unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
    assert!(t.usage().is_some(), "the upstream's usage is kept");
}

#[test]
fn a_messages_stream_reaches_a_responses_client_whole() {
    let mut t = AnthropicToResponsesStream::new("gpt-5.4", "resp_1", 1_700_000_000);
    let mut out = Vec::new();
    for event in common::frames(common::text("streams/anthropic_tools.sse").as_bytes()) {
        out.extend(t.push_event(&event));
    }
    out.extend(t.finish());
    let events = common::decode_output(&out);
    let types: Vec<&str> = events.iter().filter_map(|(_, d)| d["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    let done = &events.last().unwrap().1["response"];
    let call = done["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call");
    assert_eq!(call.unwrap()["name"], "get_weather", "{done}");
    assert!(done["usage"]["output_tokens"].as_u64().is_some(), "{done}");
}

#[test]
fn an_interrupted_messages_stream_ends_the_responses_stream_as_failed() {
    let mut t = AnthropicToResponsesStream::new("gpt-5.4", "resp_2", 1_700_000_000);
    let mut out = Vec::new();
    for event in common::frames(common::text("streams/anthropic_overloaded.sse").as_bytes()) {
        out.extend(t.push_event(&event));
    }
    out.extend(t.finish());
    let events = common::decode_output(&out);
    let last = events.last().unwrap().1["type"].as_str().unwrap_or_default().to_owned();
    assert!(last == "response.failed" || last == "response.incomplete", "{last}");
}

#[test]
fn requests_and_whole_answers_cross_both_ways() {
    let messages = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    validate_messages_request(&messages).unwrap();
    let (body, _) = anthropic_request_to_responses(&messages, "gpt-5.4").unwrap();
    validate_responses_request(&body).unwrap();
    assert_eq!(body["model"], "gpt-5.4");
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!(body["max_output_tokens"], 100);
    assert_eq!(body["tools"][0]["name"], "get_weather");

    let responses = json!({"model": "claude-x", "instructions": "Be brief.", "input": "Hi",
        "max_output_tokens": 50, "stream": true});
    let (body, dropped) = responses_request_to_anthropic(&responses, "claude-opus-4-5").unwrap();
    validate_messages_request(&body).unwrap();
    assert_eq!(body["system"][0]["text"], "Be brief.");
    assert_eq!(body["max_tokens"], 50);
    assert!(dropped.iter().all(|d| !d.starts_with("stream_options")), "{dropped:?}");

    let response = json!({"id": "resp_9", "object": "response", "created_at": 1, "status": "completed",
        "model": "gpt-5.4", "output": [{"type": "message", "id": "msg_9", "role": "assistant",
        "status": "completed", "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}],
        "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}});
    let message = responses_response_to_anthropic(&response, "claude-sonnet-4-5").unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], "Hello");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 2);

    let anthropic = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "Hi there"}], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 4}});
    let out = anthropic_response_to_responses(&anthropic, "gpt-5.4", 1, &[]).unwrap();
    assert_eq!(out["object"], "response");
    assert_eq!(out["status"], "incomplete");
    assert_eq!(out["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(out["usage"]["output_tokens"], 4);
}
