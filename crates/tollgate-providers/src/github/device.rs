//! GitHub's OAuth device flow (RFC 8628), with the client id and scope of Copilot's
//! editor integrations, so the resulting token is one the Copilot token exchange accepts.

use std::time::Duration;

use http::header::ACCEPT;
use serde::Deserialize;
use tollgate_config::Secret;

use super::{describe_transport, preview};

/// The OAuth app id of GitHub Copilot's VS Code integration; the Copilot token exchange only
/// accepts OAuth tokens issued to an editor integration.
pub const COPILOT_CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
/// The scope those integrations ask for.
pub const COPILOT_SCOPE: &str = "read:user";
/// The RFC 8628 grant type sent when polling.
pub const DEVICE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How much longer to wait after each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// RFC 8628's default when the server names no interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// GitHub's device codes live 15 minutes; used only if a response omits `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(900);
/// A device-flow call is small; anything slower than this is GitHub being unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed device-flow call.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub could not be reached or the connection broke.
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    /// GitHub answered with an error status.
    #[error("GitHub answered HTTP {status}: {body}")]
    Upstream {
        /// The status.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
    /// GitHub answered an OAuth error other than the four poll outcomes, e.g.
    /// `incorrect_device_code` or `device_flow_disabled`.
    #[error("GitHub refused the device flow: {code}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// The OAuth `error` code.
        code: String,
        /// GitHub's `error_description`.
        description: Option<String>,
    },
    /// The answer was not what the device flow specifies.
    #[error("GitHub sent an unexpected answer: {0}")]
    InvalidResponse(String),
}

/// A started device flow: what to show the user and how to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code the poller sends back; never shown to the user.
    pub device_code: Secret<String>,
    /// The code the user types at `verification_uri`, e.g. `ABCD-1234`.
    pub user_code: String,
    /// Where the user enters the code.
    pub verification_uri: String,
    /// How long the codes stay valid.
    pub expires_in: Duration,
    /// How long to wait between polls.
    pub interval: Duration,
}

/// What one poll of the token endpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// The user has not approved yet: poll again after the interval.
    Pending,
    /// Polling too fast: wait longer from now on (see [`next_interval`]).
    SlowDown {
        /// The interval GitHub asked for, when it named one.
        interval: Option<Duration>,
    },
    /// The device code expired before approval; start over.
    Expired,
    /// The user declined.
    Denied,
    /// Approved: the GitHub OAuth token of the linked account.
    Authorized {
        /// The OAuth token (`ghu_…`), to be exchanged for Copilot tokens.
        access_token: Secret<String>,
    },
}

impl PollOutcome {
    /// Whether polling should stop.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Expired | Self::Denied | Self::Authorized { .. })
    }
}

/// The interval to wait before the next poll. A `slow_down` adds [`SLOW_DOWN_STEP`] to the
/// current interval for this and every later poll (RFC 8628 §3.5); when GitHub names a
/// longer interval, that one wins.
pub fn next_interval(current: Duration, outcome: &PollOutcome) -> Duration {
    match outcome {
        PollOutcome::SlowDown { interval } => {
            let stepped = current.saturating_add(SLOW_DOWN_STEP);
            interval.map_or(stepped, |asked| asked.max(stepped))
        }
        _ => current,
    }
}

/// Talks the device flow to GitHub (or a stand-in at another base URL).
#[derive(Debug, Clone)]
pub struct DeviceFlowClient {
    http: reqwest::Client,
    github_url: String,
    client_id: String,
    scope: String,
}

impl DeviceFlowClient {
    /// A client for `github_url` (e.g. `https://github.com`) with Copilot's client id and scope.
    pub fn new(http: reqwest::Client, github_url: String) -> Self {
        let github_url = github_url.trim_end_matches('/').to_owned();
        Self {
            http,
            github_url,
            client_id: COPILOT_CLIENT_ID.to_owned(),
            scope: COPILOT_SCOPE.to_owned(),
        }
    }

    /// Uses another OAuth app, e.g. for a GitHub Enterprise Server with its own app.
    #[must_use]
    pub fn with_client_id(
        mut self,
        client_id: impl Into<String>,
        scope: impl Into<String>,
    ) -> Self {
        self.client_id = client_id.into();
        self.scope = scope.into();
        self
    }

    /// Starts a flow: `POST {github_url}/login/device/code`.
    pub async fn start(&self) -> Result<DeviceCode, GithubError> {
        let body = serde_json::json!({"client_id": self.client_id, "scope": self.scope});
        let (status, text) = self.post("/login/device/code", &body).await?;
        if !(200..300).contains(&status) {
            return Err(GithubError::Upstream { status, body: preview(&text) });
        }
        let raw: RawDeviceCode = serde_json::from_str(&text)
            .map_err(|e| GithubError::InvalidResponse(format!("device code: {e}")))?;
        if let Some(code) = raw.error {
            return Err(GithubError::OAuth { code, description: raw.error_description });
        }
        let (Some(device_code), Some(user_code), Some(verification_uri)) =
            (raw.device_code, raw.user_code, raw.verification_uri)
        else {
            return Err(GithubError::InvalidResponse(
                "device code: device_code, user_code or verification_uri missing".to_owned(),
            ));
        };
        Ok(DeviceCode {
            device_code: Secret::new(device_code),
            user_code,
            verification_uri,
            expires_in: raw.expires_in.map_or(DEFAULT_EXPIRES_IN, Duration::from_secs),
            interval: raw.interval.map_or(DEFAULT_INTERVAL, Duration::from_secs),
        })
    }

    /// Polls once: `POST {github_url}/login/oauth/access_token`. The caller waits
    /// [`next_interval`] between polls and stops on a final outcome.
    pub async fn poll(&self, device_code: &Secret<String>) -> Result<PollOutcome, GithubError> {
        let body = serde_json::json!({
            "client_id": self.client_id,
            "device_code": device_code.expose(),
            "grant_type": DEVICE_GRANT_TYPE,
        });
        let (status, text) = self.post("/login/oauth/access_token", &body).await?;
        // GitHub answers OAuth errors with 200; RFC 8628 servers use 400. Read both the same.
        let success = (200..300).contains(&status);
        match serde_json::from_str::<RawToken>(&text).ok() {
            Some(raw) if success || raw.error.is_some() => outcome(raw),
            _ if !success => Err(GithubError::Upstream { status, body: preview(&text) }),
            _ => Err(GithubError::InvalidResponse("access token: the body is not JSON".to_owned())),
        }
    }

    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, String), GithubError> {
        let response = self
            .http
            .post(format!("{}{path}", self.github_url))
            .header(ACCEPT, "application/json")
            .json(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| GithubError::Transport(describe_transport(e)))?;
        let status = response.status().as_u16();
        let text =
            response.text().await.map_err(|e| GithubError::Transport(describe_transport(e)))?;
        Ok((status, text))
    }
}

fn outcome(raw: RawToken) -> Result<PollOutcome, GithubError> {
    match raw.error.as_deref() {
        None => match raw.access_token {
            Some(token) if !token.is_empty() => {
                Ok(PollOutcome::Authorized { access_token: Secret::new(token) })
            }
            _ => Err(GithubError::InvalidResponse(
                "access token: neither a token nor an error".to_owned(),
            )),
        },
        Some("authorization_pending") => Ok(PollOutcome::Pending),
        Some("slow_down") => {
            Ok(PollOutcome::SlowDown { interval: raw.interval.map(Duration::from_secs) })
        }
        Some("expired_token") => Ok(PollOutcome::Expired),
        Some("access_denied") => Ok(PollOutcome::Denied),
        Some(code) => {
            Err(GithubError::OAuth { code: code.to_owned(), description: raw.error_description })
        }
    }
}

#[derive(Deserialize)]
struct RawDeviceCode {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct RawToken {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    interval: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PollOutcome, GithubError> {
        outcome(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn reads_every_poll_outcome() {
        assert_eq!(parse(r#"{"error":"authorization_pending"}"#).unwrap(), PollOutcome::Pending);
        assert_eq!(
            parse(r#"{"error":"slow_down","interval":10}"#).unwrap(),
            PollOutcome::SlowDown { interval: Some(Duration::from_secs(10)) }
        );
        assert_eq!(parse(r#"{"error":"expired_token"}"#).unwrap(), PollOutcome::Expired);
        assert_eq!(parse(r#"{"error":"access_denied"}"#).unwrap(), PollOutcome::Denied);
        let authorized = parse(r#"{"access_token":"ghu_abc","token_type":"bearer"}"#).unwrap();
        assert_eq!(authorized, PollOutcome::Authorized { access_token: "ghu_abc".into() });
        assert!(authorized.is_final());
        assert!(!PollOutcome::Pending.is_final());
    }

    #[test]
    fn other_oauth_errors_are_errors() {
        let error = parse(r#"{"error":"incorrect_device_code","error_description":"bad"}"#);
        assert!(
            matches!(error, Err(GithubError::OAuth { ref code, .. }) if code == "incorrect_device_code")
        );
        assert!(matches!(parse("{}"), Err(GithubError::InvalidResponse(_))));
    }

    #[test]
    fn slow_down_adds_five_seconds_or_takes_the_longer_asked_interval() {
        let five = Duration::from_secs(5);
        let slow = |interval| PollOutcome::SlowDown { interval };
        assert_eq!(next_interval(five, &slow(None)), Duration::from_secs(10));
        assert_eq!(
            next_interval(five, &slow(Some(Duration::from_secs(10)))),
            Duration::from_secs(10)
        );
        assert_eq!(
            next_interval(five, &slow(Some(Duration::from_secs(30)))),
            Duration::from_secs(30)
        );
        // A shorter asked interval must not undo the step.
        assert_eq!(
            next_interval(five, &slow(Some(Duration::from_secs(1)))),
            Duration::from_secs(10)
        );
        assert_eq!(next_interval(five, &PollOutcome::Pending), five);
    }

    #[test]
    fn authorized_token_is_not_printed() {
        let outcome = PollOutcome::Authorized { access_token: "ghu_secret".into() };
        assert!(!format!("{outcome:?}").contains("ghu_secret"));
    }
}
