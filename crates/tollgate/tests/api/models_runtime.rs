//! Models at runtime: `/model/*`, `/credentials`, `/health/test_connection`, on SQLite and on
//! PostgreSQL, applied without a restart and in every process on one database.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, ReplySpec, TestApp, TestDatabase};

use crate::helpers::{MASTER, chat, client};

const SECRET: &str = "sk-runtime-secret-aaaa1111bbbb";
const CRED_ONE: &str = "sk-credential-one-cccc2222dddd";
const CRED_TWO: &str = "sk-credential-two-eeee3333ffff";
const CONFIG_SECRET: &str = "sk-config-secret-9999zzzz";

fn config(mock: &MockOpenAi) -> String {
    format!(
        "model_list:\n  - model_name: cfg-model\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: {CONFIG_SECRET}\n",
        mock.base_url()
    )
}

async fn spawn(mock: &MockOpenAi, db: Option<&TestDatabase>) -> TestApp {
    // Processes sharing a database share the key that seals its credentials.
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("TOLLGATE_SECRET_KEY", "a-shared-secret-key-for-the-test-1234"),
    ];
    match db {
        Some(db) => TestApp::spawn_with_database(&config(mock), &env, &db.url).await.unwrap(),
        None => TestApp::spawn_with_env(&config(mock), &env).await.unwrap(),
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = client().request(method, app.url(path)).bearer_auth(MASTER);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn admin(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, text) = send(app, reqwest::Method::POST, path, Some(body)).await;
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn get(app: &TestApp, path: &str) -> (Value, String) {
    let (status, text) = send(app, reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {text}");
    (serde_json::from_str(&text).unwrap(), text)
}

async fn ask(app: &TestApp, model: &str) -> u16 {
    client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&chat(model, "hi"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn assert_no_secret(text: &str) {
    for s in [SECRET, CRED_ONE, CRED_TWO, CONFIG_SECRET] {
        assert!(!text.contains(s), "a credential leaked: {s} in {text}");
        assert!(!text.contains(&s[..12]), "a credential's prefix leaked: {} in {text}", &s[..12]);
    }
}

fn bearer(mock: &MockOpenAi) -> String {
    mock.last_request().unwrap().header("authorization").unwrap_or_default().to_owned()
}

fn new_model(name: &str, base: &str) -> Value {
    json!({
        "model_name": name,
        "litellm_params": { "model": "openai/gpt-4o-mini", "api_base": base, "api_key": SECRET },
        "model_info": { "max_input_tokens": 128000, "mode": "chat" },
    })
}

async fn lifecycle(db: Option<&TestDatabase>) {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    let app = spawn(&a, db).await;
    assert_eq!(ask(&app, "rt-model").await, 404);

    // Added: served by the very next request, with its own key; stored encrypted.
    let created = admin(&app, "/model/new", new_model("rt-model", &a.base_url())).await;
    let id = created["model_info"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["model_info"]["db_model"], true);
    assert_eq!(created["litellm_params"]["api_key"], "<redacted>");
    assert_no_secret(&created.to_string());
    assert_eq!(ask(&app, "rt-model").await, 200);
    assert_eq!(bearer(&a), format!("Bearer {SECRET}"));
    let row = app.state.store().get_model(&id).await.unwrap().unwrap();
    assert_no_secret(&row.litellm_params.to_string());

    // Listed with config.yaml's, which is marked as such.
    let (info, text) = get(&app, "/model/info").await;
    assert_no_secret(&text);
    let data = info["data"].as_array().unwrap();
    let cfg = data.iter().find(|m| m["model_name"] == "cfg-model").unwrap();
    assert_eq!(cfg["model_info"]["db_model"], false);
    assert_eq!(cfg["litellm_params"]["api_key"], "<redacted>");
    let rt = data.iter().find(|m| m["model_name"] == "rt-model").unwrap();
    assert_eq!(rt["model_info"]["db_model"], true);
    assert_eq!(rt["model_info"]["max_input_tokens"], 128000);
    assert_eq!(rt["model_info"]["litellm_provider"], "openai");
    assert_eq!(rt["model_info"]["mode"], "chat");
    assert!(rt["model_info"]["input_cost_per_token"].as_f64().unwrap() > 0.0);
    let (one, _) = get(&app, &format!("/v1/model/info?litellm_model_id={id}")).await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    let (groups, text) = get(&app, "/model_group/info").await;
    assert_no_secret(&text);
    assert!(groups["data"].as_array().unwrap().iter().any(|g| g["model_group"] == "rt-model"));

    // Patched: the new api_base takes effect at once; the key is kept.
    let (status, text) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/model/{id}/update"),
        Some(json!({ "litellm_params": { "api_base": b.base_url() } })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret(&text);
    assert_eq!(ask(&app, "rt-model").await, 200);
    assert_eq!(b.request_count(), 1);
    assert_eq!(bearer(&b), format!("Bearer {SECRET}"));

    // Replaced through POST /model/update with the listing's `<redacted>`: the key stays.
    let mut back = rt.clone();
    back["litellm_params"]["api_base"] = json!(a.base_url());
    let updated = admin(&app, "/model/update", back).await;
    assert_eq!(updated["litellm_params"]["api_base"], a.base_url());
    let before = a.request_count();
    assert_eq!(ask(&app, "rt-model").await, 200);
    assert_eq!(a.request_count(), before + 1);
    assert_eq!(bearer(&a), format!("Bearer {SECRET}"));

    // A field set to null is cleared; bad values are refused, naming the key.
    let (status, text) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/model/{id}/update"),
        Some(json!({ "model_info": { "max_input_tokens": null } })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (one, _) = get(&app, &format!("/model/info?litellm_model_id={id}")).await;
    assert!(one["data"][0]["model_info"]["max_input_tokens"].is_null());
    let mut bad = new_model("bad", "ftp://nowhere");
    let (status, text) = send(&app, reqwest::Method::POST, "/model/new", Some(bad.clone())).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("litellm_params.api_base"), "{text}");
    assert_no_secret(&text);
    bad["litellm_params"]["api_base"] = json!(a.base_url());
    bad["litellm_params"]["frobnicate"] = json!(true);
    let (status, text) = send(&app, reqwest::Method::POST, "/model/new", Some(bad)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("frobnicate"), "{text}");
    // A new model has no stored value for `<redacted>` to keep, however deep; ids stay plain.
    let mut copied = new_model("copied", &a.base_url());
    copied["litellm_params"]["extra_headers"] = json!({"Authorization": "<redacted>"});
    let (status, text) = send(&app, reqwest::Method::POST, "/model/new", Some(copied)).await;
    assert_eq!(status, 400, "{text}");
    let mut odd = new_model("odd", &a.base_url());
    odd["model_info"]["id"] = json!("x/../../keys/abc");
    let (status, text) = send(&app, reqwest::Method::POST, "/model/new", Some(odd)).await;
    assert_eq!(status, 400, "{text}");
    // A credential of the wrong type is named, not quoted.
    let mut typed = new_model("typed", &a.base_url());
    typed["litellm_params"]["api_key"] = json!(98765432109_u64);
    let (status, text) = send(&app, reqwest::Method::POST, "/model/new", Some(typed)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("api_key") && !text.contains("98765432109"), "{text}");

    // Config models are the file's.
    let cfg_id = cfg["model_info"]["id"].as_str().unwrap();
    let (status, text) =
        send(&app, reqwest::Method::POST, "/model/delete", Some(json!({"id": cfg_id}))).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("config.yaml"), "{text}");
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/model/{cfg_id}/update"),
        Some(json!({"litellm_params": {"api_base": b.base_url()}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(ask(&app, "cfg-model").await, 200);

    // A stored model may join a config model's group.
    let joined = admin(&app, "/model/new", new_model("cfg-model", &b.base_url())).await;
    let (groups, _) = get(&app, "/model_group/info").await;
    let group = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["model_group"] == "cfg-model")
        .unwrap()
        .clone();
    assert_eq!(group["deployments"], 2, "{group}");
    assert_eq!(group["db_models"], 1, "{group}");
    let joined_id = joined["model_info"]["id"].as_str().unwrap();
    admin(&app, "/model/delete", json!({"id": joined_id})).await;

    // Deleted: the next request is a 404, the name existing nowhere else.
    admin(&app, "/model/delete", json!({"id": id})).await;
    assert_eq!(ask(&app, "rt-model").await, 404);
    let (status, _) =
        send(&app, reqwest::Method::POST, "/model/delete", Some(json!({"id": id}))).await;
    assert_eq!(status, 404);

    // Every change is audited with its actor, never with a secret.
    let (audit, text) = get(&app, "/audit/logs?object_type=model").await;
    assert_no_secret(&text);
    let actions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["object_id"] == id.as_str())
        .map(|r| (r["action"].as_str().unwrap(), r["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("delete", "master_key"),
            ("update", "master_key"),
            ("update", "master_key"),
            ("update", "master_key"),
            ("create", "master_key")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_added_changed_and_removed_at_runtime_on_sqlite() {
    lifecycle(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_added_changed_and_removed_at_runtime_on_postgres() {
    let db = TestDatabase::create().await.unwrap();
    lifecycle(Some(&db)).await;
}

async fn credentials(db: Option<&TestDatabase>) {
    let a = MockOpenAi::start().await;
    let app = spawn(&a, db).await;
    let created = admin(
        &app,
        "/credentials",
        json!({
            "credential_name": "shared-openai",
            "credential_values": { "api_key": CRED_ONE, "api_base": a.base_url() },
            "credential_info": { "description": "the team's OpenAI key" },
        }),
    )
    .await;
    assert_eq!(created["credential_values"]["api_key"], "<redacted>");
    // A secret must be a string: a number would be quoted back by the model's parser.
    let (status, text) = send(
        &app,
        reqwest::Method::POST,
        "/credentials",
        Some(json!({"credential_name": "numeric", "credential_values": {"api_key": 98765432109_u64}})),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("98765432109"), "{text}");
    assert_eq!(created["credential_values"]["api_base"], a.base_url());
    for name in ["cred-one", "cred-two"] {
        admin(
            &app,
            "/model/new",
            json!({
                "model_name": name,
                "litellm_params": { "model": "openai/gpt-4o-mini", "litellm_credential_name": "shared-openai" },
            }),
        )
        .await;
        assert_eq!(ask(&app, name).await, 200);
        assert_eq!(bearer(&a), format!("Bearer {CRED_ONE}"));
    }

    // Rotated once: both models use the new key from the next request on.
    let (status, text) = send(
        &app,
        reqwest::Method::PATCH,
        "/credentials/shared-openai",
        Some(json!({ "credential_values": { "api_key": CRED_TWO } })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_no_secret(&text);
    for name in ["cred-one", "cred-two"] {
        assert_eq!(ask(&app, name).await, 200);
        assert_eq!(bearer(&a), format!("Bearer {CRED_TWO}"));
    }
    let (listed, text) = get(&app, "/credentials").await;
    assert_no_secret(&text);
    assert_eq!(listed["credentials"][0]["credential_info"]["description"], "the team's OpenAI key");
    let (_, text) = get(&app, "/model/info").await;
    assert_no_secret(&text);

    // In use, it cannot go; once its models are gone, it can.
    let (status, text) =
        send(&app, reqwest::Method::DELETE, "/credentials/shared-openai", None).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("credential_in_use"), "{text}");
    let (info, _) = get(&app, "/model/info").await;
    for m in info["data"].as_array().unwrap().iter().filter(|m| m["model_info"]["db_model"] == true)
    {
        admin(&app, "/model/delete", json!({"id": m["model_info"]["id"]})).await;
    }
    let (status, text) =
        send(&app, reqwest::Method::DELETE, "/credentials/shared-openai", None).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = send(&app, reqwest::Method::GET, "/credentials/shared-openai", None).await;
    assert_eq!(status, 404);
    let (status, text) = send(
        &app,
        reqwest::Method::POST,
        "/model/new",
        Some(json!({"model_name": "x", "litellm_params": {"model": "openai/x", "litellm_credential_name": "shared-openai"}})),
    )
    .await;
    assert_eq!(status, 400, "{text}");

    let (audit, text) = get(&app, "/audit/logs?object_type=credential").await;
    assert_no_secret(&text);
    let actions: Vec<&str> =
        audit["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "update", "create"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_rotated_once_serves_every_model_using_it_on_sqlite() {
    credentials(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_rotated_once_serves_every_model_using_it_on_postgres() {
    let db = TestDatabase::create().await.unwrap();
    credentials(Some(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_started_before_its_model_was_deleted_completes() {
    let a = MockOpenAi::start().await;
    let app = spawn(&a, None).await;
    let created = admin(&app, "/model/new", new_model("slow", &a.base_url())).await;
    a.set_default(ReplySpec::text("finally").delay_ms(1500));
    let url = app.url("/v1/chat/completions");
    let in_flight = tokio::spawn(async move {
        client().post(url).bearer_auth(MASTER).json(&chat("slow", "hi")).send().await.unwrap()
    });
    for _ in 0..100 {
        if a.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.request_count(), 1, "the slow request never reached the upstream");
    admin(&app, "/model/delete", json!({"id": created["model_info"]["id"]})).await;
    assert_eq!(ask(&app, "slow").await, 404);
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "finally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_process_on_the_database_serves_a_change_within_two_seconds() {
    let db = TestDatabase::create().await.unwrap();
    let mock = MockOpenAi::start().await;
    let one = spawn(&mock, Some(&db)).await;
    let two = spawn(&mock, Some(&db)).await;
    let created = admin(&one, "/model/new", new_model("shared", &mock.base_url())).await;
    let seen = within(Duration::from_secs(2), || async { ask(&two, "shared").await == 200 }).await;
    assert!(seen, "the other process did not serve the new model within 2 s");
    admin(&one, "/model/delete", json!({"id": created["model_info"]["id"]})).await;
    let gone = within(Duration::from_secs(2), || async { ask(&two, "shared").await == 404 }).await;
    assert!(gone, "the other process still served the deleted model after 2 s");
}

async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_answers_success_or_the_providers_own_words_without_the_key() {
    let a = MockOpenAi::start().await;
    let app = spawn(&a, None).await;
    let params =
        json!({ "model": "openai/gpt-4o-mini", "api_base": a.base_url(), "api_key": SECRET });
    let ok =
        admin(&app, "/health/test_connection", json!({ "litellm_params": params, "mode": "chat" }))
            .await;
    assert_eq!(ok["status"], "success", "{ok}");
    assert_eq!(bearer(&a), format!("Bearer {SECRET}"));
    assert_eq!(a.last_request().unwrap().body["model"], "gpt-4o-mini");

    a.enqueue(ReplySpec::openai_error(
        401,
        "invalid_request_error",
        &format!("Incorrect API key provided: {}****bbbb.", &SECRET[..14]),
    ));
    let failed = admin(&app, "/health/test_connection", json!({ "litellm_params": params })).await;
    assert_eq!(failed["status"], "error", "{failed}");
    let text = failed.to_string();
    assert!(text.contains("Incorrect API key provided"), "{text}");
    assert!(text.contains("401"), "{text}");
    assert_no_secret(&text);
    // Nothing was saved.
    let (info, _) = get(&app, "/model/info").await;
    assert!(info["data"].as_array().unwrap().iter().all(|m| m["model_info"]["db_model"] == false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admin_manages_models() {
    let a = MockOpenAi::start().await;
    let app = spawn(&a, None).await;
    admin(&app, "/model/new", new_model("other", &a.base_url())).await;
    let key = admin(&app, "/key/generate", json!({"models": ["cfg-model"]})).await;
    let key = key["key"].as_str().unwrap();
    let resp = client()
        .post(app.url("/model/new"))
        .bearer_auth(key)
        .json(&new_model("mine", &a.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    for path in ["/credentials", "/audit/logs"] {
        let resp = client().get(app.url(path)).bearer_auth(key).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    // A key lists only the models it may use.
    let resp = client().get(app.url("/model/info")).bearer_auth(key).send().await.unwrap();
    let info: Value = resp.json().await.unwrap();
    let names: Vec<&str> = info["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cfg-model"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_models_fall_back_join_access_groups_and_charge_their_prices() {
    let a = MockOpenAi::start().await;
    let broken = MockOpenAi::start().await;
    broken.set_default(ReplySpec::openai_error(500, "server_error", "down"));
    let app = spawn(&a, None).await;
    admin(
        &app,
        "/model/new",
        json!({
            "model_name": "team-model",
            "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": broken.base_url(), "api_key": SECRET,
                "fallbacks": ["cfg-model"],
            },
            "model_info": {
                "access_groups": ["team-a"],
                "input_cost_per_token": 0.5, "output_cost_per_token": 1.0,
            },
        }),
    )
    .await;
    admin(
        &app,
        "/model/new",
        json!({
            "model_name": "priced",
            "litellm_params": { "model": "openai/gpt-4o-mini", "api_base": a.base_url(), "api_key": SECRET },
            "model_info": { "access_groups": ["team-a"], "input_cost_per_token": 0.5, "output_cost_per_token": 1.0 },
        }),
    )
    .await;
    let key = admin(&app, "/key/generate", json!({"models": ["team-a", "cfg-model"]})).await;
    let key = key["key"].as_str().unwrap().to_owned();
    let other = admin(&app, "/key/generate", json!({"models": ["cfg-model"]})).await;
    let other = other["key"].as_str().unwrap().to_owned();
    let call = |key: String, model: &'static str| {
        let url = app.url("/v1/chat/completions");
        async move { client().post(url).bearer_auth(key).json(&chat(model, "hi")).send().await.unwrap() }
    };

    // The stored model's fallback to a config model serves, and says so.
    let resp = call(key.clone(), "team-model").await;
    assert_eq!(resp.status(), 200);
    let attempted = resp.headers()["x-tollgate-attempted"].to_str().unwrap().to_owned();
    assert!(attempted.contains("team-model") && attempted.contains("cfg-model"), "{attempted}");
    assert!(broken.request_count() >= 1);

    // Access groups hold: the other key may not use the group's models.
    assert_eq!(call(other.clone(), "priced").await.status(), 403);
    // Prices from model_info: the mock answers with usage, charged at 0.5 / 1.0 per token.
    let resp = call(key.clone(), "priced").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let usage = &body["usage"];
    let expected = usage["prompt_tokens"].as_f64().unwrap() * 0.5
        + usage["completion_tokens"].as_f64().unwrap() * 1.0;
    assert!(expected > 0.0);
    app.wait_for_spend_written(3, Duration::from_secs(5)).await;
    let logs = app
        .state
        .store()
        .spend_logs(tollgate_store::SpendFilter { limit: 50, ..Default::default() })
        .await
        .unwrap();
    let priced = logs.iter().find(|r| r.requested_model == "priced" && r.status == 200).unwrap();
    assert!((priced.cost - expected).abs() < 1e-9, "{} vs {expected}", priced.cost);
}
