use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_testkit::ReplySpec;

use crate::helpers::*;

fn streaming(text: &str) -> Value {
    let mut body = chat("gpt-4o-mini", text);
    body["stream"] = json!(true);
    body
}

fn content(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn stream_without_usage_request_has_no_usage_chunk() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("one two three"));
    let resp = post(&app, "/v1/chat/completions", streaming("count")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/gpt-4o-mini-2024-07-18");
    let events = sse_data(resp).await;
    assert_eq!(content(&events), "one two three");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(!events.iter().any(|e| e.contains("\"usage\":{")), "{events:?}");
    // Upstream was asked for usage anyway, for accounting.
    assert_eq!(mock.last_request().unwrap().body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn stream_keeps_the_trailing_usage_chunk_when_asked() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("alpha beta"));
    let mut body = streaming("go");
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_data(post(&app, "/v1/chat/completions", body).await).await;
    assert_eq!(content(&events), "alpha beta");
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 2);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn streams_are_not_buffered() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("a b c d e").chunk_interval_ms(200));
    let started = Instant::now();
    let resp = post(&app, "/v1/chat/completions", streaming("slowly")).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("\"content\"") && arrivals.is_empty() {
            arrivals.push(started.elapsed());
        }
    }
    let last = started.elapsed();
    let first = arrivals[0];
    // Seven events 200 ms apart upstream: the first content must arrive about a second
    // before the stream ends, not together with it.
    assert!(last >= Duration::from_millis(1000), "stream took {last:?}");
    assert!(last - first >= Duration::from_millis(700), "first {first:?}, last {last:?}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_event() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("one two three four five six").cut_after_chunks(3));
    let resp = post(&app, "/v1/chat/completions", streaming("go")).await;
    assert_eq!(resp.status(), 200);
    let events = sse_data(resp).await;
    assert!(!content(&events).is_empty(), "the first chunks were relayed: {events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_interrupted", "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn a_stream_failing_before_its_first_event_is_an_http_error() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("never").cut_after_chunks(0));
    let resp = post(&app, "/v1/chat/completions", streaming("go")).await;
    let err = openai_error(resp, 502).await;
    assert_eq!(err["type"], "api_error");
}

#[tokio::test]
async fn streamed_reasoning_is_relayed() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("42").reasoning("think hard"));
    let events = sse_data(post(&app, "/v1/chat/completions", streaming("q")).await).await;
    let reasoning: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| v["choices"][0]["delta"]["reasoning_content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasoning, "think hard");
    assert_eq!(content(&events), "42");
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_a_failure_not_a_success() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("one two three four").end_after_chunks(3));
    let events = sse_data(post(&app, "/v1/chat/completions", streaming("go")).await).await;
    assert!(!content(&events).is_empty(), "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_interrupted", "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    let rows = app.store().spend_logs(Default::default()).await.unwrap();
    assert_eq!(rows[0].outcome, "stream_failed");

    // Translated for an Anthropic client: the protocol's error event, no message_stop.
    mock.enqueue(ReplySpec::text("one two three four").end_after_chunks(3));
    let resp = client()
        .post(app.url("/v1/messages"))
        .bearer_auth(MASTER)
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 50, "stream": true,
                      "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn streamed_answers_are_kept_when_prompts_are() {
    let (mock, app) = setup_with("general_settings:\n  store_prompts_in_spend_logs: true\n").await;
    mock.enqueue(ReplySpec::text("the secret is sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX ok"));
    let events = sse_data(post(&app, "/v1/chat/completions", streaming("tell me")).await).await;
    assert!(content(&events).contains("sk-proj-"), "the client gets the answer as sent");
    app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    let rows = app.store().spend_logs(Default::default()).await.unwrap();
    let stored = rows[0].response_body.as_ref().expect("the streamed answer is kept");
    assert_eq!(stored["content"], "the secret is [REDACTED] ok", "{stored}");
    assert_eq!(stored["stop_reason"], "stop");
    assert_eq!(rows[0].request_body.as_ref().unwrap()["messages"][0]["content"], "tell me");
}
