//! `/user/*`: users, who own keys and may have budgets and limits of their own.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{EntityKind, KeyFilter, NewUser, Page, UserPatch, UserRecord};

use super::{Admin, LimitsBody, PageQuery, bad, body, check_limits, patch, store_error};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::Query;
use crate::ops::Actor;
use crate::ops::keys::{KeySpec, key_json};
use crate::ops::objects;
use crate::ops::passwords;
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(crate) fn user_json(u: &UserRecord) -> Value {
    json!({
        "user_id": u.user_id,
        "user_email": u.user_email,
        "user_role": u.user_role,
        "models": u.models,
        "max_budget": u.limits.max_budget,
        "budget_duration": u.limits.budget_duration,
        "budget_reset_at": u.budget_reset_at,
        "rpm_limit": u.limits.rpm_limit,
        "tpm_limit": u.limits.tpm_limit,
        "max_parallel_requests": u.limits.max_parallel_requests,
        "spend": u.spend,
        "teams": u.teams,
        "metadata": u.metadata,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

objects::audited!(UserRecord as "user" {
    id: user_id,
    shown: user_json,
    read: get_user,
    cache: put_user,
    forget: remove_user,
});

#[derive(Debug, Deserialize)]
pub(super) struct NewBody {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_email: Option<String>,
    #[serde(default)]
    user_role: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    metadata: Option<Value>,
    /// LiteLLM creates a key for a new user unless told not to.
    #[serde(default = "yes")]
    auto_create_key: bool,
    #[serde(default)]
    key_alias: Option<String>,
    /// A password to sign in to the admin console with (stored as an argon2 hash).
    #[serde(default)]
    password: Option<String>,
    #[serde(flatten)]
    limits: LimitsBody,
}

fn yes() -> bool {
    true
}

pub(super) async fn new(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let actor = Actor::of(&p);
    let b: NewBody = body(&b)?;
    let user_id = b.user_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if user_id.trim().is_empty() {
        return Err(bad("user_id", "must not be empty"));
    }
    if b.password.as_ref().is_some_and(|p| p.chars().count() < passwords::MIN_CHARS) {
        return Err(bad("password", "must have at least 8 characters"));
    }
    let record = state
        .store()
        .create_user(NewUser {
            user_id: user_id.clone(),
            user_email: b.user_email,
            user_role: b.user_role,
            models: b.models.clone(),
            limits: b.limits.into_limits()?,
            metadata: b.metadata.unwrap_or(Value::Null),
        })
        .await
        .map_err(store_error)?;
    objects::created(&state, &actor, &record).await;
    if let Some(password) = &b.password {
        passwords::set(&state, &actor, &user_id, Some(password)).await?;
    }
    let mut answer = user_json(&record);
    if b.auto_create_key {
        let spec = KeySpec::for_user(user_id, b.key_alias);
        let (record, key) = crate::ops::keys::create(&state, &actor, spec).await?;
        answer["key"] = Value::String(key);
        answer["token"] = Value::String(record.token_hash);
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
pub(super) struct UserQuery {
    user_id: String,
}

pub(super) async fn info(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<UserQuery>,
) -> Answer {
    let user = state.store().get_user(&q.user_id).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "User not found.").with_code("not_found")
    })?;
    let filter = KeyFilter { user_id: Some(q.user_id.clone()), size: 1000, ..Default::default() };
    let keys = state.store().list_keys(filter).await.map_err(store_error)?;
    let mut info = user_json(&user);
    if let Some(u) = state.directory().user(&user.user_id) {
        info["spend"] = json!(u.state.spend());
    }
    Ok(Json(json!({
        "user_id": user.user_id,
        "user_info": info,
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        "teams": user.teams,
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct UpdateBody {
    user_id: String,
    /// A new console password; `null` removes it.
    #[serde(default, deserialize_with = "patch")]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    user_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    user_role: Option<Option<String>>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "patch")]
    budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch")]
    rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    tpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    max_parallel_requests: Option<Option<i64>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    spend: Option<f64>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: UpdateBody = body(&b)?;
    if b.password
        .as_ref()
        .is_some_and(|p| p.as_ref().is_some_and(|p| p.chars().count() < passwords::MIN_CHARS))
    {
        return Err(bad("password", "must have at least 8 characters"));
    }
    check_limits(
        b.max_budget.flatten(),
        &b.budget_duration.clone().flatten(),
        [b.rpm_limit.flatten(), b.tpm_limit.flatten(), b.max_parallel_requests.flatten()],
    )?;
    let change = UserPatch {
        user_email: b.user_email,
        user_role: b.user_role,
        models: b.models,
        max_budget: b.max_budget,
        budget_duration: b.budget_duration,
        rpm_limit: b.rpm_limit,
        tpm_limit: b.tpm_limit,
        max_parallel_requests: b.max_parallel_requests,
        metadata: b.metadata,
        spend: b.spend,
    };
    let actor = Actor::of(&p);
    let write = state.store().update_user(&b.user_id, change);
    let record = objects::changed(&state, &actor, "update", &b.user_id, write).await?;
    if let Some(password) = &b.password {
        passwords::set(&state, &actor, &b.user_id, password.as_deref()).await?;
    }
    Ok(Json(user_json(&record)))
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteBody {
    user_ids: Vec<String>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: DeleteBody = body(&b)?;
    let delete = state.store().delete_users(&b.user_ids);
    let deleted =
        objects::deleted::<UserRecord, _>(&state, &Actor::of(&p), &b.user_ids, delete).await?;
    // Their keys lost their owner: refresh them from the feed.
    let _ = state.directory().refresh(state.store()).await;
    Ok(Json(json!({ "deleted_users": b.user_ids, "deleted": deleted })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PageQuery>,
) -> Answer {
    let Page { page, size } = q.page();
    let users = state.store().list_users(Page { page, size }).await.map_err(store_error)?;
    Ok(Json(json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>(),
        "page": page,
        "page_size": size,
    })))
}

/// Reloads a user after something about them changed elsewhere (e.g. a new key).
pub(crate) async fn reload(state: &AppState, user_id: &str) {
    let _ = state.directory().reload(state.store(), EntityKind::User, user_id).await;
}
