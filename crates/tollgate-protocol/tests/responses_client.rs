//! Responses API clients on chat-completions deployments: request, response and stream
//! translation.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_json_eq, decode_output, fixture_events, sorted};
use serde_json::{Value, json};
use tollgate_protocol::translate::{
    ChatToResponsesStream, chat_response_to_responses, responses_request_to_chat,
};

#[test]
fn request_fixtures_translate_as_recorded() {
    for name in common::files("r2c_request") {
        let case = common::json(&name);
        let model = case["upstream_model"].as_str().unwrap();
        let (body, dropped) = responses_request_to_chat(&case["request"], model).unwrap();
        assert_json_eq(&body, &case["expected"], &name);
        let expected: Vec<String> = serde_json::from_value(case["dropped"].clone()).unwrap();
        assert_eq!(sorted(dropped), sorted(expected), "{name}: dropped fields");
    }
}

#[test]
fn stored_state_is_refused_naming_the_field() {
    let e = responses_request_to_chat(
        &json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
        "g",
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("previous_response_id"));
    assert!(e.message.contains("not stored"), "{}", e.message);
    let e = responses_request_to_chat(&json!({"model": "m", "input": 5}), "g").unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input"));
}

#[test]
fn a_function_call_without_a_message_opens_an_assistant_turn() {
    let (body, _) = responses_request_to_chat(
        &json!({"model": "m", "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}]}),
        "g",
    )
    .unwrap();
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
    );
    assert_eq!(body["messages"][2], json!({"role": "tool", "tool_call_id": "c1", "content": "ok"}));
    assert!(body.get("stream_options").is_none());
}

#[test]
fn parallel_tool_calls_and_tool_choice_go_without_tools() {
    let (body, dropped) = responses_request_to_chat(
        &json!({"model": "m", "input": "x", "tool_choice": "auto", "parallel_tool_calls": false}),
        "g",
    )
    .unwrap();
    assert!(body.get("tool_choice").is_none() && body.get("parallel_tool_calls").is_none());
    assert_eq!(dropped, ["tool_choice", "parallel_tool_calls"]);
}

#[test]
fn response_fixtures_translate_as_recorded() {
    for name in common::files("c2r_response") {
        let case = common::json(&name);
        let out = chat_response_to_responses(
            &case["response"],
            case["requested_model"].as_str().unwrap(),
            &[],
        )
        .unwrap();
        assert_json_eq(&out, &case["expected"], &name);
    }
}

#[test]
fn finish_reasons_set_the_status() {
    for (finish, status, reason) in [
        ("stop", "completed", Value::Null),
        ("tool_calls", "completed", Value::Null),
        ("length", "incomplete", json!({"reason": "max_output_tokens"})),
        ("content_filter", "incomplete", json!({"reason": "content_filter"})),
    ] {
        let resp = json!({"id": "x", "created": 5, "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "a"}, "finish_reason": finish}]});
        let out = chat_response_to_responses(&resp, "m", &[]).unwrap();
        assert_eq!(out["status"], status, "{finish}");
        assert_eq!(out["incomplete_details"], reason, "{finish}");
        assert_eq!(out["output"][0]["status"], status, "{finish}: message status");
        assert_eq!(out["object"], "response");
    }
    let e =
        chat_response_to_responses(&json!({"error": {"message": "bad"}}), "m", &[]).unwrap_err();
    assert!(e.to_string().contains("error body"), "{e}");
}

/// Feeds a recorded chat stream through the translator one event at a time.
fn run_stream(name: &str) -> Vec<bytes::Bytes> {
    let mut t = ChatToResponsesStream::new("gpt-5-codex", "resp_test", 1_700_000_000);
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
    for name in common::files("streams/chat_to_responses") {
        let base = name.rsplit('/').next().unwrap().strip_suffix(".expected.sse").unwrap();
        let actual = decode_output(&run_stream(&format!("streams/{base}.sse")));
        let expected = fixture_events(&name);
        assert_eq!(actual.len(), expected.len(), "{name}: event count\n{actual:#?}");
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(a.0, e.0, "{name}: event {i} name");
            assert_eq!(a.0.as_deref(), a.1["type"].as_str(), "{name}: event {i} named by type");
            assert_eq!(a.1["sequence_number"], i, "{name}: event {i} sequence");
            assert_json_eq(&a.1, &e.1, &format!("{name}: event {i}"));
        }
    }
}

#[test]
fn the_completed_response_carries_every_item_and_usage() {
    let out = decode_output(&run_stream("streams/openai_two_tools_interleaved.sse"));
    let (name, last) = out.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.completed"));
    let done: Vec<&Value> = out
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("response.output_item.done"))
        .map(|(_, d)| &d["item"])
        .collect();
    assert_eq!(last["response"]["output"].as_array().unwrap().iter().collect::<Vec<_>>(), done);
    assert!(last["response"]["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn a_length_stop_ends_incomplete() {
    let mut t = ChatToResponsesStream::new("m", "r1", 0);
    t.push_chunk(
        r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"length"}]}"#,
    );
    let out = decode_output(&t.push_chunk("[DONE]"));
    let (name, last) = out.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.incomplete"));
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
}

#[test]
fn every_stream_ends_with_a_terminal_event() {
    // Cut off before a finish reason.
    let mut t = ChatToResponsesStream::new("m", "r1", 0);
    let mut out = t.push_chunk(r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#);
    out.extend(t.finish());
    let out = decode_output(&out);
    let (name, last) = out.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.failed"));
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    // An error payload before anything else still gets created first.
    let mut t = ChatToResponsesStream::new("m", "r1", 0);
    let out = decode_output(&t.push_chunk(r#"{"error":{"message":"rate limited"}}"#));
    let names: Vec<_> = out.iter().map(|(n, _)| n.clone().unwrap()).collect();
    assert_eq!(names, ["response.created", "response.in_progress", "response.failed"]);
    assert_eq!(out[2].1["response"]["error"]["message"], "rate limited");
    assert!(
        t.finish().is_empty() && t.fail("again").is_empty() && t.push_chunk("[DONE]").is_empty()
    );
    // A failure reported by the gateway.
    let mut t = ChatToResponsesStream::new("m", "r1", 0);
    t.push_chunk(r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#);
    let out = decode_output(&t.fail("connection reset"));
    assert_eq!(out[0].0.as_deref(), Some("response.failed"));
    assert!(t.is_done());
}

#[test]
fn usage_is_kept_for_accounting() {
    let mut t = ChatToResponsesStream::new("m", "r1", 0);
    for event in common::frames(common::text("streams/openai_text.sse").as_bytes()) {
        t.push_chunk(&event.data);
    }
    assert_eq!(t.usage().unwrap().prompt_tokens, 2100);
}
