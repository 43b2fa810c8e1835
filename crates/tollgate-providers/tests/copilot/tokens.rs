//! The token manager: exchange, cache, background refresh, invalidation.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tollgate_providers::copilot::{CopilotAccount, CopilotError, TokenManager, TokenStatus};
use tollgate_testkit::MockGitHub;

use super::{account, eventually, http, manager};

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
    // Due but valid for half an hour yet: served at once while one exchange replaces it.
    assert_eq!(tokens.token(&account).await.unwrap().token, first.token);
    let mut refreshed = None;
    for _ in 0..500 {
        let token = tokens.token(&account).await.unwrap();
        if token.token != first.token {
            refreshed = Some(token);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refreshed.is_some(), "the token was never replaced");
    assert_eq!(github.exchange_count("ghu_refresh"), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_background_refresh() {
    let github = MockGitHub::start().await;
    // Every token is due for refresh as soon as it arrives.
    github.set_refresh_in(0);
    let tokens = Arc::new(manager(&github));
    let account = account(&github, "ghu_flight");
    let due = tokens.token(&account).await.unwrap();
    github.set_exchange_delay(Duration::from_secs(1));

    let started = Instant::now();
    let calls = (0..20).map(|_| {
        let tokens = Arc::clone(&tokens);
        let account = account.clone();
        tokio::spawn(async move { tokens.token(&account).await.unwrap() })
    });
    let results = futures_util::future::join_all(calls).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "callers waited {took:?} for the exchange");
    assert!(results.iter().all(|r| r.as_ref().unwrap().token == due.token));
    // The exchange is under way (the stand-in counts it on arrival, then takes a second):
    // more callers meanwhile are served the due token and start no other exchange.
    assert!(eventually(|| github.exchange_count("ghu_flight") == 2).await);
    for _ in 0..50 {
        assert_eq!(tokens.token(&account).await.unwrap().token, due.token);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(github.exchange_count("ghu_flight"), 2, "one refresher at a time");
    let mut fresh = None;
    for _ in 0..300 {
        let token = tokens.token(&account).await.unwrap();
        if token.token != due.token {
            fresh = Some(token);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fresh.is_some(), "the refresh never landed");
}

#[tokio::test]
async fn concurrent_callers_without_a_token_wait_on_one_exchange() {
    let github = MockGitHub::start().await;
    let tokens = Arc::new(manager(&github));
    let account = account(&github, "ghu_cold");
    github.set_exchange_delay(Duration::from_millis(200));
    let calls = (0..20).map(|_| {
        let tokens = Arc::clone(&tokens);
        let account = account.clone();
        tokio::spawn(async move { tokens.token(&account).await.unwrap() })
    });
    let results = futures_util::future::join_all(calls).await;
    assert_eq!(github.exchange_count("ghu_cold"), 1);
    let first = results[0].as_ref().unwrap().clone();
    assert!(results.iter().all(|r| r.as_ref().unwrap().token == first.token));
}

#[tokio::test]
async fn a_refused_background_refresh_stops_the_token_serving() {
    let github = MockGitHub::start().await;
    github.set_refresh_in(0);
    let tokens = manager(&github);
    let account = account(&github, "ghu_gone");
    tokens.token(&account).await.unwrap();
    github.revoke("ghu_gone");
    // Still valid, so served while the refresh runs; the refresh learns of the revocation.
    tokens.token(&account).await.unwrap();
    assert!(eventually(|| github.exchange_count("ghu_gone") == 2).await);
    let mut error = None;
    for _ in 0..500 {
        if let Err(e) = tokens.token(&account).await {
            error = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(error, Some(CopilotError::OauthRevoked));
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
async fn status_tells_validity_and_the_last_failure_until_a_success() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_status");
    assert_eq!(tokens.status(&account.id), TokenStatus::default(), "not exchanged yet");

    github.enqueue_exchange_error(503);
    let error = tokens.token(&account).await.unwrap_err();
    let status = tokens.status(&account.id);
    assert_eq!(status.valid_until, None);
    let failure = status.last_error.expect("the failure is kept");
    assert_eq!(failure.error, error);
    assert!(matches!(failure.error, CopilotError::Upstream { status: 503, .. }), "{error:?}");
    assert!(failure.at <= SystemTime::now());

    // A success clears it and tells until when the token is good (the stand-in's 1800 s).
    let before = SystemTime::now();
    tokens.token(&account).await.unwrap();
    let status = tokens.status(&account.id);
    assert_eq!(status.last_error, None);
    let until = status.valid_until.expect("a token is held");
    let lifetime = until.duration_since(before).unwrap();
    assert!((1795..=1801).contains(&lifetime.as_secs()), "{lifetime:?}");
}

#[tokio::test]
async fn a_failed_background_refresh_is_reported_beside_the_token_still_served() {
    let github = MockGitHub::start().await;
    github.set_refresh_in(0);
    let tokens = manager(&github);
    let account = account(&github, "ghu_flaky");
    tokens.token(&account).await.unwrap();
    github.enqueue_exchange_error(502);
    // Due at once: served while the background refresh runs into the 502.
    tokens.token(&account).await.unwrap();
    assert!(eventually(|| tokens.status(&account.id).last_error.is_some()).await);
    let status = tokens.status(&account.id);
    assert!(status.valid_until.is_some_and(|t| t > SystemTime::now()), "{status:?}");
    let shown = status.last_error.unwrap().error.to_string();
    assert!(shown.contains("HTTP 502") && !shown.contains("ghu_"), "{shown}");

    // A re-link starts afresh: no token, no failure of the old link.
    tokens.invalidate(&account.id);
    assert_eq!(tokens.status(&account.id), TokenStatus::default());
}

#[tokio::test]
async fn a_refused_exchange_leaves_no_token_and_says_why() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    github.add_account("ghu_seatless", false);
    let account = CopilotAccount::new("key:abc", "ghu_seatless");
    tokens.token(&account).await.unwrap_err();
    let status = tokens.status("key:abc");
    assert_eq!(status.valid_until, None);
    assert_eq!(status.last_error.map(|f| f.error), Some(CopilotError::NoSeat));
    assert_eq!(tokens.status("default"), TokenStatus::default(), "per account");
}
