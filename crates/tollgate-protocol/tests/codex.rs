//! Real request bodies captured from the Codex CLI 0.171.0 (`codex exec`, a custom provider
//! with `wire_api = "responses"`, pointed at a local capture server; see
//! fixtures/codex/README.md): they must validate, and translate into sane chat requests for
//! deployments that only speak Chat Completions.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;
use tollgate_protocol::openai::validate_chat_request;
use tollgate_protocol::responses::validate_responses_request;
use tollgate_protocol::translate::responses_request_to_chat;

fn captured(name: &str) -> Value {
    tollgate_protocol::openai::parse_object(common::text(name).as_bytes()).unwrap()
}

#[test]
fn every_captured_request_validates() {
    for name in [
        "codex/exec_command_request.json",
        "codex/exec_command_tool_turn_request.json",
        "codex/apply_patch_tool_turn_request.json",
    ] {
        let s =
            validate_responses_request(&captured(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(s.stream, "{name}: Codex always streams");
        assert!(!s.has_images, "{name}");
    }
    let first = validate_responses_request(&captured("codex/exec_command_request.json")).unwrap();
    assert!(first.last_is_user_text, "the first turn ends with the user's prompt");
    let turn =
        validate_responses_request(&captured("codex/exec_command_tool_turn_request.json")).unwrap();
    assert!(!turn.last_is_user_text, "a tool turn ends with the tool's output");
}

#[test]
fn the_tool_turn_translates_into_a_sane_chat_request() {
    let body = captured("codex/exec_command_tool_turn_request.json");
    let (chat, dropped) = responses_request_to_chat(&body, "gpt-4.1").unwrap();
    let summary = validate_chat_request(&chat).unwrap();
    assert_eq!(summary.model, "gpt-4.1");
    assert!(summary.stream);
    let messages = chat["messages"].as_array().unwrap();
    // The developer prompt leads, the call and its output follow each other.
    assert!(matches!(messages[0]["role"].as_str(), Some("system" | "developer")));
    let call_at = messages.iter().position(|m| m["tool_calls"].is_array()).unwrap();
    let call = &messages[call_at]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "exec_command");
    assert_eq!(messages[call_at + 1]["role"], "tool");
    assert_eq!(messages[call_at + 1]["tool_call_id"], call["id"]);
    // Function tools survive; the kinds chat cannot carry are listed as dropped.
    let tools = chat["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["function"]["name"] == "exec_command"));
    assert!(!dropped.is_empty(), "namespace and web_search tools cannot go to chat");
    assert_eq!(chat["stream_options"]["include_usage"], true);
}
