//! Linked GitHub Copilot accounts: the shared `default` one and keys' own, with who they
//! serve, the GitHub login, and the premium requests left; linking is on the auth helper's
//! `/github` page, unlinking here (the same operation a deleted key's account goes through).
//! An admin sees and unlinks any; a viewer sees all and changes nothing; a user sees and
//! unlinks the accounts of their own keys.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::accounts;
use tollgate_store::{
    CredentialRecord, DEFAULT_CREDENTIAL_OWNER, GITHUB_COPILOT_PROVIDER, KeyFilter, StoreError,
    key_credential_owner,
};

use crate::page::{self, Base, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

/// One linked account as the page shows it.
struct Account {
    owner: String,
    /// Whom it serves: every key without its own, or one key (by alias).
    serves: String,
    /// The key it belongs to, for a key's own account.
    key_hash: Option<String>,
    login: String,
    linked_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Premium requests left, e.g. `250 of 300`, or `unlimited`.
    premium: Option<String>,
    plan: Option<String>,
    reset_date: Option<String>,
    /// Why the quota could not be read.
    quota_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/copilot.html")]
struct CopilotPage {
    frame: Frame,
    accounts: Vec<Account>,
    link_page: String,
    may_unlink: bool,
    errors: Errors,
}

/// The owners `signed` may see and unlink: every one (`None`), or those of their own keys.
async fn own_owners(
    state: &AppState,
    signed: &Signed,
) -> Result<Option<HashSet<String>>, StoreError> {
    if signed.role.sees_all() {
        return Ok(None);
    }
    let Some(user_id) = signed.user_id.clone() else { return Ok(Some(HashSet::new())) };
    let filter = KeyFilter { user_id: Some(user_id), size: 1000, ..Default::default() };
    let keys = state.store().list_keys(filter).await?;
    Ok(Some(keys.iter().map(|k| key_credential_owner(&k.token_hash)).collect()))
}

async fn account(state: &AppState, r: CredentialRecord) -> Account {
    let key_hash = r.owner.strip_prefix("key:").map(str::to_owned);
    let serves = match &key_hash {
        None if r.owner == DEFAULT_CREDENTIAL_OWNER => "every key without its own".to_owned(),
        None => r.owner.clone(),
        Some(hash) => state.directory().key(hash).map_or_else(
            || "a key that no longer exists".to_owned(),
            |k| format!("key {}", k.record.key_alias.as_deref().unwrap_or(&k.record.key_name)),
        ),
    };
    let quota = state.quota().quota(state.providers().copilot(), &r.owner).await;
    let (premium, plan, reset_date, quota_error) = match quota {
        Ok(q) => {
            let premium = q.premium.as_ref().map(|p| {
                if p.unlimited {
                    "unlimited".to_owned()
                } else {
                    format!("{} of {}", p.remaining, p.entitlement)
                }
            });
            (premium, q.plan, q.reset_date, None)
        }
        Err(e) => (None, None, None, Some(e)),
    };
    Account {
        owner: r.owner,
        serves,
        key_hash,
        login: r.label.unwrap_or_default(),
        linked_at: r.created_at,
        updated_at: r.updated_at,
        premium,
        plan,
        reset_date,
        quota_error,
    }
}

async fn render(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let read = async {
        let allowed = own_owners(state, signed).await?;
        Ok((allowed, state.store().list_credentials(GITHUB_COPILOT_PROVIDER).await?))
    };
    let (allowed, records) = match page::read(base, "linked accounts", read.await) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut accounts = Vec::new();
    for r in records {
        if allowed.as_ref().is_none_or(|a| a.contains(&r.owner)) {
            accounts.push(account(state, r).await);
        }
    }
    let frame = Frame::new(base, signed, "Copilot", "copilot").with_notice(notice);
    let nonce = frame.nonce.clone();
    let link_page = tollgate_proxy::state::auth_page_url(state.settings());
    let may_unlink = signed.role.changes();
    page::html(status, &nonce, &CopilotPage { frame, accounts, link_page, may_unlink, errors })
}

pub(crate) async fn page(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    render(&state, &base, &signed, q.done, Errors::default(), StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct UnlinkForm {
    #[serde(default)]
    owner: String,
}

pub(crate) async fn unlink(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<UnlinkForm>,
) -> Response {
    if !signed.role.changes() {
        return page::refused(&base, "Your role may look but not change this.");
    }
    let allowed = match page::read(&base, "a user's keys", own_owners(&state, &signed).await) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if allowed.is_some_and(|a| !a.contains(&form.owner)) {
        return page::refused(&base, "This account belongs to a key that is not yours.");
    }
    match accounts::unlink(&state, &signed.actor(), &form.owner).await {
        Ok(true) => page::done(&base, "/copilot", "Account unlinked."),
        Ok(false) => page::not_found(&base, "No account is linked there."),
        Err(e) => {
            let errors = page::field_error(&e);
            render(&state, &base, &signed, None, errors, StatusCode::SERVICE_UNAVAILABLE).await
        }
    }
}
