//! The change feed, and budget resets (which write to it).

use chrono::{DateTime, Utc};
use sqlx::Pool;

use crate::budget::parse_budget_duration;
use crate::patch::row_limit;
use crate::rows::{ChangeRow, kind_str, parse_kind};
use crate::sql::{Conn, Dialect, Param, Query};
use crate::{Change, EntityKind, SpendChange, StoreError};

/// Appends changes; call it last in a transaction.
pub(super) async fn append<D: Dialect>(
    conn: &mut Conn<D>,
    changes: &[(EntityKind, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    D::lock_change_feed(&mut *conn).await?;
    // 3 binds per row.
    for chunk in changes.chunks(D::MAX_BINDS / 3) {
        let mut q = Query::<D>::new("INSERT INTO change_log (kind, entity_id, changed_at) VALUES ");
        for (i, (kind, id)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values([Param::Text(kind_str(*kind)), Param::Text(id), Param::Time(now)]);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn since<D: Dialect>(
    pool: &Pool<D::Db>,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = Query::<D>::new("SELECT seq, kind, entity_id FROM change_log WHERE seq > ");
    q.bind(after).and(" ORDER BY seq LIMIT ", row_limit(limit, 1000, 10_000));
    let rows: Vec<ChangeRow> = q.all(&mut conn).await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_change).collect())
}

pub(super) async fn latest<D: Dialect>(pool: &Pool<D::Db>) -> Result<i64, StoreError> {
    let mut conn = pool.acquire().await?;
    let (seq,): (Option<i64>,) =
        Query::<D>::new("SELECT MAX(seq) FROM change_log").one(&mut conn).await?;
    Ok(seq.unwrap_or(0))
}

/// The tables with budgets: their kind and id column.
const BUDGETED: [(EntityKind, &str, &str); 3] = [
    (EntityKind::Key, "virtual_keys", "token_hash"),
    (EntityKind::User, "users", "user_id"),
    (EntityKind::Team, "teams", "team_id"),
];

/// One index range per table (each has a partial index on `spend_changed_at` over the rows
/// with a budget), planned for `since` each time: a generic plan could not tell the few
/// rows of the last seconds from a third of the table.
pub(super) async fn spend_changed_since<D: Dialect>(
    pool: &Pool<D::Db>,
    since: DateTime<Utc>,
) -> Result<Vec<SpendChange>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = Query::<D>::new("");
    for (i, (kind, table, id)) in BUDGETED.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT '").push(kind_str(*kind)).push("' AS kind, ").push(id);
        q.push(" AS id, spend FROM ").push(table);
        q.and(" WHERE max_budget IS NOT NULL AND spend_changed_at >= ", since);
    }
    let rows: Vec<(String, String, f64)> = q.all_planned(&mut conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, spend)| Some(SpendChange { kind: parse_kind(&kind)?, id, spend }))
        .collect())
}

/// Resets every budget whose period has passed and schedules its next reset: one UPDATE per
/// distinct period rather than per row. The UPDATE re-checks `budget_reset_at <= now`, so a
/// process racing this one skips rows it already reset.
pub(super) async fn reset_due_budgets<D: Dialect>(
    pool: &Pool<D::Db>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = D::begin_write(pool).await?;
    let mut changes = Vec::new();
    for (kind, table, id) in BUDGETED {
        let mut q = Query::<D>::new("SELECT DISTINCT budget_duration FROM ");
        q.push(table)
            .and(" WHERE budget_reset_at <= ", now)
            .push(" AND budget_duration IS NOT NULL");
        let periods: Vec<(String,)> = q.all(&mut tx).await?;
        for (period,) in periods {
            let next = match parse_budget_duration(&period) {
                Ok(d) => now + d,
                Err(e) => {
                    tracing::warn!(kind = kind_str(kind), error = %e, "skipping budget reset");
                    continue;
                }
            };
            let mut q = Query::<D>::new("UPDATE ");
            q.push(table)
                .and(" SET spend = 0, budget_reset_at = ", next)
                .and(", updated_at = ", now);
            super::stamp_spend_change(&mut q, now);
            q.and(" WHERE budget_reset_at <= ", now)
                .and(" AND budget_duration = ", period.as_str())
                .push(" RETURNING ")
                .push(id);
            let ids: Vec<(String,)> = q.all(&mut tx).await?;
            changes.extend(ids.into_iter().map(|(id,)| (kind, id)));
        }
    }
    append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(changes.len() as u64)
}
