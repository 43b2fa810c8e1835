//! The shared Copilot account under load: requests on one account are in flight together,
//! and renewing its token or catalog never makes them wait while a usable one is cached.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tollgate_testkit::{ReplySpec, TestApp};

use crate::copilot::linked;
use crate::helpers::*;

/// How long the stand-in takes to renew a token or a catalog in these tests; a request that
/// waited for it takes at least this long.
const SLOW: Duration = Duration::from_secs(5);

/// `n` concurrent chat requests; returns how long they took together.
async fn burst(app: &TestApp, n: usize) -> Duration {
    let started = Instant::now();
    let calls = (0..n).map(|i| post(app, "/v1/chat/completions", chat("gpt-4o", &format!("n{i}"))));
    for response in join_all(calls).await {
        assert_eq!(response.status(), 200);
    }
    started.elapsed()
}

#[tokio::test]
async fn requests_stay_in_flight_together_while_the_token_refreshes() {
    const N: usize = 20;
    const HOLD: Duration = Duration::from_millis(300);
    let (gh, app, oauth) = linked().await;
    // Tokens from now on are due for refresh after a second (and valid for 30 minutes).
    gh.set_refresh_in(1);
    gh.expire_all_tokens();
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "warm")).await.status(), 200);
    let exchanges = gh.exchange_count(&oauth);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    gh.set_exchange_delay(SLOW);
    gh.set_default(ReplySpec::text("held").delay_ms(HOLD.as_millis() as u64));

    let took = burst(&app, N).await;
    eprintln!("{N} requests held {HOLD:?} each took {took:?}; peak {}", gh.peak_concurrency());
    assert_eq!(gh.peak_concurrency(), N, "every request reached the upstream at once");
    assert!(took < SLOW / 2, "{N} requests of {HOLD:?} took {took:?}");
    // One refresher, in the background: the exchange count rises by exactly one.
    let deadline = Instant::now() + Duration::from_secs(2);
    while gh.exchange_count(&oauth) == exchanges && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gh.exchange_count(&oauth), exchanges + 1);
}

#[tokio::test]
async fn a_slow_catalog_refresh_does_not_hold_up_requests() {
    let (gh, app, _) = linked().await;
    assert_eq!(post(&app, "/v1/chat/completions", chat("gpt-4o", "warm")).await.status(), 200);
    let models_calls = || gh.requests().iter().filter(|r| r.path == "/models").count();
    let before = models_calls();
    gh.set_models_delay(SLOW);
    let copilot = app.state.providers().copilot().clone();
    let account = copilot.account_for(None).unwrap();
    let token = copilot.tokens.token(&account).await.unwrap();
    let refresh = tokio::spawn(async move { copilot.models.refresh(&token, &account.id).await });
    for _ in 0..200 {
        if models_calls() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(models_calls(), before + 1, "the refresh is under way");
    let took = burst(&app, 5).await;
    eprintln!("5 requests during a {SLOW:?} catalog refresh took {took:?}");
    assert!(took < SLOW / 2, "requests waited {took:?} for the catalog");
    assert!(refresh.await.unwrap().is_ok());
}
