//! Teams: create, change (limits, block, unblock), delete, add and remove members — each
//! checked before anything is written, audited, and told to this process's directory
//! (members' user records list their teams, so they are reloaded too).

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::{NewTeam, TeamMember, TeamPatch, TeamRecord};

use super::input::{LimitsBody, bad, check_limit_changes, store_error};
use super::{Actor, object_permission, objects, users};
use crate::error::ApiError;
use crate::state::AppState;

/// What a team looks like in answers.
pub fn team_json(t: &TeamRecord) -> Value {
    json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "models": t.models,
        "max_budget": t.limits.max_budget,
        "budget_duration": t.limits.budget_duration,
        "budget_reset_at": t.budget_reset_at,
        "max_premium_requests": t.limits.max_premium_requests,
        "premium_budget_duration": t.limits.premium_budget_duration,
        "premium_budget_reset_at": t.premium_budget_reset_at,
        "premium_spend": t.premium_spend,
        "rpm_limit": t.limits.rpm_limit,
        "tpm_limit": t.limits.tpm_limit,
        "max_parallel_requests": t.limits.max_parallel_requests,
        "spend": t.spend,
        "blocked": t.blocked,
        "members_with_roles": t.members,
        "metadata": t.metadata,
        "object_permission": object_permission::to_json(&t.object_permission),
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

/// A team to create, as `/team/new` takes it.
#[derive(Debug, Default, Deserialize)]
pub struct TeamSpec {
    /// Id; one is generated when absent.
    #[serde(default)]
    pub team_id: Option<String>,
    /// A name to recognise it by.
    #[serde(default)]
    pub team_alias: Option<String>,
    /// Allowed models; empty means all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Its first members.
    #[serde(default)]
    pub members_with_roles: Vec<TeamMember>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// MCP servers and tools the team's keys may use, in LiteLLM's shape; checked by
    /// [`create`].
    #[serde(default)]
    pub object_permission: Option<Value>,
    /// Budget and rate limits.
    #[serde(flatten)]
    pub limits: LimitsBody,
}

/// The roles a member may have.
pub const MEMBER_ROLES: [&str; 2] = ["admin", "user"];

/// Members' user records list their teams: reloads each of `user_ids`.
async fn reload_members(state: &AppState, user_ids: &[String]) {
    for u in user_ids {
        users::reload(state, u).await;
    }
}

fn member_ids(team: &TeamRecord) -> Vec<String> {
    team.members.iter().map(|m| m.user_id.clone()).collect()
}

/// Creates a team; every field is checked before it is written.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    spec: TeamSpec,
) -> Result<TeamRecord, ApiError> {
    let team_id = spec.team_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if team_id.trim().is_empty() {
        return Err(bad("team_id", "must not be empty"));
    }
    let access = object_permission::parse(spec.object_permission)?;
    let new = NewTeam {
        team_id,
        team_alias: spec.team_alias,
        models: spec.models,
        limits: spec.limits.into_limits()?,
        members: spec.members_with_roles,
        metadata: spec.metadata.unwrap_or(Value::Null),
        object_permission: access,
    };
    let record = state.store().create_team(new).await.map_err(store_error)?;
    objects::created(state, actor, &record).await;
    reload_members(state, &member_ids(&record)).await;
    Ok(record)
}

/// Changes a team, audited as `action` (`update`, `block`, `unblock`); limits are checked
/// first.
pub async fn change(
    state: &AppState,
    actor: &Actor,
    action: &str,
    team_id: &str,
    change: TeamPatch,
) -> Result<TeamRecord, ApiError> {
    check_limit_changes(
        [change.max_budget, change.max_premium_requests],
        [&change.budget_duration, &change.premium_budget_duration],
        [change.rpm_limit, change.tpm_limit, change.max_parallel_requests],
    )?;
    let write = state.store().update_team(team_id, change);
    objects::changed(state, actor, action, team_id, write).await
}

/// Deletes teams; answers how many existed. Their keys stay, without a team.
pub async fn delete(state: &AppState, actor: &Actor, team_ids: &[String]) -> Result<u64, ApiError> {
    let delete = state.store().delete_teams(team_ids);
    let deleted = objects::deleted::<TeamRecord, _>(state, actor, team_ids, delete).await?;
    let _ = state.directory().refresh(state.store()).await;
    Ok(deleted)
}

/// Adds members (or changes the role of existing ones), each `admin` or `user`.
pub async fn add_members(
    state: &AppState,
    actor: &Actor,
    team_id: &str,
    members: &[TeamMember],
) -> Result<TeamRecord, ApiError> {
    if let Some(m) = members.iter().find(|m| !MEMBER_ROLES.contains(&m.role.as_str())) {
        return Err(bad("member.role", &format!("must be `admin` or `user`, not `{}`", m.role)));
    }
    if members.iter().any(|m| m.user_id.trim().is_empty()) {
        return Err(bad("member.user_id", "must not be empty"));
    }
    let write = state.store().add_team_members(team_id, members);
    let record = objects::changed(state, actor, "member_add", team_id, write).await?;
    reload_members(state, &member_ids(&record)).await;
    Ok(record)
}

/// Removes members by user id.
pub async fn remove_members(
    state: &AppState,
    actor: &Actor,
    team_id: &str,
    user_ids: &[String],
) -> Result<TeamRecord, ApiError> {
    if user_ids.is_empty() {
        return Err(bad("user_id", "is required"));
    }
    let write = state.store().remove_team_members(team_id, user_ids);
    let record = objects::changed(state, actor, "member_delete", team_id, write).await?;
    reload_members(state, user_ids).await;
    Ok(record)
}
