//! `/user/*`: users, who own keys and may have budgets and limits of their own.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{KeyFilter, UserPatch};

use super::{Admin, PageQuery, body, patch, store_error};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::Query;
use crate::ops::Actor;
use crate::ops::keys::key_json;
use crate::ops::users::{self as ops, user_json};
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(super) async fn new(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let (record, key) = ops::create(&state, &Actor::of(&p), body(&b)?).await?;
    let mut answer = user_json(&record);
    if let Some((record, key)) = key {
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
        info["spend"] = json!(u.state.spend.used());
        info["premium_spend"] = json!(u.state.premium.used());
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
    #[serde(default, deserialize_with = "patch")]
    max_premium_requests: Option<Option<f64>>,
    #[serde(default, deserialize_with = "patch")]
    premium_budget_duration: Option<Option<String>>,
    #[serde(default)]
    premium_spend: Option<f64>,
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
    let change = UserPatch {
        user_email: b.user_email,
        user_role: b.user_role,
        models: b.models,
        max_budget: b.max_budget,
        budget_duration: b.budget_duration,
        rpm_limit: b.rpm_limit,
        tpm_limit: b.tpm_limit,
        max_parallel_requests: b.max_parallel_requests,
        max_premium_requests: b.max_premium_requests,
        premium_budget_duration: b.premium_budget_duration,
        premium_spend: b.premium_spend,
        metadata: b.metadata,
        spend: b.spend,
    };
    let password = b.password.as_ref().map(Option::as_deref);
    let record = ops::update(&state, &Actor::of(&p), &b.user_id, change, password).await?;
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
    let deleted = ops::delete(&state, &Actor::of(&p), &b.user_ids).await?;
    Ok(Json(json!({ "deleted_users": b.user_ids, "deleted": deleted })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PageQuery>,
) -> Answer {
    let list = q.page();
    let (page, size) = (list.page, list.size);
    let users = state.store().list_users(list).await.map_err(store_error)?;
    Ok(Json(json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>(),
        "page": page,
        "page_size": size,
    })))
}
