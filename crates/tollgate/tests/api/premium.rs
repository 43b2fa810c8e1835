//! Copilot premium requests as a budget: keys, users and teams with `max_premium_requests`,
//! charged each request's premium units (its model's multiplier in Copilot's catalog), moved
//! down the fallback chain or refused when a model would take them past it.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::github_mock::{MockQuota, default_models};
use tollgate_testkit::{MockGitHub, TestApp};

use crate::copilot::copilot_app;
use crate::helpers::*;
use crate::keys::{admin, admin_get, call, new_key};

/// Opus at 10 premium requests a call, Sonnet at 1, GPT-4o included; Opus falls back to
/// Sonnet, then GPT-4o.
fn config(extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: claude-opus-4.5
    litellm_params: {{ model: github_copilot/claude-opus-4.5 }}
  - model_name: claude-sonnet-4.5
    litellm_params: {{ model: github_copilot/claude-sonnet-4.5 }}
  - model_name: gpt-4o
    litellm_params: {{ model: github_copilot/gpt-4o }}
router_settings:
  fallbacks: [{{"claude-opus-4.5": ["claude-sonnet-4.5", "gpt-4o"]}}]
{extra}"#
    )
}

/// The stand-in, with Opus at 10 premium requests a call.
async fn stand_in() -> MockGitHub {
    let gh = MockGitHub::start().await;
    let mut models = default_models();
    for m in &mut models {
        if m["id"] == "claude-opus-4.5" {
            m["billing"]["multiplier"] = json!(10.0);
        }
    }
    gh.set_models(models);
    gh
}

async fn linked(extra: &str) -> (MockGitHub, TestApp) {
    let gh = stand_in().await;
    let app = copilot_app(&gh, &config(extra)).await;
    gh.add_account("ghu_team_seat", true);
    app.link_copilot("default", "ghu_team_seat").await.unwrap();
    (gh, app)
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The models the stand-in was asked for, in order.
fn upstream_models(gh: &MockGitHub) -> Vec<String> {
    gh.requests().iter().filter_map(|r| r.body["model"].as_str().map(str::to_owned)).collect()
}

async fn key_info(app: &TestApp, key: &str) -> Value {
    let (status, v) = admin_get(app, &format!("/key/info?key={key}")).await;
    assert_eq!(status, 200, "{v}");
    v["info"].clone()
}

#[tokio::test]
async fn a_key_past_its_premium_budget_is_moved_down_the_chain_to_what_it_can_afford() {
    let (gh, app) = linked("").await;
    let key = new_key(&app, json!({"max_premium_requests": 20})).await;
    let info = key_info(&app, &key).await;
    assert_eq!(info["max_premium_requests"], 20.0);
    assert!(info["premium_budget_reset_at"].is_string(), "a month by default: {info}");

    for _ in 0..2 {
        let resp = call(&app, &key, "claude-opus-4.5").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-opus-4.5");
    }
    // 20 of 20 used: Opus (10) and Sonnet (1) would exceed it, GPT-4o is included.
    let resp = call(&app, &key, "claude-opus-4.5").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/gpt-4o");
    assert_eq!(
        header(&resp, "x-tollgate-attempted"),
        "claude-opus-4.5=premium_budget, claude-sonnet-4.5=premium_budget, gpt-4o=answered"
    );
    assert_eq!(header(&resp, "x-tollgate-attempts"), "1", "nothing was sent for the skipped");
    assert_eq!(upstream_models(&gh), ["claude-opus-4.5", "claude-opus-4.5", "gpt-4o"]);
    // An agent's turn with a tool result is not billed by Copilot: Opus still serves it.
    let tool_turn = json!({"model": "claude-opus-4.5", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]});
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&tool_turn)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-opus-4.5");

    app.wait_for_spend_written(4, Duration::from_secs(5)).await;
    assert_eq!(key_info(&app, &key).await["premium_spend"], 20.0);
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    let mut units: Vec<f64> = logs.iter().map(|l| l.premium_units).collect();
    units.sort_by(f64::total_cmp);
    assert_eq!(units, [0.0, 0.0, 10.0, 10.0]);
    let fallback = logs.iter().find(|l| l.served_model == "github_copilot/gpt-4o").unwrap();
    let attempts = fallback.attempts.as_array().unwrap();
    assert_eq!(attempts[0]["outcome"], "premium_budget");
    assert_eq!(attempts[0]["premium_units"], 10.0);
    assert_eq!(attempts[1]["premium_units"], 1.0);

    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            r#"from_group="claude-opus-4.5",to_group="claude-sonnet-4.5",reason="premium_budget""#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_refuse_a_request_past_the_budget_is_refused_in_the_callers_protocol() {
    let (gh, app) = linked("  premium_budget_exceeded: refuse\n").await;
    let key = new_key(&app, json!({"max_premium_requests": 10, "key_alias": "alice"})).await;
    assert_eq!(call(&app, &key, "claude-opus-4.5").await.status(), 200);

    let err = openai_error(call(&app, &key, "claude-opus-4.5").await, 400).await;
    assert_eq!(err["code"], "premium_budget_exceeded");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("key alice") && message.contains("10 of 10"), "{message}");

    // Claude Code sees Anthropic's error shape.
    let body = json!({"model": "claude-opus-4.5", "max_tokens": 50,
                      "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("invalid_request_error"))
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("Premium request budget"), "{v}");
    // An included model still serves the key.
    assert_eq!(call(&app, &key, "gpt-4o").await.status(), 200);
    assert_eq!(upstream_models(&gh), ["claude-opus-4.5", "gpt-4o"]);

    app.wait_for_spend_written(4, Duration::from_secs(5)).await;
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    let refused: Vec<_> = logs.iter().filter(|l| l.outcome == "refused").collect();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|l| l.premium_units == 0.0 && l.status == 400));
    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for api in ["chat_completions", "messages"] {
        let series =
            format!(r#"tollgate_refusals_total{{api="{api}",reason="premium_budget_exceeded"}} 1"#);
        assert!(metrics.contains(&series), "{series}\n{metrics}");
    }
}

#[tokio::test]
async fn a_users_and_a_teams_premium_budget_hold_across_their_keys() {
    let (_gh, app) = linked("").await;
    admin(&app, "/user/new", json!({"user_id": "bob", "max_premium_requests": 10})).await;
    admin(
        &app,
        "/team/new",
        json!({"team_id": "blue", "max_premium_requests": 12,
                                   "premium_budget_duration": "7d"}),
    )
    .await;
    let first = new_key(&app, json!({"user_id": "bob"})).await;
    let second = new_key(&app, json!({"user_id": "bob"})).await;
    let team_key = new_key(&app, json!({"team_id": "blue"})).await;

    // Bob's first key uses his 10; Sonnet on his second would exceed them, and Sonnet has no
    // fallbacks of its own: refused, naming the user.
    let resp = call(&app, &first, "claude-opus-4.5").await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-opus-4.5");
    let err = openai_error(call(&app, &second, "claude-sonnet-4.5").await, 400).await;
    assert!(err["message"].as_str().unwrap().contains("user bob"), "{err}");

    // The team's 12: one Opus (10), then two Sonnets (1 each), then no more Sonnet.
    assert_eq!(call(&app, &team_key, "claude-opus-4.5").await.status(), 200);
    assert_eq!(call(&app, &team_key, "claude-sonnet-4.5").await.status(), 200);
    assert_eq!(call(&app, &team_key, "claude-sonnet-4.5").await.status(), 200);
    let err = openai_error(call(&app, &team_key, "claude-sonnet-4.5").await, 400).await;
    assert!(err["message"].as_str().unwrap().contains("team blue"), "{err}");

    app.wait_for_spend_written(6, Duration::from_secs(5)).await;
    let (_, user) = admin_get(&app, "/user/info?user_id=bob").await;
    assert_eq!(user["user_info"]["premium_spend"], 10.0, "{user}");
    let (_, team) = admin_get(&app, "/team/info?team_id=blue").await;
    assert_eq!(team["team_info"]["premium_spend"], 12.0, "{team}");
    assert_eq!(team["team_info"]["premium_budget_duration"], "7d");

    // An admin's correction resets what was used.
    admin(&app, "/team/update", json!({"team_id": "blue", "premium_spend": 0})).await;
    assert_eq!(call(&app, &team_key, "claude-sonnet-4.5").await.status(), 200);
    // Bad values are named.
    let resp = post(&app, "/key/generate", json!({"max_premium_requests": -1})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "max_premium_requests");
    let resp = post(&app, "/key/generate", json!({"premium_budget_duration": "soon"})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "premium_budget_duration");
}

#[tokio::test]
async fn concurrent_requests_cannot_take_more_than_the_premium_budget_has_left() {
    let (gh, app) = linked("").await;
    gh.set_default(tollgate_testkit::ReplySpec::text("slow").delay_ms(300));
    let key = new_key(&app, json!({"max_premium_requests": 10})).await;
    let calls = (0..6).map(|_| call(&app, &key, "claude-opus-4.5"));
    let served: Vec<String> = futures_util::future::join_all(calls)
        .await
        .iter()
        .map(|r| header(r, "x-tollgate-served-model"))
        .collect();
    // One Opus fits the 10 while it is in flight; every other goes where the budget allows.
    let opus = served.iter().filter(|s| *s == "github_copilot/claude-opus-4.5").count();
    assert_eq!(opus, 1, "{served:?}");
    assert_eq!(upstream_models(&gh).iter().filter(|m| *m == "claude-opus-4.5").count(), 1);
}

fn quota_left(gh: &MockGitHub, remaining: f64) {
    gh.set_quota(MockQuota { premium_remaining: remaining, ..MockQuota::default() });
}

#[tokio::test]
async fn an_account_with_no_premium_requests_left_sends_none_and_serves_from_the_fallback() {
    let gh = MockGitHub::start().await;
    quota_left(&gh, 0.0);
    let app = copilot_app(&gh, &config("")).await;
    gh.add_account("ghu_spent_seat", true);
    app.link_copilot("default", "ghu_spent_seat").await.unwrap();

    for _ in 0..3 {
        let resp = post(&app, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/gpt-4o");
        assert_eq!(
            header(&resp, "x-tollgate-attempted"),
            "claude-opus-4.5=premium_quota, claude-sonnet-4.5=premium_quota, gpt-4o=answered"
        );
    }
    assert_eq!(upstream_models(&gh), ["gpt-4o", "gpt-4o", "gpt-4o"], "no premium request sent");
    // Without a fallback the caller is told, in its protocol, and nothing is sent.
    let resp = post(&app, "/v1/chat/completions", chat("claude-sonnet-4.5", "hi")).await;
    // 402 as Copilot's own, which clients do not retry.
    let err = openai_error(resp, 402).await;
    assert_eq!(err["code"], "premium_quota_exhausted");
    assert_eq!(upstream_models(&gh).len(), 3);
}

#[tokio::test]
async fn a_402_from_copilot_sends_the_next_premium_requests_to_fallbacks_at_once() {
    let (gh, app) = linked("").await;
    let quota_error = json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}});
    gh.enqueue_error(402, quota_error);
    let resp = post(&app, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-tollgate-attempted"),
        "claude-opus-4.5=quota_exceeded, claude-sonnet-4.5=premium_quota, gpt-4o=answered"
    );
    // The next request does not ask for Opus at all.
    let resp = post(&app, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/gpt-4o");
    assert_eq!(upstream_models(&gh), ["claude-opus-4.5", "gpt-4o", "gpt-4o"]);
}

#[tokio::test]
async fn the_reserve_keeps_the_last_premium_requests_for_admins() {
    let gh = stand_in().await;
    quota_left(&gh, 15.0);
    let app = copilot_app(&gh, &config("  copilot_premium_reserve: 10\n")).await;
    gh.add_account("ghu_team_seat", true);
    app.link_copilot("default", "ghu_team_seat").await.unwrap();
    let developer = new_key(&app, json!({"key_alias": "dev"})).await;
    let admin_key = new_key(&app, json!({"permissions": {"admin": true}})).await;

    // 15 left, 10 kept: Opus (10) is not for the developer, Sonnet (1) still is.
    let resp = call(&app, &developer, "claude-opus-4.5").await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-sonnet-4.5");
    // The admin may use the reserve: Opus answers (14 left, then 4).
    let resp = call(&app, &admin_key, "claude-opus-4.5").await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-opus-4.5");
    // Now below the reserve, the developer gets only included models.
    let resp = call(&app, &developer, "claude-opus-4.5").await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/gpt-4o");
    let resp = call(&app, &admin_key, "claude-sonnet-4.5").await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/claude-sonnet-4.5");
    assert_eq!(
        upstream_models(&gh),
        ["claude-sonnet-4.5", "claude-opus-4.5", "gpt-4o", "claude-sonnet-4.5"]
    );
}

#[tokio::test]
async fn a_402_on_one_replica_sends_the_others_premium_requests_to_fallbacks() {
    a_402_reaches_the_other_replica(tollgate_testkit::spawn::fast_options()).await;
}

#[tokio::test]
async fn a_402_reaches_a_replica_whose_every_poll_is_a_full_reload() {
    // Each poll of B's directory reloads everything, so the event reaches it only if a full
    // reload passes on the events it skips over.
    let options = tollgate_proxy::GatewayOptions {
        reconcile: Duration::from_millis(50),
        ..tollgate_testkit::spawn::fast_options()
    };
    a_402_reaches_the_other_replica(options).await;
}

async fn a_402_reaches_the_other_replica(b_options: tollgate_proxy::GatewayOptions) {
    let db = tollgate_testkit::TestDatabase::create().await.unwrap();
    let gh = MockGitHub::start().await;
    let (github, api) = (gh.github_url(), gh.api_url());
    // Replicas share the key that encrypts linked accounts.
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("TOLLGATE_SECRET_KEY", "replicas-share-this-secret-key"),
        ("TOLLGATE_GITHUB_URL", github.as_str()),
        ("TOLLGATE_GITHUB_API_URL", api.as_str()),
    ];
    let a = TestApp::spawn_with_database(&config(""), &env, &db.url).await.unwrap();
    let b = TestApp::spawn_with_database_and_options(&config(""), &env, &db.url, b_options)
        .await
        .unwrap();
    gh.add_account("ghu_shared_seat", true);
    a.link_copilot("default", "ghu_shared_seat").await.unwrap();
    // B serves Opus from the shared account once it has read it from the database.
    let mut status = 0;
    for _ in 0..50 {
        status =
            post(&b, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "B never served from the linked account");
    assert_eq!(upstream_models(&gh).last().map(String::as_str), Some("claude-opus-4.5"));

    let quota_error = json!({"error": {"message": "You have no quota", "code": "quota_exceeded"}});
    gh.enqueue_error(402, quota_error);
    let resp = post(&a, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await;
    assert_eq!(header(&resp, "x-tollgate-served-model"), "github_copilot/gpt-4o");
    let asked = upstream_models(&gh).len();

    // Within about two seconds B passes Opus over too, without asking Copilot.
    let started = std::time::Instant::now();
    let mut passed_over = false;
    while !passed_over && started.elapsed() < Duration::from_secs(3) {
        let resp = post(&b, "/v1/chat/completions", chat("claude-opus-4.5", "hi")).await;
        passed_over =
            header(&resp, "x-tollgate-attempted").starts_with("claude-opus-4.5=premium_quota");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(passed_over, "B still sends premium requests after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let after = upstream_models(&gh).split_off(asked);
    assert_eq!(after.last().map(String::as_str), Some("gpt-4o"), "{after:?}");
}

#[tokio::test]
async fn the_quota_view_shows_who_used_the_accounts_premium_requests_this_month() {
    let (_gh, app) = linked("").await;
    let alice = new_key(&app, json!({"user_id": "alice", "key_alias": "alice-laptop"})).await;
    let bob = new_key(&app, json!({"user_id": "bob"})).await;
    assert_eq!(call(&app, &alice, "claude-opus-4.5").await.status(), 200);
    assert_eq!(call(&app, &alice, "claude-sonnet-4.5").await.status(), 200);
    assert_eq!(call(&app, &bob, "claude-sonnet-4.5").await.status(), 200);
    assert_eq!(call(&app, &bob, "gpt-4o").await.status(), 200);
    app.wait_for_spend_written(4, Duration::from_secs(5)).await;

    let (status, v) = admin_get(&app, "/copilot/quota").await;
    assert_eq!(status, 200);
    let used = &v["accounts"][0]["premium_use"];
    assert_eq!(used["since"].as_str().unwrap().len(), 10, "{used}");
    assert!(used["since"].as_str().unwrap().ends_with("-01"), "{used}");
    let by_key = used["by_key"].as_array().unwrap();
    assert_eq!(by_key.len(), 2, "{used}");
    assert_eq!(
        (by_key[0]["key_alias"].as_str(), by_key[0]["premium_requests"].as_f64()),
        (Some("alice-laptop"), Some(11.0))
    );
    assert_eq!(
        (by_key[1]["user_id"].as_str(), by_key[1]["premium_requests"].as_f64()),
        (Some("bob"), Some(1.0))
    );
    assert!(!v.to_string().contains(&alice) && !v.to_string().contains(&bob), "no key is shown");
    let by_user = used["by_user"].as_array().unwrap();
    assert_eq!(by_user[0], json!({"user_id": "alice", "premium_requests": 11.0}));
    assert_eq!(by_user[1], json!({"user_id": "bob", "premium_requests": 1.0}));

    // A key that is not an admin sees its account's quota, not who used it.
    let resp = client().get(app.url("/copilot/quota")).bearer_auth(&bob).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert!(v["accounts"][0]["premium_interactions"].is_object(), "{v}");
    assert!(v["accounts"][0].get("premium_use").is_none(), "{v}");
}
