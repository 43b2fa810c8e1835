//! Teams and their memberships (`team_members`, which users read too).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::{changes, limits_set, paging, taken, ties};
use crate::patch::{self, object_or_empty, unique_members};
use crate::rows::{TEAM_COLUMNS, TeamRow};
use crate::sql::{Conn, Dialect, Param, Query, ids_per_statement};
use crate::{EntityKind, ListOrder, NewTeam, Page, StoreError, TeamMember, TeamPatch, TeamRecord};

fn not_found(team_id: &str) -> StoreError {
    StoreError::NotFound { kind: "team", id: team_id.to_owned() }
}

/// The records of `rows`, each with its members.
async fn with_members<D: Dialect>(
    conn: &mut Conn<D>,
    rows: Vec<TeamRow>,
) -> Result<Vec<TeamRecord>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.team_id.clone()).collect();
    let mut members: HashMap<String, Vec<TeamMember>> = HashMap::new();
    for m in ties::memberships::<D>(conn, "team_id", &ids, "user_id").await? {
        members.entry(m.team_id).or_default().push(TeamMember { user_id: m.user_id, role: m.role });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let team_members = members.remove(&r.team_id).unwrap_or_default();
            r.into_record(team_members)
        })
        .collect())
}

async fn one_with_members<D: Dialect>(
    conn: &mut Conn<D>,
    row: TeamRow,
) -> Result<TeamRecord, StoreError> {
    let mut records = with_members::<D>(conn, vec![row]).await?;
    records.pop().ok_or(StoreError::Database(sqlx::Error::RowNotFound))
}

/// Creates missing users bare, then adds or re-roles the memberships. Returns the change-feed
/// entries: one per member (created, or their `teams` changed).
async fn upsert_members<D: Dialect>(
    conn: &mut Conn<D>,
    team_id: &str,
    members: &[TeamMember],
    now: DateTime<Utc>,
) -> Result<Vec<(EntityKind, String)>, StoreError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
    ties::ensure::<D>(&mut *conn, &ids, now).await?;
    // 4 binds per row.
    for chunk in members.chunks(D::MAX_BINDS / 4) {
        let mut q =
            Query::<D>::new("INSERT INTO team_members (team_id, user_id, role, added_at) VALUES ");
        for (i, m) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values([
                Param::Text(team_id),
                Param::from(&m.user_id),
                Param::from(&m.role),
                Param::Time(now),
            ]);
        }
        q.push(" ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role");
        q.execute(&mut *conn).await?;
    }
    Ok(ids.into_iter().map(|id| (EntityKind::User, id)).collect())
}

fn select<'a, D: Dialect>(tail: &str) -> Query<'a, D> {
    super::select(TEAM_COLUMNS, "teams", tail)
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    team: NewTeam,
) -> Result<TeamRecord, StoreError> {
    if team.team_id.is_empty() {
        return Err(StoreError::Invalid("team_id is empty".to_owned()));
    }
    let members = unique_members(&team.members)?;
    let now = patch::now();
    let (limits, resets) = patch::new_limits(team.limits, now)?;
    let metadata = object_or_empty(team.metadata);
    patch::check_object_permission(&team.object_permission)?;
    let object_permission = patch::object_permission_json(&team.object_permission)?;
    let mut tx = D::begin_write(pool).await?;
    let q = super::insert::<D, 19>(
        "teams",
        TEAM_COLUMNS,
        [
            Param::from(&team.team_id),
            Param::from(&team.team_alias),
            Param::from(&team.models),
            Param::from(limits.max_budget),
            Param::from(&limits.budget_duration),
            Param::from(limits.rpm_limit),
            Param::from(limits.tpm_limit),
            Param::from(limits.max_parallel_requests),
            Param::Real(0.0),
            Param::from(resets.budget),
            Param::Bool(false),
            Param::from(&metadata),
            Param::from(now),
            Param::from(now),
            Param::from(limits.max_premium_requests),
            Param::from(&limits.premium_budget_duration),
            Param::Real(0.0),
            Param::from(resets.premium),
            Param::from(&object_permission),
        ],
    );
    let row: TeamRow =
        q.one(&mut tx).await.map_err(|e| taken(e, || format!("team `{}`", team.team_id)))?;
    let mut changes = vec![(EntityKind::Team, team.team_id.clone())];
    changes.extend(upsert_members::<D>(&mut tx, &team.team_id, &members, now).await?);
    let rec = one_with_members::<D>(&mut tx, row).await?;
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    team_id: &str,
) -> Result<Option<TeamRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = select::<D>(" WHERE team_id = ");
    q.bind(team_id);
    let row: Option<TeamRow> = q.optional(&mut conn).await?;
    match row {
        Some(row) => Ok(Some(one_with_members::<D>(&mut conn, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn update<D: Dialect>(
    pool: &Pool<D::Db>,
    team_id: &str,
    patch: TeamPatch,
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = select::<D>(" WHERE team_id = ");
    q.bind(team_id).push(D::LOCK_ROWS);
    let row: Option<TeamRow> = q.optional(&mut tx).await?;
    let mut rec = row.ok_or_else(|| not_found(team_id))?.into_record(Vec::new());
    patch::apply_team_patch(&mut rec, patch, now)?;
    let object_permission = patch::object_permission_json(&rec.object_permission)?;
    let mut q = Query::<D>::new("UPDATE teams SET team_alias = ");
    q.bind(&rec.team_alias).and(", models = ", &rec.models);
    limits_set(&mut q, &rec.limits);
    super::stamp_written(&mut q, &rec.limits, rec.updated_at);
    q.and(", spend = ", rec.spend)
        .and(", budget_reset_at = ", rec.budget_reset_at)
        .and(", premium_spend = ", rec.premium_spend)
        .and(", premium_budget_reset_at = ", rec.premium_budget_reset_at)
        .and(", blocked = ", rec.blocked)
        .and(", metadata = ", &rec.metadata)
        .and(", object_permission = ", &object_permission)
        .and(", updated_at = ", rec.updated_at)
        .and(" WHERE team_id = ", &rec.team_id)
        .push(" RETURNING ")
        .push(TEAM_COLUMNS);
    let row: TeamRow = q.one(&mut tx).await?;
    let rec = one_with_members::<D>(&mut tx, row).await?;
    changes::append::<D>(&mut tx, &[(EntityKind::Team, rec.team_id.clone())], now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deletes teams and their memberships; their keys stay but leave the team.
pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    team_ids: &[String],
) -> Result<u64, StoreError> {
    if team_ids.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let (mut keys, mut members, mut teams) = (Vec::new(), BTreeSet::new(), Vec::new());
    for chunk in team_ids.chunks(ids_per_statement::<D>(1)) {
        keys.extend(ties::release::<D>(&mut tx, "team_id", chunk, now).await?);
        members.extend(ties::drop_memberships::<D>(&mut tx, "team_id", chunk, "user_id").await?);
        let mut q = Query::<D>::new("DELETE FROM teams WHERE ");
        q.is_in("team_id", chunk).push(" RETURNING team_id");
        teams.extend(q.all::<(String,)>(&mut tx).await?.into_iter().map(|(id,)| id));
    }
    let deleted = teams.len() as u64;
    let changes: Vec<_> = keys
        .into_iter()
        .map(|id| (EntityKind::Key, id))
        .chain(members.into_iter().map(|id| (EntityKind::User, id)))
        .chain(teams.into_iter().map(|id| (EntityKind::Team, id)))
        .collect();
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn list<D: Dialect>(
    pool: &Pool<D::Db>,
    page: Page,
) -> Result<Vec<TeamRecord>, StoreError> {
    let pattern = page.search.as_deref().map(paging::contains);
    let mut q = select::<D>(" WHERE TRUE");
    if let Some(p) = &pattern {
        paging::search(&mut q, ["team_id", "team_alias"], p);
    }
    let order = page.order.unwrap_or(ListOrder::Oldest);
    paging::page(&mut q, &SORTS, order, page.after.as_ref(), page.page, page.size)?;
    let mut conn = pool.acquire().await?;
    let rows: Vec<TeamRow> = q.all(&mut conn).await?;
    with_members::<D>(&mut conn, rows).await
}

/// What the team list sorts by.
const SORTS: paging::Sorts = paging::Sorts {
    created: "created_at",
    name: "COALESCE(team_alias, team_id)",
    spend: "spend",
    id: "team_id",
};

/// Marks the team changed and locks it for the rest of the transaction; `NotFound` if missing.
async fn touch<D: Dialect>(
    conn: &mut Conn<D>,
    team_id: &str,
    now: DateTime<Utc>,
) -> Result<TeamRow, StoreError> {
    let mut q = Query::<D>::new("UPDATE teams SET updated_at = ");
    q.bind(now).and(" WHERE team_id = ", team_id).push(" RETURNING ").push(TEAM_COLUMNS);
    let row: Option<TeamRow> = q.optional(conn).await?;
    row.ok_or_else(|| not_found(team_id))
}

pub(super) async fn add_members<D: Dialect>(
    pool: &Pool<D::Db>,
    team_id: &str,
    members: &[TeamMember],
) -> Result<TeamRecord, StoreError> {
    let members = unique_members(members)?;
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let row = touch::<D>(&mut tx, team_id, now).await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    changes.extend(upsert_members::<D>(&mut tx, team_id, &members, now).await?);
    let rec = one_with_members::<D>(&mut tx, row).await?;
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn remove_members<D: Dialect>(
    pool: &Pool<D::Db>,
    team_id: &str,
    user_ids: &[String],
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let row = touch::<D>(&mut tx, team_id, now).await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    for chunk in user_ids.chunks(ids_per_statement::<D>(1)) {
        let mut q = Query::<D>::new("DELETE FROM team_members WHERE team_id = ");
        q.bind(team_id).push(" AND ").is_in("user_id", chunk).push(" RETURNING user_id");
        let removed: Vec<(String,)> = q.all(&mut tx).await?;
        changes.extend(removed.into_iter().map(|(id,)| (EntityKind::User, id)));
    }
    let rec = one_with_members::<D>(&mut tx, row).await?;
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}
