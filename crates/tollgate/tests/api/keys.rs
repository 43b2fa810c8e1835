//! Virtual keys through the management API, and what they allow on the request path.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, ReplySpec, TestApp};

use crate::helpers::*;

/// Prices make every "hi" → "one two" request cost exactly 4 × 0.001 + 2 × 0.002 = 0.008.
pub const PRICED: &str = r#"
  - model_name: priced
    litellm_params:
      model: openai/priced-model
      api_base: {base}
    model_info:
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
  - model_name: beta-model
    litellm_params:
      model: openai/beta-model
      api_base: {base}
    model_info:
      access_groups: [beta]
"#;

pub const COST: f64 = 0.008;

pub async fn keyed_setup(extra: &str) -> (MockOpenAi, TestApp) {
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two"));
    let models = PRICED.replace("{base}", &mock.base_url());
    // The priced entries continue the model list; `extra` follows with other sections.
    let yaml = config(&mock, &format!("{models}{extra}"));
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    (mock, app)
}

pub async fn admin(app: &TestApp, path: &str, body: Value) -> Value {
    let resp = post(app, path, body.clone()).await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path} {body} -> {status}: {v}");
    v
}

pub async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = client().get(app.url(path)).bearer_auth(MASTER).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

pub async fn new_key(app: &TestApp, body: Value) -> String {
    let v = admin(app, "/key/generate", body).await;
    v["key"].as_str().unwrap().to_owned()
}

pub async fn call(app: &TestApp, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat(model, "hi"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn key_lifecycle_through_the_api() {
    let (_mock, app) = keyed_setup("").await;
    let created =
        admin(&app, "/key/generate", json!({"key_alias": "ci", "metadata": {"team": "x"}})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() > 30);
    assert_eq!(created["key_alias"], "ci");
    let hash = created["token"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, key);

    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    app.wait_for_spend_written(1, Duration::from_secs(5)).await;

    let (status, info) = admin_get(&app, &format!("/key/info?key={key}")).await;
    assert_eq!(status, 200);
    assert_eq!(info["key"], hash);
    assert!((info["info"]["spend"].as_f64().unwrap() - COST).abs() < 1e-9, "{info}");
    assert!(info["info"].get("key").is_none(), "the key itself is never shown again");

    let updated = admin(
        &app,
        "/key/update",
        json!({"key": key, "key_alias": "renamed", "models": ["priced"]}),
    )
    .await;
    assert_eq!(updated["key_alias"], "renamed");
    let (_, list) = admin_get(&app, "/key/list").await;
    assert!(list["keys"].as_array().unwrap().contains(&json!(hash)), "{list}");
    let (_, full) = admin_get(&app, "/key/list?return_full_object=true&key_alias=renamed").await;
    assert_eq!(full["keys"][0]["token"], hash);

    admin(&app, "/key/block", json!({"key": hash})).await;
    let err = openai_error(call(&app, &key, "priced").await, 401).await;
    assert_eq!(err["code"], "key_blocked");
    admin(&app, "/key/unblock", json!({"key": key})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);

    let fresh = admin(&app, "/key/regenerate", json!({"key": key})).await;
    let new_key = fresh["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    openai_error(call(&app, &key, "priced").await, 401).await;
    assert_eq!(call(&app, &new_key, "priced").await.status(), 200);

    let deleted = admin(&app, "/key/delete", json!({"keys": [new_key]})).await;
    assert_eq!(deleted["deleted"], 1);
    openai_error(call(&app, &new_key, "priced").await, 401).await;
}

#[tokio::test]
async fn a_key_limited_to_one_model_is_refused_another() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"models": ["priced"]})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    let err = openai_error(call(&app, &key, "gpt-4o-mini").await, 403).await;
    assert_eq!(err["code"], "model_not_allowed");
    assert!(err["message"].as_str().unwrap().contains("gpt-4o-mini"));

    let grouped = new_key(&app, json!({"models": ["beta"]})).await;
    assert_eq!(call(&app, &grouped, "beta-model").await.status(), 200);
    openai_error(call(&app, &grouped, "priced").await, 403).await;
    let patterned = new_key(&app, json!({"models": ["mock/*"]})).await;
    assert_eq!(call(&app, &patterned, "mock/anything").await.status(), 200);
    openai_error(call(&app, &patterned, "priced").await, 403).await;
}

#[tokio::test]
async fn budgets_refuse_then_reset_after_their_duration() {
    let (_mock, app) = keyed_setup("").await;
    // 0.02 allows three requests of 0.008: the third starts with 0.016 spent.
    let key = new_key(&app, json!({"max_budget": 0.02, "budget_duration": "2s"})).await;
    for _ in 0..3 {
        assert_eq!(call(&app, &key, "priced").await.status(), 200);
    }
    let err = openai_error(call(&app, &key, "priced").await, 400).await;
    assert_eq!(err["code"], "budget_exceeded");
    assert!(err["message"].as_str().unwrap().contains("0.02"), "{err}");
    // The reset runs within a few hundred milliseconds of the period's end.
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if call(&app, &key, "priced").await.status() == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "budget never reset");
}

#[tokio::test]
async fn rpm_limit_answers_429_with_retry_after() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"rpm_limit": 2})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    let resp = call(&app, &key, "priced").await;
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let err = openai_error(resp, 429).await;
    assert!(err["message"].as_str().unwrap().contains("2 requests per minute"), "{err}");
}

#[tokio::test]
async fn tpm_limit_counts_tokens() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"tpm_limit": 5})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    let err = openai_error(call(&app, &key, "priced").await, 429).await;
    assert!(err["message"].as_str().unwrap().contains("tokens per minute"), "{err}");
}

#[tokio::test]
async fn parallel_limit_refuses_the_second_concurrent_request() {
    let (mock, app) = keyed_setup("").await;
    mock.enqueue(ReplySpec::text("slow one").delay_ms(700));
    let key = new_key(&app, json!({"max_parallel_requests": 1})).await;
    let first = {
        let app_url = app.url("/v1/chat/completions");
        let key = key.clone();
        tokio::spawn(async move {
            client()
                .post(app_url)
                .bearer_auth(key)
                .json(&chat("priced", "hi"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let err = openai_error(call(&app, &key, "priced").await, 429).await;
    assert_eq!(err["code"], "parallel_limit_exceeded");
    assert_eq!(first.await.unwrap(), 200);
    // The slot is free again.
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"duration": "1s"})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = openai_error(call(&app, &key, "priced").await, 401).await;
    assert_eq!(err["code"], "key_expired");
}

#[tokio::test]
async fn user_and_team_budgets_apply_to_their_keys() {
    let (_mock, app) = keyed_setup("").await;
    let user = admin(&app, "/user/new", json!({"user_id": "alice", "max_budget": 0.01})).await;
    let alice_key = user["key"].as_str().unwrap().to_owned();
    let second_key = new_key(&app, json!({"user_id": "alice"})).await;
    assert_eq!(call(&app, &alice_key, "priced").await.status(), 200);
    app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    // The user's budget covers all their keys.
    assert_eq!(call(&app, &second_key, "priced").await.status(), 200);
    let err = openai_error(call(&app, &alice_key, "priced").await, 400).await;
    assert!(err["message"].as_str().unwrap().contains("user alice"), "{err}");
    let (_, info) = admin_get(&app, "/user/info?user_id=alice").await;
    assert_eq!(info["keys"].as_array().unwrap().len(), 2);

    admin(&app, "/team/new", json!({"team_id": "blue", "team_alias": "Blue", "max_budget": 0.005}))
        .await;
    let team_key = new_key(&app, json!({"team_id": "blue"})).await;
    assert_eq!(call(&app, &team_key, "priced").await.status(), 200);
    let err = openai_error(call(&app, &team_key, "priced").await, 400).await;
    assert!(err["message"].as_str().unwrap().contains("team Blue"), "{err}");

    admin(&app, "/team/new", json!({"team_id": "red"})).await;
    let red_key = new_key(&app, json!({"team_id": "red"})).await;
    admin(&app, "/team/block", json!({"team_id": "red"})).await;
    let err = openai_error(call(&app, &red_key, "priced").await, 401).await;
    assert_eq!(err["code"], "team_blocked");
    admin(
        &app,
        "/team/member_add",
        json!({"team_id": "red", "member": {"role": "user", "user_id": "bob"}}),
    )
    .await;
    let (_, team) = admin_get(&app, "/team/info?team_id=red").await;
    assert_eq!(team["team_info"]["members_with_roles"][0]["user_id"], "bob");
    assert_eq!(team["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn management_needs_admin_rights() {
    let (_mock, app) = keyed_setup("").await;
    let plain = new_key(&app, json!({})).await;
    let resp = client()
        .post(app.url("/key/generate"))
        .bearer_auth(&plain)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai_error(resp, 403).await["code"], "not_admin");
    // A key may read itself.
    let resp = client().get(app.url("/key/info")).bearer_auth(&plain).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let admin_key = new_key(&app, json!({"permissions": {"admin": true}})).await;
    let resp = client()
        .post(app.url("/key/generate"))
        .bearer_auth(&admin_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client().post(app.url("/key/generate")).json(&json!({})).send().await.unwrap();
    openai_error(resp, 401).await;
    let resp = post(&app, "/key/generate", json!({"max_budget": -1})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "max_budget");
    let resp = post(&app, "/key/generate", json!({"budget_duration": "monthly"})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "budget_duration");
    let resp =
        post(&app, "/key/update", json!({"key": "sk-does-not-exist", "key_alias": "x"})).await;
    openai_error(resp, 404).await;
}

#[tokio::test]
async fn every_request_leaves_a_spend_record() {
    let (mock, app) = keyed_setup("general_settings:\n  store_prompts_in_spend_logs: true\n").await;
    let key = new_key(&app, json!({"key_alias": "logged"})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    mock.enqueue(ReplySpec::openai_error(500, "server_error", "boom"));
    assert_eq!(call(&app, &key, "priced").await.status(), 500);
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "priced", "messages": [{"role": "user", "content": "my key is sk-live-ABCDEFGHIJKLMNOPQRSTUV"}], "api_key": "sk-inline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.wait_for_spend_written(3, Duration::from_secs(5)).await, 3);

    let (status, logs) = admin_get(&app, &format!("/spend/logs?api_key={key}")).await;
    assert_eq!(status, 200);
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let failed = logs.iter().find(|r| r["status"] == 500).unwrap();
    assert_eq!(failed["outcome"], "upstream_failed");
    assert_eq!(failed["cost"], 0.0);
    let ok = logs
        .iter()
        .find(|r| r["status"] == 200 && r["request_body"]["messages"][0]["content"] == "hi")
        .unwrap();
    assert_eq!(ok["requested_model"], "priced");
    assert_eq!(ok["served_model"], "openai/priced-model");
    assert_eq!(ok["prompt_tokens"], 4);
    assert_eq!(ok["completion_tokens"], 2);
    assert!((ok["cost"].as_f64().unwrap() - COST).abs() < 1e-12);
    assert!(ok["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(ok["response_body"]["choices"][0]["message"]["content"], "one two");
    let redacted = logs.iter().find(|r| r["request_body"]["api_key"].is_string()).unwrap();
    assert_eq!(redacted["request_body"]["api_key"], "[REDACTED]");
    assert_eq!(redacted["request_body"]["messages"][0]["content"], "my key is [REDACTED]");

    let (_, daily) = admin_get(&app, &format!("/spend/daily?api_key={key}")).await;
    let rows = daily.as_array().unwrap();
    let requests: i64 = rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum();
    let failures: i64 = rows.iter().map(|r| r["failures"].as_i64().unwrap()).sum();
    assert_eq!((requests, failures), (3, 1));
}

#[tokio::test]
async fn prompts_are_not_kept_unless_asked() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    let (_, logs) = admin_get(&app, "/spend/logs").await;
    assert!(logs[0]["request_body"].is_null() && logs[0]["response_body"].is_null(), "{logs}");
}

#[tokio::test]
async fn refusals_appear_in_the_spend_logs() {
    let (_mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"rpm_limit": 1, "models": ["priced"]})).await;
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
    openai_error(call(&app, &key, "priced").await, 429).await;
    openai_error(call(&app, &key, "gpt-4o-mini").await, 403).await;
    let broke = new_key(&app, json!({"max_budget": 0.0})).await;
    openai_error(call(&app, &broke, "priced").await, 400).await;
    let blocked = new_key(&app, json!({})).await;
    admin(&app, "/key/block", json!({"key": blocked})).await;
    openai_error(call(&app, &blocked, "priced").await, 401).await;
    // An unknown key leaves no record (it has no owner); metrics and the log still see it.
    openai_error(call(&app, "sk-nobody-knows-this-key", "priced").await, 401).await;
    assert_eq!(app.wait_for_spend_written(5, Duration::from_secs(5)).await, 5);

    let (_, logs) = admin_get(&app, &format!("/spend/logs?api_key={key}")).await;
    let logs = logs.as_array().unwrap();
    let refused: Vec<(i64, &str, &str)> = logs
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| {
            assert_eq!(r["cost"], 0.0);
            assert_eq!(r["prompt_tokens"], 0);
            (
                r["status"].as_i64().unwrap(),
                r["requested_model"].as_str().unwrap(),
                r["attempts"][0]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(refused.len(), 2, "{logs:?}");
    assert!(refused.contains(&(429, "priced", "rate_limit_exceeded")), "{refused:?}");
    assert!(refused.contains(&(403, "gpt-4o-mini", "model_not_allowed")), "{refused:?}");
    let (_, logs) = admin_get(&app, &format!("/spend/logs?api_key={broke}")).await;
    assert_eq!(logs[0]["attempts"][0]["reason"], "budget_exceeded");
    let (_, logs) = admin_get(&app, &format!("/spend/logs?api_key={blocked}")).await;
    assert_eq!(
        (logs[0]["status"].as_i64(), logs[0]["outcome"].as_str()),
        (Some(401), Some("refused"))
    );
    assert_eq!(logs[0]["requested_model"], "priced");
    assert_eq!(logs[0]["attempts"][0]["reason"], "key_blocked");

    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for reason in [
        "rate_limit_exceeded",
        "model_not_allowed",
        "budget_exceeded",
        "key_blocked",
        "invalid_api_key",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with("tollgate_refusals_total")
                && l.contains(&format!("reason=\"{reason}\""))),
            "{reason} missing from\n{metrics}"
        );
    }
}

#[tokio::test]
async fn management_fields_and_bodies_are_bounded() {
    let (_mock, app) = keyed_setup("").await;
    let huge = "a".repeat(20 * 1024 * 1024);
    let resp = post(&app, "/key/generate", json!({"key_alias": huge})).await;
    let err = openai_error(resp, 413).await;
    assert_eq!(err["code"], "request_too_large");
    for (body, param) in [
        (json!({"key_alias": "a".repeat(257)}), "key_alias"),
        (json!({"models": ["ok", "m".repeat(300)]}), "models[1]"),
        (json!({"metadata": {"notes": "n".repeat(70 * 1024)}}), "metadata"),
        (json!({"models": vec!["m"; 1001]}), "models"),
    ] {
        let err = openai_error(post(&app, "/key/generate", body).await, 400).await;
        assert_eq!(
            (err["code"].as_str(), err["param"].as_str()),
            (Some("value_too_long"), Some(param))
        );
    }
    let err =
        openai_error(post(&app, "/user/new", json!({"user_id": "u".repeat(300)})).await, 400).await;
    assert_eq!(err["param"], "user_id");
    // Nothing was stored.
    let (_, keys) = admin_get(&app, "/key/list").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 0, "{keys}");
    // Ordinary values still fit, metadata included.
    new_key(&app, json!({"key_alias": "a".repeat(256), "metadata": {"notes": "n".repeat(1000)}}))
        .await;
}

#[tokio::test]
async fn bad_query_strings_are_answered_in_json() {
    let (_mock, app) = keyed_setup("").await;
    for path in
        ["/spend/logs?limit=lots", "/spend/daily?start_date=yesterday&limit=-1", "/key/list?page=x"]
    {
        let (status, body) = admin_get(&app, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
}
