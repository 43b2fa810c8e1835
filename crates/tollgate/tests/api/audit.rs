//! The audit log: every management change (keys, users, teams, linked Copilot accounts)
//! leaves one record naming who made it, by the master key or by an admin virtual key, and
//! `GET /audit/logs` never shows a key or a GitHub token. On SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockGitHub, TestApp, TestDatabase};

use crate::helpers::*;

/// One record the log should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    action: String,
    object_type: String,
    object_id: String,
    actor: String,
}

/// Which expected records a filter keeps.
type Keep = fn(&Expected) -> bool;

/// What a run of changes made: the records it should have left, and every secret it saw.
#[derive(Debug, Default)]
struct Run {
    expected: Vec<Expected>,
    secrets: Vec<String>,
}

/// Makes management calls with one credential, noting what each should record.
struct Caller<'a> {
    app: &'a TestApp,
    gh: &'a MockGitHub,
    bearer: String,
    actor: String,
}

impl Caller<'_> {
    async fn post(&self, path: &str, body: Value) -> Value {
        let resp = client()
            .post(self.app.url(path))
            .bearer_auth(&self.bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{path} {body} as {} -> {status}: {v}", self.actor);
        v
    }

    fn expect(&self, run: &mut Run, action: &str, object_type: &str, object_id: &str) {
        self.expect_as(run, &self.actor, action, object_type, object_id);
    }

    fn expect_as(&self, run: &mut Run, actor: &str, action: &str, ty: &str, id: &str) {
        run.expected.push(Expected {
            action: action.to_owned(),
            object_type: ty.to_owned(),
            object_id: id.to_owned(),
            actor: actor.to_owned(),
        });
    }

    /// `/key/generate`: the new key and its hash.
    async fn new_key(&self, run: &mut Run, body: Value) -> (String, String) {
        let created = self.post("/key/generate", body).await;
        let (key, hash) = (created["key"].as_str().unwrap(), created["token"].as_str().unwrap());
        assert!(key.starts_with("sk-"), "{created}");
        run.secrets.push(key.to_owned());
        self.expect(run, "create", "key", hash);
        (key.to_owned(), hash.to_owned())
    }

    /// `/key/regenerate`: the new key and its hash.
    async fn regenerate(&self, run: &mut Run, key: &str) -> (String, String) {
        let fresh = self.post("/key/regenerate", json!({ "key": key })).await;
        let (key, hash) = (fresh["key"].as_str().unwrap(), fresh["token"].as_str().unwrap());
        run.secrets.push(key.to_owned());
        self.expect(run, "regenerate", "key", hash);
        (key.to_owned(), hash.to_owned())
    }

    /// Links a Copilot account on the auth helper's page with `key` (the master key links
    /// the shared account, a virtual key its own), approves it on the stand-in, and waits
    /// until the link is stored and audited.
    async fn link(&self, run: &mut Run, key: &str, owner: &str, actor: &str) {
        let page = client().get(self.app.auth_url(&format!("/github?key={key}"))).send().await;
        assert_eq!(page.unwrap().status(), 200);
        let token = self.gh.approve_latest().expect("a device flow was started");
        run.secrets.push(token);
        self.expect_as(run, actor, "link", "linked_account", owner);
        let path = format!("/audit/logs?object_type=linked_account&object_id={owner}&action=link");
        for _ in 0..200 {
            if !logs(self.app, &path).await["data"].as_array().unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the link of {owner} was never audited");
    }

    /// Every kind of key, user and team change once, named after `tag`.
    async fn change_everything(&self, run: &mut Run, tag: &str) {
        let (key, hash) = self.new_key(run, json!({ "key_alias": format!("k-{tag}") })).await;
        self.post("/key/update", json!({ "key": key, "models": ["gpt-4o"] })).await;
        self.expect(run, "update", "key", &hash);
        self.post("/key/block", json!({ "key": hash })).await;
        self.expect(run, "block", "key", &hash);
        self.post("/key/unblock", json!({ "key": key })).await;
        self.expect(run, "unblock", "key", &hash);
        let (key, hash) = self.regenerate(run, &key).await;
        // A key that does not exist is not recorded as deleted.
        let gone = self.post("/key/delete", json!({ "keys": [key, "sk-no-such-key-0000"] })).await;
        assert_eq!(gone["deleted"], 1);
        self.expect(run, "delete", "key", &hash);

        let user = format!("u-{tag}");
        self.post("/user/new", json!({ "user_id": user, "auto_create_key": false })).await;
        self.expect(run, "create", "user", &user);
        // `/user/new` creates a key too, unless told not to: both are recorded.
        let owner = format!("owner-{tag}");
        let created = self.post("/user/new", json!({ "user_id": owner })).await;
        run.secrets.push(created["key"].as_str().unwrap().to_owned());
        self.expect(run, "create", "user", &owner);
        self.expect(run, "create", "key", created["token"].as_str().unwrap());
        self.post("/user/update", json!({ "user_id": user, "user_email": "a@example.com" })).await;
        self.expect(run, "update", "user", &user);

        let team = format!("t-{tag}");
        self.post("/team/new", json!({ "team_id": team, "team_alias": "first" })).await;
        self.expect(run, "create", "team", &team);
        self.post("/team/update", json!({ "team_id": team, "team_alias": "second" })).await;
        self.expect(run, "update", "team", &team);
        let member = json!({ "user_id": user, "role": "user" });
        self.post("/team/member_add", json!({ "team_id": team, "member": member })).await;
        self.expect(run, "member_add", "team", &team);
        self.post("/team/member_delete", json!({ "team_id": team, "user_id": user })).await;
        self.expect(run, "member_delete", "team", &team);
        self.post("/team/block", json!({ "team_id": team })).await;
        self.expect(run, "block", "team", &team);
        self.post("/team/unblock", json!({ "team_id": team })).await;
        self.expect(run, "unblock", "team", &team);
        self.post("/team/delete", json!({ "team_ids": [team, "no-such-team"] })).await;
        self.expect(run, "delete", "team", &team);

        self.post("/user/delete", json!({ "user_ids": [user, owner, "no-such-user"] })).await;
        self.expect(run, "delete", "user", &user);
        self.expect(run, "delete", "user", &owner);
    }
}

async fn logs(app: &TestApp, path: &str) -> Value {
    let (status, v) = logs_text(app, path).await;
    assert_eq!(status, 200, "{path}: {v}");
    serde_json::from_str(&v).unwrap()
}

async fn logs_text(app: &TestApp, path: &str) -> (u16, String) {
    let resp = client().get(app.url(path)).bearer_auth(MASTER).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn seen(record: &Value) -> Expected {
    let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
    Expected {
        action: field("action"),
        object_type: field("object_type"),
        object_id: field("object_id"),
        actor: field("actor"),
    }
}

/// The whole log, oldest first.
async fn all_records(app: &TestApp) -> Vec<Value> {
    let mut all = logs(app, "/audit/logs?page_size=1000").await["data"].as_array().unwrap().clone();
    all.reverse();
    all
}

async fn every_change_is_audited_once_without_a_secret(app: &TestApp, gh: &MockGitHub) {
    let mut run = Run { secrets: vec![MASTER.to_owned()], ..Run::default() };
    let master = Caller { app, gh, bearer: MASTER.to_owned(), actor: "master_key".to_owned() };
    let admin_body = json!({ "key_alias": "ops-admin", "permissions": { "admin": true } });
    let (admin_key, admin_hash) = master.new_key(&mut run, admin_body).await;
    master.change_everything(&mut run, "m").await;
    master.link(&mut run, MASTER, "default", "master_key").await;

    let admin = Caller { app, gh, bearer: admin_key.clone(), actor: "key:ops-admin".to_owned() };
    admin.change_everything(&mut run, "a").await;
    let own = format!("key:{admin_hash}");
    admin.link(&mut run, &admin_key, &own, "key:ops-admin").await;
    // A key's linked account moves with it when it is regenerated, and goes when it is
    // deleted: each step is recorded, as the admin's doing.
    let (linked, linked_hash) = admin.new_key(&mut run, json!({ "key_alias": "holder" })).await;
    admin.link(&mut run, &linked, &format!("key:{linked_hash}"), "key:holder").await;
    let (linked, new_hash) = admin.regenerate(&mut run, &linked).await;
    admin.expect(&mut run, "unlink", "linked_account", &format!("key:{linked_hash}"));
    admin.expect(&mut run, "link", "linked_account", &format!("key:{new_hash}"));
    admin.post("/key/delete", json!({ "keys": [linked] })).await;
    admin.expect(&mut run, "delete", "key", &new_hash);
    admin.expect(&mut run, "unlink", "linked_account", &format!("key:{new_hash}"));

    // One record per change, in order, each naming its actor.
    let all = all_records(app).await;
    let got: Vec<Expected> = all.iter().map(seen).collect();
    assert_eq!(got, run.expected);

    // What the records hold: the changed fields, never the key itself.
    let regenerated = all.iter().find(|r| r["action"] == "regenerate").unwrap();
    let (before, after) = (&regenerated["before"], &regenerated["after"]);
    assert_ne!(before["token"], after["token"], "{regenerated}");
    assert_eq!(after["token"], regenerated["object_id"]);
    assert!(before["key_name"].as_str().unwrap().starts_with("sk-..."), "{regenerated}");
    assert_ne!(before["key_name"], after["key_name"]);
    assert!(after.get("key").is_none() && after.get("key_alias").is_none(), "{regenerated}");
    let updated = all.iter().find(|r| r["action"] == "update" && r["object_type"] == "key");
    let updated = updated.unwrap();
    assert_eq!(updated["before"]["models"], json!([]), "{updated}");
    assert_eq!(updated["after"]["models"], json!(["gpt-4o"]), "{updated}");
    assert!(updated["after"].get("spend").is_none(), "only changed fields: {updated}");
    let blocked = all.iter().find(|r| r["action"] == "block" && r["object_type"] == "team");
    assert_eq!(blocked.unwrap()["after"]["blocked"], true);
    let deleted = all.iter().find(|r| r["action"] == "delete" && r["object_type"] == "user");
    let deleted = deleted.unwrap();
    assert_eq!(deleted["before"]["user_id"], deleted["object_id"], "{deleted}");
    assert!(deleted["after"].is_null(), "{deleted}");
    let link = all.iter().find(|r| r["action"] == "link").unwrap();
    assert_eq!(link["after"], json!({ "login": null }), "the stand-in tells no login: {link}");

    // Filters.
    let filters: [(&str, Keep); 4] = [
        ("object_type=team", |e| e.object_type == "team"),
        ("actor=key:ops-admin", |e| e.actor == "key:ops-admin"),
        ("actor=master_key&object_type=key", |e| e.actor == "master_key" && e.object_type == "key"),
        ("object_type=linked_account&action=unlink", |e| e.action == "unlink"),
    ];
    for (query, keep) in filters {
        let page = logs(app, &format!("/audit/logs?page_size=1000&{query}")).await;
        let mut got: Vec<Expected> = page["data"].as_array().unwrap().iter().map(seen).collect();
        got.reverse();
        let want: Vec<Expected> = run.expected.iter().filter(|e| keep(e)).cloned().collect();
        assert!(!want.is_empty(), "{query}");
        assert_eq!(got, want, "{query}");
    }

    // Keyset pagination walks every record once, newest first.
    let mut walked = Vec::new();
    let mut texts = Vec::new();
    let mut path = "/audit/logs?page_size=2".to_owned();
    loop {
        let (status, text) = logs_text(app, &path).await;
        assert_eq!(status, 200, "{text}");
        let page: Value = serde_json::from_str(&text).unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2, "{page}");
        walked.extend(data.iter().map(|r| r["id"].as_i64().unwrap()));
        texts.push(text);
        match page["next_cursor"].as_i64() {
            Some(cursor) => path = format!("/audit/logs?page_size=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.reverse();
    assert_eq!(walked, ids);

    // No key and no GitHub token anywhere in what the log answers.
    texts.push(logs_text(app, "/audit/logs?page_size=1000").await.1);
    for text in &texts {
        for secret in &run.secrets {
            assert!(!text.contains(secret.as_str()), "the audit log shows a secret: {secret}");
        }
    }
}

async fn audited_app(gh: &MockGitHub, database_url: Option<&str>) -> TestApp {
    let (github, api) = (gh.github_url(), gh.api_url());
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("TOLLGATE_GITHUB_URL", github.as_str()),
        ("TOLLGATE_GITHUB_API_URL", api.as_str()),
    ];
    match database_url {
        Some(url) => TestApp::spawn_with_database("", &env, url).await.unwrap(),
        None => TestApp::spawn_with_env("", &env).await.unwrap(),
    }
}

#[tokio::test]
async fn every_management_change_is_audited_on_sqlite() {
    let gh = MockGitHub::start().await;
    let app = audited_app(&gh, None).await;
    every_change_is_audited_once_without_a_secret(&app, &gh).await;
}

#[tokio::test]
async fn every_management_change_is_audited_on_postgresql() {
    let db = TestDatabase::create().await.unwrap();
    let gh = MockGitHub::start().await;
    let app = audited_app(&gh, Some(&db.url)).await;
    every_change_is_audited_once_without_a_secret(&app, &gh).await;
}

#[tokio::test]
async fn without_a_master_key_a_local_caller_is_audited_as_local() {
    let gh = MockGitHub::start().await;
    let (github, api) = (gh.github_url(), gh.api_url());
    let env = [("TOLLGATE_GITHUB_URL", github.as_str()), ("TOLLGATE_GITHUB_API_URL", api.as_str())];
    let app = TestApp::spawn_with_env("", &env).await.unwrap();
    let created = client().post(app.url("/key/generate")).json(&json!({})).send().await.unwrap();
    assert_eq!(created.status(), 200);
    let page = client().get(app.auth_url("/github")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    gh.approve_latest().unwrap();
    let mut actors = Vec::new();
    for _ in 0..200 {
        let resp = client().get(app.url("/audit/logs")).send().await.unwrap();
        let page: Value = resp.json().await.unwrap();
        actors = page["data"].as_array().unwrap().iter().map(seen).collect();
        if actors.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<(String, String, String)> =
        actors.into_iter().map(|e| (e.actor, e.action, e.object_type)).collect();
    let want = [("local", "link", "linked_account"), ("local", "create", "key")];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want);
}
