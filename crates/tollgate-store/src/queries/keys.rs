//! Virtual keys.

use chrono::SubsecRound;
use sqlx::Pool;

use super::{changes, limits_set, paging, ties};
use crate::patch::{self, key_not_found, key_write_error, object_or_empty};
use crate::rows::{KEY_COLUMNS, KeyRow};
use crate::sql::{Conn, Dialect, Param, Query, ids_per_statement};
use crate::{EntityKind, KeyFilter, KeyPatch, KeyRecord, ListOrder, NewKey, StoreError};

fn select<'a, D: Dialect>(where_: &str) -> Query<'a, D> {
    let mut q = super::select(KEY_COLUMNS, "virtual_keys", " WHERE ");
    q.push(where_);
    q
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    key: NewKey,
) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let (limits, resets) = patch::new_limits(key.limits, now)?;
    let mut tx = D::begin_write(pool).await?;
    let mut changes = Vec::new();
    if let Some(team_id) = &key.team_id {
        ties::require::<D>(&mut tx, team_id).await?;
    }
    if let Some(user_id) = &key.user_id {
        changes.extend(ties::ensure::<D>(&mut tx, std::slice::from_ref(user_id), now).await?);
    }
    let (metadata, permissions) = (object_or_empty(key.metadata), object_or_empty(key.permissions));
    patch::check_object_permission(&key.object_permission)?;
    let object_permission = patch::object_permission_json(&key.object_permission)?;
    let q = super::insert::<D, 24>(
        "virtual_keys",
        KEY_COLUMNS,
        [
            Param::from(&key.token_hash),
            Param::from(&key.key_name),
            Param::from(&key.key_alias),
            Param::from(&key.user_id),
            Param::from(&key.team_id),
            Param::from(&key.models),
            Param::from(limits.max_budget),
            Param::from(&limits.budget_duration),
            Param::from(limits.rpm_limit),
            Param::from(limits.tpm_limit),
            Param::from(limits.max_parallel_requests),
            Param::Real(0.0),
            Param::from(resets.budget),
            Param::from(key.expires.map(|t| t.trunc_subsecs(6))),
            Param::from(key.blocked),
            Param::from(&metadata),
            Param::from(&permissions),
            Param::from(now),
            Param::from(now),
            Param::from(limits.max_premium_requests),
            Param::from(&limits.premium_budget_duration),
            Param::Real(0.0),
            Param::from(resets.premium),
            Param::from(&object_permission),
        ],
    );
    let row: KeyRow =
        q.one(&mut tx).await.map_err(|e| key_write_error(e, key.key_alias.as_deref()))?;
    changes.push((EntityKind::Key, row.token_hash.clone()));
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    token_hash: &str,
) -> Result<Option<KeyRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = select::<D>("token_hash = ");
    q.bind(token_hash);
    let row: Option<KeyRow> = q.optional(&mut conn).await?;
    Ok(row.map(Into::into))
}

/// Reads the key under a row lock, applies the patch and writes the whole row back.
pub(super) async fn update<D: Dialect>(
    pool: &Pool<D::Db>,
    token_hash: &str,
    patch: KeyPatch,
) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = select::<D>("token_hash = ");
    q.bind(token_hash).push(D::LOCK_ROWS);
    let row: Option<KeyRow> = q.optional(&mut tx).await?;
    let mut rec: KeyRecord = row.ok_or_else(key_not_found)?.into();
    let (old_user, old_team) = (rec.user_id.clone(), rec.team_id.clone());
    patch::apply_key_patch(&mut rec, patch, now)?;
    let mut changes = Vec::new();
    if rec.team_id != old_team
        && let Some(team_id) = &rec.team_id
    {
        ties::require::<D>(&mut tx, team_id).await?;
    }
    if rec.user_id != old_user
        && let Some(user_id) = &rec.user_id
    {
        changes.extend(ties::ensure::<D>(&mut tx, std::slice::from_ref(user_id), now).await?);
    }
    let row = write::<D>(&mut tx, &rec).await?;
    changes.push((EntityKind::Key, rec.token_hash.clone()));
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Writes every mutable column of a stored key.
async fn write<D: Dialect>(conn: &mut Conn<D>, rec: &KeyRecord) -> Result<KeyRow, StoreError> {
    let object_permission = patch::object_permission_json(&rec.object_permission)?;
    let mut q = Query::<D>::new("UPDATE virtual_keys SET key_alias = ");
    q.bind(&rec.key_alias)
        .and(", user_id = ", &rec.user_id)
        .and(", team_id = ", &rec.team_id)
        .and(", models = ", &rec.models);
    limits_set(&mut q, &rec.limits);
    super::stamp_written(&mut q, &rec.limits, rec.updated_at);
    q.and(", spend = ", rec.spend)
        .and(", budget_reset_at = ", rec.budget_reset_at)
        .and(", premium_spend = ", rec.premium_spend)
        .and(", premium_budget_reset_at = ", rec.premium_budget_reset_at)
        .and(", expires = ", rec.expires)
        .and(", blocked = ", rec.blocked)
        .and(", metadata = ", &rec.metadata)
        .and(", permissions = ", &rec.permissions)
        .and(", object_permission = ", &object_permission)
        .and(", updated_at = ", rec.updated_at)
        .and(" WHERE token_hash = ", &rec.token_hash)
        .push(" RETURNING ")
        .push(KEY_COLUMNS);
    q.one(conn).await.map_err(|e| key_write_error(e, rec.key_alias.as_deref()))
}

pub(super) async fn regenerate<D: Dialect>(
    pool: &Pool<D::Db>,
    old_hash: &str,
    new_hash: &str,
    new_key_name: &str,
) -> Result<KeyRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = Query::<D>::new("UPDATE virtual_keys SET token_hash = ");
    q.bind(new_hash)
        .and(", key_name = ", new_key_name)
        .and(", updated_at = ", now)
        .and(" WHERE token_hash = ", old_hash)
        .push(" RETURNING ")
        .push(KEY_COLUMNS);
    let row: Option<KeyRow> = q.optional(&mut tx).await.map_err(|e| key_write_error(e, None))?;
    let row = row.ok_or_else(key_not_found)?;
    let changes = [(EntityKind::Key, old_hash.to_owned()), (EntityKind::Key, new_hash.to_owned())];
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    token_hashes: &[String],
) -> Result<u64, StoreError> {
    if token_hashes.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut changes = Vec::new();
    for chunk in token_hashes.chunks(ids_per_statement::<D>(0)) {
        let mut q = Query::<D>::new("DELETE FROM virtual_keys WHERE ");
        q.is_in("token_hash", chunk).push(" RETURNING token_hash");
        let deleted: Vec<(String,)> = q.all(&mut tx).await?;
        changes.extend(deleted.into_iter().map(|(h,)| (EntityKind::Key, h)));
    }
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(changes.len() as u64)
}

pub(super) async fn list<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: KeyFilter,
) -> Result<Vec<KeyRecord>, StoreError> {
    let mut q = select::<D>("TRUE");
    if let Some(user_id) = &filter.user_id {
        q.and(" AND user_id = ", user_id);
    }
    if let Some(team_id) = &filter.team_id {
        q.and(" AND team_id = ", team_id);
    }
    if let Some(alias) = &filter.key_alias {
        q.and(" AND key_alias = ", alias);
    }
    let order = filter.order.unwrap_or(ListOrder::Newest);
    paging::page(&mut q, &SORTS, order, filter.after.as_ref(), filter.page, filter.size)?;
    let mut conn = pool.acquire().await?;
    let rows: Vec<KeyRow> = q.all(&mut conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// What the key list sorts by.
const SORTS: paging::Sorts = paging::Sorts {
    created: "created_at",
    name: "COALESCE(key_alias, key_name)",
    spend: "spend",
    id: "token_hash",
};
