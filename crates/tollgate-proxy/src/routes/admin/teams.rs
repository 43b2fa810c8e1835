//! `/team/*`: teams, whose budgets and limits apply to every key in them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{KeyFilter, TeamMember, TeamPatch, TeamRecord};

use super::{Admin, PageQuery, body, patch, store_error};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::Query;
use crate::ops::Actor;
use crate::ops::keys::key_json;
use crate::ops::object_permission;
use crate::ops::teams::{self as ops, team_json};
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(super) async fn new(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    respond(ops::create(&state, &Actor::of(&p), body(&b)?).await)
}

fn respond(r: Result<TeamRecord, ApiError>) -> Answer {
    r.map(|t| Json(team_json(&t)))
}

#[derive(Debug, Deserialize)]
pub(super) struct TeamQuery {
    team_id: String,
}

pub(super) async fn info(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<TeamQuery>,
) -> Answer {
    let team = state.store().get_team(&q.team_id).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "Team not found.").with_code("not_found")
    })?;
    let filter = KeyFilter { team_id: Some(q.team_id.clone()), size: 1000, ..Default::default() };
    let keys = state.store().list_keys(filter).await.map_err(store_error)?;
    let mut info = team_json(&team);
    if let Some(t) = state.directory().team(&team.team_id) {
        info["spend"] = json!(t.state.spend.used());
        info["premium_spend"] = json!(t.state.premium.used());
    }
    Ok(Json(json!({
        "team_id": team.team_id,
        "team_info": info,
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
pub(super) struct UpdateBody {
    team_id: String,
    #[serde(default, deserialize_with = "patch")]
    team_alias: Option<Option<String>>,
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
    blocked: Option<bool>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "patch")]
    object_permission: Option<Option<Value>>,
    #[serde(default)]
    spend: Option<f64>,
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: UpdateBody = body(&b)?;
    let object_permission = object_permission::parse_change(b.object_permission)?;
    let t = TeamPatch {
        team_alias: b.team_alias,
        models: b.models,
        max_budget: b.max_budget,
        budget_duration: b.budget_duration,
        rpm_limit: b.rpm_limit,
        tpm_limit: b.tpm_limit,
        max_parallel_requests: b.max_parallel_requests,
        max_premium_requests: b.max_premium_requests,
        premium_budget_duration: b.premium_budget_duration,
        premium_spend: b.premium_spend,
        blocked: b.blocked,
        metadata: b.metadata,
        object_permission,
        spend: b.spend,
    };
    respond(ops::change(&state, &Actor::of(&p), "update", &b.team_id, t).await)
}

#[derive(Debug, Deserialize)]
pub(super) struct TeamRef {
    team_id: String,
}

pub(super) async fn block(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: TeamRef = body(&b)?;
    let t = TeamPatch { blocked: Some(true), ..Default::default() };
    respond(ops::change(&state, &Actor::of(&p), "block", &r.team_id, t).await)
}

pub(super) async fn unblock(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: TeamRef = body(&b)?;
    let t = TeamPatch { blocked: Some(false), ..Default::default() };
    respond(ops::change(&state, &Actor::of(&p), "unblock", &r.team_id, t).await)
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteBody {
    team_ids: Vec<String>,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: DeleteBody = body(&b)?;
    let deleted = ops::delete(&state, &Actor::of(&p), &b.team_ids).await?;
    Ok(Json(json!({ "deleted_teams": b.team_ids, "deleted": deleted })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PageQuery>,
) -> Answer {
    let teams = state.store().list_teams(q.page()).await.map_err(store_error)?;
    Ok(Json(Value::Array(teams.iter().map(team_json).collect())))
}

/// `member` may be one member or a list, as in LiteLLM.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Members {
    One(TeamMember),
    Many(Vec<TeamMember>),
}

#[derive(Debug, Deserialize)]
pub(super) struct MemberAddBody {
    team_id: String,
    member: Members,
}

pub(super) async fn member_add(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: MemberAddBody = body(&b)?;
    let members = match b.member {
        Members::One(m) => vec![m],
        Members::Many(ms) => ms,
    };
    respond(ops::add_members(&state, &Actor::of(&p), &b.team_id, &members).await)
}

#[derive(Debug, Deserialize)]
pub(super) struct MemberDeleteBody {
    team_id: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_ids: Vec<String>,
}

pub(super) async fn member_delete(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: MemberDeleteBody = body(&b)?;
    let mut ids = b.user_ids;
    ids.extend(b.user_id);
    respond(ops::remove_members(&state, &Actor::of(&p), &b.team_id, &ids).await)
}
