//! Anthropic clients on OpenAI-format deployments: request, response and stream translation.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_json_eq, decode_output, fixture_events, sorted};
use serde_json::{Value, json};
use tollgate_protocol::translate::{
    OpenAiToAnthropicStream, anthropic_request_to_openai, openai_response_to_anthropic,
};

fn translate(req: Value) -> (Value, Vec<String>) {
    anthropic_request_to_openai(&req, "gpt-test").unwrap()
}

#[test]
fn request_fixtures_translate_as_recorded() {
    for name in common::files("a2o_request") {
        let case = common::json(&name);
        let model = case["upstream_model"].as_str().unwrap();
        let (body, dropped) = anthropic_request_to_openai(&case["request"], model).unwrap();
        assert_json_eq(&body, &case["expected"], &name);
        let expected: Vec<String> = serde_json::from_value(case["dropped"].clone()).unwrap();
        assert_eq!(sorted(dropped), sorted(expected), "{name}: dropped fields");
    }
}

#[test]
fn tool_results_come_first_in_order_and_errors_are_marked() {
    let case = common::json("a2o_request/multi_tool_turn.json");
    let (body, _) = anthropic_request_to_openai(&case["request"], "m").unwrap();
    let roles: Vec<&str> =
        body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool", "user"]);
    assert_eq!(body["messages"][3]["tool_call_id"], "toolu_01A");
    assert_eq!(body["messages"][4]["tool_call_id"], "toolu_01B");
    assert!(body["messages"][4]["content"].as_str().unwrap().starts_with("Error: "));
}

#[test]
fn an_error_result_without_content_still_says_error() {
    let (body, _) = translate(json!({"model": "c", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": true}]}
    ]}));
    assert_eq!(
        body["messages"][1],
        json!({"role": "tool", "tool_call_id": "t1", "content": "Error"})
    );
    assert_eq!(body["messages"].as_array().unwrap().len(), 2, "no empty user message after it");
}

#[test]
fn text_blocks_join_unless_images_need_parts() {
    let (body, _) = translate(json!({"model": "c", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}));
    assert_eq!(body["messages"][0]["content"], "one\n\ntwo");
    let (body, _) = translate(json!({"model": "c", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "one"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}));
    assert!(body["messages"][0]["content"].is_array());
}

#[test]
fn tool_choice_maps_every_kind() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": "f"}),
            json!({"type": "function", "function": {"name": "f"}}),
        ),
    ] {
        let (body, _) =
            translate(json!({"model": "c", "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": choice}));
        assert_eq!(body["tool_choice"], expected);
        assert!(body.get("parallel_tool_calls").is_none());
    }
    let (body, _) = translate(json!({"model": "c", "messages": [{"role": "user", "content": "x"}],
        "tools": tools, "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}));
    assert_eq!(body["parallel_tool_calls"], false);
}

#[test]
fn tool_choice_goes_when_no_tool_survives() {
    let (body, dropped) =
        translate(json!({"model": "c", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "bash_20250124", "name": "bash"}], "tool_choice": {"type": "any"}}));
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    assert_eq!(dropped, ["tools.bash_20250124", "tool_choice"]);
}

#[test]
fn stop_sequences_keep_openais_limit_of_four() {
    let (body, dropped) =
        translate(json!({"model": "c", "messages": [{"role": "user", "content": "x"}],
        "stop_sequences": ["a", "b", "c", "d", "e"]}));
    assert_eq!(body["stop"], json!(["a", "b", "c", "d"]));
    assert_eq!(dropped, ["stop_sequences"]);
}

#[test]
fn documents_become_files_or_text() {
    let (body, dropped) = translate(
        json!({"model": "c", "messages": [{"role": "user", "content": [
        {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
        {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
        {"type": "document", "source": {"type": "url", "url": "https://x/doc.pdf"}},
        {"type": "text", "text": "Summarise."}]}]}),
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "text", "text": "Notes\n\nplain notes"},
            {"type": "text", "text": "Summarise."}
        ])
    );
    assert_eq!(dropped, ["messages.content.document.source.url"]);
}

#[test]
fn unknown_blocks_are_dropped_and_listed() {
    let (body, dropped) = translate(json!({"model": "c", "messages": [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "Found it."}]}]}));
    assert_eq!(body["messages"][1], json!({"role": "assistant", "content": "Found it."}));
    assert_eq!(
        dropped,
        ["messages.content.server_tool_use", "messages.content.web_search_tool_result"]
    );
}

#[test]
fn stream_asks_for_usage_and_non_stream_does_not() {
    let (body, _) = translate(
        json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    let (body, _) = translate(
        json!({"model": "c", "stream": false, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(body.get("stream").is_none() && body.get("stream_options").is_none());
}

#[test]
fn invalid_requests_name_the_parameter() {
    let e = anthropic_request_to_openai(
        &json!({"model": "c", "messages": [{"role": "robot", "content": "x"}]}),
        "m",
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    let e = anthropic_request_to_openai(
        &json!({"model": "c", "messages": [], "max_tokens": "many"}),
        "m",
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
}

#[test]
fn response_fixtures_translate_as_recorded() {
    for name in common::files("o2a_response") {
        let case = common::json(&name);
        let out = openai_response_to_anthropic(
            &case["response"],
            case["requested_model"].as_str().unwrap(),
        )
        .unwrap();
        assert_json_eq(&out, &case["expected"], &name);
    }
}

fn completion(finish_reason: &str, message: Value) -> Value {
    json!({"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]})
}

#[test]
fn finish_reasons_map_to_stop_reasons() {
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("something_new", "end_turn"),
    ] {
        let out = openai_response_to_anthropic(
            &completion(finish, json!({"role": "assistant", "content": "a"})),
            "c",
        )
        .unwrap();
        assert_eq!(out["stop_reason"], stop, "{finish}");
        assert_eq!(out["stop_sequence"], Value::Null);
    }
    // Some servers say "stop" after tool calls; agent loops need tool_use.
    let out = openai_response_to_anthropic(
        &completion(
            "stop",
            json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
        ),
        "c",
    )
    .unwrap();
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["usage"]["input_tokens"], 0);
}

#[test]
fn error_bodies_are_not_responses() {
    let e = openai_response_to_anthropic(
        &json!({"error": {"message": "bad", "type": "invalid_request_error"}}),
        "c",
    )
    .unwrap_err();
    assert!(e.to_string().contains("error body"), "{e}");
    assert!(openai_response_to_anthropic(&json!({"choices": "no"}), "c").is_err());
}

/// Feeds a recorded OpenAI stream through the translator, as the gateway relays it.
fn run_stream(name: &str) -> Vec<bytes::Bytes> {
    let mut t = OpenAiToAnthropicStream::new("claude-sonnet-4-5", "msg_test");
    let mut out = Vec::new();
    for event in common::frames(common::text(name).as_bytes()) {
        out.extend(t.push_chunk(&event.data));
    }
    out.extend(t.finish());
    assert!(t.is_done());
    out
}

#[test]
fn stream_fixtures_translate_as_recorded() {
    for name in common::files("streams") {
        let Some(base) = name
            .strip_suffix(".sse")
            .filter(|n| n.contains("/openai_") && !n.ends_with(".expected"))
        else {
            continue;
        };
        let actual = decode_output(&run_stream(&name));
        let expected = fixture_events(&format!("{base}.expected.sse"));
        assert_eq!(actual.len(), expected.len(), "{name}: event count\n{actual:#?}");
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(a.0, e.0, "{name}: event {i} name");
            assert_json_eq(&a.1, &e.1, &format!("{name}: event {i}"));
        }
    }
}

#[test]
fn message_delta_waits_for_the_usage_chunk() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    let events = common::frames(common::text("streams/openai_text.sse").as_bytes());
    let finish_at =
        events.iter().position(|e| e.data.contains("\"finish_reason\":\"stop\"")).unwrap();
    let mut out = Vec::new();
    for e in &events[..=finish_at] {
        out.extend(t.push_chunk(&e.data));
    }
    let names: Vec<_> = decode_output(&out).into_iter().map(|(n, _)| n.unwrap()).collect();
    assert_eq!(names.last().map(String::as_str), Some("content_block_stop"));
    assert!(t.usage().is_none());
    let rest: Vec<_> = events[finish_at + 1..].iter().flat_map(|e| t.push_chunk(&e.data)).collect();
    let rest = decode_output(&rest);
    assert_eq!(rest[0].1["usage"]["cache_read_input_tokens"], 2048);
    assert_eq!(t.usage().unwrap().prompt_tokens, 2100);
}

#[test]
fn sequential_tool_calls_stream_live() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    let chunk = |tc: Value| {
        json!({"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}).to_string()
    };
    t.push_chunk(&chunk(
        json!({"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}),
    ));
    let out = decode_output(&t.push_chunk(&chunk(
        json!({"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}),
    )));
    // The second call opens at once: the first call's arguments were already complete.
    assert_eq!(out[0].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(out[1].1["content_block"]["id"], "b");
    let out = decode_output(
        &t.push_chunk(&chunk(json!({"index": 1, "function": {"arguments": "{\"x\""}}))),
    );
    assert_eq!(out[0].1["delta"]["partial_json"], "{\"x\"");
}

#[test]
fn tool_calls_without_ids_get_stable_ones() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_7");
    let out = decode_output(&t.push_chunk(
        &json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}]}).to_string(),
    ));
    assert_eq!(out[1].1["content_block"]["id"], "call_msg_7_0");
}

#[test]
fn an_upstream_failure_mid_stream_ends_with_an_error_event() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    let events = common::frames(common::text("streams/openai_text.sse").as_bytes());
    let mut out: Vec<_> = events[..3].iter().flat_map(|e| t.push_chunk(&e.data)).collect();
    out.extend(t.fail("upstream connection reset"));
    let raw = String::from_utf8(out.last().unwrap().to_vec()).unwrap();
    assert_eq!(
        raw,
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream connection reset\"}}\n\n"
    );
    let names: Vec<_> = decode_output(&out).into_iter().map(|(n, _)| n.unwrap()).collect();
    assert!(!names.contains(&"message_stop".to_owned()));
    assert!(
        t.fail("again").is_empty() && t.finish().is_empty() && t.push_chunk("[DONE]").is_empty()
    );
}

#[test]
fn a_stream_cut_before_finish_reason_is_an_error() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    t.push_chunk(r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#);
    let out = decode_output(&t.finish());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.as_deref(), Some("error"));
}

#[test]
fn a_stream_without_done_finishes_normally_after_finish_reason() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    t.push_chunk(
        r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"length"}]}"#,
    );
    let out = decode_output(&t.finish());
    assert_eq!(out[0].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(out[1].1, json!({"type": "message_stop"}));
}

#[test]
fn an_error_payload_in_the_stream_becomes_an_error_event() {
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    let out =
        decode_output(&t.push_chunk(r#"{"error":{"message":"rate limited","type":"rate_limit"}}"#));
    assert_eq!(out[0].1["error"]["message"], "rate limited");
}

#[test]
fn ping_is_an_anthropic_ping() {
    assert_eq!(
        OpenAiToAnthropicStream::ping(),
        bytes::Bytes::from("event: ping\ndata: {\"type\":\"ping\"}\n\n")
    );
}

#[test]
fn tool_calls_in_separate_choices_stay_separate() {
    // GitHub Copilot numbers tool calls from 0 in each choice.
    let mut t = OpenAiToAnthropicStream::new("c", "msg_1");
    let mut out = Vec::new();
    for chunk in [
        json!({"choices": [{"index": 0, "delta": {"content": "Reading."}}]}),
        json!({"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "Read", "arguments": "{}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "b", "function": {"name": "Write", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}),
    ] {
        out.extend(t.push_chunk(&chunk.to_string()));
    }
    out.extend(t.push_chunk("[DONE]"));
    let starts: Vec<Value> = decode_output(&out)
        .into_iter()
        .filter(|(n, _)| n.as_deref() == Some("content_block_start"))
        .map(|(_, d)| json!([d["index"], d["content_block"]["type"], d["content_block"]["id"]]))
        .collect();
    assert_eq!(
        starts,
        [json!([0, "text", null]), json!([1, "tool_use", "a"]), json!([2, "tool_use", "b"])]
    );
}
