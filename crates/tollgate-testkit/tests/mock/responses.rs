//! The Responses API: JSON and event streams, tool calls, reasoning, errors and failures.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, ReplySpec, ToolCall, openai_mock::encrypted_reasoning};

use crate::support::{
    INPUT_TOKENS, client, deltas, names, post_responses, read_named, responses_body,
};

async fn response_json(mock: &MockOpenAi, body: &Value) -> Value {
    let response = post_responses(mock, body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn answers_a_text_response_on_both_paths() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("one two three"));
    let body = response_json(&mock, &responses_body(false)).await;
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-5.4");
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["error"], Value::Null);
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(output[0]["content"][0]["type"], "output_text");
    assert_eq!(output[0]["content"][0]["text"], "one two three");
    assert_eq!(
        body["usage"],
        json!({
            "input_tokens": INPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 3,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + 3,
        })
    );
    let request = mock.last_request().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/responses"));
    assert_eq!(request.body, responses_body(false));

    // Without the `/v1` prefix too, and the default reply when the queue is empty.
    let bare = client()
        .post(format!("{}/responses", mock.origin()))
        .json(&json!({"model": "gpt-4o", "input": "hi"}))
        .send()
        .await
        .unwrap();
    let bare: Value = bare.json().await.unwrap();
    assert_eq!(
        bare["output"][0]["content"][0]["text"],
        tollgate_testkit::openai_mock::DEFAULT_TEXT
    );
    assert_eq!(bare["usage"]["input_tokens"], 1 + 3);
    assert_ne!(bare["id"], body["id"]);
    assert_eq!(mock.last_request().unwrap().path, "/responses");
}

#[tokio::test]
async fn streams_text_as_named_numbered_events() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("alpha beta gamma"));
    let (events, failed) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert!(!failed);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.data["sequence_number"], n);
    }
    assert_eq!(events[0].data["response"]["status"], "in_progress");
    assert_eq!(events[0].data["response"]["output"], json!([]));
    let added = &events[2].data;
    assert_eq!(
        (added["output_index"].as_u64(), added["item"]["status"].as_str()),
        (Some(0), Some("in_progress"))
    );
    let item_id = added["item"]["id"].as_str().unwrap();
    assert!(item_id.starts_with("msg_"));
    assert!(events[3..9].iter().all(|e| e.data["item_id"] == item_id));
    assert_eq!(deltas(&events, "response.output_text.delta"), "alpha beta gamma");
    assert_eq!(events[7].data["text"], "alpha beta gamma");
    assert_eq!(events[8].data["part"]["text"], "alpha beta gamma");
    assert_eq!(events[9].data["item"]["status"], "completed");

    let completed = &events[10].data["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["id"], events[0].data["response"]["id"]);
    assert_eq!(completed["output"][0], events[9].data["item"]);
    assert_eq!(completed["usage"]["input_tokens"], INPUT_TOKENS);
    assert_eq!(completed["usage"]["output_tokens"], 3);
}

fn two_calls() -> ReplySpec {
    ReplySpec::tool_calls(vec![
        ToolCall::new("call_1", "get_weather", r#"{"city":"Paris","unit":"c"}"#),
        ToolCall::new("call_2", "get_time", r#"{"zone":"Europe/Paris"}"#),
    ])
}

#[tokio::test]
async fn answers_tool_calls_as_function_call_items() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(two_calls());
    mock.enqueue(two_calls());
    let body = response_json(&mock, &responses_body(false)).await;
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["call_id"], "call_2");
    assert_eq!(output[1]["name"], "get_time");
    assert_eq!(output[1]["arguments"], r#"{"zone":"Europe/Paris"}"#);
    assert_eq!(output[1]["status"], "completed");
    assert!(output[1]["id"].as_str().unwrap().starts_with("fc_"));

    let (events, _) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    let added: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "response.output_item.added")
        .map(|e| &e.data)
        .collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["item"]["arguments"], "");
    assert_eq!(added[0]["item"]["call_id"], "call_1");
    for (index, expected) in
        [r#"{"city":"Paris","unit":"c"}"#, r#"{"zone":"Europe/Paris"}"#].iter().enumerate()
    {
        let fragments: Vec<&str> = events
            .iter()
            .filter(|e| {
                e.event == "response.function_call_arguments.delta"
                    && e.data["output_index"] == index
            })
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect();
        assert_eq!(fragments.len(), 4, "arguments arrive in the default four fragments");
        assert_eq!(fragments.concat(), *expected);
        let done = events
            .iter()
            .find(|e| {
                e.event == "response.function_call_arguments.done"
                    && e.data["output_index"] == index
            })
            .unwrap();
        assert_eq!(done.data["arguments"], *expected);
        assert_eq!(done.data["item_id"], added[index]["item"]["id"]);
    }
    // The second call starts only after the first is done.
    let first_done = events.iter().position(|e| e.event == "response.output_item.done").unwrap();
    let second_added =
        events.iter().rposition(|e| e.event == "response.output_item.added").unwrap();
    assert!(first_done < second_added);
    assert_eq!(events.last().unwrap().data["response"]["output"][1]["call_id"], "call_2");
}

#[tokio::test]
async fn reasoning_comes_first_and_is_encrypted_only_when_included() {
    let mock = MockOpenAi::start().await;
    let spec = ReplySpec::text("the answer").reasoning("let me think");
    for _ in 0..3 {
        mock.enqueue(spec.clone());
    }
    let body = response_json(&mock, &responses_body(false)).await;
    let reasoning = &body["output"][0];
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["summary"], json!([{"type": "summary_text", "text": "let me think"}]));
    assert!(reasoning.get("encrypted_content").is_none());
    assert_eq!(body["output"][1]["content"][0]["text"], "the answer");
    assert_eq!(body["usage"]["output_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens_details"]["reasoning_tokens"], 3);

    let mut asked = responses_body(false);
    asked["include"] = json!(["reasoning.encrypted_content"]);
    let body = response_json(&mock, &asked).await;
    assert_eq!(body["output"][0]["encrypted_content"], encrypted_reasoning("let me think"));

    asked["stream"] = json!(true);
    let (events, _) = read_named(post_responses(&mock, &asked).await).await;
    assert_eq!(
        names(&events)[..9],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
        ]
    );
    assert_eq!(deltas(&events, "response.reasoning_summary_text.delta"), "let me think");
    assert_eq!(events[9].event, "response.output_item.done");
    assert_eq!(events[9].data["item"]["encrypted_content"], encrypted_reasoning("let me think"));
    assert_eq!(events[10].event, "response.output_item.added");
    assert_eq!(events[10].data["output_index"], 1);
    assert_eq!(deltas(&events, "response.output_text.delta"), "the answer");
}

#[tokio::test]
async fn returns_errors_verbatim() {
    let mock = MockOpenAi::start().await;
    let error = json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit"}});
    mock.enqueue(ReplySpec::error(429, error.clone()).retry_after(3));
    let response = post_responses(&mock, &responses_body(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.json::<Value>().await.unwrap(), error);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_failing_stream_ends_with_response_failed() {
    let mock = MockOpenAi::start().await;
    // Fails in place of `response.completed`: the message item was finished.
    mock.enqueue(ReplySpec::text("alpha beta").fail_after_chunks(9));
    let (events, failed) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert!(!failed, "the body ends cleanly");
    assert_eq!(events.len(), 10);
    let last = &events[9];
    assert_eq!(last.event, "response.failed");
    assert_eq!(last.data["sequence_number"], 9);
    assert_eq!(last.data["response"]["status"], "failed");
    assert_eq!(last.data["response"]["error"]["code"], "server_error");
    assert_eq!(last.data["response"]["output"][0]["content"][0]["text"], "alpha beta");
    assert!(events.iter().all(|e| e.event != "response.completed"));

    // Mid-text, with a chosen error: nothing finished, so no output.
    mock.enqueue(ReplySpec::text("alpha beta").failure(5, "rate_limit_exceeded", "too fast"));
    let (events, _) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert_eq!(names(&events).last(), Some(&"response.failed"));
    assert_eq!(events.len(), 6);
    let response = &events[5].data["response"];
    assert_eq!(response["error"], json!({"code": "rate_limit_exceeded", "message": "too fast"}));
    assert_eq!(response["output"], json!([]));

    // Not streamed: a Response whose status says it failed.
    mock.enqueue(ReplySpec::text("alpha").fail_after_chunks(100));
    let body = response_json(&mock, &responses_body(false)).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "server_error");
    assert_eq!(body["usage"], Value::Null);
}

#[tokio::test]
async fn a_length_finish_makes_the_response_incomplete() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("cut short").finish_reason("length"));
    mock.enqueue(ReplySpec::text("cut short").finish_reason("length"));
    let body = response_json(&mock, &responses_body(false)).await;
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(body["output"][0]["status"], "incomplete");
    let (events, _) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "response.incomplete");
    assert_eq!(last.data["response"]["incomplete_details"]["reason"], "max_output_tokens");
}

#[tokio::test]
async fn honours_pacing_chunking_cuts_and_ends() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("abcdef").chunks(3).chunk_interval_ms(40));
    let (events, _) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    let pieces: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "response.output_text.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["ab", "cd", "ef"]);
    let spread = events.last().unwrap().at - events[0].at;
    // Ten intervals between eleven events.
    assert!(spread >= Duration::from_millis(10 * 40), "{spread:?}");

    mock.enqueue(ReplySpec::text("alpha beta gamma").cut_after_chunks(4));
    let (events, failed) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert!(failed, "the connection dies");
    assert_eq!(events.len(), 4);

    mock.enqueue(ReplySpec::text("alpha beta gamma").end_after_chunks(5));
    let (events, failed) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert!(!failed);
    assert_eq!(names(&events).last(), Some(&"response.output_text.delta"));
    assert_eq!(events.len(), 5);
}

#[tokio::test]
async fn failures_are_programmable_over_http() {
    let mock = MockOpenAi::start().await;
    let queued = client()
        .post(format!("{}/__mock/enqueue", mock.origin()))
        .json(&json!({"reply": {"kind": "text", "text": "partial"},
                      "failure": {"after_chunks": 2, "message": "upstream crashed"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 200);
    let (events, _) = read_named(post_responses(&mock, &responses_body(true)).await).await;
    assert_eq!(names(&events), ["response.created", "response.in_progress", "response.failed"]);
    assert_eq!(
        events[2].data["response"]["error"],
        json!({"code": "server_error", "message": "upstream crashed"})
    );
}
