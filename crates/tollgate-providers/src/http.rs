//! The pooled HTTP client and request execution.

use std::time::Duration;

use crate::UpstreamError;

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
