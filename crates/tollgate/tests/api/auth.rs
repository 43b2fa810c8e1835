use serde_json::Value;
use tollgate_testkit::TestApp;

use crate::helpers::*;

#[tokio::test]
async fn the_master_key_is_accepted_from_every_header() {
    let (_mock, app) = setup().await;
    let body = chat("gpt-4o-mini", "hi");
    for (name, value) in [
        ("authorization", format!("Bearer {MASTER}")),
        ("x-api-key", MASTER.to_owned()),
        ("x-litellm-api-key", format!("Bearer {MASTER}")),
        ("x-litellm-api-key", MASTER.to_owned()),
        ("api-key", MASTER.to_owned()),
    ] {
        let resp = client()
            .post(app.url("/v1/chat/completions"))
            .header(name, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
    }
}

#[tokio::test]
async fn missing_and_wrong_keys_are_refused() {
    let (mock, app) = setup().await;
    let body = chat("gpt-4o-mini", "hi");
    let resp = client().post(app.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    let err = openai_error(resp, 401).await;
    assert_eq!(err["type"], "authentication_error");
    assert!(err["message"].as_str().unwrap().contains("Missing API key"));
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth("sk-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    let err = openai_error(resp, 401).await;
    assert!(!err["message"].as_str().unwrap().contains("sk-wrong"));
    let resp = client().get(app.url("/v1/models")).send().await.unwrap();
    openai_error(resp, 401).await;
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn the_static_token_is_accepted() {
    let mock = tollgate_testkit::MockOpenAi::start().await;
    let app = TestApp::spawn_with_env(&config(&mock, ""), &[("PROXY_STATIC_TOKEN", "team-token")])
        .await
        .unwrap();
    let ok = client()
        .post(app.url("/v1/chat/completions"))
        .header("x-api-key", "team-token")
        .json(&chat("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth("team-token-2")
        .json(&chat("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    openai_error(refused, 401).await;
}

#[tokio::test]
async fn without_any_key_local_requests_are_accepted() {
    let mock = tollgate_testkit::MockOpenAi::start().await;
    let app = TestApp::spawn(&config(&mock, "")).await.unwrap();
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .json(&chat("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string());
}
