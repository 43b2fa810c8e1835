//! Queue, control endpoints, timing, shutdown, embeddings and models.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{
    MockOpenAi, Reply, ReplySpec,
    openai_mock::{DEFAULT_TEXT, EMBEDDING_DIMENSIONS},
};

use crate::support::{chat_body, chat_json, client, delta_texts, post_chat, read_sse};

#[tokio::test]
async fn takes_queued_replies_in_order_then_the_default() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("first"));
    mock.enqueue(Reply::Text { text: "second".into() });
    let mut contents = Vec::new();
    for _ in 0..3 {
        let body = chat_json(&mock, &chat_body(false, false)).await;
        contents.push(body["choices"][0]["message"]["content"].as_str().unwrap().to_owned());
    }
    assert_eq!(contents, ["first", "second", DEFAULT_TEXT]);
    mock.set_default(ReplySpec::text("new default"));
    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["choices"][0]["message"]["content"], "new default");
    assert_eq!(mock.request_count(), 4);
    mock.reset();
    assert_eq!(mock.request_count(), 0);
    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
}

#[tokio::test]
async fn is_driven_by_control_endpoints() {
    let mock = MockOpenAi::start().await;
    let http = client();
    let control = |path: &str| format!("{}/__mock/{path}", mock.origin());
    let queued: Value = http
        .post(control("enqueue"))
        .json(&json!({"reply": {"kind": "text", "text": "from http"}, "delay_ms": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued, json!({"queued": 1}));
    let status = http
        .post(control("default"))
        .json(&json!({"reply": {"kind": "error", "status": 503, "body": {"error": "down"}}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);

    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["choices"][0]["message"]["content"], "from http");
    assert_eq!(post_chat(&mock, &chat_body(false, false)).await.status(), 503);

    let recorded: Value = http.get(control("requests")).send().await.unwrap().json().await.unwrap();
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 2, "control calls are not recorded");
    assert_eq!(recorded[0]["path"], "/v1/chat/completions");
    assert_eq!(recorded[0]["body"]["model"], "gpt-4o");

    assert_eq!(http.post(control("reset")).send().await.unwrap().status(), 204);
    assert_eq!(mock.request_count(), 0);
    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
}

#[tokio::test]
async fn cut_after_chunks_ends_the_stream_abruptly() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("a b c d e f").cut_after_chunks(3));
    let sse = read_sse(post_chat(&mock, &chat_body(true, true)).await).await;
    assert!(sse.failed, "the client sees a transport error");
    assert_eq!(sse.events.len(), 3);
    assert!(sse.events.iter().all(|(_, data)| data != "[DONE]"));

    mock.enqueue(ReplySpec::text("a b c").cut_after_chunks(0));
    let sse = read_sse(post_chat(&mock, &chat_body(true, false)).await).await;
    assert!(sse.failed && sse.events.is_empty(), "headers arrive, then the connection dies");

    mock.enqueue(ReplySpec::text("whole answer").cut_after_chunks(0));
    let response = post_chat(&mock, &chat_body(false, false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "a non-streamed body is cut too");
}

#[tokio::test]
async fn paces_chunks_as_they_are_produced() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("one two three four").chunks(4).chunk_interval_ms(200));
    let sent = Instant::now();
    let sse = read_sse(post_chat(&mock, &chat_body(true, false)).await).await;
    let first = sse.events.first().unwrap().0;
    let last = sse.events.last().unwrap().0;
    assert!(first - sent < Duration::from_millis(150), "first chunk after {:?}", first - sent);
    assert!(last - first >= Duration::from_millis(800), "stream took only {:?}", last - first);
    assert_eq!(delta_texts(&sse.json(), "content"), "one two three four");
}

#[tokio::test]
async fn delays_and_hangs() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("late").delay_ms(150));
    let sent = Instant::now();
    chat_json(&mock, &chat_body(false, false)).await;
    assert!(sent.elapsed() >= Duration::from_millis(150));

    mock.enqueue(ReplySpec::hang());
    let result = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .timeout(Duration::from_millis(200))
        .json(&chat_body(false, false))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test]
async fn dropping_the_handle_ends_hung_requests() {
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::hang());
    let url = format!("{}/chat/completions", mock.base_url());
    let pending =
        tokio::spawn(async move { client().post(url).json(&chat_body(false, false)).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(mock);
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending).await;
    assert!(outcome.is_ok(), "the hung request ended with the mock");
}

#[tokio::test]
async fn serves_embeddings_and_models() {
    let mock = MockOpenAi::start().await;
    let http = client();
    let body: Value = http
        .post(format!("{}/embeddings", mock.base_url()))
        .json(&json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), EMBEDDING_DIMENSIONS);
    assert_eq!(body["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let again: Value = http
        .post(format!("{}/v1/embeddings", mock.origin()))
        .json(&json!({"model": "m", "input": "hello world"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["data"][0]["embedding"], body["data"][0]["embedding"]);

    let models: Value =
        http.get(format!("{}/models", mock.base_url())).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4o-mini", "gpt-4o"]);
    mock.set_models(vec!["openai/o3".into()]);
    let model = http.get(format!("{}/models/openai/o3", mock.base_url())).send().await.unwrap();
    assert_eq!(model.json::<Value>().await.unwrap()["id"], "openai/o3");
    assert_eq!(mock.request_count(), 4);
}
