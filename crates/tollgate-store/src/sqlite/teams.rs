//! Teams and memberships on SQLite.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;
use sqlx::{QueryBuilder, SqliteConnection, SqlitePool};

use super::{IDS_PER_STATEMENT, begin_write, changes, push_ids, ts, ts_opt, users};
use crate::patch::{self, object_or_empty, page_window, unique_members};
use crate::rows::{MemberRow, TeamRow, team_columns};
use crate::{EntityKind, NewTeam, Page, StoreError, TeamMember, TeamPatch, TeamRecord};

/// `NotFound` unless the team exists (a key may only name an existing team).
pub(super) async fn require(conn: &mut SqliteConnection, team_id: &str) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM teams WHERE team_id = ?1)")
        .bind(team_id)
        .fetch_one(conn)
        .await?;
    if exists { Ok(()) } else { Err(not_found(team_id)) }
}

fn not_found(team_id: &str) -> StoreError {
    StoreError::NotFound { kind: "team", id: team_id.to_owned() }
}

/// Each listed team's members, by team id.
async fn members_of(
    conn: &mut SqliteConnection,
    team_ids: &[String],
) -> Result<HashMap<String, Vec<TeamMember>>, StoreError> {
    let mut members: HashMap<String, Vec<TeamMember>> = HashMap::new();
    for chunk in team_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT team_id, user_id, role FROM team_members WHERE team_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" ORDER BY user_id");
        let rows: Vec<MemberRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for m in rows {
            members
                .entry(m.team_id)
                .or_default()
                .push(TeamMember { user_id: m.user_id, role: m.role });
        }
    }
    Ok(members)
}

async fn one_with_members(
    conn: &mut SqliteConnection,
    row: TeamRow,
) -> Result<TeamRecord, StoreError> {
    let mut members = members_of(conn, std::slice::from_ref(&row.team_id)).await?;
    let team_members = members.remove(&row.team_id).unwrap_or_default();
    Ok(row.into_record(team_members))
}

/// Creates missing users bare, then adds or re-roles the memberships. Returns the change-feed
/// entries: one per member (created, or their `teams` changed).
async fn upsert_members(
    conn: &mut SqliteConnection,
    team_id: &str,
    members: &[TeamMember],
    now: DateTime<Utc>,
) -> Result<Vec<(EntityKind, String)>, StoreError> {
    let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
    users::ensure(&mut *conn, &ids, now).await?;
    let now = ts(now);
    // 4 binds per row: 5,000 rows stay under SQLite's 32,766.
    for chunk in members.chunks(5_000) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO team_members (team_id, user_id, role, added_at) ");
        qb.push_values(chunk, |mut row, m| {
            row.push_bind(team_id)
                .push_bind(m.user_id.as_str())
                .push_bind(m.role.as_str())
                .push_bind(now.as_str());
        });
        qb.push(" ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(ids.into_iter().map(|id| (EntityKind::User, id)).collect())
}

pub(super) async fn create(pool: &SqlitePool, team: NewTeam) -> Result<TeamRecord, StoreError> {
    if team.team_id.is_empty() {
        return Err(StoreError::Invalid("team_id is empty".to_owned()));
    }
    let members = unique_members(&team.members)?;
    let now = patch::now();
    let (limits, reset_at) = patch::new_limits(team.limits, now)?;
    let mut tx = begin_write(pool).await?;
    let row: TeamRow = sqlx::query_as(concat!(
        "INSERT INTO teams (",
        team_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, 0, ?10, ?11, ?11) RETURNING ",
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
    .bind(ts_opt(reset_at))
    .bind(object_or_empty(team.metadata))
    .bind(ts(now))
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
    let rec = one_with_members(&mut tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn get(
    pool: &SqlitePool,
    team_id: &str,
) -> Result<Option<TeamRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let row: Option<TeamRow> =
        sqlx::query_as(concat!("SELECT ", team_columns!(), " FROM teams WHERE team_id = ?1"))
            .bind(team_id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some(row) => Ok(Some(one_with_members(&mut conn, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn update(
    pool: &SqlitePool,
    team_id: &str,
    patch: TeamPatch,
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row: Option<TeamRow> =
        sqlx::query_as(concat!("SELECT ", team_columns!(), " FROM teams WHERE team_id = ?1"))
            .bind(team_id)
            .fetch_optional(&mut *tx)
            .await?;
    let mut rec = row.ok_or_else(|| not_found(team_id))?.into_record(Vec::new());
    patch::apply_team_patch(&mut rec, patch, now)?;
    let row: TeamRow = sqlx::query_as(concat!(
        "UPDATE teams SET team_alias = ?2, models = ?3, max_budget = ?4, budget_duration = ?5, \
         rpm_limit = ?6, tpm_limit = ?7, max_parallel_requests = ?8, spend = ?9, \
         budget_reset_at = ?10, blocked = ?11, metadata = ?12, updated_at = ?13 \
         WHERE team_id = ?1 RETURNING ",
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
    .bind(ts_opt(rec.budget_reset_at))
    .bind(rec.blocked)
    .bind(&rec.metadata)
    .bind(ts(rec.updated_at))
    .fetch_one(&mut *tx)
    .await?;
    let rec = one_with_members(&mut tx, row).await?;
    changes::append(&mut tx, &[(EntityKind::Team, rec.team_id.clone())], now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deletes teams and their memberships; their keys stay but leave the team.
pub(super) async fn delete(pool: &SqlitePool, team_ids: &[String]) -> Result<u64, StoreError> {
    if team_ids.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let now_text = ts(now);
    let mut tx = begin_write(pool).await?;
    let (mut keys, mut members, mut teams) = (Vec::new(), BTreeSet::new(), Vec::new());
    for chunk in team_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE virtual_keys SET team_id = NULL, updated_at = ");
        qb.push_bind(now_text.as_str()).push(" WHERE team_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING token_hash");
        keys.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);

        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("DELETE FROM team_members WHERE team_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING user_id");
        members.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);

        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM teams WHERE team_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING team_id");
        teams.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);
    }
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

pub(super) async fn list(pool: &SqlitePool, page: Page) -> Result<Vec<TeamRecord>, StoreError> {
    let (limit, offset) = page_window(page.page, page.size);
    let mut conn = pool.acquire().await?;
    let rows: Vec<TeamRow> = sqlx::query_as(concat!(
        "SELECT ",
        team_columns!(),
        " FROM teams ORDER BY created_at, team_id LIMIT ?1 OFFSET ?2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.team_id.clone()).collect();
    let mut members = members_of(&mut conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let team_members = members.remove(&r.team_id).unwrap_or_default();
            r.into_record(team_members)
        })
        .collect())
}

/// Marks the team changed; `NotFound` if missing.
async fn touch(
    conn: &mut SqliteConnection,
    team_id: &str,
    now: DateTime<Utc>,
) -> Result<TeamRow, StoreError> {
    let row: Option<TeamRow> = sqlx::query_as(concat!(
        "UPDATE teams SET updated_at = ?2 WHERE team_id = ?1 RETURNING ",
        team_columns!()
    ))
    .bind(team_id)
    .bind(ts(now))
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| not_found(team_id))
}

pub(super) async fn add_members(
    pool: &SqlitePool,
    team_id: &str,
    members: &[TeamMember],
) -> Result<TeamRecord, StoreError> {
    let members = unique_members(members)?;
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row = touch(&mut tx, team_id, now).await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    changes.extend(upsert_members(&mut tx, team_id, &members, now).await?);
    let rec = one_with_members(&mut tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}

pub(super) async fn remove_members(
    pool: &SqlitePool,
    team_id: &str,
    user_ids: &[String],
) -> Result<TeamRecord, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row = touch(&mut tx, team_id, now).await?;
    let mut changes = vec![(EntityKind::Team, team_id.to_owned())];
    for chunk in user_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("DELETE FROM team_members WHERE team_id = ");
        qb.push_bind(team_id).push(" AND user_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING user_id");
        let removed: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
        changes.extend(removed.into_iter().map(|id| (EntityKind::User, id)));
    }
    let rec = one_with_members(&mut tx, row).await?;
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(rec)
}
