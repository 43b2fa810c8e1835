//! Real request bodies captured from Claude Code 2.1.197 (`claude -p`, pointed at a local
//! capture server): they must validate and translate into sane OpenAI requests.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;
use tollgate_protocol::anthropic::validate_messages_request;
use tollgate_protocol::openai::validate_chat_request;
use tollgate_protocol::translate::anthropic_request_to_openai;

fn captured(name: &str) -> Value {
    // Parsed from the recorded bytes, exactly as the gateway receives them.
    tollgate_protocol::openai::parse_object(common::text(name).as_bytes()).unwrap()
}

#[test]
fn the_first_request_validates() {
    let body = captured("claude_code_request.json");
    let s = validate_messages_request(&body).unwrap();
    assert_eq!(s.model, "claude-sonnet-4-5");
    assert!(s.stream && s.last_is_user_text && !s.has_images && !s.has_thinking_blocks);
}

#[test]
fn the_first_request_translates_sanely() {
    let body = captured("claude_code_request.json");
    let (out, dropped) = anthropic_request_to_openai(&body, "gpt-4.1").unwrap();
    let chat = validate_chat_request(&out).unwrap();
    assert_eq!(chat.model, "gpt-4.1");
    assert!(chat.stream && chat.include_usage && chat.last_is_user_text);

    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are a Claude agent"), "{}", &system[..80]);
    assert!(!system.contains("x-anthropic-billing-header"));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["role"], "user");
    assert!(messages[1]["content"].as_str().unwrap().ends_with("say hi"));

    let tools = out["tools"].as_array().unwrap();
    assert_eq!(tools.len(), body["tools"].as_array().unwrap().len());
    for tool in tools {
        assert_eq!(tool["type"], "function");
        let params = &tool["function"]["parameters"];
        assert_eq!(params["type"], "object", "{}", tool["function"]["name"]);
        assert!(params.get("$schema").is_none());
    }
    assert_eq!(out["max_tokens"], 32000);
    let text = out.to_string();
    assert!(!text.contains("cache_control") && !text.contains("\"thinking\""));

    for field in [
        "cache_control",
        "thinking",
        "context_management",
        "metadata.user_id",
        "system.x-anthropic-billing-header",
    ] {
        assert!(dropped.iter().any(|d| d == field), "{field} not in {dropped:?}");
    }
    assert_eq!(dropped.len(), 5, "{dropped:?}");
}

#[test]
fn the_tool_turn_translates_sanely() {
    let body = captured("claude_code_tool_turn_request.json");
    let s = validate_messages_request(&body).unwrap();
    assert!(s.has_thinking_blocks && !s.last_is_user_text);
    let (out, dropped) = anthropic_request_to_openai(&body, "gpt-4.1").unwrap();
    validate_chat_request(&out).unwrap();
    let messages = out["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    let call = &messages[2]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_capture01");
    assert_eq!(call["function"]["name"], "Write");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["content"], "hi\n");
    assert_eq!(messages[3]["tool_call_id"], "toolu_capture01");
    assert!(messages[3]["content"].as_str().unwrap().starts_with("File created successfully"));
    assert!(dropped.iter().any(|d| d == "messages.content.thinking"), "{dropped:?}");
}
