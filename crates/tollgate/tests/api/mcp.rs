//! `/mcp`: the team's MCP servers (one over stdio, one over streamable HTTP) behind tollgate's
//! keys, spoken to as an MCP client speaks.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::mcp_mock::mock_binary;
use tollgate_testkit::{MockMcp, TestApp};

use crate::helpers::*;
use crate::keys::{admin, admin_get, keyed_setup, new_key};

/// A stdio server `local` (the mock binary) and an HTTP server `remote`, with a 1 s timeout.
fn servers(remote: &MockMcp, extra: &str) -> String {
    let bin = mock_binary().unwrap();
    format!(
        "mcp_servers:\n  local:\n    command: {}\n    args: [--mcp-stdio, --name, local]\n    description: Local tools\n  remote:\n    url: {}\n    transport: http\n    timeout: 1\n{extra}",
        bin.display(),
        remote.url()
    )
}

async fn setup(extra: &str) -> (MockMcp, TestApp) {
    let (remote, _models, app) = setup_with_models(extra).await;
    (remote, app)
}

/// [`setup`], keeping the model upstream too.
async fn setup_with_models(extra: &str) -> (MockMcp, tollgate_testkit::MockOpenAi, TestApp) {
    let remote = MockMcp::start_http().await;
    let (models, app) = keyed_setup(&servers(&remote, extra)).await;
    (remote, models, app)
}

/// An MCP client of tollgate: what the SDKs send.
struct Client<'a> {
    app: &'a TestApp,
    path: String,
    key: String,
    session: Option<String>,
    next: u64,
}

impl<'a> Client<'a> {
    fn new(app: &'a TestApp, path: &str, key: &str) -> Self {
        Self { app, path: path.to_owned(), key: key.to_owned(), session: None, next: 1 }
    }

    async fn post(&self, message: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = client()
            .post(self.app.url(&self.path))
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .json(message);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn initialize(&mut self) -> Value {
        let resp = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}}),
                &[],
            )
            .await;
        assert_eq!(resp.status(), 200);
        self.session = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
        assert!(self.session.is_some(), "initialize opens a session");
        let answer: Value = resp.json().await.unwrap();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.post(&initialized, &[]).await.status(), 202);
        answer["result"].clone()
    }

    /// The JSON-RPC answer (result or error object) to a request.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_with(method, params, &[]).await
    }

    async fn request_with(&mut self, method: &str, params: Value, h: &[(&str, &str)]) -> Value {
        self.next += 1;
        let id = self.next;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self.post(&message, h).await;
        assert_eq!(resp.status(), 200, "{method}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["id"], json!(id));
        answer
    }

    async fn tools(&mut self) -> Vec<String> {
        let answer = self.request("tools/list", json!({})).await;
        answer["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments})).await
    }
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"].as_str().unwrap_or_default()
}

async fn mcp_records(app: &TestApp) -> Vec<Value> {
    let (status, logs) = admin_get(app, "/spend/logs?page_size=1000").await;
    assert_eq!(status, 200, "{logs}");
    let rows = logs.as_array().cloned().unwrap_or_default();
    rows.into_iter().filter(|r| r["api"] == "mcp").collect()
}

#[tokio::test]
async fn the_admin_lists_and_calls_tools_of_every_server() {
    let (remote, app) = setup("").await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    let init = c.initialize().await;
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert_eq!(init["serverInfo"]["name"], "tollgate");
    assert!(init["instructions"].as_str().unwrap().contains("Local tools"));

    let tools = c.tools().await;
    for t in ["local-echo", "local-add", "remote-echo", "remote-slow"] {
        assert!(tools.iter().any(|n| n == t), "{t} in {tools:?}");
    }
    assert_eq!(text(&c.call("local-echo", json!({"text": "over stdio"})).await), "over stdio");
    assert_eq!(text(&c.call("remote-add", json!({"a": 2, "b": 3})).await), "5");
    // The server saw its own tool name, not the prefixed one.
    assert_eq!(remote.calls_of("tools/call")[0].tool(), Some("add"));

    // A tool's own error is an answer; a tool nobody offers is refused without asking.
    let failed = c.call("remote-fail", json!({})).await;
    assert_eq!(failed["result"]["isError"], true);
    let unknown = c.call("remote-nonesuch", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(remote.calls_of("tools/call").len(), 2);

    // `/mcp/` is the same endpoint (never a redirect); `/{server}/mcp` is one server, its
    // tools under their own names; `x-mcp-servers` narrows `/mcp`.
    let mut slash = Client::new(&app, "/mcp/", MASTER);
    slash.initialize().await;
    assert!(slash.tools().await.iter().any(|n| n == "local-echo"));
    let mut one = Client::new(&app, "/remote/mcp", MASTER);
    one.initialize().await;
    let own = one.tools().await;
    assert!(own.iter().any(|n| n == "echo") && !own.iter().any(|n| n.contains('-')), "{own:?}");
    let narrowed = c.request_with("tools/list", json!({}), &[("x-mcp-servers", "local")]).await;
    let names: Vec<&str> = narrowed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("local-")), "{names:?}");

    // Resources and prompts of the servers, too.
    let resources = c.request("resources/list", json!({})).await;
    let uri = resources["result"]["resources"][0]["uri"].as_str().unwrap().to_owned();
    let read = c.request("resources/read", json!({"uri": uri})).await;
    assert!(read["result"]["contents"][0]["text"].as_str().unwrap().starts_with("hello from"));
    let prompt = c
        .request("prompts/get", json!({"name": "local-greet", "arguments": {"name": "Ada"}}))
        .await;
    assert!(prompt["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("Ada"));

    // Each tool call is a spend record: api `mcp`, the server as model group, no tokens.
    // (The unknown tool was refused before any call: not a tool call.)
    app.wait_for_spend_written(3, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let echo = records.iter().find(|r| r["requested_model"] == "echo").unwrap();
    assert_eq!(echo["model_group"], "local");
    assert_eq!(echo["served_model"], "local/echo");
    assert_eq!(echo["status"], 200);
    assert_eq!(echo["outcome"], "success");
    assert_eq!(echo["prompt_tokens"], 0);
    let fail = records.iter().find(|r| r["requested_model"] == "fail").unwrap();
    assert_eq!(fail["attempts"][0]["tool_error"], true);

    // And metrics per server and tool.
    let metrics = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("tollgate_mcp_tool_calls_total")
            && l.contains("server=\"remote\"")
            && l.contains("tool=\"add\"")
            && l.contains("outcome=\"success\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_key_uses_only_the_servers_it_is_given() {
    let (remote, app) = setup("").await;
    let only_local = new_key(&app, json!({"object_permission": {"mcp_servers": ["local"]}})).await;
    let nothing = new_key(&app, json!({})).await;

    let mut c = Client::new(&app, "/mcp", &only_local);
    c.initialize().await;
    let tools = c.tools().await;
    assert!(!tools.is_empty() && tools.iter().all(|t| t.starts_with("local-")), "{tools:?}");
    assert_eq!(text(&c.call("local-echo", json!({"text": "mine"})).await), "mine");
    let refused = c.call("remote-echo", json!({"text": "theirs"})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(remote.calls_of("tools/call").is_empty());
    // Another server's endpoint, and narrowing to it, are refused outright.
    let resp = Client::new(&app, "/remote/mcp", &only_local)
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), &[])
        .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("remote"), "{body}");
    let resp = c
        .post(
            &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
            &[("x-mcp-servers", "remote")],
        )
        .await;
    assert_eq!(resp.status(), 403);

    // A key that names no server gets none (no `default_mcp_servers` here).
    let mut none = Client::new(&app, "/mcp", &nothing);
    none.initialize().await;
    assert!(none.tools().await.is_empty());

    // A tool list narrows a server to those tools.
    let echo_only = new_key(
        &app,
        json!({"object_permission": {"mcp_servers": ["local"], "mcp_tool_permissions": {"local": ["echo"]}}}),
    )
    .await;
    let mut e = Client::new(&app, "/mcp", &echo_only);
    e.initialize().await;
    assert_eq!(e.tools().await, ["local-echo"]);
    assert_eq!(e.call("local-add", json!({"a": 1, "b": 1})).await["error"]["code"], -32602);

    // Without a key, nothing; with a bad one, 401 in JSON-RPC's shape.
    let resp = Client::new(&app, "/mcp", "sk-wrong")
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}), &[])
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn default_servers_apply_to_keys_and_teams_that_say_nothing() {
    let (_remote, app) = setup("default_mcp_servers: [remote]\n").await;
    let plain = new_key(&app, json!({})).await;
    let mut c = Client::new(&app, "/mcp", &plain);
    c.initialize().await;
    let tools = c.tools().await;
    assert!(!tools.is_empty() && tools.iter().all(|t| t.starts_with("remote-")), "{tools:?}");

    // A team's list replaces the default; a key of the team with its own list gets only the
    // servers on both.
    admin(
        &app,
        "/team/new",
        json!({"team_id": "ops", "object_permission": {"mcp_servers": ["local"]}}),
    )
    .await;
    let member = new_key(&app, json!({"team_id": "ops"})).await;
    let mut m = Client::new(&app, "/mcp", &member);
    m.initialize().await;
    assert!(m.tools().await.iter().all(|t| t.starts_with("local-")));
    let both = new_key(
        &app,
        json!({"team_id": "ops", "object_permission": {"mcp_servers": ["local", "remote"]}}),
    )
    .await;
    let mut b = Client::new(&app, "/mcp", &both);
    b.initialize().await;
    assert!(b.tools().await.iter().all(|t| t.starts_with("local-")));
}

#[tokio::test]
async fn tool_calls_count_against_the_keys_rate_limit() {
    let (_remote, app) = setup("").await;
    let key =
        new_key(&app, json!({"rpm_limit": 2, "object_permission": {"mcp_servers": ["remote"]}}))
            .await;
    let mut c = Client::new(&app, "/mcp", &key);
    c.initialize().await;
    // Listing is not a tool call.
    for _ in 0..3 {
        c.tools().await;
    }
    assert_eq!(text(&c.call("remote-echo", json!({"text": "1"})).await), "1");
    assert_eq!(text(&c.call("remote-echo", json!({"text": "2"})).await), "2");
    let third = c.call("remote-echo", json!({"text": "3"})).await;
    assert_eq!(third["error"]["code"], -32003, "{third}");
    assert!(third["error"]["message"].as_str().unwrap().contains("rate limit"), "{third}");
    app.wait_for_spend_written(3, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records.iter().filter(|r| r["outcome"] == "refused").count(), 1);
}

#[tokio::test]
async fn a_crashed_stdio_server_is_started_again() {
    let (_remote, app) = setup("").await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    c.initialize().await;
    assert_eq!(text(&c.call("local-echo", json!({"text": "before"})).await), "before");
    let crashed = c.call("local-crash", json!({})).await;
    assert_eq!(crashed["error"]["code"], -32000, "{crashed}");
    assert_eq!(text(&c.call("local-echo", json!({"text": "after"})).await), "after");
    app.wait_for_spend_written(3, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    let crash = records.iter().find(|r| r["requested_model"] == "crash").unwrap();
    assert_eq!(crash["outcome"], "upstream_failed");
    assert_eq!(crash["status"], 502);
}

#[tokio::test]
async fn a_server_that_is_down_fails_alone_and_its_calls_are_recorded() {
    let (remote, app) = setup("").await;
    remote.stop().await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    c.initialize().await;
    // The other server's tools are still listed.
    let tools = c.tools().await;
    assert!(tools.iter().any(|t| t == "local-echo"), "{tools:?}");
    assert!(!tools.iter().any(|t| t.starts_with("remote-")), "{tools:?}");
    let down = c.call("remote-echo", json!({"text": "x"})).await;
    assert_eq!(down["error"]["code"], -32000, "{down}");
    assert!(down["error"]["message"].as_str().unwrap().contains("remote"), "{down}");
    app.wait_for_spend_written(1, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "upstream_failed");
    assert_eq!(records[0]["status"], 502);
}

#[tokio::test]
async fn a_slow_server_times_out_with_a_clear_error() {
    let (_remote, app) = setup("").await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    c.initialize().await;
    // `remote` has a 1 s timeout.
    let started = std::time::Instant::now();
    let answer = c.call("remote-slow", json!({"seconds": 5})).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("remote") && message.contains("1"), "{message}");
    app.wait_for_spend_written(1, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    assert_eq!(records[0]["status"], 504);
}

#[tokio::test]
async fn progress_streams_and_a_cancel_stops_the_call_upstream() {
    let (remote, app) = setup("").await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    c.initialize().await;
    // With a progress token and an Accept that takes a stream, the answer is an event
    // stream: progress, then the result.
    let resp = c
        .post(
            &json!({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": {
                "name": "local-slow", "arguments": {"seconds": 0.35},
                "_meta": {"progressToken": "p-1"}}}),
            &[],
        )
        .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_data(resp).await;
    let messages: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 50);
    assert!(last["result"]["content"][0]["text"].as_str().unwrap().contains("waited"));
    let progress: Vec<&Value> =
        messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(!progress.is_empty(), "{messages:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-1"));

    // A client's cancel of a call in flight reaches the server.
    let mut d = Client::new(&app, "/mcp", MASTER);
    d.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
        "params": {"name": "remote-slow", "arguments": {"seconds": 5}}});
    let (answer, status) = tokio::join!(d.post(&call, &[]), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 77, "reason": "user"}});
        d.post(&n, &[]).await.status()
    });
    assert_eq!(status, 202);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32800, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while remote.calls_of("notifications/cancelled").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the server was not told of the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancels = remote.calls_of("notifications/cancelled");
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    app.wait_for_spend_written(2, Duration::from_secs(10)).await;
    let records = mcp_records(&app).await;
    let cancelled = records.iter().find(|r| r["outcome"] == "cancelled").unwrap();
    assert_eq!(cancelled["requested_model"], "slow");
}

#[tokio::test]
async fn the_endpoint_keeps_to_the_transport() {
    let (_remote, app) = setup("").await;
    let mut c = Client::new(&app, "/mcp", MASTER);
    c.initialize().await;
    // No stream of server messages, nothing to end.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = client()
            .request(method.clone(), app.url("/mcp"))
            .bearer_auth(MASTER)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST");
    }
    // A session of another key, or a forged one, is unknown: the client starts again.
    let key = new_key(&app, json!({})).await;
    let mut other = Client::new(&app, "/mcp", &key);
    other.session = c.session.clone();
    let resp = other.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}), &[]).await;
    assert_eq!(resp.status(), 404);
    // Bad JSON, a batch, an unknown protocol version, an Accept it cannot answer.
    let bad = client()
        .post(app.url("/mcp"))
        .bearer_auth(MASTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let batch = c.post(&json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]), &[]).await;
    assert_eq!(batch.status(), 400);
    let ping = json!({"jsonrpc": "2.0", "id": 4, "method": "ping"});
    let version = c.post(&ping, &[("mcp-protocol-version", "1999-01-01")]).await;
    assert_eq!(version.status(), 400);
    let html = client()
        .post(app.url("/mcp"))
        .bearer_auth(MASTER)
        .header("accept", "text/html")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 406);
    // A page of another site may not call it, key or not.
    let cross = c
        .post(&ping, &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(cross.status(), 403);
    // An Accept of only event streams gets one.
    let streamed = client()
        .post(app.url("/mcp"))
        .bearer_auth(MASTER)
        .header("accept", "text/event-stream")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let events = sse_data(streamed).await;
    assert_eq!(serde_json::from_str::<Value>(&events[0]).unwrap()["id"], 4);
}

#[tokio::test]
async fn a_query_narrows_the_tool_list_to_the_closest_tools() {
    let (_remote, _models, app) = setup_with_models(
        "litellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n    embedding_model: text-embedding-3-small\n    top_k: 2\n",
    )
    .await;
    let key =
        new_key(&app, json!({"object_permission": {"mcp_servers": ["local", "remote"]}})).await;
    let mut c = Client::new(&app, "/mcp", &key);
    c.initialize().await;
    let all = c.tools().await;
    assert!(all.len() > 2, "{all:?}");
    let narrowed = c.request("tools/list", json!({"query": "add two numbers"})).await;
    let mut names: Vec<&str> = narrowed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{narrowed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["local-add", "remote-add"]);
    let meta = c.request("tools/list", json!({"_meta": {"query": "return the text"}})).await;
    let first = meta["result"]["tools"][0]["name"].as_str().unwrap();
    assert!(first.ends_with("-echo"), "{meta}");
    // The embeddings were the key's own requests.
    app.wait_for_spend_written(2, Duration::from_secs(10)).await;
    let (_, logs) = admin_get(&app, "/spend/logs?page_size=100").await;
    let embeddings: Vec<&Value> =
        logs.as_array().unwrap().iter().filter(|r| r["api"] == "embeddings").collect();
    assert_eq!(embeddings.len(), 2, "{logs}");
    assert!(embeddings.iter().all(|r| r["token_hash"].is_string()));
}
