//! Chat completion shapes: text, streams, tool calls, reasoning, errors.

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, Reply, ReplySpec, ToolCall, openai_mock::DEFAULT_TEXT};

use crate::support::{PROMPT_TOKENS, chat_body, chat_json, delta_texts, post_chat, read_sse};

#[tokio::test]
async fn answers_a_text_completion() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("one two three"));
    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "one two three");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 3, "total_tokens": PROMPT_TOKENS + 3})
    );
    let request = mock.last_request().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(request.body, chat_body(false, false));
    assert_eq!(request.header("Content-Type"), Some("application/json"));
}

#[tokio::test]
async fn streams_with_a_usage_chunk_when_asked() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("alpha beta gamma"));
    let sse = read_sse(post_chat(&mock, &chat_body(true, true)).await).await;
    assert!(!sse.failed);
    assert_eq!(sse.last(), "[DONE]");
    let chunks = sse.json();
    assert!(
        chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "gpt-4o")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(delta_texts(&chunks, "content"), "alpha beta gamma");
    // One role chunk, one per word, the finish chunk, the usage chunk.
    assert_eq!(chunks.len(), 1 + 3 + 1 + 1);
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[5];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn streams_without_usage_by_default() {
    let mock = MockOpenAi::start().await;
    let sse = read_sse(post_chat(&mock, &chat_body(true, false)).await).await;
    assert_eq!(sse.last(), "[DONE]");
    let chunks = sse.json();
    assert_eq!(delta_texts(&chunks, "content"), DEFAULT_TEXT);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none() && c["choices"].as_array().unwrap().len() == 1)
    );
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

fn two_calls() -> ReplySpec {
    ReplySpec::tool_calls(vec![
        ToolCall::new("call_1", "get_weather", r#"{"city":"Paris","unit":"c"}"#),
        ToolCall::new("call_2", "get_time", r#"{"zone":"Europe/Paris"}"#),
    ])
}

#[tokio::test]
async fn answers_tool_calls() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(two_calls());
    let body = chat_json(&mock, &chat_body(false, false)).await;
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        message["tool_calls"][1],
        json!({"id": "call_2", "type": "function",
               "function": {"name": "get_time", "arguments": r#"{"zone":"Europe/Paris"}"#}})
    );
}

#[tokio::test]
async fn streams_tool_calls_in_fragments() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(two_calls());
    let sse = read_sse(post_chat(&mock, &chat_body(true, false)).await).await;
    assert_eq!(sse.last(), "[DONE]");
    let chunks = sse.json();
    let mut arguments = [String::new(), String::new()];
    let mut starts = Vec::new();
    let mut fragments = 0;
    for chunk in &chunks {
        let Some(calls) = chunk.pointer("/choices/0/delta/tool_calls") else {
            continue;
        };
        let call = &calls[0];
        let index = call["index"].as_u64().unwrap() as usize;
        if let Some(id) = call.get("id") {
            assert_eq!(call["type"], "function");
            assert_eq!(call["function"]["arguments"], "");
            starts.push((index, id.clone(), call["function"]["name"].clone()));
        } else {
            fragments += 1;
            arguments[index].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(
        starts,
        [(0, json!("call_1"), json!("get_weather")), (1, json!("call_2"), json!("get_time"))]
    );
    assert_eq!(arguments, [r#"{"city":"Paris","unit":"c"}"#, r#"{"zone":"Europe/Paris"}"#]);
    assert!(fragments >= 4, "arguments arrive in several deltas");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn sends_reasoning_before_content() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("the answer").reasoning("let me think"));
    mock.enqueue(ReplySpec::text("the answer").reasoning("let me think"));
    let body = chat_json(&mock, &chat_body(false, false)).await;
    assert_eq!(body["choices"][0]["message"]["reasoning_content"], "let me think");
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens_details"]["reasoning_tokens"], 3);

    let chunks = read_sse(post_chat(&mock, &chat_body(true, false)).await).await.json();
    assert_eq!(delta_texts(&chunks, "reasoning_content"), "let me think");
    let last_reasoning =
        chunks.iter().rposition(|c| c.pointer("/choices/0/delta/reasoning_content").is_some());
    let first_content = chunks.iter().position(|c| {
        c.pointer("/choices/0/delta/content").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
    });
    assert!(last_reasoning.unwrap() < first_content.unwrap());
}

#[tokio::test]
async fn returns_errors_verbatim_with_retry_after() {
    let mock = MockOpenAi::start().await;
    let error = json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit"}});
    mock.enqueue(ReplySpec::error(429, error.clone()).retry_after(7));
    mock.enqueue(Reply::Error {
        status: 502,
        body: json!("<html>bad gateway</html>"),
        retry_after: None,
    });
    let response = post_chat(&mock, &chat_body(true, true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.json::<Value>().await.unwrap(), error);
    let response = post_chat(&mock, &chat_body(false, false)).await;
    assert_eq!(response.status(), 502);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(response.text().await.unwrap(), "<html>bad gateway</html>");
}
