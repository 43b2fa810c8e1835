//! The admin console over HTTP: sign-in, sessions, CSRF, roles, and each page's forms going
//! through the same operations as the management API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tollgate_store::SpendRecord;
use tollgate_testkit::{MockOpenAi, TestApp, spend_record};

const MASTER: &str = "sk-console-master-key";
const UI_PASSWORD: &str = "a console password";

#[path = "console/lists.rs"]
mod lists;
#[path = "console/mcp.rs"]
mod mcp;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn app_with(env: &[(&str, &str)], mock: &MockOpenAi) -> TestApp {
    let yaml = format!(
        "model_list:\n  - model_name: cfg-model\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: sk-upstream\n",
        mock.base_url()
    );
    TestApp::spawn_with_env(&yaml, env).await.unwrap()
}

async fn app(mock: &MockOpenAi) -> TestApp {
    app_with(
        &[("TOLLGATE_MASTER_KEY", MASTER), ("UI_USERNAME", "boss"), ("UI_PASSWORD", UI_PASSWORD)],
        mock,
    )
    .await
}

/// A signed-in browser: its cookie and the CSRF token of its session.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.bytes()
                    .map(|b| if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    })
                    .collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn sign_in_raw(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    client()
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("username", user), ("password", password), ("next", "/keys")]))
        .send()
        .await
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token");
    html[at + 19..].split('"').next().unwrap().to_owned()
}

impl<'a> Browser<'a> {
    async fn sign_in(app: &'a TestApp, user: &str, password: &str) -> Self {
        let resp = sign_in_raw(app, user, password).await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        assert_eq!(resp.headers()[LOCATION], "/ui/keys");
        let cookie = set.split(';').next().unwrap().to_owned();
        let mut b = Self { app, cookie, csrf: String::new() };
        let (status, html) = b.get("/ui/keys").await;
        assert_eq!(status, 200, "{html}");
        b.csrf = csrf_of(&html);
        b
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp =
            client().get(self.app.url(path)).header(COOKIE, &self.cookie).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let mut all = pairs.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(path, &form(&all)).await
    }

    async fn post_raw(&self, path: &str, body: &str) -> (u16, String, Option<String>) {
        let resp = client()
            .post(self.app.url(path))
            .header(COOKIE, &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let location = resp.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (resp.status().as_u16(), resp.text().await.unwrap(), location)
    }
}

async fn api(app: &TestApp, path: &str, body: Value) -> Value {
    let resp = client().post(app.url(path)).bearer_auth(MASTER).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn unauthenticated_visits_go_to_the_sign_in_page_and_back() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let resp = client().get(app.url("/ui/keys?alias=x")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/ui/login?next=/keys%3Falias%3Dx");
    let page = client().get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'nonce-") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    // A post without a session is refused, not redirected.
    let resp = client().post(app.url("/ui/keys")).body("csrf=x").send().await.unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn without_a_password_or_master_key_the_console_says_how_to_enable_it() {
    let mock = MockOpenAi::start().await;
    let app = app_with(&[], &mock).await;
    let page = client().get(app.url("/ui/login")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("not enabled") && page.contains("UI_PASSWORD"), "{page}");
    assert_eq!(sign_in_raw(&app, "admin", "").await.status(), 403);
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    for _ in 0..5 {
        let resp = sign_in_raw(&app, "boss", "wrong").await;
        assert_eq!(resp.status(), 401);
        assert!(resp.text().await.unwrap().contains("Wrong name or password"));
    }
    // Now even the right password waits.
    let resp = sign_in_raw(&app, "boss", UI_PASSWORD).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // The master key is another credential for the same admin name, and the name is throttled too.
    assert_eq!(sign_in_raw(&app, "boss", MASTER).await.status(), 429);
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_keys_are_shown_once() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (status, _, _) = b.post_raw("/ui/keys", &form(&[("key_alias", "no-token")])).await;
    assert_eq!(status, 403);
    let (status, _, _) =
        b.post_raw("/ui/keys", &form(&[("key_alias", "bad-token"), ("csrf", "0000")])).await;
    assert_eq!(status, 403);
    assert!(
        app.state.store().list_keys(Default::default()).await.unwrap().is_empty(),
        "nothing saved"
    );

    let (status, html, _) = b
        .post("/ui/keys", &[("key_alias", "ci-bot"), ("rpm_limit", "60"), ("models", "cfg-model")])
        .await;
    assert_eq!(status, 200, "{html}");
    let marker = "id=\"new-key-value\">";
    let at = html.find(marker).unwrap() + marker.len();
    let key = html[at..].split('<').next().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() > 20, "{key}");
    let keys = app.state.store().list_keys(Default::default()).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].limits.rpm_limit, Some(60));
    let hash = keys[0].token_hash.clone();
    // Never again.
    for path in ["/ui/keys".to_owned(), format!("/ui/keys/{hash}"), "/ui/audit".to_owned()] {
        let (status, html) = b.get(&path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains(&key), "{path} shows the key");
    }
    // It works, and its rpm is changed through the form, validated first.
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "cfg-model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, html, _) =
        b.post(&format!("/ui/keys/{hash}/update"), &[("rpm_limit", "lots")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a number"), "{html}");
    assert_eq!(app.state.store().get_key(&hash).await.unwrap().unwrap().limits.rpm_limit, Some(60));
    let (status, _, location) = b
        .post(&format!("/ui/keys/{hash}/update"), &[("rpm_limit", "5"), ("models", "cfg-model")])
        .await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with(&format!("/ui/keys/{hash}?done=")));
    assert_eq!(app.state.store().get_key(&hash).await.unwrap().unwrap().limits.rpm_limit, Some(5));
    // A premium-request budget, set and shown on the key's page; a bad one is refused.
    let premium = [("max_premium_requests", "20"), ("premium_budget_duration", "")];
    let (status, _, _) = b.post(&format!("/ui/keys/{hash}/update"), &premium).await;
    assert_eq!(status, 303);
    let stored = app.state.store().get_key(&hash).await.unwrap().unwrap();
    assert_eq!(stored.limits.max_premium_requests, Some(20.0));
    assert!(stored.premium_budget_reset_at.is_some(), "monthly by default");
    let (_, html) = b.get(&format!("/ui/keys/{hash}")).await;
    assert!(html.contains("id=\"key-premium\">0 of 20"), "{html}");
    let (status, html, _) =
        b.post(&format!("/ui/keys/{hash}/update"), &[("max_premium_requests", "many")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a number"), "{html}");
    // A bad period is refused next to its field, nothing half-saved.
    let (status, html, _) =
        b.post("/ui/keys", &[("key_alias", "half"), ("budget_duration", "monthly")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("budget_duration") || html.contains("period"), "{html}");
    assert_eq!(app.state.store().list_keys(Default::default()).await.unwrap().len(), 1);
    // Block, then regenerate: the old key stops working, the new one is shown once.
    let (status, _, _) = b.post(&format!("/ui/keys/{hash}/block"), &[]).await;
    assert_eq!(status, 303);
    assert!(app.state.store().get_key(&hash).await.unwrap().unwrap().blocked);
    let (status, html, _) = b.post(&format!("/ui/keys/{hash}/regenerate"), &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Key regenerated"));
    assert!(app.state.store().get_key(&hash).await.unwrap().is_none());
    // The audit log names the console's user.
    let audit = app.state.store().audit_logs(Default::default()).await.unwrap();
    assert!(audit.iter().all(|r| r.actor == "ui:ui_admin"), "{audit:?}");
    assert!(audit.iter().any(|r| r.action == "regenerate"));
}

#[tokio::test]
async fn users_see_only_their_own_keys_and_viewers_change_nothing() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "key_alias": "ann-key"})).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    let other = api(&app, "/key/generate", json!({"key_alias": "someone-else"})).await;
    let other_hash = other["token"].as_str().unwrap();

    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    let (_, html) = ann.get("/ui/keys").await;
    assert!(html.contains("ann-key") && !html.contains("someone-else"), "{html}");
    assert_eq!(ann.get(&format!("/ui/keys/{other_hash}")).await.0, 403);
    for path in ["/ui/audit", "/ui/settings", "/ui/models"] {
        assert_eq!(ann.get(path).await.0, 403, "{path}");
    }
    let (status, _, _) =
        ann.post("/ui/models", &[("model_name", "mine"), ("model", "openai/x")]).await;
    assert_eq!(status, 403);
    // Her own key she may create, and it is hers whatever the form says, without limits of
    // her choosing (hers as a user apply).
    let (status, _, _) = ann
        .post("/ui/keys", &[("key_alias", "ann-second"), ("user_id", "vic"), ("rpm_limit", "9")])
        .await;
    assert_eq!(status, 200);
    let hers = app
        .state
        .store()
        .list_keys(tollgate_store::KeyFilter { user_id: Some("ann".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(hers.len(), 2);
    assert!(hers.iter().all(|k| k.limits.rpm_limit.is_none()));
    // She may not lift a key's limits, nor unblock a key the admin blocked.
    let mine = &hers[0].token_hash;
    let (status, _, _) = ann.post(&format!("/ui/keys/{mine}/update"), &[("rpm_limit", "1")]).await;
    assert_eq!(status, 403);
    api(&app, "/key/block", json!({"key": mine})).await;
    let (status, _, _) = ann.post(&format!("/ui/keys/{mine}/unblock"), &[]).await;
    assert_eq!(status, 403);
    assert!(app.state.store().get_key(mine).await.unwrap().unwrap().blocked);
    // A new role needs a new sign-in: her session ends with the change.
    api(&app, "/user/update", json!({"user_id": "ann", "user_role": "internal_user_viewer"})).await;
    assert_eq!(ann.get("/ui/keys").await.0, 303);
    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    let (status, _, _) = ann.post("/ui/keys", &[("key_alias", "viewer-made")]).await;
    assert_eq!(status, 403, "an internal_user_viewer changes nothing");

    let vic = Browser::sign_in(&app, "vic", "vic's password").await;
    for path in ["/ui/", "/ui/keys", "/ui/models", "/ui/logs", "/ui/audit", "/ui/settings"] {
        assert_eq!(vic.get(path).await.0, 200, "{path}");
    }
    let (status, _, _) = vic.post("/ui/keys", &[("key_alias", "viewer-key")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = vic.post(&format!("/ui/keys/{other_hash}/delete"), &[]).await;
    assert_eq!(status, 403);
    assert!(app.state.store().get_key(other_hash).await.unwrap().is_some());
}

#[tokio::test]
async fn signing_out_ends_the_session_everywhere() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "admin", MASTER).await;
    let (status, _, location) = b.post("/ui/logout", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/ui/login"));
    // The same cookie, replayed, no longer opens anything: the session is gone from the store.
    let (status, _) = b.get("/ui/keys").await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn the_models_page_adds_tests_and_deletes_stored_models() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let fields = [
        ("model_name", "ui-model"),
        ("model", "openai/gpt-4o-mini"),
        ("api_base", &mock.base_url()),
        ("api_key", "sk-typed-in-the-console-1234"),
    ];
    let (status, html, _) = b.post("/ui/models/test", &fields).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Connection works"), "{html}");
    assert!(!html.contains("sk-typed-in-the-console-1234"));
    let (status, html, _) = b
        .post(
            "/ui/models",
            &[
                ("model_name", "ui-model"),
                ("model", "openai/gpt-4o-mini"),
                ("api_base", "ftp://nowhere"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(html.contains("http://"), "{html}");
    let (status, _, _) = b.post("/ui/models", &fields).await;
    assert_eq!(status, 303);
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&json!({"model": "ui-model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, html) = b.get("/ui/models").await;
    assert!(html.contains("ui-model") && html.contains("stored") && html.contains("config.yaml"));
    assert!(!html.contains("sk-typed-in-the-console-1234"));
    let id = app.state.store().list_models().await.unwrap()[0].model_id.clone();
    let (status, _, _) = b.post(&format!("/ui/models/{id}/delete"), &[]).await;
    assert_eq!(status, 303);
    assert!(app.state.store().list_models().await.unwrap().is_empty());
}

#[tokio::test]
async fn logs_dashboard_and_settings_show_what_happened() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let key = api(&app, "/key/generate", json!({"key_alias": "logged"})).await;
    for _ in 0..3 {
        let resp = client()
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key["key"].as_str().unwrap())
            .json(&json!({"model": "cfg-model", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    app.wait_for_spend_written(3, Duration::from_secs(5)).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (_, html) = b.get("/ui/logs").await;
    assert_eq!(html.matches("/ui/logs/").count(), 3, "{html}");
    assert!(html.contains("logged") && html.contains("cfg-model"));
    let id = app
        .state
        .store()
        .spend_logs(tollgate_store::SpendFilter { limit: 1, ..Default::default() })
        .await
        .unwrap()[0]
        .request_id
        .clone();
    let (status, html) = b.get(&format!("/ui/logs/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&id) && html.contains("Attempts"));
    let (_, html) = b.get("/ui/?range=24h").await;
    assert!(html.contains("id=\"total-requests\">3<"), "{html}");
    assert!(html.contains("<svg"));
    let (_, html) = b.get("/ui/settings").await;
    assert!(html.contains("master key") && !html.contains(MASTER) && !html.contains(UI_PASSWORD));
}

#[tokio::test]
async fn behind_a_path_prefix_and_tls_proxy_links_and_cookies_follow() {
    let mock = MockOpenAi::start().await;
    let app = app_with(
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("UI_PASSWORD", UI_PASSWORD),
            ("SERVER_ROOT_PATH", "/gw/"),
        ],
        &mock,
    )
    .await;
    let resp = client().get(app.url("/gw/ui/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/gw/ui/login?next=/keys");
    let resp = client()
        .post(app.url("/gw/ui/login"))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("username", "admin"), ("password", UI_PASSWORD)]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/gw/ui/");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.contains("Secure") && set.contains("Path=/gw/ui"), "{set}");
    // The API moved under the prefix too.
    let models = client().get(app.url("/gw/v1/models")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(models.status(), 200);
}

async fn api_get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = client().get(app.url(path)).bearer_auth(MASTER).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn users_are_created_edited_given_a_password_and_deleted_through_the_forms() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (status, html, location) = b
        .post(
            "/ui/users",
            &[
                ("user_id", "dora"),
                ("user_email", "dora@example.com"),
                ("user_role", "internal_user"),
                ("models", "cfg-model, other"),
                ("max_budget", "12.5"),
                ("budget_duration", "30d"),
                ("rpm_limit", "60"),
                ("tpm_limit", "1000"),
                ("max_parallel_requests", "2"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert!(location.unwrap().starts_with("/ui/users/dora?done="));
    // The JSON API sees the same user.
    let (status, info) = api_get(&app, "/user/info?user_id=dora").await;
    assert_eq!(status, 200);
    let u = &info["user_info"];
    assert_eq!(u["user_email"], "dora@example.com");
    assert_eq!(u["models"], json!(["cfg-model", "other"]));
    assert_eq!((u["max_budget"].clone(), u["rpm_limit"].clone()), (json!(12.5), json!(60)));
    assert_eq!(u["budget_duration"], "30d");
    let (_, html) = b.get("/ui/users").await;
    assert!(html.contains("/ui/users/dora") && html.contains("dora@example.com"), "{html}");

    // Her key shows on her page, linking to the key's page.
    let key = api(&app, "/key/generate", json!({"user_id": "dora", "key_alias": "dora-key"})).await;
    let (status, html) = b.get("/ui/users/dora").await;
    assert_eq!(status, 200);
    let hash = key["token"].as_str().unwrap();
    assert!(html.contains(&format!("/ui/keys/{hash}")) && html.contains("dora-key"), "{html}");

    // Edit: a bad number is shown next to its field and nothing is saved.
    let (status, html, _) = b
        .post("/ui/users/dora/update", &[("rpm_limit", "lots"), ("user_role", "proxy_admin")])
        .await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a number"), "{html}");
    let stored = app.state.store().get_user("dora").await.unwrap().unwrap();
    assert_eq!(
        (stored.limits.rpm_limit, stored.user_role.as_deref()),
        (Some(60), Some("internal_user"))
    );
    let (status, _, _) = b
        .post(
            "/ui/users/dora/update",
            &[("rpm_limit", "5"), ("max_budget", ""), ("user_role", "proxy_admin_viewer")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, info) = api_get(&app, "/user/info?user_id=dora").await;
    assert_eq!(info["user_info"]["rpm_limit"], 5);
    assert_eq!(info["user_info"]["max_budget"], Value::Null);
    assert_eq!(info["user_info"]["user_role"], "proxy_admin_viewer");

    // A password: too short is refused, a good one lets her sign in.
    let (status, html, _) = b.post("/ui/users/dora/password", &[("password", "short")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("at least 8"), "{html}");
    let (status, _, _) =
        b.post("/ui/users/dora/password", &[("password", "dora's password")]).await;
    assert_eq!(status, 303);
    let dora = Browser::sign_in(&app, "dora", "dora's password").await;
    assert_eq!(dora.get("/ui/users").await.0, 200, "a viewer sees users");
    let (status, _, _) = b.post("/ui/users/dora/clear_password", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(sign_in_raw(&app, "dora", "dora's password").await.status(), 401);

    // Delete: gone from the store and the API, her key stays without an owner.
    let (status, _, location) = b.post("/ui/users/dora/delete", &[]).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/ui/users?done="));
    assert_eq!(api_get(&app, "/user/info?user_id=dora").await.0, 404);
    assert!(app.state.store().get_key(hash).await.unwrap().is_some());
    let audit = app.state.store().audit_logs(Default::default()).await.unwrap();
    for action in ["create", "update", "set_password", "clear_password", "delete"] {
        assert!(
            audit
                .iter()
                .any(|r| r.object_type == "user" && r.action == action && r.actor == "ui:ui_admin"),
            "{action}: {audit:?}"
        );
    }
}

#[tokio::test]
async fn a_users_form_with_a_bad_field_saves_nothing() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    for (field, value, says) in [
        ("budget_duration", "monthly", "period"),
        ("max_budget", "-3", "non-negative"),
        ("user_role", "emperor", "must be one of"),
        ("password", "short", "at least 8"),
    ] {
        let (status, html, _) =
            b.post("/ui/users", &[("user_id", "half"), ("rpm_limit", "10"), (field, value)]).await;
        assert_eq!(status, 400, "{field}");
        assert!(html.contains(says), "{field}: {html}");
        assert!(app.state.store().get_user("half").await.unwrap().is_none(), "{field}");
        assert!(app.state.store().password_hash("half").await.unwrap().is_none());
    }
    let (status, html, _) =
        b.post("/ui/teams", &[("team_id", "half-team"), ("tpm_limit", "x")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a number"), "{html}");
    assert!(app.state.store().get_team("half-team").await.unwrap().is_none());
}

#[tokio::test]
async fn a_team_gets_members_limits_a_block_and_is_deleted_through_the_forms() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    api(&app, "/user/new", json!({"user_id": "eve", "auto_create_key": false})).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (status, html, location) = b
        .post(
            "/ui/teams",
            &[("team_id", "search"), ("team_alias", "Search"), ("max_budget", "100")],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert!(location.unwrap().starts_with("/ui/teams/search?done="));
    let (status, _, _) =
        b.post("/ui/teams/search/add_member", &[("user_id", "eve"), ("role", "admin")]).await;
    assert_eq!(status, 303);
    let (status, _, _) =
        b.post("/ui/teams/search/add_member", &[("user_id", "finn"), ("role", "user")]).await;
    assert_eq!(status, 303);
    let (status, html, _) =
        b.post("/ui/teams/search/add_member", &[("user_id", "gus"), ("role", "owner")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("must be `admin` or `user`"), "{html}");
    let (status, html) = b.get("/ui/teams/search").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("/ui/users/eve") && html.contains("/ui/users/finn") && !html.contains("gus")
    );
    // The JSON API sees the same team, and eve's record lists it.
    let (_, info) = api_get(&app, "/team/info?team_id=search").await;
    let members = info["team_info"]["members_with_roles"].as_array().unwrap().clone();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.contains(&json!({"user_id": "eve", "role": "admin"})));
    let (_, eve) = api_get(&app, "/user/info?user_id=eve").await;
    assert_eq!(eve["teams"], json!(["search"]));

    let (status, _, _) = b.post("/ui/teams/search/remove_member", &[("user_id", "finn")]).await;
    assert_eq!(status, 303);
    let (status, _, _) = b
        .post(
            "/ui/teams/search/update",
            &[("team_alias", "Search team"), ("rpm_limit", "30"), ("max_budget", "")],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = b.post("/ui/teams/search/block", &[]).await;
    assert_eq!(status, 303);
    let team = app.state.store().get_team("search").await.unwrap().unwrap();
    assert_eq!(
        team.members,
        vec![tollgate_store::TeamMember { user_id: "eve".into(), role: "admin".into() }]
    );
    assert_eq!((team.limits.rpm_limit, team.limits.max_budget), (Some(30), None));
    assert_eq!(team.team_alias.as_deref(), Some("Search team"));
    assert!(team.blocked);
    let (_, html) = b.get("/ui/teams").await;
    assert!(html.contains("Search team") && html.contains("blocked"), "{html}");
    let (status, _, _) = b.post("/ui/teams/search/unblock", &[]).await;
    assert_eq!(status, 303);
    assert!(!app.state.store().get_team("search").await.unwrap().unwrap().blocked);
    let (status, _, _) = b.post("/ui/teams/search/delete", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(api_get(&app, "/team/info?team_id=search").await.0, 404);
    let audit = app.state.store().audit_logs(Default::default()).await.unwrap();
    for action in ["create", "member_add", "member_delete", "update", "block", "unblock", "delete"]
    {
        assert!(audit.iter().any(|r| r.object_type == "team" && r.action == action), "{action}");
    }
}

#[tokio::test]
async fn viewers_see_users_and_teams_but_cannot_post_and_users_are_refused() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "auto_create_key": false})).await;
    api(&app, "/team/new", json!({"team_id": "ops"})).await;

    let vic = Browser::sign_in(&app, "vic", "vic's password").await;
    for path in ["/ui/users", "/ui/users/ann", "/ui/teams", "/ui/teams/ops"] {
        let (status, html) = vic.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("type=\"submit\">Create") && !html.contains("Delete"),
            "{path}: forms shown"
        );
    }
    let (_, html) = vic.get("/ui/").await;
    assert!(
        html.contains("/ui/users\"")
            && html.contains("/ui/teams\"")
            && html.contains("/ui/copilot\"")
    );
    let posts: [(&str, &[(&str, &str)]); 5] = [
        ("/ui/users", &[("user_id", "sneaky")]),
        ("/ui/users/ann/update", &[("rpm_limit", "1")]),
        ("/ui/users/ann/delete", &[]),
        ("/ui/teams", &[("team_id", "sneaky")]),
        ("/ui/teams/ops/add_member", &[("user_id", "vic"), ("role", "admin")]),
    ];
    for (path, fields) in posts {
        assert_eq!(vic.post(path, fields).await.0, 403, "{path}");
    }
    assert!(app.state.store().get_user("sneaky").await.unwrap().is_none());
    assert!(app.state.store().get_team("sneaky").await.unwrap().is_none());
    assert!(app.state.store().get_team("ops").await.unwrap().unwrap().members.is_empty());
    assert_eq!(app.state.store().get_user("ann").await.unwrap().unwrap().limits.rpm_limit, None);

    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    for path in ["/ui/users", "/ui/users/vic", "/ui/teams", "/ui/teams/ops"] {
        assert_eq!(ann.get(path).await.0, 403, "{path}");
    }
    assert_eq!(ann.post("/ui/users/vic/delete", &[]).await.0, 403);
    assert!(app.state.store().get_user("vic").await.unwrap().is_some());
    let (_, html) = ann.get("/ui/keys").await;
    assert!(!html.contains("/ui/users\"") && html.contains("/ui/copilot\""), "{html}");
}

/// The console with no config file (every model is Copilot's), pointed at the GitHub stand-in.
async fn copilot_console(gh: &tollgate_testkit::MockGitHub) -> TestApp {
    let (github, github_api) = (gh.github_url(), gh.api_url());
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("UI_PASSWORD", UI_PASSWORD),
        ("TOLLGATE_GITHUB_URL", github.as_str()),
        ("TOLLGATE_GITHUB_API_URL", github_api.as_str()),
    ];
    TestApp::spawn_with_env("", &env).await.unwrap()
}

/// A chat request through the proxy with the master key; its status.
async fn ask_copilot(app: &TestApp) -> u16 {
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// The row of the page's accounts table that serves `serves`.
fn row<'h>(html: &'h str, serves: &str) -> &'h str {
    let at = html.find(serves).unwrap_or_else(|| panic!("no row for {serves}: {html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

#[tokio::test]
async fn the_copilot_page_shows_each_tokens_validity_and_its_last_failed_exchange() {
    let gh = tollgate_testkit::MockGitHub::start().await;
    let app = copilot_console(&gh).await;
    // Every token is due for renewal at once, so each request renews it in the background.
    gh.set_refresh_in(0);
    // Linked, but the account has no Copilot seat: the exchange is refused.
    gh.add_account("ghu_shared_account", false);
    app.link_copilot("default", "ghu_shared_account").await.unwrap();
    let admin = Browser::sign_in(&app, "admin", UI_PASSWORD).await;
    let (status, html) = admin.get("/ui/copilot").await;
    assert_eq!(status, 200, "{html}");
    assert!(row(&html, "every key without its own").contains("not exchanged yet"), "{html}");

    assert_eq!(ask_copilot(&app).await, 403);
    let (_, html) = admin.get("/ui/copilot").await;
    let shared = row(&html, "every key without its own");
    assert!(shared.contains("Last refresh failed"), "{shared}");
    assert!(shared.contains("this GitHub account has no Copilot seat"), "{shared}");
    assert!(!shared.contains("not exchanged yet") && !shared.contains("valid until"), "{shared}");

    // With a seat the next exchange succeeds: the error is gone, the token's validity shown.
    gh.add_account("ghu_shared_account", true);
    assert_eq!(ask_copilot(&app).await, 200);
    let (_, html) = admin.get("/ui/copilot").await;
    let shared = row(&html, "every key without its own");
    assert!(shared.contains("valid until"), "{shared}");
    assert!(!shared.contains("Last refresh failed"), "{shared}");

    // GitHub struggles during a renewal: the token still serves, and the failure is shown
    // beside it with when it happened.
    gh.enqueue_exchange_error(503);
    assert_eq!(ask_copilot(&app).await, 200);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut shown = String::new();
    for _ in 0..100 {
        let (_, html) = admin.get("/ui/copilot").await;
        shown = row(&html, "every key without its own").to_owned();
        if shown.contains("Last refresh failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(shown.contains(&format!("Last refresh failed {today}")), "{shown}");
    assert!(shown.contains("GitHub Copilot answered HTTP 503"), "{shown}");
    assert!(shown.contains("valid until"), "{shown}");
    let (_, html) = admin.get("/ui/copilot").await;
    assert!(!html.contains("ghu_") && !html.contains("tid="), "no token is shown");
}

impl Browser<'_> {
    /// Posts the link form; answers the status page's path.
    async fn start_link(&self, pairs: &[(&str, &str)]) -> String {
        let (status, html, location) = self.post("/ui/copilot/link", pairs).await;
        assert_eq!(status, 303, "{html}");
        let location = location.unwrap();
        assert!(location.starts_with("/ui/copilot/link/"), "{location}");
        location
    }

    /// The status page at `path` once it no longer waits (10 s at most).
    async fn settled(&self, path: &str) -> String {
        for _ in 0..100 {
            let (status, html) = self.get(path).await;
            assert_eq!(status, 200, "{html}");
            if !html.contains("data-stage=\"pending\"") {
                return html;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the flow at {path} never finished");
    }
}

#[tokio::test]
async fn accounts_are_linked_from_the_console_by_whoever_may_link_them() {
    let gh = tollgate_testkit::MockGitHub::start().await;
    let app = copilot_console(&gh).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "key_alias": "ann-key"})).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    let other = api(&app, "/key/generate", json!({"key_alias": "someone-else"})).await;
    let other_hash = other["token"].as_str().unwrap().to_owned();
    let store = app.state.store();
    let hers = store
        .list_keys(tollgate_store::KeyFilter { user_id: Some("ann".into()), ..Default::default() })
        .await
        .unwrap();
    let her_hash = hers[0].token_hash.clone();
    let admin = Browser::sign_in(&app, "admin", UI_PASSWORD).await;
    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    let vic = Browser::sign_in(&app, "vic", "vic's password").await;

    // The admin links the shared account: a code to enter on GitHub, a page that looks again.
    let (_, html) = admin.get("/ui/copilot").await;
    assert!(html.contains("id=\"link-form\"") && html.contains("id=\"link-page\""), "{html}");
    let flow = admin.start_link(&[("target", "default")]).await;
    let (status, html) = admin.get(&flow).await;
    assert_eq!(status, 200, "{html}");
    let code = gh.latest_user_code().unwrap();
    assert!(html.contains(&format!(">{code}</output>")), "{html}");
    assert!(html.contains(&format!("{}/login/device", gh.github_url())), "{html}");
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"), "{html}");
    assert!(html.contains("the shared account"), "{html}");
    // Posting again resumes the same flow; the list page points at it.
    assert_eq!(admin.start_link(&[("target", "default")]).await, flow);
    assert_eq!(gh.flow_count(), 1);
    let (_, html) = admin.get("/ui/copilot").await;
    assert!(html.contains(&format!("href=\"{flow}\"")), "{html}");
    // Nobody else sees it: not another user, not the same admin signed in elsewhere.
    for other in [&ann, &Browser::sign_in(&app, "admin", UI_PASSWORD).await] {
        let (status, html) = other.get(&flow).await;
        assert_eq!(status, 404, "{html}");
        assert!(!html.contains(&code));
    }
    gh.set_login("octo-admin");
    gh.approve(&code).unwrap();
    let html = admin.settled(&flow).await;
    assert!(html.contains("data-stage=\"linked\"") && html.contains("octo-admin"), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "a finished flow stops refreshing");
    let stored = store.get_credential("github_copilot", "default").await.unwrap().unwrap();
    assert_eq!(stored.label.as_deref(), Some("octo-admin"));
    let (_, html) = admin.get("/ui/copilot").await;
    assert!(row(&html, "every key without its own").contains("octo-admin"), "{html}");
    // The proxy serves with it, no restart.
    let mut served = false;
    for _ in 0..100 {
        if app.state.providers().copilot().account_for(None).is_some() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the linked account is not served");

    // A user links her own key's account, and only that.
    let (status, _, _) = ann.post("/ui/copilot/link", &[("target", "default")]).await;
    assert_eq!(status, 403);
    for key in [other_hash.as_str(), "someone-else", "no-such-key"] {
        let (status, _, _) = ann.post("/ui/copilot/link", &[("target", "key"), ("key", key)]).await;
        assert_eq!(status, 403, "{key}");
    }
    let (_, html) = ann.get("/ui/copilot").await;
    assert!(html.contains(&format!("<option value=\"{her_hash}\"")), "{html}");
    assert!(!html.contains("name=\"target\" value=\"default\""), "{html}");
    let flow = ann.start_link(&[("target", "key"), ("key", &her_hash)]).await;
    let (_, html) = ann.get(&flow).await;
    assert!(html.contains("key ann-key&#39;s own account"), "{html}");
    gh.set_login("octo-ann");
    gh.approve_latest().unwrap();
    let html = ann.settled(&flow).await;
    assert!(html.contains("data-stage=\"linked\"") && html.contains("octo-ann"), "{html}");
    let own = format!("key:{her_hash}");
    let (_, html) = ann.get("/ui/copilot").await;
    assert!(row(&html, "key ann-key").contains("octo-ann"), "{html}");
    assert!(!html.contains("every key without its own"), "{html}");
    assert!(!html.contains("octo-admin"), "{html}");

    // A viewer links nothing, and is offered nothing.
    let (_, html) = vic.get("/ui/copilot").await;
    assert!(!html.contains("id=\"link-form\"") && html.contains("id=\"link-page\""), "{html}");
    let posts: [&[(&str, &str)]; 2] =
        [&[("target", "default")], &[("target", "key"), ("key", her_hash.as_str())]];
    for fields in posts {
        assert_eq!(vic.post("/ui/copilot/link", fields).await.0, 403, "{fields:?}");
    }
    // Without the session's CSRF token nothing starts.
    let flows = gh.flow_count();
    let (status, _, _) = admin.post_raw("/ui/copilot/link", &form(&[("target", "default")])).await;
    assert_eq!(status, 403);
    assert_eq!(gh.flow_count(), flows);

    // The admin names any key by alias or hash; a wrong one is said next to the field.
    let (status, html, _) =
        admin.post("/ui/copilot/link", &[("target", "key"), ("key", "no-such-key")]).await;
    assert_eq!(status, 400);
    assert!(
        html.contains("No key has this alias or hash.") && html.contains("value=\"no-such-key\"")
    );
    assert_eq!(gh.flow_count(), flows);
    let flow = admin.start_link(&[("target", "key"), ("key", "someone-else")]).await;
    let (_, html) = admin.get(&flow).await;
    assert!(html.contains("key someone-else&#39;s own account"), "{html}");
    gh.deny();
    let html = admin.settled(&flow).await;
    assert!(
        html.contains("Access was denied on GitHub.") && html.contains("Start again"),
        "{html}"
    );
    let other_owner = format!("key:{other_hash}");
    assert!(store.get_credential("github_copilot", &other_owner).await.unwrap().is_none());

    let audit = store.audit_logs(Default::default()).await.unwrap();
    let mut links: Vec<_> = audit
        .iter()
        .filter(|r| r.object_type == "linked_account" && r.action == "link")
        .map(|r| (r.actor.as_str(), r.object_id.as_str()))
        .collect();
    links.sort_unstable();
    assert_eq!(links, [("ui:ann", own.as_str()), ("ui:ui_admin", "default")], "{links:?}");
}

#[tokio::test]
async fn a_sign_in_has_at_most_five_links_waiting_for_github() {
    let gh = tollgate_testkit::MockGitHub::start().await;
    let app = copilot_console(&gh).await;
    let admin = Browser::sign_in(&app, "admin", UI_PASSWORD).await;
    let mut waiting = vec![admin.start_link(&[("target", "default")]).await];
    for i in 0..5 {
        let alias = format!("bot-{i}");
        api(&app, "/key/generate", json!({"key_alias": alias})).await;
        if i < 4 {
            waiting.push(admin.start_link(&[("target", "key"), ("key", &alias)]).await);
        }
    }
    let (status, html, _) =
        admin.post("/ui/copilot/link", &[("target", "key"), ("key", "bot-4")]).await;
    assert_eq!(status, 429, "{html}");
    assert!(html.contains("5 links already wait for GitHub"), "{html}");
    assert_eq!(gh.flow_count(), 5);
    // One of those five is still resumed, and once one ends there is room again.
    assert_eq!(admin.start_link(&[("target", "default")]).await, waiting[0]);
    let (_, html) = admin.get("/ui/copilot").await;
    assert_eq!(html.matches("waits for your approval on GitHub").count(), 5, "{html}");
    gh.deny();
    admin.settled(&waiting[4]).await;
    admin.start_link(&[("target", "key"), ("key", "bot-4")]).await;
    assert_eq!(gh.flow_count(), 6);
}

#[tokio::test]
async fn the_copilot_page_lists_linked_accounts_with_quota_and_unlinks_them_audited() {
    let gh = tollgate_testkit::MockGitHub::start().await;
    let mock = MockOpenAi::start().await;
    let (github, github_api) = (gh.github_url(), gh.api_url());
    let app = app_with(
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("UI_PASSWORD", UI_PASSWORD),
            ("TOLLGATE_GITHUB_URL", github.as_str()),
            ("TOLLGATE_GITHUB_API_URL", github_api.as_str()),
        ],
        &mock,
    )
    .await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "key_alias": "ann-key"})).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    let hers = app
        .state
        .store()
        .list_keys(tollgate_store::KeyFilter { user_id: Some("ann".into()), ..Default::default() })
        .await
        .unwrap();
    let own = format!("key:{}", hers[0].token_hash);
    gh.add_account("ghu_shared_account", true);
    gh.add_account("ghu_ann_own_account", true);
    app.link_copilot("default", "ghu_shared_account").await.unwrap();
    app.link_copilot(&own, "ghu_ann_own_account").await.unwrap();

    let admin = Browser::sign_in(&app, "admin", UI_PASSWORD).await;
    let (status, html) = admin.get("/ui/copilot").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("every key without its own") && html.contains("key ann-key"), "{html}");
    assert!(html.contains(&format!("/ui/keys/{}", hers[0].token_hash)));
    assert_eq!(html.matches("250 of 300").count(), 2, "quota of both: {html}");
    assert!(html.contains("2030-01-01") && html.contains("/github\" id=\"link-page\""), "{html}");
    assert!(!html.contains("ghu_"), "tokens are never shown");
    // The dashboard has the same quota per account.
    let (_, html) = admin.get("/ui/").await;
    let quota = &html[html.find("id=\"copilot-quota\"").expect("a quota table")..];
    assert_eq!(quota.matches("250 of 300").count(), 2, "{quota}");
    assert!(quota.contains("every key without its own") && quota.contains("2030-01-01"));

    // A user sees their own key's account only, and may not unlink the shared one.
    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    let (status, html) = ann.get("/ui/copilot").await;
    assert_eq!(status, 200);
    assert!(html.contains("key ann-key") && !html.contains("every key without its own"), "{html}");
    assert_eq!(ann.post("/ui/copilot/unlink", &[("owner", "default")]).await.0, 403);
    let (_, html) = ann.get("/ui/").await;
    assert!(html.contains("key ann-key") && !html.contains("every key without its own"), "{html}");
    // A viewer sees both and unlinks nothing.
    let vic = Browser::sign_in(&app, "vic", "vic's password").await;
    let (_, html) = vic.get("/ui/copilot").await;
    assert!(html.contains("key ann-key") && !html.contains("copilot/unlink"), "{html}");
    assert_eq!(vic.post("/ui/copilot/unlink", &[("owner", own.as_str())]).await.0, 403);
    let store = app.state.store();
    assert_eq!(store.list_credentials("github_copilot").await.unwrap().len(), 2);

    // Ann unlinks hers: gone from the store, no longer served, audited.
    let (status, _, location) = ann.post("/ui/copilot/unlink", &[("owner", own.as_str())]).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/ui/copilot?done="));
    assert!(store.get_credential("github_copilot", &own).await.unwrap().is_none());
    let served = app.state.providers().copilot().account_for(Some(&own));
    assert!(served.is_none_or(|a| a.id != own), "still served with her account");
    let (_, html) = admin.get("/ui/copilot").await;
    assert!(!html.contains("key ann-key") && html.contains("every key without its own"));
    let (status, _, _) = admin.post("/ui/copilot/unlink", &[("owner", "default")]).await;
    assert_eq!(status, 303);
    assert!(store.list_credentials("github_copilot").await.unwrap().is_empty());
    assert_eq!(admin.post("/ui/copilot/unlink", &[("owner", "default")]).await.0, 404);
    let audit = store.audit_logs(Default::default()).await.unwrap();
    let unlinks: Vec<_> = audit
        .iter()
        .filter(|r| r.object_type == "linked_account" && r.action == "unlink")
        .map(|r| (r.actor.as_str(), r.object_id.as_str()))
        .collect();
    assert!(unlinks.contains(&("ui:ann", own.as_str())), "{unlinks:?}");
    assert!(unlinks.contains(&("ui:ui_admin", "default")), "{unlinks:?}");
}

/// The id of the first deployment of the model group `name`.
fn deployment_id(app: &TestApp, name: &str) -> String {
    let router = app.state.router();
    let catalog = router.catalog();
    let deployment = catalog.deployments().find(|d| d.entry.model_name == name).unwrap();
    deployment.id().to_owned()
}

/// The message shown next to the form field `name` in `html`, if any: the error inside the
/// field's own block.
fn error_next_to(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let block = &html[at..at + html[at..].find("</div>")?];
    let marker = "class=\"error\" role=\"alert\">";
    let start = block.find(marker)? + marker.len();
    Some(block[start..].split('<').next().unwrap_or("").to_owned())
}

async fn chat(app: &TestApp, model: &str) -> u16 {
    client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

const STORED_KEY: &str = "sk-stored-upstream-key-5678";

/// A stored model `ui-edit` with a key, pointed at `mock`; its id.
async fn stored_model(app: &TestApp, mock: &MockOpenAi) -> String {
    let created = api(
        app,
        "/model/new",
        json!({
            "model_name": "ui-edit",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": mock.base_url(),
                               "api_key": STORED_KEY, "timeout": 12},
            "model_info": {"access_groups": ["alpha"]},
        }),
    )
    .await;
    created["model_info"]["id"].as_str().unwrap().to_owned()
}

fn bearer_seen(mock: &MockOpenAi) -> String {
    mock.last_request().unwrap().header("authorization").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_stored_model_is_edited_on_its_page_with_its_key_kept_tested_or_cleared() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let id = stored_model(&app, &mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let page = format!("/ui/models/{id}");

    let (status, html) = b.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"edit-model\"") && html.contains(&mock.base_url()), "{html}");
    assert!(html.contains("value=\"gpt-4o-mini\"") && html.contains("value=\"alpha\""), "{html}");
    assert!(html.contains("a key is stored") && !html.contains(STORED_KEY), "{html}");
    let (_, list) = b.get("/ui/models").await;
    assert!(list.contains(&format!("/ui/models/{id}\"")), "the list links to the model's page");

    // Test connection from the edit form: the stored key is used where the form keeps it.
    let form = [
        ("model_name", "ui-edit"),
        ("provider", "openai"),
        ("model", "gpt-4o-mini"),
        ("api_base", &mock.base_url()),
        ("access_groups", "alpha"),
    ];
    let (status, html, _) = b.post(&format!("{page}/test"), &form).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Connection works"), "{html}");
    assert_eq!(bearer_seen(&mock), format!("Bearer {STORED_KEY}"));
    assert!(!html.contains(STORED_KEY));
    // The stored key goes only to the host it was stored for: a test against another one
    // needs it typed again, and nothing reaches that host.
    let elsewhere = MockOpenAi::start().await;
    let mut moved = form.to_vec();
    let other_base = elsewhere.base_url();
    moved[3] = ("api_base", &other_base);
    let (status, html, _) = b.post(&format!("{page}/test"), &moved).await;
    assert_eq!(status, 400, "{html}");
    assert!(
        error_next_to(&html, "api_key").is_some_and(|e| e.contains("type the key again")),
        "{html}"
    );
    assert!(elsewhere.last_request().is_none(), "the stored key never left for another host");

    // Saved: renamed, a fallback and a price, the key kept; extra parameters stay.
    let mut edit = form.to_vec();
    edit[0] = ("model_name", "ui-renamed");
    edit.extend([("fallbacks", "cfg-model"), ("input_cost_per_token", "0.000002")]);
    let (status, _, location) = b.post(&format!("{page}/edit"), &edit).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with(&format!("/ui/models/{id}?done=")));
    let (_, html) = b.get(&page).await;
    assert!(html.contains("Model ui-renamed") && html.contains("value=\"cfg-model\""), "{html}");
    let (_, info) = api_get(&app, &format!("/model/info?litellm_model_id={id}")).await;
    let m = &info["data"][0];
    assert_eq!(m["model_name"], "ui-renamed");
    assert_eq!(m["litellm_params"]["api_key"], "<redacted>");
    assert_eq!(m["litellm_params"]["fallbacks"], json!(["cfg-model"]));
    assert_eq!(m["litellm_params"]["timeout"], 12, "a parameter the form lacks is kept");
    assert_eq!(m["model_info"]["input_cost_per_token"], 0.000002);
    assert_eq!(chat(&app, "ui-renamed").await, 200);
    assert_eq!(bearer_seen(&mock), format!("Bearer {STORED_KEY}"));

    // Cleared on request.
    let mut clear = edit.clone();
    clear.push(("clear_api_key", "on"));
    assert_eq!(b.post(&format!("{page}/edit"), &clear).await.0, 303);
    let (_, info) = api_get(&app, &format!("/model/info?litellm_model_id={id}")).await;
    assert!(info["data"][0]["litellm_params"].get("api_key").is_none(), "{info}");
    let (_, html) = b.get(&page).await;
    assert!(!html.contains("a key is stored"), "{html}");
    let audit = app.state.store().audit_logs(Default::default()).await.unwrap();
    assert!(audit.iter().filter(|r| r.object_type == "model" && r.action == "update").count() == 2);
}

#[tokio::test]
async fn a_bad_edit_shows_its_error_next_to_the_field_and_changes_nothing() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let id = stored_model(&app, &mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let page = format!("/ui/models/{id}");
    let before = app.state.store().get_model(&id).await.unwrap().unwrap();
    let good = [("model_name", "ui-edit"), ("provider", "openai"), ("model", "gpt-4o-mini")];
    // (fields that differ from `good`, the field the error is next to, what it says)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 5] = [
        (&[("api_base", "ftp://nowhere")], "api_base", "http"),
        (&[("input_cost_per_token", "cheap")], "input_cost_per_token", "not a number"),
        (&[("model_name", "   ")], "model_name", "empty"),
        (&[("litellm_credential_name", "no-such")], "litellm_credential_name", "no-such"),
        (
            &[("provider", "github_copilot"), ("api_key", "sk-typed-for-copilot-9999")],
            "api_key",
            "linked GitHub account",
        ),
    ];
    for (fields, field, says) in cases {
        let mut form: Vec<(&str, &str)> =
            good.iter().filter(|(k, _)| fields.iter().all(|(f, _)| f != k)).copied().collect();
        form.extend_from_slice(fields);
        let (status, html, _) = b.post(&format!("{page}/edit"), &form).await;
        assert_eq!(status, 400, "{field}: {html}");
        let error = error_next_to(&html, field).unwrap_or_else(|| panic!("{field}: {html}"));
        assert!(error.contains(says), "{field}: {error}");
        assert!(!html.contains(STORED_KEY) && !html.contains("sk-typed-for-copilot-9999"));
        // The form comes back as typed.
        assert!(html.contains("id=\"edit-model\""), "{html}");
    }
    let after = app.state.store().get_model(&id).await.unwrap().unwrap();
    assert_eq!(before, after, "nothing saved");
    // A model config.yaml defines has a page, without a form.
    let cfg = deployment_id(&app, "cfg-model");
    let (status, html) = b.get(&format!("/ui/models/{cfg}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("config.yaml") && !html.contains("id=\"edit-model\""), "{html}");
    let (status, html, _) = b.post(&format!("/ui/models/{cfg}/edit"), &good).await;
    assert_eq!(status, 400);
    assert!(html.contains("defined in config.yaml"), "{html}");
    assert_eq!(b.get("/ui/models/no-such-model").await.0, 404);
}

#[tokio::test]
async fn viewers_and_users_cannot_open_or_change_models_or_credentials() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let id = stored_model(&app, &mock).await;
    api(&app, "/credentials", json!({"credential_name": "shared", "credential_values": {"api_key": "sk-credential-secret-1111"}})).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "auto_create_key": false})).await;
    let before = app.state.store().get_model(&id).await.unwrap().unwrap();
    let edit = [("model_name", "hijacked"), ("model", "openai/gpt-4o-mini")];
    for (who, password) in [("vic", "vic's password"), ("ann", "ann's password")] {
        let b = Browser::sign_in(&app, who, password).await;
        for path in [
            format!("/ui/models/{id}"),
            "/ui/credentials".to_owned(),
            "/ui/credentials/shared".to_owned(),
        ] {
            let (status, html) = b.get(&path).await;
            assert_eq!(status, 403, "{who} {path}");
            assert!(!html.contains("sk-credential-secret-1111") && !html.contains(STORED_KEY));
        }
        for action in ["edit", "test", "delete"] {
            assert_eq!(
                b.post(&format!("/ui/models/{id}/{action}"), &edit).await.0,
                403,
                "{who} {action}"
            );
        }
        let posts: [(&str, &[(&str, &str)]); 3] = [
            ("/ui/credentials", &[("credential_name", "sneaky"), ("api_key", "sk-x")]),
            ("/ui/credentials/shared/update", &[("api_key", "sk-replaced")]),
            ("/ui/credentials/shared/delete", &[]),
        ];
        for (path, fields) in posts {
            assert_eq!(b.post(path, fields).await.0, 403, "{who} {path}");
        }
        let (_, list) = b.get(if who == "vic" { "/ui/models" } else { "/ui/keys" }).await;
        assert!(
            !list.contains("/ui/credentials\"") && !list.contains(&format!("/ui/models/{id}\"")),
            "{who}: {list}"
        );
    }
    assert_eq!(app.state.store().get_model(&id).await.unwrap().unwrap(), before);
    let (_, creds) = api_get(&app, "/credentials").await;
    assert_eq!(creds["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(chat(&app, "ui-edit").await, 200);
}

#[tokio::test]
async fn credentials_made_in_the_console_are_the_ones_the_api_lists() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (_, html) = b.get("/ui/models").await;
    assert!(html.contains("/ui/credentials\""), "the models page links to the credentials");
    let first = "sk-credential-first-1111";
    let second = "sk-credential-second-2222";

    // Refused, saving nothing: a bad API base, no key.
    let (status, html, _) = b
        .post(
            "/ui/credentials",
            &[("credential_name", "team-openai"), ("api_key", first), ("api_base", "ftp://x")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(error_next_to(&html, "api_base").unwrap().contains("http"), "{html}");
    assert!(!html.contains(first));
    let (status, html, _) = b.post("/ui/credentials", &[("credential_name", "team-openai")]).await;
    assert_eq!(status, 400);
    assert!(error_next_to(&html, "api_key").is_some(), "{html}");
    let (_, listed) = api_get(&app, "/credentials").await;
    assert_eq!(listed["credentials"], json!([]));

    let created = [
        ("credential_name", "team-openai"),
        ("provider", "openai"),
        ("api_key", first),
        ("api_base", &mock.base_url()),
        ("description", "the team's key"),
    ];
    let (status, _, location) = b.post("/ui/credentials", &created).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/ui/credentials?done="));
    let (status, html, _) = b.post("/ui/credentials", &created).await;
    assert_eq!(status, 400, "a second one of the same name");
    assert!(html.contains("exists") && !html.contains(first), "{html}");
    let (_, listed) = api_get(&app, "/credentials").await;
    let c = &listed["credentials"][0];
    assert_eq!(c["credential_name"], "team-openai");
    assert_eq!(
        c["credential_values"],
        json!({"api_key": "<redacted>", "api_base": mock.base_url()})
    );
    assert_eq!(
        c["credential_info"],
        json!({"custom_llm_provider": "openai", "description": "the team's key"})
    );

    // A model chosen to use it, through the models page.
    let (status, html, _) = b
        .post(
            "/ui/models",
            &[
                ("model_name", "via-credential"),
                ("provider", "openai"),
                ("model", "gpt-4o-mini"),
                ("litellm_credential_name", "team-openai"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(chat(&app, "via-credential").await, 200);
    assert_eq!(bearer_seen(&mock), format!("Bearer {first}"));
    let (_, html) = b.get("/ui/credentials").await;
    assert!(html.contains("team-openai") && html.contains("via-credential"), "{html}");
    assert!(html.contains("the team") && html.contains("openai"), "{html}");
    assert!(!html.contains(first));

    // The key replaced: the model takes it from the next request; the API base is kept.
    let update = [
        ("provider", "openai"),
        ("api_key", second),
        ("api_base", &mock.base_url()),
        ("description", "rotated"),
    ];
    let (status, _, _) = b.post("/ui/credentials/team-openai/update", &update).await;
    assert_eq!(status, 303);
    assert_eq!(chat(&app, "via-credential").await, 200);
    assert_eq!(bearer_seen(&mock), format!("Bearer {second}"));
    let (_, listed) = api_get(&app, "/credentials").await;
    assert_eq!(listed["credentials"][0]["credential_info"]["description"], "rotated");
    // An empty key keeps it; a bad API base changes nothing.
    let (status, html, _) =
        b.post("/ui/credentials/team-openai/update", &[("api_base", "nowhere")]).await;
    assert_eq!(status, 400);
    assert!(error_next_to(&html, "api_base").is_some(), "{html}");
    assert_eq!(b.post("/ui/credentials/team-openai/update", &update[2..]).await.0, 303);
    assert_eq!(chat(&app, "via-credential").await, 200);
    assert_eq!(bearer_seen(&mock), format!("Bearer {second}"));

    // In use, it is not deleted, and the page says why.
    let (status, html, _) = b.post("/ui/credentials/team-openai/delete", &[]).await;
    assert_eq!(status, 400);
    assert!(html.contains("used by stored models"), "{html}");
    let (status, html) = b.get("/ui/credentials/team-openai").await;
    assert_eq!(status, 200);
    assert!(html.contains("via-credential") && !html.contains(first) && !html.contains(second));
    let model = app.state.store().list_models().await.unwrap()[0].model_id.clone();
    assert_eq!(b.post(&format!("/ui/models/{model}/delete"), &[]).await.0, 303);
    let (status, _, _) = b.post("/ui/credentials/team-openai/delete", &[]).await;
    assert_eq!(status, 303);
    let (_, listed) = api_get(&app, "/credentials").await;
    assert_eq!(listed["credentials"], json!([]));
    for page in ["/ui/credentials", "/ui/audit", "/ui/models"] {
        let (_, html) = b.get(page).await;
        assert!(!html.contains(first) && !html.contains(second), "{page}");
    }
}

#[tokio::test]
async fn failed_requests_show_as_errors_of_the_last_24_hours_and_the_last_error() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    // The upstream echoes the key it was given, as OpenAI does; the page must not.
    for _ in 0..2 {
        mock.enqueue(tollgate_testkit::ReplySpec::openai_error(
            500,
            "server_error",
            "The server had an error with key sk-upstream while processing",
        ));
    }
    assert_eq!(chat(&app, "cfg-model").await, 500);
    assert_eq!(chat(&app, "cfg-model").await, 500);
    assert_eq!(chat(&app, "cfg-model").await, 200);
    assert_eq!(app.wait_for_spend_written(3, Duration::from_secs(10)).await, 3);

    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    let (_, html) = b.get("/ui/models").await;
    let row = &html[html.find("cfg-model").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("3 requests") && row.contains("2 errors"), "{row}");
    assert!(row.contains("500 server_error") && row.contains("The server had an error"), "{row}");
    assert!(!html.contains("sk-upstream"), "the upstream key is masked out of the message");

    let id = deployment_id(&app, "cfg-model");
    let (_, html) = b.get(&format!("/ui/models/{id}")).await;
    assert!(html.contains("3 requests, 2 errors"), "{html}");
    assert!(html.contains("The server had an error") && !html.contains("sk-upstream"), "{html}");
    // A viewer sees the same on the list.
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    let vic = Browser::sign_in(&app, "vic", "vic's password").await;
    let (_, html) = vic.get("/ui/models").await;
    assert!(html.contains("2 errors") && !html.contains("sk-upstream"), "{html}");
}

/// A stored spend record of `model` answered after `attempts` (model groups tried), for
/// `user`'s dashboard.
fn spend(id: &str, user: &str, model: &str, outcome: &str, ms: f64, tried: &[&str]) -> SpendRecord {
    SpendRecord {
        user_id: Some(user.to_owned()),
        requested_model: tried.first().unwrap_or(&model).to_string(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost: 0.25,
        latency_ms: ms,
        status: if outcome == "success" { 200 } else { 502 },
        outcome: outcome.to_owned(),
        attempts: Value::Array(tried.iter().map(|g| json!({"model_group": g})).collect()),
        ..spend_record(id, chrono::Utc::now(), model)
    }
}

#[tokio::test]
async fn the_dashboard_charts_outcomes_spend_latency_and_fallbacks() {
    let mock = MockOpenAi::start().await;
    let app = app(&mock).await;
    api(&app, "/user/new", json!({"user_id": "dana", "password": "dana-secret-1"})).await;
    let records = [
        spend("a", "erin", "gpt-4o", "success", 900.0, &["gpt-4o"]),
        spend("b", "erin", "gpt-4o", "success", 1100.0, &["gpt-4o"]),
        spend("c", "erin", "claude", "success", 3000.0, &["gpt-4o", "claude"]),
        spend("d", "erin", "gpt-4o", "upstream_failed", 200.0, &["gpt-4o"]),
        spend("e", "dana", "gpt-4o", "refused", 1.0, &[]),
    ];
    app.state.store().insert_spend(&records).await.unwrap();
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;
    for range in ["24h", "7d", "30d"] {
        let (status, html) = b.get(&format!("/ui/?range={range}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("id=\"total-requests\">5<"), "{range}: {html}");
        // One of the four answered was a fallback's answer: one in five requests.
        assert!(html.contains("id=\"fallback-share\">20.0%<"), "{html}");
        for outcome in ["success", "upstream_failed", "refused"] {
            assert!(html.contains(&format!("</svg>{outcome}</li>")), "{outcome} in the legend");
        }
        assert!(html.contains(r#"class="bar-refused""#) && html.contains(r#"class="bar-bad""#));
        // Spend per model: both groups named in the legend.
        assert!(html.contains("</svg>gpt-4o</li>") && html.contains("</svg>claude</li>"));
        // Latency: gpt-4o's 200, 900, 1100 ms and the refusal; claude's single 3 s.
        assert!(html.contains("<td>claude</td><td class=\"num\">1</td>"), "{html}");
        assert!(html.contains("<td>gpt-4o</td><td class=\"num\">4</td>"), "{html}");
        assert!(html.contains("Top users") && html.contains("<td>erin</td>"));
    }
    // A user's dashboard is theirs alone: the refusal, nothing of erin's.
    let d = Browser::sign_in(&app, "dana", "dana-secret-1").await;
    let (_, html) = d.get("/ui/?range=24h").await;
    assert!(html.contains("id=\"total-requests\">1<"), "{html}");
    assert!(html.contains("id=\"fallback-share\">0.0%<"), "{html}");
    assert!(!html.contains("claude") && !html.contains("erin"));
}
