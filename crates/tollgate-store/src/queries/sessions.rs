//! Admin UI sessions and users' UI passwords. The UI reads a session from the store on every
//! request, so nothing here is cached and nothing feeds the change feed; password hashes live
//! in their own table so they never reach a user record.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::{select, taken};
use crate::patch;
use crate::sql::{Conn, Dialect, Param, Query};
use crate::{NewSession, SessionRecord, StoreError};

/// Columns of `ui_sessions`, in [`SessionRecord`] order.
const SESSION_COLUMNS: &str = "session_hash, subject, user_id, role, csrf_token, created_at, \
     last_seen_at, expires_at";

fn user_not_found(user_id: &str) -> StoreError {
    StoreError::NotFound { kind: "user", id: user_id.to_owned() }
}

fn check(s: &NewSession) -> Result<(), StoreError> {
    for (name, value) in [
        ("session_hash", &s.session_hash),
        ("subject", &s.subject),
        ("role", &s.role),
        ("csrf_token", &s.csrf_token),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!("a session needs a non-empty {name}")));
        }
    }
    Ok(())
}

/// Fails with `NotFound` unless the user exists, locking its row until the transaction ends
/// so a concurrent deletion waits (and then removes what this transaction wrote).
async fn lock_user<D: Dialect>(conn: &mut Conn<D>, user_id: &str) -> Result<(), StoreError> {
    let mut q = select::<D>("user_id", "users", " WHERE user_id = ");
    q.bind(user_id).push(D::LOCK_ROWS);
    let row: Option<(String,)> = q.optional(conn).await?;
    row.map(drop).ok_or_else(|| user_not_found(user_id))
}

pub(super) async fn create<D: Dialect>(
    pool: &Pool<D::Db>,
    s: NewSession,
) -> Result<SessionRecord, StoreError> {
    check(&s)?;
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    if let Some(user_id) = &s.user_id {
        lock_user::<D>(&mut tx, user_id).await?;
    }
    let q = super::insert::<D, 8>(
        "ui_sessions",
        SESSION_COLUMNS,
        [
            Param::from(&s.session_hash),
            Param::from(&s.subject),
            Param::from(&s.user_id),
            Param::from(&s.role),
            Param::from(&s.csrf_token),
            Param::from(now),
            Param::from(now),
            Param::from(s.expires_at),
        ],
    );
    let row: SessionRecord =
        q.one(&mut tx).await.map_err(|e| taken(e, || "a session with this hash".to_owned()))?;
    tx.commit().await?;
    Ok(row)
}

pub(super) async fn get<D: Dialect>(
    pool: &Pool<D::Db>,
    session_hash: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let mut q = select::<D>(SESSION_COLUMNS, "ui_sessions", " WHERE session_hash = ");
    q.bind(session_hash);
    let mut conn = pool.acquire().await?;
    Ok(q.optional(&mut conn).await?)
}

pub(super) async fn touch<D: Dialect>(
    pool: &Pool<D::Db>,
    session_hash: &str,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut q = Query::<D>::new("UPDATE ui_sessions SET last_seen_at = ");
    q.bind(last_seen_at)
        .and(", expires_at = ", expires_at)
        .and(" WHERE session_hash = ", session_hash);
    run::<D>(pool, q).await.map(|n| n > 0)
}

pub(super) async fn delete<D: Dialect>(
    pool: &Pool<D::Db>,
    session_hash: &str,
) -> Result<bool, StoreError> {
    let mut q = Query::<D>::new("DELETE FROM ui_sessions WHERE session_hash = ");
    q.bind(session_hash);
    run::<D>(pool, q).await.map(|n| n > 0)
}

pub(super) async fn delete_of_user<D: Dialect>(
    pool: &Pool<D::Db>,
    user_id: &str,
) -> Result<u64, StoreError> {
    let mut q = Query::<D>::new("DELETE FROM ui_sessions WHERE user_id = ");
    q.bind(user_id);
    run::<D>(pool, q).await
}

/// Deletes the sessions whose `expires_at` is at or before `now`.
pub(super) async fn delete_expired<D: Dialect>(
    pool: &Pool<D::Db>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut q = Query::<D>::new("DELETE FROM ui_sessions WHERE expires_at <= ");
    q.bind(now);
    run::<D>(pool, q).await
}

/// Runs one write statement in its own write transaction; how many rows it touched.
async fn run<D: Dialect>(pool: &Pool<D::Db>, q: Query<'_, D>) -> Result<u64, StoreError> {
    let mut tx = D::begin_write(pool).await?;
    let n = q.execute(&mut tx).await?;
    tx.commit().await?;
    Ok(n)
}

/// Deletes the sessions and passwords of the listed users (at most
/// [`Dialect::MAX_BINDS`]), inside the caller's transaction.
pub(super) async fn forget_users<D: Dialect>(
    conn: &mut Conn<D>,
    user_ids: &[String],
) -> Result<(), StoreError> {
    for table in ["ui_sessions", "user_passwords"] {
        let mut q = Query::<D>::new("DELETE FROM ");
        q.push(table).push(" WHERE ").is_in("user_id", user_ids);
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores, replaces or (with `None`) removes a user's password hash; `NotFound` if the user
/// does not exist.
pub(super) async fn set_password<D: Dialect>(
    pool: &Pool<D::Db>,
    user_id: &str,
    password_hash: Option<&str>,
) -> Result<(), StoreError> {
    if password_hash.is_some_and(|h| h.trim().is_empty()) {
        return Err(StoreError::Invalid("a password hash must not be empty".to_owned()));
    }
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    lock_user::<D>(&mut tx, user_id).await?;
    let q = match password_hash {
        Some(hash) => upsert_password::<D>(user_id, hash, now),
        None => {
            let mut q = Query::<D>::new("DELETE FROM user_passwords WHERE user_id = ");
            q.bind(user_id);
            q
        }
    };
    q.execute(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

fn upsert_password<'a, D: Dialect>(
    user_id: &'a str,
    hash: &'a str,
    now: DateTime<Utc>,
) -> Query<'a, D> {
    let mut q =
        Query::<D>::new("INSERT INTO user_passwords (user_id, password_hash, updated_at) VALUES ");
    q.values([Param::from(user_id), Param::from(hash), Param::from(now)]).push(
        " ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
         updated_at = excluded.updated_at",
    );
    q
}

pub(super) async fn password_hash<D: Dialect>(
    pool: &Pool<D::Db>,
    user_id: &str,
) -> Result<Option<String>, StoreError> {
    let mut q = select::<D>("password_hash", "user_passwords", " WHERE user_id = ");
    q.bind(user_id);
    let mut conn = pool.acquire().await?;
    let row: Option<(String,)> = q.optional(&mut conn).await?;
    Ok(row.map(|(hash,)| hash))
}
