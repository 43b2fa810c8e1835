//! Fallback chains, retries, cooldowns and load balancing against several mock upstreams.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, RefusingPort, ReplySpec, TestApp};

use crate::helpers::*;

struct Three {
    a: MockOpenAi,
    b: MockOpenAi,
    c: MockOpenAi,
    app: TestApp,
}

/// `primary` falls back to `second` then `third`, each on its own upstream.
async fn three(router_settings: &str) -> Three {
    let (a, b, c) =
        (MockOpenAi::start().await, MockOpenAi::start().await, MockOpenAi::start().await);
    a.set_default(ReplySpec::text("from a"));
    b.set_default(ReplySpec::text("from b"));
    c.set_default(ReplySpec::text("from c"));
    let yaml = format!(
        r#"
model_list:
  - model_name: primary
    litellm_params:
      model: openai/model-a
      api_base: {a}
      fallbacks: [second, third]
  - model_name: second
    litellm_params:
      model: openai/model-b
      api_base: {b}
  - model_name: third
    litellm_params:
      model: openai/model-c
      api_base: {c}
router_settings:
{router_settings}
"#,
        a = a.base_url(),
        b = b.base_url(),
        c = c.base_url(),
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    Three { a, b, c, app }
}

fn quota() -> ReplySpec {
    ReplySpec::error(
        402,
        json!({"error": {"message": "You have exceeded your premium request quota", "code": "quota_exceeded"}}),
    )
}

async fn text_of(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap();
    v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn quota_on_the_primary_is_answered_by_the_second() {
    let t = three("  allowed_fails: 3").await;
    t.a.enqueue(quota());
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    assert_eq!(text_of(resp).await, "from b");
    assert_eq!(t.b.last_request().unwrap().body["model"], "model-b");

    // The primary is now cooling down: the next request goes straight to the second.
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "again")).await;
    assert_eq!(resp.headers()["x-tollgate-attempts"], "1");
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    assert_eq!(t.a.request_count(), 1);

    let metrics = client().get(t.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"tollgate_fallbacks_total{from_group="primary",to_group="second",reason="quota_exceeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_deployment_cooldown{deployment="openai/model-a"} 1"#) || {
            // The gauge is refreshed every second.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let m = client().get(t.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
            m.contains(r#"tollgate_deployment_cooldown{deployment="openai/model-a"} 1"#)
        }
    );
}

#[tokio::test]
async fn a_huge_retry_after_moves_on_to_the_fallback() {
    let t = three("  allowed_fails: 3").await;
    t.a.enqueue(
        ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down")
            .header("retry-after", "1e300"),
    );
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    assert_eq!(text_of(resp).await, "from b");
}

#[tokio::test]
async fn primary_and_second_failing_the_third_serves() {
    let refusing = RefusingPort::new().unwrap();
    let closed = refusing.addr();
    let (a, c) = (MockOpenAi::start().await, MockOpenAi::start().await);
    a.enqueue(ReplySpec::openai_error(503, "server_error", "overloaded"));
    c.set_default(ReplySpec::text("from c"));
    let yaml = format!(
        "model_list:\n  - model_name: primary\n    litellm_params:\n      model: openai/model-a\n      api_base: {}\n    fallbacks: [second, third]\n  - model_name: second\n    litellm_params:\n      model: openai/model-b\n      api_base: http://{closed}/v1\n  - model_name: third\n    litellm_params:\n      model: openai/model-c\n      api_base: {}\n",
        a.base_url(),
        c.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let resp = post(&app, "/v1/chat/completions", chat("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-c");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "3");
    assert_eq!(text_of(resp).await, "from c");

    app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    let logs = app.store().spend_logs(Default::default()).await.unwrap();
    let attempts = logs[0].attempts.as_array().unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["server_error", "connect", "answered"]);
    assert_eq!(logs[0].served_model, "openai/model-c");
    assert_eq!(logs[0].model_group, "third");
}

#[tokio::test]
async fn when_everything_fails_the_last_error_is_returned() {
    let t = three("  allowed_fails: 3").await;
    t.a.enqueue(quota());
    t.b.enqueue(ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down b"));
    t.c.enqueue(ReplySpec::openai_error(503, "server_error", "c is down"));
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "hi")).await;
    assert_eq!(resp.headers()["x-tollgate-attempts"], "3");
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-c");
    let err = openai_error(resp, 503).await;
    assert_eq!(err["message"], "c is down");
}

#[tokio::test]
async fn client_errors_are_not_retried_elsewhere() {
    let t = three("  num_retries: 2").await;
    t.a.enqueue(ReplySpec::openai_error(
        400,
        "model_not_supported",
        "The requested model is not supported.",
    ));
    let err =
        openai_error(post(&t.app, "/v1/chat/completions", chat("primary", "hi")).await, 400).await;
    assert_eq!(err["message"], "The requested model is not supported.");
    assert_eq!(err["code"], "model_not_supported");
    assert_eq!((t.a.request_count(), t.b.request_count(), t.c.request_count()), (1, 0, 0));
}

#[tokio::test]
async fn retries_honour_retry_after_on_the_same_model() {
    let t = three("  num_retries: 1").await;
    t.a.enqueue(ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down").retry_after(1));
    let started = Instant::now();
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "hi")).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    // The rate limit cooled the only deployment down, so the retry tried it again once
    // the upstream's retry-after had passed rather than moving on.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2");
    assert_eq!(t.a.request_count(), 2);
    assert_eq!(t.b.request_count(), 0);
}

#[tokio::test]
async fn a_cooled_down_deployment_is_skipped_then_restored() {
    let t = three("  allowed_fails: 0\n  cooldown_time: 1").await;
    t.a.enqueue(ReplySpec::openai_error(500, "server_error", "boom"));
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "one")).await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "two")).await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    assert_eq!(t.a.request_count(), 1, "skipped while cooling");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = post(&t.app, "/v1/chat/completions", chat("primary", "three")).await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-a");
    assert_eq!(text_of(resp).await, "from a");
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_event_falls_back() {
    let t = three("  allowed_fails: 3").await;
    t.a.enqueue(ReplySpec::text("never").cut_after_chunks(0));
    let mut body = chat("primary", "hi");
    body["stream"] = json!(true);
    let resp = post(&t.app, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-b");
    let events = sse_data(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn a_stream_that_breaks_mid_way_is_not_retried_silently() {
    let t = three("  allowed_fails: 3").await;
    t.a.enqueue(ReplySpec::text("one two three four five").cut_after_chunks(3));
    let mut body = chat("primary", "hi");
    body["stream"] = json!(true);
    let resp = post(&t.app, "/v1/chat/completions", body).await;
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-a");
    let events = sse_data(resp).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_interrupted");
    assert_eq!(t.b.request_count(), 0);
    t.app.wait_for_spend_written(1, Duration::from_secs(5)).await;
    let logs = t.app.store().spend_logs(Default::default()).await.unwrap();
    assert_eq!(logs[0].outcome, "stream_failed");
}

#[tokio::test]
async fn weights_share_traffic_within_ten_percent() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let yaml = format!(
        "model_list:\n  - model_name: pool\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      weight: 3\n  - model_name: pool\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      weight: 1\n",
        a.base_url(),
        b.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let c = client();
    for _ in 0..1000 {
        let r = c
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .json(&chat("pool", "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let share = a.request_count() as f64 / 1000.0;
    assert!((0.65..=0.85).contains(&share), "a served {share}");
    assert_eq!(a.request_count() + b.request_count(), 1000);
}

#[tokio::test]
async fn least_busy_avoids_the_deployment_with_work_in_flight() {
    let (slow, fast) = (MockOpenAi::start().await, MockOpenAi::start().await);
    slow.set_default(ReplySpec::text("slow").delay_ms(800));
    let yaml = format!(
        "model_list:\n  - model_name: pool\n    litellm_params:\n      model: openai/x\n      api_base: {}\n  - model_name: pool\n    litellm_params:\n      model: openai/x\n      api_base: {}\nrouter_settings:\n  routing_strategy: least-busy\n",
        slow.base_url(),
        fast.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    // With nothing in flight the order is the config's, so the first request occupies the
    // slow deployment; the following ones must all avoid it.
    let url = app.url("/v1/chat/completions");
    let first = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(MASTER)
            .json(&chat("pool", "x"))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(slow.request_count(), 1);
    for _ in 0..5 {
        assert_eq!(post(&app, "/v1/chat/completions", chat("pool", "y")).await.status(), 200);
    }
    assert_eq!((slow.request_count(), fast.request_count()), (1, 5));
    assert_eq!(first.await.unwrap(), 200);
}

/// `primary` → `second` and `second` → `third`, one hop written on each entry, as users write
/// them; `models` restricts the key the requests use (empty: all).
async fn one_hop_each(models: Value) -> (Three, String) {
    let (a, b, c) =
        (MockOpenAi::start().await, MockOpenAi::start().await, MockOpenAi::start().await);
    a.set_default(ReplySpec::text("from a"));
    b.set_default(ReplySpec::text("from b"));
    c.set_default(ReplySpec::text("from c"));
    let yaml = format!(
        r#"
model_list:
  - model_name: primary
    litellm_params: {{ model: openai/model-a, api_base: "{a}", fallbacks: [second] }}
  - model_name: second
    litellm_params: {{ model: openai/model-b, api_base: "{b}" }}
    fallbacks: [third]
  - model_name: third
    litellm_params: {{ model: openai/model-c, api_base: "{c}" }}
"#,
        a = a.base_url(),
        b = b.base_url(),
        c = c.base_url(),
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let key = post(&app, "/key/generate", json!({ "models": models })).await;
    let key: Value = key.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    (Three { a, b, c, app }, key)
}

fn server_error() -> ReplySpec {
    ReplySpec::openai_error(500, "server_error", "upstream exploded")
}

#[tokio::test]
async fn a_chain_written_one_hop_per_entry_cascades_to_the_third() {
    let (t, key) = one_hop_each(json!([])).await;
    t.a.set_default(server_error());
    t.b.set_default(server_error());
    let resp = client()
        .post(t.app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat("primary", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-c");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "3");
    assert_eq!(
        resp.headers()["x-tollgate-attempted"],
        "primary=server_error, second=server_error, third=answered"
    );
    assert_eq!(text_of(resp).await, "from c");
}

#[tokio::test]
async fn a_fallback_the_key_may_not_use_is_skipped_and_said_so() {
    let (t, key) = one_hop_each(json!(["primary", "third"])).await;
    t.a.set_default(server_error());
    let resp = client()
        .post(t.app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat("primary", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/model-c");
    assert_eq!(resp.headers()["x-tollgate-attempts"], "2", "`second` was never sent to");
    assert_eq!(
        resp.headers()["x-tollgate-attempted"],
        "primary=server_error, second=not_allowed, third=answered"
    );
    assert_eq!(t.b.request_count(), 0);
    assert_eq!(t.app.wait_for_spend_written(1, Duration::from_secs(5)).await, 1);
    let rows = t.app.store().spend_logs(Default::default()).await.unwrap();
    let outcomes: Vec<&str> = rows[0]
        .attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["server_error", "not_allowed", "answered"]);

    // Only `second` left to fall back to, and the key may not use it: the primary's error.
    let (t2, key2) = one_hop_each(json!(["primary"])).await;
    t2.a.set_default(server_error());
    let resp = client()
        .post(t2.app.url("/v1/chat/completions"))
        .bearer_auth(&key2)
        .json(&chat("primary", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!((t2.b.request_count(), t2.c.request_count()), (0, 0));
}

#[tokio::test]
async fn a_cycle_of_failing_models_ends_promptly_with_the_last_error() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    a.set_default(ReplySpec::openai_error(503, "server_error", "a is down"));
    b.set_default(ReplySpec::openai_error(502, "server_error", "b is down"));
    let yaml = format!(
        r#"
model_list:
  - model_name: a
    litellm_params: {{ model: openai/a, api_base: "{a}", fallbacks: [b] }}
  - model_name: b
    litellm_params: {{ model: openai/b, api_base: "{b}", fallbacks: [a] }}
"#,
        a = a.base_url(),
        b = b.base_url(),
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let started = Instant::now();
    let resp = post(&app, "/v1/chat/completions", chat("a", "hi")).await;
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(resp.headers()["x-tollgate-attempted"], "a=server_error, b=server_error");
    let err = openai_error(resp, 502).await;
    assert_eq!(err["message"], "b is down");
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
}
