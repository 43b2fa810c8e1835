//! Black-box tests of the auth helper: the real router on port 0, an SQLite store in a temp
//! dir, and the GitHub stand-in from tollgate-testkit behind `TOLLGATE_GITHUB_URL`.

// Tests may unwrap and panic: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use serde_json::Value;
use support::*;
use tollgate_store::{EntityKind, KeyPatch, credential_id, key_credential_owner};
use tollgate_testkit::github_mock::ScriptedPoll;

#[tokio::test]
async fn the_page_shows_the_code_and_turns_linked_once_approved() {
    let h = spawn(None).await;
    let page = h.get("/github", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let code = page.user_code();
    assert_eq!(Some(code.clone()), h.github.latest_user_code());
    assert!(page.body.contains("Copy code &amp; open GitHub"));
    assert!(page.body.contains("Waiting for you to approve"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'nonce-") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    let start = h.store.latest_change().await.unwrap();

    let pending = h.status(&page).await;
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["user_code"], code.as_str());
    assert_eq!(pending["verification_uri"], format!("{}/login/device", h.github.github_url()));

    let token = h.github.approve(&code).unwrap();
    let linked = h.settled(&page).await;
    assert_eq!(linked["state"], "linked", "{linked}");
    // The stand-in has no `GET /user`: the login stays unknown.
    assert!(linked.get("login").is_none(), "{linked}");

    let stored = h.store.get_credential("github_copilot", "default").await.unwrap().unwrap();
    assert_ne!(stored.ciphertext, token.as_bytes());
    assert!(!stored.ciphertext.windows(token.len()).any(|w| w == token.as_bytes()));
    assert_eq!(h.secret_box.open_credential(&stored).unwrap(), token);
    let changes = h.store.changes_since(start, 100).await.unwrap();
    assert!(
        changes.iter().any(|c| c.kind == EntityKind::Credential
            && c.id == credential_id("github_copilot", "default")),
        "{changes:?}"
    );
    assert!(!page.body.contains(&token));

    // Coming back shows the link and offers another one.
    let again = h.get("/github", &[]).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("Linked (GitHub login unknown)"), "{}", again.body);
    assert!(again.body.contains("Link a different account"));
    assert_eq!(h.github.flow_count(), 1);
}

#[tokio::test]
async fn expired_and_denied_codes_are_shown() {
    let h = spawn(None).await;
    let first = h.get("/github", &[]).await;
    h.github.expire();
    let expired = h.settled(&first).await;
    assert_eq!(expired["state"], "expired", "{expired}");
    assert!(expired["message"].as_str().unwrap().contains("Start again"));

    // A finished flow is not reused: the next visit starts a new one.
    let second = h.get("/github", &[]).await;
    assert_ne!(second.user_code(), first.user_code());
    h.github.deny();
    let denied = h.settled(&second).await;
    assert_eq!(denied["state"], "denied", "{denied}");
    assert_eq!(h.github.device_requests().len(), 2);
    assert!(h.store.list_credentials("github_copilot").await.unwrap().is_empty());

    // Scripted outcomes take the same path.
    h.github.enqueue_poll(ScriptedPoll::Denied);
    let third = h.get("/github", &[]).await;
    assert_eq!(h.settled(&third).await["state"], "denied");

    let unknown = h.client.get(format!("{}/github/status?flow=nope", h.url)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["state"], "error");
}

#[tokio::test]
async fn slow_down_adds_five_seconds_between_polls() {
    let h = spawn(None).await;
    h.github.set_poll_interval(1);
    h.github.enqueue_poll(ScriptedPoll::SlowDown);
    let page = h.get("/github", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while h.github.poll_count() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let times = h.github.poll_times();
    assert!(times.len() >= 2, "{times:?}");
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_secs(6), "polled again after {gap:?}; 1 s interval + 5 s");
    assert_eq!(h.status(&page).await["state"], "pending");
    h.github.approve(&page.user_code()).unwrap();
    assert_eq!(h.settled(&page).await["state"], "linked");
}

#[tokio::test]
async fn starting_twice_reuses_the_pending_flow_and_its_poller() {
    let h = spawn(None).await;
    let (a, b) = tokio::join!(h.get("/github", &[]), h.get("/github", &[]));
    let c = h.get("/github", &[]).await;
    assert_eq!(a.user_code(), b.user_code());
    assert_eq!(a.user_code(), c.user_code());
    assert_eq!(a.status_url(), c.status_url());
    assert_eq!(h.github.device_requests().len(), 1);
    // One poller at a 1 s interval: about one poll a second, not two or three.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let polls = h.github.poll_count();
    assert!((2..=4).contains(&polls), "{polls} polls in 3.5 s");
}

#[tokio::test]
async fn the_shared_account_needs_the_admin() {
    let h = spawn(Some(MASTER)).await;
    let anonymous = h.get("/github", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("master key"), "{}", anonymous.body);
    let wrong = h.get("/github?key=sk-wrong", &[]).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("sk-wrong"));
    assert_eq!(h.github.device_requests().len(), 0);

    let admin = h.get(&format!("/github?key={MASTER}"), &[]).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(!admin.body.contains(MASTER));
    assert!(admin.body.contains("the shared Copilot account"));
    let cookie = admin.session_cookie().expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(MASTER));
    let pair = cookie.split(';').next().unwrap().to_owned();

    // The cookie alone, or the key as a bearer token, is the admin too.
    let by_cookie = h.get("/github", &[("cookie", &pair)]).await;
    assert_eq!(by_cookie.status, 200);
    assert_eq!(by_cookie.user_code(), admin.user_code());
    assert!(by_cookie.session_cookie().is_none());
    let bearer = format!("Bearer {MASTER}");
    let by_bearer = h.get("/github", &[("authorization", &bearer)]).await;
    assert_eq!(by_bearer.user_code(), admin.user_code());

    h.github.approve(&admin.user_code()).unwrap();
    assert_eq!(h.settled(&admin).await["state"], "linked");
    assert!(h.store.get_credential("github_copilot", "default").await.unwrap().is_some());
}

#[tokio::test]
async fn a_virtual_key_links_its_own_account() {
    let h = spawn(Some(MASTER)).await;
    let hash = h.create_key("sk-user-key-0001", false).await;
    let page = h.get("/github?key=sk-user-key-0001", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("key sk-...0001"), "{}", page.body);
    assert!(!page.body.contains("sk-user-key-0001"));
    let token = h.github.approve(&page.user_code()).unwrap();
    assert_eq!(h.settled(&page).await["state"], "linked");

    let owner = key_credential_owner(&hash);
    let stored = h.store.get_credential("github_copilot", &owner).await.unwrap().unwrap();
    assert_eq!(h.secret_box.open_credential(&stored).unwrap(), token);
    assert!(h.store.get_credential("github_copilot", "default").await.unwrap().is_none());

    // The key's holder does not reach the shared account's flow, and the admin's flow is
    // separate from the key's.
    let admin = h.get(&format!("/github?key={MASTER}"), &[]).await;
    assert_eq!(admin.status, 200);
    assert!(admin.body.contains("One-time code"), "the shared account is not linked yet");

    // Blocked, unknown: refused.
    h.create_key("sk-blocked-key-0002", true).await;
    assert_eq!(h.get("/github?key=sk-blocked-key-0002", &[]).await.status, 403);
    assert_eq!(h.get("/github?key=sk-unknown-key-0003", &[]).await.status, 401);
    // A key blocked after its session began loses the session too.
    let session = h.get("/github?key=sk-user-key-0001", &[]).await.session_cookie().unwrap();
    let pair = session.split(';').next().unwrap().to_owned();
    h.store
        .update_key(&hash, KeyPatch { blocked: Some(true), ..KeyPatch::default() })
        .await
        .unwrap();
    assert_eq!(h.get("/github", &[("cookie", &pair)]).await.status, 403);
}

#[tokio::test]
async fn linking_a_different_account_replaces_the_first() {
    let h = spawn(None).await;
    let first = h.get("/github", &[]).await;
    h.github.approve(&first.user_code()).unwrap();
    assert_eq!(h.settled(&first).await["state"], "linked");
    let before = h.store.get_credential("github_copilot", "default").await.unwrap().unwrap();

    let cross_site = h
        .client
        .post(format!("{}/github/relink", h.url))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);

    let relink = h
        .client
        .post(format!("{}/github/relink", h.url))
        .header("origin", &h.url)
        .send()
        .await
        .unwrap();
    assert_eq!(relink.status(), 303);
    assert_eq!(relink.headers()[LOCATION], "/github");
    let second = h.get("/github", &[]).await;
    assert_ne!(second.user_code(), first.user_code());
    let token = h.github.approve(&second.user_code()).unwrap();
    assert_eq!(h.settled(&second).await["state"], "linked");
    let after = h.store.get_credential("github_copilot", "default").await.unwrap().unwrap();
    assert_eq!(h.secret_box.open_credential(&after).unwrap(), token);
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(h.github.device_requests().len(), 2);
}
