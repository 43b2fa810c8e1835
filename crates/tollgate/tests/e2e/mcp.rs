//! The MCP gateway with the real reference servers from npm (`@modelcontextprotocol/
//! server-memory` and `-filesystem`, run over stdio by tollgate), called through `/mcp` as an
//! MCP client calls it, and by the real Claude Code CLI with tollgate added as an HTTP MCP
//! server (`claude mcp add --transport http`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use std::process::Command;
use tollgate_testkit::{MockOpenAi, ReplySpec, TestApp, ToolCall};

use crate::support::*;

const MODEL: &str = "e2e-model";

/// The entry script of an installed reference server.
fn server_script(package: &str) -> PathBuf {
    let dir = node_modules().join("@modelcontextprotocol").join(package);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("package.json")).unwrap_or_else(|e| {
            panic!(
                "@modelcontextprotocol/{package} is not installed in {} ({e}); run scripts/test",
                dir.display()
            )
        }),
    )
    .unwrap();
    let bin = match &manifest["bin"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.values().next().and_then(Value::as_str).unwrap().to_owned(),
        other => panic!("no bin in {package}'s package.json: {other}"),
    };
    dir.join(bin)
}

/// Where the servers keep what they are given.
struct Place {
    _dir: tempfile::TempDir,
    shared: PathBuf,
    memory_file: PathBuf,
}

impl Place {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("tollgate-e2e-mcp-").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let shared = root.join("shared");
        std::fs::create_dir(&shared).unwrap();
        Self { memory_file: root.join("memory.jsonl"), shared, _dir: dir }
    }
}

/// tollgate with [`MODEL`] on `main`, anything else on `aux`, and the two reference servers.
async fn app(main: &MockOpenAi, aux: &MockOpenAi, place: &Place) -> TestApp {
    let node = node_bin();
    let yaml = format!(
        r#"model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/gpt-e2e
      api_base: {main}
  - model_name: "*"
    litellm_params:
      model: openai/side-model
      api_base: {aux}
mcp_servers:
  memory:
    command: {node}
    args: ["{memory}"]
    env: {{MEMORY_FILE_PATH: "{memory_file}"}}
    description: A knowledge graph the team shares
  filesystem:
    command: {node}
    args: ["{filesystem}", "{shared}"]
    description: The team's shared folder
"#,
        main = main.base_url(),
        aux = aux.base_url(),
        node = node.display(),
        memory = server_script("server-memory").display(),
        memory_file = place.memory_file.display(),
        filesystem = server_script("server-filesystem").display(),
        shared = place.shared.display(),
    );
    TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn new_key(app: &TestApp, body: Value) -> String {
    let v: Value = http()
        .post(app.url("/key/generate"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["key"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned()
}

/// One JSON-RPC request to `/mcp` with `key`.
async fn rpc(app: &TestApp, key: &str, id: u64, method: &str, params: Value) -> Value {
    let resp = http()
        .post(app.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{method}");
    resp.json().await.unwrap()
}

async fn mcp_records(app: &TestApp, n: u64) -> Vec<tollgate_store::SpendRecord> {
    app.wait_for_spend_written(n, Duration::from_secs(10)).await;
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    logs.into_iter().filter(|r| r.api == "mcp").collect()
}

fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        if content.contains(needle) || std::time::Instant::now() > deadline {
            return content;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
#[ignore = "needs the reference MCP servers from npm; scripts/test installs them"]
async fn the_reference_servers_are_listed_and_called_through_mcp() {
    let (main, aux) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let place = Place::new();
    let app = app(&main, &aux, &place).await;
    let key =
        new_key(&app, json!({"object_permission": {"mcp_servers": ["memory", "filesystem"]}}))
            .await;
    let init = rpc(
        &app,
        &key,
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    )
    .await;
    assert_eq!(init["result"]["serverInfo"]["name"], "tollgate", "{init}");

    let listed = rpc(&app, &key, 2, "tools/list", json!({})).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for tool in [
        "memory-create_entities",
        "memory-read_graph",
        "filesystem-write_file",
        "filesystem-read_text_file",
    ] {
        assert!(names.contains(&tool), "{tool} in {names:?}");
    }

    let target = place.shared.join("notes.txt");
    let wrote = rpc(
        &app,
        &key,
        3,
        "tools/call",
        json!({"name": "filesystem-write_file",
        "arguments": {"path": target.to_str().unwrap(), "content": "written through tollgate"}}),
    )
    .await;
    assert!(wrote["result"].is_object() && wrote["result"]["isError"] != true, "{wrote}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "written through tollgate");
    // Outside the shared folder, the server itself refuses.
    let outside = rpc(
        &app,
        &key,
        4,
        "tools/call",
        json!({"name": "filesystem-write_file",
        "arguments": {"path": "/etc/tollgate-e2e", "content": "no"}}),
    )
    .await;
    assert!(outside["result"]["isError"] == true || outside["error"].is_object(), "{outside}");

    let stored = rpc(
        &app,
        &key,
        5,
        "tools/call",
        json!({"name": "memory-create_entities",
        "arguments": {"entities": [{"name": "Alice", "entityType": "person",
            "observations": ["works at Acme"]}]}}),
    )
    .await;
    assert!(stored["result"]["isError"] != true, "{stored}");
    let graph =
        rpc(&app, &key, 6, "tools/call", json!({"name": "memory-read_graph", "arguments": {}}))
            .await;
    assert!(graph.to_string().contains("works at Acme"), "{graph}");
    assert!(wait_for_file(&place.memory_file, "Alice").contains("Acme"));

    // A key for the memory server alone cannot touch the folder.
    let memory_only =
        new_key(&app, json!({"object_permission": {"mcp_servers": ["memory"]}})).await;
    let refused = rpc(
        &app,
        &memory_only,
        7,
        "tools/call",
        json!({"name": "filesystem-write_file",
        "arguments": {"path": place.shared.join("x").to_str().unwrap(), "content": "no"}}),
    )
    .await;
    assert!(refused["error"].is_object(), "{refused}");
    assert!(!place.shared.join("x").exists());

    let records = mcp_records(&app, 4).await;
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| r.token_hash.is_some()));
    assert!(
        records.iter().any(|r| r.model_group == "filesystem" && r.requested_model == "write_file")
    );
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and the reference MCP servers; scripts/test installs them"]
async fn claude_code_uses_the_teams_tools_through_tollgate() {
    let (main, aux) = (MockOpenAi::start().await, MockOpenAi::start().await);
    aux.set_default(ReplySpec::text("side answer"));
    main.set_default(ReplySpec::text("unexpected extra request"));
    let place = Place::new();
    let app = app(&main, &aux, &place).await;
    let key = new_key(
        &app,
        json!({"key_alias": "claude-mcp",
        "object_permission": {"mcp_servers": ["memory", "filesystem"]}}),
    )
    .await;
    let scratch = Scratch::new();

    // As the README says: tollgate added as an HTTP MCP server, with the key in a header.
    let mut add = Command::new(claude_bin());
    add.args(["mcp", "add", "--transport", "http", "tollgate", &app.url("/mcp")])
        .args(["--header", &format!("Authorization: Bearer {key}")]);
    add.current_dir(scratch.work_dir()).env_clear().env("HOME", scratch.home.path());
    if let Some(path) = std::env::var_os("PATH") {
        add.env("PATH", path);
    }
    let added = run(add, Duration::from_secs(60)).await;
    assert!(added.success(), "{added}");

    // The model (the mock) asks for two of the team's tools; Claude Code runs them.
    let target = place.shared.join("from-claude.txt");
    let write = json!({"path": target.to_str().unwrap(), "content": "hello from Claude Code"});
    let remember = json!({"entities": [{"name": "tollgate", "entityType": "project",
        "observations": ["reached through the MCP gateway"]}]});
    main.enqueue(ReplySpec::tool_calls(vec![
        ToolCall::new("toolu_mcp_write", "mcp__tollgate__filesystem-write_file", write.to_string()),
        ToolCall::new(
            "toolu_mcp_memory",
            "mcp__tollgate__memory-create_entities",
            remember.to_string(),
        ),
    ]));
    main.enqueue(ReplySpec::text("Saved the file and the note."));
    let allowed = "mcp__tollgate__filesystem-write_file,mcp__tollgate__memory-create_entities";
    // Offered to the model at once rather than found through Claude Code's tool search, so
    // the mock's first answer can call them.
    let out = claude_with_env(
        &app,
        MODEL,
        "Save a greeting in the shared folder and remember this project",
        &scratch,
        Credential::AuthToken,
        &["--allowedTools", allowed],
        &[("ENABLE_TOOL_SEARCH", "false")],
    )
    .await;
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("Saved the file and the note."), "{out}");

    // Claude Code offered the gateway's tools to the model under its MCP names.
    let first = &main.requests()[0];
    let offered = first.body["tools"].to_string();
    assert!(offered.contains("mcp__tollgate__filesystem-write_file"), "{offered}");
    assert!(offered.contains("mcp__tollgate__memory-read_graph"), "{offered}");

    // The tools' effects: the file is written, the entity stored.
    let written = std::fs::read_to_string(&target)
        .unwrap_or_else(|e| panic!("{} not written: {e}\n{out}", target.display()));
    assert_eq!(written, "hello from Claude Code");
    assert!(
        wait_for_file(&place.memory_file, "tollgate").contains("reached through the MCP gateway")
    );

    // Each call is on the key's record.
    let records = mcp_records(&app, 4).await;
    let tools: Vec<&str> = records.iter().map(|r| r.requested_model.as_str()).collect();
    assert!(tools.contains(&"write_file") && tools.contains(&"create_entities"), "{tools:?}");
    assert!(records.iter().all(|r| r.outcome == "success"), "{records:?}");
}
