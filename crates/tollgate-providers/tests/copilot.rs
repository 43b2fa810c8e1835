//! The Copilot clients (device flow, token manager, model catalog, quota, headers) against
//! the GitHub + Copilot stand-in from tollgate-testkit.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tollgate_config::Secret;
use tollgate_providers::{
    apply_extra_headers, build_http_client,
    copilot::{
        CopilotAccount, CopilotError, Initiator, ModelCatalog, TokenManager, copilot_headers,
        fetch_quota,
    },
    github::{COPILOT_CLIENT_ID, COPILOT_SCOPE, DeviceFlowClient, PollOutcome, next_interval},
};
use tollgate_testkit::{
    MockGitHub, ReplySpec,
    github_mock::{MockQuota, ScriptedPoll},
};

fn http() -> reqwest::Client {
    build_http_client().unwrap()
}

fn manager(github: &MockGitHub) -> TokenManager {
    TokenManager::new(http(), github.api_url())
}

/// An account with a seat, registered with the stand-in.
fn account(github: &MockGitHub, oauth: &str) -> CopilotAccount {
    github.add_account(oauth, true);
    CopilotAccount::new("default", oauth)
}

#[tokio::test]
async fn device_flow_pending_slow_down_and_authorized() {
    let github = MockGitHub::start().await;
    let flow = DeviceFlowClient::new(http(), github.github_url());
    let code = flow.start().await.unwrap();
    assert_eq!(code.interval, Duration::from_secs(1));
    assert_eq!(code.expires_in, Duration::from_secs(900));
    assert_eq!(Some(code.user_code.clone()), github.latest_user_code());
    assert_eq!(code.verification_uri, format!("{}/login/device", github.github_url()));
    let sent = &github.device_requests()[0];
    assert_eq!(sent.client_id.as_deref(), Some(COPILOT_CLIENT_ID));
    assert_eq!(sent.scope.as_deref(), Some(COPILOT_SCOPE));

    github.enforce_interval(true);
    let mut interval = code.interval;
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Pending);
    // Honouring the interval keeps the stand-in from asking us to slow down...
    tokio::time::sleep(interval).await;
    let outcome = flow.poll(&code.device_code).await.unwrap();
    assert_eq!(outcome, PollOutcome::Pending);
    interval = next_interval(interval, &outcome);
    assert_eq!(interval, Duration::from_secs(1));
    // ...and polling early is answered with slow_down, which adds 5 s for good.
    let outcome = flow.poll(&code.device_code).await.unwrap();
    assert_eq!(outcome, PollOutcome::SlowDown { interval: Some(Duration::from_secs(6)) });
    interval = next_interval(interval, &outcome);
    assert_eq!(interval, Duration::from_secs(6));
    let times = github.poll_times();
    assert!(times[1] - times[0] >= Duration::from_millis(900));

    github.enforce_interval(false);
    let oauth = github.approve(&code.user_code).unwrap();
    let outcome = flow.poll(&code.device_code).await.unwrap();
    assert_eq!(outcome, PollOutcome::Authorized { access_token: Secret::new(oauth) });
    assert!(outcome.is_final());
    assert_eq!(github.poll_count(), 4);
}

#[tokio::test]
async fn device_flow_scripted_outcomes_expired_and_denied() {
    let github = MockGitHub::start().await;
    let flow = DeviceFlowClient::new(http(), github.github_url());
    let code = flow.start().await.unwrap();
    github.enqueue_poll(ScriptedPoll::Pending);
    github.enqueue_poll(ScriptedPoll::SlowDown);
    github.enqueue_poll(ScriptedPoll::Expired);
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Pending);
    let slow = flow.poll(&code.device_code).await.unwrap();
    assert_eq!(next_interval(code.interval, &slow), code.interval + Duration::from_secs(5));
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Expired);

    let code = flow.start().await.unwrap();
    github.enqueue_poll(ScriptedPoll::Denied);
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Denied);
    let code = flow.start().await.unwrap();
    github.deny();
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Denied);
    let code = flow.start().await.unwrap();
    github.expire();
    assert_eq!(flow.poll(&code.device_code).await.unwrap(), PollOutcome::Expired);

    let unknown = flow.poll(&Secret::new("nope".to_owned())).await.unwrap_err();
    assert!(unknown.to_string().contains("incorrect_device_code"), "{unknown}");
}

#[tokio::test]
async fn exchanges_once_and_serves_from_cache() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_cache");
    let first = tokens.token(&account).await.unwrap();
    assert_eq!(first.api_base, github.copilot_api_url());
    assert_eq!(first.refresh_in, Duration::from_secs(1500));
    let second = tokens.token(&account).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(github.exchange_count("ghu_cache"), 1);

    let exchange = &github.github_requests()[0];
    assert_eq!(exchange.header("authorization"), Some("token ghu_cache"));
    assert_eq!(exchange.header("accept"), Some("application/json"));
    assert_eq!(exchange.header("editor-version"), Some("vscode/1.99.3"));
    assert_eq!(exchange.header("user-agent"), Some("GitHubCopilotChat/0.26.7"));
}

#[tokio::test]
async fn refreshes_ahead_of_expiry() {
    let github = MockGitHub::start().await;
    github.set_refresh_in(1);
    let tokens = manager(&github);
    let account = account(&github, "ghu_refresh");
    let first = tokens.token(&account).await.unwrap();
    tokens.token(&account).await.unwrap();
    assert_eq!(github.exchange_count("ghu_refresh"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refreshed = tokens.token(&account).await.unwrap();
    assert_eq!(github.exchange_count("ghu_refresh"), 2);
    assert_ne!(first.token, refreshed.token);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let github = MockGitHub::start().await;
    // Every token is due for refresh as soon as it arrives.
    github.set_refresh_in(0);
    let tokens = Arc::new(manager(&github));
    let account = account(&github, "ghu_flight");
    let stale = tokens.token(&account).await.unwrap();
    github.set_exchange_delay(Duration::from_millis(200));

    let calls = (0..20).map(|_| {
        let tokens = Arc::clone(&tokens);
        let account = account.clone();
        tokio::spawn(async move { tokens.token(&account).await.unwrap() })
    });
    let results = futures_util::future::join_all(calls).await;
    assert_eq!(github.exchange_count("ghu_flight"), 2);
    let fresh = results[0].as_ref().unwrap().clone();
    assert_ne!(fresh.token, stale.token);
    assert!(results.iter().all(|r| r.as_ref().unwrap().token == fresh.token));
}

#[tokio::test]
async fn invalidate_forces_a_new_exchange() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_inval");
    let first = tokens.token(&account).await.unwrap();
    tokens.invalidate(&account.id);
    let second = tokens.token(&account).await.unwrap();
    assert_eq!(github.exchange_count("ghu_inval"), 2);
    // A 401 on the already replaced token must not throw away the new one.
    assert!(!tokens.invalidate_token(&account.id, &first));
    assert_eq!(tokens.token(&account).await.unwrap(), second);
    assert!(tokens.invalidate_token(&account.id, &second));
    tokens.token(&account).await.unwrap();
    assert_eq!(github.exchange_count("ghu_inval"), 3);

    // A re-linked account (same id, new OAuth token) does not get the old account's token.
    let relinked = CopilotAccount::new("default", "ghu_other");
    github.add_account("ghu_other", true);
    tokens.token(&relinked).await.unwrap();
    assert_eq!(github.exchange_count("ghu_other"), 1);
}

#[tokio::test]
async fn exchange_errors_are_classified() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    github.add_account("ghu_noseat", false);
    let error = tokens.token(&CopilotAccount::new("a", "ghu_noseat")).await.unwrap_err();
    assert_eq!(error, CopilotError::NoSeat);
    assert_eq!(error.to_string(), "this GitHub account has no Copilot seat");

    let error = tokens.token(&CopilotAccount::new("b", "ghu_unknown")).await.unwrap_err();
    assert_eq!(error, CopilotError::OauthRevoked);

    let account = account(&github, "ghu_revoked");
    tokens.token(&account).await.unwrap();
    github.revoke("ghu_revoked");
    tokens.invalidate(&account.id);
    assert_eq!(tokens.token(&account).await.unwrap_err(), CopilotError::OauthRevoked);
    assert!(!format!("{:?}", tokens).contains("ghu_"));

    let unreachable = TokenManager::new(http(), "http://127.0.0.1:1".to_owned());
    let error = unreachable.token(&CopilotAccount::new("c", "ghu_x")).await.unwrap_err();
    assert!(matches!(error, CopilotError::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn model_catalog_fetches_caches_and_refreshes() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_models");
    let catalog = ModelCatalog::new(http());
    let token = tokens.token(&account).await.unwrap();
    let models = catalog.models(&token, &account.id).await.unwrap();
    assert_eq!(models.len(), 6);
    let sonnet = models.iter().find(|m| m.id == "claude-sonnet-4.5").unwrap();
    assert!(sonnet.supports_messages_api());
    assert_eq!(sonnet.premium_multiplier(), Some(1.0));
    assert_eq!(sonnet.context_window(), Some(144_000));
    let gpt = catalog.model(&token, &account.id, "gpt-4o").await.unwrap().unwrap();
    assert!(!gpt.supports_messages_api());
    assert_eq!(gpt.premium_multiplier(), Some(0.0));
    assert!(
        catalog
            .model(&token, &account.id, "text-embedding-3-small")
            .await
            .unwrap()
            .unwrap()
            .is_embeddings()
    );
    assert_eq!(github.request_count(), 1);

    let request = github.last_request().unwrap();
    assert_eq!(request.path, "/models");
    assert_eq!(request.header("copilot-integration-id"), Some("vscode-chat"));
    assert!(request.header("x-request-id").is_some());
    assert_eq!(request.header("x-initiator"), None);

    github.set_models(vec![tollgate_testkit::github_mock::copilot_model(
        "new",
        "OpenAI",
        0.0,
        &["/chat/completions"],
    )]);
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), 6);
    assert_eq!(catalog.refresh(&token, &account.id).await.unwrap()[0].id, "new");
    assert_eq!(github.request_count(), 2);

    // With a short TTL the next read fetches again.
    let short = ModelCatalog::new(http()).with_ttl(Duration::ZERO);
    short.models(&token, &account.id).await.unwrap();
    short.models(&token, &account.id).await.unwrap();
    assert_eq!(github.request_count(), 4);
}

#[tokio::test]
async fn models_for_renews_the_token_after_a_401() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_401");
    let catalog = ModelCatalog::new(http()).with_ttl(Duration::ZERO);
    catalog.models_for(&tokens, &account).await.unwrap();
    github.expire_all_tokens();
    let models = catalog.models_for(&tokens, &account).await.unwrap();
    assert_eq!(models.len(), 6);
    assert_eq!(github.exchange_count("ghu_401"), 2);
    let paths: Vec<_> = github.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/models", "/models", "/models"]);
}

#[tokio::test]
async fn quota_is_read_from_the_user_document() {
    let github = MockGitHub::start().await;
    github.add_account("ghu_quota", true);
    github.set_quota(MockQuota {
        plan: "business".into(),
        reset_date: "2031-01-01".into(),
        premium_entitlement: 300.0,
        premium_remaining: 120.0,
        premium_unlimited: false,
        overage_permitted: true,
    });
    let quota = fetch_quota(&http(), &github.api_url(), &Secret::new("ghu_quota".to_owned()))
        .await
        .unwrap();
    assert_eq!(quota.plan.as_deref(), Some("business"));
    assert_eq!(quota.reset_date.as_deref(), Some("2031-01-01"));
    let premium = quota.premium.unwrap();
    assert_eq!(
        (premium.entitlement, premium.remaining, premium.percent_remaining),
        (300.0, 120.0, 40.0)
    );
    assert!(premium.overage_permitted && !premium.unlimited);
    assert!(quota.chat.unwrap().unlimited);
    let revoked =
        fetch_quota(&http(), &github.api_url(), &Secret::new("ghu_nobody".to_owned())).await;
    assert_eq!(revoked.unwrap_err(), CopilotError::OauthRevoked);
}

#[tokio::test]
async fn copilot_headers_are_accepted_and_recorded() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_headers");
    let token = tokens.token(&account).await.unwrap();
    github.enqueue(ReplySpec::text("hello"));
    let mut headers = copilot_headers(&token, "req-42", Initiator::Agent, true);
    apply_extra_headers(
        &mut headers,
        &[("X-Initiator".to_owned(), Secret::new("user".to_owned()))],
    );
    let response = http()
        .post(format!("{}/chat/completions", token.api_base))
        .headers(headers)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded = github.last_request().unwrap();
    assert_eq!(
        recorded.header("authorization"),
        Some(format!("Bearer {}", token.token.expose()).as_str())
    );
    assert_eq!(recorded.header("editor-plugin-version"), Some("copilot-chat/0.26.7"));
    assert_eq!(recorded.header("openai-intent"), Some("conversation-panel"));
    assert_eq!(recorded.header("x-github-api-version"), Some("2025-04-01"));
    assert_eq!(recorded.header("x-request-id"), Some("req-42"));
    assert_eq!(recorded.header("copilot-vision-request"), Some("true"));
    // The config override won over the computed initiator.
    assert_eq!(recorded.header("x-initiator"), Some("user"));
    assert_eq!(recorded.headers.iter().filter(|(n, _)| n == "x-initiator").count(), 1);
}
