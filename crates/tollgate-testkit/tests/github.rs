//! Black-box tests of the GitHub + Copilot stand-in over real HTTP.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use tollgate_testkit::{
    MockGitHub, ReplySpec,
    github_mock::{MockQuota, ScriptedPoll, copilot_model},
};

const CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider; plain http still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn start_flow(github: &MockGitHub) -> Value {
    let response = client()
        .post(format!("{}/login/device/code", github.github_url()))
        .header("accept", "application/json")
        .json(&json!({"client_id": CLIENT_ID, "scope": "read:user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn poll(github: &MockGitHub, device_code: &str) -> Value {
    client()
        .post(format!("{}/login/oauth/access_token", github.github_url()))
        .json(&json!({"client_id": CLIENT_ID, "device_code": device_code, "grant_type": GRANT}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Exchanges `oauth` for a Copilot token; returns the status and the body.
async fn exchange(github: &MockGitHub, oauth: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}/copilot_internal/v2/token", github.api_url()))
        .header("authorization", format!("token {oauth}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn copilot_token(github: &MockGitHub) -> String {
    github.add_account("ghu_test", true);
    let (status, body) = exchange(github, "ghu_test").await;
    assert_eq!(status, 200);
    body["token"].as_str().unwrap().to_owned()
}

fn api(
    github: &MockGitHub,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", github.copilot_api_url()))
        .bearer_auth(token)
        .header("editor-version", "vscode/1.99.3")
}

#[tokio::test]
async fn device_flow_from_code_to_token() {
    let github = MockGitHub::start().await;
    let code = start_flow(&github).await;
    assert_eq!(code["interval"], 1);
    assert_eq!(code["verification_uri"], format!("{}/login/device", github.github_url()));
    let user_code = code["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(github.latest_user_code().as_deref(), Some(user_code));
    let requests = github.device_requests();
    assert_eq!(requests[0].client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(requests[0].scope.as_deref(), Some("read:user"));

    let device_code = code["device_code"].as_str().unwrap();
    assert_eq!(poll(&github, device_code).await["error"], "authorization_pending");
    github.enqueue_poll(ScriptedPoll::SlowDown);
    let slow = poll(&github, device_code).await;
    assert_eq!((slow["error"].as_str(), slow["interval"].as_u64()), (Some("slow_down"), Some(6)));

    let oauth = github.approve(user_code).unwrap();
    assert!(oauth.starts_with("ghu_") && oauth.len() == 40, "{oauth}");
    let authorized = poll(&github, device_code).await;
    assert_eq!(authorized["access_token"], oauth.as_str());
    assert_eq!(github.poll_count(), 3);
    assert_eq!(github.poll_times().len(), 3);

    // Form bodies work as well as JSON, and a second approval of one flow is the same token.
    let form = format!(
        "client_id={CLIENT_ID}&device_code={device_code}&grant_type={}",
        GRANT.replace(':', "%3A")
    );
    let response: Value = client()
        .post(format!("{}/login/oauth/access_token", github.github_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["access_token"], oauth.as_str());
    assert_eq!(github.approve_latest(), Some(oauth));
}

#[tokio::test]
async fn device_flow_failures() {
    let github = MockGitHub::start().await;
    let first = start_flow(&github).await;
    github.enqueue_poll(ScriptedPoll::Pending);
    github.enqueue_poll(ScriptedPoll::Expired);
    let device_code = first["device_code"].as_str().unwrap();
    assert_eq!(poll(&github, device_code).await["error"], "authorization_pending");
    assert_eq!(poll(&github, device_code).await["error"], "expired_token");
    // Expired stays expired.
    assert_eq!(poll(&github, device_code).await["error"], "expired_token");

    let second = start_flow(&github).await;
    github.deny();
    assert_eq!(
        poll(&github, second["device_code"].as_str().unwrap()).await["error"],
        "access_denied"
    );

    github.set_device_expires_in(0);
    let third = start_flow(&github).await;
    assert_eq!(
        poll(&github, third["device_code"].as_str().unwrap()).await["error"],
        "expired_token"
    );

    assert_eq!(poll(&github, "nope").await["error"], "incorrect_device_code");
    let missing = client()
        .post(format!("{}/login/device/code", github.github_url()))
        .json(&json!({"scope": "read:user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn enforced_interval_answers_slow_down() {
    let github = MockGitHub::start().await;
    github.enforce_interval(true);
    let code = start_flow(&github).await;
    let device_code = code["device_code"].as_str().unwrap();
    assert_eq!(poll(&github, device_code).await["error"], "authorization_pending");
    let fast = poll(&github, device_code).await;
    assert_eq!(fast["error"], "slow_down");
    assert_eq!(fast["interval"], 6);
}

#[tokio::test]
async fn token_exchange_checks_accounts_and_seats() {
    let github = MockGitHub::start().await;
    assert_eq!(exchange(&github, "ghu_unknown").await.0, 401);
    github.add_account("ghu_noseat", false);
    let (status, body) = exchange(&github, "ghu_noseat").await;
    assert_eq!(status, 403);
    assert_eq!(body["error_details"]["notification_id"], "no_copilot_access");

    github.add_account("ghu_seat", true);
    github.set_expires_in(600);
    github.set_refresh_in(42);
    let (status, body) = exchange(&github, "ghu_seat").await;
    assert_eq!(status, 200);
    assert!(body["token"].as_str().unwrap().starts_with("tid="));
    assert_eq!(body["refresh_in"], 42);
    assert_eq!(body["endpoints"]["api"], github.copilot_api_url().as_str());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expires_at = body["expires_at"].as_u64().unwrap();
    assert!((now + 598..=now + 600).contains(&expires_at), "{expires_at} vs {now}");

    assert_eq!(github.exchange_count("ghu_seat"), 1);
    assert_eq!(github.exchange_count("ghu_noseat"), 1);
    assert_eq!(github.total_exchanges(), 3);
    let recorded = github.github_requests();
    assert_eq!(recorded[2].path, "/copilot_internal/v2/token");
    assert_eq!(recorded[2].header("authorization"), Some("token ghu_seat"));

    github.revoke("ghu_seat");
    assert_eq!(exchange(&github, "ghu_seat").await.0, 401);
}

#[tokio::test]
async fn api_requires_a_valid_token_and_editor_headers() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    let get = reqwest::Method::GET;
    assert_eq!(api(&github, get.clone(), "/models", "bogus").send().await.unwrap().status(), 401);
    let bare = client().get(format!("{}/models", github.copilot_api_url())).bearer_auth(&token);
    assert_eq!(bare.send().await.unwrap().status(), 400);
    github.require_editor_headers(false);
    let bare = client().get(format!("{}/models", github.copilot_api_url())).bearer_auth(&token);
    assert_eq!(bare.send().await.unwrap().status(), 200);

    let models: Value =
        api(&github, get.clone(), "/models", &token).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "gpt-4o",
            "gpt-5-mini",
            "gpt-5.4",
            "gpt-5.1-codex",
            "claude-sonnet-4.5",
            "claude-opus-4.5",
            "gemini-3-pro-preview",
            "text-embedding-3-small"
        ]
    );
    assert_eq!(models["data"][5]["billing"]["multiplier"], 3.0);
    assert_eq!(models["data"][2]["supported_endpoints"], json!(["/responses"]));

    github.set_models(vec![copilot_model("only-one", "OpenAI", 0.0, &["/chat/completions"])]);
    let models: Value =
        api(&github, get.clone(), "/models", &token).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "only-one");

    github.expire_all_tokens();
    assert_eq!(api(&github, get, "/models", &token).send().await.unwrap().status(), 401);
    // Rejected calls are recorded too, with paths relative to the API base.
    assert_eq!(github.request_count(), 6);
    assert_eq!(github.last_request().unwrap().path, "/models");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let github = MockGitHub::start().await;
    github.set_expires_in(1);
    let token = copilot_token(&github).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = api(&github, reqwest::Method::GET, "/models", &token).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn chat_and_embeddings_use_the_reply_engine_and_errors_queue() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    let post = reqwest::Method::POST;
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi there"}]});
    github.enqueue(ReplySpec::text("programmed answer"));
    let body: Value = api(&github, post.clone(), "/chat/completions", &token)
        .json(&chat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "programmed answer");
    assert_eq!(github.last_request().unwrap().header("editor-version"), Some("vscode/1.99.3"));

    let quota = json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}});
    github.enqueue_error(402, quota.clone());
    // `/models` does not take the queued error.
    assert_eq!(
        api(&github, reqwest::Method::GET, "/models", &token).send().await.unwrap().status(),
        200
    );
    let failed =
        api(&github, post.clone(), "/chat/completions", &token).json(&chat).send().await.unwrap();
    assert_eq!(failed.status(), 402);
    assert_eq!(failed.json::<Value>().await.unwrap(), quota);
    assert_eq!(github.last_request().unwrap().body, chat);

    let embedding: Value = api(&github, post, "/embeddings", &token)
        .json(&json!({"model": "text-embedding-3-small", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(embedding["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn messages_answers_json_and_sse() {
    let github = MockGitHub::start().await;
    let token = copilot_token(&github).await;
    github.set_messages_text("native claude");
    let request = json!({"model": "claude-sonnet-4.5", "max_tokens": 100, "system": "be brief",
        "messages": [{"role": "user", "content": "hello"}]});
    let post = reqwest::Method::POST;
    let body: Value = api(&github, post.clone(), "/v1/messages", &token)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "native claude");
    assert_eq!(body["usage"], json!({"input_tokens": 2 + 1 + 3, "output_tokens": 2}));

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let response =
        api(&github, post.clone(), "/v1/messages", &token).json(&streamed).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );

    github.enqueue_error(400, json!({"error": {"message": "The requested model is not supported.", "code": "model_not_supported"}}));
    let failed = api(&github, post, "/v1/messages", &token).json(&request).send().await.unwrap();
    assert_eq!(failed.status(), 400);
}

#[tokio::test]
async fn user_document_reports_the_configured_quota() {
    let github = MockGitHub::start().await;
    github.add_account("ghu_q", true);
    github.set_quota(MockQuota {
        premium_remaining: 75.0,
        reset_date: "2031-02-01".into(),
        ..MockQuota::default()
    });
    let user = |token: &str| {
        client()
            .get(format!("{}/copilot_internal/user", github.api_url()))
            .header("authorization", format!("token {token}"))
            .send()
    };
    let body: Value = user("ghu_q").await.unwrap().json().await.unwrap();
    assert_eq!(body["quota_reset_date"], "2031-02-01");
    let premium = &body["quota_snapshots"]["premium_interactions"];
    assert_eq!(
        (premium["entitlement"].as_f64(), premium["remaining"].as_f64()),
        (Some(300.0), Some(75.0))
    );
    assert_eq!(premium["percent_remaining"], 25.0);
    assert_eq!(body["quota_snapshots"]["chat"]["unlimited"], true);
    assert_eq!(user("ghu_other").await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_stand_in_driven_from_outside_approves_over_http_and_names_its_public_origin() {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let github = MockGitHub::start_with_origin(addr, Some("http://github-mock:9000/".to_owned()))
        .await
        .unwrap();
    let approve = || client().post(format!("http://{}/__mock/approve", github.addr())).send();
    assert_eq!(approve().await.unwrap().status(), 404, "nothing to approve yet");
    let flow: Value = client()
        .post(format!("http://{}/login/device/code", github.addr()))
        .header("accept", "application/json")
        .json(&json!({"client_id": CLIENT_ID, "scope": "read:user"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flow["verification_uri"], "http://github-mock:9000/login/device");
    assert_eq!(approve().await.unwrap().status(), 200);
    let device_code = flow["device_code"].as_str().unwrap();
    let token = client()
        .post(format!("http://{}/login/oauth/access_token", github.addr()))
        .json(&json!({"client_id": CLIENT_ID, "device_code": device_code, "grant_type": GRANT}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let oauth = token["access_token"].as_str().unwrap();
    let exchanged: Value = client()
        .get(format!("http://{}/api/copilot_internal/v2/token", github.addr()))
        .header("authorization", format!("token {oauth}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exchanged["endpoints"]["api"], "http://github-mock:9000/copilot");
    // A restarted stand-in is told the account again.
    let other = MockGitHub::start_with_origin(addr, None).await.unwrap();
    let remember = client()
        .post(format!("http://{}/__mock/account", other.addr()))
        .json(&json!({"access_token": oauth}))
        .send()
        .await
        .unwrap();
    assert_eq!(remember.status(), 200);
    let (status, _) = exchange(&other, oauth).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_record_limit_of_zero_answers_and_counts_calls_but_keeps_none() {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let github = MockGitHub::start_with_options(addr, None, 0).await.unwrap();
    let token = copilot_token(&github).await;
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..3 {
        let response = api(&github, reqwest::Method::POST, "/chat/completions", &token)
            .json(&chat)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(github.request_count(), 3);
    assert!(github.requests().is_empty(), "{:?}", github.requests());
}
