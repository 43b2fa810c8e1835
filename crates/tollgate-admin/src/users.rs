//! Users: list, create (with a console password), edit limits, role and models, set or
//! clear the password, delete — through the same operations as `/user/*`. Admins and viewers
//! see them; only admins change them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::passwords;
use tollgate_proxy::ops::users::{self as ops, UserSpec};
use tollgate_store::{KeyFilter, KeyRecord, UserPatch, UserRecord};

use crate::lists::{self, Listed, Pager, SearchQuery};
use crate::page::{self, Base, DoneQuery, Errors, Field, Frame, LimitsForm, SeesAll, Submitted};
use crate::session::{Role, Signed};

/// The roles the console offers.
const ROLES: [&str; 3] = ["proxy_admin", "proxy_admin_viewer", "internal_user"];

/// What the create and edit forms hold, as typed.
#[derive(Debug, Default, Deserialize, Clone)]
pub(crate) struct UserForm {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_email: Option<String>,
    #[serde(default)]
    user_role: Option<String>,
    #[serde(default)]
    models: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(flatten)]
    limits: LimitsForm,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<UserRecord>,
    search: String,
    pager: Pager,
    orders: Vec<page::Choice>,
    fields: Vec<Field>,
    roles: Vec<page::Choice>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    frame: Frame,
    user: UserRecord,
    spend: f64,
    /// Premium requests used this premium period, as this process counts them.
    premium_spend: f64,
    keys: Vec<KeyRecord>,
    has_password: bool,
    fields: Vec<Field>,
    roles: Vec<page::Choice>,
    errors: Errors,
}

/// The form's role, which must be one the console offers.
fn role(f: &UserForm, errors: &mut Vec<(String, String)>) -> Option<String> {
    let role = page::text(f.user_role.clone())?;
    if ROLES.contains(&role.as_str()) {
        Some(role)
    } else {
        errors.push(("user_role".to_owned(), format!("must be one of {}", ROLES.join(", "))));
        None
    }
}

/// A password as typed: never trimmed; empty means none.
fn password(f: &UserForm) -> Option<String> {
    f.password.clone().filter(|p| !p.is_empty())
}

async fn render_list(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    q: SearchQuery,
    form: UserForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let store = state.store();
    let listed = lists::searched(base, "/users", &q, |p| store.list_users(p), UserRecord::cursor);
    let Listed { rows: users, pager, orders } = match listed.await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let search = q.search();
    let frame = Frame::new(base, signed, "Users", "users").with_notice(q.done);
    let nonce = frame.nonce.clone();
    let f = &form;
    let mut fields = page::fields(
        &[
            ("user_id", "User id (empty: generated)", f.user_id.as_deref()),
            ("user_email", "Email", f.user_email.as_deref()),
            ("models", "Models (comma-separated; empty: all)", f.models.as_deref()),
        ],
        &errors,
    );
    fields.extend(f.limits.fields(&errors));
    let roles = page::choices(&ROLES, f.user_role.as_deref().unwrap_or(Role::User.as_str()));
    let page = UsersPage { frame, users, search, pager, orders, fields, roles, errors };
    page::html(status, &nonce, &page)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    SeesAll { base, signed }: SeesAll,
    Query(q): Query<SearchQuery>,
) -> Response {
    render_list(&state, &base, &signed, q, UserForm::default(), Errors::default(), StatusCode::OK)
        .await
}

/// The form as the operation's input, or the errors to show next to its fields.
fn spec(f: &UserForm) -> Result<UserSpec, Errors> {
    let mut errors = Vec::new();
    let limits = f.limits.new_limits(&mut errors);
    let user_role = role(f, &mut errors);
    if !errors.is_empty() {
        return Err(errors.into_iter().collect());
    }
    Ok(UserSpec {
        user_id: page::text(f.user_id.clone()),
        user_email: page::text(f.user_email.clone()),
        user_role,
        models: page::list(f.models.as_deref().unwrap_or("")),
        metadata: None,
        // Keys are made on the keys page, where they are shown once.
        auto_create_key: false,
        key_alias: None,
        password: password(f),
        limits,
    })
}

fn user_path(user_id: &str) -> String {
    format!("/users/{}", page::url_encode(user_id))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<UserForm>,
) -> Response {
    if let Err(r) = page::manages(&base, &signed) {
        return r;
    }
    let created = match spec(&form) {
        Ok(spec) => {
            ops::create(&state, &signed.actor(), spec).await.map_err(|e| page::field_error(&e))
        }
        Err(errors) => Err(errors),
    };
    match created {
        Ok((user, _)) => page::done(&base, &user_path(&user.user_id), "User created."),
        Err(errors) => {
            let q = SearchQuery::default();
            render_list(&state, &base, &signed, q, form, errors, StatusCode::BAD_REQUEST).await
        }
    }
}

async fn load(state: &AppState, base: &Base, user_id: &str) -> Result<UserRecord, Response> {
    page::found(base, "No such user.", state.store().get_user(user_id).await)
}

async fn render_user(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    user: UserRecord,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let store = state.store();
    let filter =
        KeyFilter { user_id: Some(user.user_id.clone()), size: 1000, ..Default::default() };
    let read =
        async { Ok((store.list_keys(filter).await?, store.password_hash(&user.user_id).await?)) };
    let (keys, hash) = match page::read(base, "a user's keys", read.await) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let spend = state.directory().user(&user.user_id).map_or(user.spend, |u| u.state.spend.used());
    let premium_spend = state
        .directory()
        .user(&user.user_id)
        .map_or(user.premium_spend, |u| u.state.premium.used());
    let frame = Frame::new(base, signed, &user.user_id, "users").with_notice(notice);
    let nonce = frame.nonce.clone();
    let models = user.models.join(", ");
    let mut fields = page::fields(
        &[
            ("user_email", "Email", user.user_email.as_deref()),
            ("models", "Models (comma-separated; empty: all)", Some(&models)),
        ],
        &errors,
    );
    fields.extend(LimitsForm::of(&user.limits).fields(&errors));
    let roles = page::choices(&ROLES, user.user_role.as_deref().unwrap_or(Role::User.as_str()));
    let page = UserPage {
        frame,
        user,
        spend,
        premium_spend,
        keys,
        has_password: hash.is_some(),
        fields,
        roles,
        errors,
    };
    page::html(status, &nonce, &page)
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    SeesAll { base, signed }: SeesAll,
    Path(user_id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    match load(&state, &base, &user_id).await {
        Ok(user) => {
            let errors = Errors::default();
            render_user(&state, &base, &signed, user, q.done, errors, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

/// The edit form as a change of the user, or the errors to show next to its fields.
fn change(f: &UserForm) -> Result<UserPatch, Errors> {
    let mut errors = Vec::new();
    let limits = f.limits.change(&mut errors);
    let user_role = f.user_role.as_ref().map(|_| role(f, &mut errors));
    if !errors.is_empty() {
        return Err(errors.into_iter().collect());
    }
    Ok(UserPatch {
        user_email: f.user_email.as_ref().map(|e| page::text(Some(e.clone()))),
        user_role,
        models: f.models.as_deref().map(page::list),
        max_budget: limits.max_budget,
        budget_duration: limits.budget_duration,
        rpm_limit: limits.rpm_limit,
        tpm_limit: limits.tpm_limit,
        max_parallel_requests: limits.max_parallel_requests,
        max_premium_requests: limits.max_premium_requests,
        premium_budget_duration: limits.premium_budget_duration,
        ..Default::default()
    })
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((user_id, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<UserForm>,
) -> Response {
    if let Err(r) = page::manages(&base, &signed) {
        return r;
    }
    let user = match load(&state, &base, &user_id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let actor = signed.actor();
    let back = user_path(&user_id);
    let outcome = match action.as_str() {
        "update" => match change(&form) {
            Ok(patch) => ops::update(&state, &actor, &user_id, patch, None)
                .await
                .map(|_| "User updated.")
                .map_err(|e| page::field_error(&e)),
            Err(errors) => Err(errors),
        },
        "password" => match password(&form) {
            Some(p) => passwords::set(&state, &actor, &user_id, Some(&p))
                .await
                .map(|_| "Password set; their console sessions have ended.")
                .map_err(|e| page::field_error(&e)),
            None => Err(Errors::from_iter([("password".to_owned(), "is required".to_owned())])),
        },
        "clear_password" => passwords::set(&state, &actor, &user_id, None)
            .await
            .map(|_| "Password removed; they can no longer sign in to the console.")
            .map_err(|e| page::field_error(&e)),
        "delete" => {
            return match ops::delete(&state, &actor, std::slice::from_ref(&user_id)).await {
                Ok(_) => page::done(&base, "/users", "User deleted."),
                Err(e) => {
                    let errors = page::field_error(&e);
                    let status = StatusCode::BAD_REQUEST;
                    render_user(&state, &base, &signed, user, None, errors, status).await
                }
            };
        }
        _ => return page::not_found(&base, "No such action."),
    };
    match outcome {
        Ok(notice) => page::done(&base, &back, notice),
        Err(errors) => {
            render_user(&state, &base, &signed, user, None, errors, StatusCode::BAD_REQUEST).await
        }
    }
}
