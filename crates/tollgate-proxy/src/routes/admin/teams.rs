//! `/team/*`: teams, whose budgets and limits apply to every key in them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{KeyFilter, NewTeam, Page, TeamMember, TeamPatch, TeamRecord};

use super::{Admin, LimitsBody, PageQuery, bad, body, check_limits, patch, store_error};
use crate::body::LimitedBody;
use crate::error::ApiError;
use crate::extract::Query;
use crate::ops::Actor;
use crate::ops::keys::key_json;
use crate::ops::objects;
use crate::state::AppState;

type Answer = Result<Json<Value>, ApiError>;

pub(crate) fn team_json(t: &TeamRecord) -> Value {
    json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "models": t.models,
        "max_budget": t.limits.max_budget,
        "budget_duration": t.limits.budget_duration,
        "budget_reset_at": t.budget_reset_at,
        "rpm_limit": t.limits.rpm_limit,
        "tpm_limit": t.limits.tpm_limit,
        "max_parallel_requests": t.limits.max_parallel_requests,
        "spend": t.spend,
        "blocked": t.blocked,
        "members_with_roles": t.members,
        "metadata": t.metadata,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

objects::audited!(TeamRecord as "team" {
    id: team_id,
    shown: team_json,
    read: get_team,
    cache: put_team,
    forget: remove_team,
});

#[derive(Debug, Deserialize)]
pub(super) struct NewBody {
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    team_alias: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    members_with_roles: Vec<TeamMember>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(flatten)]
    limits: LimitsBody,
}

async fn refresh_members(state: &AppState, team: &TeamRecord) {
    for m in &team.members {
        super::users::reload(state, &m.user_id).await;
    }
}

pub(super) async fn new(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: NewBody = body(&b)?;
    let team_id = b.team_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if team_id.trim().is_empty() {
        return Err(bad("team_id", "must not be empty"));
    }
    let record = state
        .store()
        .create_team(NewTeam {
            team_id,
            team_alias: b.team_alias,
            models: b.models,
            limits: b.limits.into_limits()?,
            members: b.members_with_roles,
            metadata: b.metadata.unwrap_or(Value::Null),
        })
        .await
        .map_err(store_error)?;
    objects::created(&state, &Actor::of(&p), &record).await;
    refresh_members(&state, &record).await;
    Ok(Json(team_json(&record)))
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
        info["spend"] = json!(t.state.spend());
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
    #[serde(default)]
    blocked: Option<bool>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    spend: Option<f64>,
}

/// Changes a team, audited as `action`.
async fn apply(
    state: &AppState,
    actor: &Actor,
    action: &str,
    team_id: &str,
    t: TeamPatch,
) -> Answer {
    let write = state.store().update_team(team_id, t);
    Ok(Json(team_json(&objects::changed(state, actor, action, team_id, write).await?)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let b: UpdateBody = body(&b)?;
    check_limits(
        b.max_budget.flatten(),
        &b.budget_duration.clone().flatten(),
        [b.rpm_limit.flatten(), b.tpm_limit.flatten(), b.max_parallel_requests.flatten()],
    )?;
    let t = TeamPatch {
        team_alias: b.team_alias,
        models: b.models,
        max_budget: b.max_budget,
        budget_duration: b.budget_duration,
        rpm_limit: b.rpm_limit,
        tpm_limit: b.tpm_limit,
        max_parallel_requests: b.max_parallel_requests,
        blocked: b.blocked,
        metadata: b.metadata,
        spend: b.spend,
    };
    apply(&state, &Actor::of(&p), "update", &b.team_id, t).await
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
    apply(&state, &Actor::of(&p), "block", &r.team_id, t).await
}

pub(super) async fn unblock(
    State(state): State<AppState>,
    Admin(p): Admin,
    LimitedBody(b): LimitedBody,
) -> Answer {
    let r: TeamRef = body(&b)?;
    let t = TeamPatch { blocked: Some(false), ..Default::default() };
    apply(&state, &Actor::of(&p), "unblock", &r.team_id, t).await
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
    let delete = state.store().delete_teams(&b.team_ids);
    let deleted =
        objects::deleted::<TeamRecord, _>(&state, &Actor::of(&p), &b.team_ids, delete).await?;
    let _ = state.directory().refresh(state.store()).await;
    Ok(Json(json!({ "deleted_teams": b.team_ids, "deleted": deleted })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PageQuery>,
) -> Answer {
    let Page { page, size } = q.page();
    let teams = state.store().list_teams(Page { page, size }).await.map_err(store_error)?;
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
    if let Some(m) = members.iter().find(|m| m.role != "admin" && m.role != "user") {
        return Err(bad("member.role", &format!("must be `admin` or `user`, not `{}`", m.role)));
    }
    let write = state.store().add_team_members(&b.team_id, &members);
    let record = objects::changed(&state, &Actor::of(&p), "member_add", &b.team_id, write).await?;
    refresh_members(&state, &record).await;
    Ok(Json(team_json(&record)))
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
    if ids.is_empty() {
        return Err(bad("user_id", "is required"));
    }
    let write = state.store().remove_team_members(&b.team_id, &ids);
    let actor = Actor::of(&p);
    let record = objects::changed(&state, &actor, "member_delete", &b.team_id, write).await?;
    for u in &ids {
        super::users::reload(&state, u).await;
    }
    Ok(Json(team_json(&record)))
}
