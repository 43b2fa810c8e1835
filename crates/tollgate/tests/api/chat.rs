use serde_json::{Value, json};
use tollgate_testkit::{ReplySpec, ToolCall};

use crate::helpers::*;

#[tokio::test]
async fn non_streaming_chat_is_forwarded_and_answered() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("four"));
    let mut body = chat("gpt-4o-mini", "what is 2+2?");
    body["temperature"] = json!(0.2);
    body["vendor_specific"] = json!({"keep": true});
    let resp = post(&app, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/gpt-4o-mini-2024-07-18");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "1");
    assert!(resp.headers().contains_key("x-request-id"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "four");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    // The deployment's model name, key and headers go upstream; the client's key does not.
    assert_eq!(seen.body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
    assert_eq!(seen.header("x-extra"), Some("from-config"));
    assert_eq!(seen.body["temperature"], 0.2);
    assert_eq!(seen.body["vendor_specific"], json!({"keep": true}));
    assert!(seen.body.get("stream_options").is_none());
}

#[tokio::test]
async fn the_unversioned_path_works_too() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("ok"));
    let resp = post(&app, "/chat/completions", chat("gpt-4o-mini", "hi")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
}

#[tokio::test]
async fn wildcard_routes_substitute_the_model_name() {
    let (mock, app) = setup().await;
    let resp = post(&app, "/v1/chat/completions", chat("mock/o3-mini", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/o3-mini");
    assert_eq!(mock.last_request().unwrap().body["model"], "o3-mini");
    // No api_key configured: no Authorization upstream, and never the client's own.
    assert_eq!(mock.last_request().unwrap().header("authorization"), None);
}

#[tokio::test]
async fn tool_call_round_trip() {
    let (mock, app) = setup().await;
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }
    }]);
    mock.enqueue(ReplySpec::tool_calls(vec![ToolCall::new(
        "call_1",
        "get_weather",
        r#"{"city":"Paris"}"#,
    )]));
    let mut first = chat("gpt-4o-mini", "weather in Paris?");
    first["tools"] = tools.clone();
    first["tool_choice"] = json!("auto");
    let resp = post(&app, "/v1/chat/completions", first).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(mock.last_request().unwrap().body["tools"], tools);

    mock.enqueue(ReplySpec::text("It is sunny in Paris."));
    let second = json!({
        "model": "gpt-4o-mini",
        "tools": tools,
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21, \"sky\": \"clear\"}"}
        ]
    });
    let resp = post(&app, "/v1/chat/completions", second).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "It is sunny in Paris.");
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.body["messages"][2]["role"], "tool");
    assert_eq!(seen.body["messages"][2]["tool_call_id"], "call_1");
    assert_eq!(seen.body["messages"][1]["tool_calls"][0]["id"], "call_1");
}

#[tokio::test]
async fn streamed_tool_calls_are_relayed() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::tool_calls(vec![
        ToolCall::new("call_a", "read", r#"{"path":"a.txt"}"#),
        ToolCall::new("call_b", "read", r#"{"path":"b.txt"}"#),
    ]));
    let mut body = chat("gpt-4o-mini", "read both");
    body["stream"] = json!(true);
    let resp = post(&app, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    let events = sse_data(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut args = [String::new(), String::new()];
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        for tc in v["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            args[i].push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(args, [r#"{"path":"a.txt"}"#.to_owned(), r#"{"path":"b.txt"}"#.to_owned()]);
}

#[tokio::test]
async fn embeddings_are_forwarded() {
    let (mock, app) = setup().await;
    let resp = post(
        &app,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": ["alpha", "beta"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/text-embedding-3-small");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(seen.body["input"], json!(["alpha", "beta"]));
}

#[tokio::test]
async fn models_lists_configured_names() {
    let (_mock, app) = setup().await;
    let resp = client().get(app.url("/v1/models")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> =
        v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4o-mini", "text-embedding-3-small", "copilot-model"]);
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "openai");
    // What a client may call here for each, and what the upstream is spoken to on; a Copilot
    // model with no linked account has no catalog to say.
    let endpoints = |i: usize| {
        (v["data"][i]["supported_endpoints"].clone(), v["data"][i]["upstream_endpoints"].clone())
    };
    assert_eq!(
        endpoints(0),
        (
            json!(["/v1/chat/completions", "/v1/messages", "/v1/responses"]),
            json!(["/chat/completions"])
        )
    );
    assert_eq!(endpoints(1), (json!(["/v1/embeddings"]), json!(["/embeddings"])));
    assert_eq!(endpoints(2).1, Value::Null);

    let resp = client().get(app.url("/models")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp =
        client().get(app.url("/v1/models/gpt-4o-mini")).bearer_auth(MASTER).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], "gpt-4o-mini");
    let resp = client().get(app.url("/v1/models/nope")).bearer_auth(MASTER).send().await.unwrap();
    let err = openai_error(resp, 404).await;
    assert_eq!(err["code"], "model_not_found");
}
