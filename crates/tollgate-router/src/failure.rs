//! Why an attempt failed, and what that means for the plan: retry, fall back, or stop.

use std::time::Duration;

use tollgate_config::{RetryPolicy, RouterSettings};

/// The kind of an upstream failure, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 429: slow down.
    RateLimited,
    /// 402 or a quota message: this deployment's allowance is used up.
    QuotaExceeded,
    /// 5xx.
    ServerError,
    /// No answer in time.
    Timeout,
    /// No connection.
    Connect,
    /// The connection broke, or a stream ended before its first event.
    Broken,
    /// 401/403 from the upstream: the deployment's credentials are wrong or lack access.
    Authentication,
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// The upstream refused the content.
    ContentPolicy,
    /// Any other 4xx: the request itself is wrong (bad parameter, unsupported model, ...).
    BadRequest,
}

impl FailureKind {
    /// A label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Broken => "broken",
            Self::Authentication => "authentication",
            Self::ContextWindow => "context_window",
            Self::ContentPolicy => "content_policy",
            Self::BadRequest => "bad_request",
        }
    }

    /// Classifies an error answer from its status and body.
    pub fn from_status(status: u16, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        let says = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        match status {
            402 => Self::QuotaExceeded,
            429 if says(&[
                "quota_exceeded",
                "insufficient_quota",
                "quota exceeded",
                "no quota",
            ]) =>
            {
                Self::QuotaExceeded
            }
            429 => Self::RateLimited,
            401 | 403 => Self::Authentication,
            408 => Self::Timeout,
            400..=499
                if says(&[
                    "context_length_exceeded",
                    "context length",
                    "context window",
                    "prompt is too long",
                    "too many tokens",
                    "model_max_prompt_tokens_exceeded",
                    "maximum context",
                ]) =>
            {
                Self::ContextWindow
            }
            400..=499
                if says(&["content_policy", "content_filter", "content management policy"]) =>
            {
                Self::ContentPolicy
            }
            400..=499 if says(&["quota_exceeded", "insufficient_quota"]) => Self::QuotaExceeded,
            400..=499 => Self::BadRequest,
            _ => Self::ServerError,
        }
    }

    /// Whether the next deployment in the plan should be tried. Errors that are about the
    /// request itself stay with the client, in the upstream's own words.
    pub fn moves_on(self) -> bool {
        !matches!(self, Self::BadRequest | Self::ContentPolicy | Self::ContextWindow)
    }

    /// Whether the failure counts against the deployment's health.
    pub fn is_deployment_fault(self) -> bool {
        self.moves_on()
    }

    /// Retries allowed within a model group for this kind.
    pub fn retries(self, settings: &RouterSettings) -> u32 {
        let p: &RetryPolicy = &settings.retry_policy;
        let specific = match self {
            Self::RateLimited | Self::QuotaExceeded => p.rate_limit,
            Self::ServerError | Self::Broken | Self::Connect => p.internal_server,
            Self::Timeout => p.timeout,
            Self::Authentication => p.authentication,
            Self::ContentPolicy => p.content_policy,
            Self::BadRequest | Self::ContextWindow => p.bad_request,
        };
        match self {
            // Retrying these cannot help unless the operator says otherwise.
            Self::QuotaExceeded
            | Self::BadRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::Authentication => specific.unwrap_or(0),
            _ => specific.unwrap_or(settings.num_retries),
        }
    }
}

/// The longest `retry-after` worth waiting for before a retry; beyond it the plan moves on.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// How long to wait before retry number `n` (1-based): at least `retry_after` from the upstream
/// and `router_settings.retry_after`, else exponential backoff from 250 ms with jitter.
pub fn backoff(
    n: u32,
    upstream_retry_after: Option<Duration>,
    settings: &RouterSettings,
) -> Duration {
    let exp = Duration::from_millis(250u64.saturating_mul(1 << n.saturating_sub(1).min(5)));
    let jitter = Duration::from_millis(u64::from(rand::random::<u16>() % 100));
    let base = upstream_retry_after.unwrap_or(exp + jitter);
    base.max(settings.retry_after).min(MAX_RETRY_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        assert_eq!(FailureKind::from_status(429, b"slow down"), FailureKind::RateLimited);
        assert_eq!(
            FailureKind::from_status(429, br#"{"error":{"code":"insufficient_quota"}}"#),
            FailureKind::QuotaExceeded
        );
        assert_eq!(FailureKind::from_status(402, b""), FailureKind::QuotaExceeded);
        assert_eq!(FailureKind::from_status(503, b""), FailureKind::ServerError);
        assert_eq!(FailureKind::from_status(401, b""), FailureKind::Authentication);
        assert_eq!(
            FailureKind::from_status(400, br#"{"error":{"code":"model_not_supported"}}"#),
            FailureKind::BadRequest
        );
        assert_eq!(
            FailureKind::from_status(400, b"prompt is too long: 210000 tokens > 200000 maximum"),
            FailureKind::ContextWindow
        );
        assert!(!FailureKind::BadRequest.moves_on());
        assert!(FailureKind::QuotaExceeded.moves_on());
    }

    #[test]
    fn retries_follow_the_policy() {
        let mut s = RouterSettings { num_retries: 2, ..Default::default() };
        assert_eq!(FailureKind::ServerError.retries(&s), 2);
        assert_eq!(FailureKind::QuotaExceeded.retries(&s), 0);
        assert_eq!(FailureKind::BadRequest.retries(&s), 0);
        s.retry_policy.rate_limit = Some(5);
        assert_eq!(FailureKind::RateLimited.retries(&s), 5);
    }

    #[test]
    fn backoff_honours_retry_after_within_bounds() {
        let s = RouterSettings::default();
        assert_eq!(backoff(1, Some(Duration::from_secs(2)), &s), Duration::from_secs(2));
        assert_eq!(backoff(1, Some(Duration::from_secs(99)), &s), MAX_RETRY_WAIT);
        let b = backoff(2, None, &s);
        assert!(b >= Duration::from_millis(500) && b < Duration::from_millis(600), "{b:?}");
    }
}
