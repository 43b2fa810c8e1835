//! GitHub Copilot: the token exchange, the model catalog, quota and the headers editor
//! integrations send.
//!
//! A linked account holds a long-lived GitHub OAuth token. [`TokenManager`] exchanges it at
//! `{github_api_url}/copilot_internal/v2/token` for a short-lived Copilot token, which
//! authorizes calls to the Copilot API at the base URL the exchange names
//! ([`CopilotToken::api_base`]).

mod cache;
mod headers;
mod models;
mod quota;
mod token;

use tollgate_config::Secret;

pub use headers::{
    API_VERSION, EDITOR_PLUGIN_VERSION, EDITOR_VERSION, INTEGRATION_ID, Initiator, OPENAI_INTENT,
    USER_AGENT, copilot_headers, github_api_headers,
};
pub use models::{
    Billing, Capabilities, CopilotModel, EMBEDDINGS_ENDPOINT, Limits, MESSAGES_ENDPOINT,
    MODELS_TTL, ModelCatalog, Supports, endpoint_of,
};
pub use quota::{Quota, QuotaBucket, fetch_quota};
mod service;
pub use service::{CopilotService, DEFAULT_OWNER};
pub use token::{
    CopilotToken, DEFAULT_API_BASE, EXPIRY_MARGIN, ExchangeFailure, TokenManager, TokenStatus,
    refresh_delay,
};

use crate::github::preview;

/// A GitHub account linked to tollgate, whose Copilot seat serves requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopilotAccount {
    /// tollgate's id for the account (the shared default or a per-user link); the cache key.
    pub id: String,
    /// The GitHub OAuth token from the device flow.
    pub oauth_token: Secret<String>,
}

impl CopilotAccount {
    /// An account with this id and OAuth token.
    pub fn new(id: impl Into<String>, oauth_token: impl Into<Secret<String>>) -> Self {
        Self { id: id.into(), oauth_token: oauth_token.into() }
    }
}

/// A failed call to GitHub's Copilot endpoints or the Copilot API. Never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopilotError {
    /// The exchange answered 403/404: the account exists but has no Copilot subscription.
    #[error("this GitHub account has no Copilot seat")]
    NoSeat,
    /// The exchange answered 401: the OAuth token was revoked; the account must be linked again.
    #[error("the GitHub authorization was revoked; link the account again")]
    OauthRevoked,
    /// Any other error status.
    #[error("GitHub Copilot answered HTTP {status}: {body}")]
    Upstream {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer: connection, timeout or a broken body.
    #[error("could not reach GitHub Copilot: {0}")]
    Transport(String),
    /// A success status with a body that does not parse.
    #[error("GitHub Copilot sent an unexpected answer: {0}")]
    InvalidResponse(String),
}

impl CopilotError {
    /// An error status with its body cut to a log-friendly length.
    pub(crate) fn upstream(status: u16, body: &str) -> Self {
        Self::Upstream { status, body: preview(body) }
    }

    /// Whether retrying later may succeed (transport failures and 5xx/429), as opposed to
    /// answers that need a person (no seat, revoked authorization).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Upstream { status, .. } => *status >= 500 || *status == 429,
            Self::NoSeat | Self::OauthRevoked | Self::InvalidResponse(_) => false,
        }
    }
}

/// Sends `request` and reads the whole body; bodies here are small JSON documents.
pub(crate) async fn fetch(
    request: reqwest::RequestBuilder,
) -> Result<(u16, http::HeaderMap, String), CopilotError> {
    let response = request
        .send()
        .await
        .map_err(|e| CopilotError::Transport(crate::github::describe_transport(e)))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| CopilotError::Transport(crate::github::describe_transport(e)))?;
    Ok((status, headers, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_seat_message_and_no_token_in_debug() {
        assert_eq!(CopilotError::NoSeat.to_string(), "this GitHub account has no Copilot seat");
        let account = CopilotAccount::new("default", "ghu_secret");
        assert!(!format!("{account:?}").contains("ghu_secret"));
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        assert!(CopilotError::Transport("reset".into()).is_transient());
        assert!(CopilotError::upstream(502, "bad gateway").is_transient());
        assert!(CopilotError::upstream(429, "").is_transient());
        assert!(!CopilotError::upstream(400, "").is_transient());
        assert!(!CopilotError::NoSeat.is_transient());
    }
}
