//! The Copilot clients (device flow, token manager, model catalog, quota, headers) against
//! the GitHub + Copilot stand-in from tollgate-testkit.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod catalog;
mod tokens;

use std::time::Duration;

use serde_json::json;
use tollgate_config::Secret;
use tollgate_providers::{
    apply_extra_headers, build_http_client,
    copilot::{
        CopilotAccount, CopilotError, Initiator, TokenManager, copilot_headers, fetch_quota,
    },
    github::{COPILOT_CLIENT_ID, COPILOT_SCOPE, DeviceFlowClient, PollOutcome, next_interval},
};
use tollgate_testkit::{
    MockGitHub, ReplySpec,
    github_mock::{MockQuota, ScriptedPoll},
};
pub(crate) fn http() -> reqwest::Client {
    build_http_client().unwrap()
}

pub(crate) fn manager(github: &MockGitHub) -> TokenManager {
    TokenManager::new(http(), github.api_url())
}

/// An account with a seat, registered with the stand-in.
pub(crate) fn account(github: &MockGitHub, oauth: &str) -> CopilotAccount {
    github.add_account(oauth, true);
    CopilotAccount::new("default", oauth)
}

/// Polls `done` every 10 ms for up to 5 s; whether it came true.
pub(crate) async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
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
