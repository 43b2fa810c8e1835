//! `/v1/messages`: Anthropic's protocol, passed through to Anthropic-format upstreams and
//! translated to and from OpenAI-format ones, fallbacks across the two included.

use serde_json::{Value, json};
use tollgate_testkit::{MockAnthropic, MockOpenAi, ReplySpec, TestApp, ToolCall};

use crate::helpers::*;

struct Both {
    anthropic: MockAnthropic,
    openai: MockOpenAi,
    app: TestApp,
}

async fn both() -> Both {
    let anthropic = MockAnthropic::start().await;
    let openai = MockOpenAi::start().await;
    let yaml = format!(
        r#"
model_list:
  - model_name: claude-sonnet-4-5
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_base: {a}
      api_key: sk-ant-api-upstream
  - model_name: glm
    litellm_params:
      model: anthropic/glm-5
      api_base: {a}
      api_key: zai-key
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {o}
      api_key: sk-openai-upstream
  - model_name: claude-with-fallback
    litellm_params:
      model: anthropic/claude-opus-4-5
      api_base: {a}
      api_key: sk-ant-api-upstream
      fallbacks: [gpt-4o]
"#,
        a = anthropic.base_url(),
        o = openai.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    Both { anthropic, openai, app }
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]})
}

async fn send(app: &TestApp, body: &Value) -> reqwest::Response {
    client()
        .post(app.url("/v1/messages?beta=true"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Reads an Anthropic SSE stream into (event name, data) pairs.
async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap_or_default();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_owned();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            (name, serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect()
}

fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn same_protocol_requests_pass_through_byte_for_byte() {
    let b = both().await;
    b.anthropic.enqueue(ReplySpec::text("Hello from Claude").reasoning("let me think"));
    let raw = r#"{"model":"glm","max_tokens":256,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"earlier","signature":"EqQBCkgIARABGAIiQL+signature/bytes=="},{"type":"text","text":"ok"}]},{"role":"user","content":"go on"}],"temperature":0.70}"#;
    let resp = client()
        .post(b.app.url("/v1/messages"))
        .bearer_auth(MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "anthropic/glm-5");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][1]["text"], "Hello from Claude");

    let sent = String::from_utf8(b.anthropic.last_raw_body().unwrap()).unwrap();
    assert_eq!(sent, raw.replace(r#""model":"glm""#, r#""model":"glm-5""#));
    let req = b.anthropic.last_request().unwrap();
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some("zai-key"));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(req.header("anthropic-beta"), Some("interleaved-thinking-2025-05-14"));
    assert_eq!(req.header("authorization"), None, "the client's credential stays here");
}

#[tokio::test]
async fn same_protocol_streams_are_relayed_event_by_event() {
    let b = both().await;
    b.anthropic.enqueue(ReplySpec::text("one two three").reasoning("hmm"));
    let mut body = ask("claude-sonnet-4-5", "count");
    body["stream"] = json!(true);
    let resp = send(&b.app, &body).await;
    assert_eq!(resp.status(), 200);
    let evs = events(resp).await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"ping"));
    assert_eq!(streamed_text(&evs), "one two three");
    let signature =
        evs.iter().find_map(|(_, d)| d["delta"]["signature"].as_str().map(str::to_owned));
    assert_eq!(signature.as_deref(), Some("sig-mock-anthropic"));
    b.app.wait_for_spend_written(1, std::time::Duration::from_secs(5)).await;
    let log = &b.app.store().spend_logs(Default::default()).await.unwrap()[0];
    assert_eq!((log.api.as_str(), log.completion_tokens), ("messages", 4));
}

#[tokio::test]
async fn upstream_errors_pass_through_to_anthropic_clients_unchanged() {
    let b = both().await;
    let upstream =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    b.anthropic.enqueue(ReplySpec::error(529, upstream.clone()));
    let resp = send(&b.app, &ask("claude-sonnet-4-5", "hi")).await;
    assert_eq!(resp.status(), 529);
    assert_eq!(resp.json::<Value>().await.unwrap(), upstream);
}

#[tokio::test]
async fn an_anthropic_client_is_served_by_an_openai_upstream() {
    let b = both().await;
    b.openai.enqueue(ReplySpec::text("Bonjour"));
    let mut body = ask("gpt-4o", "hello");
    body["system"] =
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let resp = send(&b.app, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/gpt-4o");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0], json!({"type": "text", "text": "Bonjour"}));
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let sent = b.openai.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "You are terse."}));
    assert!(sent.body.get("thinking").is_none());
    assert_eq!(sent.header("authorization"), Some("Bearer sk-openai-upstream"));
}

#[tokio::test]
async fn tool_use_streams_translate_to_anthropic_blocks() {
    let b = both().await;
    b.openai.enqueue(ReplySpec::tool_calls(vec![
        ToolCall::new("call_1", "Write", r#"{"file_path":"/tmp/a.txt","content":"hi"}"#),
        ToolCall::new("call_2", "Read", r#"{"file_path":"/tmp/b.txt"}"#),
    ]));
    let mut body = ask("gpt-4o", "write it");
    body["stream"] = json!(true);
    body["tools"] = json!([{"name": "Write", "description": "write a file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}},
                           {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]);
    let evs = events(send(&b.app, &body).await).await;
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(starts.len(), 2, "{evs:?}");
    assert_eq!(starts[0]["type"], "tool_use");
    assert_eq!(starts[0]["name"], "Write");
    assert_eq!(starts[1]["id"], "call_2");
    let json_args: String = evs
        .iter()
        .filter(|(_, d)| d["index"] == 0)
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&json_args).unwrap()["file_path"], "/tmp/a.txt");
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs.last().unwrap().0, "message_stop");
    let sent = b.openai.last_request().unwrap();
    assert_eq!(sent.body["tools"][0]["function"]["name"], "Write");
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn a_broken_translated_stream_ends_with_an_anthropic_error_event() {
    let b = both().await;
    b.openai.enqueue(ReplySpec::text("one two three four five").cut_after_chunks(3));
    let mut body = ask("gpt-4o", "go");
    body["stream"] = json!(true);
    let evs = events(send(&b.app, &body).await).await;
    let (name, data) = evs.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!evs.iter().any(|(n, _)| n == "message_stop"));
}

#[tokio::test]
async fn an_openai_client_is_served_by_an_anthropic_upstream() {
    let b = both().await;
    b.anthropic.enqueue(ReplySpec::text("Hi there"));
    let resp = post(&b.app, "/v1/chat/completions", chat("claude-sonnet-4-5", "hello")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = b.anthropic.last_request().unwrap();
    assert_eq!(sent.body["model"], "claude-sonnet-4-5-20250929");
    assert!(sent.body["max_tokens"].as_u64().is_some());
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-api-upstream"));

    b.anthropic.enqueue(ReplySpec::text("a b c"));
    let mut body = chat("claude-sonnet-4-5", "stream it");
    body["stream"] = json!(true);
    let events = sse_data(post(&b.app, "/v1/chat/completions", body).await).await;
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "a b c");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn fallback_crosses_from_an_anthropic_upstream_to_an_openai_one() {
    let b = both().await;
    b.anthropic.enqueue(ReplySpec::error(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
    ));
    b.openai.enqueue(ReplySpec::text("served by gpt"));
    let mut body = ask("claude-with-fallback", "hi");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let resp = send(&b.app, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/gpt-4o");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "served by gpt");
    // The first hop kept `thinking`; the OpenAI hop dropped it.
    assert_eq!(b.anthropic.last_request().unwrap().body["thinking"]["type"], "enabled");
    assert!(b.openai.last_request().unwrap().body.get("thinking").is_none());
}

#[tokio::test]
async fn errors_on_the_messages_route_use_anthropic_shapes() {
    let b = both().await;
    let resp =
        client().post(b.app.url("/v1/messages")).json(&ask("glm", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = send(&b.app, &json!({"max_tokens": 5, "messages": []})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("model"), "{v}");

    let resp = send(&b.app, &ask("no-such-model", "x")).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");

    // An OpenAI-format upstream's error reaches an Anthropic client in Anthropic's shape.
    b.openai.enqueue(ReplySpec::openai_error(429, "rate_limit_exceeded", "gpt is busy"));
    let resp = send(&b.app, &ask("gpt-4o", "x")).await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["message"], "gpt is busy");
}

#[tokio::test]
async fn count_tokens_is_forwarded_or_estimated() {
    let b = both().await;
    let body = json!({"model": "claude-sonnet-4-5", "system": "You are terse.",
        "messages": [{"role": "user", "content": "one two three four"}]});
    let resp = client()
        .post(b.app.url("/v1/messages/count_tokens"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-tollgate-token-count").is_none());
    let v: Value = resp.json().await.unwrap();
    // The mock counts words plus three per message: the upstream's own number came back.
    assert_eq!(v["input_tokens"], 7);
    let sent = b.anthropic.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.body["model"], "claude-sonnet-4-5-20250929");

    let mut body = body;
    body["model"] = json!("gpt-4o");
    let before = b.openai.request_count();
    let resp = client()
        .post(b.app.url("/v1/messages/count_tokens"))
        .header("x-api-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-tollgate-token-count"], "estimated");
    let v: Value = resp.json().await.unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    // "You are terse." and "one two three four" are 4 + 4 tokens in o200k, plus framing.
    assert!((8..=20).contains(&n), "{n}");
    assert_eq!(b.openai.request_count(), before, "estimates never call the upstream");
}

async fn pooled() -> (MockAnthropic, MockOpenAi, TestApp) {
    let anthropic = MockAnthropic::start().await;
    let openai = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: anthropic/*\n    litellm_params:\n      model: anthropic/*\n      api_base: {}\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {}\n      api_key: sk-openai-upstream\n",
        anthropic.base_url(),
        openai.base_url()
    );
    let app = TestApp::spawn_with_env(
        &yaml,
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("CLAUDE_OAUTH_TOKENS", "sk-ant-oat01-aaa,sk-ant-oat01-bbb"),
        ],
    )
    .await
    .unwrap();
    (anthropic, openai, app)
}

#[tokio::test]
async fn claude_tokens_rotate_and_a_rate_limited_one_rests() {
    let (anthropic, _openai, app) = pooled().await;
    let bearer =
        |m: &MockAnthropic| m.last_request().unwrap().header("authorization").unwrap().to_owned();
    assert_eq!(send(&app, &ask("anthropic/claude-sonnet-4-5", "1")).await.status(), 200);
    let first = bearer(&anthropic);
    assert_eq!(send(&app, &ask("anthropic/claude-sonnet-4-5", "2")).await.status(), 200);
    let second = bearer(&anthropic);
    assert_ne!(first, second);
    assert!(
        first.starts_with("Bearer sk-ant-oat01-") && second.starts_with("Bearer sk-ant-oat01-")
    );
    let beta = anthropic.last_request().unwrap().header("anthropic-beta").unwrap().to_owned();
    assert!(beta.contains("oauth-2025-04-20") && beta.contains("claude-code-20250219"), "{beta}");
    assert_eq!(anthropic.last_request().unwrap().body["model"], "claude-sonnet-4-5");

    // The next token in turn answers 429: the same request moves to the other token.
    anthropic.enqueue(ReplySpec::error(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
    ));
    let resp = send(&app, &ask("anthropic/claude-sonnet-4-5", "3")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-attempts"], "1");
    let reqs = anthropic.requests();
    let limited = reqs[reqs.len() - 2].header("authorization").unwrap().to_owned();
    let served = reqs[reqs.len() - 1].header("authorization").unwrap().to_owned();
    assert_ne!(limited, served);
    // While it rests, only the other token is used.
    for _ in 0..3 {
        send(&app, &ask("anthropic/claude-sonnet-4-5", "n")).await;
        assert_eq!(bearer(&anthropic), served);
    }
}

#[tokio::test]
async fn passthrough_sends_the_clients_own_token_only_to_claude() {
    let (anthropic, openai, app) = pooled().await;
    let own = |model: &str| {
        client()
            .post(app.url("/v1/messages"))
            .header("authorization", "Bearer sk-ant-oat01-clients-own")
            .header("x-litellm-api-key", MASTER)
            .header("x-claude-token-mode", "passthrough")
            .json(&ask(model, "hi"))
            .send()
    };
    assert_eq!(own("anthropic/claude-opus-4-5").await.unwrap().status(), 200);
    assert_eq!(
        anthropic.last_request().unwrap().header("authorization"),
        Some("Bearer sk-ant-oat01-clients-own")
    );
    assert_eq!(own("gpt-4o").await.unwrap().status(), 200);
    assert_eq!(
        openai.last_request().unwrap().header("authorization"),
        Some("Bearer sk-openai-upstream")
    );
    // Without the header the pool is used.
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("authorization", "Bearer sk-ant-oat01-clients-own")
        .header("x-litellm-api-key", MASTER)
        .json(&ask("anthropic/claude-opus-4-5", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let used = anthropic.last_request().unwrap().header("authorization").unwrap().to_owned();
    assert!(used == "Bearer sk-ant-oat01-aaa" || used == "Bearer sk-ant-oat01-bbb", "{used}");
}

#[tokio::test]
async fn history_from_another_provider_is_cleaned_and_reasoning_can_be_stripped() {
    let anthropic = MockAnthropic::start().await;
    let openai = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-x\n      api_base: {a}\n      api_key: k\n  - model_name: quiet-claude\n    litellm_params:\n      model: anthropic/claude-x\n      api_base: {a}\n      api_key: k\n      strip_thinking: true\n  - model_name: quiet-gpt\n    litellm_params:\n      model: openai/o3\n      api_base: {o}\n      strip_thinking: true\n",
        a = anthropic.base_url(),
        o = openai.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();

    // A turn answered earlier by a GPT model carries an unsigned thinking block.
    let body = json!({"model": "claude", "max_tokens": 100, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "from gpt", "signature": ""},
            {"type": "thinking", "thinking": "from claude", "signature": "EqQBsigned"},
            {"type": "text", "text": "a1"}]},
        {"role": "user", "content": "q2"}]});
    assert_eq!(send(&app, &body).await.status(), 200);
    let sent = anthropic.last_request().unwrap();
    let blocks = sent.body["messages"][1]["content"].as_array().unwrap().clone();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(blocks[0]["signature"], "EqQBsigned");

    anthropic.enqueue(ReplySpec::text("plain").reasoning("secret thoughts"));
    let v: Value = send(&app, &ask("quiet-claude", "hi")).await.json().await.unwrap();
    assert_eq!(v["content"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["content"][0]["text"], "plain");

    anthropic.enqueue(ReplySpec::text("streamed plain").reasoning("secret thoughts"));
    let mut body = ask("quiet-claude", "hi");
    body["stream"] = json!(true);
    let evs = events(send(&app, &body).await).await;
    assert!(!evs.iter().any(|(_, d)| d.to_string().contains("thinking")), "{evs:?}");
    let first_block = evs.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(first_block.1["index"], 0);
    assert_eq!(streamed_text(&evs), "streamed plain");

    openai.enqueue(ReplySpec::text("answer").reasoning("hidden"));
    let v: Value =
        post(&app, "/v1/chat/completions", chat("quiet-gpt", "hi")).await.json().await.unwrap();
    assert!(v["choices"][0]["message"].get("reasoning_content").is_none(), "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "answer");
}

#[tokio::test]
async fn count_tokens_is_admitted_like_the_request_it_counts_for() {
    let (anthropic, _openai, app) = pooled().await;
    let key = post(&app, "/key/generate", json!({"models": ["gpt-4o"]})).await;
    let key: Value = key.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let body = json!({"model": "anthropic/claude-opus-4-5",
        "messages": [{"role": "user", "content": "one two three four"}]});
    let count = |key: &str, own_token: bool| {
        let mut req = client().post(app.url("/v1/messages/count_tokens")).json(&body);
        req = if own_token {
            req.header("authorization", "Bearer sk-ant-oat01-clients-own")
                .header("x-api-key", key)
                .header("x-claude-token-mode", "passthrough")
        } else {
            req.header("x-api-key", key)
        };
        req.send()
    };
    // The key may not use the model: refused, as /v1/messages would be, and recorded.
    let resp = count(&key, false).await.unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "permission_error");
    assert_eq!(anthropic.request_count(), 0);
    app.wait_for_spend_written(1, std::time::Duration::from_secs(5)).await;
    let rows = app.store().spend_logs(Default::default()).await.unwrap();
    assert_eq!((rows[0].api.as_str(), rows[0].outcome.as_str()), ("count_tokens", "refused"));

    // Pass-through mode reaches count_tokens too: the client's own token is what is sent.
    let resp = count(MASTER, true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent = anthropic.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-ant-oat01-clients-own"));

    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("tollgate_requests_total")
            && l.contains(r#"api="count_tokens""#)
            && l.contains(r#"status_class="2xx""#)),
        "{metrics}"
    );
}
