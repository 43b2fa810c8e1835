//! OpenAI clients on Anthropic-format deployments: request, response and stream translation.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_json_eq, decode_output, fixture_events, sorted};
use serde_json::{Value, json};
use tollgate_protocol::sse::SseEvent;
use tollgate_protocol::translate::{
    AnthropicToOpenAiStream, anthropic_response_to_openai, openai_request_to_anthropic,
};

fn translate(req: Value) -> (Value, Vec<String>) {
    openai_request_to_anthropic(&req, "claude-test").unwrap()
}

#[test]
fn request_fixture_translates_as_recorded() {
    for name in common::files("o2a_request") {
        let case = common::json(&name);
        let model = case["upstream_model"].as_str().unwrap();
        let (body, dropped) = openai_request_to_anthropic(&case["request"], model).unwrap();
        assert_json_eq(&body, &case["expected"], &name);
        let expected: Vec<String> = serde_json::from_value(case["dropped"].clone()).unwrap();
        assert_eq!(sorted(dropped), sorted(expected), "{name}: dropped fields");
    }
}

#[test]
fn max_tokens_defaults_and_prefers_the_newer_name() {
    let (body, _) =
        translate(json!({"model": "g", "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(body["max_tokens"], 4096);
    let (body, _) = translate(
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "max_tokens": 9}),
    );
    assert_eq!(body["max_tokens"], 9);
    let (body, _) = translate(json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 9, "max_completion_tokens": 11}));
    assert_eq!(body["max_tokens"], 11);
}

#[test]
fn several_choices_are_refused() {
    let e = openai_request_to_anthropic(
        &json!({"model": "g", "n": 2, "messages": [{"role": "user", "content": "x"}]}),
        "c",
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("n"));
    let (body, _) =
        translate(json!({"model": "g", "n": 1, "messages": [{"role": "user", "content": "x"}]}));
    assert!(body.get("n").is_none());
}

#[test]
fn tool_choice_maps_every_kind() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("required"), json!({"type": "any"})),
        (json!("none"), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let (body, _) =
            translate(json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": choice}));
        assert_eq!(body["tool_choice"], expected);
    }
    let (body, _) = translate(json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
        "tools": tools, "parallel_tool_calls": false}));
    assert_eq!(body["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
}

#[test]
fn inline_pdfs_become_documents_and_audio_is_dropped() {
    let (body, dropped) = translate(
        json!({"model": "g", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        {"type": "text", "text": "Read it."}]}]}),
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "text", "text": "Read it."}
        ])
    );
    assert_eq!(dropped, ["messages.content.input_audio"]);
}

#[test]
fn invalid_tool_arguments_in_history_are_kept_raw() {
    let (body, _) = translate(json!({"model": "g", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "done"}]}));
    assert_eq!(body["messages"][1]["content"][0]["input"], json!({"_raw": "{oops"}));
    assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "c");
}

#[test]
fn an_empty_tool_reply_becomes_a_result_without_content() {
    let (body, _) = translate(json!({"model": "g", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": ""}]}));
    assert_eq!(
        body["messages"][2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "c"}])
    );
}

#[test]
fn mid_conversation_system_messages_join_the_system_prompt() {
    let (body, _) = translate(json!({"model": "g", "messages": [
        {"role": "user", "content": "x"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "y"}]}));
    assert_eq!(body["system"], json!([{"type": "text", "text": "Be brief."}]));
    // The two user turns around it merge, as Anthropic would.
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}])
    );
}

#[test]
fn response_fixture_translates_as_recorded() {
    for name in common::files("a2o_response") {
        let case = common::json(&name);
        let out = anthropic_response_to_openai(
            &case["response"],
            case["requested_model"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        )
        .unwrap();
        assert_json_eq(&out, &case["expected"], &name);
    }
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ] {
        let resp = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "text", "text": "a"}], "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let out = anthropic_response_to_openai(&resp, "g", 0).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
    }
    let e = anthropic_response_to_openai(
        &json!({"type": "error", "error": {"type": "x", "message": "y"}}),
        "g",
        0,
    );
    assert!(e.is_err());
}

fn run_stream(name: &str, include_usage: bool) -> Vec<bytes::Bytes> {
    let mut t = AnthropicToOpenAiStream::new("gpt-4o", 1_700_000_000, include_usage);
    let mut out = Vec::new();
    for event in common::frames(common::text(name).as_bytes()) {
        out.extend(t.push_event(&event));
    }
    out.extend(t.finish());
    assert!(t.is_done());
    out
}

#[test]
fn stream_fixtures_translate_as_recorded() {
    for base in ["streams/anthropic_tools", "streams/anthropic_overloaded"] {
        let actual = decode_output(&run_stream(&format!("{base}.sse"), true));
        let expected = fixture_events(&format!("{base}.expected.sse"));
        assert_eq!(actual.len(), expected.len(), "{base}: event count\n{actual:#?}");
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(a.0, None, "{base}: OpenAI events have no name");
            assert_json_eq(&a.1, &e.1, &format!("{base}: event {i}"));
        }
    }
}

#[test]
fn the_usage_chunk_is_sent_only_when_asked_for() {
    let out = decode_output(&run_stream("streams/anthropic_tools.sse", false));
    assert!(out.iter().all(|(_, d)| d.get("usage").is_none()));
    assert_eq!(out.last().unwrap().1, "[DONE]");
    let mut t = AnthropicToOpenAiStream::new("g", 0, false);
    for event in common::frames(common::text("streams/anthropic_tools.sse").as_bytes()) {
        t.push_event(&event);
    }
    let usage = t.usage().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens), (592, 89, 100));
}

#[test]
fn a_stream_cut_before_message_stop_ends_with_an_error() {
    let mut t = AnthropicToOpenAiStream::new("g", 0, true);
    let events = common::frames(common::text("streams/anthropic_tools.sse").as_bytes());
    let mut out: Vec<_> = events[..4].iter().flat_map(|e| t.push_event(e)).collect();
    out.extend(t.finish());
    let last = decode_output(&out).pop().unwrap().1;
    assert_eq!(last["error"]["type"], "api_error");
    assert!(t.push_event(&events[5]).is_empty(), "nothing after the end");
}

#[test]
fn pings_and_garbage_produce_nothing() {
    let mut t = AnthropicToOpenAiStream::new("g", 0, true);
    assert!(
        t.push_event(&SseEvent { event: Some("ping".into()), data: "{\"type\":\"ping\"}".into() })
            .is_empty()
    );
    assert!(t.push_data("not json").is_empty());
    assert!(t.push_data("{\"type\":\"brand_new_event\"}").is_empty());
}
