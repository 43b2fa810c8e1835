//! The headers Copilot's editor integrations send. The Copilot API rejects calls that do not
//! identify an editor integration, and bills premium requests by `X-Initiator`.
//!
//! Values as sent by Copilot Chat 0.26.7 in VS Code 1.99.3, the release that the widely used
//! proxies (copilot-api, LiteLLM's `github_copilot`) identify as.

use http::{HeaderMap, HeaderName, HeaderValue, header::AUTHORIZATION};
use tollgate_config::Secret;

use super::CopilotToken;
use crate::headers::sensitive;

/// `copilot-integration-id`: which integration is calling.
pub const INTEGRATION_ID: &str = "vscode-chat";
/// `editor-version`.
pub const EDITOR_VERSION: &str = "vscode/1.99.3";
/// `editor-plugin-version`.
pub const EDITOR_PLUGIN_VERSION: &str = "copilot-chat/0.26.7";
/// `user-agent`.
pub const USER_AGENT: &str = "GitHubCopilotChat/0.26.7";
/// `openai-intent`.
pub const OPENAI_INTENT: &str = "conversation-panel";
/// `x-github-api-version`.
pub const API_VERSION: &str = "2025-04-01";

/// Who started a request, sent as `X-Initiator`. Copilot counts a premium request only for
/// `user`; follow-ups an agent makes on its own (tool results) are `agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// A person typed the last message.
    User,
    /// The last message is a tool result or assistant turn: the agent continues on its own.
    Agent,
}

impl Initiator {
    /// `User` only when the conversation's last message is the user's own text, not a tool
    /// result carried in a user turn.
    pub fn from_last_message_is_user_text(last_is_user_text: bool) -> Self {
        if last_is_user_text { Self::User } else { Self::Agent }
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
        }
    }
}

/// The headers of a Copilot API call: the Copilot token, the editor identity, the request id,
/// `X-Initiator`, and `copilot-vision-request: true` when the request carries images.
/// Content headers (`content-type`, `accept`) are the caller's.
pub fn copilot_headers(
    token: &CopilotToken,
    request_id: &str,
    initiator: Initiator,
    vision: bool,
) -> HeaderMap {
    let mut headers = editor_headers();
    // The token was checked to be a valid header value when it was issued.
    if let Some(value) = sensitive(&format!("Bearer {}", token.token.expose())) {
        headers.insert(AUTHORIZATION, value);
    }
    headers.insert(
        HeaderName::from_static("copilot-integration-id"),
        HeaderValue::from_static(INTEGRATION_ID),
    );
    headers
        .insert(HeaderName::from_static("openai-intent"), HeaderValue::from_static(OPENAI_INTENT));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
    headers.insert(
        HeaderName::from_static("x-initiator"),
        HeaderValue::from_static(initiator.as_str()),
    );
    if vision {
        headers.insert(
            HeaderName::from_static("copilot-vision-request"),
            HeaderValue::from_static("true"),
        );
    }
    headers
}

/// The headers of a call to GitHub's own Copilot endpoints (`/copilot_internal/*`):
/// `Authorization: token <oauth>`, `accept: application/json` and the editor identity.
pub fn github_api_headers(oauth_token: &Secret<String>) -> HeaderMap {
    let mut headers = editor_headers();
    if let Some(value) = sensitive(&format!("token {}", oauth_token.expose())) {
        headers.insert(AUTHORIZATION, value);
    }
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    headers
}

fn editor_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(
        HeaderName::from_static("editor-version"),
        HeaderValue::from_static(EDITOR_VERSION),
    );
    headers.insert(
        HeaderName::from_static("editor-plugin-version"),
        HeaderValue::from_static(EDITOR_PLUGIN_VERSION),
    );
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(
        HeaderName::from_static("x-github-api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    headers
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn token() -> CopilotToken {
        CopilotToken {
            token: Secret::new("tid=abc;exp=1".to_owned()),
            expires_at: SystemTime::UNIX_EPOCH,
            refresh_in: Duration::from_secs(1500),
            api_base: "https://api.githubcopilot.com".to_owned(),
        }
    }

    fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn sends_what_editor_integrations_send() {
        let h = copilot_headers(&token(), "req-1", Initiator::User, false);
        assert_eq!(get(&h, "authorization"), Some("Bearer tid=abc;exp=1"));
        assert_eq!(get(&h, "copilot-integration-id"), Some("vscode-chat"));
        assert_eq!(get(&h, "editor-version"), Some("vscode/1.99.3"));
        assert_eq!(get(&h, "editor-plugin-version"), Some("copilot-chat/0.26.7"));
        assert_eq!(get(&h, "user-agent"), Some("GitHubCopilotChat/0.26.7"));
        assert_eq!(get(&h, "openai-intent"), Some("conversation-panel"));
        assert_eq!(get(&h, "x-github-api-version"), Some("2025-04-01"));
        assert_eq!(get(&h, "x-request-id"), Some("req-1"));
        assert_eq!(get(&h, "x-initiator"), Some("user"));
        assert_eq!(get(&h, "copilot-vision-request"), None);
        assert!(!format!("{h:?}").contains("tid=abc"));

        let h = copilot_headers(&token(), "req-2", Initiator::Agent, true);
        assert_eq!(get(&h, "x-initiator"), Some("agent"));
        assert_eq!(get(&h, "copilot-vision-request"), Some("true"));
    }

    #[test]
    fn initiator_is_user_only_for_user_text() {
        assert_eq!(Initiator::from_last_message_is_user_text(true), Initiator::User);
        assert_eq!(Initiator::from_last_message_is_user_text(false), Initiator::Agent);
    }

    #[test]
    fn github_api_headers_use_the_token_scheme() {
        let h = github_api_headers(&Secret::new("ghu_x".to_owned()));
        assert_eq!(get(&h, "authorization"), Some("token ghu_x"));
        assert_eq!(get(&h, "accept"), Some("application/json"));
        assert_eq!(get(&h, "editor-version"), Some(EDITOR_VERSION));
    }
}
