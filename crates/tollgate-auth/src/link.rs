//! Keeping a GitHub OAuth token: sealed with the process's [`SecretBox`] and stored as the
//! owner's `github_copilot` credential, which every process then reloads from the change feed.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tollgate_config::Secret;
use tollgate_providers::copilot::github_api_headers;
use tollgate_store::{
    CredentialRecord, GITHUB_COPILOT_PROVIDER, NewAudit, SecretBox, Store, StoreApi, StoreError,
};

/// The login lookup is a nicety; a slow GitHub must not hold the link up for long.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Seals `token` for `owner` and stores it, replacing any earlier link of that owner, and
/// audits the link as `actor`'s. The audit record has the GitHub login, never the token; a
/// failure to write it is logged, and the link stands.
pub(crate) async fn save(
    store: &dyn StoreApi,
    secret_box: &SecretBox,
    owner: &str,
    label: Option<String>,
    token: &Secret<String>,
    actor: &str,
) -> Result<CredentialRecord, StoreError> {
    let sealed =
        secret_box.seal_credential(GITHUB_COPILOT_PROVIDER, owner, label, token.expose())?;
    let record = store.put_credential(sealed).await?;
    let entry = NewAudit {
        actor: actor.to_owned(),
        action: "link".to_owned(),
        object_type: "linked_account".to_owned(),
        object_id: owner.to_owned(),
        before: None,
        after: Some(serde_json::json!({ "login": record.label })),
    };
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(
            error = %e,
            actor,
            object_id = owner,
            "the audit record of a linked GitHub account cannot be written"
        );
    }
    Ok(record)
}

/// What completing a device flow needs.
#[derive(Debug, Clone)]
pub(crate) struct Linker {
    pub(crate) store: Store,
    pub(crate) secret_box: Arc<SecretBox>,
    pub(crate) http: reqwest::Client,
    /// `TOLLGATE_GITHUB_API_URL`, without a trailing `/`.
    pub(crate) github_api_url: String,
}

impl Linker {
    /// Stores the token of a freshly approved account, linked by `actor`; returns its
    /// GitHub login when GitHub tells it.
    pub(crate) async fn link(
        &self,
        owner: &str,
        token: &Secret<String>,
        actor: &str,
    ) -> Result<Option<String>, StoreError> {
        let login = self.login(token).await;
        save(self.store.as_ref(), &self.secret_box, owner, login.clone(), token, actor).await?;
        Ok(login)
    }

    /// `GET {api}/user`'s `login`, best effort: a stand-in or a restricted token may not
    /// answer it, and the link works without it.
    async fn login(&self, token: &Secret<String>) -> Option<String> {
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        let response = self
            .http
            .get(format!("{}/user", self.github_api_url))
            .headers(github_api_headers(token))
            .timeout(LOGIN_TIMEOUT)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => match r.json::<User>().await {
                Ok(user) if !user.login.trim().is_empty() => Some(user.login),
                _ => None,
            },
            Ok(r) => {
                tracing::debug!(status = r.status().as_u16(), "GitHub login lookup refused");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e.without_url(), "GitHub login lookup failed");
                None
            }
        }
    }
}
