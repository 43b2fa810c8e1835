//! `/v1/responses`: OpenAI's Responses API, translated to and from Chat Completions
//! deployments, passed through to Responses ones (`model_info.mode: responses`), and Chat
//! Completions clients served by a Responses deployment, and Copilot models served only on
//! `/responses`.

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, ReplySpec, TestApp};

use crate::helpers::*;

async fn app() -> (MockOpenAi, TestApp) {
    let mock = MockOpenAi::start().await;
    let yaml = format!(
        r#"
model_list:
  - model_name: chat-model
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}
      api_key: sk-upstream
  - model_name: responses-model
    litellm_params:
      model: openai/gpt-5.4
      api_base: {base}
      api_key: sk-upstream
    model_info:
      mode: responses
"#,
        base = mock.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    (mock, app)
}

/// The (event type, data) of each event of a Responses stream.
async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap_or_default();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            (data["type"].as_str().unwrap_or_default().to_owned(), data)
        })
        .collect()
}

#[tokio::test]
async fn a_responses_request_is_answered_by_a_chat_deployment() {
    let (mock, app) = app().await;
    mock.enqueue(ReplySpec::text("Hello from chat"));
    let body = json!({"model": "chat-model", "instructions": "Be brief.", "input": "Say hello",
                      "max_output_tokens": 50});
    let resp = post(&app, "/v1/responses", body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "chat-model");
    let message = v["output"].as_array().unwrap().iter().find(|i| i["type"] == "message").unwrap();
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(message["content"][0]["text"], "Hello from chat");
    assert!(v["usage"]["input_tokens"].as_u64().is_some(), "{v}");

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(sent.body["messages"][1]["role"], "user");
}

#[tokio::test]
async fn a_responses_stream_from_a_chat_deployment_ends_with_the_whole_response() {
    let (mock, app) = app().await;
    mock.enqueue(ReplySpec::text("one two three").chunks(3));
    let body = json!({"model": "chat-model", "input": "count", "stream": true});
    let resp = post(&app, "/v1/responses", body).await;
    assert_eq!(resp.status(), 200);
    let events = events(resp).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"response.created"), "{kinds:?}");
    assert!(kinds.contains(&"response.output_text.delta"), "{kinds:?}");
    assert!(kinds.contains(&"response.output_item.done"), "{kinds:?}");
    let (last, completed) = events.last().unwrap();
    assert_eq!(last, "response.completed", "{kinds:?}");
    let text: String = events
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, "one two three");
    assert!(completed["response"]["usage"]["output_tokens"].as_u64().is_some(), "{completed}");
}

#[tokio::test]
async fn a_responses_deployment_gets_the_client_bytes_with_only_the_model_changed() {
    let (mock, app) = app().await;
    mock.enqueue(ReplySpec::text("native"));
    let body = json!({"model": "responses-model", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "hi"}]}], "store": false,
        "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high"}});
    let resp = post(&app, "/v1/responses", body.clone()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "response");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    let mut expected = body;
    expected["model"] = json!("gpt-5.4");
    assert_eq!(sent.body, expected);
}

#[tokio::test]
async fn a_chat_client_is_served_by_a_responses_deployment() {
    let (mock, app) = app().await;
    mock.enqueue(ReplySpec::text("via responses"));
    let resp = post(&app, "/v1/chat/completions", chat("responses-model", "hi")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "via responses");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body["model"], "gpt-5.4");
    assert_eq!(sent.body["store"], false);

    mock.enqueue(ReplySpec::text("streamed via responses").chunks(2));
    let mut body = chat("responses-model", "hi");
    body["stream"] = json!(true);
    let data = sse_data(post(&app, "/v1/chat/completions", body).await).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let text: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "streamed via responses");
}

#[tokio::test]
async fn stored_state_and_bad_input_are_refused_in_the_responses_shape() {
    let (mock, app) = app().await;
    let body = json!({"model": "chat-model", "input": "x", "previous_response_id": "resp_1"});
    let err = openai_error(post(&app, "/v1/responses", body).await, 400).await;
    assert_eq!(err["param"], "previous_response_id");
    let err =
        openai_error(post(&app, "/responses", json!({"model": "chat-model"})).await, 400).await;
    assert_eq!(err["param"], "input");
    let err = openai_error(
        post(&app, "/v1/responses", json!({"model": "nope", "input": "x"})).await,
        404,
    )
    .await;
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn copilot_models_that_list_only_responses_are_spoken_to_in_it() {
    let (gh, app, _) = crate::copilot::linked().await;
    // gpt-5.4 lists only `/responses` in the stand-in's catalog, as Copilot's does.
    gh.enqueue(ReplySpec::text("from codex"));
    let resp = post(&app, "/v1/chat/completions", chat("gpt-5.4", "hi")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from codex");
    let r = gh.last_request().unwrap();
    assert_eq!(r.path, "/responses");
    let header = |name: &str| {
        r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_eq!(header("x-initiator"), "user");

    // A Responses client reaches it natively, and a chat model in its own protocol.
    gh.enqueue(ReplySpec::text("native"));
    let resp = post(&app, "/v1/responses", json!({"model": "gpt-5.4", "input": "hi"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(gh.last_request().unwrap().path, "/responses");
    let resp = post(&app, "/v1/responses", json!({"model": "gpt-4o", "input": "hi"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(gh.last_request().unwrap().path, "/chat/completions");
}

#[tokio::test]
async fn a_messages_client_is_served_by_a_responses_deployment() {
    let (mock, app) = app().await;
    mock.enqueue(ReplySpec::text("Claude Code, answered by gpt-5.4"));
    let body = json!({"model": "responses-model", "max_tokens": 200, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Claude Code, answered by gpt-5.4");
    assert_eq!(v["stop_reason"], "end_turn");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body["instructions"], "Be brief.");
    assert_eq!(sent.body["max_output_tokens"], 200);

    mock.enqueue(ReplySpec::text("streamed through").chunks(2));
    let mut body = body;
    body["stream"] = json!(true);
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    assert!(text.contains("streamed") && text.contains("through"), "{text}");
}

#[tokio::test]
async fn a_responses_client_is_served_by_an_anthropic_deployment() {
    let anthropic = tollgate_testkit::MockAnthropic::start().await;
    let yaml = format!(
        r#"
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {a}
      api_key: sk-ant-api-upstream
"#,
        a = anthropic.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    anthropic.enqueue(ReplySpec::text("Codex, answered by Claude"));
    let resp = post(&app, "/v1/responses", json!({"model": "claude", "input": "hi"})).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    let message = v["output"].as_array().unwrap().iter().find(|i| i["type"] == "message").unwrap();
    assert_eq!(message["content"][0]["text"], "Codex, answered by Claude");
    assert_eq!(anthropic.last_request().unwrap().body["model"], "claude-sonnet-4-5");

    anthropic.enqueue(ReplySpec::text("a streamed answer").chunks(3));
    let body = json!({"model": "claude", "input": "hi", "stream": true});
    let events = events(post(&app, "/v1/responses", body).await).await;
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    let text: String = events
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, "a streamed answer");
    assert!(done["response"]["usage"]["output_tokens"].as_u64().is_some(), "{done}");
}
