//! Users on SQLite.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;
use sqlx::{QueryBuilder, SqliteConnection, SqliteExecutor, SqlitePool};

use super::{IDS_PER_STATEMENT, begin_write, changes, push_ids, ts, ts_opt};
use crate::patch::{self, object_or_empty, page_window};
use crate::rows::{MemberRow, UserRow, user_columns};
use crate::{EntityKind, NewUser, Page, StoreError, UserPatch, UserRecord};

/// Creates the users that do not exist yet, bare (LiteLLM does the same when a key or team
/// names an unknown user). Returns the change-feed entries for the ones created.
pub(super) async fn ensure(
    conn: &mut SqliteConnection,
    user_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(EntityKind, String)>, StoreError> {
    let now = ts(now);
    let mut changes = Vec::new();
    // 3 binds per row: 10,000 rows stay under SQLite's 32,766.
    for chunk in user_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO users (user_id, created_at, updated_at) ");
        qb.push_values(chunk, |mut row, id| {
            row.push_bind(id.as_str()).push_bind(now.as_str()).push_bind(now.as_str());
        });
        qb.push(" ON CONFLICT (user_id) DO NOTHING RETURNING user_id");
        let created: Vec<String> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        changes.extend(created.into_iter().map(|id| (EntityKind::User, id)));
    }
    Ok(changes)
}

/// Each listed user's teams, by user id.
async fn teams_of(
    conn: &mut SqliteConnection,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut teams: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in user_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT team_id, user_id, role FROM team_members WHERE user_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" ORDER BY team_id");
        let members: Vec<MemberRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for m in members {
            teams.entry(m.user_id).or_default().push(m.team_id);
        }
    }
    Ok(teams)
}

/// Fills in each user's teams.
async fn with_teams(
    conn: &mut SqliteConnection,
    rows: Vec<UserRow>,
) -> Result<Vec<UserRecord>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.user_id.clone()).collect();
    let mut teams = teams_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let user_teams = teams.remove(&r.user_id).unwrap_or_default();
            r.into_record(user_teams)
        })
        .collect())
}

async fn one_with_teams(
    conn: &mut SqliteConnection,
    row: UserRow,
) -> Result<UserRecord, StoreError> {
    let mut teams = teams_of(conn, std::slice::from_ref(&row.user_id)).await?;
    let user_teams = teams.remove(&row.user_id).unwrap_or_default();
    Ok(row.into_record(user_teams))
}

async fn select<'e>(
    ex: impl SqliteExecutor<'e>,
    user_id: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = ?1"))
        .bind(user_id)
        .fetch_optional(ex)
        .await?)
}

pub(super) async fn create(pool: &SqlitePool, user: NewUser) -> Result<UserRecord, StoreError> {
    if user.user_id.is_empty() {
        return Err(StoreError::Invalid("user_id is empty".to_owned()));
    }
    let now = patch::now();
    let (limits, reset_at) = patch::new_limits(user.limits, now)?;
    let mut tx = begin_write(pool).await?;
    let row: UserRow = sqlx::query_as(concat!(
        "INSERT INTO users (",
        user_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?12, ?12) RETURNING ",
        user_columns!()
    ))
    .bind(&user.user_id)
    .bind(&user.user_email)
    .bind(&user.user_role)
    .bind(Json(&user.models))
    .bind(limits.max_budget)
    .bind(&limits.budget_duration)
    .bind(limits.rpm_limit)
    .bind(limits.tpm_limit)
    .bind(limits.max_parallel_requests)
    .bind(ts_opt(reset_at))
    .bind(object_or_empty(user.metadata))
    .bind(ts(now))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if patch::is_unique_violation(&e) {
            StoreError::Conflict(format!("user `{}` already exists", user.user_id))
        } else {
            e.into()
        }
    })?;
    changes::append(&mut tx, &[(EntityKind::User, user.user_id.clone())], now).await?;
    tx.commit().await?;
    Ok(row.into_record(Vec::new()))
}

pub(super) async fn get(
    pool: &SqlitePool,
    user_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    match select(&mut *conn, user_id).await? {
        Some(row) => Ok(Some(one_with_teams(&mut conn, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn update(
    pool: &SqlitePool,
    user_id: &str,
    patch: UserPatch,
) -> Result<UserRecord, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row = select(&mut *tx, user_id).await?.ok_or_else(|| not_found(user_id))?;
    let mut rec = row.into_record(Vec::new());
    patch::apply_user_patch(&mut rec, patch, now)?;
    let row: UserRow = sqlx::query_as(concat!(
        "UPDATE users SET user_email = ?2, user_role = ?3, models = ?4, max_budget = ?5, \
         budget_duration = ?6, rpm_limit = ?7, tpm_limit = ?8, max_parallel_requests = ?9, \
         spend = ?10, budget_reset_at = ?11, metadata = ?12, updated_at = ?13 \
         WHERE user_id = ?1 RETURNING ",
        user_columns!()
    ))
    .bind(&rec.user_id)
    .bind(&rec.user_email)
    .bind(&rec.user_role)
    .bind(Json(&rec.models))
    .bind(rec.limits.max_budget)
    .bind(&rec.limits.budget_duration)
    .bind(rec.limits.rpm_limit)
    .bind(rec.limits.tpm_limit)
    .bind(rec.limits.max_parallel_requests)
    .bind(rec.spend)
    .bind(ts_opt(rec.budget_reset_at))
    .bind(&rec.metadata)
    .bind(ts(rec.updated_at))
    .fetch_one(&mut *tx)
    .await?;
    let rec = one_with_teams(&mut tx, row).await?;
    changes::append(&mut tx, &[(EntityKind::User, rec.user_id.clone())], now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deletes users, their memberships, and their ownership of keys (the keys stay).
pub(super) async fn delete(pool: &SqlitePool, user_ids: &[String]) -> Result<u64, StoreError> {
    if user_ids.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let now_text = ts(now);
    let mut tx = begin_write(pool).await?;
    let (mut keys, mut teams, mut users) = (Vec::new(), BTreeSet::new(), Vec::new());
    for chunk in user_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE virtual_keys SET user_id = NULL, updated_at = ");
        qb.push_bind(now_text.as_str()).push(" WHERE user_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING token_hash");
        keys.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);

        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("DELETE FROM team_members WHERE user_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING team_id");
        teams.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);

        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM users WHERE user_id IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING user_id");
        users.extend(qb.build_query_scalar::<String>().fetch_all(&mut *tx).await?);
    }
    let deleted = users.len() as u64;
    let changes: Vec<_> = keys
        .into_iter()
        .map(|id| (EntityKind::Key, id))
        .chain(teams.into_iter().map(|id| (EntityKind::Team, id)))
        .chain(users.into_iter().map(|id| (EntityKind::User, id)))
        .collect();
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn list(pool: &SqlitePool, page: Page) -> Result<Vec<UserRecord>, StoreError> {
    let (limit, offset) = page_window(page.page, page.size);
    let mut conn = pool.acquire().await?;
    let rows: Vec<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users ORDER BY created_at, user_id LIMIT ?1 OFFSET ?2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    with_teams(&mut conn, rows).await
}

fn not_found(user_id: &str) -> StoreError {
    StoreError::NotFound { kind: "user", id: user_id.to_owned() }
}
