//! Chat completions clients on Responses deployments: request, response and stream
//! translation.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_json_eq, decode_output, fixture_events, sorted};
use serde_json::json;
use tollgate_protocol::translate::{
    ResponsesToChatStream, chat_request_to_responses, responses_response_to_chat,
};

#[test]
fn request_fixtures_translate_as_recorded() {
    for name in common::files("c2r_request") {
        let case = common::json(&name);
        let model = case["upstream_model"].as_str().unwrap();
        let (body, dropped) = chat_request_to_responses(&case["request"], model).unwrap();
        assert_json_eq(&body, &case["expected"], &name);
        let expected: Vec<String> = serde_json::from_value(case["dropped"].clone()).unwrap();
        assert_eq!(sorted(dropped), sorted(expected), "{name}: dropped fields");
    }
}

#[test]
fn requests_never_ask_the_upstream_to_store() {
    let (body, _) = chat_request_to_responses(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 9}),
        "g",
    )
    .unwrap();
    assert_eq!(body["store"], false);
    assert_eq!(body["max_output_tokens"], 9);
    assert!(body.get("instructions").is_none());
    let e = chat_request_to_responses(
        &json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": "x"}]}),
        "g",
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("n"));
}

#[test]
fn response_fixtures_translate_as_recorded() {
    for name in common::files("r2c_response") {
        let case = common::json(&name);
        let out = responses_response_to_chat(
            &case["response"],
            case["requested_model"].as_str().unwrap(),
        )
        .unwrap();
        assert_json_eq(&out, &case["expected"], &name);
    }
}

#[test]
fn statuses_map_to_finish_reasons() {
    let text = json!([{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]}]);
    let call = json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]);
    for (status, reason, output, finish) in [
        ("completed", None, &text, "stop"),
        ("completed", None, &call, "tool_calls"),
        ("incomplete", Some("max_output_tokens"), &text, "length"),
        ("incomplete", Some("max_output_tokens"), &call, "length"),
        ("incomplete", Some("content_filter"), &text, "content_filter"),
    ] {
        let resp = json!({"id": "resp_1", "status": status, "output": output,
            "incomplete_details": reason.map(|r| json!({"reason": r}))});
        let out = responses_response_to_chat(&resp, "m").unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{status} {reason:?}");
    }
    let failed = json!({"id": "resp_1", "status": "failed", "output": [],
        "error": {"code": "server_error", "message": "boom"}});
    assert!(responses_response_to_chat(&failed, "m").unwrap_err().to_string().contains("boom"));
    assert!(responses_response_to_chat(&json!({"error": {"message": "x"}}), "m").is_err());
}

fn run_stream(name: &str, include_usage: bool) -> Vec<bytes::Bytes> {
    let mut t = ResponsesToChatStream::new("gpt-4o", 0, include_usage);
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
    for base in ["streams/responses_tools", "streams/responses_failed"] {
        let actual = decode_output(&run_stream(&format!("{base}.sse"), true));
        let expected = fixture_events(&format!("{base}.expected.sse"));
        assert_eq!(actual.len(), expected.len(), "{base}: event count\n{actual:#?}");
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(a.0, None, "{base}: chat events have no name");
            assert_json_eq(&a.1, &e.1, &format!("{base}: event {i}"));
        }
    }
}

#[test]
fn the_usage_chunk_is_sent_only_when_asked_for() {
    let out = decode_output(&run_stream("streams/responses_tools.sse", false));
    assert!(out.iter().all(|(_, d)| d.get("usage").is_none()));
    assert_eq!(out.last().unwrap().1, "[DONE]");
    let mut t = ResponsesToChatStream::new("g", 0, false);
    for event in common::frames(common::text("streams/responses_tools.sse").as_bytes()) {
        t.push_event(&event);
    }
    let u = t.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (1200, 90, 1024));
}

#[test]
fn a_stream_cut_before_completion_ends_with_an_error() {
    let mut t = ResponsesToChatStream::new("g", 0, true);
    let events = common::frames(common::text("streams/responses_tools.sse").as_bytes());
    let mut out: Vec<_> = events[..6].iter().flat_map(|e| t.push_event(e)).collect();
    out.extend(t.finish());
    let last = decode_output(&out).pop().unwrap().1;
    assert_eq!(last["error"]["type"], "api_error");
    assert!(t.push_event(events.last().unwrap()).is_empty(), "nothing after the end");
}

#[test]
fn error_events_become_error_chunks() {
    let mut t = ResponsesToChatStream::new("g", 0, true);
    let out = decode_output(&t.push_data(
        r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":0}"#,
    ));
    assert_eq!(out[0].1["error"]["message"], "slow down");
    assert_eq!(out[0].1["error"]["type"], "rate_limit_exceeded");
    assert!(t.is_done());
}

#[test]
fn incomplete_streams_finish_with_length_and_unknown_events_pass_silently() {
    let mut t = ResponsesToChatStream::new("g", 0, false);
    assert!(t.push_data("not json").is_empty());
    assert!(t.push_data(r#"{"type":"response.brand_new","sequence_number":1}"#).is_empty());
    let out = decode_output(&t.push_data(
        r#"{"type":"response.incomplete","sequence_number":2,"response":{"id":"resp_9","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}}"#,
    ));
    assert_eq!(out[1].1["choices"][0]["finish_reason"], "length");
    assert_eq!(out[1].1["id"], "chatcmpl-resp_9");
}
