//! The pooled HTTP client and request execution.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use crate::UpstreamError;

/// Distinct upstream bases remembered by [`post`]; they come from config and linked accounts,
/// so a handful in practice. Past this, URLs are parsed per request rather than remembered.
const MAX_CACHED_BASES: usize = 256;

type UrlCache = RwLock<HashMap<String, HashMap<&'static str, reqwest::Url>>>;

/// `POST {base}{path}`. The URL is parsed (and its host checked for international names)
/// once per distinct base and path, not once per request.
pub(crate) fn post(
    http: &reqwest::Client,
    base: &str,
    path: &'static str,
) -> reqwest::RequestBuilder {
    static CACHE: OnceLock<UrlCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let known = cache
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(base)
        .and_then(|paths| paths.get(path))
        .cloned();
    if let Some(url) = known {
        return http.post(url);
    }
    let text = format!("{base}{path}");
    match reqwest::Url::parse(&text) {
        Ok(url) => {
            let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
            if cache.len() < MAX_CACHED_BASES || cache.contains_key(base) {
                cache.entry(base.to_owned()).or_default().insert(path, url.clone());
            }
            http.post(url)
        }
        // Left to reqwest, whose error names what is wrong when the request is sent.
        Err(_) => http.post(text),
    }
}

/// Most of an error body worth keeping: enough for any provider's message, bounded so a
/// misbehaving upstream cannot make us buffer without limit.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Builds the one HTTP client every upstream call shares: pooled keep-alive connections,
/// TCP_NODELAY, rustls with the platform's roots.
pub fn build_http_client() -> Result<reqwest::Client, reqwest::Error> {
    // Another part of the process may have installed one already; either is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends a request, waiting at most `timeout` for the status and headers. Error statuses have
/// their body read (within what is left of `timeout`).
pub(crate) async fn execute(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, UpstreamError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let response = match tokio::time::timeout_at(deadline, request.send()).await {
        Err(_) => return Err(UpstreamError::Timeout(timeout)),
        Ok(Err(e)) => return Err(UpstreamError::from_reqwest(e, timeout)),
        Ok(Ok(r)) => r,
    };
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let retry_after = crate::retry_after(response.headers());
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_bounded(response, deadline).await;
    Err(UpstreamError::Status { status, body, content_type, retry_after })
}

async fn read_bounded(
    mut response: reqwest::Response,
    deadline: tokio::time::Instant,
) -> bytes::Bytes {
    let mut body = bytes::BytesMut::new();
    while body.len() < MAX_ERROR_BODY {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            // End of body, a broken connection or the deadline: keep what arrived.
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    body.freeze()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_are_joined_and_remembered() {
        let http = build_http_client().unwrap();
        for _ in 0..2 {
            let request =
                post(&http, "http://127.0.0.1:9/v1", "/chat/completions").build().unwrap();
            assert_eq!(request.url().as_str(), "http://127.0.0.1:9/v1/chat/completions");
            assert_eq!(request.method(), reqwest::Method::POST);
        }
        let other = post(&http, "http://127.0.0.1:9/v1", "/embeddings").build().unwrap();
        assert_eq!(other.url().as_str(), "http://127.0.0.1:9/v1/embeddings");
    }

    #[test]
    fn a_bad_base_fails_when_sent_not_before() {
        let http = build_http_client().unwrap();
        assert!(post(&http, "not a url", "/chat/completions").build().is_err());
    }
}
