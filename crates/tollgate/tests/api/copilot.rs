//! GitHub Copilot as a provider, against the GitHub/Copilot stand-in: linking, tokens,
//! headers, models, quota, and the Anthropic path for Claude models.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockGitHub, ReplySpec, TestApp};

use crate::helpers::*;

/// tollgate with no config file (everything goes to Copilot), pointed at the stand-in.
pub(crate) async fn copilot_app(gh: &MockGitHub, yaml: &str) -> TestApp {
    let github = gh.github_url();
    let api = gh.api_url();
    TestApp::spawn_with_env(
        yaml,
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("TOLLGATE_GITHUB_URL", github.as_str()),
            ("TOLLGATE_GITHUB_API_URL", api.as_str()),
        ],
    )
    .await
    .unwrap()
}

pub(crate) async fn linked() -> (MockGitHub, TestApp, String) {
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    let oauth = "ghu_default_account_token";
    gh.add_account(oauth, true);
    app.link_copilot("default", oauth).await.unwrap();
    (gh, app, oauth.to_owned())
}

#[tokio::test]
async fn before_any_account_is_linked_copilot_answers_503_naming_the_page() {
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    let err =
        openai_error(post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await, 503).await;
    assert_eq!(err["code"], "copilot_not_linked");
    assert!(err["message"].as_str().unwrap().contains("/github"), "{err}");
    // Other routes keep working meanwhile.
    let ok = client().get(app.url("/health/readiness")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn the_device_flow_links_an_account_without_a_restart() {
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    let page = client().get(app.auth_url(&format!("/github?key={MASTER}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let code = gh.latest_user_code().unwrap();
    assert!(html.contains(&code), "the page shows the user code");
    assert!(!html.contains(MASTER), "the page never shows the key");
    gh.approve_latest().unwrap();
    // The proxy picks the account up by itself.
    let mut status = 0;
    for _ in 0..100 {
        let resp = post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await;
        status = resp.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "no completion after linking");
}

#[tokio::test]
async fn requests_carry_the_editor_headers_and_the_initiator() {
    let (gh, app, _) = linked().await;
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "github_copilot/gpt-4o");
    let r = gh.last_request().unwrap();
    assert_eq!(r.path, "/chat/completions");
    assert!(r.header("authorization").unwrap().starts_with("Bearer "));
    assert_eq!(r.header("copilot-integration-id"), Some("vscode-chat"));
    assert!(r.header("editor-version").unwrap().starts_with("vscode/"));
    assert!(r.header("editor-plugin-version").unwrap().starts_with("copilot-chat/"));
    assert!(r.header("user-agent").unwrap().starts_with("GitHubCopilotChat/"));
    assert_eq!(r.header("openai-intent"), Some("conversation-panel"));
    assert!(r.header("x-github-api-version").is_some());
    assert!(r.header("x-request-id").is_some());
    assert_eq!(r.header("x-initiator"), Some("user"));
    assert_eq!(r.header("copilot-vision-request"), None);

    let tool_turn = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]});
    post(&app, "/v1/chat/completions", tool_turn).await;
    assert_eq!(gh.last_request().unwrap().header("x-initiator"), Some("agent"));

    let image = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    post(&app, "/v1/chat/completions", image).await;
    assert_eq!(gh.last_request().unwrap().header("copilot-vision-request"), Some("true"));
}

#[tokio::test]
async fn responses_requests_carry_the_initiator_and_vision_headers_and_reasoning_unchanged() {
    let (gh, app, _) = linked().await;
    // gpt-5.4 speaks only `/responses`: the Responses body goes as it came.
    let resp = post(&app, "/v1/responses", json!({"model": "gpt-5.4", "input": "hi"})).await;
    assert_eq!(resp.status(), 200);
    let r = gh.last_request().unwrap();
    assert_eq!((r.path.as_str(), r.header("x-initiator")), ("/responses", Some("user")));
    assert_eq!(r.header("copilot-vision-request"), None);

    // A later turn of an agent: reasoning with its encrypted content, the call and its output.
    let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [],
                           "encrypted_content": "gAAAAB-opaque"});
    let tool_turn = json!({"model": "gpt-5.4", "include": ["reasoning.encrypted_content"],
        "input": [
            {"role": "user", "content": "weather?"},
            reasoning,
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]});
    assert_eq!(post(&app, "/v1/responses", tool_turn).await.status(), 200);
    let r = gh.last_request().unwrap();
    assert_eq!(r.header("x-initiator"), Some("agent"));
    assert_eq!(r.body["input"][1], reasoning);

    let image = json!({"model": "gpt-5.4", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}]});
    assert_eq!(post(&app, "/v1/responses", image).await.status(), 200);
    let r = gh.last_request().unwrap();
    assert_eq!(r.header("copilot-vision-request"), Some("true"));
    assert_eq!(r.header("x-initiator"), Some("user"));
}

#[tokio::test]
async fn extra_headers_override_the_editor_identity() {
    let gh = MockGitHub::start().await;
    let yaml = "model_list:\n  - model_name: opus\n    litellm_params:\n      model: github_copilot/claude-opus-4.5\n      extra_headers:\n        Editor-Version: vscode/1.85.1\n";
    let app = copilot_app(&gh, yaml).await;
    gh.add_account("ghu_x", true);
    app.link_copilot("default", "ghu_x").await.unwrap();
    assert_eq!(post(&app, "/v1/chat/completions", chat("opus", "hi")).await.status(), 200);
    assert_eq!(gh.last_request().unwrap().header("editor-version"), Some("vscode/1.85.1"));
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_after_a_401() {
    let (gh, app, oauth) = linked().await;
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "one")).await.status(), 200);
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "two")).await.status(), 200);
    let exchanges = gh.exchange_count(&oauth);
    assert_eq!(exchanges, 1, "the Copilot token is cached");

    gh.expire_all_tokens();
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "three")).await.status(), 200);
    assert_eq!(gh.exchange_count(&oauth), exchanges + 1, "a 401 bought a new token");

    // A token that expires soon is replaced before it does.
    gh.set_expires_in(2);
    gh.set_refresh_in(1);
    gh.expire_all_tokens();
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "four")).await.status(), 200);
    let before = gh.exchange_count(&oauth);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "five")).await.status(), 200);
    assert_eq!(gh.exchange_count(&oauth), before + 1, "refreshed at refresh_in");
}

#[tokio::test]
async fn an_account_without_a_seat_says_so() {
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    gh.add_account("ghu_no_seat", false);
    app.link_copilot("default", "ghu_no_seat").await.unwrap();
    let err =
        openai_error(post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await, 403).await;
    assert!(err["message"].as_str().unwrap().contains("no Copilot seat"), "{err}");
}

#[tokio::test]
async fn a_key_holder_is_served_by_their_own_account() {
    let (gh, app, default_oauth) = linked().await;
    let created = crate::keys::admin(&app, "/key/generate", json!({"key_alias": "alice"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let hash = created["token"].as_str().unwrap().to_owned();
    gh.add_account("ghu_alice_own", true);
    app.link_copilot(&format!("key:{hash}"), "ghu_alice_own").await.unwrap();
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat("gpt-4o", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(gh.exchange_count("ghu_alice_own"), 1);
    assert_eq!(gh.exchange_count(&default_oauth), 0);
    // Everyone else still uses the shared account.
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "hi")).await.status(), 200);
    assert_eq!(gh.exchange_count(&default_oauth), 1);
}

#[tokio::test]
async fn a_regenerated_key_keeps_its_account_and_a_deleted_one_takes_it_along() {
    let (gh, app, default_oauth) = linked().await;
    let created = crate::keys::admin(&app, "/key/generate", json!({"key_alias": "bob"})).await;
    let old_hash = created["token"].as_str().unwrap().to_owned();
    gh.add_account("ghu_bob_own", true);
    app.link_copilot(&format!("key:{old_hash}"), "ghu_bob_own").await.unwrap();

    let fresh = crate::keys::admin(&app, "/key/regenerate", json!({"key": old_hash})).await;
    let new_key = fresh["key"].as_str().unwrap().to_owned();
    let new_hash = fresh["token"].as_str().unwrap().to_owned();
    assert_ne!(new_hash, old_hash);
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&new_key)
        .json(&chat("gpt-4o", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(gh.exchange_count("ghu_bob_own"), 1, "served by the key's own account");
    assert_eq!(gh.exchange_count(&default_oauth), 0);
    let store = app.store();
    let provider = tollgate_store::GITHUB_COPILOT_PROVIDER;
    let old_owner = format!("key:{old_hash}");
    let new_owner = format!("key:{new_hash}");
    assert!(store.get_credential(provider, &old_owner).await.unwrap().is_none());
    let moved = store.get_credential(provider, &new_owner).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&moved.ciphertext).contains("ghu_bob_own"));

    crate::keys::admin(&app, "/key/delete", json!({"keys": [new_key]})).await;
    assert!(store.get_credential(provider, &new_owner).await.unwrap().is_none());
}

#[tokio::test]
async fn models_embeddings_and_quota_come_from_the_account() {
    let (gh, app, _) = linked().await;
    let resp = client().get(app.url("/v1/models")).bearer_auth(MASTER).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    let ids: Vec<&str> =
        v["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"gpt-4o") && ids.contains(&"claude-sonnet-4.5"), "{ids:?}");
    // Each model says which of this gateway's endpoints serve it and what Copilot is spoken
    // to on: the responses-only models take every client API, translated to `/responses`.
    let model =
        |id: &str| v["data"].as_array().unwrap().iter().find(|m| m["id"] == id).unwrap().clone();
    let generation = json!(["/v1/chat/completions", "/v1/messages", "/v1/responses"]);
    assert_eq!(model("gpt-5.4")["supported_endpoints"], generation);
    assert_eq!(model("gpt-5.4")["upstream_endpoints"], json!(["/responses"]));
    assert_eq!(
        model("claude-sonnet-4.5")["upstream_endpoints"],
        json!(["/chat/completions", "/v1/messages"])
    );
    assert_eq!(model("text-embedding-3-small")["supported_endpoints"], json!(["/v1/embeddings"]));

    let resp =
        post(&app, "/v1/embeddings", json!({"model": "text-embedding-3-small", "input": "hi"}))
            .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(gh.last_request().unwrap().path, "/embeddings");

    let resp = client().get(app.url("/copilot/quota")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let q: Value = resp.json().await.unwrap();
    let account = &q["accounts"][0];
    assert_eq!(account["owner"], "default");
    assert!(account["premium_interactions"]["entitlement"].as_f64().is_some(), "{q}");
    assert!(account["reset_date"].is_string(), "{q}");
    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"tollgate_copilot_premium_remaining{account="default"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn claude_models_speak_anthropic_natively_and_record_premium_units() {
    let (gh, app, _) = linked().await;
    gh.set_messages_text("native hello");
    let body = json!({"model": "claude-opus-4.5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
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
    assert_eq!(v["content"][0]["text"], "native hello");
    let r = gh.last_request().unwrap();
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));

    // A GPT model through the same Anthropic route goes to /chat/completions, translated.
    gh.enqueue(ReplySpec::text("translated hello"));
    let body = json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "translated hello");
    assert_eq!(gh.last_request().unwrap().path, "/chat/completions");

    app.wait_for_spend_written(2, Duration::from_secs(5)).await;
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    let opus = logs.iter().find(|l| l.requested_model == "claude-opus-4.5").unwrap();
    assert_eq!(opus.premium_units, 3.0);
    assert_eq!(opus.cost, 0.0, "Copilot requests cost nothing unless priced");
    let gpt = logs.iter().find(|l| l.requested_model == "gpt-4o").unwrap();
    assert_eq!(gpt.premium_units, 0.0);
}

#[tokio::test]
async fn quota_exhaustion_falls_back_along_the_shared_copilot_chain() {
    let gh = MockGitHub::start().await;
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/copilot-fallbacks.yaml"
    ))
    .unwrap();
    let app = copilot_app(&gh, &yaml).await;
    gh.add_account("ghu_team", true);
    app.link_copilot("default", "ghu_team").await.unwrap();
    gh.enqueue_error(
        402,
        json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}}),
    );
    gh.enqueue(ReplySpec::text("included model here"));
    let resp =
        post(&app, "/v1/chat/completions", chat("github_copilot/claude-opus-4.6", "hi")).await;
    assert_eq!(resp.status(), 200);
    // The 402 says the account's premium requests are used up: Gemini (a premium model) is
    // passed over without asking, and the included GPT-5 mini answers.
    assert_eq!(resp.headers()["x-tollgate-served-model"], "github_copilot/gpt-5-mini");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    assert_eq!(
        resp.headers()["x-tollgate-attempted"],
        "github_copilot/claude-opus-4.6=quota_exceeded, \
         github_copilot/gemini-3-pro-preview=premium_quota, github_copilot/gpt-5-mini=answered"
    );
    // The catch-all route is a deployment of its own, with the same chain.
    gh.enqueue_error(
        402,
        json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}}),
    );
    gh.enqueue(ReplySpec::text("included again"));
    let resp = post(&app, "/v1/chat/completions", chat("some-other-name", "hi")).await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "github_copilot/gpt-5-mini");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    // A model Copilot does not support stays with Copilot's wording.
    gh.enqueue_error(400, json!({"error": {"message": "The requested model is not supported.", "code": "model_not_supported"}}));
    let resp = post(&app, "/v1/chat/completions", chat("github_copilot/gpt-5-mini", "hi")).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "The requested model is not supported.");
    assert_eq!(body["error"]["code"], "model_not_supported");
}

#[tokio::test]
async fn model_info_shows_what_copilots_catalog_says_of_limits_and_premium_requests() {
    let gh = MockGitHub::start().await;
    let yaml = "model_list:\n  - model_name: sonnet\n    litellm_params:\n      model: github_copilot/claude-sonnet-4.5\n  - model_name: small\n    litellm_params:\n      model: github_copilot/gpt-4o\n    model_info:\n      max_input_tokens: 1000\n";
    let app = copilot_app(&gh, yaml).await;
    let oauth = "ghu_default_account_token";
    gh.add_account(oauth, true);
    app.link_copilot("default", oauth).await.unwrap();
    let resp = client().get(app.url("/model/info")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    let find = |name: &str| {
        info["data"].as_array().unwrap().iter().find(|m| m["model_name"] == name).unwrap()["model_info"].clone()
    };
    let sonnet = find("sonnet");
    assert_eq!(sonnet["litellm_provider"], "github_copilot");
    assert_eq!(sonnet["max_input_tokens"], 128_000);
    assert_eq!(sonnet["max_output_tokens"], 16_000);
    assert_eq!(sonnet["premium_multiplier"], 1.0);
    assert_eq!(sonnet["input_cost_per_token"], 0.0);
    // What the entry says wins over the catalog.
    assert_eq!(find("small")["max_input_tokens"], 1000);
}
