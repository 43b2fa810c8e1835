//! Real request bodies captured from the Codex CLI 0.171.0 (`codex exec`, a custom provider
//! with `wire_api = "responses"`, pointed at a local capture server; see
//! fixtures/codex/README.md): they must validate, and translate into sane chat requests for
//! deployments that only speak Chat Completions.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use tollgate_protocol::openai::validate_chat_request;
use tollgate_protocol::responses::{custom_tool_names, validate_responses_request};
use tollgate_protocol::translate::{
    ChatToResponsesStream, chat_response_to_responses, responses_request_to_chat,
};

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

#[test]
fn custom_tools_travel_to_chat_as_functions_of_one_string() {
    let body = captured("codex/apply_patch_tool_turn_request.json");
    let (chat, dropped) = responses_request_to_chat(&body, "gpt-4.1").unwrap();
    validate_chat_request(&chat).unwrap();
    assert!(!dropped.iter().any(|d| d.contains("custom")), "{dropped:?}");
    let tools = chat["tools"].as_array().unwrap();
    let patch = tools
        .iter()
        .find(|t| t["function"]["name"] == "apply_patch")
        .expect("apply_patch is offered");
    let f = &patch["function"];
    assert_eq!(f["parameters"]["required"], json!(["input"]));
    assert_eq!(f["parameters"]["properties"]["input"]["type"], "string");
    let description = f["description"].as_str().unwrap();
    assert!(description.starts_with("The `apply_patch` tool can be used"), "{description}");
    assert!(description.contains("lark grammar:\nstart: begin_patch hunk+ end_patch"));

    // The earlier call and its output, as the function's call and result.
    let messages = chat["messages"].as_array().unwrap();
    let at = messages.iter().position(|m| m["tool_calls"].is_array()).unwrap();
    let call = &messages[at]["tool_calls"][0];
    assert_eq!(call["id"], "call_ed0d63c8a6f94e40abaac6da");
    assert_eq!(call["function"]["name"], "apply_patch");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"input": PATCH}));
    assert_eq!(messages[at + 1]["role"], "tool");
    assert_eq!(messages[at + 1]["tool_call_id"], call["id"]);
    assert!(messages[at + 1]["content"].as_str().unwrap().contains("A hello.txt"));
    assert_eq!(custom_tool_names(&body), ["apply_patch"]);
}

const PATCH: &str = "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n";

fn chat_call_chunks(name: &str, arguments: &str) -> Vec<String> {
    let (a, b) = arguments.split_at(arguments.len() / 2);
    let delta = |v: Value| json!({"id": "c1", "choices": [{"index": 0, "delta": v}]}).to_string();
    vec![
        delta(json!({"tool_calls": [{"index": 0, "id": "call_p1", "type": "function",
                                     "function": {"name": name, "arguments": a}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]})),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
        .to_string(),
        "[DONE]".to_owned(),
    ]
}

#[test]
fn a_call_of_a_custom_tool_streams_back_as_a_custom_tool_call() {
    let arguments = json!({"input": PATCH}).to_string();
    let mut t = ChatToResponsesStream::new("gpt-5.5", "resp_1", 0)
        .with_custom_tools(vec!["apply_patch".to_owned()]);
    let mut out = Vec::new();
    for chunk in chat_call_chunks("apply_patch", &arguments) {
        out.extend(t.push_chunk(&chunk));
    }
    let events = common::decode_output(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2].1["item"]["type"], "custom_tool_call");
    assert_eq!(events[2].1["item"]["input"], "");
    assert_eq!(events[3].1["delta"], PATCH);
    assert_eq!(events[4].1["input"], PATCH);
    let item = &events[5].1["item"];
    assert_eq!(
        *item,
        json!({"type": "custom_tool_call", "id": "fc_p1", "call_id": "call_p1",
               "name": "apply_patch", "input": PATCH, "status": "completed"})
    );
    assert_eq!(events[6].1["response"]["output"][0], *item);

    // Other functions stay function calls.
    let mut t = ChatToResponsesStream::new("gpt-5.5", "resp_1", 0)
        .with_custom_tools(vec!["apply_patch".to_owned()]);
    let mut out = Vec::new();
    for chunk in chat_call_chunks("exec_command", r#"{"cmd":"ls"}"#) {
        out.extend(t.push_chunk(&chunk));
    }
    let events = common::decode_output(&out);
    let done = events.iter().find(|(n, _)| n.as_deref() == Some("response.output_item.done"));
    assert_eq!(done.unwrap().1["item"]["type"], "function_call");
    assert!(
        events.iter().any(|(n, _)| n.as_deref() == Some("response.function_call_arguments.delta"))
    );
}

#[test]
fn a_whole_answer_calling_a_custom_tool_gives_a_custom_tool_call() {
    let chat = |arguments: &str| {
        json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": null, "tool_calls": [{"id": "call_p1",
                   "type": "function", "function": {"name": "apply_patch", "arguments": arguments}}]}}]})
    };
    let custom = ["apply_patch".to_owned()];
    let out = chat_response_to_responses(&chat(&json!({"input": PATCH}).to_string()), "m", &custom)
        .unwrap();
    let item = &out["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["input"], PATCH);
    // A model that sent the raw input instead of the JSON asked for: passed on as it came.
    let out = chat_response_to_responses(&chat(PATCH), "m", &custom).unwrap();
    assert_eq!(out["output"][0]["input"], PATCH);
    // Without the custom tool's name it is an ordinary function call.
    let out = chat_response_to_responses(&chat("{}"), "m", &[]).unwrap();
    assert_eq!(out["output"][0]["type"], "function_call");
}
