//! Linked GitHub Copilot accounts: the shared `default` one and keys' own, with who they
//! serve, the GitHub login, the plan and premium requests left, and how this process's
//! Copilot token for each stands (valid until when, the last failed exchange). Accounts are
//! linked here through GitHub's device flow ([`link`]) or on the auth helper's `/github`
//! page, and unlinked here (the same operation a deleted key's account goes through).
//! An admin sees, links and unlinks any; a viewer sees all and changes nothing; a user sees,
//! links and unlinks the accounts of their own keys.

pub(crate) mod link;

use std::collections::HashSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::accounts;
use tollgate_store::{
    CredentialRecord, DEFAULT_CREDENTIAL_OWNER, GITHUB_COPILOT_PROVIDER, KeyFilter, KeyRecord,
    StoreError, key_credential_owner,
};

use crate::Console;
use crate::page::{self, Base, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;
use link::LinkForm;

/// How long a page waits for one account's quota from GitHub before showing it as unread.
const QUOTA_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// One linked account as the page (and the dashboard's quota table) shows it.
pub(crate) struct Account {
    owner: String,
    /// Whom it serves: every key without its own, or one key (by alias).
    pub(crate) serves: String,
    /// The key it belongs to, for a key's own account.
    pub(crate) key_hash: Option<String>,
    pub(crate) login: String,
    linked_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Premium requests left, e.g. `250 of 300`, or `unlimited`.
    pub(crate) premium: Option<String>,
    pub(crate) plan: Option<String>,
    pub(crate) reset_date: Option<String>,
    /// Why the quota could not be read.
    pub(crate) quota_error: Option<String>,
    token: Token,
    /// What links it again.
    relink: LinkForm,
}

/// This process's Copilot token of an account.
struct Token {
    /// Until when it is valid; `None` while none is held.
    valid_until: Option<DateTime<Utc>>,
    /// Whether `valid_until` has passed (it is renewed on the next request).
    expired: bool,
    /// The last failed exchange or refresh, and when; cleared by a success.
    error: Option<(DateTime<Utc>, String)>,
}

impl Token {
    fn of(state: &AppState, owner: &str) -> Self {
        let status = state.providers().copilot().tokens.status(owner);
        let valid_until = status.valid_until.map(DateTime::<Utc>::from);
        Self {
            expired: valid_until.is_some_and(|t| t <= Utc::now()),
            valid_until,
            error: status.last_error.map(|f| (DateTime::<Utc>::from(f.at), f.error.to_string())),
        }
    }
}

/// A key a user may pick in the link form.
struct KeyChoice {
    hash: String,
    name: String,
    selected: bool,
}

/// A flow of this session that waits for GitHub.
struct Waiting {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "admin/copilot.html")]
struct CopilotPage {
    frame: Frame,
    accounts: Vec<Account>,
    link_page: String,
    may_change: bool,
    /// The link form as typed, and the keys a user may choose from.
    link: LinkForm,
    own_keys: Vec<KeyChoice>,
    waiting: Vec<Waiting>,
    errors: Errors,
}

/// The keys of `signed` when they see only their own (`None`: they see every key).
pub(crate) async fn own_keys(
    state: &AppState,
    signed: &Signed,
) -> Result<Option<Vec<KeyRecord>>, StoreError> {
    if signed.role.sees_all() {
        return Ok(None);
    }
    let Some(user_id) = signed.user_id.clone() else { return Ok(Some(Vec::new())) };
    let filter = KeyFilter { user_id: Some(user_id), size: 1000, ..Default::default() };
    Ok(Some(state.store().list_keys(filter).await?))
}

/// The owners of these keys' own accounts.
fn owners_of(keys: &[KeyRecord]) -> HashSet<String> {
    keys.iter().map(|k| key_credential_owner(&k.token_hash)).collect()
}

/// The owners `signed` may see, link and unlink: every one (`None`), or those of their keys.
async fn own_owners(
    state: &AppState,
    signed: &Signed,
) -> Result<Option<HashSet<String>>, StoreError> {
    Ok(own_keys(state, signed).await?.as_deref().map(owners_of))
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
    let read = state.quota().quota(state.providers().copilot(), &r.owner);
    let quota = match tokio::time::timeout(QUOTA_WAIT, read).await {
        Ok(q) => q,
        Err(_) => Err(format!("GitHub did not answer within {} s", QUOTA_WAIT.as_secs())),
    };
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
        token: Token::of(state, &r.owner),
        relink: LinkForm::relink(&r.owner),
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

/// The linked accounts `signed` may see, with their quota and token, and (when they see
/// only their own) their keys.
async fn visible(
    state: &AppState,
    signed: &Signed,
) -> Result<(Option<Vec<KeyRecord>>, Vec<Account>), StoreError> {
    let mine = own_keys(state, signed).await?;
    let records = state.store().list_credentials(GITHUB_COPILOT_PROVIDER).await?;
    let allowed = mine.as_deref().map(owners_of);
    // Side by side: each may wait for GitHub (a quota older than a minute is read again).
    let mut reads = tokio::task::JoinSet::new();
    for (i, r) in records.into_iter().enumerate() {
        if allowed.as_ref().is_none_or(|a| a.contains(&r.owner)) {
            let state = state.clone();
            reads.spawn(async move { (i, account(&state, r).await) });
        }
    }
    let mut accounts: Vec<(usize, Account)> = reads.join_all().await;
    accounts.sort_by_key(|(i, _)| *i);
    Ok((mine, accounts.into_iter().map(|(_, a)| a).collect()))
}

/// The linked accounts `signed` may see, for the dashboard's quota table.
pub(crate) async fn accounts(
    state: &AppState,
    signed: &Signed,
) -> Result<Vec<Account>, StoreError> {
    Ok(visible(state, signed).await?.1)
}

/// How the page is answered: the link form as typed, its messages, the status.
pub(crate) struct Shown {
    form: LinkForm,
    errors: Errors,
    status: StatusCode,
}

impl Shown {
    fn ok() -> Self {
        let form = LinkForm { target: "default".to_owned(), key: String::new() };
        Self { form, errors: Errors::default(), status: StatusCode::OK }
    }
}

async fn render(
    state: &AppState,
    console: &Console,
    base: &Base,
    signed: &Signed,
    notice: Option<String>,
    shown: Shown,
) -> Response {
    let (mine, accounts) = match page::read(base, "linked accounts", visible(state, signed).await) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let own_keys = mine
        .unwrap_or_default()
        .into_iter()
        .map(|k| KeyChoice {
            selected: shown.form.key == k.token_hash,
            name: k.key_alias.unwrap_or(k.key_name),
            hash: k.token_hash,
        })
        .collect();
    let waiting = console
        .links
        .waiting(signed)
        .iter()
        .map(|f| Waiting { id: f.id.clone(), label: f.owner_label.clone() })
        .collect();
    let frame = Frame::new(base, signed, "Copilot", "copilot").with_notice(notice);
    let nonce = frame.nonce.clone();
    let page = CopilotPage {
        frame,
        accounts,
        link_page: tollgate_proxy::state::auth_page_url(state.settings()),
        may_change: signed.role.changes(),
        link: shown.form,
        own_keys,
        waiting,
        errors: shown.errors,
    };
    page::html(shown.status, &nonce, &page)
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    render(&state, &console, &base, &signed, q.done, Shown::ok()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct UnlinkForm {
    #[serde(default)]
    owner: String,
}

pub(crate) async fn unlink(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
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
            let shown = Shown {
                errors: page::field_error(&e),
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..Shown::ok()
            };
            render(&state, &console, &base, &signed, None, shown).await
        }
    }
}
