//! Linking a Copilot account from the console: GitHub's device flow, run by the auth
//! helper's [`Flows`] (the same polling, sealed store and audit), started by a signed-in user
//! for an account they may link — an admin the shared one or any key's, a user one of their
//! own keys', a viewer none.
//!
//! A flow is bound to the sign-in session that started it: only that session finds its
//! status page or reuses it. Flows live in this process's memory (see [`Flows`]); the linked
//! account itself is stored, so every replica serves it and lists it, while the status page
//! of a flow is answered by the replica that started it.

use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tollgate_auth::{Flow, FlowState, Flows, start_failure};
use tollgate_proxy::AppState;
use tollgate_store::{
    DEFAULT_CREDENTIAL_OWNER, KeyFilter, KeyRecord, StoreError, key_credential_owner,
};

use super::own_keys;
use crate::Console;
use crate::page::{self, Base, Frame, Submitted};
use crate::session::Signed;

/// How often a waiting status page looks again.
const REFRESH_SECONDS: u32 = 5;
/// Flows one sign-in may have waiting at once: each polls GitHub until it ends.
const MAX_WAITING: usize = 5;

/// The console's device flows, made on first use (the router is built before the state).
#[derive(Debug, Default)]
pub(crate) struct Links {
    flows: OnceLock<Arc<Flows>>,
}

impl Links {
    fn flows(&self, state: &AppState) -> &Arc<Flows> {
        self.flows.get_or_init(|| {
            let settings = state.settings();
            Arc::new(Flows::new(
                state.store().clone(),
                Arc::clone(state.secret_box()),
                state.providers().copilot().http().clone(),
                &settings.github_url,
                &settings.github_api_url,
            ))
        })
    }

    /// The flows `signed` started that still wait for GitHub.
    pub(crate) fn waiting(&self, signed: &Signed) -> Vec<Arc<Flow>> {
        self.flows.get().map(|f| f.pending_of(&signed.session)).unwrap_or_default()
    }
}

/// What the link form posts: `target` is `default` (the shared account) or `key`, with
/// `key` a key's alias or hash.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct LinkForm {
    #[serde(default)]
    pub(crate) target: String,
    #[serde(default)]
    pub(crate) key: String,
}

impl LinkForm {
    /// The form that links `owner` again.
    pub(crate) fn relink(owner: &str) -> Self {
        match owner.strip_prefix("key:") {
            Some(hash) => Self { target: "key".to_owned(), key: hash.to_owned() },
            None => Self { target: "default".to_owned(), key: String::new() },
        }
    }
}

/// The account a form names, once `signed` may link it.
struct Target {
    owner: String,
    label: String,
}

/// Why a form links nothing.
enum Refusal {
    /// Not theirs to link: 403.
    Role(&'static str),
    /// The form again, with the message next to `field` (`form`: the whole form).
    Form {
        field: &'static str,
        message: String,
        status: StatusCode,
    },
    Store(StoreError),
}

impl Refusal {
    /// A field to correct: 400.
    fn field(field: &'static str, message: &str) -> Self {
        Self::Form { field, message: message.to_owned(), status: StatusCode::BAD_REQUEST }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn key_label(key: &KeyRecord) -> String {
    format!("key {}'s own account", key.key_alias.as_deref().unwrap_or(&key.key_name))
}

/// The account `form` names, if `signed` may link it.
async fn target(state: &AppState, signed: &Signed, form: &LinkForm) -> Result<Target, Refusal> {
    if !signed.role.changes() {
        return Err(Refusal::Role("Your role may look but not change this."));
    }
    match form.target.as_str() {
        "default" if signed.role.manages() => Ok(Target {
            owner: DEFAULT_CREDENTIAL_OWNER.to_owned(),
            label: "the shared account".to_owned(),
        }),
        "default" => Err(Refusal::Role(
            "Only an admin links the shared account; you may link your own keys' accounts.",
        )),
        "key" => {
            let key = find_key(state, signed, form.key.trim()).await?;
            Ok(Target { owner: key_credential_owner(&key.token_hash), label: key_label(&key) })
        }
        _ => Err(Refusal::field("form", "Choose the shared account or a key.")),
    }
}

/// The key named by its alias or hash: any key for an admin, only their own for a user.
async fn find_key(state: &AppState, signed: &Signed, named: &str) -> Result<KeyRecord, Refusal> {
    if named.is_empty() {
        return Err(Refusal::field("key", "Name the key: its alias or its hash."));
    }
    let is_hash = named.len() == 64 && named.bytes().all(|b| b.is_ascii_hexdigit());
    let hash = is_hash.then(|| named.to_ascii_lowercase());
    let is_named = |k: &KeyRecord| {
        hash.as_deref() == Some(k.token_hash.as_str()) || k.key_alias.as_deref() == Some(named)
    };
    if let Some(mine) = own_keys(state, signed).await? {
        // Whether someone else's key exists is not the user's business: one answer for both.
        return mine
            .into_iter()
            .find(is_named)
            .ok_or(Refusal::Role("That is not one of your keys."));
    }
    let found = match &hash {
        Some(hash) => state.store().get_key(hash).await?.into_iter().collect(),
        None => {
            let filter =
                KeyFilter { key_alias: Some(named.to_owned()), size: 2, ..Default::default() };
            state.store().list_keys(filter).await?
        }
    };
    match <[KeyRecord; 1]>::try_from(found) {
        Ok([key]) => Ok(key),
        Err(found) if found.is_empty() => {
            Err(Refusal::field("key", "No key has this alias or hash."))
        }
        Err(_) => Err(Refusal::field(
            "key",
            "Several keys have this alias; give the key's hash (shown on its page).",
        )),
    }
}

/// `POST /ui/copilot/link`: starts (or resumes) this session's device flow for the account
/// the form names, then shows it.
pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    Submitted { base, signed, form }: Submitted<LinkForm>,
) -> Response {
    match begin(&state, &console, &signed, &form).await {
        Ok(flow) => Redirect::to(&base.to(&format!("/copilot/link/{}", flow.id))).into_response(),
        Err(Refusal::Role(why)) => page::refused(&base, why),
        Err(Refusal::Form { field, message, status }) => {
            let errors = [(field.to_owned(), message)].into_iter().collect();
            let shown = super::Shown { form, errors, status };
            super::render(&state, &console, &base, &signed, None, shown).await
        }
        Err(Refusal::Store(e)) => {
            tracing::error!(error = %e, "admin UI: the store failed reading the key to link");
            page::unavailable(&base)
        }
    }
}

/// The flow `form` asks for, bound to `signed`'s session.
async fn begin(
    state: &AppState,
    console: &Console,
    signed: &Signed,
    form: &LinkForm,
) -> Result<Arc<Flow>, Refusal> {
    let target = target(state, signed, form).await?;
    let flows = console.links.flows(state);
    let waiting = flows.pending_of(&signed.session);
    if waiting.len() >= MAX_WAITING && !waiting.iter().any(|f| f.owner == target.owner) {
        let message = format!(
            "{MAX_WAITING} links already wait for GitHub; finish them or let their codes expire first."
        );
        return Err(Refusal::Form {
            field: "form",
            message,
            status: StatusCode::TOO_MANY_REQUESTS,
        });
    }
    let actor = signed.actor().0;
    let holder = Some(signed.session.as_str());
    flows.start_or_reuse(&target.owner, &target.label, &actor, holder).await.map_err(|e| {
        tracing::warn!(error = %e, "the console cannot start GitHub's device flow");
        let message = format!("{} Try again in a moment.", start_failure(&e));
        Refusal::Form { field: "form", message, status: StatusCode::BAD_GATEWAY }
    })
}

/// A device flow as its status page shows it.
#[derive(Template)]
#[template(path = "admin/copilot_link.html")]
struct LinkPage {
    frame: Frame,
    id: String,
    owner_label: String,
    /// Whether it links the shared account.
    shared: bool,
    /// `pending`, `linked` or `ended`.
    stage: &'static str,
    user_code: String,
    verification_uri: String,
    expires_at: DateTime<Utc>,
    refresh: u32,
    login: Option<String>,
    /// Why it ended without a link.
    message: String,
    /// What starts it again.
    again: LinkForm,
}

/// `GET /ui/copilot/link/{flow}`: where this session's flow stands. While it waits the page
/// looks again every few seconds by itself (no script needed); a flow of another session is
/// not found.
pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    parts: Parts,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let base = Base::of(&parts, &state);
    let Some(flow) = console.links.flows(&state).held(&id, Some(&signed.session)) else {
        return page::not_found(
            &base,
            "This linking attempt is not known here: it ended over an hour ago, another sign-in \
             started it, or another replica of the gateway did. An approved account is listed \
             on the Copilot page.",
        );
    };
    let (stage, login, message) = match flow.state() {
        FlowState::Pending => ("pending", None, String::new()),
        FlowState::Linked { login } => ("linked", login, String::new()),
        FlowState::Expired => ("ended", None, "The code expired before it was approved.".into()),
        FlowState::Denied => ("ended", None, "Access was denied on GitHub.".into()),
        FlowState::Failed { message } => ("ended", None, message),
    };
    let expires_in = chrono::Duration::from_std(flow.expires_in()).unwrap_or_default();
    let frame = Frame::new(&base, &signed, "Link GitHub Copilot", "copilot");
    let nonce = frame.nonce.clone();
    let page = LinkPage {
        frame,
        id: flow.id.clone(),
        owner_label: flow.owner_label.clone(),
        shared: flow.owner == DEFAULT_CREDENTIAL_OWNER,
        stage,
        user_code: flow.user_code.clone(),
        verification_uri: flow.verification_uri.clone(),
        expires_at: Utc::now() + expires_in,
        refresh: REFRESH_SECONDS,
        login,
        message,
        again: LinkForm::relink(&flow.owner),
    };
    page::html(StatusCode::OK, &nonce, &page)
}
