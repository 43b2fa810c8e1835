//! The gateway against real MCP servers of the testkit over each transport.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tollgate_config::{MapEnv, McpServer};
use tollgate_mcp::{Gateway, Grant, Progress, Scope, rpc};
use tollgate_testkit::mcp_mock::mock_binary;
use tollgate_testkit::{McpOptions, MockMcp};

fn servers(yaml: &str) -> Vec<McpServer> {
    let config = tollgate_config::from_yaml_str(yaml, None, &MapEnv::default()).unwrap();
    assert!(config.diagnostics.is_empty(), "{:?}", config.diagnostics);
    config.mcp.servers
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn all(gateway: &Gateway) -> Grant {
    Grant {
        servers: gateway.servers().iter().map(|s| s.name().to_owned()).collect(),
        ..Grant::default()
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_stdio_server_is_started_on_first_use_and_again_after_it_dies() {
    let bin = mock_binary().unwrap();
    let yaml = format!(
        "mcp_servers:\n  local:\n    command: {}\n    args: [--mcp-stdio, --name, local]\n    env: {{MOCK_MCP_SECRET: sesame}}\n",
        bin.display()
    );
    let gateway = Gateway::new(&servers(&yaml), &client());
    let view = gateway.view(&all(&gateway), &Scope::All, None).unwrap();
    let tools = gateway.handle(&view, "tools/list", json!({}), None).await.unwrap();
    let names: Vec<&str> =
        tools["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"local-echo") && names.contains(&"local-slow"), "{names:?}");
    let echoed = gateway
        .handle(
            &view,
            "tools/call",
            json!({"name": "local-echo", "arguments": {"text": "hi"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text(&echoed), "hi");
    // Its environment has what the config gives it.
    let secret = gateway
        .handle(&view, "tools/call", json!({"name": "local-whoami", "arguments": {}}), None)
        .await
        .unwrap();
    assert_eq!(text(&secret), "sesame");
    // It dies mid-call: the caller hears why, and the next call starts it again.
    let err = gateway
        .handle(&view, "tools/call", json!({"name": "local-crash", "arguments": {}}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, rpc::CONNECTION_CLOSED, "{err:?}");
    assert!(err.message.contains("local"), "{err:?}");
    let again = gateway
        .handle(
            &view,
            "tools/call",
            json!({"name": "local-echo", "arguments": {"text": "back"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text(&again), "back");
    assert_eq!(gateway.server("local").unwrap().status().restarts, 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_http_server_gets_its_headers_progress_and_a_timeout() {
    let mock = MockMcp::start_http_with(McpOptions {
        bearer_token: Some("tok".into()),
        ..McpOptions::named("remote")
    })
    .await
    .unwrap();
    let yaml = format!(
        "mcp_servers:\n  remote:\n    url: {}\n    auth_type: bearer_token\n    auth_value: tok\n    static_headers: {{X-Team: blue}}\n    timeout: 1\n",
        mock.url()
    );
    let gateway = Gateway::new(&servers(&yaml), &client());
    let view = gateway.view(&all(&gateway), &Scope::One("remote".into()), None).unwrap();
    let r = gateway
        .handle(&view, "tools/call", json!({"name": "add", "arguments": {"a": 2, "b": 3}}), None)
        .await
        .unwrap();
    assert_eq!(text(&r), "5");
    let call = mock.calls().into_iter().find(|c| c.tool() == Some("add")).unwrap();
    assert_eq!(call.header("authorization"), Some("Bearer tok"));
    assert_eq!(call.header("x-team"), Some("blue"));
    assert_eq!(call.header("mcp-protocol-version"), Some("2025-06-18"));

    // Progress comes back under the caller's own token.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let progress = Progress { token: json!("mine"), sink: tx };
    let params =
        json!({"name": "slow", "arguments": {"seconds": 0.35}, "_meta": {"progressToken": "mine"}});
    let r = gateway.handle(&view, "tools/call", params, Some(progress)).await.unwrap();
    assert!(text(&r).contains("waited"), "{r}");
    let first = rx.recv().await.unwrap();
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(first["params"]["progressToken"], "mine");

    // Too slow: a clear error, and the server is told to stop.
    let err = gateway
        .handle(&view, "tools/call", json!({"name": "slow", "arguments": {"seconds": 5}}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, rpc::REQUEST_TIMEOUT);
    assert!(err.message.contains("within 1 s"), "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        mock.calls_of("notifications/cancelled").len() == 1,
        "{:?}",
        mock.calls_of("notifications/cancelled")
    );

    // The server forgets the session: the gateway starts a new one unseen.
    mock.expire_sessions();
    let r = gateway
        .handle(&view, "tools/call", json!({"name": "echo", "arguments": {"text": "again"}}), None)
        .await
        .unwrap();
    assert_eq!(text(&r), "again");
    assert_eq!(mock.calls_of("initialize").len(), 2);

    // Down: a JSON-RPC error naming the server.
    mock.stop().await;
    let err = gateway
        .handle(&view, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, rpc::CONNECTION_CLOSED);
    assert!(err.message.contains("`remote` is unavailable"), "{err:?}");
    assert!(gateway.server("remote").unwrap().status().last_error.is_some());
}

#[tokio::test]
async fn an_sse_server_answers_on_its_event_stream() {
    let mock = MockMcp::start_http_with(McpOptions::named("old")).await.unwrap();
    let yaml = format!("mcp_servers:\n  old:\n    url: {}\n    transport: sse\n", mock.sse_url());
    let gateway = Gateway::new(&servers(&yaml), &client());
    let view = gateway.view(&all(&gateway), &Scope::All, None).unwrap();
    let r = gateway
        .handle(
            &view,
            "tools/call",
            json!({"name": "old-echo", "arguments": {"text": "sse"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text(&r), "sse");
    let res = gateway.handle(&view, "resources/list", json!({}), None).await.unwrap();
    let uri = res["resources"][0]["uri"].as_str().unwrap().to_owned();
    let read = gateway.handle(&view, "resources/read", json!({"uri": uri}), None).await.unwrap();
    assert_eq!(read["contents"][0]["text"], "hello from old");
    let prompts = gateway.handle(&view, "prompts/list", json!({}), None).await.unwrap();
    assert_eq!(prompts["prompts"][0]["name"], "old-greet");
    let got = gateway
        .handle(
            &view,
            "prompts/get",
            json!({"name": "old-greet", "arguments": {"name": "Ada"}}),
            None,
        )
        .await
        .unwrap();
    assert!(got.to_string().contains("Say hello to Ada"), "{got}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_grant_narrows_servers_and_tools_and_the_config_hides_tools() {
    let a = MockMcp::start_http_with(McpOptions::named("a")).await.unwrap();
    let b = MockMcp::start_http_with(McpOptions::named("b")).await.unwrap();
    let yaml = format!(
        "mcp_servers:\n  a:\n    url: {}\n    disallowed_tools: [crash]\n  b:\n    url: {}\n",
        a.url(),
        b.url()
    );
    let gateway = Gateway::new(&servers(&yaml), &client());
    let grant = Grant {
        servers: vec!["a".into()],
        tools: [("a".to_owned(), vec!["echo".to_owned(), "crash".to_owned()])].into(),
    };
    let view = gateway.view(&grant, &Scope::All, None).unwrap();
    let tools = gateway.handle(&view, "tools/list", json!({}), None).await.unwrap();
    let names: Vec<&str> =
        tools["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["a-echo"]);
    for hidden in ["a-add", "a-crash", "b-echo", "echo"] {
        let err = gateway
            .handle(&view, "tools/call", json!({"name": hidden, "arguments": {}}), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, rpc::INVALID_PARAMS, "{hidden}");
    }
    assert!(gateway.view(&grant, &Scope::One("b".into()), None).is_err());
    assert!(gateway.view(&grant, &Scope::All, Some(&["b".to_owned()])).is_err());
    assert!(gateway.view(&grant, &Scope::One("zzz".into()), None).is_err());
    assert!(b.calls().is_empty());
}

#[tokio::test]
async fn the_server_set_is_replaced_keeping_unchanged_servers_running() {
    let bin = mock_binary().unwrap();
    let entry = |name: &str| {
        format!(
            "  {name}:\n    command: {}\n    args: [--mcp-stdio, --name, {name}]\n",
            bin.display()
        )
    };
    let first = servers(&format!("mcp_servers:\n{}{}", entry("a"), entry("b")));
    let gateway = Gateway::new(&first, &client());
    let view = gateway.view(&all(&gateway), &Scope::All, None).unwrap();
    gateway.handle(&view, "tools/list", json!({}), None).await.unwrap();
    let a = gateway.server("a").unwrap();
    assert!(a.status().connected && gateway.server("b").unwrap().status().connected);
    // Held weakly, as a test's handle must not keep it in use.
    let b = std::sync::Arc::downgrade(&gateway.server("b").unwrap());
    let b_connected = || b.upgrade().is_some_and(|b| b.status().connected);

    let second = servers(&format!("mcp_servers:\n{}{}", entry("a"), entry("c")));
    assert_eq!(gateway.set_servers(&second), ["c"]);
    let names: Vec<String> = gateway.servers().iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(names, ["a", "c"]);
    // `a` is the same server, still connected; `b` is gone from new views.
    assert!(std::sync::Arc::ptr_eq(&a, &gateway.server("a").unwrap()));
    assert!(a.status().connected);
    assert!(gateway.server("b").is_none());
    let err = gateway.view(
        &Grant { servers: vec!["b".into()], ..Grant::default() },
        &Scope::One("b".into()),
        None,
    );
    assert!(err.is_err());
    // A view made before the change still reaches `b` until it is done with it.
    let echoed = gateway
        .handle(
            &view,
            "tools/call",
            json!({"name": "b-echo", "arguments": {"text": "still"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text(&echoed), "still");
    assert!(b_connected());
    drop(view);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b_connected() {
        assert!(tokio::time::Instant::now() < deadline, "b was not stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new server answers.
    let view = gateway.view(&all(&gateway), &Scope::One("c".into()), None).unwrap();
    let tools = gateway.handle(&view, "tools/list", json!({}), None).await.unwrap();
    assert!(!tools["tools"].as_array().unwrap().is_empty());
    gateway.shutdown().await;
}
