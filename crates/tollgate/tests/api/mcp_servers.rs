//! MCP servers at runtime: `/v1/mcp/server*` adds, changes, lists and removes servers beside
//! config.yaml's, never shows a credential, is for admins only, and every replica on one
//! database serves the change.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::mcp_mock::mock_binary;
use tollgate_testkit::{McpOptions, MockMcp, TestApp, TestDatabase};

use crate::helpers::{MASTER, client};

const ENV_SECRET: &str = "env-secret-4242-abcd";
const TOKEN: &str = "bearer-secret-7777-efgh";
const HEADER_SECRET: &str = "header-secret-5555-ijkl";

fn bin() -> String {
    mock_binary().unwrap().display().to_string()
}

fn config() -> String {
    format!(
        "mcp_servers:\n  from_file:\n    command: {}\n    args: [--mcp-stdio, --name, from_file]\n",
        bin()
    )
}

async fn spawn(db: Option<&TestDatabase>) -> TestApp {
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("TOLLGATE_SECRET_KEY", "a-shared-secret-key-for-the-test-1234"),
    ];
    match db {
        Some(db) => TestApp::spawn_with_database(&config(), &env, &db.url).await.unwrap(),
        None => TestApp::spawn_with_env(&config(), &env).await.unwrap(),
    }
}

async fn send(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = client().request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// A call as the admin that must succeed; its answer.
async fn ok(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let (status, text) = send(app, MASTER, method, path, body).await;
    assert_eq!(status, 200, "{path}: {text}");
    assert_no_secret(&text);
    serde_json::from_str(&text).unwrap()
}

/// A call as the admin that must fail with `want`; its error.
async fn refused(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (status, text) = send(app, MASTER, method, path, body).await;
    assert_eq!(status, want, "{path}: {text}");
    assert_no_secret(&text);
    serde_json::from_str::<Value>(&text).unwrap()["error"].clone()
}

fn assert_no_secret(text: &str) {
    for s in [ENV_SECRET, TOKEN, HEADER_SECRET] {
        assert!(!text.contains(s), "a credential leaked: {s} in {text}");
    }
}

fn stdio_server(name: &str) -> Value {
    json!({
        "server_name": name,
        "command": bin(),
        "args": ["--mcp-stdio", "--name", name],
        "env": {"MOCK_MCP_SECRET": ENV_SECRET},
        "description": "a test server",
        "disallowed_tools": ["crash"],
    })
}

fn listed<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|s| s["server_name"] == name).unwrap()
}

fn tool_names(tools: &Value) -> Vec<String> {
    tools["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().into()).collect()
}

async fn lifecycle(db: Option<&TestDatabase>) {
    use reqwest::Method;
    let app = spawn(db).await;

    // Added: stored sealed, served at once, its secret never shown.
    let created = ok(&app, Method::POST, "/v1/mcp/server", Some(stdio_server("local"))).await;
    assert_eq!(created["source"], "db");
    assert_eq!(created["transport"], "stdio");
    assert_eq!(created["env"], json!({"MOCK_MCP_SECRET": "<redacted>"}));
    assert_eq!(created["served"], true);
    let row = app.state.store().get_mcp_server("local").await.unwrap().unwrap();
    assert_no_secret(&row.entry.to_string());
    assert!(app.state.mcp().server("local").is_some());

    // Its tools, as the server lists them, with the filter applied; it is now connected.
    let tools = ok(&app, Method::GET, "/v1/mcp/server/local/tools", None).await;
    let names = tool_names(&tools);
    assert!(
        names.contains(&"echo".to_owned()) && names.contains(&"whoami".to_owned()),
        "{names:?}"
    );
    let crash = tools["tools"].as_array().unwrap().iter().find(|t| t["name"] == "crash").unwrap();
    assert_eq!(crash["offered"], false);
    assert_eq!(tools["status"]["connected"], true);
    // The child got the sealed value, opened.
    let server = app.state.mcp().server("local").unwrap();
    let said = server
        .request("tools/call", json!({"name": "whoami", "arguments": {}}), None)
        .await
        .unwrap();
    assert_eq!(said["content"][0]["text"], ENV_SECRET);

    // An HTTP server with a bearer token and a secret header.
    let mock = MockMcp::start_http_with(McpOptions {
        bearer_token: Some(TOKEN.into()),
        ..McpOptions::named("remote")
    })
    .await
    .unwrap();
    let remote = json!({
        "server_name": "remote",
        "url": mock.url(),
        "auth_type": "bearer_token",
        "auth_value": TOKEN,
        "static_headers": {"X-Team": HEADER_SECRET},
    });
    let created = ok(&app, Method::POST, "/v1/mcp/server", Some(remote)).await;
    assert_eq!(created["auth_value"], "<redacted>");
    assert_eq!(created["static_headers"], json!({"X-Team": "<redacted>"}));
    let tools = ok(&app, Method::GET, "/v1/mcp/server/remote/tools", None).await;
    assert!(tool_names(&tools).contains(&"echo".to_owned()));
    let call =
        mock.calls().into_iter().find(|c| c.method.as_deref() == Some("tools/list")).unwrap();
    assert_eq!(call.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(call.header("x-team"), Some(HEADER_SECRET));

    // Changed with its stored credentials kept (`<redacted>` sent back as listed).
    let change = json!({
        "server_name": "remote",
        "url": mock.url(),
        "auth_type": "bearer_token",
        "auth_value": "<redacted>",
        "static_headers": {"X-Team": "<redacted>"},
        "description": "changed",
    });
    let changed = ok(&app, Method::PUT, "/v1/mcp/server", Some(change)).await;
    assert_eq!(changed["description"], "changed");
    mock.clear_calls();
    ok(&app, Method::GET, "/v1/mcp/server/remote/tools", None).await;
    let call =
        mock.calls().into_iter().find(|c| c.method.as_deref() == Some("tools/list")).unwrap();
    assert_eq!(call.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));

    // Listed with config.yaml's, each with its source and health.
    let list = ok(&app, Method::GET, "/v1/mcp/server", None).await;
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|s| s["server_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["from_file", "local", "remote"]);
    assert_eq!(listed(&list, "from_file")["source"], "config");
    assert_eq!(listed(&list, "local")["source"], "db");
    assert_eq!(listed(&list, "local")["status"]["connected"], true);
    assert_eq!(listed(&list, "remote")["url"], mock.url());
    let one = ok(&app, Method::GET, "/v1/mcp/server/remote", None).await;
    assert_eq!(one["description"], "changed");

    // Entries are checked as config.yaml's are, with the key named.
    let bad = |body: Value| refused(&app, Method::POST, "/v1/mcp/server", Some(body), 400);
    let e = bad(json!({"server_name": "x", "transport": "stdio"})).await;
    assert_eq!(e["param"], "command", "{e}");
    let e = bad(json!({"server_name": "x", "url": "http://h/mcp", "colour": "blue"})).await;
    assert!(e["message"].as_str().unwrap().contains("colour"), "{e}");
    let e = bad(json!({"server_name": "a-b", "command": "x"})).await;
    assert!(e["message"].as_str().unwrap().contains("a-b"), "{e}");
    let e = bad(json!({"server_name": "x", "url": "http://h/mcp", "auth_value": 424242424242u64}))
        .await;
    assert!(!e["message"].as_str().unwrap().contains("424242424242"), "{e}");
    bad(json!({"command": "x"})).await;
    bad(json!({"server_name": "x", "url": "http://h/mcp", "auth_value": "<redacted>"})).await;
    // Names are unique across config.yaml and the store.
    refused(&app, Method::POST, "/v1/mcp/server", Some(stdio_server("local")), 409).await;
    refused(&app, Method::POST, "/v1/mcp/server", Some(stdio_server("from_file")), 409).await;
    // config.yaml's servers are not changed through the API.
    let e = refused(&app, Method::DELETE, "/v1/mcp/server/from_file", None, 400).await;
    assert_eq!(e["code"], "config_mcp_server");
    refused(&app, Method::PUT, "/v1/mcp/server", Some(stdio_server("from_file")), 400).await;
    refused(&app, Method::DELETE, "/v1/mcp/server/nope", None, 404).await;
    refused(&app, Method::GET, "/v1/mcp/server/nope/tools", None, 404).await;

    // Admins only.
    let made = ok(
        &app,
        Method::POST,
        "/key/generate",
        Some(json!({"object_permission": {
            "mcp_servers": ["local", "from_file"],
            "mcp_tool_permissions": {"local": ["echo"]},
        }})),
    )
    .await;
    let key = made["key"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, "/v1/mcp/server", None),
        (Method::GET, "/v1/mcp/server/local/tools", None),
        (Method::POST, "/v1/mcp/server", Some(stdio_server("mine"))),
        (Method::DELETE, "/v1/mcp/server/local", None),
    ] {
        let (status, text) = send(&app, &key, method, path, body).await;
        assert_eq!(status, 403, "{path}: {text}");
    }

    // Deleted: gone from the gateway and from every permission that named it.
    let gone = ok(&app, Method::DELETE, "/v1/mcp/server/local", None).await;
    assert_eq!(gone["permissions_updated"], 1);
    assert!(app.state.mcp().server("local").is_none());
    refused(&app, Method::GET, "/v1/mcp/server/local", None, 404).await;
    let info = ok(&app, Method::GET, &format!("/key/info?key={key}"), None).await;
    assert_eq!(
        info["info"]["object_permission"],
        json!({"mcp_servers": ["from_file"], "mcp_tool_permissions": {}})
    );

    // Each change is audited, without its credentials.
    let logs =
        ok(&app, Method::GET, "/audit/logs?object_type=mcp_server&page_size=100", None).await;
    let actions: Vec<&str> =
        logs["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "update", "create", "create"]);
}

#[tokio::test]
async fn mcp_servers_are_managed_at_runtime_on_sqlite() {
    lifecycle(None).await;
}

#[tokio::test]
async fn mcp_servers_are_managed_at_runtime_on_postgres() {
    let db = TestDatabase::create().await.unwrap();
    lifecycle(Some(&db)).await;
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_server_added_on_one_replica_is_served_by_the_other() {
    let db = TestDatabase::create().await.unwrap();
    let a = spawn(Some(&db)).await;
    let b = spawn(Some(&db)).await;
    ok(&a, reqwest::Method::POST, "/v1/mcp/server", Some(stdio_server("shared"))).await;
    wait_for("B never served the server A added", || b.state.mcp().server("shared").is_some())
        .await;
    let tools = ok(&b, reqwest::Method::GET, "/v1/mcp/server/shared/tools", None).await;
    assert!(tool_names(&tools).contains(&"echo".to_owned()));
    ok(&a, reqwest::Method::DELETE, "/v1/mcp/server/shared", None).await;
    wait_for("B kept serving the server A deleted", || b.state.mcp().server("shared").is_none())
        .await;
}
