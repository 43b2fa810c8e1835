//! Fallback chains that end on a Copilot model served only on `/responses`: a Claude model
//! that fails (rate-limited, down) hands the turn to it, translated for a Messages or
//! a Chat Completions client, and the answer says which model really served it.

use serde_json::{Value, json};
use tollgate_testkit::{ReplySpec, TestApp};

use crate::helpers::*;

/// The paths and models of the model calls the Copilot stand-in answered.
fn copilot_calls(gh: &tollgate_testkit::MockGitHub) -> Vec<(String, String)> {
    gh.requests()
        .into_iter()
        .filter(|r| r.path != "/models")
        .map(|r| (r.path, r.body["model"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// tollgate with `yaml` in front of the Copilot stand-in, an account linked.
async fn copilot_fallback_app(yaml: &str) -> (tollgate_testkit::MockGitHub, TestApp) {
    let gh = tollgate_testkit::MockGitHub::start().await;
    let app = crate::copilot::copilot_app(&gh, yaml).await;
    gh.add_account("ghu_fallback_account", true);
    app.link_copilot("default", "ghu_fallback_account").await.unwrap();
    (gh, app)
}

/// The only spend record, once written: its served model and its attempts' outcomes and
/// served models.
async fn the_record(app: &TestApp) -> (String, Vec<(String, String)>) {
    let written = app.wait_for_spend_written(1, std::time::Duration::from_secs(5)).await;
    assert_eq!(written, 1, "one request, one spend record");
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let attempts = logs[0]
        .attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            (field("outcome"), field("served_model"))
        })
        .collect();
    (logs[0].served_model.clone(), attempts)
}

async fn messages_post(app: &TestApp, body: Value) -> reqwest::Response {
    client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A Claude model Copilot rate-limits, falling back to one Copilot serves only on
/// `/responses`. (A 402 would say the account's premium requests are used up, and gpt-5.4, a
/// premium model on the same account, would be passed over too.)
const COPILOT_CLAUDE_THEN_GPT_5_4: &str = "model_list:
  - model_name: claude-sonnet-4.5
    litellm_params:
      model: github_copilot/claude-sonnet-4.5
    fallbacks: [gpt-5.4]
  - model_name: gpt-5.4
    litellm_params:
      model: github_copilot/gpt-5.4
";

#[tokio::test]
async fn a_messages_client_falls_back_from_a_rate_limited_claude_to_a_responses_only_model() {
    for stream in [false, true] {
        let (gh, app) = copilot_fallback_app(COPILOT_CLAUDE_THEN_GPT_5_4).await;
        gh.enqueue_error(
            429,
            json!({"error": {"message": "Too many requests for this model", "code": "rate_limited"}}),
        );
        gh.enqueue(ReplySpec::text("gpt-5.4 took over the turn").chunks(3));
        let body = json!({"model": "claude-sonnet-4.5", "max_tokens": 100, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]});
        let resp = messages_post(&app, body).await;
        assert_eq!(resp.status(), 200, "stream: {stream}");
        let headers = resp.headers().clone();
        assert_eq!(headers["x-tollgate-served-model"], "github_copilot/gpt-5.4");
        assert_eq!(headers["x-tollgate-attempts"], "2");
        assert_eq!(
            headers["x-tollgate-attempted"],
            "claude-sonnet-4.5=rate_limited, gpt-5.4=answered"
        );
        if stream {
            let text = resp.text().await.unwrap();
            assert!(text.contains("event: message_stop"), "{text}");
            let said: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(said, "gpt-5.4 took over the turn");
        } else {
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["type"], "message");
            assert_eq!(v["content"][0]["text"], "gpt-5.4 took over the turn");
        }

        let calls = copilot_calls(&gh);
        let expected = [("/v1/messages", "claude-sonnet-4.5"), ("/responses", "gpt-5.4")]
            .map(|(p, m)| (p.to_owned(), m.to_owned()));
        assert_eq!(calls, expected, "stream: {stream}");
        let sent = gh.last_request().unwrap();
        assert_eq!(sent.body["stream"].as_bool().unwrap_or(false), stream, "{}", sent.body);
        assert_eq!(sent.body["max_output_tokens"], 100);
        let (served, attempts) = the_record(&app).await;
        assert_eq!(served, "github_copilot/gpt-5.4");
        let expected = [
            ("rate_limited", "github_copilot/claude-sonnet-4.5"),
            ("answered", "github_copilot/gpt-5.4"),
        ]
        .map(|(o, m)| (o.to_owned(), m.to_owned()));
        assert_eq!(attempts, expected, "stream: {stream}");
    }
}

#[tokio::test]
async fn a_chat_client_falls_back_from_a_rate_limited_anthropic_claude_to_a_responses_only_model() {
    for stream in [false, true] {
        let anthropic = tollgate_testkit::MockAnthropic::start().await;
        anthropic.set_default(ReplySpec::error(
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        ));
        let yaml = format!(
            "model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {}
      api_key: sk-ant-api-upstream
    fallbacks: [gpt-5.4]
  - model_name: gpt-5.4
    litellm_params:
      model: github_copilot/gpt-5.4
router_settings:
  num_retries: 0
",
            anthropic.base_url()
        );
        let (gh, app) = copilot_fallback_app(&yaml).await;
        gh.enqueue(ReplySpec::text("answered by gpt-5.4 instead").chunks(2));
        let mut body = chat("claude", "hi");
        body["stream"] = json!(stream);
        let resp = post(&app, "/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200, "stream: {stream}");
        let headers = resp.headers().clone();
        assert_eq!(headers["x-tollgate-served-model"], "github_copilot/gpt-5.4");
        assert_eq!(headers["x-tollgate-attempts"], "2");
        assert_eq!(headers["x-tollgate-attempted"], "claude=rate_limited, gpt-5.4=answered");
        let text = if stream {
            let data = sse_data(resp).await;
            assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
            data.iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
                .collect::<String>()
        } else {
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["object"], "chat.completion");
            v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
        };
        assert_eq!(text, "answered by gpt-5.4 instead");

        assert_eq!(anthropic.request_count(), 1, "no retry on the same model");
        assert_eq!(copilot_calls(&gh), [("/responses".to_owned(), "gpt-5.4".to_owned())]);
        let (served, attempts) = the_record(&app).await;
        assert_eq!(served, "github_copilot/gpt-5.4");
        let expected = [
            ("rate_limited", "anthropic/claude-sonnet-4-5"),
            ("answered", "github_copilot/gpt-5.4"),
        ]
        .map(|(o, m)| (o.to_owned(), m.to_owned()));
        assert_eq!(attempts, expected, "stream: {stream}");
    }
}
