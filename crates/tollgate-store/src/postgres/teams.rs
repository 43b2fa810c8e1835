//! Teams and memberships on PostgreSQL.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

use super::{changes, users};
use crate::patch::{self, object_or_empty, page_window, unique_members};
use crate::rows::{MemberRow, TeamRow, team_columns};
use crate::{EntityKind, NewTeam, Page, StoreError, TeamMember, TeamPatch, TeamRecord};

/// `NotFound` unless the team exists (a key may only name an existing team).
pub(super) async fn require(conn: &mut PgConnection, team_id: &str) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM teams WHERE team_id = $1)")
        .bind(team_id)
        .fetch_one(conn)
        .await?;
    if exists { Ok(()) } else { Err(not_found(team_id)) }
}

fn not_found(team_id: &str) -> StoreError {
    StoreError::NotFound { kind: "team", id: team_id.to_owned() }
}

/// Each listed team's members, by team id.
async fn members_of<'e>(
    ex: impl PgExecutor<'e>,
    team_ids: &[&str],
) -> Result<HashMap<String, Vec<TeamMember>>, StoreError> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT team_id, user_id, role FROM team_members WHERE team_id = ANY($1) \
         ORDER BY user_id",
    )
    .bind(team_ids)
    .fetch_all(ex)
    .await?;
    let mut members: HashMap<String, Vec<TeamMember>> = HashMap::new();
    for m in rows {
        members.entry(m.team_id).or_default().push(TeamMember { user_id: m.user_id, role: m.role });
    }
    Ok(members)
}

async fn one_with_members<'e>(
    ex: impl PgExecutor<'e>,
    row: TeamRow,
) -> Result<TeamRecord, StoreError> {
    let mut members = members_of(ex, &[row.team_id.as_str()]).await?;
    let team_members = members.remove(&row.team_id).unwrap_or_default();
    Ok(row.into_record(team_members))
}

/// Creates missing users bare, then adds or re-roles the memberships. Returns the change-feed
/// entries: one per member (created, or their `teams` changed).
async fn upsert_members(
    conn: &mut PgConnection,
    team_id: &str,
    members: &[TeamMember],
    now: DateTime<Utc>,
) -> Result<Vec<(EntityKind, String)>, StoreError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
    users::ensure(&mut *conn, &ids, now).await?;
    // 4 binds per row: chunks of 10,000 stay far below PostgreSQL's 65,535.
    for chunk in members.chunks(10_000) {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("INSERT INTO team_members (team_id, user_id, role, added_at) ");
        qb.push_values(chunk, |mut row, m| {
            row.push_bind(team_id).push_bind(&m.user_id).push_bind(&m.role).push_bind(now);
        });
        qb.push(" ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(ids.into_iter().map(|id| (EntityKind::User, id)).collect())
}

pub(super) async fn create(pool: &PgPool, team: NewTeam) -> Result<TeamRecord, StoreError> {
    if team.team_id.is_empty() {
        return Err(StoreError::Invalid("team_id is empty".to_owned()));
    }
    let members = unique_members(&team.members)?;
    let now = patch::now();
    let (limits, reset_at) = patch::new_limits(team.limits, now)?;
    let mut tx = pool.begin().await?;
    let row: TeamRow = sqlx::query_as(concat!(
        "INSERT INTO teams (",
        team_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, FALSE, $10, $11, $11) RETURNING ",
        team_columns!()
    ))
    .bind(&team.team_id)
    .bind(&team.team_alias)
    .bind(Json(&team.models))
    .bind(limits.max_budget)
    .bind(&limits.budget_duration)
    .bind(limits.rpm_limit)
    .bind(limits.tpm_limit)
    .bind(limits.max_parallel_requests)
    .bind(reset_at)
    .bind(object_or_empty(team.metadata))
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if patch::is_unique_violation(&e) {
            StoreError::Conflict(format!("team `{}` already exists", team.team_id))
        } else {
            e.into()
        }
    })?;
    let mut changes = vec![(EntityKind::Team, team.team_id.clone())];
    changes.extend(upsert_members(&mut tx, &team.team_id, &members, now).await?);
    let rec = one_with_members(&mut *tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn get(pool: &PgPool, team_id: &str) -> Result<Option<TeamRecord>, StoreError> {
    let row: Option<TeamRow> =
        sqlx::query_as(concat!("SELECT ", team_columns!(), " FROM teams WHERE team_id = $1"))
            .bind(team_id)
            .fetch_optional(pool)
            .await?;
    match row {
        Some(row) => Ok(Some(one_with_members(pool, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn update(
    pool: &PgPool,
    team_id: &str,
    patch: TeamPatch,
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = pool.begin().await?;
    let row: Option<TeamRow> = sqlx::query_as(concat!(
        "SELECT ",
        team_columns!(),
        " FROM teams WHERE team_id = $1 FOR UPDATE"
    ))
    .bind(team_id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut rec = row.ok_or_else(|| not_found(team_id))?.into_record(Vec::new());
    patch::apply_team_patch(&mut rec, patch, now)?;
    let row: TeamRow = sqlx::query_as(concat!(
        "UPDATE teams SET team_alias = $2, models = $3, max_budget = $4, budget_duration = $5, \
         rpm_limit = $6, tpm_limit = $7, max_parallel_requests = $8, spend = $9, \
         budget_reset_at = $10, blocked = $11, metadata = $12, updated_at = $13 \
         WHERE team_id = $1 RETURNING ",
        team_columns!()
    ))
    .bind(&rec.team_id)
    .bind(&rec.team_alias)
    .bind(Json(&rec.models))
    .bind(rec.limits.max_budget)
    .bind(&rec.limits.budget_duration)
    .bind(rec.limits.rpm_limit)
    .bind(rec.limits.tpm_limit)
    .bind(rec.limits.max_parallel_requests)
    .bind(rec.spend)
    .bind(rec.budget_reset_at)
    .bind(rec.blocked)
    .bind(&rec.metadata)
    .bind(rec.updated_at)
    .fetch_one(&mut *tx)
    .await?;
    let rec = one_with_members(&mut *tx, row).await?;
    changes::append(&mut tx, &[(EntityKind::Team, rec.team_id.clone())], now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deletes teams and their memberships; their keys stay but leave the team.
pub(super) async fn delete(pool: &PgPool, team_ids: &[String]) -> Result<u64, StoreError> {
    if team_ids.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let mut tx = pool.begin().await?;
    let keys: Vec<String> = sqlx::query_scalar(
        "UPDATE virtual_keys SET team_id = NULL, updated_at = $2 WHERE team_id = ANY($1) \
         RETURNING token_hash",
    )
    .bind(team_ids)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let members: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "DELETE FROM team_members WHERE team_id = ANY($1) RETURNING user_id",
    )
    .bind(team_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let teams: Vec<String> =
        sqlx::query_scalar("DELETE FROM teams WHERE team_id = ANY($1) RETURNING team_id")
            .bind(team_ids)
            .fetch_all(&mut *tx)
            .await?;
    let deleted = teams.len() as u64;
    let changes: Vec<_> = keys
        .into_iter()
        .map(|id| (EntityKind::Key, id))
        .chain(members.into_iter().map(|id| (EntityKind::User, id)))
        .chain(teams.into_iter().map(|id| (EntityKind::Team, id)))
        .collect();
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn list(pool: &PgPool, page: Page) -> Result<Vec<TeamRecord>, StoreError> {
    let (limit, offset) = page_window(page.page, page.size);
    let rows: Vec<TeamRow> = sqlx::query_as(concat!(
        "SELECT ",
        team_columns!(),
        " FROM teams ORDER BY created_at, team_id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.team_id.as_str()).collect();
    let mut members = members_of(pool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let team_members = members.remove(&r.team_id).unwrap_or_default();
            r.into_record(team_members)
        })
        .collect())
}

/// Marks the team changed and locks it for the rest of the transaction; `NotFound` if missing.
async fn touch(
    conn: &mut PgConnection,
    team_id: &str,
    now: DateTime<Utc>,
) -> Result<TeamRow, StoreError> {
    let row: Option<TeamRow> = sqlx::query_as(concat!(
        "UPDATE teams SET updated_at = $2 WHERE team_id = $1 RETURNING ",
        team_columns!()
    ))
    .bind(team_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| not_found(team_id))
}

pub(super) async fn add_members(
    pool: &PgPool,
    team_id: &str,
    members: &[TeamMember],
) -> Result<TeamRecord, StoreError> {
    let members = unique_members(members)?;
    let now = patch::now();
    let mut tx = pool.begin().await?;
    let row = touch(&mut tx, team_id, now).await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    changes.extend(upsert_members(&mut tx, team_id, &members, now).await?);
    let rec = one_with_members(&mut *tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn remove_members(
    pool: &PgPool,
    team_id: &str,
    user_ids: &[String],
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = pool.begin().await?;
    let row = touch(&mut tx, team_id, now).await?;
    let removed: Vec<String> = sqlx::query_scalar(
        "DELETE FROM team_members WHERE team_id = $1 AND user_id = ANY($2) RETURNING user_id",
    )
    .bind(team_id)
    .bind(user_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    changes.extend(removed.into_iter().map(|id| (EntityKind::User, id)));
    let rec = one_with_members(&mut *tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}
