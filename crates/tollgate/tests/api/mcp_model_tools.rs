//! MCP tools on model requests (`{"type": "mcp", ...}` among a request's `tools`): tollgate
//! offers the servers' tools to the model, runs the calls it makes, and answers once the
//! model does.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockMcp, MockOpenAi, ReplySpec, TestApp, ToolCall};

use crate::helpers::*;
use crate::keys::{admin_get, keyed_setup, new_key};

async fn setup(extra: &str) -> (MockMcp, MockOpenAi, TestApp) {
    let remote = MockMcp::start_http().await;
    let servers =
        format!("mcp_servers:\n  remote:\n    url: {}\n    transport: http\n{extra}", remote.url());
    let (models, app) = keyed_setup(&servers).await;
    (remote, models, app)
}

fn entry(url: &str) -> Value {
    json!({"type": "mcp", "server_label": "remote", "server_url": url,
           "require_approval": "never", "allowed_tools": ["echo", "add"]})
}

async fn send(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    client().post(app.url(path)).bearer_auth(key).json(body).send().await.unwrap()
}

async fn records(app: &TestApp, at_least: u64) -> Vec<Value> {
    app.wait_for_spend_written(at_least, Duration::from_secs(10)).await;
    let (status, logs) = admin_get(app, "/spend/logs?page_size=1000").await;
    assert_eq!(status, 200, "{logs}");
    logs.as_array().cloned().unwrap_or_default()
}

fn echo_call(id: &str, text: &str) -> ReplySpec {
    let arguments = json!({"text": text}).to_string();
    ReplySpec::tool_calls(vec![ToolCall::new(id, "remote-echo", arguments)])
}

/// The tools the model was offered in request `n`.
fn offered(models: &MockOpenAi, n: usize) -> Vec<String> {
    models.requests()[n].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_chat_request_runs_the_tools_the_model_calls() {
    let (remote, models, app) = setup("").await;
    let key = new_key(&app, json!({"object_permission": {"mcp_servers": ["remote"]}})).await;
    models.enqueue(echo_call("call_1", "kept in the tool"));
    models.enqueue(ReplySpec::text("The tool said: kept in the tool"));
    let body = json!({"model": "gpt-4o-mini", "tools": [entry("litellm_proxy")],
        "messages": [{"role": "user", "content": "echo something"}]});
    let resp = send(&app, "/v1/chat/completions", &key, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-mcp-steps"], "2");
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "The tool said: kept in the tool");

    // The model saw the server's tools as functions, narrowed by allowed_tools.
    let mut names = offered(&models, 0);
    names.sort();
    assert_eq!(names, ["remote-add", "remote-echo"]);
    assert!(models.requests()[0].body.get("stream").is_none());
    // The tool ran on the server, under its own name, with the model's arguments ...
    let calls = remote.calls_of("tools/call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].tool(), Some("echo"));
    assert_eq!(calls[0].params["arguments"]["text"], "kept in the tool");
    // ... and its result went back to the model after the assistant's turn.
    let second = &models.requests()[1].body["messages"];
    assert_eq!(second[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        second[2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "kept in the tool"})
    );

    // One record per model step, one per tool call.
    let rows = records(&app, 3).await;
    let chat: Vec<&Value> = rows.iter().filter(|r| r["api"] == "chat_completions").collect();
    let mcp: Vec<&Value> = rows.iter().filter(|r| r["api"] == "mcp").collect();
    assert_eq!((chat.len(), mcp.len()), (2, 1), "{rows:?}");
    assert_eq!(mcp[0]["served_model"], "remote/echo");
    assert!(chat.iter().all(|r| r["status"] == 200 && r["prompt_tokens"].as_u64() > Some(0)));
}

#[tokio::test]
async fn a_messages_request_runs_them_in_anthropics_form() {
    let (remote, models, app) = setup("").await;
    let key = new_key(&app, json!({"object_permission": {"mcp_servers": ["remote"]}})).await;
    let add = json!({"a": 2, "b": 3}).to_string();
    models.enqueue(ReplySpec::tool_calls(vec![ToolCall::new("toolu_1", "remote-add", add)]));
    models.enqueue(ReplySpec::text("2 + 3 = 5"));
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 100,
        "tools": [entry("litellm_proxy/mcp/remote")],
        "messages": [{"role": "user", "content": "add 2 and 3"}]});
    let resp = send(&app, "/v1/messages", &key, &body).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["content"][0]["text"], "2 + 3 = 5");
    assert_eq!(remote.calls_of("tools/call")[0].tool(), Some("add"));
    // The result reached the model (translated to the upstream's own form).
    let second = models.requests()[1].body["messages"].to_string();
    assert!(second.contains("toolu_1") && second.contains("\"5\""), "{second}");
    let rows = records(&app, 3).await;
    assert_eq!(rows.iter().filter(|r| r["api"] == "messages").count(), 2, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r["api"] == "mcp").count(), 1, "{rows:?}");
}

#[tokio::test]
async fn a_key_without_the_server_is_refused() {
    let (remote, models, app) = setup("").await;
    let nothing = new_key(&app, json!({"object_permission": {"mcp_servers": []}})).await;
    let body = json!({"model": "gpt-4o-mini", "tools": [entry("litellm_proxy/mcp/remote")],
        "messages": [{"role": "user", "content": "hi"}]});
    let err = openai_error(send(&app, "/v1/chat/completions", &nothing, &body).await, 403).await;
    assert_eq!(err["code"], "mcp_server_not_allowed");
    assert_eq!(err["param"], "tools[0]");
    // The same in Anthropic's form, and for "every server" when the key has none.
    let mut messages = json!({"model": "gpt-4o-mini", "max_tokens": 10, "tools": [entry("litellm_proxy")],
        "messages": [{"role": "user", "content": "hi"}]});
    messages["tools"][0]["server_label"] = json!("anything");
    let resp = send(&app, "/v1/messages", &nothing, &messages).await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    // x-mcp-servers narrows, never grants: a key with the server cannot name another.
    let only = new_key(&app, json!({"object_permission": {"mcp_servers": ["remote"]}})).await;
    let narrowed = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&only)
        .header("x-mcp-servers", "other")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(openai_error(narrowed, 403).await["code"], "mcp_server_not_allowed");
    // A server_url of another host is not tollgate's to call.
    let mut elsewhere = body.clone();
    elsewhere["tools"][0]["server_url"] = json!("https://example.com/mcp");
    let err = openai_error(send(&app, "/v1/chat/completions", &only, &elsewhere).await, 400).await;
    assert_eq!(err["param"], "tools[0].server_url");
    assert_eq!(models.request_count(), 0);
    assert!(remote.calls_of("tools/call").is_empty());
}

#[tokio::test]
async fn the_loop_stops_at_the_step_limit() {
    let (remote, models, app) = setup("litellm_settings:\n  mcp_max_tool_steps: 3\n").await;
    models.set_default(echo_call("call_again", "again"));
    let body = json!({"model": "gpt-4o-mini", "tools": [entry("litellm_proxy")],
        "messages": [{"role": "user", "content": "loop forever"}]});
    let resp = send(&app, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-mcp-step-limit"], "reached");
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["tollgate_mcp"], json!({"steps": 3, "step_limit_reached": true}));
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(models.request_count(), 3);
    // The last step's calls are not run: nothing would read their results.
    assert_eq!(remote.calls_of("tools/call").len(), 2);
}

#[tokio::test]
async fn a_call_of_the_clients_own_tool_goes_back_to_it() {
    let (remote, models, app) = setup("").await;
    models.enqueue(ReplySpec::tool_calls(vec![ToolCall::new("c9", "lookup", "{}")]));
    let own = json!({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}});
    let body = json!({"model": "gpt-4o-mini", "tools": [own, entry("litellm_proxy")],
        "messages": [{"role": "user", "content": "look it up"}]});
    let resp = send(&app, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "lookup");
    // Its tool stayed among the MCP ones.
    assert_eq!(offered(&models, 0)[0], "lookup");
    assert_eq!(models.request_count(), 1);
    assert!(remote.calls_of("tools/call").is_empty());
}

#[tokio::test]
async fn a_streaming_request_gets_the_final_answer_as_a_stream() {
    let (_remote, models, app) = setup("").await;
    models.enqueue(echo_call("call_1", "streamed"));
    models.enqueue(ReplySpec::text("final words"));
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "stream_options": {"include_usage": true}, "tools": [entry("litellm_proxy")],
        "messages": [{"role": "user", "content": "echo"}]});
    let resp = send(&app, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let data = sse_data(resp).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> =
        data.iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "final words");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(chunks.iter().any(|c| c["usage"]["total_tokens"].as_u64() > Some(0)));

    // Messages streams carry Anthropic's events.
    models.enqueue(echo_call("call_2", "streamed"));
    models.enqueue(ReplySpec::text("done"));
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 50, "stream": true,
        "tools": [entry("litellm_proxy")], "messages": [{"role": "user", "content": "echo"}]});
    let data = sse_data(send(&app, "/v1/messages", MASTER, &body).await).await;
    let events: Vec<Value> = data.iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(events.first().unwrap()["type"], "message_start");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    assert!(events.iter().any(|e| e["delta"]["text"] == "done"));
}

#[tokio::test]
async fn requests_without_mcp_tools_are_untouched() {
    let (_remote, models, app) = setup("").await;
    let own = json!({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}});
    let body = json!({"model": "gpt-4o-mini", "tools": [own],
        "messages": [{"role": "user", "content": "hi"}]});
    let resp = send(&app, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-tollgate-mcp-steps").is_none());
    assert_eq!(models.requests()[0].body["tools"], body["tools"]);
}

#[tokio::test]
async fn the_semantic_filter_offers_the_model_the_tools_closest_to_the_conversation() {
    let (_remote, models, app) = setup(
        "litellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n    embedding_model: text-embedding-3-small\n    top_k: 2\n",
    )
    .await;
    let every = json!({"type": "mcp", "server_label": "remote", "server_url": "litellm_proxy",
                       "require_approval": "never"});
    let body = json!({"model": "gpt-4o-mini", "tools": [every],
        "messages": [{"role": "user", "content": "please add two numbers"}]});
    let resp = send(&app, "/v1/chat/completions", MASTER, &body).await;
    assert_eq!(resp.status(), 200);
    // The embeddings reach the same mock first; the chat request is the one with messages.
    let chat = models.requests().iter().position(|r| r.body.get("messages").is_some()).unwrap();
    let names = offered(&models, chat);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n == "remote-add"), "{names:?}");
    // The ranking's embeddings were a request of the caller's, through tollgate itself.
    let rows = records(&app, 2).await;
    assert!(rows.iter().any(|r| r["api"] == "embeddings"), "{rows:?}");
}
