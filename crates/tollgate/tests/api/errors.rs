use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{RefusingPort, ReplySpec, TestApp};

use crate::helpers::*;

async fn post_raw(app: &TestApp, body: &'static str) -> reqwest::Response {
    client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let (mock, app) = setup().await;
    let err = openai_error(post_raw(&app, "{\"model\": \"gpt-4o-mini\", ").await, 400).await;
    assert_eq!(err["code"], "invalid_json");
    assert_eq!(err["type"], "invalid_request_error");
    let err = openai_error(post_raw(&app, "[1, 2]").await, 400).await;
    assert!(err["message"].as_str().unwrap().contains("JSON object"));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn missing_fields_are_named() {
    let (_mock, app) = setup().await;
    let resp =
        post(&app, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "x"}]}))
            .await;
    let err = openai_error(resp, 400).await;
    assert_eq!(err["param"], "model");
    assert_eq!(err["code"], "missing_required_parameter");
    let resp = post(&app, "/v1/chat/completions", json!({"model": "gpt-4o-mini"})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "messages");
    let resp = post(&app, "/v1/embeddings", json!({"model": "text-embedding-3-small"})).await;
    assert_eq!(openai_error(resp, 400).await["param"], "input");
}

#[tokio::test]
async fn wrong_types_are_named() {
    let (_mock, app) = setup().await;
    let mut body = chat("gpt-4o-mini", "x");
    body["stream"] = json!("yes");
    let err = openai_error(post(&app, "/v1/chat/completions", body).await, 400).await;
    assert_eq!(err["param"], "stream");
    assert!(err["message"].as_str().unwrap().contains("boolean"), "{err}");
    let body = json!({"model": "gpt-4o-mini", "messages": "hello"});
    let err = openai_error(post(&app, "/v1/chat/completions", body).await, 400).await;
    assert_eq!(err["param"], "messages");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 3}]});
    let err = openai_error(post(&app, "/v1/chat/completions", body).await, 400).await;
    assert_eq!(err["param"], "messages[0].content");
}

#[tokio::test]
async fn unknown_models_are_a_404_listing_what_exists() {
    let (mock, app) = setup().await;
    let err = openai_error(post(&app, "/v1/chat/completions", chat("gpt-9", "x")).await, 404).await;
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(err["param"], "model");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("gpt-9") && msg.contains("gpt-4o-mini") && msg.contains("copilot-model"),
        "{msg}"
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413() {
    let (mock, app) = setup_with("general_settings:\n  max_request_size_mb: 0.001\n").await;
    let big = "x".repeat(4096);
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", &big)).await;
    let err = openai_error(resp, 413).await;
    assert_eq!(err["code"], "request_too_large");
    // Chunked bodies without a content-length are cut off too.
    let stream = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(bytes_of(&"y".repeat(512)))),
    );
    let resp = client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    openai_error(resp, 413).await;
    let small = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "hi")).await;
    assert_eq!(small.status(), 200);
    assert_eq!(mock.request_count(), 1);
}

fn bytes_of(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn unreachable_upstream_is_a_502() {
    let refusing = RefusingPort::new().unwrap();
    let closed = refusing.addr();
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_base: http://{closed}/v1\n"
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let err = openai_error(post(&app, "/v1/chat/completions", chat("m", "x")).await, 502).await;
    assert_eq!(err["code"], "upstream_unreachable");
    assert!(!err["message"].as_str().unwrap().contains(&closed.port().to_string()));
}

#[tokio::test]
async fn slow_upstream_is_a_504() {
    let (mock, app) = setup().await;
    mock.enqueue(ReplySpec::hang());
    let started = Instant::now();
    // `mock/*` has a 1 s timeout.
    let resp = post(&app, "/v1/chat/completions", chat("mock/slow", "x")).await;
    let err = openai_error(resp, 504).await;
    assert_eq!(err["code"], "upstream_timeout");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");

    mock.enqueue(ReplySpec::hang());
    let mut body = chat("mock/slow", "x");
    body["stream"] = json!(true);
    openai_error(post(&app, "/v1/chat/completions", body).await, 504).await;
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_body() {
    let (mock, app) = setup().await;
    let upstream_body = json!({"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
    mock.enqueue(ReplySpec::error(429, upstream_body.clone()).retry_after(7));
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "x")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/gpt-4o-mini-2024-07-18");
    assert_eq!(resp.json::<Value>().await.unwrap(), upstream_body);

    mock.enqueue(ReplySpec::openai_error(
        400,
        "invalid_request_error",
        "context_length_exceeded: too long",
    ));
    let err =
        openai_error(post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "x")).await, 400).await;
    assert_eq!(err["message"], "context_length_exceeded: too long");

    // A non-JSON failure becomes an OpenAI error carrying the upstream's status and text.
    mock.enqueue(ReplySpec::error(503, json!("<html>Service Unavailable</html>")));
    let mut body = chat("gpt-4o-mini", "x");
    body["stream"] = json!(true);
    let err = openai_error(post(&app, "/v1/chat/completions", body).await, 503).await;
    assert!(err["message"].as_str().unwrap().contains("Service Unavailable"), "{err}");
    assert_eq!(err["code"], "upstream_error");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_openai_shape() {
    let (_mock, app) = setup().await;
    let resp = client().get(app.url("/v1/nothing-here")).bearer_auth(MASTER).send().await.unwrap();
    openai_error(resp, 404).await;
    let resp =
        client().get(app.url("/v1/chat/completions")).bearer_auth(MASTER).send().await.unwrap();
    openai_error(resp, 405).await;
}

#[tokio::test]
async fn a_success_status_over_garbage_is_an_upstream_failure() {
    let (mock, app) = setup().await;
    for garbage in [json!("<html><body>Bad gateway</body></html>"), json!(""), json!([1, 2])] {
        for stream in [false, true] {
            mock.enqueue(ReplySpec::error(200, garbage.clone()));
            let mut body = chat("gpt-4o-mini", "hi");
            body["stream"] = json!(stream);
            let resp = post(&app, "/v1/chat/completions", body).await;
            let err = openai_error(resp, 502).await;
            assert_eq!(err["type"], "api_error", "{garbage} stream={stream}: {err}");
        }
    }
    app.wait_for_spend_written(6, std::time::Duration::from_secs(5)).await;
    let rows = app.store().spend_logs(Default::default()).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.outcome == "upstream_failed" && r.status == 502), "{rows:?}");
}

#[tokio::test]
async fn garbage_from_the_primary_falls_back() {
    let (broken, good) =
        (tollgate_testkit::MockOpenAi::start().await, tollgate_testkit::MockOpenAi::start().await);
    broken.set_default(ReplySpec::error(200, json!("not json at all")));
    let yaml = format!(
        "model_list:\n  - model_name: first\n    litellm_params: {{ model: openai/first, api_base: \"{b}\", fallbacks: [good] }}\n  - model_name: good\n    litellm_params: {{ model: openai/good, api_base: \"{g}\" }}\n",
        b = broken.base_url(),
        g = good.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    for stream in [false, true] {
        let mut body = chat("first", "hi");
        body["stream"] = json!(stream);
        let resp = post(&app, "/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200, "stream={stream}");
        assert_eq!(resp.headers()["x-tollgate-served-model"], "openai/good");
        assert_eq!(resp.headers()["x-tollgate-attempted"], "first=broken, good=answered");
    }
}

/// A proxy that gives clients one second for headers and one for bodies.
async fn impatient() -> TestApp {
    let mock = tollgate_testkit::MockOpenAi::start().await;
    TestApp::spawn_with_env(
        &config(&mock, ""),
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("TOLLGATE_HEADER_TIMEOUT", "1"),
            ("TOLLGATE_BODY_TIMEOUT", "1"),
        ],
    )
    .await
    .unwrap()
}

/// Reads until the server closes the connection or `limit` passes; what it sent, and whether
/// it closed.
async fn read_until_closed(tcp: &mut tokio::net::TcpStream, limit: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn trickled_headers_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = impatient().await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let started = Instant::now();
    // One header byte every 300 ms: never done, always sending.
    let writer = tokio::spawn(async move {
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if tcp.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    // An idle connection is closed on the same deadline.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(closed, "an idle connection stayed open");
    writer.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_body_that_never_ends_is_answered_408_in_the_callers_protocol() {
    use tokio::io::AsyncWriteExt;
    let app = impatient().await;
    for (path, anthropic) in
        [("/v1/chat/completions", false), ("/v1/messages", true), ("/key/generate", false)]
    {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {MASTER}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(4), "{path}: {:?}", started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let v: Value =
            serde_json::from_str(body.trim()).unwrap_or_else(|_| panic!("{path}: {body}"));
        if anthropic {
            assert_eq!(v["type"], "error", "{v}");
        } else {
            assert_eq!(v["error"]["code"], "request_timeout", "{v}");
        }
    }
}

#[tokio::test]
async fn a_huge_retry_after_is_cut_to_a_day_and_answered() {
    let (mock, app) = setup().await;
    // Each was a panic in the request task once, and the client got a closed connection.
    for (header, value) in
        [("retry-after", "1e300"), ("retry-after-ms", "1e300"), ("retry-after", "1e19")]
    {
        mock.enqueue(
            ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down").header(header, value),
        );
        let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "x")).await;
        assert_eq!(resp.headers()["retry-after"], "86400", "{header}: {value}");
        let err = openai_error(resp, 429).await;
        assert_eq!(err["message"], "slow down");
    }
    // An HTTP date is read too, no longer dropped.
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    mock.enqueue(
        ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down")
            .header("retry-after", soon),
    );
    let resp = post(&app, "/v1/chat/completions", chat("gpt-4o-mini", "x")).await;
    let secs: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((110..=120).contains(&secs), "{secs}");
}
