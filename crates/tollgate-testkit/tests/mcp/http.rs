//! The streamable HTTP transport: lifecycle, session rules, tools, streaming, knobs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{McpOptions, McpTransport, MockMcp};

use crate::support::{
    ACCEPT_BOTH, Session, SseReader, call_tool, client, initialize_params, notification, request,
    text,
};

#[tokio::test]
async fn initialize_negotiates_the_version_and_opens_a_session() {
    let mcp = MockMcp::start_http_with(McpOptions::named("docs")).await.unwrap();
    let session = Session::new(mcp.url());
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
        ("1999-01-01", "2025-06-18"),
    ] {
        let response = session.post(&request(1, "initialize", initialize_params(asked))).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        assert!(id.len() >= 32 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], 1);
        assert_eq!(body["result"]["protocolVersion"], answered);
        assert_eq!(
            body["result"]["capabilities"],
            json!({"tools": {"listChanged": false}, "resources": {}, "prompts": {}})
        );
        assert_eq!(body["result"]["serverInfo"]["name"], "docs");
        assert!(body["result"]["serverInfo"]["version"].is_string());
    }
    assert_eq!(mcp.sessions().len(), 4);
}

#[tokio::test]
async fn session_rules_follow_the_specification() {
    let mcp = MockMcp::start_http().await;
    let mut session = Session::new(mcp.url());
    // Before initialize there is no session to name.
    let response = session.post(&request(1, "tools/list", json!({}))).await;
    assert_eq!(response.status(), 400);
    session.initialize().await;
    assert_eq!(session.rpc(&request(2, "ping", json!({}))).await["result"], json!({}));

    let stranger = Session { id: Some("no-such-session".to_owned()), ..Session::new(mcp.url()) };
    assert_eq!(stranger.post(&request(3, "ping", json!({}))).await.status(), 404);

    let http = client();
    let get = http.get(mcp.url()).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST, DELETE");

    let id = session.id.clone().unwrap();
    let delete = http.delete(mcp.url()).header("mcp-session-id", &id).send().await.unwrap();
    assert_eq!(delete.status(), 200);
    assert!(mcp.sessions().is_empty());
    assert_eq!(session.post(&request(4, "ping", json!({}))).await.status(), 404);
    let again = http.delete(mcp.url()).header("mcp-session-id", &id).send().await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(http.delete(mcp.url()).send().await.unwrap().status(), 400);

    // A server restart loses sessions: the client must initialize again.
    session.initialize().await;
    mcp.expire_sessions();
    assert_eq!(session.post(&request(5, "ping", json!({}))).await.status(), 404);
}

#[tokio::test]
async fn malformed_posts_are_refused_with_the_specified_status() {
    let mcp = MockMcp::start_http().await;
    let mut session = Session::new(mcp.url());
    session.initialize().await;
    let id = session.id.clone().unwrap();
    let http = client();
    let post = |accept: &str, version: &str, body: &str| {
        http.post(mcp.url())
            .header("accept", accept)
            .header("content-type", "application/json")
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", version)
            .body(body.to_owned())
            .send()
    };
    let ping = request(1, "ping", json!({})).to_string();
    assert_eq!(post("application/json", "2025-06-18", &ping).await.unwrap().status(), 406);
    assert_eq!(post(ACCEPT_BOTH, "2099-01-01", &ping).await.unwrap().status(), 400);
    assert_eq!(post(ACCEPT_BOTH, "2025-03-26", &ping).await.unwrap().status(), 200);

    let broken = post(ACCEPT_BOTH, "2025-06-18", "{not json").await.unwrap();
    assert_eq!(broken.status(), 400);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);

    let no_version = json!({"id": 1, "method": "ping"}).to_string();
    let invalid = post(ACCEPT_BOTH, "2025-06-18", &no_version).await.unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(invalid.json::<Value>().await.unwrap()["error"]["code"], -32600);
}

#[tokio::test]
async fn tools_are_listed_and_called() {
    let mcp = MockMcp::start_http().await;
    let mut session = Session::new(mcp.url());
    session.initialize().await;

    let list = session.rpc(&request(1, "tools/list", json!({}))).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, tollgate_testkit::mcp_mock::TOOLS);
    for tool in tools {
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()), "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    assert_eq!(tools[0]["inputSchema"]["required"], json!(["text"]));

    // String ids are answered with the same string.
    let echo = session.rpc(&call_tool("req-7", "echo", json!({"text": "hi there"}))).await;
    assert_eq!(echo["id"], "req-7");
    assert_eq!(echo["result"]["content"], json!([{"type": "text", "text": "hi there"}]));
    assert_eq!(echo["result"]["isError"], false);

    let sum = session.rpc(&call_tool(2, "add", json!({"a": 2, "b": 40}))).await;
    assert_eq!(text(&sum["result"]), "42");
    let sum = session.rpc(&call_tool(3, "add", json!({"a": 0.5, "b": 0.25}))).await;
    assert_eq!(text(&sum["result"]), "0.75");
    let bad = session.rpc(&call_tool(4, "add", json!({"a": "2", "b": 1}))).await;
    assert_eq!(bad["error"]["code"], -32602);

    let fail = session.rpc(&call_tool(5, "fail", json!({}))).await;
    assert_eq!(fail["result"]["isError"], true);
    assert!(!text(&fail["result"]).is_empty());

    let crash = session.rpc(&call_tool(6, "crash", json!({}))).await;
    assert_eq!(crash["id"], 6);
    assert_eq!(crash["error"]["code"], -32603);

    let unknown = session.rpc(&call_tool(7, "nope", json!({}))).await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(unknown["error"]["message"], "unknown tool: nope");
    let method = session.rpc(&request(8, "sampling/createMessage", json!({}))).await;
    assert_eq!(method["error"]["code"], -32601);
}

#[tokio::test]
async fn hidden_tools_are_neither_listed_nor_callable() {
    let options = McpOptions::named("math").only(&["add"]);
    let mcp = MockMcp::start_http_with(options).await.unwrap();
    let mut session = Session::new(mcp.url());
    session.initialize().await;
    let list = session.rpc(&request(1, "tools/list", json!({}))).await;
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 1);
    assert_eq!(list["result"]["tools"][0]["name"], "add");
    let echo = session.rpc(&call_tool(2, "echo", json!({"text": "x"}))).await;
    assert_eq!(echo["error"]["code"], -32602);

    let error = MockMcp::start_http_with(McpOptions::default().only(&["ehco"])).await.unwrap_err();
    assert!(error.to_string().contains("unknown mock MCP tool `ehco`"), "{error}");
}

#[tokio::test]
async fn resources_and_prompts_are_served() {
    let mcp = MockMcp::start_http_with(McpOptions::named("wiki")).await.unwrap();
    let mut session = Session::new(mcp.url());
    session.initialize().await;
    let list = session.rpc(&request(1, "resources/list", json!({}))).await;
    assert_eq!(list["result"]["resources"][0]["uri"], "mock://greeting");
    assert_eq!(list["result"]["resources"][0]["mimeType"], "text/plain");
    let read = session.rpc(&request(2, "resources/read", json!({"uri": "mock://greeting"}))).await;
    assert_eq!(read["result"]["contents"][0]["text"], "hello from wiki");
    let missing = session.rpc(&request(3, "resources/read", json!({"uri": "mock://x"}))).await;
    assert_eq!(missing["error"]["code"], -32602);

    let prompts = session.rpc(&request(4, "prompts/list", json!({}))).await;
    assert_eq!(prompts["result"]["prompts"][0]["name"], "greet");
    assert_eq!(prompts["result"]["prompts"][0]["arguments"][0]["name"], "name");
    let params = json!({"name": "greet", "arguments": {"name": "Ada"}});
    let prompt = session.rpc(&request(5, "prompts/get", params)).await;
    assert_eq!(
        prompt["result"]["messages"],
        json!([{"role": "user", "content": {"type": "text", "text": "Say hello to Ada"}}])
    );
    let unnamed = session.rpc(&request(6, "prompts/get", json!({"name": "greet"}))).await;
    assert_eq!(unnamed["error"]["code"], -32602);
}

#[tokio::test]
async fn slow_streams_progress_then_its_answer() {
    let mcp = MockMcp::start_http().await;
    let mut session = Session::new(mcp.url());
    session.initialize().await;
    let mut call = call_tool(9, "slow", json!({"seconds": 0.35}));
    call["params"]["_meta"] = json!({"progressToken": "tok-1"});
    let started = Instant::now();
    let mut events = SseReader::new(session.post(&call).await);
    let messages = events.rest().await;
    assert!(started.elapsed() >= Duration::from_millis(350));
    let (answer, progress) = messages.split_last().unwrap();
    let steps: Vec<_> = progress
        .iter()
        .map(|p| {
            assert_eq!(p["method"], "notifications/progress");
            assert_eq!(p["params"]["progressToken"], "tok-1");
            assert_eq!(p["params"]["total"], 4);
            p["params"]["progress"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2, 3, 4]);
    assert_eq!(answer["id"], 9);
    assert_eq!(text(&answer["result"]), "waited 0.35 s");

    // Without a progress token the answer is one JSON body, after the wait.
    let started = Instant::now();
    let plain = session.rpc(&call_tool(10, "slow", json!({"seconds": 0.2}))).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(text(&plain["result"]), "waited 0.2 s");
}

#[tokio::test]
async fn a_cancelled_slow_call_stops_without_an_answer() {
    let mcp = MockMcp::start_http().await;
    let mut session = Session::new(mcp.url());
    session.initialize().await;
    let mut call = call_tool(11, "slow", json!({"seconds": 30}));
    call["params"]["_meta"] = json!({"progressToken": 5});
    let started = Instant::now();
    let mut events = SseReader::new(session.post(&call).await);
    let first = events.next().await.unwrap().json();
    assert_eq!(first["params"]["progressToken"], 5);
    assert_eq!(first["params"]["total"], 300);
    let cancel =
        notification("notifications/cancelled", json!({"requestId": 11, "reason": "test"}));
    assert_eq!(session.post(&cancel).await.status(), 202);
    let rest = events.rest().await;
    assert!(rest.iter().all(|m| m["method"] == "notifications/progress"), "{rest:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // As JSON (no progress token), a cancelled request ends with 204 and no JSON-RPC answer.
    let twelve = call_tool("twelve", "slow", json!({"seconds": 30}));
    let pending = session.post(&twelve);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cancel = notification("notifications/cancelled", json!({"requestId": "twelve"}));
        session.post(&cancel).await.status()
    };
    let (response, cancelled) = tokio::join!(pending, cancel);
    assert_eq!(cancelled, 202);
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn sse_responses_answer_every_request_as_a_stream() {
    let mcp = MockMcp::start_http_with(McpOptions { sse_responses: true, ..McpOptions::default() })
        .await
        .unwrap();
    let mut session = Session::new(mcp.url());
    let response = session.post(&request(1, "initialize", initialize_params("2025-06-18"))).await;
    session.id = Some(response.headers()["mcp-session-id"].to_str().unwrap().to_owned());
    let init = SseReader::new(response).rest().await;
    assert_eq!(init.len(), 1);
    assert_eq!(init[0]["result"]["protocolVersion"], "2025-06-18");
    let mut echo = SseReader::new(session.post(&call_tool(2, "echo", json!({"text": "x"}))).await);
    let messages = echo.rest().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(text(&messages[0]["result"]), "x");
}

#[tokio::test]
async fn headers_are_recorded_and_reported_by_whoami() {
    let options = McpOptions { bearer_token: Some("s3cret".to_owned()), ..McpOptions::default() };
    let mcp = MockMcp::start_http_with(options).await.unwrap();
    let anonymous = Session::new(mcp.url());
    let refused = anonymous.post(&request(1, "initialize", initialize_params("2025-06-18"))).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let wrong = Session::new(mcp.url()).with_token("guess");
    let refused = wrong.post(&request(1, "initialize", initialize_params("2025-06-18"))).await;
    assert_eq!(refused.status(), 401);
    let sse = client().get(mcp.sse_url()).send().await.unwrap();
    assert_eq!(sse.status(), 401);

    let mut session = Session::new(mcp.url()).with_token("s3cret");
    session.initialize().await;
    let response = session
        .http
        .post(&session.url)
        .header("accept", ACCEPT_BOTH)
        .header("mcp-session-id", session.id.as_deref().unwrap())
        .header("x-team", "blue")
        .bearer_auth("s3cret")
        .json(&call_tool(2, "whoami", json!({})))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let seen: Value = serde_json::from_str(text(&answer["result"])).unwrap();
    assert_eq!(seen["x-team"], "blue");
    assert_eq!(seen["authorization"], "Bearer s3cret");
    assert_eq!(seen["mcp-session-id"], session.id.as_deref().unwrap());

    let calls = mcp.calls();
    let methods: Vec<_> = calls.iter().map(|c| c.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        ["initialize", "initialize", "initialize", "notifications/initialized", "tools/call"]
    );
    assert_eq!(calls[0].header("authorization"), None);
    assert_eq!(calls[1].header("Authorization"), Some("Bearer guess"));
    let whoami = &calls[4];
    assert_eq!(whoami.transport, McpTransport::StreamableHttp);
    assert_eq!(whoami.tool(), Some("whoami"));
    assert_eq!(whoami.id, Some(json!(2)));
    assert_eq!(whoami.header("x-team"), Some("blue"));
    assert_eq!(whoami.session, session.id);
    assert_eq!(calls[3].id, None);
    assert_eq!(mcp.calls_of("initialize").len(), 3);
    mcp.clear_calls();
    assert!(mcp.calls().is_empty());
}

#[tokio::test]
async fn delay_failure_and_stop_are_under_the_test_s_control() {
    let options = McpOptions { delay: Duration::from_millis(300), ..McpOptions::default() };
    let mcp = MockMcp::start_http_with(options).await.unwrap();
    let mut session = Session::new(mcp.url());
    let started = Instant::now();
    session.initialize().await;
    assert!(started.elapsed() >= Duration::from_millis(600), "initialize and its ack both wait");
    mcp.set_delay(Duration::ZERO);
    let started = Instant::now();
    session.rpc(&request(1, "ping", json!({}))).await;
    assert!(started.elapsed() < Duration::from_millis(300));

    mcp.set_http_failure(Some(500));
    let failing = session.post(&request(2, "ping", json!({}))).await;
    assert_eq!(failing.status(), 500);
    assert_eq!(failing.text().await.unwrap(), "mock MCP server: failing on purpose");
    mcp.set_http_failure(Some(503));
    assert_eq!(session.post(&request(3, "ping", json!({}))).await.status(), 503);
    mcp.set_http_failure(None);
    session.rpc(&request(4, "ping", json!({}))).await;
    assert_eq!(mcp.calls_of("ping").len(), 4, "refused messages are recorded too");

    mcp.stop().await;
    let error = client().post(mcp.url()).body("{}").send().await.unwrap_err();
    assert!(error.is_connect(), "{error}");
}
