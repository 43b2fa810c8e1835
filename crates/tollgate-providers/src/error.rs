//! What can go wrong talking to an upstream.

use std::time::Duration;

use bytes::Bytes;

/// A failed upstream call.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("could not connect to the upstream: {0}")]
    Connect(String),
    /// No answer within the deployment's timeout.
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error status.
    #[error("the upstream answered HTTP {status}")]
    Status {
        /// The upstream's status.
        status: u16,
        /// Its body, as sent.
        body: Bytes,
        /// Its `content-type`.
        content_type: Option<String>,
        /// How long it asked us to wait, from `retry-after`/`retry-after-ms`.
        retry_after: Option<Duration>,
    },
    /// The connection broke while a response was being read.
    #[error("the upstream connection failed: {0}")]
    Io(String),
    /// The provider needs an account that nobody has linked yet.
    #[error("{0}")]
    NotLinked(String),
}

impl UpstreamError {
    /// A short, low-cardinality reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Status { status: 429, .. } => "rate_limited",
            Self::Status { status, .. } if *status >= 500 => "status_5xx",
            Self::Status { .. } => "status_4xx",
            Self::Io(_) => "io",
            Self::NotLinked(_) => "not_linked",
        }
    }

    /// Maps a transport error from the HTTP client.
    pub(crate) fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            Self::Timeout(timeout)
        } else if e.is_connect() {
            Self::Connect(describe(e))
        } else {
            Self::Io(describe(e))
        }
    }
}

/// The error and its causes on one line, without the URL (which may carry credentials).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How long an upstream asked us to wait: `retry-after-ms`, or `retry-after` in seconds.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    let secs = get("retry-after")?.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }
}
