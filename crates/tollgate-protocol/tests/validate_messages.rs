//! `/v1/messages` request validation: summaries and errors that name the parameter.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use tollgate_protocol::RequestError;
use tollgate_protocol::anthropic::{MessagesSummary, error_body, validate_messages_request};

fn err(body: Value) -> RequestError {
    validate_messages_request(&body).unwrap_err()
}

fn with_content(content: Value) -> Value {
    json!({"model": "claude", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": content}
    ]})
}

#[test]
fn summarises_a_plain_request() {
    let s = validate_messages_request(
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hi"}], "anything_new": {"x": 1}}),
    )
    .unwrap();
    assert_eq!(
        s,
        MessagesSummary {
            model: "claude-sonnet-4-5".into(),
            stream: true,
            has_images: false,
            last_is_user_text: true,
            has_thinking_blocks: false,
        }
    );
}

#[test]
fn finds_images_tool_results_and_thinking() {
    let s = validate_messages_request(&json!({"model": "c", "messages": [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}
    ]}))
    .unwrap();
    assert!(s.has_images && s.has_thinking_blocks && !s.last_is_user_text && !s.stream);
    let s = validate_messages_request(&with_content(json!([
        {"type": "tool_result", "tool_use_id": "t", "content": "ok"},
        {"type": "text", "text": "and now?"}])))
    .unwrap();
    assert!(s.last_is_user_text);
    let s = validate_messages_request(&json!({"model": "c", "messages": [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "prefill"}]}))
    .unwrap();
    assert!(!s.last_is_user_text);
}

#[test]
fn names_the_block_at_fault() {
    let e = err(with_content(json!([{"type": "text", "text": "see"}, {"type": "image"}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[1].source"));
    assert_eq!(e.code, "missing_required_parameter");
    let e = err(with_content(
        json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]),
    ));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].source.data"));
    let e = err(with_content(json!([{"type": "image", "source": {"type": "ftp", "url": "x"}}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].source.type"));
    let e = err(with_content(json!([{"type": "text", "text": 5}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].text"));
    assert_eq!(e.code, "invalid_type");
    let e = err(with_content(json!([{"text": "no type"}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].type"));
    let e = err(with_content(json!(["bare string"])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0]"));
}

#[test]
fn checks_tool_blocks() {
    let e = err(json!({"model": "c", "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "not an object"}]}]}));
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].input"));
    let e = err(with_content(json!([{"type": "tool_result", "content": "x"}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].tool_use_id"));
    let e = err(with_content(json!([{"type": "tool_result", "tool_use_id": "t", "content": 3}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].content"));
    let e =
        err(with_content(json!([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].is_error"));
    let e = err(with_content(json!([{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "url"}}]}])));
    assert_eq!(e.param.as_deref(), Some("messages[2].content[0].content[0].source.url"));
}

#[test]
fn unknown_blocks_pass() {
    validate_messages_request(&with_content(json!([
        {"type": "search_result", "source": 5, "content": "anything"},
        {"type": "text", "text": "ok"}])))
    .unwrap();
}

#[test]
fn checks_top_level_fields() {
    let e = err(json!({"messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(e.param.as_deref(), Some("model"));
    let e = err(json!({"model": " ", "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(e.param.as_deref(), Some("model"));
    let e = err(json!({"model": "c", "messages": []}));
    assert_eq!(e.param.as_deref(), Some("messages"));
    let e = err(json!({"model": "c", "messages": [{"role": "user"}]}));
    assert_eq!(e.param.as_deref(), Some("messages[0].content"));
    let e = err(json!({"model": "c", "messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    for (field, value) in [
        ("max_tokens", json!(-1)),
        ("stream", json!("yes")),
        ("temperature", json!("hot")),
        ("top_k", json!(1.5)),
        ("stop_sequences", json!("END")),
        ("metadata", json!({"user_id": 5})),
        ("thinking", json!({"type": "enabled", "budget_tokens": "lots"})),
    ] {
        let mut body = json!({"model": "c", "messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        let e = err(body);
        assert!(e.param.as_deref().unwrap().starts_with(field), "{field}: {e:?}");
    }
}

#[test]
fn checks_system_tools_and_tool_choice() {
    let base = || json!({"model": "c", "messages": [{"role": "user", "content": "x"}]});
    let mut body = base();
    body["system"] = json!([{"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}, {"type": "image"}]);
    assert_eq!(err(body).param.as_deref(), Some("system[1].type"));
    let mut body = base();
    body["system"] = json!(5);
    assert_eq!(err(body).param.as_deref(), Some("system"));
    let mut body = base();
    body["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}}, {"name": "g"}]);
    assert_eq!(err(body).param.as_deref(), Some("tools[1].input_schema"));
    let mut body = base();
    body["tools"] = json!([{"name": "f", "input_schema": "schema"}]);
    assert_eq!(err(body).param.as_deref(), Some("tools[0].input_schema"));
    let mut body = base();
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]);
    validate_messages_request(&body).unwrap();
    let mut body = base();
    body["tool_choice"] = json!({"type": "tool"});
    assert_eq!(err(body).param.as_deref(), Some("tool_choice.name"));
    let mut body = base();
    body["tool_choice"] = json!({"type": "sometimes"});
    assert_eq!(err(body).param.as_deref(), Some("tool_choice.type"));
}

#[test]
fn error_bodies_have_anthropics_shape() {
    assert_eq!(
        error_body("invalid_request_error", "messages: bad"),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "messages: bad"}})
    );
}
