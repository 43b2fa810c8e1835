//! What can go wrong talking to an upstream.

use std::time::{Duration, SystemTime};

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

/// The longest wait an upstream's `retry-after` is taken for; longer requests are cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How long an upstream asked us to wait: `retry-after-ms` in milliseconds, else
/// `retry-after` in seconds or as an HTTP date (RFC 9110's IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms). At most [`MAX_RETRY_AFTER`]; a date already past means now.
/// Negative, infinite and not-a-number values are ignored, like a header that is absent.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

fn retry_after_at(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let ms = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok());
    if let Some(wait) = ms.and_then(|ms| seconds(ms / 1000.0)) {
        return Some(wait);
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// `secs` as a wait of at most [`MAX_RETRY_AFTER`]; `None` unless finite and not negative.
fn seconds(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Too large for a Duration is far more than the cap anyway.
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs.iter().map(|(n, v)| (http::HeaderName::from_static(n), v.parse().unwrap())).collect()
    }

    fn wait(pairs: &[(&'static str, &'static str)]) -> Option<Duration> {
        retry_after(&headers(pairs))
    }

    #[test]
    fn reads_seconds_and_milliseconds() {
        assert_eq!(wait(&[]), None);
        assert_eq!(wait(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(wait(&[("retry-after", " 1.5 ")]), Some(Duration::from_millis(1500)));
        assert_eq!(wait(&[("retry-after", "0")]), Some(Duration::ZERO));
        assert_eq!(
            wait(&[("retry-after", "7"), ("retry-after-ms", "250")]),
            Some(Duration::from_millis(250))
        );
        // A retry-after-ms that says nothing usable leaves retry-after to speak.
        assert_eq!(
            wait(&[("retry-after", "7"), ("retry-after-ms", "soon")]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait(&[("retry-after", "7"), ("retry-after-ms", "-1")]),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn huge_values_are_cut_to_a_day() {
        for value in ["1e300", "86401", "18446744073709551616", "1e19"] {
            assert_eq!(wait(&[("retry-after", value)]), Some(MAX_RETRY_AFTER), "{value}");
        }
        for value in ["1e300", "1.7e308", "86400001"] {
            assert_eq!(wait(&[("retry-after-ms", value)]), Some(MAX_RETRY_AFTER), "ms {value}");
        }
        assert_eq!(wait(&[("retry-after", "86400")]), Some(MAX_RETRY_AFTER));
        assert_eq!(
            wait(&[("retry-after", "86399")]),
            Some(MAX_RETRY_AFTER - Duration::from_secs(1))
        );
    }

    #[test]
    fn nonsense_is_ignored() {
        for value in ["-3", "NaN", "inf", "-inf", "1e400", "soon", "", "0x10"] {
            assert_eq!(wait(&[("retry-after", value)]), None, "{value}");
            assert_eq!(wait(&[("retry-after-ms", value)]), None, "ms {value}");
        }
    }

    #[test]
    fn reads_every_http_date_form() {
        // 1994-11-06 08:49:37 UTC, RFC 9110's example.
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = then - Duration::from_secs(120);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // obsolete RFC 850
            "Sun Nov  6 08:49:37 1994",       // obsolete asctime
        ] {
            let h = headers(&[("retry-after", date)]);
            assert_eq!(retry_after_at(&h, now), Some(Duration::from_secs(120)), "{date}");
        }
        let past = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after_at(&past, then + Duration::from_secs(5)), Some(Duration::ZERO));
        let far = headers(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]);
        assert_eq!(retry_after_at(&far, now), Some(MAX_RETRY_AFTER));
        let broken = headers(&[("retry-after", "Sun, 32 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after_at(&broken, now), None);
    }
}
