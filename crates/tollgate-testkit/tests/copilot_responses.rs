//! Black-box tests of the Copilot API's Responses endpoint and of the catalog deciding which
//! endpoint serves which model.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use tollgate_testkit::{
    MockGitHub, ReplySpec, ToolCall,
    github_mock::{copilot_model, responses_model},
    openai_mock::encrypted_reasoning,
};

fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider; plain http still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn copilot_token(github: &MockGitHub) -> String {
    github.add_account("ghu_test", true);
    let body: Value = client()
        .get(format!("{}/copilot_internal/v2/token", github.api_url()))
        .header("authorization", "token ghu_test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn post(github: &MockGitHub, token: &str, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", github.copilot_api_url()))
        .bearer_auth(token)
        .header("editor-version", "vscode/1.99.3")
        .header("x-initiator", "agent")
        .header("copilot-vision-request", "true")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn responses(model: &str) -> Value {
    json!({"model": model, "input": "hi", "include": ["reasoning.encrypted_content"]})
}

#[tokio::test]
async fn a_responses_only_model_is_refused_on_chat_completions_as_copilot_does() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    github.enqueue(ReplySpec::text("kept for later"));
    let refused = post(&github, &token, "/chat/completions", &chat("gpt-5.4")).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"error": {
            "message": "model \"gpt-5.4\" is not accessible via the /chat/completions endpoint",
            "code": "unsupported_api_for_model",
        }})
    );
    let recorded = github.last_request().unwrap();
    assert_eq!(recorded.path, "/chat/completions");
    assert_eq!(recorded.body, chat("gpt-5.4"));

    // The refusal took no reply: the queued one answers the Responses call.
    let answered = post(&github, &token, "/responses", &responses("gpt-5.4")).await;
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["model"], "gpt-5.4");
    assert_eq!(body["output"][0]["content"][0]["text"], "kept for later");
    let recorded = github.last_request().unwrap();
    assert_eq!(recorded.path, "/responses");
    assert_eq!(recorded.header("x-initiator"), Some("agent"));
    assert_eq!(recorded.header("copilot-vision-request"), Some("true"));
    assert_eq!(recorded.body, responses("gpt-5.4"));
}

#[tokio::test]
async fn the_catalog_decides_which_endpoint_serves_a_model() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    // Chat only: refused on /responses.
    let refused = post(&github, &token, "/responses", &responses("gpt-4o")).await;
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unsupported_api_for_model");
    assert_eq!(error["error"]["message"], "model gpt-4o is not supported via Responses API.");
    // Both endpoints listed, or a model the catalog does not know: served on both.
    for model in ["gpt-5-mini", "not-in-the-catalog"] {
        assert_eq!(post(&github, &token, "/chat/completions", &chat(model)).await.status(), 200);
        assert_eq!(post(&github, &token, "/responses", &responses(model)).await.status(), 200);
    }
    assert_eq!(post(&github, &token, "/chat/completions", &chat("gpt-4o")).await.status(), 200);
    assert_eq!(
        post(&github, &token, "/chat/completions", &chat("gpt-5.1-codex")).await.status(),
        400
    );

    // A model added at run time, and an existing one served elsewhere from now on.
    github.add_model(responses_model("gpt-5.5", 2.0));
    github.add_model(copilot_model("gpt-4o", "Azure OpenAI", 0.0, &["/responses"]));
    let catalog: Value = client()
        .get(format!("{}/models", github.copilot_api_url()))
        .bearer_auth(&token)
        .header("editor-version", "vscode/1.99.3")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = catalog["data"].as_array().unwrap();
    assert_eq!(entries[0]["id"], "gpt-4o", "replaced in place");
    assert_eq!(entries[0]["supported_endpoints"], json!(["/responses"]));
    let added = entries.last().unwrap();
    assert_eq!(added["id"], "gpt-5.5");
    assert_eq!(added["billing"]["multiplier"], 2.0);
    assert_eq!(post(&github, &token, "/chat/completions", &chat("gpt-5.5")).await.status(), 400);
    assert_eq!(post(&github, &token, "/chat/completions", &chat("gpt-4o")).await.status(), 400);
    assert_eq!(post(&github, &token, "/responses", &responses("gpt-4o")).await.status(), 200);
}

#[tokio::test]
async fn responses_take_the_guard_the_error_queue_and_stream() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    assert_eq!(post(&github, "bogus", "/responses", &responses("gpt-5.4")).await.status(), 401);

    let quota = json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}});
    github.enqueue_error(402, quota.clone());
    let failed = post(&github, &token, "/responses", &responses("gpt-5.4")).await;
    assert_eq!(failed.status(), 402);
    assert_eq!(failed.json::<Value>().await.unwrap(), quota);
    assert_eq!(github.last_request().unwrap().path, "/responses");

    github.enqueue(
        ReplySpec::tool_calls(vec![ToolCall::new("call_9", "ls", r#"{"dir":"."}"#)])
            .reasoning("look around"),
    );
    let mut body = responses("gpt-5.1-codex");
    body["stream"] = json!(true);
    let streamed = post(&github, &token, "/responses", &body).await;
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let text = streamed.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"response.created"));
    assert_eq!(events.last(), Some(&"response.completed"));
    let completed: Value = serde_json::from_str(
        text.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap(),
    )
    .unwrap();
    let output = &completed["response"]["output"];
    assert_eq!(output[0]["encrypted_content"], encrypted_reasoning("look around"));
    assert_eq!(output[1]["call_id"], "call_9");

    github.enqueue(ReplySpec::text("partial").fail_after_chunks(3));
    let streamed = post(&github, &token, "/responses", &body).await;
    let text = streamed.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events.last(), Some(&"response.failed"));
}

#[tokio::test]
async fn catalog_replies_and_errors_are_programmable_over_http() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    let control = |path: &str| format!("{}/__mock/{path}", github.github_url());
    let added: Value = client()
        .post(control("models"))
        .json(&responses_model("gpt-6", 5.0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added, json!({"models": 9}));
    assert_eq!(post(&github, &token, "/chat/completions", &chat("gpt-6")).await.status(), 400);

    let queued: Value = client()
        .post(control("enqueue"))
        .json(&json!({"reply": {"kind": "text", "text": "over http"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued, json!({"queued": 1}));
    let body: Value =
        post(&github, &token, "/responses", &responses("gpt-6")).await.json().await.unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], "over http");

    let status = client()
        .post(control("error"))
        .json(&json!({"status": 503, "body": "upstream down"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let failed = post(&github, &token, "/responses", &responses("gpt-6")).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(failed.text().await.unwrap(), "upstream down");

    // The whole catalog replaced by an array.
    let replaced = client()
        .post(control("models"))
        .json(&json!([copilot_model("only", "OpenAI", 0.0, &["/chat/completions"])]))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.json::<Value>().await.unwrap(), json!({"models": 1}));
    assert_eq!(post(&github, &token, "/chat/completions", &chat("gpt-6")).await.status(), 200);

    let recorded: Vec<Value> =
        client().get(control("requests")).send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> = recorded.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/chat/completions", "/responses", "/responses", "/chat/completions"]);
}
