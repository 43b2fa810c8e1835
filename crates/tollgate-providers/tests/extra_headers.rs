//! A deployment's `extra_headers` as each provider's upstream receives them: a configured
//! header replaces the one tollgate would send (in any case), so it arrives exactly once, and
//! an empty value removes it.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tollgate_config::{MapEnv, ModelEntry, Secret};
use tollgate_protocol::{Operation, Protocol};
use tollgate_providers::{CallContext, Providers, build_http_client};
use tollgate_testkit::{MockAnthropic, MockGitHub, MockOpenAi, RecordedRequest};

const TIMEOUT: Duration = Duration::from_secs(10);

fn entry(model: &str, params: &str) -> ModelEntry {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: {model}\n{params}"
    );
    tollgate_config::from_yaml_str(&yaml, None, &MapEnv::default()).unwrap().models.remove(0)
}

fn providers(github_api_url: String) -> Providers {
    Providers::new(build_http_client().unwrap(), github_api_url, "http://auth".to_owned())
}

/// Every value `request` carried for `name`, in arrival order.
fn values<'a>(request: &'a RecordedRequest, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn chat_body() -> Bytes {
    Bytes::from(
        json!({"model": "x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
}

#[tokio::test]
async fn openai_format_extra_headers_replace_and_remove() {
    let mock = MockOpenAi::start().await;
    let entry = entry(
        "openai/gpt-4o",
        &format!(
            "      api_base: {}\n      api_key: sk-from-key\n      extra_headers:\n        \
             AUTHORIZATION: Bearer sk-from-config\n        X-Request-Id: \"\"\n        \
             X-Title: my-team\n",
            mock.base_url()
        ),
    );
    let ctx = CallContext { request_id: "req-1".to_owned(), ..Default::default() };
    let response = providers("http://127.0.0.1:9".to_owned())
        .send(&entry, Operation::Generate(Protocol::Chat), chat_body(), &ctx, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = mock.last_request().unwrap();
    assert_eq!(values(&received, "authorization"), ["Bearer sk-from-config"]);
    assert!(values(&received, "x-request-id").is_empty(), "an empty value removes the header");
    assert_eq!(values(&received, "x-title"), ["my-team"]);
    assert_eq!(values(&received, "content-type"), ["application/json"]);
}

#[tokio::test]
async fn anthropic_format_extra_headers_replace_and_remove() {
    let mock = MockAnthropic::start().await;
    let entry = entry(
        "anthropic/claude-sonnet-4-5",
        &format!(
            "      api_base: {}\n      api_key: sk-ant-from-key\n      extra_headers:\n        \
             anthropic-version: \"2024-10-22\"\n        X-Api-Key: sk-ant-from-config\n        \
             Anthropic-Beta: \"\"\n",
            mock.base_url()
        ),
    );
    let ctx = CallContext {
        request_id: "req-2".to_owned(),
        anthropic_version: Some("2023-06-01".to_owned()),
        anthropic_beta: vec!["from-client".to_owned()],
        ..Default::default()
    };
    let response = providers("http://127.0.0.1:9".to_owned())
        .send(&entry, Operation::Generate(Protocol::Messages), chat_body(), &ctx, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = mock.last_request().unwrap();
    assert_eq!(values(&received, "anthropic-version"), ["2024-10-22"]);
    assert_eq!(values(&received, "x-api-key"), ["sk-ant-from-config"]);
    assert!(values(&received, "anthropic-beta").is_empty(), "an empty value removes the header");
}

#[tokio::test]
async fn github_copilot_extra_headers_replace_and_remove() {
    let github = MockGitHub::start().await;
    github.add_account("ghu_headers", true);
    let providers = providers(github.api_url());
    providers.copilot().set_account("default", Secret::new("ghu_headers".to_owned()));
    let entry = entry(
        "github_copilot/gpt-4o",
        "      extra_headers:\n        Content-Type: application/json; charset=utf-8\n        \
         editor-version: vscode/1.85.1\n        Openai-Intent: \"\"\n",
    );
    let ctx = CallContext { request_id: "req-3".to_owned(), ..Default::default() };
    let response = providers
        .send(&entry, Operation::Generate(Protocol::Chat), chat_body(), &ctx, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = github.last_request().unwrap();
    assert_eq!(received.path, "/chat/completions");
    assert_eq!(values(&received, "content-type"), ["application/json; charset=utf-8"]);
    assert_eq!(values(&received, "editor-version"), ["vscode/1.85.1"]);
    assert!(values(&received, "openai-intent").is_empty(), "an empty value removes the header");
    assert_eq!(values(&received, "authorization").len(), 1);
}
