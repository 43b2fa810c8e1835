//! What ties keys, users and teams together, used by each of their queries: a key's or a
//! team's users created on demand, a key's team checked, memberships read and dropped, and
//! the keys of a deleted owner released. Kept apart so those three modules need only this,
//! not each other.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::rows::MemberRow;
use crate::sql::{Conn, Dialect, Param, Query, ids_per_statement};
use crate::{EntityKind, StoreError};

/// Creates the users that do not exist yet, bare (LiteLLM does the same when a key or team
/// names an unknown user). Returns the change-feed entries for the ones created.
pub(super) async fn ensure<D: Dialect>(
    conn: &mut Conn<D>,
    user_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(EntityKind, String)>, StoreError> {
    let mut changes = Vec::new();
    let premium_reset = crate::budget::next_month_start(now);
    // 4 binds per row.
    for chunk in user_ids.chunks(D::MAX_BINDS / 4) {
        let mut q = Query::<D>::new(
            "INSERT INTO users (user_id, created_at, updated_at, premium_budget_reset_at) VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values([
                Param::from(id),
                Param::Time(now),
                Param::Time(now),
                Param::Time(premium_reset),
            ]);
        }
        q.push(" ON CONFLICT (user_id) DO NOTHING RETURNING user_id");
        let created: Vec<(String,)> = q.all(&mut *conn).await?;
        changes.extend(created.into_iter().map(|(id,)| (EntityKind::User, id)));
    }
    Ok(changes)
}

/// `NotFound` unless the team exists (a key may only name an existing team).
pub(super) async fn require<D: Dialect>(
    conn: &mut Conn<D>,
    team_id: &str,
) -> Result<(), StoreError> {
    let mut q = Query::<D>::new("SELECT team_id FROM teams WHERE team_id = ");
    q.bind(team_id);
    let found: Option<(String,)> = q.optional(conn).await?;
    found.map(|_| ()).ok_or_else(|| StoreError::NotFound { kind: "team", id: team_id.to_owned() })
}

/// The memberships whose `by` column (`user_id` or `team_id`) is one of `ids`, ordered by
/// `order` (the other column).
pub(super) async fn memberships<D: Dialect>(
    conn: &mut Conn<D>,
    by: &str,
    ids: &[String],
    order: &str,
) -> Result<Vec<MemberRow>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(ids_per_statement::<D>(0)) {
        let mut q = Query::<D>::new("SELECT team_id, user_id, role FROM team_members WHERE ");
        q.is_in(by, chunk).push(" ORDER BY ").push(order);
        out.extend(q.all::<MemberRow>(&mut *conn).await?);
    }
    Ok(out)
}

/// Deletes the memberships whose `by` column is one of `ids`; the other side's ids, once each.
pub(super) async fn drop_memberships<D: Dialect>(
    conn: &mut Conn<D>,
    by: &str,
    ids: &[String],
    other: &str,
) -> Result<BTreeSet<String>, StoreError> {
    let mut q = Query::<D>::new("DELETE FROM team_members WHERE ");
    q.is_in(by, ids).push(" RETURNING ").push(other);
    Ok(q.all::<(String,)>(conn).await?.into_iter().map(|(id,)| id).collect())
}

/// Removes users (at most one statement's worth) from every team; the teams they were in.
pub(super) async fn leave<D: Dialect>(
    conn: &mut Conn<D>,
    user_ids: &[String],
) -> Result<BTreeSet<String>, StoreError> {
    drop_memberships::<D>(conn, "user_id", user_ids, "team_id").await
}

/// Clears `column` (`user_id` or `team_id`) on the keys whose owner is one of `ids`, which is
/// being deleted: the keys stay, without it. Returns their hashes.
pub(super) async fn release<D: Dialect>(
    conn: &mut Conn<D>,
    column: &str,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut q = Query::<D>::new("UPDATE virtual_keys SET ");
    q.push(column).push(" = NULL").and(", updated_at = ", now).push(" WHERE ");
    q.is_in(column, ids).push(" RETURNING token_hash");
    Ok(q.all::<(String,)>(conn).await?.into_iter().map(|(h,)| h).collect())
}
