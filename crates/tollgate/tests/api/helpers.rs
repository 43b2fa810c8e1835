use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, TestApp};

pub const MASTER: &str = "sk-test-master";

/// A config with two deployments on `mock` (chat and embeddings), a pattern route, and a
/// Copilot entry this build cannot serve yet.
pub fn config(mock: &MockOpenAi, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini-2024-07-18
      api_base: {base}
      api_key: sk-upstream-secret
      extra_headers:
        X-Extra: from-config
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {base}
      api_key: sk-upstream-secret
  - model_name: mock/*
    litellm_params:
      model: openai/*
      api_base: {base}
      timeout: 1
  - model_name: copilot-model
    litellm_params:
      model: github_copilot/gpt-5-mini
{extra}"#,
        base = mock.base_url()
    )
}

/// A mock upstream and tollgate in front of it, protected by [`MASTER`].
pub async fn setup() -> (MockOpenAi, TestApp) {
    setup_with("").await
}

/// Like [`setup`] with extra top-level YAML appended to the config.
pub async fn setup_with(extra: &str) -> (MockOpenAi, TestApp) {
    let mock = MockOpenAi::start().await;
    let app = TestApp::spawn_with_env(&config(&mock, extra), &[("TOLLGATE_MASTER_KEY", MASTER)])
        .await
        .expect("tollgate starts");
    (mock, app)
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client")
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    client().post(app.url(path)).bearer_auth(MASTER).json(&body).send().await.expect("request sent")
}

pub fn chat(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

/// Asserts an OpenAI-shaped error and returns its `error` object.
pub async fn openai_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body: Value = resp.json().await.expect("JSON error body");
    let err = body.get("error").cloned().unwrap_or_else(|| panic!("no error in {body}"));
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(err.get("type").is_some() && err.get("param").is_some() && err.get("code").is_some());
    err
}

/// Reads an SSE response into the `data` of each event.
pub async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => break,
        }
    }
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}
