//! What a web page can make the user's browser do to the auth helper: nothing, except on the
//! helper's own pages. Requests carry the headers a browser would send (`Sec-Fetch-Site`,
//! `Origin`, the `Host` of the name it resolved).

// Tests may unwrap and panic: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::*;

/// The helper's port, as a browser writes it in `Host`.
fn port(h: &Helper) -> u16 {
    h.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn without_a_master_key_only_names_of_this_machine_are_served() {
    let h = spawn(None).await;
    let rebound = format!("evil.example:{}", port(&h));
    let page = h.get("/github", &[("host", &rebound)]).await;
    assert_eq!(page.status, 421, "{}", page.body);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.body.contains("TOLLGATE_MASTER_KEY"), "{}", page.body);
    assert!(page.body.contains(&format!("http://localhost:{}/github", port(&h))), "{}", page.body);
    assert_eq!(h.github.device_requests().len(), 0, "no device flow started");

    let status = h.get("/github/status?flow=anything", &[("host", &rebound)]).await;
    assert_eq!(status.status, 421);
    let body: Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(body["state"], "error");
    assert!(body["message"].as_str().unwrap().contains("localhost"), "{body}");
    let health = h.get("/health", &[("host", &rebound)]).await;
    assert_eq!(health.status, 421);
    let relink = h.client.post(format!("{}/github/relink", h.url)).header("host", &rebound);
    assert_eq!(relink.send().await.unwrap().status(), 421);
    assert_eq!(h.github.device_requests().len(), 0);

    for host in ["localhost", "127.0.0.1", "[::1]", "link.localhost"] {
        let page = h.get("/github", &[("host", &format!("{host}:{}", port(&h)))]).await;
        assert_eq!(page.status, 200, "{host}: {}", page.body);
    }
    assert_eq!(h.github.device_requests().len(), 1);
}

#[tokio::test]
async fn a_page_of_another_site_starts_no_flow() {
    let h = spawn(None).await;
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
    ] {
        let page = h.get("/github", &headers).await;
        assert_eq!(page.status, 403, "{headers:?}: {}", page.body);
        assert!(page.body.contains("Cross-site request refused"), "{}", page.body);
        assert!(page.body.contains("typing or pasting its address"), "{}", page.body);
        let status = h.get("/github/status?flow=anything", &headers).await;
        assert_eq!(status.status, 403);
        assert_eq!(serde_json::from_str::<Value>(&status.body).unwrap()["state"], "error");
    }
    assert_eq!(h.github.device_requests().len(), 0, "no device flow started");

    // A typed address, and a link from another port of this host (the proxy's pages), open it.
    let typed = h.get("/github", &[("sec-fetch-site", "none")]).await;
    assert_eq!(typed.status, 200, "{}", typed.body);
    let linked = h.get("/github", &[("sec-fetch-site", "same-site")]).await;
    assert_eq!(linked.status, 200);
    assert_eq!(linked.user_code(), typed.user_code());
    // Sending its form takes the helper's own page.
    h.github.approve(&typed.user_code()).unwrap();
    assert_eq!(h.settled(&typed).await["state"], "linked");
    let form = |site: &'static str| {
        h.client.post(format!("{}/github/relink", h.url)).header("sec-fetch-site", site)
    };
    assert_eq!(form("same-site").send().await.unwrap().status(), 403);
    assert_eq!(form("cross-site").send().await.unwrap().status(), 403);
    assert_eq!(h.github.device_requests().len(), 1);
    assert_eq!(form("same-origin").send().await.unwrap().status(), 303);
    assert_eq!(h.github.device_requests().len(), 2);
}

#[tokio::test]
async fn with_a_master_key_any_host_is_served_but_no_session_starts_from_another_site() {
    let h = spawn(Some(MASTER)).await;
    h.create_key("sk-planted-key-0001", false).await;
    // Another site sends the user to link their GitHub account to the page's own key.
    let planted =
        h.get("/github?key=sk-planted-key-0001", &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(planted.status, 403, "{}", planted.body);
    assert!(planted.session_cookie().is_none(), "no session for the planted key");
    assert_eq!(h.github.device_requests().len(), 0);

    // Remote deployments are normal: any name, once the master key is presented.
    let remote = [("host", "gateway.example"), ("sec-fetch-site", "none")];
    let admin = h.get(&format!("/github?key={MASTER}"), &remote).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(admin.session_cookie().is_some());
    let status =
        h.client.get(format!("{}{}", h.url, admin.status_url())).header("host", "gateway.example");
    assert_eq!(status.send().await.unwrap().status(), 200);
}
