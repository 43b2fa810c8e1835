//! What a web page can make the user's browser do to tollgate: nothing, except on
//! tollgate's own pages. Requests here carry the headers a browser would send (`Origin`,
//! `Sec-Fetch-Site`, the `Host` of the name it resolved); clients that are not browsers send
//! none of them and keep working.

use reqwest::RequestBuilder;
use serde_json::{Value, json};
use tollgate_store::KeyFilter;
use tollgate_testkit::{MockGitHub, MockOpenAi, TestApp};

use crate::helpers::*;

/// tollgate without a master key (every local caller is the admin), its auth helper pointed
/// at the GitHub stand-in.
async fn open_setup() -> (MockOpenAi, MockGitHub, TestApp) {
    let mock = MockOpenAi::start().await;
    let github = MockGitHub::start().await;
    let env = [
        ("TOLLGATE_GITHUB_URL", github.github_url()),
        ("TOLLGATE_GITHUB_API_URL", github.api_url()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with_env(&config(&mock, ""), &env).await.unwrap();
    (mock, github, app)
}

/// `request` with each of `headers`.
fn with(mut request: RequestBuilder, headers: &[(&str, &str)]) -> RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

async fn key_aliases(app: &TestApp) -> Vec<String> {
    let keys = app.store().list_keys(KeyFilter { page: 1, ..KeyFilter::default() }).await.unwrap();
    keys.into_iter().map(|k| k.key_alias.unwrap_or_default()).collect()
}

/// The body a page would post to plant an admin key.
const PLANTED: &str = r#"{"key_alias": "planted", "permissions": {"admin": true}}"#;

#[tokio::test]
async fn without_a_master_key_a_cross_site_post_creates_no_key() {
    let (_mock, _github, app) = open_setup().await;
    let own = app.base_url();
    let other_port = format!("http://127.0.0.1:{}", app.addr.port().wrapping_add(1));
    for (browser, headers) in [
        (
            "a current browser",
            vec![("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")],
        ),
        ("a browser without fetch metadata", vec![("origin", "http://evil.example")]),
        ("fetch metadata alone", vec![("sec-fetch-site", "cross-site")]),
        (
            "another port of this host",
            vec![("origin", other_port.as_str()), ("sec-fetch-site", "same-site")],
        ),
        ("a sandboxed frame", vec![("origin", "null")]),
    ] {
        let post = client().post(app.url("/key/generate")).header("content-type", "text/plain");
        let resp = with(post, &headers).body(PLANTED).send().await.unwrap();
        let err = openai_error(resp, 403).await;
        assert_eq!(err["code"], "cross_site_request", "{browser}: {err}");
        assert!(err["message"].as_str().unwrap().contains("curl"), "{err}");
    }
    // Nor a text/plain or form body sent with no browser headers at all: only JSON is read.
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let post = client().post(app.url("/key/generate")).header("content-type", content_type);
        let err = openai_error(post.body(PLANTED).send().await.unwrap(), 415).await;
        assert_eq!(err["code"], "unsupported_media_type", "{err}");
        assert!(err["message"].as_str().unwrap().contains("application/json"), "{err}");
    }
    assert!(key_aliases(&app).await.is_empty(), "no key was created");

    // tollgate's own page, and a client that is not a browser, still manage keys.
    let own_page = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    let post = with(client().post(app.url("/key/generate")), &own_page);
    let resp = post.json(&json!({"key_alias": "own-page"})).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = client()
        .post(app.url("/key/generate"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"key_alias": "curl"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut aliases = key_aliases(&app).await;
    aliases.sort();
    assert_eq!(aliases, ["curl", "own-page"]);
}

#[tokio::test]
async fn without_a_master_key_only_names_of_this_machine_are_served_on_both_ports() {
    let (mock, github, app) = open_setup().await;
    let (port, auth_port) = (app.addr.port(), app.auth_addr.port());
    let rebound = format!("evil.example:{port}");
    let chat_body = chat("gpt-4o-mini", "hi");
    for request in [
        client().get(app.url("/key/list")),
        client().get(app.url("/v1/models")),
        client().post(app.url("/v1/chat/completions")).json(&chat_body),
        client().get(app.url("/metrics")),
    ] {
        let resp = request.header("host", &rebound).send().await.unwrap();
        let err = openai_error(resp, 421).await;
        assert_eq!(err["code"], "host_not_allowed", "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("localhost") && message.contains("TOLLGATE_MASTER_KEY"), "{err}");
    }
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("host", &rebound)
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "the Anthropic shape on /v1/messages: {body}");
    assert_eq!(mock.request_count(), 0);

    // The auth helper: its page starts no device flow, its status answers JSON.
    let rebound = format!("evil.example:{auth_port}");
    let page = client().get(app.auth_url("/github")).header("host", &rebound).send().await.unwrap();
    assert_eq!(page.status(), 421);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("http://localhost:{auth_port}/github")), "{html}");
    let status = client()
        .get(app.auth_url("/github/status?flow=anything"))
        .header("host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 421);
    assert_eq!(status.json::<Value>().await.unwrap()["state"], "error");
    assert_eq!(github.device_requests().len(), 0);

    // Every name of this machine is served.
    for host in ["localhost", "127.0.0.1", "[::1]", "tollgate.localhost"] {
        let resp = client()
            .get(app.url("/key/list"))
            .header("host", format!("{host}:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{host}");
        let resp = client()
            .get(app.auth_url("/github"))
            .header("host", format!("{host}:{auth_port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{host}");
    }
    assert_eq!(github.device_requests().len(), 1, "one flow, shown to every local name");
}

#[tokio::test]
async fn without_a_master_key_pages_of_other_origins_cannot_spend_or_read() {
    let (mock, _github, app) = open_setup().await;
    let own = app.base_url();
    let other_port = format!("http://127.0.0.1:{}", app.addr.port().wrapping_add(1));
    let chat_body = chat("gpt-4o-mini", "hi");
    for headers in [
        vec![("origin", other_port.as_str())],
        vec![("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")],
        vec![("origin", other_port.as_str()), ("sec-fetch-site", "same-site")],
    ] {
        let post = with(client().post(app.url("/v1/chat/completions")), &headers);
        let err = openai_error(post.json(&chat_body).send().await.unwrap(), 403).await;
        assert_eq!(err["code"], "cross_site_request", "{headers:?}: {err}");
        let get = with(client().get(app.url("/key/list")), &headers[..1]);
        assert_eq!(get.send().await.unwrap().status(), 403, "{headers:?}");
    }
    let resp = client()
        .post(app.url("/v1/messages"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert_eq!(mock.request_count(), 0, "nothing was spent");

    // tollgate's own pages, links and typed addresses, and plain clients are served.
    let own_page = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    let post = with(client().post(app.url("/v1/chat/completions")), &own_page);
    assert_eq!(post.json(&chat_body).send().await.unwrap().status(), 200);
    for site in ["same-site", "none"] {
        let get = client().get(app.url("/v1/models")).header("sec-fetch-site", site);
        assert_eq!(get.send().await.unwrap().status(), 200, "{site}");
    }
    let plain = client().post(app.url("/v1/chat/completions")).json(&chat_body);
    assert_eq!(plain.send().await.unwrap().status(), 200);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn with_a_master_key_any_host_is_served_but_management_stays_same_origin_and_json() {
    let (mock, app) = setup().await;
    let remote = "gateway.example";
    let models = client().get(app.url("/v1/models")).bearer_auth(MASTER).header("host", remote);
    assert_eq!(models.send().await.unwrap().status(), 200);
    let list = client().get(app.url("/key/list")).bearer_auth(MASTER).header("host", remote);
    assert_eq!(list.send().await.unwrap().status(), 200);
    // The model APIs need a key a page does not have; they stay open to other origins.
    let chat_body = chat("gpt-4o-mini", "hi");
    let post = client().post(app.url("/v1/chat/completions")).bearer_auth(MASTER);
    let resp = post.header("sec-fetch-site", "cross-site").json(&chat_body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.request_count(), 1);

    let generate = || client().post(app.url("/key/generate")).bearer_auth(MASTER);
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
    ] {
        let post = with(generate(), &headers).json(&json!({"key_alias": "cross"}));
        let err = openai_error(post.send().await.unwrap(), 403).await;
        assert_eq!(err["code"], "cross_site_request", "{headers:?}");
    }
    let get = client().get(app.url("/key/list")).bearer_auth(MASTER);
    assert_eq!(get.header("sec-fetch-site", "cross-site").send().await.unwrap().status(), 403);
    let plain = generate().header("content-type", "text/plain").body(r#"{"key_alias": "plain"}"#);
    let err = openai_error(plain.send().await.unwrap(), 415).await;
    assert_eq!(err["code"], "unsupported_media_type");
    let untyped = generate().body(r#"{"key_alias": "untyped"}"#);
    assert_eq!(
        openai_error(untyped.send().await.unwrap(), 415).await["code"],
        "unsupported_media_type"
    );
    assert!(key_aliases(&app).await.is_empty());

    let typed = generate()
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"key_alias": "typed"}"#);
    let created: Value = typed.send().await.unwrap().json().await.unwrap();
    let hash = created["token"].as_str().unwrap();
    // A call without a body needs no type.
    let path = format!("/key/{hash}/regenerate");
    let resp = client().post(app.url(&path)).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(key_aliases(&app).await, ["typed"]);
}
