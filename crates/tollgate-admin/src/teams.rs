//! Teams: list, create, edit limits and models, add and remove members, block, unblock,
//! delete — through the same operations as `/team/*`. Admins and viewers see them; only
//! admins change them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::teams::{self as ops, MEMBER_ROLES, TeamSpec};
use tollgate_store::{KeyFilter, KeyRecord, TeamMember, TeamPatch, TeamRecord};

use crate::lists::{self, Listed, Pager, SearchQuery};
use crate::page::{
    self, Base, Choice, DoneQuery, Errors, Field, Frame, LimitsForm, SeesAll, Submitted,
};
use crate::session::Signed;

/// What the team forms hold, as typed: create and edit, and a member to add or remove.
#[derive(Debug, Default, Deserialize, Clone)]
pub(crate) struct TeamForm {
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    team_alias: Option<String>,
    #[serde(default)]
    models: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(flatten)]
    limits: LimitsForm,
}

#[derive(Template)]
#[template(path = "admin/teams.html")]
struct TeamsPage {
    frame: Frame,
    teams: Vec<TeamRecord>,
    search: String,
    pager: Pager,
    orders: Vec<Choice>,
    fields: Vec<Field>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/team.html")]
struct TeamPage {
    frame: Frame,
    team: TeamRecord,
    spend: f64,
    /// Premium requests used this premium period, as this process counts them.
    premium_spend: f64,
    keys: Vec<KeyRecord>,
    fields: Vec<Field>,
    member_roles: Vec<Choice>,
    errors: Errors,
}

async fn render_list(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    q: SearchQuery,
    form: TeamForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let store = state.store();
    let listed = lists::searched(base, "/teams", &q, |p| store.list_teams(p), TeamRecord::cursor);
    let Listed { rows: teams, pager, orders } = match listed.await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let search = q.search();
    let frame = Frame::new(base, signed, "Teams", "teams").with_notice(q.done);
    let nonce = frame.nonce.clone();
    let f = &form;
    let mut fields = page::fields(
        &[
            ("team_id", "Team id (empty: generated)", f.team_id.as_deref()),
            ("team_alias", "Name", f.team_alias.as_deref()),
            ("models", "Models (comma-separated; empty: all)", f.models.as_deref()),
        ],
        &errors,
    );
    fields.extend(f.limits.fields(&errors));
    let page = TeamsPage { frame, teams, search, pager, orders, fields, errors };
    page::html(status, &nonce, &page)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    SeesAll { base, signed }: SeesAll,
    Query(q): Query<SearchQuery>,
) -> Response {
    render_list(&state, &base, &signed, q, TeamForm::default(), Errors::default(), StatusCode::OK)
        .await
}

fn team_path(team_id: &str) -> String {
    format!("/teams/{}", page::url_encode(team_id))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<TeamForm>,
) -> Response {
    if let Err(r) = page::manages(&base, &signed) {
        return r;
    }
    let mut errors = Vec::new();
    let limits = form.limits.new_limits(&mut errors);
    let created = if errors.is_empty() {
        let spec = TeamSpec {
            team_id: page::text(form.team_id.clone()),
            team_alias: page::text(form.team_alias.clone()),
            models: page::list(form.models.as_deref().unwrap_or("")),
            limits,
            ..Default::default()
        };
        ops::create(&state, &signed.actor(), spec).await.map_err(|e| page::field_error(&e))
    } else {
        Err(errors.into_iter().collect())
    };
    match created {
        Ok(team) => page::done(&base, &team_path(&team.team_id), "Team created."),
        Err(errors) => {
            let q = SearchQuery::default();
            render_list(&state, &base, &signed, q, form, errors, StatusCode::BAD_REQUEST).await
        }
    }
}

async fn load(state: &AppState, base: &Base, team_id: &str) -> Result<TeamRecord, Response> {
    page::found(base, "No such team.", state.store().get_team(team_id).await)
}

async fn render_team(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    team: TeamRecord,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let filter =
        KeyFilter { team_id: Some(team.team_id.clone()), size: 1000, ..Default::default() };
    let keys = match page::read(base, "a team's keys", state.store().list_keys(filter).await) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let spend = state.directory().team(&team.team_id).map_or(team.spend, |t| t.state.spend.used());
    let premium_spend = state
        .directory()
        .team(&team.team_id)
        .map_or(team.premium_spend, |t| t.state.premium.used());
    let title = team.team_alias.clone().unwrap_or_else(|| team.team_id.clone());
    let frame = Frame::new(base, signed, &title, "teams").with_notice(notice);
    let nonce = frame.nonce.clone();
    let models = team.models.join(", ");
    let mut fields = page::fields(
        &[
            ("team_alias", "Name", team.team_alias.as_deref()),
            ("models", "Models (comma-separated; empty: all)", Some(&models)),
        ],
        &errors,
    );
    fields.extend(LimitsForm::of(&team.limits).fields(&errors));
    let member_roles = page::choices(&MEMBER_ROLES, "user");
    let page = TeamPage { frame, team, spend, premium_spend, keys, fields, member_roles, errors };
    page::html(status, &nonce, &page)
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    SeesAll { base, signed }: SeesAll,
    Path(team_id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    match load(&state, &base, &team_id).await {
        Ok(team) => {
            let errors = Errors::default();
            render_team(&state, &base, &signed, team, q.done, errors, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

/// The edit form as a change of the team, or the errors to show next to its fields.
fn change(f: &TeamForm) -> Result<TeamPatch, Errors> {
    let mut errors = Vec::new();
    let limits = f.limits.change(&mut errors);
    if !errors.is_empty() {
        return Err(errors.into_iter().collect());
    }
    Ok(TeamPatch {
        team_alias: f.team_alias.as_ref().map(|a| page::text(Some(a.clone()))),
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
    Path((team_id, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<TeamForm>,
) -> Response {
    if let Err(r) = page::manages(&base, &signed) {
        return r;
    }
    let team = match load(&state, &base, &team_id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (actor, id) = (signed.actor(), team_id.as_str());
    let member = page::text(form.user_id.clone()).unwrap_or_default();
    let outcome = match action.as_str() {
        "update" => match change(&form) {
            Ok(patch) => {
                ops::change(&state, &actor, "update", id, patch).await.map(|_| "Team updated.")
            }
            Err(errors) => {
                let status = StatusCode::BAD_REQUEST;
                return render_team(&state, &base, &signed, team, None, errors, status).await;
            }
        },
        "block" | "unblock" => {
            let patch = TeamPatch { blocked: Some(action == "block"), ..Default::default() };
            let notice = if action == "block" { "Team blocked." } else { "Team unblocked." };
            ops::change(&state, &actor, &action, id, patch).await.map(|_| notice)
        }
        "add_member" => {
            let role = page::text(form.role.clone()).unwrap_or_else(|| "user".to_owned());
            let added = [TeamMember { user_id: member, role }];
            ops::add_members(&state, &actor, id, &added).await.map(|_| "Member added.")
        }
        "remove_member" => {
            let removed: Vec<String> = Some(member).filter(|m| !m.is_empty()).into_iter().collect();
            ops::remove_members(&state, &actor, id, &removed).await.map(|_| "Member removed.")
        }
        "delete" => match ops::delete(&state, &actor, std::slice::from_ref(&team_id)).await {
            Ok(_) => return page::done(&base, "/teams", "Team deleted."),
            Err(e) => Err(e),
        },
        _ => return page::not_found(&base, "No such action."),
    };
    match outcome {
        Ok(notice) => page::done(&base, &team_path(&team_id), notice),
        Err(e) => {
            let errors = page::field_error(&e);
            render_team(&state, &base, &signed, team, None, errors, StatusCode::BAD_REQUEST).await
        }
    }
}
