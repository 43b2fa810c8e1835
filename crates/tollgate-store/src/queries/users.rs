//! Users: their rows, and the teams they belong to (read from the memberships teams keep).

use std::collections::{BTreeSet, HashMap};

use sqlx::Pool;

use super::{changes, limits_set, paging, sessions, taken, ties};
use crate::patch::{self, object_or_empty};
use crate::rows::{USER_COLUMNS, UserRow};
use crate::sql::{Conn, Dialect, Param, Query, ids_per_statement};
use crate::{EntityKind, ListOrder, NewUser, Page, StoreError, UserPatch, UserRecord};

fn not_found(user_id: &str) -> StoreError {
    StoreError::NotFound { kind: "user", id: user_id.to_owned() }
}

/// Each listed user's teams, by user id.
async fn teams_of<D: Dialect>(
    conn: &mut Conn<D>,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut teams: HashMap<String, Vec<String>> = HashMap::new();
    for m in ties::memberships::<D>(conn, "user_id", user_ids, "team_id").await? {
        teams.entry(m.user_id).or_default().push(m.team_id);
    }
    Ok(teams)
}

/// The records of `rows`, each with its teams.
async fn with_teams<D: Dialect>(
    conn: &mut Conn<D>,
    rows: Vec<UserRow>,
) -> Result<Vec<UserRecord>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.user_id.clone()).collect();
    let mut teams = teams_of::<D>(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let user_teams = teams.remove(&r.user_id).unwrap_or_default();
            r.into_record(user_teams)
        })
        .collect())
}

async fn one_with_teams<D: Dialect>(
    conn: &mut Conn<D>,
    row: UserRow,
) -> Result<UserRecord, StoreError> {
    let mut records = with_teams::<D>(conn, vec![row]).await?;
    records.pop().ok_or(StoreError::Database(sqlx::Error::RowNotFound))
}

fn select<'a, D: Dialect>(tail: &str) -> Query<'a, D> {
    super::select(USER_COLUMNS, "users", tail)
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    user: NewUser,
) -> Result<UserRecord, StoreError> {
    if user.user_id.is_empty() {
        return Err(StoreError::Invalid("user_id is empty".to_owned()));
    }
    let now = patch::now();
    let (limits, resets) = patch::new_limits(user.limits, now)?;
    let metadata = object_or_empty(user.metadata);
    let mut tx = D::begin_write(pool).await?;
    let q = super::insert::<D, 18>(
        "users",
        USER_COLUMNS,
        [
            Param::from(&user.user_id),
            Param::from(&user.user_email),
            Param::from(&user.user_role),
            Param::from(&user.models),
            Param::from(limits.max_budget),
            Param::from(&limits.budget_duration),
            Param::from(limits.rpm_limit),
            Param::from(limits.tpm_limit),
            Param::from(limits.max_parallel_requests),
            Param::Real(0.0),
            Param::from(resets.budget),
            Param::from(&metadata),
            Param::from(now),
            Param::from(now),
            Param::from(limits.max_premium_requests),
            Param::from(&limits.premium_budget_duration),
            Param::Real(0.0),
            Param::from(resets.premium),
        ],
    );
    let row: UserRow =
        q.one(&mut tx).await.map_err(|e| taken(e, || format!("user `{}`", user.user_id)))?;
    changes::append::<D>(&mut tx, &[(EntityKind::User, user.user_id.clone())], now).await?;
    tx.commit().await?;
    Ok(row.into_record(Vec::new()))
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    user_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = select::<D>(" WHERE user_id = ");
    q.bind(user_id);
    let row: Option<UserRow> = q.optional(&mut conn).await?;
    match row {
        Some(row) => Ok(Some(one_with_teams::<D>(&mut conn, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn update<D: Dialect>(
    pool: &Pool<D::Db>,
    user_id: &str,
    patch: UserPatch,
) -> Result<UserRecord, StoreError> {
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let mut q = select::<D>(" WHERE user_id = ");
    q.bind(user_id).push(D::LOCK_ROWS);
    let row: Option<UserRow> = q.optional(&mut tx).await?;
    let mut rec = row.ok_or_else(|| not_found(user_id))?.into_record(Vec::new());
    patch::apply_user_patch(&mut rec, patch, now)?;
    let mut q = Query::<D>::new("UPDATE users SET user_email = ");
    q.bind(&rec.user_email).and(", user_role = ", &rec.user_role).and(", models = ", &rec.models);
    limits_set(&mut q, &rec.limits);
    super::stamp_written(&mut q, &rec.limits, rec.updated_at);
    q.and(", spend = ", rec.spend)
        .and(", budget_reset_at = ", rec.budget_reset_at)
        .and(", premium_spend = ", rec.premium_spend)
        .and(", premium_budget_reset_at = ", rec.premium_budget_reset_at)
        .and(", metadata = ", &rec.metadata)
        .and(", updated_at = ", rec.updated_at)
        .and(" WHERE user_id = ", &rec.user_id)
        .push(" RETURNING ")
        .push(USER_COLUMNS);
    let row: UserRow = q.one(&mut tx).await?;
    let rec = one_with_teams::<D>(&mut tx, row).await?;
    changes::append::<D>(&mut tx, &[(EntityKind::User, rec.user_id.clone())], now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deletes users, their memberships, UI sessions and passwords, and their ownership of keys
/// (the keys stay).
pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    user_ids: &[String],
) -> Result<u64, StoreError> {
    if user_ids.is_empty() {
        return Ok(0);
    }
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let (mut keys, mut teams, mut users) = (Vec::new(), BTreeSet::new(), Vec::new());
    for chunk in user_ids.chunks(ids_per_statement::<D>(1)) {
        keys.extend(ties::release::<D>(&mut tx, "user_id", chunk, now).await?);
        teams.extend(ties::leave::<D>(&mut tx, chunk).await?);
        let mut q = Query::<D>::new("DELETE FROM users WHERE ");
        q.is_in("user_id", chunk).push(" RETURNING user_id");
        users.extend(q.all::<(String,)>(&mut tx).await?.into_iter().map(|(id,)| id));
        // After the users' rows, whose locks make a concurrent `set_password` or
        // `create_session` for them wait, then find them gone.
        sessions::forget_users::<D>(&mut tx, chunk).await?;
    }
    let deleted = users.len() as u64;
    let changes: Vec<_> = keys
        .into_iter()
        .map(|id| (EntityKind::Key, id))
        .chain(teams.into_iter().map(|id| (EntityKind::Team, id)))
        .chain(users.into_iter().map(|id| (EntityKind::User, id)))
        .collect();
    changes::append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn list<D: Dialect>(
    pool: &Pool<D::Db>,
    page: Page,
) -> Result<Vec<UserRecord>, StoreError> {
    let pattern = page.search.as_deref().map(paging::contains);
    let mut q = select::<D>(" WHERE TRUE");
    if let Some(p) = &pattern {
        paging::search(&mut q, ["user_id", "user_email"], p);
    }
    let order = page.order.unwrap_or(ListOrder::Oldest);
    paging::page(&mut q, &SORTS, order, page.after.as_ref(), page.page, page.size)?;
    let mut conn = pool.acquire().await?;
    let rows: Vec<UserRow> = q.all(&mut conn).await?;
    with_teams::<D>(&mut conn, rows).await
}

/// What the user list sorts by.
const SORTS: paging::Sorts =
    paging::Sorts { created: "created_at", name: "user_id", spend: "spend", id: "user_id" };
