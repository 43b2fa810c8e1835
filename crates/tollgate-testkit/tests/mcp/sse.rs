//! The HTTP+SSE transport of revision 2024-11-05 on the same mock.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{McpOptions, McpTransport, MockMcp};

use crate::support::{
    SseReader, call_tool, client, initialize_params, notification, request, text,
};

/// Opens `GET /sse`; returns the stream (past its `endpoint` event) and the POST URL.
async fn open(mcp: &MockMcp) -> (SseReader, String) {
    let response =
        client().get(mcp.sse_url()).header("accept", "text/event-stream").send().await.unwrap();
    let mut events = SseReader::new(response);
    let endpoint = events.next().await.unwrap();
    assert_eq!(endpoint.name, "endpoint");
    assert!(endpoint.data.starts_with("/messages?sessionId="), "{}", endpoint.data);
    (events, format!("{}{}", mcp.origin(), endpoint.data))
}

async fn post(url: &str, message: &Value) -> reqwest::Response {
    client().post(url).json(message).send().await.unwrap()
}

/// The next `message` event's JSON.
async fn next_message(events: &mut SseReader) -> Value {
    let event = events.next().await.expect("the stream stays open");
    assert_eq!(event.name, "message");
    event.json()
}

#[tokio::test]
async fn answers_travel_on_the_event_stream() {
    let mcp = MockMcp::start_http_with(McpOptions::named("legacy")).await.unwrap();
    let (mut events, endpoint) = open(&mcp).await;
    assert_eq!(mcp.sse_streams(), 1);

    let accepted =
        post(&endpoint, &request(1, "initialize", initialize_params("2024-11-05"))).await;
    assert_eq!(accepted.status(), 202);
    let init = next_message(&mut events).await;
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], "legacy");
    let ack = post(&endpoint, &notification("notifications/initialized", json!({}))).await;
    assert_eq!(ack.status(), 202);

    post(&endpoint, &request("list", "tools/list", json!({}))).await;
    let list = next_message(&mut events).await;
    assert_eq!(list["id"], "list");
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 6);
    post(&endpoint, &call_tool(2, "echo", json!({"text": "over sse"}))).await;
    assert_eq!(text(&next_message(&mut events).await["result"]), "over sse");

    let calls = mcp.calls();
    assert!(calls.iter().all(|c| c.transport == McpTransport::Sse));
    let session = endpoint.split_once("sessionId=").unwrap().1;
    assert!(calls.iter().all(|c| c.session.as_deref() == Some(session)));

    drop(events);
    for _ in 0..50 {
        if mcp.sse_streams() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mcp.sse_streams(), 0, "closing the stream ends the session");
    assert_eq!(post(&endpoint, &request(3, "ping", json!({}))).await.status(), 404);
}

#[tokio::test]
async fn progress_and_cancellation_work_on_the_stream() {
    let mcp = MockMcp::start_http().await;
    let (mut events, endpoint) = open(&mcp).await;
    let mut call = call_tool(1, "slow", json!({"seconds": 0.2}));
    call["params"]["_meta"] = json!({"progressToken": "p"});
    post(&endpoint, &call).await;
    for step in 1..=2 {
        let progress = next_message(&mut events).await;
        assert_eq!(progress["method"], "notifications/progress");
        assert_eq!(progress["params"]["progress"], step);
    }
    assert_eq!(next_message(&mut events).await["id"], 1);

    let mut long = call_tool(2, "slow", json!({"seconds": 30}));
    long["params"]["_meta"] = json!({"progressToken": "q"});
    post(&endpoint, &long).await;
    assert_eq!(next_message(&mut events).await["params"]["progressToken"], "q");
    post(&endpoint, &notification("notifications/cancelled", json!({"requestId": 2}))).await;
    post(&endpoint, &request(3, "ping", json!({}))).await;
    // Progress already under way may still arrive; the cancelled call's answer never does.
    loop {
        let message = next_message(&mut events).await;
        if message["method"] == "notifications/progress" {
            continue;
        }
        assert_eq!(message["id"], 3, "{message}");
        break;
    }
    // A running call would report every 100 ms; at most a step already under way may follow.
    let mut late = Vec::new();
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(400);
    while let Ok(Some(event)) = tokio::time::timeout_at(quiet_until, events.next()).await {
        late.push(event.json());
    }
    assert!(late.len() <= 1, "progress goes on after the cancellation: {late:?}");
    assert!(late.iter().all(|m| m["method"] == "notifications/progress"), "{late:?}");
}

#[tokio::test]
async fn posts_must_name_an_open_session() {
    let mcp = MockMcp::start_http().await;
    let ping = request(1, "ping", json!({}));
    let messages = format!("{}/messages", mcp.origin());
    assert_eq!(post(&messages, &ping).await.status(), 400);
    assert_eq!(post(&format!("{messages}?sessionId=nope"), &ping).await.status(), 404);
    let (_events, endpoint) = open(&mcp).await;
    let broken = client().post(&endpoint).body("{oops").send().await.unwrap();
    assert_eq!(broken.status(), 400);
}
