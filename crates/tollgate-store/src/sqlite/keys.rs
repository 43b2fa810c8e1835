//! Virtual keys on SQLite.

use chrono::SubsecRound;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;
use sqlx::{QueryBuilder, SqliteConnection, SqlitePool};

use super::{IDS_PER_STATEMENT, begin_write, changes, push_ids, teams, ts, ts_opt, users};
use crate::patch::{self, key_not_found, key_write_error, object_or_empty, page_window};
use crate::rows::{KeyRow, key_columns};
use crate::{EntityKind, KeyFilter, KeyPatch, KeyRecord, NewKey, StoreError};

pub(super) async fn create(pool: &SqlitePool, key: NewKey) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let (limits, reset_at) = patch::new_limits(key.limits, now)?;
    let mut tx = begin_write(pool).await?;
    let mut changes = Vec::new();
    if let Some(team_id) = &key.team_id {
        teams::require(&mut tx, team_id).await?;
    }
    if let Some(user_id) = &key.user_id {
        changes.extend(users::ensure(&mut tx, std::slice::from_ref(user_id), now).await?);
    }
    let row: KeyRow = sqlx::query_as(concat!(
        "INSERT INTO virtual_keys (",
        key_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?14, ?15, ?16, \
         ?17, ?17) RETURNING ",
        key_columns!()
    ))
    .bind(&key.token_hash)
    .bind(&key.key_name)
    .bind(&key.key_alias)
    .bind(&key.user_id)
    .bind(&key.team_id)
    .bind(Json(&key.models))
    .bind(limits.max_budget)
    .bind(&limits.budget_duration)
    .bind(limits.rpm_limit)
    .bind(limits.tpm_limit)
    .bind(limits.max_parallel_requests)
    .bind(ts_opt(reset_at))
    .bind(ts_opt(key.expires.map(|t| t.trunc_subsecs(6))))
    .bind(key.blocked)
    .bind(object_or_empty(key.metadata))
    .bind(object_or_empty(key.permissions))
    .bind(ts(now))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| key_write_error(e, key.key_alias.as_deref()))?;
    changes.push((EntityKind::Key, row.token_hash.clone()));
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn get(
    pool: &SqlitePool,
    token_hash: &str,
) -> Result<Option<KeyRecord>, StoreError> {
    let row: Option<KeyRow> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM virtual_keys WHERE token_hash = ?1"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Reads the key inside the write transaction, applies the patch and writes the whole row
/// back.
pub(super) async fn update(
    pool: &SqlitePool,
    token_hash: &str,
    patch: KeyPatch,
) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row: Option<KeyRow> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM virtual_keys WHERE token_hash = ?1"
    ))
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let mut rec: KeyRecord = row.ok_or_else(key_not_found)?.into();
    let (old_user, old_team) = (rec.user_id.clone(), rec.team_id.clone());
    patch::apply_key_patch(&mut rec, patch, now)?;
    let mut changes = Vec::new();
    if rec.team_id != old_team
        && let Some(team_id) = &rec.team_id
    {
        teams::require(&mut tx, team_id).await?;
    }
    if rec.user_id != old_user
        && let Some(user_id) = &rec.user_id
    {
        changes.extend(users::ensure(&mut tx, std::slice::from_ref(user_id), now).await?);
    }
    let row = write(&mut tx, &rec).await?;
    changes.push((EntityKind::Key, rec.token_hash.clone()));
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Writes every mutable column of a stored key.
async fn write(conn: &mut SqliteConnection, rec: &KeyRecord) -> Result<KeyRow, StoreError> {
    sqlx::query_as(concat!(
        "UPDATE virtual_keys SET key_alias = ?2, user_id = ?3, team_id = ?4, models = ?5, \
         max_budget = ?6, budget_duration = ?7, rpm_limit = ?8, tpm_limit = ?9, \
         max_parallel_requests = ?10, spend = ?11, budget_reset_at = ?12, expires = ?13, \
         blocked = ?14, metadata = ?15, permissions = ?16, updated_at = ?17 \
         WHERE token_hash = ?1 RETURNING ",
        key_columns!()
    ))
    .bind(&rec.token_hash)
    .bind(&rec.key_alias)
    .bind(&rec.user_id)
    .bind(&rec.team_id)
    .bind(Json(&rec.models))
    .bind(rec.limits.max_budget)
    .bind(&rec.limits.budget_duration)
    .bind(rec.limits.rpm_limit)
    .bind(rec.limits.tpm_limit)
    .bind(rec.limits.max_parallel_requests)
    .bind(rec.spend)
    .bind(ts_opt(rec.budget_reset_at))
    .bind(ts_opt(rec.expires))
    .bind(rec.blocked)
    .bind(&rec.metadata)
    .bind(&rec.permissions)
    .bind(ts(rec.updated_at))
    .fetch_one(conn)
    .await
    .map_err(|e| key_write_error(e, rec.key_alias.as_deref()))
}

pub(super) async fn regenerate(
    pool: &SqlitePool,
    old_hash: &str,
    new_hash: &str,
    new_key_name: &str,
) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let row: Option<KeyRow> = sqlx::query_as(concat!(
        "UPDATE virtual_keys SET token_hash = ?2, key_name = ?3, updated_at = ?4 \
         WHERE token_hash = ?1 RETURNING ",
        key_columns!()
    ))
    .bind(old_hash)
    .bind(new_hash)
    .bind(new_key_name)
    .bind(ts(now))
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| key_write_error(e, None))?;
    let row = row.ok_or_else(key_not_found)?;
    let changes = [(EntityKind::Key, old_hash.to_owned()), (EntityKind::Key, new_hash.to_owned())];
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn delete(pool: &SqlitePool, token_hashes: &[String]) -> Result<u64, StoreError> {
    if token_hashes.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let mut tx = begin_write(pool).await?;
    let mut changes = Vec::new();
    for chunk in token_hashes.chunks(IDS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("DELETE FROM virtual_keys WHERE token_hash IN ");
        push_ids(&mut qb, chunk);
        qb.push(" RETURNING token_hash");
        let deleted: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
        changes.extend(deleted.into_iter().map(|h| (EntityKind::Key, h)));
    }
    changes::append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(changes.len() as u64)
}

pub(super) async fn list(
    pool: &SqlitePool,
    filter: KeyFilter,
) -> Result<Vec<KeyRecord>, StoreError> {
    let (limit, offset) = page_window(filter.page, filter.size);
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new(concat!("SELECT ", key_columns!(), " FROM virtual_keys WHERE TRUE"));
    if let Some(user_id) = filter.user_id {
        qb.push(" AND user_id = ").push_bind(user_id);
    }
    if let Some(team_id) = filter.team_id {
        qb.push(" AND team_id = ").push_bind(team_id);
    }
    if let Some(alias) = filter.key_alias {
        qb.push(" AND key_alias = ").push_bind(alias);
    }
    qb.push(" ORDER BY created_at DESC, token_hash DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let rows: Vec<KeyRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
