use serde_json::Value;
use tollgate_testkit::ReplySpec;

use crate::helpers::*;

#[tokio::test]
async fn root_and_health_answer_without_credentials() {
    let (_mock, app) = setup().await;
    let c = client();
    assert_eq!(c.get(app.url("/")).send().await.unwrap().status(), 200);
    assert_eq!(c.head(app.url("/")).send().await.unwrap().status(), 200);
    let live = c.get(app.url("/health/liveliness")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap(), "I'm alive!");
    let ready = c.get(app.url("/health/readiness")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = ready.json::<Value>().await.unwrap();
    assert_eq!(ready["status"], "healthy");
    assert_eq!(ready["db"], "connected");
    assert_eq!(ready["backend"], "sqlite");
    assert_eq!(ready["keys_loaded"], true);
}

#[tokio::test]
async fn metrics_count_requests_by_model_group_and_deployment() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("one two"));
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "hi")).await;
    assert_eq!(resp.status(), 200);
    mock.enqueue(ReplySpec::openai_error(500, "server_error", "boom"));
    let resp = post(&app, "/v1/chat/completions", chat("mock/x", "hi")).await;
    assert_eq!(resp.status(), 500);

    let text = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    assert!(
        has(
            r#"tollgate_requests_total{api="chat_completions",model_group="gpt-4o-mini",deployment="openai/gpt-4o-mini-2024-07-18",status_class="2xx"}"#
        ),
        "{text}"
    );
    assert!(has(r#"model_group="mock/*",deployment="openai/*",status_class="5xx""#), "{text}");
    assert!(has(
        r#"tollgate_upstream_errors_total{model_group="mock/*",deployment="openai/*",reason="status_5xx"}"#
    ));
    assert!(
        has(
            r#"tollgate_tokens_total{model_group="gpt-4o-mini",deployment="openai/gpt-4o-mini-2024-07-18",kind="completion"} 2"#
        ),
        "{text}"
    );
    assert!(has("# HELP tollgate_request_duration_seconds"));
    assert!(has("tollgate_request_duration_seconds_bucket"));
    assert!(has(
        r#"tollgate_http_requests_total{route="/v1/chat/completions",method="POST",status_class="2xx"}"#
    ));
    // Neither credentials nor requested raw names become labels.
    assert!(!text.contains(MASTER) && !text.contains("sk-upstream-secret"));
    assert!(!text.contains("mock/x"));
}

#[tokio::test]
async fn responses_requests_are_counted_and_recorded_under_their_own_api() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::text("one two three"));
    let whole = serde_json::json!({"model": "gpt-4o-mini", "input": "hi"});
    assert_eq!(post(&app, "/v1/responses", whole).await.status(), 200);
    mock.enqueue(ReplySpec::text("four five"));
    let streamed = serde_json::json!({"model": "gpt-4o-mini", "input": "hi", "stream": true});
    let events = sse_data(post(&app, "/v1/responses", streamed).await).await;
    assert!(events.last().is_some_and(|e| e.contains("response.completed")), "{events:?}");

    let text = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let requests = series(
        &text,
        "tollgate_requests_total",
        &[r#"api="responses""#, r#"model_group="gpt-4o-mini""#, r#"status_class="2xx""#],
    );
    assert_eq!(requests, Some(2.0), "{text}");
    assert!(text.contains(r#"route="/v1/responses",method="POST",status_class="2xx""#), "{text}");

    app.wait_for_spend_written(2, std::time::Duration::from_secs(5)).await;
    let filter = tollgate_store::SpendFilter { limit: 10, ..Default::default() };
    let records = app.state.store().spend_logs(filter).await.unwrap();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!((r.api.as_str(), r.status, r.outcome.as_str()), ("responses", 200, "success"));
        assert!(r.prompt_tokens > 0 && r.completion_tokens > 0, "{r:?}");
    }
    assert_eq!(records.iter().filter(|r| r.stream).count(), 1);
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let (mock, app) = setup().await;
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-request-id", "req-abc-123")
        .json(&chat("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    assert_eq!(mock.last_request().unwrap().header("x-request-id"), Some("req-abc-123"));
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "hi")).await;
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36);
}

/// The value of the first series of `name` whose line contains every one of `labels`.
fn series(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .find_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

#[tokio::test]
async fn each_upstream_failure_is_counted_once() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::openai_error(500, "server_error", "boom"));
    let resp = post(&app, "/v1/chat/completions", chat("mock/once", "hi")).await;
    assert_eq!(resp.status(), 500);
    let text = client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let errors = series(
        &text,
        "tollgate_upstream_errors_total",
        &[r#"model_group="mock/*""#, r#"reason="status_5xx""#],
    );
    assert_eq!(errors, Some(1.0), "{text}");
    let requests = series(
        &text,
        "tollgate_requests_total",
        &[r#"model_group="mock/*""#, r#"status_class="5xx""#],
    );
    assert_eq!(requests, Some(1.0), "{text}");
}
