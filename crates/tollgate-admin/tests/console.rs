//! The admin console over HTTP: sign-in, sessions, CSRF, roles, and each page's forms going
//! through the same operations as the management API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, TestApp};

const MASTER: &str = "sk-console-master-key";
const UI_PASSWORD: &str = "a console password";

#[path = "console/lists.rs"]
mod lists;

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

    // A user sees their own key's account only, and may not unlink the shared one.
    let ann = Browser::sign_in(&app, "ann", "ann's password").await;
    let (status, html) = ann.get("/ui/copilot").await;
    assert_eq!(status, 200);
    assert!(html.contains("key ann-key") && !html.contains("every key without its own"), "{html}");
    assert_eq!(ann.post("/ui/copilot/unlink", &[("owner", "default")]).await.0, 403);
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
