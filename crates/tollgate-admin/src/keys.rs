//! Keys: search, create (shown once), edit limits, block, regenerate, delete — through the
//! same operations as `/key/*`. A user sees and manages their own keys only; a viewer
//! changes nothing.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::keys::{self as ops, KeySpec};
use tollgate_store::{DailySpend, KeyFilter, KeyPatch, KeyRecord, ListOrder, RollupFilter};

use crate::lists::{self, Listed, Pager, Paging};
use crate::page::{self, Base, DoneQuery, Errors, Frame, LimitsForm, Submitted};
use crate::session::Signed;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(flatten)]
    paging: Paging,
    #[serde(default)]
    done: Option<String>,
}

/// What the create form holds, as typed.
#[derive(Debug, Default, Deserialize, Clone)]
pub(crate) struct KeyForm {
    #[serde(default)]
    key_alias: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    models: Option<String>,
    #[serde(flatten)]
    limits: LimitsForm,
    #[serde(default)]
    duration: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyRecord>,
    query: ListQuery,
    pager: Pager,
    orders: Vec<page::Choice>,
    fields: Vec<page::Field>,
    owner_fields: Vec<page::Field>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/key_created.html")]
struct CreatedPage {
    frame: Frame,
    key: String,
    record: KeyRecord,
    regenerated: bool,
}

#[derive(Template)]
#[template(path = "admin/key.html")]
struct KeyPage {
    frame: Frame,
    key: KeyRecord,
    usage: Vec<DailySpend>,
    errors: Errors,
}

fn may_see(signed: &Signed, key: &KeyRecord) -> bool {
    signed.role.sees_all() || (signed.user_id.is_some() && key.user_id == signed.user_id)
}

fn may_change(signed: &Signed, key: &KeyRecord) -> bool {
    signed.role.manages() || (signed.role.changes() && may_see(signed, key))
}

async fn render_list(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    q: ListQuery,
    form: KeyForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let mut filter = KeyFilter {
        key_alias: page::text(q.alias.clone()),
        user_id: page::text(q.user.clone()),
        team_id: page::text(q.team.clone()),
        ..KeyFilter::default()
    };
    if !signed.role.sees_all() {
        filter.user_id = signed.user_id.clone();
    }
    let params =
        [("alias", q.alias.as_deref()), ("user", q.user.as_deref()), ("team", q.team.as_deref())];
    let store = state.store();
    let read = |order, after, size| {
        store.list_keys(KeyFilter { order: Some(order), after, size, ..filter })
    };
    let listed =
        lists::read(base, "/keys", &q.paging, ListOrder::Newest, &params, read, KeyRecord::cursor);
    let Listed { rows: keys, pager, orders } = match listed.await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let frame = Frame::new(base, signed, "Keys", "keys").with_notice(q.done.clone());
    let nonce = frame.nonce.clone();
    let f = &form;
    let mut fields = page::fields(
        &[
            ("key_alias", "Alias", f.key_alias.as_deref()),
            (
                "models",
                "Models, patterns, access groups (comma-separated; empty: all)",
                f.models.as_deref(),
            ),
        ],
        &errors,
    );
    fields.extend(f.limits.fields(&errors));
    fields.extend(page::fields(
        &[("duration", "Expires after (90d)", f.duration.as_deref())],
        &errors,
    ));
    let owner_fields = page::fields(
        &[
            ("user_id", "Owner (user id)", f.user_id.as_deref()),
            ("team_id", "Team", f.team_id.as_deref()),
        ],
        &errors,
    );
    let page = KeysPage { frame, keys, query: q, pager, orders, fields, owner_fields, errors };
    page::html(status, &nonce, &page)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    render_list(&state, &base, &signed, q, KeyForm::default(), Errors::default(), StatusCode::OK)
        .await
}

/// The form as the operation's input, or the errors to show next to its fields.
fn spec(signed: &Signed, f: &KeyForm) -> Result<KeySpec, Errors> {
    let mut errors = Vec::new();
    let limits = f.limits.new_limits(&mut errors);
    if !errors.is_empty() {
        return Err(errors.into_iter().collect());
    }
    // A user's own key takes no limits of its own choosing; the user's limits apply to it.
    let limits = if signed.role.manages() { limits } else { Default::default() };
    let models = page::list(f.models.as_deref().unwrap_or(""));
    let user_id =
        if signed.role.sees_all() { page::text(f.user_id.clone()) } else { signed.user_id.clone() };
    Ok(KeySpec {
        key_alias: page::text(f.key_alias.clone()),
        user_id,
        team_id: if signed.role.sees_all() { page::text(f.team_id.clone()) } else { None },
        models,
        duration: page::text(f.duration.clone()),
        limits,
        ..Default::default()
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<KeyForm>,
) -> Response {
    if !(signed.role.manages() || (signed.role.changes() && signed.user_id.is_some())) {
        return page::refused(&base, "Your role may not create keys.");
    }
    let created = match spec(&signed, &form) {
        Ok(spec) => {
            ops::create(&state, &signed.actor(), spec).await.map_err(|e| page::field_error(&e))
        }
        Err(errors) => Err(errors),
    };
    match created {
        Ok((record, key)) => created_page(&base, &signed, key, record, false),
        Err(errors) => {
            render_list(
                &state,
                &base,
                &signed,
                ListQuery::default(),
                form,
                errors,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

fn created_page(
    base: &Base,
    signed: &Signed,
    key: String,
    record: KeyRecord,
    regenerated: bool,
) -> Response {
    let frame = Frame::new(base, signed, "Key created", "keys");
    let nonce = frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &CreatedPage { frame, key, record, regenerated })
}

async fn load(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    hash: &str,
) -> Result<KeyRecord, Response> {
    let key = page::found(base, "No such key.", state.store().get_key(hash).await)?;
    if may_see(signed, &key) { Ok(key) } else { Err(page::refused(base, "This key is not yours.")) }
}

async fn render_key(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    key: KeyRecord,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let today = Utc::now().date_naive();
    let filter = RollupFilter {
        start: Some(today - Duration::days(29)),
        end: Some(today),
        token_hash: Some(key.token_hash.clone()),
        ..Default::default()
    };
    let usage = state.store().daily_spend(filter).await.unwrap_or_default();
    let frame = Frame::new(base, signed, key.key_alias.as_deref().unwrap_or(&key.key_name), "keys")
        .with_notice(notice);
    let nonce = frame.nonce.clone();
    page::html(status, &nonce, &KeyPage { frame, key, usage, errors })
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Path(hash): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    match load(&state, &base, &signed, &hash).await {
        Ok(key) => {
            render_key(&state, &base, &signed, key, q.done, Errors::default(), StatusCode::OK).await
        }
        Err(r) => r,
    }
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((hash, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<KeyForm>,
) -> Response {
    let key = match load(&state, &base, &signed, &hash).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if !may_change(&signed, &key) {
        return page::refused(&base, "Your role may not change keys.");
    }
    let actor = signed.actor();
    let back = format!("/keys/{hash}");
    let outcome: Result<Response, Errors> = match action.as_str() {
        // A key's limits are the admin's to set: a user may not lift their own.
        "update" | "unblock" if !signed.role.manages() => {
            Ok(page::refused(&base, "Only the admin changes a key's limits or unblocks it."))
        }
        "update" => {
            let mut errors = Vec::new();
            let limits = form.limits.change(&mut errors);
            let change = KeyPatch {
                key_alias: form.key_alias.as_ref().map(|a| page::text(Some(a.clone()))),
                max_budget: limits.max_budget,
                budget_duration: limits.budget_duration,
                rpm_limit: limits.rpm_limit,
                tpm_limit: limits.tpm_limit,
                max_parallel_requests: limits.max_parallel_requests,
                max_premium_requests: limits.max_premium_requests,
                premium_budget_duration: limits.premium_budget_duration,
                models: form.models.as_deref().map(page::list),
                ..Default::default()
            };
            if errors.is_empty() {
                ops::change(&state, &actor, "update", &hash, change)
                    .await
                    .map(|_| page::done(&base, &back, "Key updated."))
                    .map_err(|e| page::field_error(&e))
            } else {
                Err(errors.into_iter().collect())
            }
        }
        "block" | "unblock" => {
            let change = KeyPatch { blocked: Some(action == "block"), ..Default::default() };
            let said = if action == "block" { "Key blocked." } else { "Key unblocked." };
            ops::change(&state, &actor, &action, &hash, change)
                .await
                .map(|_| page::done(&base, &back, said))
                .map_err(|e| page::field_error(&e))
        }
        "regenerate" => ops::regenerate(&state, &actor, &hash)
            .await
            .map(|(record, fresh)| created_page(&base, &signed, fresh, record, true))
            .map_err(|e| page::field_error(&e)),
        "delete" => ops::delete(&state, &actor, std::slice::from_ref(&hash))
            .await
            .map(|_| page::done(&base, "/keys", "Key deleted."))
            .map_err(|e| page::field_error(&e)),
        _ => Ok(page::not_found(&base, "No such action.")),
    };
    match outcome {
        Ok(r) => r,
        // Refused: the key's page again, with why next to the field, nothing changed.
        Err(errors) => {
            render_key(&state, &base, &signed, key, None, errors, StatusCode::BAD_REQUEST).await
        }
    }
}
