//! GitHub Copilot as a provider: linked accounts, their tokens and models, and the calls
//! themselves, with the headers editor integrations send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::HeaderValue;
use http::header::{ACCEPT, CONTENT_TYPE};
use tollgate_config::{ModelEntry, Secret};

use super::{
    CopilotAccount, CopilotError, CopilotModel, Initiator, ModelCatalog, TokenManager,
    copilot_headers,
};
use tollgate_protocol::{Operation, Protocol};

use crate::{CallContext, UpstreamError, apply_extra_headers};

/// The owner of the shared account every caller without one of its own uses.
pub const DEFAULT_OWNER: &str = "default";

/// Linked accounts and what is cached for them.
#[derive(Debug)]
pub struct CopilotService {
    http: reqwest::Client,
    /// Copilot API tokens per account.
    pub tokens: TokenManager,
    /// Model lists per account.
    pub models: ModelCatalog,
    /// Read on every request without a lock; replaced whole when an account is (un)linked.
    accounts: ArcSwap<HashMap<String, Arc<CopilotAccount>>>,
    /// Serialises those replacements so that none is lost.
    linking: Mutex<()>,
    github_api_url: String,
    auth_page: String,
}

impl CopilotService {
    /// A service with no accounts yet. `auth_page` is where people link one; it is named in
    /// the error requests get meanwhile.
    pub fn new(http: reqwest::Client, github_api_url: String, auth_page: String) -> Self {
        Self {
            tokens: TokenManager::new(http.clone(), github_api_url.clone()),
            models: ModelCatalog::new(http.clone()),
            http,
            accounts: ArcSwap::default(),
            linking: Mutex::new(()),
            github_api_url,
            auth_page,
        }
    }

    /// The GitHub API base (token exchange, quota).
    pub fn github_api_url(&self) -> &str {
        &self.github_api_url
    }

    /// The HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Links (or re-links) `owner`'s account.
    pub fn set_account(&self, owner: &str, oauth_token: Secret<String>) {
        let changed = self.edit_accounts(|accounts| {
            let changed = accounts.get(owner).is_none_or(|a| a.oauth_token != oauth_token);
            accounts.insert(owner.to_owned(), Arc::new(CopilotAccount::new(owner, oauth_token)));
            changed
        });
        if changed {
            self.tokens.invalidate(owner);
            self.models.invalidate(owner);
        }
    }

    /// Unlinks `owner`'s account.
    pub fn remove_account(&self, owner: &str) {
        self.edit_accounts(|accounts| accounts.remove(owner));
        self.tokens.invalidate(owner);
        self.models.invalidate(owner);
    }

    /// Every linked owner.
    pub fn owners(&self) -> Vec<String> {
        self.accounts.load().keys().cloned().collect()
    }

    /// The account serving `owner`: its own when linked, else the shared default.
    pub fn account_for(&self, owner: Option<&str>) -> Option<Arc<CopilotAccount>> {
        let accounts = self.accounts.load();
        owner.and_then(|o| accounts.get(o)).or_else(|| accounts.get(DEFAULT_OWNER)).cloned()
    }

    /// Copies the accounts, lets `edit` change the copy, and publishes it.
    fn edit_accounts<R>(
        &self,
        edit: impl FnOnce(&mut HashMap<String, Arc<CopilotAccount>>) -> R,
    ) -> R {
        let _linking = self.linking.lock().unwrap_or_else(PoisonError::into_inner);
        let mut accounts = HashMap::clone(&self.accounts.load());
        let result = edit(&mut accounts);
        self.accounts.store(Arc::new(accounts));
        result
    }

    fn not_linked(&self) -> UpstreamError {
        UpstreamError::NotLinked(format!(
            "No GitHub Copilot account is linked yet. Open {} to link one.",
            self.auth_page
        ))
    }

    /// The models of the account serving `owner`.
    pub async fn models_for(
        &self,
        owner: Option<&str>,
    ) -> Result<Arc<Vec<CopilotModel>>, UpstreamError> {
        let account = self.account_for(owner).ok_or_else(|| self.not_linked())?;
        self.models.models_for(&self.tokens, &account).await.map_err(to_upstream)
    }

    /// One model's catalog entry, if the account's list can be had and has it.
    pub async fn model(&self, owner: Option<&str>, id: &str) -> Option<CopilotModel> {
        let models = self.models_for(owner).await.ok()?;
        models.iter().find(|m| m.id == id).cloned()
    }

    /// Sends a call to the Copilot API; a 401 (a token Copilot no longer accepts) buys a
    /// new token and is retried once.
    pub async fn send(
        &self,
        entry: &ModelEntry,
        operation: Operation,
        body: Bytes,
        ctx: &CallContext,
        timeout: Duration,
    ) -> Result<reqwest::Response, UpstreamError> {
        let account =
            self.account_for(ctx.account_owner.as_deref()).ok_or_else(|| self.not_linked())?;
        let mut retried = false;
        loop {
            let token = self.tokens.token(&account).await.map_err(to_upstream)?;
            let path = match operation {
                Operation::Generate(Protocol::Chat) => "/chat/completions",
                Operation::Generate(Protocol::Messages) => "/v1/messages",
                Operation::Generate(Protocol::Responses) => "/responses",
                Operation::Embeddings => "/embeddings",
                Operation::CountTokens => "/v1/messages/count_tokens",
            };
            let initiator = Initiator::from_last_message_is_user_text(ctx.initiator_user);
            let mut headers = copilot_headers(&token, &ctx.request_id, initiator, ctx.vision);
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(ACCEPT, HeaderValue::from_static(crate::openai::accept(ctx)));
            if operation.protocol() == Protocol::Messages {
                crate::anthropic::version_and_betas(&mut headers, ctx, &[]);
            }
            apply_extra_headers(&mut headers, &entry.extra_headers);
            let request = crate::http::post(&self.http, &token.api_base, path)
                .headers(headers)
                .body(body.clone());
            match crate::http::execute(request, timeout).await {
                Err(UpstreamError::Status { status: 401, .. }) if !retried => {
                    tracing::info!(account = %account.id, "Copilot refused the token; refreshing");
                    self.tokens.invalidate_token(&account.id, &token);
                    retried = true;
                }
                other => return other,
            }
        }
    }
}

fn to_upstream(e: CopilotError) -> UpstreamError {
    match e {
        CopilotError::Transport(detail) => UpstreamError::Connect(detail),
        CopilotError::NoSeat => UpstreamError::Status {
            status: 403,
            body: Bytes::from(
                serde_json::json!({"error": {"message": e.to_string(), "type": "permission_error", "param": null, "code": "no_copilot_seat"}})
                    .to_string(),
            ),
            content_type: Some("application/json".to_owned()),
            retry_after: None,
        },
        CopilotError::OauthRevoked => UpstreamError::Status {
            status: 401,
            body: Bytes::from(
                serde_json::json!({"error": {"message": e.to_string(), "type": "authentication_error", "param": null, "code": "github_authorization_revoked"}})
                    .to_string(),
            ),
            content_type: Some("application/json".to_owned()),
            retry_after: None,
        },
        CopilotError::Upstream { status, body } => UpstreamError::Status {
            status,
            body: Bytes::from(body),
            content_type: None,
            retry_after: None,
        },
        CopilotError::InvalidResponse(detail) => UpstreamError::Io(detail),
    }
}
