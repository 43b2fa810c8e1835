//! The configs in `examples/` (the ones users start from) behave as their comments say, with
//! test upstreams in place of the real hosts.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockAnthropic, MockGitHub, MockOpenAi, ReplySpec, TestApp};

use crate::helpers::*;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

async fn messages(app: &TestApp, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn copilot_claude_code_serves_claude_opus_from_copilot() {
    let gh = MockGitHub::start().await;
    let (github, api) = (gh.github_url(), gh.api_url());
    let app = TestApp::spawn_with_env(
        &example("copilot-claude-code.yaml"),
        &[("TOLLGATE_GITHUB_URL", github.as_str()), ("TOLLGATE_GITHUB_API_URL", api.as_str())],
    )
    .await
    .unwrap();
    gh.add_account("ghu_cc", true);
    app.link_copilot("default", "ghu_cc").await.unwrap();
    gh.set_messages_text("opus via copilot");
    // No master key in this config: local requests are accepted.
    let resp = messages(&app, "anything", "claude-opus-4.5").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "github_copilot/claude-opus-4.5");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "opus via copilot");
    let r = gh.last_request().unwrap();
    assert_eq!(
        (r.path.as_str(), r.body["model"].as_str()),
        ("/v1/messages", Some("claude-opus-4.5"))
    );
    // Only that name is configured.
    assert_eq!(messages(&app, "anything", "gpt-4o").await.status(), 404);
}

#[tokio::test]
async fn copilot_fallbacks_uses_the_master_key_keeps_prompts_and_chains() {
    let gh = MockGitHub::start().await;
    let (github, api) = (gh.github_url(), gh.api_url());
    let app = TestApp::spawn_with_env(
        &example("copilot-fallbacks.yaml"),
        &[
            ("LITELLM_MASTER_KEY", "sk-team-master"),
            ("TOLLGATE_GITHUB_URL", github.as_str()),
            ("TOLLGATE_GITHUB_API_URL", api.as_str()),
        ],
    )
    .await
    .unwrap();
    gh.add_account("ghu_team", true);
    app.link_copilot("default", "ghu_team").await.unwrap();
    // master_key: os.environ/LITELLM_MASTER_KEY
    let refused = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&chat("x", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let ok = |model: &'static str| {
        client()
            .post(app.url("/v1/chat/completions"))
            .bearer_auth("sk-team-master")
            .json(&chat(model, "my secret is sk-proj-ABCDEFGHIJKLMNOPQRST"))
            .send()
    };
    // opus → gemini → gpt-5-mini: Opus answers quota_exceeded, which says the account's
    // premium requests are used up, so Gemini (premium too) is passed over unasked.
    let quota = json!({"error": {"message": "quota exceeded", "code": "quota_exceeded"}});
    gh.enqueue_error(402, quota);
    gh.enqueue(ReplySpec::text("mini answers"));
    let resp = ok("github_copilot/claude-opus-4.6").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "github_copilot/gpt-5-mini");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    assert_eq!(
        resp.headers()["x-tollgate-attempted"],
        "github_copilot/claude-opus-4.6=quota_exceeded, \
         github_copilot/gemini-3-pro-preview=premium_quota, github_copilot/gpt-5-mini=answered"
    );
    // The editor headers written on the entry go to Copilot.
    let opus_call =
        gh.requests().into_iter().find(|r| r.body["model"] == "claude-opus-4.6").unwrap();
    assert_eq!(opus_call.header("editor-version"), Some("vscode/1.85.1"));
    // The embeddings model is served too.
    let resp = client()
        .post(app.url("/v1/embeddings"))
        .bearer_auth("sk-team-master")
        .json(&json!({"model": "github_copilot/text-embedding-3-small", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // store_prompts_in_spend_logs: true, redacted.
    app.wait_for_spend_written(2, Duration::from_secs(5)).await;
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    let chat_log = logs.iter().find(|l| l.api == "chat_completions").unwrap();
    let prompt = chat_log.request_body.as_ref().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(prompt, "my secret is [REDACTED]");
    assert_eq!(chat_log.attempts.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn multi_provider_routes_each_name_and_falls_back_by_pattern() {
    let (zai, kimi, claude) =
        (MockAnthropic::start().await, MockAnthropic::start().await, MockAnthropic::start().await);
    let openrouter = MockOpenAi::start().await;
    zai.set_default(ReplySpec::text("glm here"));
    kimi.set_default(ReplySpec::text("kimi here"));
    let yaml = example("multi-provider.yaml")
        .replace("https://api.z.ai/api/anthropic", &zai.base_url())
        .replace("https://api.kimi.com/coding", &kimi.base_url())
        .replace("https://openrouter.ai/api/v1", &openrouter.base_url())
        .replace(
            "      model: anthropic/*\n",
            &format!("      model: anthropic/*\n      api_base: {}\n", claude.base_url()),
        );
    let app = TestApp::spawn_with_env(
        &yaml,
        &[
            ("LITELLM_MASTER_KEY", "sk-mp-master"),
            ("ZAI_API_KEY", "zai-secret"),
            ("KIMI_API_KEY", "kimi-secret"),
            ("OPENROUTER_API_KEY", "or-secret"),
        ],
    )
    .await
    .unwrap();
    let key = "sk-mp-master";

    let v: Value = messages(&app, key, "glm").await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "glm here");
    let r = zai.last_request().unwrap();
    assert_eq!(
        (r.body["model"].as_str(), r.header("x-api-key")),
        (Some("glm-5"), Some("zai-secret"))
    );

    messages(&app, key, "kimi").await;
    let r = kimi.last_request().unwrap();
    assert_eq!(
        (r.body["model"].as_str(), r.header("x-api-key")),
        (Some("kimi-for-coding"), Some("kimi-secret"))
    );

    openrouter.enqueue(ReplySpec::text("qwen here"));
    let v: Value = messages(&app, key, "openrouter").await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "qwen here");
    let r = openrouter.last_request().unwrap();
    assert_eq!(r.body["model"], "qwen/qwen3.6-plus:free");
    assert_eq!(r.header("authorization"), Some("Bearer or-secret"));

    // anthropic/* goes to Claude; when Claude is overloaded the glob rules pick the fallback:
    // the more specific haiku pattern sends haiku to glm-fast, everything else to glm.
    claude.enqueue(ReplySpec::text("claude here"));
    let resp = messages(&app, key, "anthropic/claude-sonnet-4-5").await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "anthropic/claude-sonnet-4-5");
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    claude.enqueue(ReplySpec::error(529, overloaded.clone()));
    let resp = messages(&app, key, "anthropic/claude-haiku-4-5").await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "anthropic/glm-5-air");
    claude.enqueue(ReplySpec::error(529, overloaded));
    let resp = messages(&app, key, "anthropic/claude-opus-4-5").await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "anthropic/glm-5");
}
